//! `bmp-index eval`: retrieval quality (nDCG@10, MRR@10, Recall@100/1000, MAP) and latency on a
//! BEIR-layout dataset, an existing index, or an existing run.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use bmp_encoder::llm_embed::Pooling;
use bmp_encoder::ClusterSpec;
use bmp_eval::pipeline::{evaluate_systems, RerankCost, SearchTarget};
use bmp_eval::{
    evaluate_dataset, DatasetEval, EvalOptions, Evaluation, Measure, MissingQueries, Qrels, Run,
    SystemResult,
};
use bmp_index::readers::SparseRecord;
use bmp_index::segments::Snapshot;
use bmp_query::SearchSpec;
use clap::Args;

use super::build::ReorderArgs;
use super::encoding::{EncoderArgs, DEFAULT_MODEL_DIR};
use super::lexical::Bm25Args;
use super::lexical::HybridArgs;
use super::multivec::{parse_clusters, TokenModelArgs};
use super::progress::StageBars;
use super::search::{
    hybrid_inputs, hybrid_query_records, lexical_field, parse_algorithm, query_records,
};
use bmp_eval::hybrid::{evaluate_hybrid, HybridRecord};
use bmp_lexical::HybridSpec;

/// Evaluate retrieval quality and latency the way papers report them.
///
/// Three ways in:
///
///   --dataset DIR: a BEIR-layout directory (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv). The
///   corpus is encoded with the SPLADE model (vectors cached in --work-dir), indexed, the judged
///   queries are encoded and answered with each --algorithm, and the run is scored.
///   --bm25 adds a BM25 baseline (title + text, English stemming; --bm25-k1, --bm25-b).
///   --hybrid 0.1,0.3 [--fusion linear,rrf] builds the index with a lexical (BM25) field too and
///   adds one row per lexical weight and fusion of SPLADE + BM25 queries.
///   With a decoder LLM as --model, the sparse rows are its LM-head vectors (llm-sparse) and
///   --dense adds a row for its pooled dense embeddings (llm-dense, exact search).
///   --rerank multivector reranks the first algorithm's top --rerank-depth by Chamfer similarity
///   of token embeddings (--token-model), one row per --clusters spec, and prints a second table
///   of vectors per document, store bytes and rerank latency. The stores are cached in
///   --work-dir.
///
///   --index INDEX --queries FILE --qrels FILE: answer queries (vectors, or text with --model)
///   over an existing index and score the run (e.g. MS MARCO dev with the real SPLADE++ query
///   vectors). Over an index built with `--lexical-only`, text queries are BM25 queries; over
///   one built with `--model M --lexical`, `--model M --hybrid 0.1,0.3,0.5` gives one row per
///   lexical weight of a fused SPLADE + BM25 query (and per `--fusion linear,rrf`).
///
///   --run RUN --qrels FILE: score an existing TREC run.
///
/// Measures are computed as trec_eval computes them (nDCG@10 with graded gains, MRR@10,
/// Recall@100, Recall@1000, MAP), averaged over the judged queries present in the run, as
/// pytrec_eval and BEIR do. Latency is per query, one thread, encoding excluded.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// BEIR-layout dataset directory.
    #[arg(long, conflicts_with_all = ["index", "run"])]
    pub dataset: Option<PathBuf>,
    /// Qrels split of --dataset (qrels/SPLIT.tsv).
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Existing index file, or collection directory (`add`), to search (with --queries and
    /// --qrels).
    #[arg(long, requires_all = ["queries", "qrels"], conflicts_with = "run")]
    pub index: Option<PathBuf>,
    /// Queries for --index: JSONL vectors or Anserini TSV, or BEIR queries.jsonl with --model.
    #[arg(long)]
    pub queries: Option<PathBuf>,
    /// Existing TREC run to score (with --qrels).
    #[arg(long, requires = "qrels")]
    pub run: Option<PathBuf>,
    /// Qrels file (BEIR TSV with header, or TREC `qid 0 docid rel`).
    #[arg(long)]
    pub qrels: Option<PathBuf>,
    /// SPLADE model directory, or a decoder LLM (a .gguf file, or a Llama / Mistral / Qwen2 / Qwen3 directory such
    /// as `prune` writes). Default for --dataset: models/splade-tiny, fetched by
    /// scripts/setup-models.sh; with --index, only when the queries are text.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Encoder options.
    #[command(flatten)]
    pub encoder: EncoderArgs,
    /// Results per query.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub k: u32,
    /// Query processors, comma-separated (e.g. `bmp,bmp:alpha=0.9,exhaustive`).
    #[arg(long, default_value = "bmp", value_delimiter = ',', value_parser = parse_algorithm, long_help = bmp_query::spec::help())]
    pub algorithm: Vec<SearchSpec>,
    /// Also evaluate a BM25 baseline over title + text (--dataset only; tantivy's English
    /// stemming analyzer).
    #[arg(long)]
    pub bm25: bool,
    /// BM25's parameters (with --bm25).
    #[command(flatten)]
    pub bm25_params: Bm25Args,
    /// Lowest qrels grade that counts as relevant for MRR, recall and MAP (trec_eval -l; TREC DL
    /// uses 2). nDCG always uses the graded labels.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
    pub relevance_level: i32,
    /// Average judged queries missing from the run in as zeros (trec_eval -c) instead of leaving
    /// them out.
    #[arg(long)]
    pub missing_as_zero: bool,
    /// Hybrid rows, one per lexical weight and fusion: with --dataset, the index is built with
    /// a lexical field (BM25 with --bm25-k1 / --bm25-b); with --index, it must have one.
    #[command(flatten)]
    pub hybrid: HybridArgs,
    /// Write every system's run into this directory (created if missing), one TREC file per
    /// system named after it: `splade-bmp.trec`, `bm25-k1-1.2-b-0.75.trec`, ...
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Where --dataset caches encoded vectors and indexes (default eval-cache/<dataset name>).
    /// The cache is keyed by the model directory's name, the encoder options and the corpus and
    /// model files (paths, lengths, modification times): another dataset, or a model retrained in
    /// place, is encoded anew.
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Print per-query values of the first system as TSV (query, measure values) to stdout.
    #[arg(long)]
    pub per_query: bool,
    /// Document reordering of the index built for --dataset.
    #[command(flatten)]
    pub reorder: ReorderArgs,
    /// Second stage over the first algorithm's results (--dataset only): `multivector`.
    #[arg(long, value_enum)]
    pub rerank: Option<RerankKind>,
    /// Multi-vector reductions to evaluate with --rerank multivector, comma-separated: none,
    /// CqxD (k-means into q query / D document centroids), Cp (p% of the length), Kn (every
    /// n-th token), tail / tailQxD (the last tokens).
    #[arg(long, default_value = "C8x32", value_delimiter = ',', value_parser = parse_clusters)]
    pub clusters: Vec<ClusterSpec>,
    /// How many first-stage results the second stage reorders.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub rerank_depth: u32,
    /// The token model of --rerank multivector.
    #[command(flatten)]
    pub token: TokenModelArgs,
    /// Also evaluate the dense embeddings of a decoder LLM --model (--dataset only): documents
    /// and queries pooled as --pooling says, L2-normalised, searched exactly by brute force. The
    /// corpus is encoded once for both outputs; the embeddings are cached in --work-dir.
    #[arg(long)]
    pub dense: bool,
    /// Pooling of the dense embeddings: mean (over the real tokens) or last (the last token).
    #[arg(long, default_value = "mean", requires = "dense")]
    pub pooling: Pooling,
}

/// Second stages `eval` can add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RerankKind {
    /// Chamfer (MaxSim) over token embeddings, optionally clustered (CRISP).
    Multivector,
}

/// Runs `eval`.
pub fn run(args: &EvalArgs) -> anyhow::Result<()> {
    let options = EvalOptions {
        relevance_level: args.relevance_level,
        missing_queries: if args.missing_as_zero {
            MissingQueries::Zero
        } else {
            MissingQueries::Skip
        },
        ..EvalOptions::default()
    };
    let measures = Measure::standard();
    for (asked, what) in [
        (
            args.bm25,
            "--bm25 needs --dataset (it indexes the dataset's corpus)",
        ),
        (
            args.dense,
            "--dense needs --dataset (it embeds the dataset's corpus)",
        ),
        (
            args.rerank.is_some(),
            "--rerank needs --dataset (it embeds the dataset's corpus)",
        ),
    ] {
        if asked && args.dataset.is_none() {
            anyhow::bail!(what);
        }
    }
    if args.bm25_params.given()
        && !args.bm25
        && (args.hybrid.hybrid.is_empty() || args.dataset.is_none())
    {
        anyhow::bail!(
            "--bm25-k1 and --bm25-b set the parameters of --bm25, or of the lexical field that \
             --dataset with --hybrid builds"
        );
    }
    let mut rerank_costs = Vec::new();
    let systems = if let Some(dataset) = &args.dataset {
        let report = evaluate_dataset(
            &dataset_config(args, dataset, measures.clone(), options.clone())?,
            &StageBars::default(),
        )?;
        rerank_costs = report.rerank_costs;
        report.systems
    } else if let Some(index) = &args.index {
        eval_index(args, index, &measures, &options)?
    } else if let Some(run_path) = &args.run {
        let qrels = read_qrels(args)?;
        let run = Run::read_trec(run_path)?;
        let name = run_path.display().to_string();
        vec![SystemResult::new(
            name, run, None, &qrels, &measures, &options,
        )?]
    } else {
        anyhow::bail!("give --dataset DIR, --index INDEX --queries FILE --qrels FILE, or --run RUN --qrels FILE");
    };
    if let Some(dir) = &args.output {
        write_runs(dir, &systems)?;
    }
    print_table(&systems, &measures)?;
    if !rerank_costs.is_empty() {
        print_rerank_table(&rerank_costs)?;
    }
    if args.per_query {
        if let Some(first) = systems.first() {
            print_per_query(&first.eval, &measures)?;
        }
    }
    Ok(())
}

/// What `evaluate_dataset` is to do for these arguments.
fn dataset_config(
    args: &EvalArgs,
    dataset: &Path,
    measures: Vec<Measure>,
    options: EvalOptions,
) -> anyhow::Result<DatasetEval> {
    let mut config = DatasetEval::new(
        dataset,
        args.model
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL_DIR)),
    );
    config.split.clone_from(&args.split);
    config.qrels.clone_from(&args.qrels);
    config.encoder = args.encoder.options();
    config.work_dir.clone_from(&args.work_dir);
    config.k = args.k as usize;
    config.algorithms.clone_from(&args.algorithm);
    config.reorder = args.reorder.bp_options();
    if args.bm25 {
        config.bm25 = Some(args.bm25_params.params()?);
    }
    config.hybrid = args.hybrid.specs()?;
    config.hybrid_bm25 = args.bm25_params.params()?;
    config.dense = args.dense.then_some(args.pooling);
    if args.rerank == Some(RerankKind::Multivector) {
        config.rerank = Some(
            args.token
                .rerank(args.clusters.clone(), args.rerank_depth as usize),
        );
    }
    config.measures = measures;
    config.options = options;
    Ok(config)
}

/// Writes each system's run to `dir/<tag>.trec`, tagged with its [`SystemResult::tag`].
fn write_runs(dir: &Path, systems: &[SystemResult]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = std::collections::HashSet::new();
    for system in systems {
        let tag = system.tag();
        if !written.insert(tag.clone()) {
            anyhow::bail!("two systems are both named {tag:?}: give each algorithm once");
        }
        let path = dir.join(format!("{tag}.trec"));
        system.run.save_trec(&path, &tag)?;
        eprintln!("run of {} written to {}", system.name, path.display());
    }
    Ok(())
}

fn read_qrels(args: &EvalArgs) -> anyhow::Result<Qrels> {
    let path = args.qrels.as_ref().context("--qrels is required")?;
    let qrels = Qrels::read(path)?;
    if qrels.is_empty() {
        anyhow::bail!("{}: no judgments", path.display());
    }
    Ok(qrels)
}

/// Hybrid queries over an index with a learned and a lexical field: one system per spec and
/// algorithm.
#[allow(clippy::too_many_arguments)]
fn hybrid_rows(
    args: &EvalArgs,
    specs: &[HybridSpec],
    index_path: &Path,
    queries: &Path,
    qrels: &Qrels,
    measures: &[Measure],
    options: &EvalOptions,
) -> anyhow::Result<Vec<SystemResult>> {
    let (index, model) = hybrid_inputs(index_path, args.model.as_deref())?;
    let records: Vec<HybridRecord> = hybrid_query_records(queries, model, &args.encoder)?
        .into_iter()
        .filter(|r| qrels.contains_query(&r.id))
        .collect();
    Ok(evaluate_hybrid(
        &index,
        &records,
        specs,
        &args.algorithm,
        args.k as usize,
        qrels,
        measures,
        options,
    )?)
}

/// Queries over an existing index, or over the segments of a collection.
fn eval_index(
    args: &EvalArgs,
    index_path: &Path,
    measures: &[Measure],
    options: &EvalOptions,
) -> anyhow::Result<Vec<SystemResult>> {
    let qrels = read_qrels(args)?;
    // An index file, or a collection directory (its segments as of now).
    let snapshot = Snapshot::open(index_path)?;
    let queries = args.queries.as_ref().context("--queries is required")?;
    let specs = args.hybrid.specs()?;
    if !specs.is_empty() {
        return hybrid_rows(args, &specs, index_path, queries, &qrels, measures, options);
    }
    let (records, label) = query_records(
        queries,
        args.model.as_deref(),
        &args.encoder,
        lexical_field(index_path)?,
    )?;
    let judged: Vec<SparseRecord> = records
        .into_iter()
        .filter(|r| qrels.contains_query(&r.id))
        .collect();
    if judged.is_empty() {
        anyhow::bail!("no query of {} is judged in the qrels", queries.display());
    }
    let target = match snapshot.segments.first() {
        Some(segment) if !index_path.is_dir() => SearchTarget::Index(&segment.index),
        _ => SearchTarget::Snapshot(&snapshot),
    };
    Ok(evaluate_systems(
        target,
        &judged,
        label,
        &args.algorithm,
        args.k as usize,
        &qrels,
        measures,
        options,
    )?)
}

fn print_rerank_table(infos: &[RerankCost]) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    writeln!(
        out,
        "\n{:<10} {:>12} {:>12} {:>14} {:>16} {:>16}",
        "clusters", "vectors/doc", "vectors/qry", "store_bytes", "rerank_mean_us", "rerank_p50_us"
    )?;
    for i in infos {
        writeln!(
            out,
            "{:<10} {:>12.1} {:>12.1} {:>14} {:>16.1} {:>16.1}",
            i.spec, i.vectors_per_doc, i.query_vectors, i.bytes, i.latency.mean, i.latency.p50
        )?;
    }
    Ok(())
}

fn print_table(rows: &[SystemResult], measures: &[Measure]) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut header = format!("{:<28}", "system");
    for m in measures {
        header.push_str(&format!(" {:>10}", m.to_string()));
    }
    header.push_str(&format!(
        " {:>8} {:>10} {:>10} {:>10}",
        "queries", "mean_us", "p50_us", "p99_us"
    ));
    writeln!(out, "{header}")?;
    for row in rows {
        let mut line = format!("{:<28}", row.name);
        for m in measures {
            match row.eval.mean(*m) {
                Some(v) => line.push_str(&format!(" {v:>10.4}")),
                None => line.push_str(&format!(" {:>10}", "-")),
            }
        }
        line.push_str(&format!(" {:>8}", row.eval.num_queries()));
        match row.latency {
            Some(l) => line.push_str(&format!(
                " {:>10.1} {:>10.1} {:>10.1}",
                l.mean, l.p50, l.p99
            )),
            None => line.push_str(&format!(" {:>10} {:>10} {:>10}", "-", "-", "-")),
        }
        writeln!(out, "{line}")?;
    }
    Ok(())
}

fn print_per_query(eval: &Evaluation, measures: &[Measure]) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let names: Vec<String> = measures.iter().map(Measure::trec_name).collect();
    writeln!(out, "query\t{}", names.join("\t"))?;
    for (q, values) in eval.per_query() {
        let values: Vec<String> = values.iter().map(|v| format!("{v:.4}")).collect();
        writeln!(out, "{q}\t{}", values.join("\t"))?;
    }
    Ok(())
}
