//! Tokenization with a model's `tokenizer.json` (no network).

use std::path::{Path, PathBuf};

use tokenizers::{
    PostProcessor, Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy,
};

use crate::error::{EncoderError, Result};

/// A `tokenizer.json` tokenizer that truncates at a fixed length and never pads (batches are
/// padded by the model runner, per batch).
pub(crate) struct TextTokenizer {
    inner: Tokenizer,
    max_length: usize,
}

impl TextTokenizer {
    /// Loads `path` and sets truncation to `max_length` tokens, special tokens included.
    pub(crate) fn load(path: &Path, max_length: usize) -> Result<Self> {
        let tokenizer_error = |message: String| EncoderError::Tokenizer {
            path: PathBuf::from(path),
            message,
        };
        let mut inner = Tokenizer::from_file(path).map_err(|e| tokenizer_error(e.to_string()))?;
        let special = inner
            .get_post_processor()
            .map_or(0, |p| p.added_tokens(false));
        if max_length <= special {
            return Err(EncoderError::InvalidOption {
                option: "max_length",
                message: format!(
                    "{max_length} leaves no room for text: the tokenizer adds {special} special tokens"
                ),
            });
        }
        inner
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| tokenizer_error(e.to_string()))?;
        inner.with_padding(None);
        Ok(Self { inner, max_length })
    }

    /// The truncation length, special tokens included.
    pub(crate) fn max_length(&self) -> usize {
        self.max_length
    }

    /// Token ids of each text, special tokens added, truncated; in input order.
    pub(crate) fn tokenize(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        let encodings = self
            .inner
            .encode_batch_fast(texts.to_vec(), true)
            .map_err(|e| EncoderError::Tokenize(e.to_string()))?;
        Ok(encodings
            .into_iter()
            .map(|e| e.get_ids().to_vec())
            .collect())
    }

    /// Token ids of each text with a flag per token that is true for special tokens (`[CLS]`,
    /// `[SEP]` and the like); truncated, in input order.
    pub(crate) fn tokenize_marking_special(
        &self,
        texts: &[&str],
    ) -> Result<Vec<(Vec<u32>, Vec<bool>)>> {
        let encodings = self
            .inner
            .encode_batch_fast(texts.to_vec(), true)
            .map_err(|e| EncoderError::Tokenize(e.to_string()))?;
        Ok(encodings
            .into_iter()
            .map(|e| {
                let special = e
                    .get_special_tokens_mask()
                    .iter()
                    .map(|&m| m != 0)
                    .collect();
                (e.get_ids().to_vec(), special)
            })
            .collect())
    }

    /// The token string of every id in `0..size`; ids the tokenizer does not know get
    /// `[unused_id_N]` so that every entry is distinct.
    pub(crate) fn vocabulary(&self, size: usize) -> Vec<String> {
        (0..size)
            .map(|id| {
                u32::try_from(id)
                    .ok()
                    .and_then(|id| self.inner.id_to_token(id))
                    .unwrap_or_else(|| format!("[unused_id_{id}]"))
            })
            .collect()
    }
}
