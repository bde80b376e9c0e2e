//! `bmp-index multivec`: multi-vector stores beside an index (token embeddings of each document,
//! reduced CRISP-style), and the pieces `eval` shares to rerank with them.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use bmp_encoder::{
    beir_document_text, ClusterSpec, DeviceKind, TokenEncoder, TokenEncoderOptions, TokenVectors,
};
use bmp_eval::{CorpusReader, Document};
use bmp_index::multivec::{MultiVecStore, MultiVecWriter};
use bmp_index::{ExternalIds, Index};
use clap::Args;

use super::encoding::{count_documents, parse_device, CHUNK_DOCS};
use super::progress::count_bar;

/// The k-means seed of every query: a query's vectors depend on its text alone, not on where it
/// stands in a file or a batch.
pub const QUERY_SEED: u64 = 0;

/// Where scripts/setup-models.sh puts all-MiniLM-L6-v2.
pub const DEFAULT_TOKEN_MODEL: &str = "models/minilm-l6";

/// The token-embedding model of the multi-vector stage.
#[derive(Debug, Clone, Args)]
pub struct TokenModelArgs {
    /// BERT-family model directory for token embeddings (config.json, model.safetensors,
    /// tokenizer.json; a ColBERT-style `linear.weight` projection is applied when present).
    #[arg(long, default_value = DEFAULT_TOKEN_MODEL)]
    pub token_model: PathBuf,
    /// Truncation length of the token model, special tokens included.
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(3..))]
    pub token_max_length: u32,
    /// Texts per forward pass of the token model.
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub token_batch_size: u32,
    /// Where the token model runs: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    pub token_device: DeviceKind,
}

impl Default for TokenModelArgs {
    fn default() -> Self {
        Self {
            token_model: PathBuf::from(DEFAULT_TOKEN_MODEL),
            token_max_length: 256,
            token_batch_size: 32,
            token_device: DeviceKind::Cpu,
        }
    }
}

impl TokenModelArgs {
    /// Loads the model.
    pub fn load(&self) -> anyhow::Result<TokenEncoder> {
        TokenEncoder::load(
            &self.token_model,
            TokenEncoderOptions {
                batch_size: self.token_batch_size as usize,
                max_length: self.token_max_length as usize,
                device: self.token_device,
            },
        )
        .with_context(|| format!("cannot load token model {}", self.token_model.display()))
    }

    /// A name for cache keys: the model directory's name and the truncation length.
    pub fn key(&self) -> String {
        let name = self
            .token_model
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "tokens".into());
        format!("{name}.len{}", self.token_max_length)
    }
}

/// Parses one clustering spec for clap.
pub fn parse_clusters(s: &str) -> Result<ClusterSpec, String> {
    s.parse()
}

/// Build multi-vector stores (token embeddings, CRISP-reduced) beside an index.
///
/// Every document of a BEIR corpus that the index holds is embedded token by token with
/// --token-model and reduced per --clusters, one store per spec. Specs: none (every token), CqxD (k-means into q query / D document centroids, e.g. C4x8,
/// C8x32), Cp (k-means into p% of the length, e.g. C25), Kn (every n-th token), tail / tailQxD
/// (the last Q / D tokens). Stores are written to OUTPUT/<spec>.mvec, f16, checksummed, tied to
/// the index (a store built for another index is refused).
#[derive(Debug, Args)]
pub struct MultivecArgs {
    /// The sparse index the stores go with (documents are matched by external id).
    #[arg(long)]
    pub index: PathBuf,
    /// BEIR corpus.jsonl with the documents' text.
    #[arg(long)]
    pub corpus: PathBuf,
    /// Clustering specs, comma-separated.
    #[arg(long, default_value = "C8x32", value_delimiter = ',', value_parser = parse_clusters)]
    pub clusters: Vec<ClusterSpec>,
    /// Output directory.
    #[arg(long)]
    pub output: PathBuf,
    /// The token model.
    #[command(flatten)]
    pub token: TokenModelArgs,
}

/// What building one store wrote.
#[derive(Debug, Clone)]
pub struct StoreSummary {
    /// The spec.
    pub spec: String,
    /// Documents with vectors.
    pub docs: u64,
    /// Vectors over all documents.
    pub vectors: u64,
    /// File size.
    pub bytes: u64,
}

/// The store file of `spec` in `dir`.
pub fn store_path(dir: &Path, spec: &ClusterSpec) -> PathBuf {
    dir.join(format!("{spec}.mvec"))
}

/// Runs `multivec`.
pub fn run(args: &MultivecArgs) -> anyhow::Result<()> {
    let index = Index::open(&args.index)?;
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("cannot create {}", args.output.display()))?;
    let encoder = args.token.load()?;
    let paths: Vec<PathBuf> = args
        .clusters
        .iter()
        .map(|s| store_path(&args.output, s))
        .collect();
    let start = Instant::now();
    let summaries = build_stores(&index, &args.corpus, &encoder, &args.clusters, &paths)?;
    eprintln!("built in {:.1} s", start.elapsed().as_secs_f64());
    println!(
        "{:<10} {:>10} {:>12} {:>10} {:>14}  path",
        "clusters", "docs", "vectors", "per_doc", "bytes"
    );
    for (s, p) in summaries.iter().zip(&paths) {
        println!(
            "{:<10} {:>10} {:>12} {:>10.1} {:>14}  {}",
            s.spec,
            s.docs,
            s.vectors,
            s.vectors as f64 / s.docs.max(1) as f64,
            s.bytes,
            p.display()
        );
    }
    Ok(())
}

/// Embeds every document of `corpus` found in `index` once and writes one store per spec to the
/// matching path. k-means is seeded with the internal doc id, so a store is reproducible.
pub fn build_stores(
    index: &Index,
    corpus: &Path,
    encoder: &TokenEncoder,
    specs: &[ClusterSpec],
    paths: &[PathBuf],
) -> anyhow::Result<Vec<StoreSummary>> {
    let ids = ExternalIds::build(index)?;
    let dim = u32::try_from(encoder.dim()).context("token dimension too large")?;
    let mut writers = specs
        .iter()
        .zip(paths)
        .map(|(s, p)| {
            MultiVecWriter::create(p, dim, index.num_docs(), index.header().checksum, s.name())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut summaries: Vec<StoreSummary> = specs
        .iter()
        .map(|s| StoreSummary {
            spec: s.to_string(),
            docs: 0,
            vectors: 0,
            bytes: 0,
        })
        .collect();
    let bar = count_bar(count_documents(corpus)?, "token embeddings");
    let mut unknown = 0u64;
    let mut seen = vec![false; index.num_docs() as usize];
    let mut chunk: Vec<(u32, Document)> = Vec::with_capacity(CHUNK_DOCS);
    let mut flush = |chunk: &mut Vec<(u32, Document)>| -> anyhow::Result<()> {
        let texts: Vec<String> = chunk
            .iter()
            .map(|(_, d)| beir_document_text(&d.title, &d.text))
            .collect();
        for (part, texts) in chunk.chunks(256).zip(texts.chunks(256)) {
            let vectors = encoder.encode(texts)?;
            for ((doc, _), v) in part.iter().zip(&vectors) {
                for ((spec, w), summary) in specs.iter().zip(&mut writers).zip(&mut summaries) {
                    let reduced = spec.doc.apply(v, u64::from(*doc));
                    w.add(*doc, &reduced.data)?;
                    summary.docs += u64::from(!reduced.is_empty());
                    summary.vectors += reduced.len() as u64;
                }
            }
            bar.inc(part.len() as u64);
        }
        chunk.clear();
        Ok(())
    };
    for doc in CorpusReader::open(corpus)? {
        let doc = doc?;
        match ids.find(index, &doc.id)? {
            Some(internal) if !seen[internal as usize] => {
                seen[internal as usize] = true;
                chunk.push((internal, doc));
            }
            Some(_) => anyhow::bail!("{}: document {:?} appears twice", corpus.display(), doc.id),
            None => {
                unknown += 1;
                bar.inc(1);
            }
        }
        if chunk.len() == CHUNK_DOCS {
            flush(&mut chunk)?;
        }
    }
    flush(&mut chunk)?;
    bar.finish_and_clear();
    if unknown > 0 {
        eprintln!(
            "note: {unknown} documents of {} are not in the index and were skipped",
            corpus.display()
        );
    }
    for ((w, summary), path) in writers.into_iter().zip(&mut summaries).zip(paths) {
        w.finish()?;
        summary.bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    }
    Ok(summaries)
}

/// Opens a store and checks it belongs to `index`.
pub fn open_store(path: &Path, index: &Index) -> anyhow::Result<MultiVecStore> {
    let store = MultiVecStore::open(path)?;
    store.check_matches(index)?;
    Ok(store)
}

/// Opens the store at `path` for `index` with the clustering spec it was built with, and loads
/// the token model, which must make vectors of the store's dimension.
pub fn open_rerank_stage(
    path: &Path,
    index: &Index,
    token: &TokenModelArgs,
) -> anyhow::Result<(MultiVecStore, ClusterSpec, TokenEncoder)> {
    let store = open_store(path, index)?;
    let spec: ClusterSpec = store
        .name()
        .parse()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let encoder = token.load()?;
    if encoder.dim() != store.dim() {
        anyhow::bail!(
            "{}: vectors of dimension {}, but {} makes {}",
            path.display(),
            store.dim(),
            token.token_model.display(),
            encoder.dim()
        );
    }
    Ok((store, spec, encoder))
}

/// The raw token vectors of each query text (reduced later, per spec).
pub fn embed_queries(
    encoder: &TokenEncoder,
    texts: &[String],
) -> anyhow::Result<Vec<TokenVectors>> {
    Ok(encoder.encode(texts)?)
}
