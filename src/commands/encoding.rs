//! The encoder options of the commands that take `--model`, and loading the model they name.
//! Encoding itself is `bmp_eval::encode`'s.

use std::path::Path;

use anyhow::Context;
pub use bmp_encoder::TextEncoder;
use bmp_encoder::{DeviceKind, Precision, TextEncoderOptions};
use clap::Args;

/// The directory `--model` defaults to: the SPLADE model that `scripts/setup-models.sh` unpacks.
pub const DEFAULT_MODEL_DIR: &str = "models/splade-tiny";

/// Options of the SPLADE encoder.
#[derive(Debug, Clone, Args)]
pub struct EncoderArgs {
    /// Texts per forward pass.
    #[arg(long, default_value_t = TextEncoderOptions::default().batch_size as u32, value_parser = clap::value_parser!(u32).range(1..))]
    pub batch_size: u32,
    /// Truncation length in tokens, special tokens included (default: the model's maximum).
    #[arg(long)]
    pub max_length: Option<usize>,
    /// Keep only the N heaviest terms of each document vector (queries are never pruned); a
    /// decoder LLM model (a .gguf file or a Llama directory) defaults to 256.
    #[arg(long)]
    pub doc_top_k: Option<usize>,
    /// Drop document terms whose weight is below this floor (queries are never pruned).
    #[arg(long)]
    pub doc_min_weight: Option<f32>,
    /// Where the model runs: cpu, cuda or cuda:N (cuda needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    pub device: DeviceKind,
    /// Precision of weights and activations: f32, or f16 / bf16 on cuda.
    #[arg(long, default_value = "f32", value_parser = parse_precision)]
    pub dtype: Precision,
    /// Text put before every query (not documents) before encoding, as instruction-tuned
    /// embedders expect: e.g. Qwen3-Embedding's `"Instruct: Given a web search query, retrieve
    /// relevant passages that answer the query\nQuery:"`.
    #[arg(long)]
    pub query_instruction: Option<String>,
    /// Keep only the first N dimensions of dense embeddings (`eval --dense`), L2-normalized
    /// again: Matryoshka truncation, for models trained for it (Qwen3-Embedding).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub dense_dim: Option<u32>,
}

impl Default for EncoderArgs {
    /// The encoder's own defaults ([`TextEncoderOptions::default`]).
    fn default() -> Self {
        let o = TextEncoderOptions::default();
        EncoderArgs {
            batch_size: u32::try_from(o.batch_size).unwrap_or(u32::MAX),
            max_length: o.max_length,
            doc_top_k: o.doc_top_k,
            doc_min_weight: o.doc_min_weight,
            device: o.device,
            dtype: o.dtype,
            query_instruction: o.query_instruction,
            dense_dim: o.dense_dim.map(|d| u32::try_from(d).unwrap_or(u32::MAX)),
        }
    }
}

/// Parses a `--device` value.
pub fn parse_device(s: &str) -> Result<DeviceKind, String> {
    s.parse()
        .map_err(|e: bmp_encoder::EncoderError| e.to_string())
}

/// Parses a `--dtype` value.
pub fn parse_precision(s: &str) -> Result<Precision, String> {
    s.parse()
        .map_err(|e: bmp_encoder::EncoderError| e.to_string())
}

impl EncoderArgs {
    /// The encoder options these arguments give.
    pub fn options(&self) -> TextEncoderOptions {
        TextEncoderOptions {
            batch_size: self.batch_size as usize,
            max_length: self.max_length,
            doc_top_k: self.doc_top_k,
            doc_min_weight: self.doc_min_weight,
            device: self.device,
            dtype: self.dtype,
            query_instruction: self.query_instruction.clone(),
            dense_dim: self.dense_dim.map(|d| d as usize),
        }
    }
}

/// Loads the text encoder at `dir` (a SPLADE directory, or a decoder LLM) with these options;
/// the error names the model (and, for a missing directory, how to fetch the bundled models).
pub fn load_encoder(dir: &Path, args: &EncoderArgs) -> anyhow::Result<TextEncoder> {
    TextEncoder::load(dir, &args.options())
        .with_context(|| format!("cannot load the model in {}", dir.display()))
}
