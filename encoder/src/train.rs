//! Learned clustering (CRISP): fine-tuning a token encoder with the clustering inside the forward
//! pass and a Chamfer contrastive loss.
//!
//! [`TrainableBert`] is a BERT encoder of our own whose every weight is a candle `Var` and whose
//! forward uses only ops with a backward pass: the fused LayerNorm and softmax kernels have none
//! and would silently cut the graph, so LayerNorm is written out and softmax is candle-nn's
//! composed one. [`ChamferTrainer`] runs one step on a batch of (query, positive) pairs:
//!
//! 1. both sides through the encoder; the real tokens' last hidden states, L2-normalised;
//! 2. each text reduced by its side of the [`ClusterSpec`]: the grouping (k-means) is computed on
//!    the current embeddings without gradient, the centroids are the differentiable renormalised
//!    means of their members (see [`Reduction::weights`]);
//! 3. `S[i][j]` = mean over query i's vectors of the best dot product with document j's vectors
//!    (Chamfer, averaged so that it lies in [-1, 1]), divided by the temperature;
//! 4. the loss is the cross-entropy of each row of `S` against its own document (in-batch
//!    negatives), and AdamW updates every weight.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use candle_transformers::models::bert::{Config as BertConfig, HiddenAct};

use crate::batching::pad_batch;
use crate::clustering::{ClusterSpec, Reduction};
use crate::config::read_bert_config;
use crate::error::{EncoderError, Result};
use crate::model_dir::ModelDir;
use crate::token_embed::TokenVectors;
use crate::tokenizer::TextTokenizer;

/// The weights of one transformer layer.
struct Layer {
    query: (Tensor, Tensor),
    key: (Tensor, Tensor),
    value: (Tensor, Tensor),
    attention_out: (Tensor, Tensor),
    attention_norm: (Tensor, Tensor),
    intermediate: (Tensor, Tensor),
    output: (Tensor, Tensor),
    output_norm: (Tensor, Tensor),
}

/// A BERT encoder whose weights are all trainable and whose forward pass keeps the graph.
pub struct TrainableBert {
    /// Every weight, by its name in the checkpoint.
    params: Vec<(String, Var)>,
    word: Tensor,
    position: Tensor,
    token_type: Tensor,
    embedding_norm: (Tensor, Tensor),
    layers: Vec<Layer>,
    config: BertConfig,
    pad_token_id: u32,
    device: Device,
}

impl std::fmt::Debug for TrainableBert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrainableBert")
            .field("params", &self.params.len())
            .field("layers", &self.layers.len())
            .finish_non_exhaustive()
    }
}

fn weights_error(path: &Path) -> impl Fn(candle_core::Error) -> EncoderError + '_ {
    move |error| EncoderError::Weights {
        path: path.to_path_buf(),
        error,
    }
}

impl TrainableBert {
    /// Loads the encoder part of a BERT checkpoint (with or without the `bert.` prefix; old
    /// `gamma`/`beta` LayerNorm names accepted) as trainable f32 weights on `device`.
    pub fn load(weights: &Path, config: &BertConfig, device: &Device) -> Result<Self> {
        let err = weights_error(weights);
        // SAFETY: read-only map; the tensors are copied out of it.
        let file =
            unsafe { candle_core::safetensors::MmapedSafetensors::new(weights) }.map_err(&err)?;
        let prefix = if file.get("bert.embeddings.word_embeddings.weight").is_ok() {
            "bert."
        } else {
            ""
        };
        let mut params = Vec::new();
        let mut var = |names: &[String]| -> Result<Tensor> {
            let name = names.iter().find(|n| file.get(n).is_ok()).ok_or_else(|| {
                EncoderError::InvalidInput(format!("{}: no tensor {}", weights.display(), names[0]))
            })?;
            let t = file
                .load(name, device)
                .and_then(|t| t.to_dtype(DType::F32))
                .map_err(&err)?;
            let v = Var::from_tensor(&t).map_err(&err)?;
            let tensor = v.as_tensor().clone();
            params.push((name.clone(), v));
            Ok(tensor)
        };
        let one = |n: String| vec![n];
        let linear = |var: &mut dyn FnMut(&[String]) -> Result<Tensor>, p: &str| {
            Ok::<_, EncoderError>((
                var(&one(format!("{prefix}{p}.weight")))?,
                var(&one(format!("{prefix}{p}.bias")))?,
            ))
        };
        let norm = |var: &mut dyn FnMut(&[String]) -> Result<Tensor>, p: &str| {
            Ok::<_, EncoderError>((
                var(&[format!("{prefix}{p}.weight"), format!("{prefix}{p}.gamma")])?,
                var(&[format!("{prefix}{p}.bias"), format!("{prefix}{p}.beta")])?,
            ))
        };
        let word = var(&one(format!("{prefix}embeddings.word_embeddings.weight")))?;
        let position = var(&one(format!(
            "{prefix}embeddings.position_embeddings.weight"
        )))?;
        let token_type = var(&one(format!(
            "{prefix}embeddings.token_type_embeddings.weight"
        )))?;
        let embedding_norm = norm(&mut var, "embeddings.LayerNorm")?;
        let mut layers = Vec::with_capacity(config.num_hidden_layers);
        for l in 0..config.num_hidden_layers {
            let p = format!("encoder.layer.{l}");
            layers.push(Layer {
                query: linear(&mut var, &format!("{p}.attention.self.query"))?,
                key: linear(&mut var, &format!("{p}.attention.self.key"))?,
                value: linear(&mut var, &format!("{p}.attention.self.value"))?,
                attention_out: linear(&mut var, &format!("{p}.attention.output.dense"))?,
                attention_norm: norm(&mut var, &format!("{p}.attention.output.LayerNorm"))?,
                intermediate: linear(&mut var, &format!("{p}.intermediate.dense"))?,
                output: linear(&mut var, &format!("{p}.output.dense"))?,
                output_norm: norm(&mut var, &format!("{p}.output.LayerNorm"))?,
            });
        }
        let pad_token_id = u32::try_from(config.pad_token_id).unwrap_or(0);
        Ok(Self {
            params,
            word,
            position,
            token_type,
            embedding_norm,
            layers,
            config: config.clone(),
            pad_token_id,
            device: device.clone(),
        })
    }

    /// The trainable weights, by checkpoint name.
    pub fn params(&self) -> &[(String, Var)] {
        &self.params
    }

    fn layer_norm(&self, x: &Tensor, (w, b): &(Tensor, Tensor)) -> candle_core::Result<Tensor> {
        let mean = x.mean_keepdim(D::Minus1)?;
        let centred = x.broadcast_sub(&mean)?;
        let var = centred.sqr()?.mean_keepdim(D::Minus1)?;
        let normed = centred.broadcast_div(&(var + self.config.layer_norm_eps)?.sqrt()?)?;
        normed.broadcast_mul(w)?.broadcast_add(b)
    }

    fn linear(x: &Tensor, (w, b): &(Tensor, Tensor)) -> candle_core::Result<Tensor> {
        x.broadcast_matmul(&w.t()?)?.broadcast_add(b)
    }

    fn activation(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self.config.hidden_act {
            HiddenAct::Gelu => x.gelu_erf(),
            HiddenAct::GeluApproximate => x.gelu(),
            HiddenAct::Relu => x.relu(),
        }
    }

    /// Last hidden states `[batch, len, hidden]` of padded token ids with their mask (1 = real).
    pub fn forward(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        let (b, len) = ids.dims2()?;
        let h = self.config.hidden_size;
        let heads = self.config.num_attention_heads;
        let dh = h / heads;
        let words = self
            .word
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, len, h))?;
        let positions = Tensor::arange(0u32, len as u32, &self.device)?;
        let pos = self.position.index_select(&positions, 0)?;
        let types = self.token_type.get(0)?;
        let x = words.broadcast_add(&pos)?.broadcast_add(&types)?;
        let mut x = self.layer_norm(&x, &self.embedding_norm)?;
        // 0 for real tokens, -10000 for padding, per key position.
        let bias = ((mask.to_dtype(DType::F32)? - 1.0)? * 10_000.0)?.reshape((b, 1, 1, len))?;
        let scale = 1.0 / (dh as f64).sqrt();
        for layer in &self.layers {
            let split = |t: Tensor| -> candle_core::Result<Tensor> {
                t.reshape((b, len, heads, dh))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let q = split(Self::linear(&x, &layer.query)?)?;
            let k = split(Self::linear(&x, &layer.key)?)?;
            let v = split(Self::linear(&x, &layer.value)?)?;
            let scores = (q.matmul(&k.t()?.contiguous()?)? * scale)?.broadcast_add(&bias)?;
            let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
            let ctx = probs
                .matmul(&v)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b, len, h))?;
            let attended = (Self::linear(&ctx, &layer.attention_out)? + &x)?;
            x = self.layer_norm(&attended, &layer.attention_norm)?;
            let inner = self.activation(&Self::linear(&x, &layer.intermediate)?)?;
            let out = (Self::linear(&inner, &layer.output)? + &x)?;
            x = self.layer_norm(&out, &layer.output_norm)?;
        }
        Ok(x)
    }

    /// Writes the weights as safetensors (the names of the checkpoint it was loaded from).
    pub fn save(&self, path: &Path) -> Result<()> {
        let tensors: HashMap<String, Tensor> = self
            .params
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
            .collect();
        candle_core::safetensors::save(&tensors, path).map_err(weights_error(path))
    }
}

/// How [`ChamferTrainer`] trains.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainOptions {
    /// What happens to query and document token vectors in the forward pass.
    pub clusters: ClusterSpec,
    /// AdamW learning rate.
    pub learning_rate: f64,
    /// Softmax temperature of the contrastive loss.
    pub temperature: f64,
    /// Truncation of queries, in tokens (special tokens included).
    pub query_max_length: usize,
    /// Truncation of documents, in tokens.
    pub doc_max_length: usize,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            clusters: "C8x32".parse().unwrap_or_else(|_| ClusterSpec::none()),
            learning_rate: 2e-5,
            temperature: 0.05,
            query_max_length: 32,
            doc_max_length: 128,
        }
    }
}

/// Fine-tunes a [`TrainableBert`] on (query, positive) pairs; see the module documentation.
pub struct ChamferTrainer {
    model: TrainableBert,
    queries: TextTokenizer,
    docs: TextTokenizer,
    optimizer: AdamW,
    options: TrainOptions,
    step: u64,
}

impl std::fmt::Debug for ChamferTrainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChamferTrainer")
            .field("model", &self.model)
            .field("options", &self.options)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

/// What one training step did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// The loss before the update.
    pub loss: f32,
    /// Pairs whose own document scored highest in the batch (before the update).
    pub in_batch_correct: usize,
}

/// The in-batch contrastive loss of a `[b, b]` matrix of query × document scores (already
/// divided by the temperature; each query's own document on the diagonal): the mean
/// cross-entropy of each query's own document against the batch, and how many queries rank
/// their own document first.
pub(crate) fn in_batch_loss(scores: &Tensor) -> Result<(Tensor, usize)> {
    let b = scores.dim(0)?;
    let log_probs = candle_nn::ops::log_softmax(scores, 1)?;
    let targets = Tensor::arange(0u32, b as u32, scores.device())?.reshape((b, 1))?;
    let loss = (log_probs.gather(&targets, 1)?.mean_all()? * -1.0)?;
    let best = scores.argmax(1)?.to_vec1::<u32>()?;
    let correct = best
        .iter()
        .enumerate()
        .filter(|&(i, &j)| i as u32 == j)
        .count();
    Ok((loss, correct))
}

/// One optimizer step on a batch loss (refused when the loss is not finite), counted in `step`.
pub(crate) fn optimizer_step(
    optimizer: &mut AdamW,
    step: &mut u64,
    loss: &Tensor,
    in_batch_correct: usize,
) -> Result<StepReport> {
    let value = loss.to_scalar::<f32>()?;
    if !value.is_finite() {
        return Err(EncoderError::InvalidInput(format!(
            "the loss is {value} at step {step}: lower the learning rate"
        )));
    }
    optimizer.backward_step(loss)?;
    *step += 1;
    Ok(StepReport {
        loss: value,
        in_batch_correct,
    })
}

/// The report of a batch loss, without a step.
pub(crate) fn report(loss: &Tensor, in_batch_correct: usize) -> Result<StepReport> {
    Ok(StepReport {
        loss: loss.to_scalar::<f32>()?,
        in_batch_correct,
    })
}

impl ChamferTrainer {
    /// Loads a model directory (config.json, model.safetensors, tokenizer.json) for training on
    /// `device`.
    pub fn load(dir: impl AsRef<Path>, options: TrainOptions, device: &Device) -> Result<Self> {
        let files = ModelDir::open(dir)?;
        let config = read_bert_config(&files.config)?;
        for (option, n) in [
            ("query_max_length", options.query_max_length),
            ("doc_max_length", options.doc_max_length),
        ] {
            if n > config.max_position_embeddings {
                return Err(EncoderError::InvalidOption {
                    option,
                    message: format!(
                        "{n} exceeds the model's max_position_embeddings {}",
                        config.max_position_embeddings
                    ),
                });
            }
        }
        if !(options.learning_rate > 0.0 && options.temperature > 0.0) {
            return Err(EncoderError::InvalidOption {
                option: "learning_rate",
                message: "the learning rate and the temperature must be positive".into(),
            });
        }
        let model = TrainableBert::load(&files.weights, &config, device)?;
        let queries = TextTokenizer::load(&files.tokenizer, options.query_max_length)?;
        let docs = TextTokenizer::load(&files.tokenizer, options.doc_max_length)?;
        let vars: Vec<Var> = model.params.iter().map(|(_, v)| v.clone()).collect();
        let optimizer = AdamW::new(
            vars,
            ParamsAdamW {
                lr: options.learning_rate,
                weight_decay: 0.01,
                ..ParamsAdamW::default()
            },
        )?;
        Ok(Self {
            model,
            queries,
            docs,
            optimizer,
            options,
            step: 0,
        })
    }

    /// The model being trained.
    pub fn model(&self) -> &TrainableBert {
        &self.model
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// The reduced, differentiable vectors of each text: `[rows, hidden]` per text.
    fn side(
        &self,
        texts: &[&str],
        tokenizer: &TextTokenizer,
        reduction: Reduction,
    ) -> Result<Vec<Tensor>> {
        let tokens = tokenizer.tokenize_marking_special(texts)?;
        let b = tokens.len();
        let device = &self.model.device;
        let seqs: Vec<&[u32]> = tokens.iter().map(|(ids, _)| ids.as_slice()).collect();
        let (ids, mask, len) = pad_batch(&seqs, self.model.pad_token_id, device)?;
        let hidden = self.model.forward(&ids, &mask)?;
        let h = self.model.config.hidden_size;
        let flat = hidden.reshape((b * len, h))?;
        let mut out = Vec::with_capacity(b);
        for (row, (seq, special)) in tokens.iter().enumerate() {
            let keep: Vec<u32> = (0..seq.len())
                .filter(|&i| !special[i])
                .map(|i| (row * len + i) as u32)
                .collect();
            if keep.is_empty() {
                return Err(EncoderError::InvalidInput(format!(
                    "a training text has no token: {:?}",
                    texts[row]
                )));
            }
            let n = keep.len();
            let x = flat.index_select(&Tensor::from_vec(keep, n, device)?, 0)?;
            let x = normalize_rows(&x)?;
            // The grouping is chosen on the current values, without gradient.
            let values = TokenVectors {
                dim: h,
                data: x.flatten_all()?.to_vec1::<f32>()?,
            };
            let (rows, weights) = reduction.weights(&values, self.step ^ row as u64);
            let w = Tensor::from_vec(weights, (rows, n), device)?;
            let reduced = w.matmul(&x)?;
            let reduced = match reduction {
                Reduction::Clusters(_) | Reduction::Fraction(_) => normalize_rows(&reduced)?,
                _ => reduced,
            };
            out.push(reduced);
        }
        Ok(out)
    }

    /// The loss of a batch (no update) and how many pairs rank their own document first.
    fn loss(&self, pairs: &[(&str, &str)]) -> Result<(Tensor, usize)> {
        if pairs.len() < 2 {
            return Err(EncoderError::InvalidInput(
                "a training batch needs at least 2 pairs (the others are the negatives)".into(),
            ));
        }
        let (queries, docs): (Vec<&str>, Vec<&str>) = pairs.iter().copied().unzip();
        let q = self.side(&queries, &self.queries, self.options.clusters.query)?;
        let d = self.side(&docs, &self.docs, self.options.clusters.doc)?;
        let mut rows = Vec::with_capacity(q.len());
        for qi in &q {
            let mut row = Vec::with_capacity(d.len());
            for dj in &d {
                // Mean over query vectors of the best match: Chamfer / |q|.
                row.push(qi.matmul(&dj.t()?)?.max(1)?.mean(0)?);
            }
            rows.push(Tensor::stack(&row, 0)?);
        }
        let scores = (Tensor::stack(&rows, 0)? / self.options.temperature)?;
        in_batch_loss(&scores)
    }

    /// The normalised token vectors of `texts` (documents' truncation, no reduction), as the
    /// model stands.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<TokenVectors>> {
        self.side(texts, &self.docs, Reduction::All)?
            .into_iter()
            .map(|t| {
                Ok(TokenVectors {
                    dim: self.model.config.hidden_size,
                    data: t.flatten_all()?.to_vec1::<f32>()?,
                })
            })
            .collect()
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

    /// The gradient of the batch loss for every weight (for checking that each one gets one).
    pub fn gradients(&self, pairs: &[(&str, &str)]) -> Result<Vec<(String, Option<Tensor>)>> {
        let (loss, _) = self.loss(pairs)?;
        let grads = loss.backward()?;
        Ok(self
            .model
            .params
            .iter()
            .map(|(n, v)| (n.clone(), grads.get(v.as_tensor()).cloned()))
            .collect())
    }

    /// Saves the trained model as a model directory the token encoder loads: weights, and the
    /// config and tokenizer copied from `source`.
    pub fn save(&self, source: impl AsRef<Path>, output: impl AsRef<Path>) -> Result<()> {
        let files = ModelDir::open(source)?;
        let out = output.as_ref();
        std::fs::create_dir_all(out).map_err(EncoderError::io(out))?;
        for (from, name) in [
            (&files.config, ModelDir::CONFIG_FILE),
            (&files.tokenizer, ModelDir::TOKENIZER_FILE),
        ] {
            let to = out.join(name);
            std::fs::copy(from, &to).map_err(EncoderError::io(&to))?;
        }
        // Written beside, then renamed: a failed save leaves no half-written weights.
        let tmp = out.join(".model.safetensors.tmp");
        self.model.save(&tmp)?;
        crate::model_dir::readable(&tmp).map_err(EncoderError::io(&tmp))?;
        let target = out.join(ModelDir::WEIGHTS_FILE);
        std::fs::rename(&tmp, &target).map_err(EncoderError::io(&target))
    }
}

/// Each row scaled to unit length (differentiably).
fn normalize_rows(x: &Tensor) -> candle_core::Result<Tensor> {
    let norm = (x.sqr()?.sum_keepdim(1)? + 1e-12)?.sqrt()?;
    x.broadcast_div(&norm)
}
