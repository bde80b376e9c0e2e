//! `bmp-index multivec`: multi-vector stores beside an index (token embeddings of each document,
//! reduced CRISP-style), and the token-model options that `eval`, `search` and `serve` share.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
pub use bmp_encoder::token_embed::DEFAULT_TOKEN_MODEL;
use bmp_encoder::{ClusterSpec, DeviceKind, TokenEncoder, TokenEncoderOptions};
use bmp_eval::multivec::{build_stores, open_rerank_store, store_path};
use bmp_eval::pipeline::MultiVectorRerank;
use bmp_index::multivec::MultiVecStore;
use bmp_index::Index;
use clap::Args;

use super::encoding::parse_device;
use super::progress::StageBars;

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
    /// The model and its options as the multi-vector stage of an evaluation takes them.
    pub fn rerank(&self, clusters: Vec<ClusterSpec>, depth: usize) -> MultiVectorRerank {
        MultiVectorRerank {
            model: self.token_model.clone(),
            options: TokenEncoderOptions {
                batch_size: self.token_batch_size as usize,
                max_length: self.token_max_length as usize,
                device: self.token_device,
            },
            clusters,
            depth,
        }
    }

    /// Loads the model.
    pub fn load(&self) -> anyhow::Result<TokenEncoder> {
        Ok(self.rerank(Vec::new(), 0).load()?)
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
    let summaries = build_stores(
        &index,
        &args.corpus,
        &encoder,
        &args.clusters,
        &paths,
        &StageBars::default(),
    )?;
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

/// Opens the store at `path` for `index` with the clustering spec it was built with, and loads
/// the token model, which must make vectors of the store's dimension.
pub fn open_rerank_stage(
    path: &Path,
    index: &Index,
    token: &TokenModelArgs,
) -> anyhow::Result<(MultiVecStore, ClusterSpec, TokenEncoder)> {
    let encoder = token.load()?;
    let (store, spec) = open_rerank_store(path, index, &encoder)?;
    Ok((store, spec, encoder))
}
