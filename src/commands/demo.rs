//! `bmp-index demo`: the whole pipeline on a built-in synthetic collection.

use std::path::PathBuf;

use bmp_index::synth::SynthOptions;
use clap::Args;

use super::{bench, build, info, search, synth};

/// Run the whole pipeline on a built-in synthetic collection.
///
/// Generates documents and queries, builds a BP-reordered index, prints the index facts, searches
/// it with rank-safe BMP, and compares BMP with exhaustive scoring.
///
/// Everything is written under --dir: docs.jsonl, queries.jsonl, index.bmp and run.trec.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Working directory (created if missing).
    #[arg(long, default_value = "demo-data")]
    pub dir: PathBuf,
    /// Number of synthetic documents.
    #[arg(long, default_value_t = 100_000)]
    pub docs: u64,
    /// Number of synthetic queries.
    #[arg(long, default_value_t = 1_000)]
    pub queries: u64,
    /// Results per query.
    #[arg(long, default_value_t = 10)]
    pub k: u32,
}

/// Runs `demo`.
pub fn run(args: &DemoArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)?;
    let docs = args.dir.join("docs.jsonl");
    let queries = args.dir.join("queries.jsonl");
    let index = args.dir.join("index.bmp");
    let run = args.dir.join("run.trec");
    let options = SynthOptions {
        docs: args.docs,
        queries: args.queries,
        ..SynthOptions::default()
    };
    eprintln!(
        "generating {} documents and {} queries in {}",
        args.docs,
        args.queries,
        args.dir.display()
    );
    synth::write_synth(&options, None, &[], &docs, &queries)?;
    build::run(&build::BuildArgs {
        input: docs,
        model: None,
        encoder: super::encoding::EncoderArgs::default(),
        format: build::InputFormat::Jsonl,
        output: index.clone(),
        block_size: bmp_index::format::DEFAULT_BLOCK_SIZE,
        reorder: build::ReorderArgs {
            reorder: build::Reorder::Bp,
            ..build::ReorderArgs::default()
        },
    })?;
    info::run(&info::InfoArgs {
        index: index.clone(),
        verify: true,
    })?;
    search::run(&search::SearchArgs {
        index: index.clone(),
        queries: queries.clone(),
        model: None,
        encoder: super::encoding::EncoderArgs::default(),
        k: args.k,
        algorithm: bmp_query::SearchSpec::new(bmp_query::Algorithm::Bmp),
        output: Some(run.clone()),
        tag: None,
    })?;
    eprintln!("run written to {}", run.display());
    let algorithms = [bmp_query::Algorithm::Exhaustive, bmp_query::Algorithm::Bmp];
    bench::run(&bench::BenchArgs {
        index,
        queries,
        k: vec![args.k as usize],
        algorithms: algorithms.map(bmp_query::SearchSpec::new).to_vec(),
        threads: 1,
        warmup: 1,
        json: false,
    })
}
