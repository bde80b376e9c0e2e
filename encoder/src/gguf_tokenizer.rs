//! A GPT-2 style byte-level BPE tokenizer built from a GGUF file's metadata
//! (`tokenizer.ggml.tokens` and `tokenizer.ggml.merges`), for models shipped without a
//! `tokenizer.json`.
//!
//! Pre-tokenization splits digits one by one, then applies the byte-level split (GPT-2's regex,
//! no added prefix space), as SmolLM2's own tokenizer does; the model is the file's BPE vocabulary
//! and merges. Special tokens (`tokenizer.ggml.token_type` 3) are registered so that they are
//! never split.

use std::path::Path;

use ahash::AHashMap;

use candle_core::quantized::gguf_file;
use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use crate::error::{EncoderError, Result};

/// Builds the tokenizer of the GGUF file at `path`.
pub fn gguf_tokenizer(path: &Path) -> Result<Tokenizer> {
    let bad = |message: String| EncoderError::Tokenizer {
        path: path.to_path_buf(),
        message,
    };
    let mut file = std::fs::File::open(path).map_err(|error| EncoderError::Io {
        path: path.to_path_buf(),
        error,
    })?;
    let content = gguf_file::Content::read(&mut file).map_err(|error| EncoderError::Weights {
        path: path.to_path_buf(),
        error,
    })?;
    let model = content
        .metadata
        .get("tokenizer.ggml.model")
        .and_then(|v| v.to_string().ok())
        .cloned()
        .unwrap_or_default();
    if model != "gpt2" {
        return Err(bad(format!(
            "tokenizer.ggml.model is {model:?}; only byte-level BPE (\"gpt2\") is supported"
        )));
    }
    let strings = |key: &str| -> Result<Vec<String>> {
        let values = content
            .metadata
            .get(key)
            .ok_or_else(|| bad(format!("no {key} in the metadata")))?
            .to_vec()
            .map_err(|e| bad(format!("{key}: {e}")))?;
        values
            .iter()
            .map(|v| {
                v.to_string()
                    .cloned()
                    .map_err(|e| bad(format!("{key}: {e}")))
            })
            .collect()
    };
    let tokens = strings("tokenizer.ggml.tokens")?;
    let merges = strings("tokenizer.ggml.merges")?
        .into_iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| bad(format!("merge {m:?} is not two tokens")))
        })
        .collect::<Result<Vec<_>>>()?;
    let vocab: AHashMap<String, u32> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| bad(e.to_string()))?;
    let mut tokenizer = Tokenizer::new(bpe);
    tokenizer.with_pre_tokenizer(Some(PreTokenizerWrapper::Sequence(Sequence::new(vec![
        PreTokenizerWrapper::Digits(Digits::new(true)),
        PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
    ]))));
    tokenizer.with_decoder(Some(ByteLevel::default()));
    let types: Vec<i32> = match content.metadata.get("tokenizer.ggml.token_type") {
        Some(v) => v
            .to_vec()
            .map_err(|e| bad(e.to_string()))?
            .iter()
            .map(|t| t.to_i32().unwrap_or(1))
            .collect(),
        None => Vec::new(),
    };
    let special: Vec<AddedToken> = tokens
        .iter()
        .zip(&types)
        .filter(|(_, &t)| t == 3)
        .map(|(s, _)| AddedToken::from(s.clone(), true))
        .collect();
    tokenizer
        .add_special_tokens(special)
        .map_err(|e| bad(e.to_string()))?;
    Ok(tokenizer)
}
