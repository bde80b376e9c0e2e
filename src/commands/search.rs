//! `bmp-index search`: answer queries from a file, write a TREC run, report latency.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use bmp_index::atomic::AtomicFile;
use bmp_index::readers::queries::read_queries;
use bmp_index::readers::SparseRecord;
use bmp_index::segments::Snapshot;
use bmp_index::{Index, LexicalField};
use bmp_query::SearchSpec;
use clap::Args;

use bmp_eval::encode::{encode_queries, encode_query_file};
use bmp_eval::hybrid::{hybrid_records, timed_hybrid_search, HybridRecord};
use bmp_eval::pipeline::timed_search;
use bmp_eval::Latency;
use bmp_lexical::{HybridQuery, HybridSpec, LexicalAnalyzer};

use super::encoding::{load_encoder, EncoderArgs};
use super::lexical::HybridArgs;
use super::multivec::{open_rerank_stage, TokenModelArgs};
use bmp_encoder::{ClusterSpec, TokenVectors};
use bmp_eval::QueryReader;
use bmp_query::chamfer::{rerank, ChamferScorer};
use bmp_query::segments::SnapshotSearcher;

/// Answer top-k queries and write a TREC run.
///
/// Queries are JSONL ({"id": ..., "vector": {"term": weight}}) or Anserini TSV
/// (`qid<TAB>tok tok tok`, a repeated token is its weight), optionally gzip. Terms not in the index
/// vocabulary are ignored and counted. The run (`qid Q0 docid rank score tag`, the score in the
/// model's units: the dot product of query and document weights as quantized, which is the
/// integer score the index ranks by times the query's and the index's scales) goes to --output or
/// standard output; mean / p50 / p99 latency per query goes to standard error. With --model, the
/// queries are text (BEIR queries.jsonl: {"_id", "text"}) encoded with that SPLADE model first;
/// the index must have been built with the same model. With --multivec (text queries only), the
/// top --rerank-depth results are reordered by Chamfer similarity of token embeddings
/// (--token-model) against the store, which `bmp-index multivec` built for this index; the
/// query side is reduced the way the store's documents were (its clustering spec).
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// Index file, or a collection directory (`add`): its segments as of now, deleted documents
    /// left out.
    #[arg(long)]
    pub index: PathBuf,
    /// Query file (JSONL vectors or Anserini TSV; BEIR queries.jsonl with --model, or over an
    /// index with a lexical field; optionally gzip).
    #[arg(long)]
    pub queries: PathBuf,
    /// Encode text queries with this SPLADE model directory.
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Encoder options (with --model).
    #[command(flatten)]
    pub encoder: EncoderArgs,
    /// Hybrid queries (one lexical weight and one fusion).
    #[command(flatten)]
    pub hybrid: HybridArgs,
    /// Number of results per query.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub k: u32,
    /// Query processor, `name[:key=value]*` (e.g. `bmp`, `bmp:alpha=0.9:beta=0.5`); --help lists
    /// the algorithms and their parameters.
    #[arg(long, default_value = "bmp", value_parser = parse_algorithm, long_help = bmp_query::spec::help())]
    pub algorithm: SearchSpec,
    /// Write the run here (atomically) instead of standard output.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Run tag (last column of the run); default `bmp-<algorithm>`.
    #[arg(long)]
    pub tag: Option<String>,
    /// Rerank with this multi-vector store (needs --model: the queries are text).
    #[arg(long, requires = "model")]
    pub multivec: Option<PathBuf>,
    /// How many first-stage results --multivec reorders.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub rerank_depth: u32,
    /// The token model of --multivec.
    #[command(flatten)]
    pub token: TokenModelArgs,
}

/// The second stage of `search`: the store, the token model and each query's raw vectors.
struct MultiVectorStage {
    store: bmp_index::multivec::MultiVecStore,
    spec: ClusterSpec,
    queries: Vec<TokenVectors>,
    scorer: ChamferScorer,
}

/// Parses an `--algorithm` value (`bmp`, `bmp:alpha=0.9:beta=0.5`, `exhaustive`, ...).
pub fn parse_algorithm(s: &str) -> Result<SearchSpec, String> {
    s.parse().map_err(|e: bmp_query::SpecError| e.to_string())
}

/// The queries of `path` and what made them: text encoded with `model`; text analyzed into
/// BM25 words (in BM25 units) over an index with the `lexical` field; or vectors as they are.
pub fn query_records(
    path: &Path,
    model: Option<&Path>,
    encoder: &EncoderArgs,
    lexical: Option<LexicalField>,
) -> anyhow::Result<(Vec<SparseRecord>, &'static str)> {
    match model {
        Some(model) => {
            let encoder = load_encoder(model, encoder)?;
            let start = Instant::now();
            let records = encode_query_file(&encoder, path)?;
            eprintln!(
                "encoded {} queries in {:.2} s ({:.1} ms per query)",
                records.len(),
                start.elapsed().as_secs_f64(),
                start.elapsed().as_secs_f64() * 1e3 / records.len().max(1) as f64
            );
            Ok((records, encoder.label()))
        }
        None => match lexical {
            Some(field) => Ok((bmp_eval::lexical::lexical_query_file(path, &field)?, "bm25")),
            None => Ok((read_queries(path)?, "splade")),
        },
    }
}

/// The text queries of `path` with their encodings by `model`, for hybrid queries.
pub fn hybrid_query_records(
    path: &Path,
    model: &Path,
    encoder: &EncoderArgs,
) -> anyhow::Result<Vec<HybridRecord>> {
    let encoder = load_encoder(model, encoder)?;
    let queries = QueryReader::open(path)?.collect::<Result<Vec<_>, _>>()?;
    let learned = encode_queries(&encoder, &queries)?;
    Ok(hybrid_records(&queries, learned)?)
}

/// What hybrid queries need: the index file at `index` (not a collection directory) and a model
/// for the text.
pub fn hybrid_inputs<'a>(
    index: &Path,
    model: Option<&'a Path>,
) -> anyhow::Result<(Index, &'a Path)> {
    let model = model.context("--hybrid needs --model (the queries are text)")?;
    if index.is_dir() {
        anyhow::bail!(
            "--hybrid takes an index file built with --lexical, not a collection directory"
        );
    }
    Ok((Index::open(index)?, model))
}

/// The lexical field of the index file at `path`, if any (none for a collection directory).
pub fn lexical_field(path: &Path) -> anyhow::Result<Option<LexicalField>> {
    if path.is_dir() {
        return Ok(None);
    }
    Ok(Index::open(path)?.header().lexical())
}

/// Runs `search`.
pub fn run(args: &SearchArgs) -> anyhow::Result<()> {
    let specs = args.hybrid.specs()?;
    if let Some(spec) = specs.first() {
        if specs.len() > 1 {
            anyhow::bail!("search takes one --hybrid weight and one --fusion (eval takes lists)");
        }
        return run_hybrid(args, spec);
    }
    let records = query_records(
        &args.queries,
        args.model.as_deref(),
        &args.encoder,
        lexical_field(&args.index)?,
    )?
    .0;
    if args.index.is_dir() {
        return run_collection(args, &records);
    }
    let index = Index::open(&args.index)?;
    let mut stage = match &args.multivec {
        None => None,
        Some(path) => {
            let (store, spec, encoder) = open_rerank_stage(path, &index, &args.token)?;
            let texts: Vec<String> = QueryReader::open(&args.queries)?
                .map(|q| q.map(|q| q.text))
                .collect::<Result<_, _>>()?;
            if texts.len() != records.len() {
                anyhow::bail!(
                    "{}: {} query texts for {} encoded queries",
                    args.queries.display(),
                    texts.len(),
                    records.len()
                );
            }
            let queries = encoder.encode(&texts)?;
            Some(MultiVectorStage {
                store,
                spec,
                queries,
                scorer: ChamferScorer::new(),
            })
        }
    };
    let tag = run_tag(args)?;
    let mut out = RunOutput::open(args.output.as_deref())?;
    let mut searcher = args.algorithm.searcher(&index);
    let mut micros = Vec::with_capacity(records.len());
    let mut rerank_micros = Vec::new();
    let (mut unknown, mut empty) = (0usize, 0usize);
    for (i, record) in records.iter().enumerate() {
        let (query, hits, took) = timed_search(&index, searcher.as_mut(), record, args.k as usize)?;
        unknown += query.unknown_terms;
        empty += usize::from(query.is_empty());
        micros.push(took);
        let ranked: Vec<(u32, String)> = match stage.as_mut() {
            None => {
                let scale = query.score_scale(&index);
                hits.iter()
                    .map(|h| (h.doc, (f64::from(h.score) * scale).to_string()))
                    .collect()
            }
            Some(st) => {
                let start = Instant::now();
                let q = st.spec.reduce_query(&st.queries[i]);
                let reranked = rerank(
                    &mut st.scorer,
                    &st.store,
                    &q.data,
                    &hits,
                    args.rerank_depth as usize,
                );
                rerank_micros.push(start.elapsed().as_secs_f64() * 1e6);
                reranked
                    .iter()
                    .map(|h| (h.doc, format!("{:.6}", h.score)))
                    .collect()
            }
        };
        for (rank, (doc, score)) in ranked.iter().enumerate() {
            out.line(&record.id, index.doc_id(*doc)?, rank + 1, score, &tag)?;
        }
    }
    out.finish()?;
    let lat = Latency::of(micros);
    eprintln!(
        "{} queries, k={}, algorithm={}: mean {:.1} us, p50 {:.1} us, p99 {:.1} us; \
         {} unknown query terms ignored, {} queries with no known term",
        records.len(),
        args.k,
        args.algorithm,
        lat.mean,
        lat.p50,
        lat.p99,
        unknown,
        empty
    );
    if let Some(st) = &stage {
        let lat = Latency::of(rerank_micros);
        eprintln!(
            "multi-vector rerank ({}, depth {}): mean {:.1} us, p50 {:.1} us, p99 {:.1} us",
            st.spec, args.rerank_depth, lat.mean, lat.p50, lat.p99
        );
    }
    Ok(())
}

/// `search --hybrid`: text queries, each encoded by --model and analyzed into BM25 words, fused
/// as `spec` says over an index file with a lexical field.
fn run_hybrid(args: &SearchArgs, spec: &HybridSpec) -> anyhow::Result<()> {
    if args.multivec.is_some() {
        anyhow::bail!("--multivec reranks plain queries, not --hybrid ones");
    }
    let (index, model) = hybrid_inputs(&args.index, args.model.as_deref())?;
    let records = hybrid_query_records(&args.queries, model, &args.encoder)?;
    let mut analyzer = LexicalAnalyzer::default();
    let tag = run_tag(args)?;
    let mut out = RunOutput::open(args.output.as_deref())?;
    let mut searcher = args.algorithm.searcher(&index);
    let mut micros = Vec::with_capacity(records.len());
    let mut unknown = 0usize;
    for record in &records {
        let in_query = || format!("query {:?}", record.id);
        let query = HybridQuery::new(&index, spec, &record.learned, &record.text, &mut analyzer)
            .with_context(in_query)?;
        let (fused, took) = timed_hybrid_search(&index, searcher.as_mut(), &query, args.k as usize)
            .with_context(in_query)?;
        micros.push(took);
        unknown += fused.unknown_terms;
        for (rank, hit) in fused.hits.iter().enumerate() {
            out.line(
                &record.id,
                index.doc_id(hit.doc)?,
                rank + 1,
                hit.score,
                &tag,
            )?;
        }
    }
    out.finish()?;
    let lat = Latency::of(micros);
    eprintln!(
        "{} queries, k={}, {spec}, algorithm={}: mean {:.1} us, p50 {:.1} us, p99 {:.1} us; {} \
         unknown query terms ignored",
        records.len(),
        args.k,
        args.algorithm,
        lat.mean,
        lat.p50,
        lat.p99,
        unknown
    );
    Ok(())
}

/// Where `search` writes its run: `--output` (atomically, when finished) or standard output.
enum RunOutput {
    File(AtomicFile),
    Stdout(BufWriter<std::io::Stdout>),
}

impl RunOutput {
    fn open(output: Option<&Path>) -> anyhow::Result<Self> {
        Ok(match output {
            Some(path) => RunOutput::File(AtomicFile::create(path)?),
            None => RunOutput::Stdout(BufWriter::new(std::io::stdout())),
        })
    }

    /// Writes one line: `qid Q0 docid rank score tag`.
    fn line(
        &mut self,
        qid: &str,
        doc_id: &str,
        rank: usize,
        score: impl std::fmt::Display,
        tag: &str,
    ) -> anyhow::Result<()> {
        let out: &mut dyn Write = match self {
            RunOutput::File(f) => f,
            RunOutput::Stdout(s) => s,
        };
        writeln!(out, "{qid} Q0 {doc_id} {rank} {score} {tag}").context("cannot write the run")
    }

    /// Flushes the run, and puts the file in place.
    fn finish(self) -> anyhow::Result<()> {
        match self {
            RunOutput::File(mut f) => {
                f.flush().context("cannot write the run")?;
                f.commit()?;
            }
            RunOutput::Stdout(mut s) => s.flush().context("cannot write the run")?,
        }
        Ok(())
    }
}

/// The run tag: `--tag`, or `bmp-<algorithm>`.
fn run_tag(args: &SearchArgs) -> anyhow::Result<String> {
    let tag = args
        .tag
        .clone()
        .unwrap_or_else(|| format!("bmp-{}", args.algorithm).replace([':', '='], "-"));
    if tag.is_empty() || tag.contains(char::is_whitespace) {
        anyhow::bail!("--tag must be one word, got {tag:?}");
    }
    Ok(tag)
}

/// `search` over a collection directory: every segment of its current snapshot, one ranking.
fn run_collection(args: &SearchArgs, records: &[SparseRecord]) -> anyhow::Result<()> {
    if args.multivec.is_some() {
        anyhow::bail!(
            "--multivec reranks the results of one index file; {} is a collection directory",
            args.index.display()
        );
    }
    let snapshot = Snapshot::open(&args.index)?;
    let tag = run_tag(args)?;
    let mut out = RunOutput::open(args.output.as_deref())?;
    let mut searcher = SnapshotSearcher::new(&snapshot, &args.algorithm);
    let mut micros = Vec::with_capacity(records.len());
    let mut unknown = 0usize;
    for record in records {
        let start = Instant::now();
        let results = searcher
            .search(&record.entries, args.k as usize)
            .with_context(|| format!("query {:?}", record.id))?;
        micros.push(start.elapsed().as_secs_f64() * 1e6);
        unknown += results.unknown_terms;
        for (rank, h) in results.hits.iter().enumerate() {
            let doc_id = snapshot.segments[h.segment].index.doc_id(h.doc)?;
            let score = f64::from(h.score) * results.score_scale;
            out.line(&record.id, doc_id, rank + 1, score, &tag)?;
        }
    }
    out.finish()?;
    let lat = Latency::of(micros);
    eprintln!(
        "{} queries over {} segments ({} live documents), k={}, algorithm={}: mean {:.1} us, \
         p50 {:.1} us, p99 {:.1} us; {} unknown query terms ignored",
        records.len(),
        snapshot.segments.len(),
        snapshot.live_docs(),
        args.k,
        args.algorithm,
        lat.mean,
        lat.p50,
        lat.p99,
        unknown
    );
    Ok(())
}
