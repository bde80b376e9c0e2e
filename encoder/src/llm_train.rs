//! Contrastive fine-tuning of a decoder LLM as a dense and a sparse embedder: each step embeds a
//! batch of (query, positive document) pairs by the mean of their final states (L2-normalized, as
//! `--pooling mean` embeds them), scores every query against every document of the batch, and
//! minimizes the cross-entropy of each query's own document against the others (in-batch
//! negatives, temperature 0.05 unless set) with AdamW over every weight (full fine-tuning).
//!
//! With a sparse weight above 0 the same texts also go through the LM head as they are encoded
//! for sparse retrieval (`max over tokens of log(1 + relu(logit))` over the vocabulary), and the
//! same in-batch loss is taken over their dot products, divided by the batch's mean positive dot
//! product (held constant: a temperature, so that the ranking each query sees is the dot
//! product's), plus a FLOPS regularizer (the sum over the vocabulary of each term's squared mean
//! weight in the batch) that drives the vectors sparse. The total loss is
//! `dense + sparse_weight * sparse + flops_weight * flops`.
//!
//! The trained model is saved as a Hugging Face directory that every `--model` takes.

use std::path::Path;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use tokenizers::Tokenizer;

use crate::error::{EncoderError, Result};
use crate::gaprune::pooled_and_sparse;
use crate::llama::LlamaModel;
use crate::llm_embed::LlmEncoder;
use crate::train::{in_batch_loss, optimizer_step, report, StepReport};

/// How [`LlmTrainer`] trains.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmTrainOptions {
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// Softmax temperature of the loss (scores are cosine similarities).
    pub temperature: f64,
    /// Truncation of queries, in tokens.
    pub query_max_length: usize,
    /// Truncation of documents, in tokens.
    pub doc_max_length: usize,
    /// Weight of the sparse (LM-head) loss; 0 trains the dense embedding only.
    pub sparse_weight: f64,
    /// Weight of the FLOPS regularizer of the sparse vectors.
    pub flops_weight: f64,
}

impl Default for LlmTrainOptions {
    fn default() -> Self {
        LlmTrainOptions {
            learning_rate: 2e-5,
            temperature: 0.05,
            query_max_length: 32,
            doc_max_length: 128,
            sparse_weight: 1.0,
            flops_weight: 1e-5,
        }
    }
}

/// Fine-tunes a decoder LLM on (query, positive) pairs; see the module documentation.
pub struct LlmTrainer {
    model: LlamaModel,
    tokenizer: Tokenizer,
    vars: Vec<(String, Var)>,
    optimizer: AdamW,
    options: LlmTrainOptions,
    step: u64,
}

impl std::fmt::Debug for LlmTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmTrainer")
            .field("model", &self.model)
            .field("options", &self.options)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

impl LlmTrainer {
    /// Loads a decoder LLM (a `.gguf` file or a Hugging Face directory) for training on the CPU.
    pub fn load(path: &Path, options: LlmTrainOptions) -> Result<Self> {
        if !(options.learning_rate > 0.0 && options.temperature > 0.0) {
            return Err(EncoderError::InvalidOption {
                option: "learning_rate",
                message: "the learning rate and the temperature must be positive".into(),
            });
        }
        if !(options.sparse_weight >= 0.0 && options.flops_weight >= 0.0) {
            return Err(EncoderError::InvalidOption {
                option: "sparse_weight",
                message: "the sparse and FLOPS weights must not be negative".into(),
            });
        }
        if options.query_max_length == 0 || options.doc_max_length == 0 {
            return Err(EncoderError::InvalidOption {
                option: "max_length",
                message: "texts need at least one token".into(),
            });
        }
        let max = options.query_max_length.max(options.doc_max_length);
        let (mut model, tokenizer) = LlmEncoder::load_any(path, max)?.into_parts();
        let vars = model.make_trainable()?;
        let optimizer = AdamW::new(
            vars.iter().map(|(_, v)| v.clone()).collect(),
            ParamsAdamW {
                lr: options.learning_rate,
                weight_decay: 0.01,
                ..ParamsAdamW::default()
            },
        )?;
        Ok(LlmTrainer {
            model,
            tokenizer,
            vars,
            optimizer,
            options,
            step: 0,
        })
    }

    /// The model being trained.
    pub fn model(&self) -> &LlamaModel {
        &self.model
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Token ids of `texts`, truncated at `max` (none may be empty).
    fn ids(&self, texts: &[&str], max: usize) -> Result<Vec<Vec<u32>>> {
        texts
            .iter()
            .map(|t| {
                let enc = self
                    .tokenizer
                    .encode(*t, false)
                    .map_err(|e| EncoderError::Tokenize(e.to_string()))?;
                let mut ids = enc.get_ids().to_vec();
                ids.truncate(max);
                if ids.is_empty() {
                    return Err(EncoderError::InvalidInput(format!(
                        "the text {t:?} has no token"
                    )));
                }
                Ok(ids)
            })
            .collect()
    }

    /// The batch loss and the number of queries whose own document scored highest.
    fn loss(&self, pairs: &[(&str, &str)]) -> Result<(Tensor, usize)> {
        if pairs.len() < 2 {
            return Err(EncoderError::InvalidInput(
                "a batch needs at least 2 pairs (the others are each query's negatives)".into(),
            ));
        }
        let (qs, ds): (Vec<&str>, Vec<&str>) = pairs.iter().copied().unzip();
        let device = Device::Cpu;
        let sparse = self.options.sparse_weight > 0.0;
        let (q, q_vocab) = pooled_and_sparse(
            &self.model,
            &self.ids(&qs, self.options.query_max_length)?,
            sparse,
            &device,
        )?;
        let (d, d_vocab) = pooled_and_sparse(
            &self.model,
            &self.ids(&ds, self.options.doc_max_length)?,
            sparse,
            &device,
        )?;
        let scores = (q.matmul(&d.t()?)? / self.options.temperature)?;
        let (mut loss, correct) = in_batch_loss(&scores)?;
        if let (Some(qv), Some(dv)) = (q_vocab, d_vocab) {
            let dots = qv.matmul(&dv.t()?)?;
            let b = dots.dim(0)?;
            let eye = Tensor::eye(b, DType::F32, &device)?;
            let positive = (dots.detach() * eye)?.sum_all()?.to_scalar::<f32>()? / b as f32;
            let scale = f64::from(positive.max(1e-6)) * self.options.temperature;
            let (sparse_loss, _) = in_batch_loss(&(dots / scale)?)?;
            let flops = Tensor::cat(&[&qv, &dv], 0)?.mean(0)?.sqr()?.sum_all()?;
            loss = ((loss + (sparse_loss * self.options.sparse_weight)?)?
                + (flops * self.options.flops_weight)?)?;
        }
        Ok((loss, correct))
    }

    /// The loss of a batch without updating the model.
    pub fn evaluate(&self, pairs: &[(&str, &str)]) -> Result<StepReport> {
        let (loss, in_batch_correct) = self.loss(pairs)?;
        report(&loss, in_batch_correct)
    }

    /// One AdamW step on a batch of (query, positive document) pairs.
    pub fn step(&mut self, pairs: &[(&str, &str)]) -> Result<StepReport> {
        let (loss, in_batch_correct) = self.loss(pairs)?;
        optimizer_step(&mut self.optimizer, &mut self.step, &loss, in_batch_correct)
    }

    /// Weights trained, by Hugging Face name.
    pub fn weights(&self) -> impl Iterator<Item = &str> {
        self.vars.iter().map(|(n, _)| n.as_str())
    }

    /// Writes the trained model as a Hugging Face directory (model.safetensors, config.json,
    /// tokenizer.json).
    pub fn save(&self, output: &Path) -> Result<()> {
        self.model.save(output)?;
        let path = output.join("tokenizer.json");
        self.tokenizer
            .save(&path, false)
            .map_err(|e| EncoderError::Tokenizer {
                path: path.clone(),
                message: e.to_string(),
            })
    }
}
