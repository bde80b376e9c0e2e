//! Contrastive fine-tuning of a decoder LLM as a dense embedder: each step embeds a batch of
//! (query, positive document) pairs by the mean of their final states (L2-normalized, as
//! `--pooling mean` embeds them), scores every query against every document of the batch, and
//! minimizes the cross-entropy of each query's own document against the others (in-batch
//! negatives, temperature 0.05 unless set) with AdamW over every weight (full fine-tuning).
//! The trained model is saved as a Hugging Face directory that every `--model` takes.

use std::path::Path;

use candle_core::{Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use tokenizers::Tokenizer;

use crate::error::{EncoderError, Result};
use crate::gaprune::pooled;
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
}

impl Default for LlmTrainOptions {
    fn default() -> Self {
        LlmTrainOptions {
            learning_rate: 2e-5,
            temperature: 0.05,
            query_max_length: 32,
            doc_max_length: 128,
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
        let q = pooled(
            &self.model,
            &self.ids(&qs, self.options.query_max_length)?,
            &device,
        )?;
        let d = pooled(
            &self.model,
            &self.ids(&ds, self.options.doc_max_length)?,
            &device,
        )?;
        let scores = (q.matmul(&d.t()?)? / self.options.temperature)?;
        in_batch_loss(&scores)
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
