//! Per-token embeddings for multi-vector (ColBERT-style) scoring.
//!
//! [`TokenEncoder`] runs a BERT-family encoder (`BertModel` weights with or without a `bert.`
//! prefix, e.g. all-MiniLM-L6-v2) and returns, for each text, one vector per real token: the last
//! hidden state, passed through the checkpoint's linear projection when it has one (ColBERT's
//! `linear.weight`, `[dim, hidden]`), L2-normalised. Special tokens (`[CLS]`, `[SEP]`) and padding
//! are dropped.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::BertModel;

use crate::batching::{length_sorted_batches, pad_batch};
use crate::config::read_bert_config;
use crate::device::{open_device, DeviceKind, Precision};
use crate::error::{EncoderError, Result};
use crate::model_dir::ModelDir;
use crate::tokenizer::TextTokenizer;

/// The name of a ColBERT-style projection in the checkpoint (`[dim, hidden]`, no bias).
pub const PROJECTION_WEIGHT: &str = "linear.weight";

/// Where `scripts/setup-models.sh` puts the default token model (all-MiniLM-L6-v2), relative to
/// the working directory.
pub const DEFAULT_TOKEN_MODEL: &str = "models/minilm-l6";

/// How a [`TokenEncoder`] is loaded and run.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenEncoderOptions {
    /// Texts per forward pass (default 32).
    pub batch_size: usize,
    /// Truncation length in tokens, special tokens included (default 256; at most the model's
    /// `max_position_embeddings`).
    pub max_length: usize,
    /// Where the model runs (default: CPU).
    pub device: DeviceKind,
}

impl Default for TokenEncoderOptions {
    fn default() -> Self {
        Self {
            batch_size: 32,
            max_length: 256,
            device: DeviceKind::Cpu,
        }
    }
}

/// The token vectors of one text: `len()` vectors of `dim` floats, row after row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenVectors {
    /// Floats per vector.
    pub dim: usize,
    /// The vectors, row-major.
    pub data: Vec<f32>,
}

impl TokenVectors {
    /// An empty set of `dim`-dimensional vectors.
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            data: Vec::new(),
        }
    }

    /// Number of vectors.
    pub fn len(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    /// Whether there is no vector.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Vector `i`.
    ///
    /// # Panics
    /// If `i >= self.len()`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// Iterates over the vectors.
    pub fn rows(&self) -> impl Iterator<Item = &[f32]> {
        self.data.chunks_exact(self.dim.max(1))
    }

    /// Appends a vector.
    ///
    /// # Panics
    /// If its length is not `dim`.
    pub fn push(&mut self, v: &[f32]) {
        assert_eq!(v.len(), self.dim, "vector of the wrong dimension");
        self.data.extend_from_slice(v);
    }
}

/// Scales `v` to unit length (left as is when it is zero).
pub fn l2_normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// A BERT-family encoder producing one normalised vector per real token.
pub struct TokenEncoder {
    bert: BertModel,
    projection: Option<Tensor>,
    tokenizer: TextTokenizer,
    device: Device,
    pad_token_id: u32,
    dim: usize,
    options: TokenEncoderOptions,
}

impl std::fmt::Debug for TokenEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenEncoder")
            .field("dim", &self.dim)
            .field("projection", &self.projection.is_some())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl TokenEncoder {
    /// Loads a model directory in Hugging Face layout (`config.json`, `model.safetensors`,
    /// `tokenizer.json`). Nothing is downloaded.
    pub fn load(dir: impl AsRef<Path>, options: TokenEncoderOptions) -> Result<Self> {
        let files = ModelDir::open(dir)?;
        if options.batch_size == 0 {
            return Err(EncoderError::InvalidOption {
                option: "batch_size",
                message: "must be at least 1".into(),
            });
        }
        let (device, dtype) = open_device(options.device, Precision::F32)?;
        let config = read_bert_config(&files.config)?;
        if options.max_length > config.max_position_embeddings {
            return Err(EncoderError::InvalidOption {
                option: "max_length",
                message: format!(
                    "{} exceeds the model's max_position_embeddings {} (from {})",
                    options.max_length,
                    config.max_position_embeddings,
                    files.config.display()
                ),
            });
        }
        let tokenizer = TextTokenizer::load(&files.tokenizer, options.max_length)?;
        let weights_error = |source| EncoderError::Weights {
            path: files.weights.clone(),
            error: source,
        };
        // SAFETY: the file is memory-mapped read-only; it must not be modified while the model
        // loads (tensors are copied out of the map).
        let tensors = unsafe { candle_core::safetensors::MmapedSafetensors::new(&files.weights) }
            .map_err(weights_error)?;
        let projection = match tensors.load(PROJECTION_WEIGHT, &device) {
            Ok(w) => Some(w.to_dtype(dtype).map_err(weights_error)?),
            Err(_) => None,
        };
        let vb = VarBuilder::from_backend(Box::new(tensors), dtype, device.clone());
        let bert = BertModel::load(vb, &config).map_err(weights_error)?;
        let dim = match &projection {
            None => config.hidden_size,
            Some(w) => {
                let (out, hidden) = w.dims2().map_err(weights_error)?;
                if hidden != config.hidden_size {
                    return Err(EncoderError::InvalidInput(format!(
                        "{}: {PROJECTION_WEIGHT} is [{out}, {hidden}], expected [dim, {}]",
                        files.weights.display(),
                        config.hidden_size
                    )));
                }
                out
            }
        };
        let pad_token_id = u32::try_from(config.pad_token_id).map_err(|_| {
            EncoderError::InvalidInput(format!("pad_token_id {} too large", config.pad_token_id))
        })?;
        Ok(Self {
            bert,
            projection,
            tokenizer,
            device,
            pad_token_id,
            dim,
            options,
        })
    }

    /// Floats per token vector.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Whether the checkpoint has a linear projection after the transformer.
    pub fn has_projection(&self) -> bool {
        self.projection.is_some()
    }

    /// The options in effect.
    pub fn options(&self) -> &TokenEncoderOptions {
        &self.options
    }

    /// The token vectors of each text, in input order. A text with no real token (empty after
    /// tokenization) gets no vector.
    pub fn encode<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<TokenVectors>> {
        let refs: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        let tokens = self.tokenizer.tokenize_marking_special(&refs)?;
        let lens: Vec<usize> = tokens.iter().map(|(ids, _)| ids.len()).collect();
        let mut out = vec![TokenVectors::new(self.dim); texts.len()];
        for batch in length_sorted_batches(&lens, self.options.batch_size) {
            let seqs: Vec<&(Vec<u32>, Vec<bool>)> = batch.iter().map(|&i| &tokens[i]).collect();
            let vectors = self.forward(&seqs)?;
            for (i, v) in batch.into_iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// One padded forward pass; returns the kept tokens' vectors of each sequence.
    fn forward(&self, seqs: &[&(Vec<u32>, Vec<bool>)]) -> Result<Vec<TokenVectors>> {
        let b = seqs.len();
        let max_len = seqs.iter().map(|(ids, _)| ids.len()).max().unwrap_or(0);
        if b == 0 || max_len == 0 {
            return Ok(vec![TokenVectors::new(self.dim); b]);
        }
        let ids: Vec<&[u32]> = seqs.iter().map(|(ids, _)| ids.as_slice()).collect();
        let (ids, mask, _) = pad_batch(&ids, self.pad_token_id, &self.device)?;
        let type_ids = ids.zeros_like()?;
        let hidden = self.bert.forward(&ids, &type_ids, Some(&mask))?;
        let hidden = match &self.projection {
            None => hidden,
            Some(w) => hidden.broadcast_matmul(&w.t()?)?,
        };
        let hidden = hidden.to_dtype(DType::F32)?.to_vec3::<f32>()?;
        Ok(seqs
            .iter()
            .zip(hidden)
            .map(|((seq, special), rows)| {
                let mut v = TokenVectors::new(self.dim);
                for (row, &is_special) in rows.into_iter().zip(special).take(seq.len()) {
                    if !is_special {
                        let at = v.data.len();
                        v.data.extend_from_slice(&row);
                        l2_normalize(&mut v.data[at..]);
                    }
                }
                v
            })
            .collect())
    }
}
