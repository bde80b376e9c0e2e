//! `bmp-index encode`: text to sparse vectors (JSONL).

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use bmp_index::atomic::AtomicFile;
use clap::Args;

use bmp_eval::encode::{encode_corpus, write_vector_line};

use super::encoding::{load_encoder, EncoderArgs};
use super::progress::StageBars;

/// Encode text into sparse vectors.
///
/// Reads a BEIR corpus (`{"_id", "title", "text"}` per line; title optional, so a BEIR
/// queries.jsonl works too), joins title and text as BEIR does, encodes with the SPLADE model
/// (BERT masked-LM: w_j = max over tokens of log(1 + relu(logit_j))) or a decoder LLM's LM head
/// the same way, and writes
/// `{"id": ..., "vector": {"token": weight}}` lines that `build` reads. The output is written
/// atomically.
#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// SPLADE model directory in Hugging Face layout (config.json, model.safetensors,
    /// tokenizer.json), or a decoder LLM: a .gguf file, or a Llama / Mistral / Qwen2 / Qwen3 directory such as
    /// `prune` writes (sparse vectors through its LM head).
    #[arg(long, default_value = super::encoding::DEFAULT_MODEL_DIR)]
    pub model: PathBuf,
    /// BEIR corpus (or queries) JSONL, optionally gzip.
    #[arg(long)]
    pub input: PathBuf,
    /// Output JSONL of sparse vectors.
    #[arg(long)]
    pub output: PathBuf,
    /// Encoder options.
    #[command(flatten)]
    pub encoder: EncoderArgs,
}

/// Runs `encode`.
pub fn run(args: &EncodeArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let encoder = load_encoder(&args.model, &args.encoder)?;
    let mut file = AtomicFile::create(&args.output)?;
    let mut out = BufWriter::new(&mut file);
    let write_err = || format!("cannot write {}", args.output.display());
    let bars = StageBars::default();
    let summary = encode_corpus(&encoder, &args.input, &bars, &mut |doc, vector, _| {
        write_vector_line(&mut out, &encoder, &doc.id, vector)
            .map_err(|e| bmp_eval::Error::io(&args.output, e))
    })?;
    out.flush().with_context(write_err)?;
    drop(out);
    file.commit()?;
    eprintln!(
        "encoded {} documents into {}: {:.1} terms per document, {:.1} docs/s encoding, \
         {:.1} s in all",
        summary.docs,
        args.output.display(),
        summary.postings as f64 / summary.docs.max(1) as f64,
        summary.docs_per_second(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
