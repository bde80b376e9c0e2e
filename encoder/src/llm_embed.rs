//! A decoder LLM used as a text encoder: dense embeddings by pooling its last hidden states, and
//! sparse vectors through its LM head the SPLADE way.
//!
//! - Dense: the mean of the real tokens' final hidden states, or the last real token's
//!   ([`Pooling`]), L2-normalised. Search over them is brute force
//!   ([`crate::dense_index::DenseIndex`]).
//! - Sparse: `w_j = max over real tokens of log(1 + relu(logit_j))` over the vocabulary, like
//!   SPLADE; the vectors go to `bmp-index build` like any other sparse encoder's.

use std::path::Path;

use candle_core::{Device, Tensor};
use tokenizers::Tokenizer;

use crate::batching::pad_batch;
pub use crate::dense_index::DenseIndex;
use crate::error::{EncoderError, Result};
use crate::gguf_tokenizer::gguf_tokenizer;
use crate::llama::{LlamaModel, HF_MODEL_TYPES};
use crate::sparse::SparseVector;
use crate::token_embed::l2_normalize;

/// How token states become one dense vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Mean over the real tokens.
    Mean,
    /// The last real token (it has seen the whole text in a causal model).
    LastToken,
}

impl std::fmt::Display for Pooling {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Pooling::Mean => "mean",
            Pooling::LastToken => "last",
        })
    }
}

impl std::str::FromStr for Pooling {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "mean" => Ok(Pooling::Mean),
            "last" | "last-token" => Ok(Pooling::LastToken),
            other => Err(format!("unknown pooling {other:?}: expected mean or last")),
        }
    }
}

/// A Llama GGUF model and its tokenizer, as an encoder.
pub struct LlmEncoder {
    model: LlamaModel,
    tokenizer: Tokenizer,
    max_length: usize,
    pad_id: u32,
    device: Device,
}

impl std::fmt::Debug for LlmEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmEncoder")
            .field("model", &self.model)
            .field("max_length", &self.max_length)
            .finish_non_exhaustive()
    }
}

impl LlmEncoder {
    /// Loads a GGUF file (its tokenizer from the metadata), keeping the first `keep` layers when
    /// given; texts are truncated at `max_length` tokens.
    pub fn load(gguf: &Path, keep: Option<usize>, max_length: usize) -> Result<Self> {
        if max_length == 0 {
            return Err(EncoderError::InvalidOption {
                option: "max_length",
                message: "must be at least 1".into(),
            });
        }
        let device = Device::Cpu;
        let model = LlamaModel::from_gguf(gguf, keep, &device)?;
        let tokenizer = gguf_tokenizer(gguf)?;
        Ok(Self {
            model,
            tokenizer,
            max_length,
            pad_id: 0,
            device,
        })
    }

    /// Loads a model given as a GGUF file or as a Hugging Face Llama / Mistral / Qwen2 / Qwen3 directory
    /// (config.json, model.safetensors, tokenizer.json), e.g. one `bmp-index prune` wrote.
    pub fn load_any(model: &Path, max_length: usize) -> Result<Self> {
        if !model.is_dir() {
            return Self::load(model, None, max_length);
        }
        if max_length == 0 {
            return Err(EncoderError::InvalidOption {
                option: "max_length",
                message: "must be at least 1".into(),
            });
        }
        let device = Device::Cpu;
        let llama = LlamaModel::from_safetensors(model, None, &device)?;
        let path = model.join("tokenizer.json");
        let tokenizer = Tokenizer::from_file(&path).map_err(|e| EncoderError::Tokenizer {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Ok(Self {
            model: llama,
            tokenizer,
            max_length,
            pad_id: 0,
            device,
        })
    }

    /// Whether `path` holds a decoder LLM this encoder loads: a `.gguf` file, or a directory
    /// whose config.json says `"model_type": "llama"` or `"qwen2"`.
    pub fn recognizes(path: &Path) -> bool {
        if path.is_file() {
            return path.extension().is_some_and(|e| e == "gguf");
        }
        std::fs::read_to_string(path.join("config.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| {
                v.get("model_type")
                    .and_then(|m| m.as_str())
                    .map(str::to_owned)
            })
            .is_some_and(|m| HF_MODEL_TYPES.contains(&m.as_str()))
    }

    /// The model and its tokenizer, for training.
    pub fn into_parts(self) -> (LlamaModel, Tokenizer) {
        (self.model, self.tokenizer)
    }

    /// The vocabulary size (sparse vectors' dimension).
    pub fn vocab_size(&self) -> usize {
        self.model.config().vocab_size
    }

    /// The model.
    pub fn model(&self) -> &LlamaModel {
        &self.model
    }

    /// Token ids of each text, truncated (empty for a text without a token).
    fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        texts
            .iter()
            .map(|t| {
                let enc = self
                    .tokenizer
                    .encode(*t, false)
                    .map_err(|e| EncoderError::Tokenize(e.to_string()))?;
                let mut ids = enc.get_ids().to_vec();
                ids.truncate(self.max_length);
                Ok(ids)
            })
            .collect()
    }

    /// Final hidden states `[b, len, hidden]` of right-padded token ids (none empty).
    fn states(&self, ids: &[Vec<u32>]) -> Result<Tensor> {
        let (ids, mask, _) = pad_batch(ids, self.pad_id, &self.device)?;
        Ok(self.model.hidden_states(&ids, &mask)?)
    }

    /// Dense embeddings of `texts`, L2-normalised, in length-sorted batches of `batch` (no
    /// logits are computed); a text without a token (an empty one) gets the zero vector, which
    /// matches nothing.
    pub fn encode_dense(
        &self,
        texts: &[&str],
        pooling: Pooling,
        batch: usize,
    ) -> Result<Vec<Vec<f32>>> {
        Ok(self
            .encode_batched(texts, false, Some(pooling), batch)?
            .into_iter()
            .map(|(_, dense)| dense.unwrap_or_default())
            .collect())
    }

    /// Sparse vectors of `texts` over the model's vocabulary (token id, weight), sorted by id.
    /// Texts go through the model in length-sorted batches of `batch`.
    pub fn encode_sparse(&self, texts: &[&str], batch: usize) -> Result<Vec<SparseVector>> {
        Ok(self
            .encode_batched(texts, true, None, batch)?
            .into_iter()
            .map(|(sparse, _)| sparse)
            .collect())
    }

    /// Sparse vectors and dense embeddings (pooled as `pooling` asks) of `texts` from one
    /// forward pass, in length-sorted batches of `batch`.
    pub fn encode_sparse_and_dense(
        &self,
        texts: &[&str],
        pooling: Pooling,
        batch: usize,
    ) -> Result<Vec<(SparseVector, Vec<f32>)>> {
        Ok(self
            .encode_batched(texts, true, Some(pooling), batch)?
            .into_iter()
            .map(|(sparse, dense)| (sparse, dense.unwrap_or_default()))
            .collect())
    }

    /// Each text's sparse vector (empty unless `sparse`), and its dense embedding when `pooling`
    /// is given, in input order. Texts are sorted by token count and run `batch` at a time
    /// (little padding); a text without a token gets the empty vector (and the zero embedding).
    fn encode_batched(
        &self,
        texts: &[&str],
        sparse: bool,
        pooling: Option<Pooling>,
        batch: usize,
    ) -> Result<Vec<(SparseVector, Option<Vec<f32>>)>> {
        let ids = self.tokenize(texts)?;
        let zero = || pooling.map(|_| vec![0.0; self.model.config().hidden_size]);
        let mut out: Vec<(SparseVector, Option<Vec<f32>>)> = (0..texts.len())
            .map(|_| (SparseVector::new(), zero()))
            .collect();
        let mut order: Vec<usize> = (0..ids.len()).filter(|&i| !ids[i].is_empty()).collect();
        order.sort_by_key(|&i| ids[i].len());
        for group in order.chunks(batch.max(1)) {
            let rows: Vec<Vec<u32>> = group.iter().map(|&i| ids[i].clone()).collect();
            let states = self.states(&rows)?;
            for (row, &i) in group.iter().enumerate() {
                let n = ids[i].len();
                let s = states.get(row)?.narrow(0, 0, n)?;
                let dense = match pooling {
                    None => None,
                    Some(pooling) => Some(pool(&s, n, pooling)?),
                };
                let vector = if sparse {
                    let pooled = self.model.logits(&s)?.max(0)?;
                    let weights = pooled.relu()?.affine(1.0, 1.0)?.log()?.to_vec1::<f32>()?;
                    weights
                        .into_iter()
                        .enumerate()
                        .filter(|&(_, w)| w > 0.0)
                        .map(|(j, w)| (j as u32, w))
                        .collect()
                } else {
                    SparseVector::new()
                };
                out[i] = (vector, dense);
            }
        }
        Ok(out)
    }

    /// The token string of `id`.
    pub fn token(&self, id: u32) -> Option<String> {
        self.tokenizer.id_to_token(id)
    }
}

/// Pools the first `n` (real) rows of one text's states `[len, hidden]`, L2-normalised.
fn pool(states: &Tensor, n: usize, pooling: Pooling) -> Result<Vec<f32>> {
    let v = match pooling {
        Pooling::Mean => states.narrow(0, 0, n)?.mean(0)?,
        Pooling::LastToken => states.get(n - 1)?,
    };
    let mut v = v.to_vec1::<f32>()?;
    l2_normalize(&mut v);
    Ok(v)
}
