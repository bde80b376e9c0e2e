//! Text encoding for the commands that take `--model`: encoder options, corpus and query encoding
//! with progress bars, and the conversion of encoder output into index input.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use bmp_encoder::llm_embed::{LlmEncoder, Pooling};
use bmp_encoder::{
    beir_document_text, prune, DeviceKind, Precision, Pruning, SparseVector, SpladeEncoder,
    SpladeOptions,
};
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
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
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
    fn default() -> Self {
        EncoderArgs {
            batch_size: 32,
            max_length: None,
            doc_top_k: None,
            doc_min_weight: None,
            device: DeviceKind::Cpu,
            dtype: Precision::F32,
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
    /// A short description of the options that change document vectors (cache keys, logs).
    pub fn document_key(&self) -> String {
        let mut key = format!(
            "len{}",
            self.max_length.map_or("max".into(), |n| n.to_string())
        );
        if let Some(k) = self.doc_top_k {
            key.push_str(&format!("-top{k}"));
        }
        if let Some(w) = self.doc_min_weight {
            key.push_str(&format!("-min{w}"));
        }
        if self.dtype != Precision::F32 {
            key.push_str(&format!("-{:?}", self.dtype).to_ascii_lowercase());
        }
        key
    }
}

/// The documents' top-k cut of a decoder LLM's sparse vectors when none is given: its LM head
/// gives most of its 49k-term vocabulary a positive weight.
pub const LLM_DEFAULT_DOC_TOP_K: usize = 256;

/// The model behind a [`TextEncoder`].
enum Backend {
    /// A SPLADE masked-LM.
    Splade(Box<SpladeEncoder>),
    /// A decoder LLM through its LM head, with its vocabulary.
    Llm(Box<LlmEncoder>, Vec<String>),
}

/// A loaded sparse text encoder (a SPLADE model, or a decoder LLM given as a `.gguf` file or a
/// Hugging Face Llama directory): one model for documents and queries, with the document pruning
/// applied to document vectors only.
pub struct TextEncoder {
    model: Backend,
    document_pruning: Pruning,
    batch_size: usize,
    /// Dense document embeddings alongside the sparse vectors (a decoder LLM only).
    dense: Option<Pooling>,
}

impl TextEncoder {
    /// Loads the model at `path`: a SPLADE directory (Hugging Face layout), or a decoder LLM.
    pub fn load(dir: &Path, args: &EncoderArgs) -> anyhow::Result<TextEncoder> {
        let mut document_pruning = Pruning {
            top_k: args.doc_top_k,
            min_weight: args.doc_min_weight,
        };
        document_pruning.validate()?;
        if LlmEncoder::recognizes(dir) {
            if document_pruning.top_k.is_none() {
                document_pruning.top_k = Some(LLM_DEFAULT_DOC_TOP_K);
            }
            let llm = LlmEncoder::load_any(dir, args.max_length.unwrap_or(512))
                .with_context(|| format!("cannot load the model {}", dir.display()))?;
            let vocab = (0..llm.vocab_size() as u32)
                .map(|id| llm.token(id).unwrap_or_else(|| format!("[unused_id_{id}]")))
                .collect();
            return Ok(TextEncoder {
                model: Backend::Llm(Box::new(llm), vocab),
                document_pruning,
                batch_size: args.batch_size as usize,
                dense: None,
            });
        }
        let options = SpladeOptions {
            batch_size: args.batch_size as usize,
            max_length: args.max_length,
            pruning: Pruning::NONE,
            device: args.device,
            dtype: args.dtype,
            ..SpladeOptions::default()
        };
        let hint = if dir == Path::new(DEFAULT_MODEL_DIR) && !dir.exists() {
            " (run scripts/setup-models.sh to fetch the default model)"
        } else {
            ""
        };
        let model = SpladeEncoder::load(dir, options)
            .with_context(|| format!("cannot load the model in {}{hint}", dir.display()))?;
        Ok(TextEncoder {
            model: Backend::Splade(Box::new(model)),
            document_pruning,
            batch_size: args.batch_size as usize,
            dense: None,
        })
    }

    /// What the sparse vectors come from, as result tables name it: `splade`, or `llm-sparse`.
    pub fn label(&self) -> &'static str {
        match &self.model {
            Backend::Splade(_) => "splade",
            Backend::Llm(..) => "llm-sparse",
        }
    }

    /// Also produce dense document embeddings, pooled as `pooling` says, from the same forward
    /// pass as the sparse vectors. Only a decoder LLM has them.
    pub fn enable_dense(&mut self, pooling: Pooling) -> anyhow::Result<()> {
        match &self.model {
            Backend::Llm(..) => {
                self.dense = Some(pooling);
                Ok(())
            }
            Backend::Splade(_) => anyhow::bail!(
                "dense embeddings need a decoder LLM as --model (a .gguf file or a Llama / Qwen2 \
                 directory); a SPLADE model gives sparse vectors only"
            ),
        }
    }

    /// Dense embeddings of query texts (after [`TextEncoder::enable_dense`]), in input order.
    pub fn encode_dense_queries(&self, texts: &[String]) -> anyhow::Result<Vec<Vec<f32>>> {
        let (Backend::Llm(llm, _), Some(pooling)) = (&self.model, self.dense) else {
            anyhow::bail!("dense embeddings are not enabled for this model");
        };
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        Ok(llm.encode_dense(&refs, pooling, self.batch_size)?)
    }

    /// The token string of vocabulary id `id`.
    pub fn token(&self, id: u32) -> &str {
        match &self.model {
            Backend::Splade(m) => m.token(id).unwrap_or("[UNK]"),
            Backend::Llm(_, vocab) => vocab.get(id as usize).map_or("[UNK]", String::as_str),
        }
    }

    /// Sparse vectors of an LLM, and its dense embeddings when `pooling` is given (otherwise
    /// none), from one pass in chunks of a few batches, with progress.
    fn llm_vectors(
        llm: &LlmEncoder,
        texts: &[String],
        batch: usize,
        pooling: Option<Pooling>,
        progress: &mut dyn FnMut(usize),
    ) -> anyhow::Result<(Vec<SparseVector>, Vec<Vec<f32>>)> {
        let mut sparse = Vec::with_capacity(texts.len());
        let mut dense = Vec::new();
        // Each call sorts its texts by length into batches.
        for chunk in texts.chunks(batch.max(1) * 4) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            match pooling {
                None => sparse.extend(llm.encode_sparse(&refs, batch)?),
                Some(pooling) => {
                    for (s, d) in llm.encode_sparse_and_dense(&refs, pooling, batch)? {
                        sparse.push(s);
                        dense.push(d);
                    }
                }
            }
            progress(chunk.len());
        }
        Ok((sparse, dense))
    }

    /// Encodes document texts in input order: the sparse vectors (pruned as asked), and the
    /// dense embeddings when enabled (otherwise none).
    pub fn encode_documents(
        &self,
        texts: &[String],
        progress: &mut dyn FnMut(usize),
    ) -> anyhow::Result<(Vec<SparseVector>, Vec<Vec<f32>>)> {
        let (mut vectors, dense) = match &self.model {
            Backend::Splade(m) => (m.encode_batch_with_progress(texts, progress)?, Vec::new()),
            Backend::Llm(llm, _) => {
                Self::llm_vectors(llm, texts, self.batch_size, self.dense, progress)?
            }
        };
        for vector in &mut vectors {
            prune(vector, &self.document_pruning);
        }
        Ok((vectors, dense))
    }

    /// Encodes query texts (never pruned), in input order.
    pub fn encode_queries(&self, texts: &[String]) -> anyhow::Result<Vec<SparseVector>> {
        match &self.model {
            Backend::Splade(m) => Ok(m.encode_queries(texts)?),
            Backend::Llm(llm, _) => {
                Ok(Self::llm_vectors(llm, texts, self.batch_size, None, &mut |_| {})?.0)
            }
        }
    }

    /// The `(term, weight)` entries of a vector, as the index and the query parser take them.
    pub fn entries(&self, vector: &[(u32, f32)]) -> Vec<(String, f32)> {
        vector
            .iter()
            .map(|&(t, w)| (self.token(t).to_owned(), w))
            .collect()
    }
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
