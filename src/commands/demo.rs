//! `bmp-index demo`: the whole pipeline on a built-in synthetic collection, then on real text.

use std::path::PathBuf;

use bmp_index::synth::SynthOptions;
use clap::Args;

use super::{bench, build, eval, info, search, synth};

/// Run the whole pipeline on a built-in synthetic collection, then on real text.
///
/// 1. Generates SPLADE-shaped documents and queries, builds a BP-reordered index, prints the
///    index facts, searches it with rank-safe BMP, and compares BMP with exhaustive scoring.
/// 2. When the SPLADE model (scripts/setup-models.sh) and a BEIR dataset are present: encodes the
///    corpus, indexes it, answers the judged queries with BMP (safe and alpha = 0.9) and BM25,
///    and prints nDCG@10, MRR@10, Recall@100/1000, MAP and latency.
///
/// Everything is written under --dir: docs.jsonl, queries.jsonl, index.bmp, run.trec, and the
/// evaluation's cached vectors and index in eval/.
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
    /// BEIR dataset for the text part.
    #[arg(long, default_value = "../shared/data/cranfield")]
    pub dataset: PathBuf,
    /// SPLADE model for the text part.
    #[arg(long, default_value = super::encoding::DEFAULT_MODEL_DIR)]
    pub model: PathBuf,
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
        lexical_only: false,
        lexical: false,
        corpus: None,
        bm25: Default::default(),
        format: build::InputFormat::Jsonl,
        output: index.clone(),
        block_size: bmp_index::format::DEFAULT_BLOCK_SIZE,
        superblock_size: bmp_index::format::DEFAULT_SUPERBLOCK_SIZE,
        reorder: build::ReorderArgs {
            reorder: build::Reorder::Bp,
            ..build::ReorderArgs::default()
        },
        memory_budget: None,
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
        hybrid: Default::default(),
        k: args.k,
        algorithm: bmp_query::SearchSpec::Bmp(Default::default()),
        output: Some(run.clone()),
        tag: None,
        multivec: None,
        rerank_depth: 100,
        token: super::multivec::TokenModelArgs::default(),
    })?;
    eprintln!("run written to {}", run.display());
    bench::run(&bench::BenchArgs {
        index,
        queries,
        k: vec![args.k as usize],
        algorithms: vec![
            bmp_query::SearchSpec::Exhaustive,
            bmp_query::SearchSpec::Bmp(Default::default()),
        ],
        threads: 1,
        threads_per_query: 1,
        warmup: 1,
        json: false,
        profile: false,
        time_budget_ms: None,
    })?;
    text_part(args)
}

/// The evaluation on real text, or a note saying what is missing.
fn text_part(args: &DemoArgs) -> anyhow::Result<()> {
    if !args.model.join("model.safetensors").exists() {
        eprintln!(
            "skipping the text part: no SPLADE model in {} (run scripts/setup-models.sh)",
            args.model.display()
        );
        return Ok(());
    }
    if !args.dataset.join("corpus.jsonl").exists() {
        eprintln!(
            "skipping the text part: no BEIR corpus in {} (give --dataset DIR)",
            args.dataset.display()
        );
        return Ok(());
    }
    eprintln!(
        "evaluating SPLADE ({}) and BM25 on {}",
        args.model.display(),
        args.dataset.display()
    );
    eval::run(&eval::EvalArgs {
        dataset: Some(args.dataset.clone()),
        split: "test".into(),
        index: None,
        queries: None,
        run: None,
        qrels: None,
        model: Some(args.model.clone()),
        encoder: super::encoding::EncoderArgs::default(),
        k: 1000,
        algorithm: vec![
            bmp_query::SearchSpec::Bmp(Default::default()),
            "bmp:alpha=0.9".parse()?,
        ],
        bm25: true,
        bm25_params: Default::default(),
        hybrid: Default::default(),
        relevance_level: 1,
        missing_as_zero: false,
        output: Some(args.dir.join("runs")),
        work_dir: Some(args.dir.join("eval")),
        per_query: false,
        reorder: build::ReorderArgs {
            reorder: build::Reorder::Bp,
            ..build::ReorderArgs::default()
        },
        rerank: None,
        dense: false,
        pooling: bmp_encoder::llm_embed::Pooling::Mean,
        clusters: Vec::new(),
        rerank_depth: 100,
        token: super::multivec::TokenModelArgs::default(),
    })
}
