//! Text encoding for the commands that take `--model`: encoder options, corpus and query encoding
//! with progress bars, and the conversion of encoder output into index input.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
pub use bmp_encoder::TextEncoder;
use bmp_encoder::{beir_document_text, DeviceKind, Precision, SparseVector, TextEncoderOptions};
use bmp_eval::{CorpusReader, Document, Query, QueryReader};
use bmp_index::readers::SparseRecord;
use bmp_index::Collection;
use clap::Args;

use super::progress::count_bar;

/// Documents encoded per chunk: long enough for length sorting to remove most padding, short
/// enough to keep memory bounded.
pub const CHUNK_DOCS: usize = 2048;

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
        }
    }

    /// A short description of the options that change document vectors (cache keys, logs).
    pub fn document_key(&self) -> String {
        self.options().document_key()
    }
}

/// Loads the text encoder at `dir` (a SPLADE directory, or a decoder LLM) with these options;
/// the error names the model (and, for a missing directory, how to fetch the bundled models).
pub fn load_encoder(dir: &Path, args: &EncoderArgs) -> anyhow::Result<TextEncoder> {
    TextEncoder::load(dir, &args.options())
        .with_context(|| format!("cannot load the model in {}", dir.display()))
}

/// What encoding a corpus took.
#[derive(Debug, Clone, Copy, Default)]
pub struct EncodeSummary {
    /// Documents encoded.
    pub docs: usize,
    /// Seconds spent encoding (reading and writing excluded).
    pub encode_seconds: f64,
    /// Non-zero terms over all document vectors.
    pub postings: usize,
}

impl EncodeSummary {
    /// Documents per second of encoding.
    pub fn docs_per_second(&self) -> f64 {
        self.docs as f64 / self.encode_seconds.max(1e-9)
    }
}

/// Counts the documents of a BEIR corpus (for the progress bar), reading it once.
pub fn count_documents(path: &Path) -> anyhow::Result<u64> {
    let mut n = 0u64;
    for doc in CorpusReader::open(path)? {
        doc?;
        n += 1;
    }
    Ok(n)
}

/// What receives each encoded document: the document, its sparse vector, and its dense
/// embedding when the encoder makes one.
pub type DocumentSink<'a> =
    dyn FnMut(&Document, &SparseVector, Option<&[f32]>) -> anyhow::Result<()> + 'a;

/// Encodes the BEIR corpus (`{"_id", "title", "text"}` lines) at `path` chunk by chunk, calling
/// `sink(document, vector, dense)` for each document in corpus order (`dense` when the encoder
/// makes dense embeddings too). A progress bar shows docs/s.
pub fn encode_corpus(
    encoder: &TextEncoder,
    path: &Path,
    sink: &mut DocumentSink<'_>,
) -> anyhow::Result<EncodeSummary> {
    let total = count_documents(path)?;
    let bar = count_bar(total, "encoding");
    let mut summary = EncodeSummary::default();
    let mut chunk: Vec<Document> = Vec::with_capacity(CHUNK_DOCS);
    let mut flush = |chunk: &mut Vec<Document>, summary: &mut EncodeSummary| {
        if chunk.is_empty() {
            return Ok::<(), anyhow::Error>(());
        }
        let texts: Vec<String> = chunk
            .iter()
            .map(|d| beir_document_text(&d.title, &d.text))
            .collect();
        let start = Instant::now();
        let (vectors, dense) = encoder.encode_documents(&texts, &mut |n| bar.inc(n as u64))?;
        summary.encode_seconds += start.elapsed().as_secs_f64();
        for (i, (doc, vector)) in chunk.iter().zip(&vectors).enumerate() {
            summary.docs += 1;
            summary.postings += vector.len();
            sink(doc, vector, dense.get(i).map(Vec::as_slice))?;
        }
        chunk.clear();
        Ok(())
    };
    for doc in CorpusReader::open(path)? {
        chunk.push(doc?);
        if chunk.len() == CHUNK_DOCS {
            flush(&mut chunk, &mut summary)?;
        }
    }
    flush(&mut chunk, &mut summary)?;
    bar.finish_and_clear();
    if summary.docs == 0 {
        anyhow::bail!("{}: no documents in the corpus", path.display());
    }
    Ok(summary)
}

/// Encodes a BEIR corpus straight into a collection (empty vectors included, so every document
/// keeps its id).
pub fn encode_corpus_into(
    encoder: &TextEncoder,
    path: &Path,
    collection: &mut Collection,
) -> anyhow::Result<EncodeSummary> {
    let mut term_of_token: Vec<Option<u32>> = Vec::new();
    let mut entries: Vec<(u32, f32)> = Vec::new();
    encode_corpus(encoder, path, &mut |doc, vector, _| {
        entries.clear();
        for &(token, w) in vector {
            let slot = token as usize;
            if term_of_token.len() <= slot {
                term_of_token.resize(slot + 1, None);
            }
            let term = *term_of_token[slot]
                .get_or_insert_with(|| collection.intern_term(encoder.token(token)));
            entries.push((term, w));
        }
        collection
            .add_document(&doc.id, &entries)
            .map_err(|e| anyhow::anyhow!("{}: document {:?}: {e}", path.display(), doc.id))?;
        Ok(())
    })
}

/// Reads text queries (BEIR queries.jsonl: `{"_id", "text"}`) and encodes them.
pub fn encode_query_file(encoder: &TextEncoder, path: &Path) -> anyhow::Result<Vec<SparseRecord>> {
    let queries = QueryReader::open(path)?.collect::<Result<Vec<_>, _>>()?;
    encode_queries(encoder, &queries)
}

/// Encodes text queries into records the query parser takes.
pub fn encode_queries(
    encoder: &TextEncoder,
    queries: &[Query],
) -> anyhow::Result<Vec<SparseRecord>> {
    let texts: Vec<String> = queries.iter().map(|q| q.text.clone()).collect();
    let vectors = encoder.encode_queries(&texts)?;
    Ok(queries
        .iter()
        .zip(&vectors)
        .map(|(q, v)| SparseRecord {
            id: q.id.clone(),
            entries: encoder.entries(v),
        })
        .collect())
}

/// Writes one JSONL line `{"id": ..., "vector": {"term": weight, ...}}`.
pub fn write_vector_line(
    out: &mut impl Write,
    encoder: &TextEncoder,
    id: &str,
    vector: &[(u32, f32)],
) -> std::io::Result<()> {
    bmp_index::synth::write_jsonl_line(out, id, vector, |t| encoder.token(t))
}
