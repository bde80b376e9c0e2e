//! `bmp-index eval`: retrieval quality (nDCG@10, MRR@10, Recall@100/1000, MAP) and latency on a
//! BEIR-layout dataset, an existing index, or an existing run.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use bmp_eval::{
    evaluate, BeirDataset, Bm25Index, Bm25Storage, EvalOptions, Evaluation, Measure,
    MissingQueries, Qrels, Run,
};
use bmp_index::atomic::AtomicFile;
use bmp_index::readers::queries::read_queries;
use bmp_index::readers::SparseRecord;
use bmp_index::segments::Snapshot;
use bmp_index::Index;
use bmp_query::segments::SnapshotSearcher;
use bmp_query::SearchSpec;
use clap::Args;

use super::build::{document_order, read_collection, write_index, InputFormat, ReorderArgs};
use super::encoding::{
    encode_corpus, encode_queries, encode_query_file, load_encoder, write_vector_line, EncoderArgs,
    TextEncoder, DEFAULT_MODEL_DIR,
};
use super::multivec::{
    build_stores, embed_queries, open_store, parse_clusters, store_path, TokenModelArgs, QUERY_SEED,
};
use super::search::{answer, latency_stats, parse_algorithm, Latency};
use bmp_encoder::dense_index::DenseIndex;
use bmp_encoder::llm_embed::Pooling;
use bmp_encoder::ClusterSpec;
use bmp_query::chamfer::{rerank, ChamferScorer};

/// Evaluate retrieval quality and latency the way papers report them.
///
/// Three ways in:
///
///   --dataset DIR: a BEIR-layout directory (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv). The
///   corpus is encoded with the SPLADE model (vectors cached in --work-dir), indexed, the judged
///   queries are encoded and answered with each --algorithm, and the run is scored.
///   --bm25 adds a tantivy BM25 baseline (title + text, English stemming) to the table.
///   With a decoder LLM as --model, the sparse rows are its LM-head vectors (llm-sparse) and
///   --dense adds a row for its pooled dense embeddings (llm-dense, exact search).
///   --rerank multivector reranks the first algorithm's top --rerank-depth by Chamfer similarity
///   of token embeddings (--token-model), one row per --clusters spec, and prints a second table
///   of vectors per document, store bytes and rerank latency. The stores are cached in
///   --work-dir.
///
///   --index INDEX --queries FILE --qrels FILE: answer queries (vectors, or text with --model)
///   over an existing index and score the run (e.g. MS MARCO dev with the real SPLADE++ query
///   vectors).
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
    /// SPLADE model directory, or a decoder LLM (a .gguf file, or a Llama / Qwen2 directory such
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
    /// Also evaluate a tantivy BM25 baseline over title + text (--dataset only).
    #[arg(long)]
    pub bm25: bool,
    /// Lowest qrels grade that counts as relevant for MRR, recall and MAP (trec_eval -l; TREC DL
    /// uses 2). nDCG always uses the graded labels.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..))]
    pub relevance_level: i32,
    /// Average judged queries missing from the run in as zeros (trec_eval -c) instead of leaving
    /// them out.
    #[arg(long)]
    pub missing_as_zero: bool,
    /// Write the run of the first algorithm here (TREC format).
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Where --dataset caches encoded vectors and indexes (default eval-cache/<dataset name>).
    /// The cache is keyed by the model directory's name and the encoder options: delete it after
    /// changing the model files in place.
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

/// What one multi-vector reduction costs.
struct RerankInfo {
    spec: String,
    vectors_per_doc: f64,
    query_vectors: f64,
    bytes: u64,
    latency: Latency,
}

/// One row of the results table.
struct Row {
    system: String,
    eval: Evaluation,
    latency: Option<Latency>,
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
    if args.bm25 && args.dataset.is_none() {
        anyhow::bail!("--bm25 needs --dataset (it indexes the dataset's corpus)");
    }
    if args.dense && args.dataset.is_none() {
        anyhow::bail!("--dense needs --dataset (it embeds the dataset's corpus)");
    }
    if args.rerank.is_some() && args.dataset.is_none() {
        anyhow::bail!("--rerank needs --dataset (it embeds the dataset's corpus)");
    }
    let mut rerank_infos = Vec::new();
    let rows = if let Some(dataset) = &args.dataset {
        eval_dataset(args, dataset, &measures, &options, &mut rerank_infos)?
    } else if let Some(index) = &args.index {
        eval_index(args, index, &measures, &options)?
    } else if let Some(run_path) = &args.run {
        let qrels = read_qrels(args)?;
        let run = Run::read_trec(run_path)?;
        let eval = evaluate(&qrels, &run, &measures, &options)?;
        vec![Row {
            system: run_path.display().to_string(),
            eval,
            latency: None,
        }]
    } else {
        anyhow::bail!("give --dataset DIR, --index INDEX --queries FILE --qrels FILE, or --run RUN --qrels FILE");
    };
    print_table(&rows, &measures)?;
    if !rerank_infos.is_empty() {
        print_rerank_table(&rerank_infos)?;
    }
    if args.per_query {
        if let Some(first) = rows.first() {
            print_per_query(&first.eval, &measures)?;
        }
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

/// The full pipeline on a BEIR dataset.
fn eval_dataset(
    args: &EvalArgs,
    dir: &Path,
    measures: &[Measure],
    options: &EvalOptions,
    rerank_infos: &mut Vec<RerankInfo>,
) -> anyhow::Result<Vec<Row>> {
    let data = BeirDataset::open(dir, &args.split)?;
    let corpus = data.corpus_path().with_context(|| {
        format!(
            "{}: no corpus.jsonl; to evaluate queries and qrels alone, use --index INDEX \
             --queries FILE --qrels {}",
            dir.display(),
            data.qrels_path().display()
        )
    })?;
    let qrels = match &args.qrels {
        Some(path) => Qrels::read(path)?,
        None => data.qrels()?,
    };
    let queries = data.judged_queries(&qrels)?;
    if queries.is_empty() {
        anyhow::bail!(
            "{}: no query of queries.jsonl is judged in the qrels",
            dir.display()
        );
    }
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "dataset".into());
    let work = args
        .work_dir
        .clone()
        .unwrap_or_else(|| Path::new("eval-cache").join(&name));
    fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;

    let model = args
        .model
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_MODEL_DIR));
    let mut encoder = load_encoder(&model, &args.encoder)?;
    if args.dense {
        encoder.enable_dense(args.pooling)?;
    }
    let model_name = model
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    let key = format!("{model_name}.{}", args.encoder.document_key());
    let vectors = work.join(format!("corpus.{key}.jsonl"));
    let dense_path = work.join(format!("corpus.{key}.dense-{}.bin", args.pooling));
    if vectors.exists() && (!args.dense || dense_path.exists()) {
        eprintln!("using cached document vectors {}", vectors.display());
    } else {
        let mut file = AtomicFile::create(&vectors)?;
        let mut out = BufWriter::new(&mut file);
        let mut dense = None::<DenseIndex>;
        let summary = encode_corpus(&encoder, corpus, &mut |doc, vector, embedding| {
            if let Some(embedding) = embedding {
                dense
                    .get_or_insert_with(|| DenseIndex::new(embedding.len()))
                    .push_with_id(&doc.id, embedding)?;
            }
            write_vector_line(&mut out, &encoder, &doc.id, vector)
                .with_context(|| format!("cannot write {}", vectors.display()))
        })?;
        out.flush()
            .with_context(|| format!("cannot write {}", vectors.display()))?;
        drop(out);
        file.commit()?;
        if let Some(dense) = dense {
            dense.save(&dense_path)?;
        }
        eprintln!(
            "encoded {} documents: {:.1} docs/s{}, {:.1} terms per document",
            summary.docs,
            summary.docs_per_second(),
            if args.dense {
                " (sparse and dense)"
            } else {
                ""
            },
            summary.postings as f64 / summary.docs.max(1) as f64
        );
    }
    let reorder = format!("{:?}", args.reorder.reorder).to_ascii_lowercase();
    let index_path = work.join(format!("index.{key}.{reorder}.bmp"));
    let newer = |a: &Path, b: &Path| -> bool {
        let modified = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
        matches!((modified(a), modified(b)), (Some(x), Some(y)) if x >= y)
    };
    if !index_path.exists() || !newer(&index_path, &vectors) {
        let collection = read_collection(&vectors, InputFormat::Jsonl)?;
        let order = document_order(&collection, &args.reorder);
        let summary = write_index(
            &collection,
            &order,
            &index_path,
            &bmp_index::build::BuildOptions::default(),
        )?;
        eprintln!(
            "indexed {} documents ({} postings, {} bytes) into {}",
            summary.num_docs,
            summary.num_postings,
            summary.bytes,
            index_path.display()
        );
    }
    let index = Index::open(&index_path)?;
    let start = Instant::now();
    let records = encode_queries(&encoder, &queries)?;
    eprintln!(
        "encoded {} queries: {:.2} ms per query",
        records.len(),
        start.elapsed().as_secs_f64() * 1e3 / records.len().max(1) as f64
    );
    let mut rows = search_rows(
        args,
        &index,
        &records,
        encoder.label(),
        &qrels,
        measures,
        options,
    )?;
    if args.dense {
        let texts: Vec<String> = queries.iter().map(|q| q.text.clone()).collect();
        rows.push(dense_row(
            &encoder,
            &DenseIndex::open(&dense_path)?,
            &texts,
            &queries,
            args,
            &qrels,
            measures,
            options,
        )?);
    }
    if args.rerank == Some(RerankKind::Multivector) {
        let stores = work.join(format!(
            "multivec.{}.{}",
            args.token.key(),
            index_path
                .file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        ));
        let (mut reranked, infos) = multivector_rows(
            args,
            &index,
            &index_path,
            corpus,
            &stores,
            &queries,
            &records,
            &qrels,
            measures,
            options,
        )?;
        rows.append(&mut reranked);
        *rerank_infos = infos;
    }
    if args.bm25 {
        let start = Instant::now();
        let bm25 = Bm25Index::build(&Bm25Storage::Ram, data.corpus()?)?;
        eprintln!(
            "BM25 index of {} documents built in {:.1} s",
            bm25.num_docs(),
            start.elapsed().as_secs_f64()
        );
        let mut run = Run::new();
        let mut micros = Vec::with_capacity(queries.len());
        for q in &queries {
            let start = Instant::now();
            let hits = bm25.search(&q.text, args.k as usize)?;
            micros.push(start.elapsed().as_secs_f64() * 1e6);
            run.insert(
                q.id.clone(),
                hits.into_iter().map(|(d, s)| (d, f64::from(s))),
            );
        }
        rows.push(Row {
            system: "bm25 (tantivy)".into(),
            eval: evaluate(&qrels, &run, measures, options)?,
            latency: Some(latency_stats(micros)),
        });
    }
    Ok(rows)
}

/// Queries over an existing index.
fn eval_index(
    args: &EvalArgs,
    index_path: &Path,
    measures: &[Measure],
    options: &EvalOptions,
) -> anyhow::Result<Vec<Row>> {
    let qrels = read_qrels(args)?;
    // An index file, or a collection directory (its segments as of now).
    let snapshot = Snapshot::open(index_path)?;
    let queries = args.queries.as_ref().context("--queries is required")?;
    let (records, label) = match &args.model {
        Some(model) => {
            let encoder = load_encoder(model, &args.encoder)?;
            (encode_query_file(&encoder, queries)?, encoder.label())
        }
        None => (read_queries(queries)?, "splade"),
    };
    let judged: Vec<SparseRecord> = records
        .into_iter()
        .filter(|r| qrels.contains_query(&r.id))
        .collect();
    if judged.is_empty() {
        anyhow::bail!("no query of {} is judged in the qrels", queries.display());
    }
    if !index_path.is_dir() {
        if let Some(segment) = snapshot.segments.first() {
            return search_rows(
                args,
                &segment.index,
                &judged,
                label,
                &qrels,
                measures,
                options,
            );
        }
    }
    collection_rows(args, &snapshot, &judged, label, &qrels, measures, options)
}

/// [`search_rows`] over the segments of a collection.
fn collection_rows(
    args: &EvalArgs,
    snapshot: &Snapshot,
    records: &[SparseRecord],
    label: &str,
    qrels: &Qrels,
    measures: &[Measure],
    options: &EvalOptions,
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (i, spec) in args.algorithm.iter().enumerate() {
        let mut searcher = SnapshotSearcher::new(snapshot, spec);
        let system = format!("{label} {spec} ({} segments)", snapshot.segments.len());
        rows.push(spec_row(
            args,
            i == 0,
            spec,
            system,
            records,
            qrels,
            measures,
            options,
            |record| {
                let start = Instant::now();
                let results = searcher
                    .search(&record.entries, args.k as usize)
                    .with_context(|| format!("query {:?}", record.id))?;
                let took = start.elapsed().as_secs_f64() * 1e6;
                let mut ranked = Vec::with_capacity(results.hits.len());
                for h in &results.hits {
                    let id = snapshot.segments[h.segment].index.doc_id(h.doc)?;
                    ranked.push((id.to_owned(), f64::from(h.score) * results.score_scale));
                }
                Ok((ranked, took))
            },
        )?);
    }
    Ok(rows)
}

/// The row of `spec`: every record answered by `answer` (its ranking and microseconds), the
/// run evaluated; the first algorithm's run is written to `--output`.
#[allow(clippy::too_many_arguments)]
fn spec_row(
    args: &EvalArgs,
    first: bool,
    spec: &SearchSpec,
    system: String,
    records: &[SparseRecord],
    qrels: &Qrels,
    measures: &[Measure],
    options: &EvalOptions,
    mut answer: impl FnMut(&SparseRecord) -> anyhow::Result<(Vec<(String, f64)>, f64)>,
) -> anyhow::Result<Row> {
    let mut run = Run::new();
    let mut micros = Vec::with_capacity(records.len());
    for record in records {
        let (ranked, took) = answer(record)?;
        micros.push(took);
        run.insert(record.id.clone(), ranked);
    }
    if first {
        if let Some(path) = &args.output {
            let tag = format!("bmp-{spec}").replace([':', '='], "-");
            run.save_trec(path, &tag)?;
            eprintln!("run written to {}", path.display());
        }
    }
    Ok(Row {
        system,
        eval: evaluate(qrels, &run, measures, options)?,
        latency: Some(latency_stats(micros)),
    })
}

/// Dense retrieval: the queries embedded by `encoder`, answered exactly over `index`.
#[allow(clippy::too_many_arguments)]
fn dense_row(
    encoder: &TextEncoder,
    index: &DenseIndex,
    texts: &[String],
    queries: &[bmp_eval::Query],
    args: &EvalArgs,
    qrels: &Qrels,
    measures: &[Measure],
    options: &EvalOptions,
) -> anyhow::Result<Row> {
    let start = Instant::now();
    let embedded = encoder.encode_dense_queries(texts)?;
    eprintln!(
        "embedded {} queries: {:.2} ms per query",
        embedded.len(),
        start.elapsed().as_secs_f64() * 1e3 / embedded.len().max(1) as f64
    );
    let mut run = Run::new();
    let mut micros = Vec::with_capacity(queries.len());
    for (q, v) in queries.iter().zip(&embedded) {
        if v.len() != index.dim() {
            anyhow::bail!(
                "query embeddings of dimension {}, cached document embeddings of {}: delete the \
                 --work-dir cache",
                v.len(),
                index.dim()
            );
        }
        let start = Instant::now();
        let hits = index.search(v, args.k as usize);
        micros.push(start.elapsed().as_secs_f64() * 1e6);
        let mut ranked = Vec::with_capacity(hits.len());
        for (i, score) in hits {
            ranked.push((index.id(i).unwrap_or_default().to_owned(), f64::from(score)));
        }
        run.insert(q.id.clone(), ranked);
    }
    Ok(Row {
        system: format!("llm-dense {} (flat)", args.pooling),
        eval: evaluate(qrels, &run, measures, options)?,
        latency: Some(latency_stats(micros)),
    })
}

/// Answers `records` with every algorithm of `args` and evaluates each run.
fn search_rows(
    args: &EvalArgs,
    index: &Index,
    records: &[SparseRecord],
    label: &str,
    qrels: &Qrels,
    measures: &[Measure],
    options: &EvalOptions,
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for (i, spec) in args.algorithm.iter().enumerate() {
        let mut searcher = spec.searcher(index);
        let system = format!("{label} {spec}");
        rows.push(spec_row(
            args,
            i == 0,
            spec,
            system,
            records,
            qrels,
            measures,
            options,
            |record| {
                let (query, hits, took) =
                    answer(index, searcher.as_mut(), record, args.k as usize)?;
                let scale = query.score_scale(index);
                let mut ranked = Vec::with_capacity(hits.len());
                for hit in &hits {
                    let score = f64::from(hit.score) * scale;
                    ranked.push((index.doc_id(hit.doc)?.to_owned(), score));
                }
                Ok((ranked, took))
            },
        )?);
    }
    Ok(rows)
}

/// Reranks the first algorithm's results with each multi-vector reduction of `args.clusters`,
/// building the stores that `stores` lacks (or that are older than the index).
#[allow(clippy::too_many_arguments)]
fn multivector_rows(
    args: &EvalArgs,
    index: &Index,
    index_path: &Path,
    corpus: &Path,
    stores: &Path,
    queries: &[bmp_eval::Query],
    records: &[SparseRecord],
    qrels: &Qrels,
    measures: &[Measure],
    options: &EvalOptions,
) -> anyhow::Result<(Vec<Row>, Vec<RerankInfo>)> {
    fs::create_dir_all(stores).with_context(|| format!("cannot create {}", stores.display()))?;
    let encoder = args.token.load()?;
    let fresh = |p: &Path| {
        open_store(p, index).is_ok()
            && matches!(
                (fs::metadata(p).and_then(|m| m.modified()), fs::metadata(index_path).and_then(|m| m.modified())),
                (Ok(a), Ok(b)) if a >= b
            )
    };
    let missing: Vec<ClusterSpec> = args
        .clusters
        .iter()
        .filter(|s| !fresh(&store_path(stores, s)))
        .cloned()
        .collect();
    if !missing.is_empty() {
        let paths: Vec<PathBuf> = missing.iter().map(|s| store_path(stores, s)).collect();
        let start = Instant::now();
        build_stores(index, corpus, &encoder, &missing, &paths)?;
        eprintln!(
            "built {} multi-vector stores in {:.1} s",
            missing.len(),
            start.elapsed().as_secs_f64()
        );
    }
    let texts: Vec<String> = queries.iter().map(|q| q.text.clone()).collect();
    let raw = embed_queries(&encoder, &texts)?;
    let first = args.algorithm.first().context("no algorithm")?;
    let mut searcher = first.searcher(index);
    let mut first_stage = Vec::with_capacity(records.len());
    for record in records {
        let (_, hits, _) = answer(index, searcher.as_mut(), record, args.k as usize)?;
        first_stage.push(hits);
    }
    let depth = args.rerank_depth as usize;
    let mut rows = Vec::new();
    let mut infos = Vec::new();
    for spec in &args.clusters {
        let store = open_store(&store_path(stores, spec), index)?;
        let mut scorer = ChamferScorer::new();
        let mut run = Run::new();
        let mut micros = Vec::with_capacity(records.len());
        let mut query_vectors = 0usize;
        for (i, (record, hits)) in records.iter().zip(&first_stage).enumerate() {
            let start = Instant::now();
            let q = spec.query.apply(&raw[i], QUERY_SEED);
            let reranked = rerank(&mut scorer, &store, &q.data, hits, depth);
            micros.push(start.elapsed().as_secs_f64() * 1e6);
            query_vectors += q.len();
            let mut ranked = Vec::with_capacity(reranked.len());
            for h in &reranked {
                ranked.push((index.doc_id(h.doc)?.to_owned(), f64::from(h.score)));
            }
            run.insert(record.id.clone(), ranked);
        }
        let latency = latency_stats(micros);
        rows.push(Row {
            system: format!("{first} > mv {spec}@{depth}"),
            eval: evaluate(qrels, &run, measures, options)?,
            latency: Some(latency),
        });
        let docs_with = (0..store.num_docs())
            .filter(|&d| !store.doc(d).is_empty())
            .count();
        infos.push(RerankInfo {
            spec: spec.to_string(),
            vectors_per_doc: store.num_vectors() as f64 / docs_with.max(1) as f64,
            query_vectors: query_vectors as f64 / records.len().max(1) as f64,
            bytes: store.file_len(),
            latency,
        });
    }
    Ok((rows, infos))
}

fn print_rerank_table(infos: &[RerankInfo]) -> anyhow::Result<()> {
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

fn print_table(rows: &[Row], measures: &[Measure]) -> anyhow::Result<()> {
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
        let mut line = format!("{:<28}", row.system);
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
