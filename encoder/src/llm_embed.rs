//! A decoder LLM used as a text encoder: dense embeddings by pooling its last hidden states, and
//! sparse vectors through its LM head the SPLADE way.
//!
//! - Dense: the mean of the real tokens' final hidden states, or the last real token's
//!   ([`Pooling`]), L2-normalised. Search over them is brute force ([`DenseIndex`]).
//! - Sparse: `w_j = max over real tokens of log(1 + relu(logit_j))` over the vocabulary, like
//!   SPLADE; the vectors go to `bmp-index build` like any other sparse encoder's.

use std::path::Path;

use candle_core::{Device, Tensor};
use tokenizers::Tokenizer;

use crate::batching::pad_batch;
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

    /// Loads a model given as a GGUF file or as a Hugging Face Llama / Qwen2 directory
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

    /// The vocabulary size (sparse vectors' dimension).
    pub fn vocab_size(&self) -> usize {
        self.model.config().vocab_size
    }

    /// The model.
    pub fn model(&self) -> &LlamaModel {
        &self.model
    }

    /// Token ids of each text, truncated.
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
                if ids.is_empty() {
                    return Err(EncoderError::InvalidInput(format!(
                        "text {t:?} has no token"
                    )));
                }
                Ok(ids)
            })
            .collect()
    }

    /// Final hidden states `[b, len, hidden]` of a right-padded batch and each text's length.
    fn states(&self, texts: &[&str]) -> Result<(Tensor, Vec<usize>)> {
        let ids = self.tokenize(texts)?;
        let lens: Vec<usize> = ids.iter().map(Vec::len).collect();
        let (ids, mask, _) = pad_batch(&ids, self.pad_id, &self.device)?;
        Ok((self.model.hidden_states(&ids, &mask)?, lens))
    }

    /// Dense embeddings of `texts`, L2-normalised.
    pub fn encode_dense(&self, texts: &[&str], pooling: Pooling) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (states, lens) = self.states(texts)?;
        let mut out = Vec::with_capacity(texts.len());
        for (row, &n) in lens.iter().enumerate() {
            let s = states.get(row)?;
            let v = match pooling {
                Pooling::Mean => s.narrow(0, 0, n)?.mean(0)?,
                Pooling::LastToken => s.get(n - 1)?,
            };
            let mut v = v.to_vec1::<f32>()?;
            l2_normalize(&mut v);
            out.push(v);
        }
        Ok(out)
    }

    /// Sparse vectors of `texts` over the model's vocabulary (token id, weight), sorted by id.
    pub fn encode_sparse(&self, texts: &[&str]) -> Result<Vec<SparseVector>> {
        let mut out = Vec::with_capacity(texts.len());
        // One text at a time: the logits of a text are [len, vocab].
        for text in texts {
            let (states, lens) = self.states(&[*text])?;
            let s = states.get(0)?.narrow(0, 0, lens[0])?;
            let pooled = self.model.logits(&s)?.max(0)?;
            let weights = pooled.relu()?.affine(1.0, 1.0)?.log()?.to_vec1::<f32>()?;
            out.push(
                weights
                    .into_iter()
                    .enumerate()
                    .filter(|&(_, w)| w > 0.0)
                    .map(|(j, w)| (j as u32, w))
                    .collect(),
            );
        }
        Ok(out)
    }

    /// The token string of `id`.
    pub fn token(&self, id: u32) -> Option<String> {
        self.tokenizer.id_to_token(id)
    }
}

/// Brute-force search over dense, normalised embeddings.
#[derive(Debug, Default)]
pub struct DenseIndex {
    dim: usize,
    vectors: Vec<f32>,
}

impl DenseIndex {
    /// An index of `dim`-dimensional vectors.
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            vectors: Vec::new(),
        }
    }

    /// Adds a vector (its position is its id).
    pub fn push(&mut self, v: &[f32]) -> Result<()> {
        if v.len() != self.dim {
            return Err(EncoderError::InvalidInput(format!(
                "vector of dimension {}, index of {}",
                v.len(),
                self.dim
            )));
        }
        self.vectors.extend_from_slice(v);
        Ok(())
    }

    /// The `k` best ids by dot product, best first (ties by smaller id).
    pub fn search(&self, q: &[f32], k: usize) -> Vec<(usize, f32)> {
        let mut scored: Vec<(usize, f32)> = self
            .vectors
            .chunks_exact(self.dim.max(1))
            .enumerate()
            .map(|(i, v)| (i, v.iter().zip(q).map(|(a, b)| a * b).sum()))
            .collect();
        scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        scored.truncate(k);
        scored
    }
}
