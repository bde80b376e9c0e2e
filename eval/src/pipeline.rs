//! The evaluation of a BEIR dataset from its text, the way `bmp-index eval --dataset` and the
//! Python package run it: every model loaded, the corpus encoded (cached), indexed (cached), the
//! judged queries encoded and answered by each query processor, BM25, dense and multi-vector
//! systems added on request, and every run scored.
//!
//! ```no_run
//! use bmp_eval::pipeline::{evaluate_dataset, DatasetEval};
//! use bmp_eval::progress::Silent;
//! # fn main() -> bmp_eval::Result<()> {
//! let mut config = DatasetEval::new("data/scifact", "models/splade-tiny");
//! config.bm25 = Some(Default::default());
//! let report = evaluate_dataset(&config, &Silent)?;
//! for system in &report.systems {
//!     println!("{}: {}", system.name, system.eval);
//! }
//! # Ok(())
//! # }
//! ```

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use bmp_encoder::dense_index::DenseIndex;
use bmp_encoder::llm_embed::Pooling;
use bmp_encoder::{
    ClusterSpec, TextEncoder, TextEncoderOptions, TokenEncoder, TokenEncoderOptions,
};
use bmp_index::atomic::AtomicFile;
use bmp_index::build::{build_index_ordered, BuildOptions};
use bmp_index::readers::{read_collection_file, DocumentFormat, SparseRecord};
use bmp_index::reorder::{bp_order_collection, BpOptions};
use bmp_index::segments::Snapshot;
use bmp_index::Index;
use bmp_query::chamfer::{rerank, ChamferScorer};
use bmp_query::segments::SnapshotSearcher;
use bmp_query::{Hit, Query, SearchSpec, Searcher};

use crate::bm25::{Bm25Index, Bm25Params, Bm25Storage};
use crate::dataset::BeirDataset;
use crate::encode::{encode_corpus, encode_queries_with_dense, write_vector_line};
use crate::error::{Error, Result};
use crate::evaluate::{evaluate, EvalOptions, Evaluation, Measure};
use crate::hybrid::{evaluate_hybrid, hybrid_records};
use crate::input_key::input_key;
use crate::jsonl::Query as TextQuery;
use crate::latency::Latency;
use crate::lexical::hybrid_from_vectors;
use crate::multivec::{build_stores, open_store, store_path};
use crate::progress::Progress;
use crate::qrels::Qrels;
use crate::run::Run;
use bmp_lexical::HybridSpec;

/// What [`evaluate_dataset`] does; [`DatasetEval::new`] gives the defaults of `bmp-index eval`.
#[derive(Debug, Clone)]
pub struct DatasetEval {
    /// The BEIR-layout directory (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv).
    pub dataset: PathBuf,
    /// The qrels split (qrels/SPLIT.tsv).
    pub split: String,
    /// Qrels to use instead of the split's.
    pub qrels: Option<PathBuf>,
    /// The sparse encoder: a SPLADE directory, or a decoder LLM.
    pub model: PathBuf,
    /// Its options.
    pub encoder: TextEncoderOptions,
    /// Where encoded vectors, indexes and stores are cached (`None`: eval-cache/<dataset name>).
    /// The cache is keyed by the model directory's name, the encoder options, and the files of
    /// the corpus and the model (their paths, lengths and modification times).
    pub work_dir: Option<PathBuf>,
    /// Results per query.
    pub k: usize,
    /// The query processors, one system each (at least one).
    pub algorithms: Vec<SearchSpec>,
    /// Reorder the documents of the index by recursive graph bisection with these options.
    pub reorder: Option<BpOptions>,
    /// Add a BM25 system over title and text with these parameters.
    pub bm25: Option<Bm25Params>,
    /// Add hybrid (BM25 + learned) systems, one per spec and algorithm: the index is then built
    /// with a lexical field (BM25 with [`Self::hybrid_bm25`]), and every system searches it.
    pub hybrid: Vec<HybridSpec>,
    /// BM25's parameters in the lexical field of [`Self::hybrid`].
    pub hybrid_bm25: Bm25Params,
    /// Add the dense embeddings of a decoder LLM model, pooled this way, searched exactly.
    pub dense: Option<Pooling>,
    /// Rerank the first algorithm's results with token embeddings.
    pub rerank: Option<MultiVectorRerank>,
    /// The measures computed.
    pub measures: Vec<Measure>,
    /// How the measures are computed and averaged.
    pub options: EvalOptions,
}

impl DatasetEval {
    /// The defaults: split `test`, k = 1000, BMP, no reordering, the standard measures, and no
    /// BM25, dense or reranked system.
    pub fn new(dataset: impl Into<PathBuf>, model: impl Into<PathBuf>) -> Self {
        DatasetEval {
            dataset: dataset.into(),
            split: "test".into(),
            qrels: None,
            model: model.into(),
            encoder: TextEncoderOptions::default(),
            work_dir: None,
            k: 1000,
            algorithms: vec![SearchSpec::default()],
            reorder: None,
            bm25: None,
            hybrid: Vec::new(),
            hybrid_bm25: Bm25Params::default(),
            dense: None,
            rerank: None,
            measures: Measure::standard(),
            options: EvalOptions::default(),
        }
    }

    /// The cache directory: [`Self::work_dir`], or eval-cache/<dataset directory's name>.
    pub fn cache_dir(&self) -> PathBuf {
        self.work_dir.clone().unwrap_or_else(|| {
            let name = self
                .dataset
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "dataset".into());
            Path::new("eval-cache").join(name)
        })
    }
}

/// The multi-vector second stage: Chamfer (MaxSim) similarity of token embeddings, reduced per
/// clustering spec, over the first algorithm's top `depth`.
#[derive(Debug, Clone)]
pub struct MultiVectorRerank {
    /// The token model (a BERT-family directory).
    pub model: PathBuf,
    /// Its options.
    pub options: TokenEncoderOptions,
    /// One system per reduction.
    pub clusters: Vec<ClusterSpec>,
    /// How many first-stage results are reordered.
    pub depth: usize,
}

impl MultiVectorRerank {
    /// A name for cache keys: the model directory's name and the truncation length.
    pub fn key(&self) -> String {
        let name = self
            .model
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "tokens".into());
        format!("{name}.len{}", self.options.max_length)
    }

    /// Loads the token model; the error names it.
    pub fn load(&self) -> Result<TokenEncoder> {
        TokenEncoder::load(&self.model, self.options.clone()).map_err(|e| {
            Error::from(e).context(format!("cannot load token model {}", self.model.display()))
        })
    }
}

/// One evaluated system: its run, measures and latency.
#[derive(Debug, Clone)]
pub struct SystemResult {
    /// What it is, for a table (`splade bmp`, `bm25 (k1=1.2,b=0.75)`, ...).
    pub name: String,
    /// Its run, best first per query, with scores in the index's units.
    pub run: Run,
    /// The run's measures.
    pub eval: Evaluation,
    /// Search latency per query (encoding excluded), when it was measured.
    pub latency: Option<Latency>,
}

impl SystemResult {
    /// Scores `run` against `qrels`.
    pub fn new(
        name: impl Into<String>,
        run: Run,
        latency: Option<Latency>,
        qrels: &Qrels,
        measures: &[Measure],
        options: &EvalOptions,
    ) -> Result<Self> {
        let eval = evaluate(qrels, &run, measures, options)?;
        Ok(SystemResult {
            name: name.into(),
            run,
            eval,
            latency,
        })
    }

    /// The name as a run tag and file stem: runs of letters, digits, `.` and `_` kept, everything
    /// else one `-` (`splade bmp:alpha=0.9` → `splade-bmp-alpha-0.9`).
    pub fn tag(&self) -> String {
        let mut tag = String::with_capacity(self.name.len());
        for c in self.name.chars() {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' {
                tag.push(c);
            } else if !tag.is_empty() && !tag.ends_with('-') {
                tag.push('-');
            }
        }
        while tag.ends_with('-') {
            tag.pop();
        }
        tag
    }
}

/// What one multi-vector reduction costs.
#[derive(Debug, Clone)]
pub struct RerankCost {
    /// The clustering spec.
    pub spec: String,
    /// Vectors per document that has any.
    pub vectors_per_doc: f64,
    /// Vectors per query.
    pub query_vectors: f64,
    /// The store's size.
    pub bytes: u64,
    /// Reranking latency per query.
    pub latency: Latency,
}

/// What [`evaluate_dataset`] measured.
#[derive(Debug, Clone, Default)]
pub struct DatasetReport {
    /// One per query processor, then dense, reranked and BM25 systems as asked.
    pub systems: Vec<SystemResult>,
    /// The cost of each multi-vector reduction, when reranking was asked.
    pub rerank_costs: Vec<RerankCost>,
}

/// Where queries are answered: one index, or the segments of a collection.
#[derive(Clone, Copy)]
pub enum SearchTarget<'a> {
    /// One index file.
    Index(&'a Index),
    /// The segments of a collection as of a snapshot.
    Snapshot(&'a Snapshot),
}

/// Answers one query record with `searcher`: the parsed query, its hits, and the search time in
/// microseconds (query parsing excluded).
pub fn timed_search(
    index: &Index,
    searcher: &mut dyn Searcher,
    record: &SparseRecord,
    k: usize,
) -> Result<(Query, Vec<Hit>, f64)> {
    let in_query = |e: bmp_index::Error| Error::from(e).context(format!("query {:?}", record.id));
    let query = Query::from_entries(index, &record.entries).map_err(in_query)?;
    let start = Instant::now();
    let hits = searcher.search(&query, k).map_err(in_query)?;
    Ok((query, hits, start.elapsed().as_secs_f64() * 1e6))
}

/// Answers `records` with each of `specs` over `target` and scores each run: one system per
/// spec, named `{label} {spec}` (with the number of segments of a collection).
#[allow(clippy::too_many_arguments)]
pub fn evaluate_systems(
    target: SearchTarget<'_>,
    records: &[SparseRecord],
    label: &str,
    specs: &[SearchSpec],
    k: usize,
    qrels: &Qrels,
    measures: &[Measure],
    options: &EvalOptions,
) -> Result<Vec<SystemResult>> {
    let mut systems = Vec::with_capacity(specs.len());
    for spec in specs {
        let (name, (run, micros)) = match target {
            SearchTarget::Index(index) => (
                format!("{label} {spec}"),
                run_index(index, spec, records, k)?,
            ),
            SearchTarget::Snapshot(snapshot) => (
                format!("{label} {spec} ({} segments)", snapshot.segments.len()),
                run_snapshot(snapshot, spec, records, k)?,
            ),
        };
        systems.push(SystemResult::new(
            name,
            run,
            Some(Latency::of(micros)),
            qrels,
            measures,
            options,
        )?);
    }
    Ok(systems)
}

/// The run of `spec` over one index, and each query's search time in microseconds.
fn run_index(
    index: &Index,
    spec: &SearchSpec,
    records: &[SparseRecord],
    k: usize,
) -> Result<(Run, Vec<f64>)> {
    let mut searcher = spec.searcher(index);
    let mut run = Run::new();
    let mut micros = Vec::with_capacity(records.len());
    for record in records {
        let (query, hits, took) = timed_search(index, searcher.as_mut(), record, k)?;
        micros.push(took);
        let scale = query.score_scale(index);
        let mut ranked = Vec::with_capacity(hits.len());
        for hit in &hits {
            ranked.push((
                index.doc_id(hit.doc)?.to_owned(),
                f64::from(hit.score) * scale,
            ));
        }
        run.insert(record.id.clone(), ranked);
    }
    Ok((run, micros))
}

/// The run of `spec` over the segments of a collection, and each query's search time.
fn run_snapshot(
    snapshot: &Snapshot,
    spec: &SearchSpec,
    records: &[SparseRecord],
    k: usize,
) -> Result<(Run, Vec<f64>)> {
    let mut searcher = SnapshotSearcher::new(snapshot, spec);
    let mut run = Run::new();
    let mut micros = Vec::with_capacity(records.len());
    for record in records {
        let start = Instant::now();
        let results = searcher
            .search(&record.entries, k)
            .map_err(|e| Error::from(e).context(format!("query {:?}", record.id)))?;
        micros.push(start.elapsed().as_secs_f64() * 1e6);
        let mut ranked = Vec::with_capacity(results.hits.len());
        for h in &results.hits {
            let id = snapshot.segments[h.segment].index.doc_id(h.doc)?;
            ranked.push((id.to_owned(), f64::from(h.score) * results.score_scale));
        }
        run.insert(record.id.clone(), ranked);
    }
    Ok((run, micros))
}

/// The whole pipeline on a BEIR dataset; see the module documentation. Every model is loaded
/// (and a dense or token model checked) before anything is encoded; encoded vectors, the index
/// and multi-vector stores are cached in [`DatasetEval::cache_dir`] under names keyed by the
/// files they are made from (another corpus or a retrained model gets new ones), and rebuilt
/// when missing or older than what they are made from.
pub fn evaluate_dataset(config: &DatasetEval, progress: &dyn Progress) -> Result<DatasetReport> {
    if config.algorithms.is_empty() {
        return Err(Error::InvalidOption(
            "no query processor to evaluate".into(),
        ));
    }
    let data = BeirDataset::open(&config.dataset, &config.split)?;
    let corpus = data.corpus_path().ok_or_else(|| {
        Error::Invalid(format!(
            "{}: no corpus.jsonl; to evaluate queries and qrels alone, search an existing index \
             with --index INDEX --queries FILE --qrels {}",
            config.dataset.display(),
            data.qrels_path().display()
        ))
    })?;
    let qrels = match &config.qrels {
        Some(path) => Qrels::read(path)?,
        None => data.qrels()?,
    };
    let queries = data.judged_queries(&qrels)?;
    if queries.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: no query of queries.jsonl is judged in the qrels",
            config.dataset.display()
        )));
    }
    let work = config.cache_dir();
    fs::create_dir_all(&work).map_err(|e| Error::io(&work, e))?;

    // Every model first: a missing one fails before any encoding.
    let mut encoder = TextEncoder::load(&config.model, &config.encoder).map_err(|e| {
        Error::from(e).context(format!(
            "cannot load the model in {}",
            config.model.display()
        ))
    })?;
    if let Some(pooling) = config.dense {
        encoder.enable_dense(pooling)?;
    }
    let token_encoder = config
        .rerank
        .as_ref()
        .map(MultiVectorRerank::load)
        .transpose()?;

    let model_name = config
        .model
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "model".into());
    // Another corpus, or the same model retrained in place, gets a cache of its own.
    let inputs = input_key(&[corpus, &config.model])?;
    let key = format!("{model_name}.{}.{inputs}", config.encoder.document_key());
    let vectors = work.join(format!("corpus.{key}.jsonl"));
    let dense_path = config.dense.map(|pooling| {
        let dim = config.encoder.dense_key();
        work.join(format!("corpus.{key}.dense-{pooling}{dim}.bin"))
    });
    if vectors.exists() && dense_path.as_ref().is_none_or(|p| p.exists()) {
        progress.note(&format!(
            "using cached document vectors {}",
            vectors.display()
        ));
    } else {
        encode_cached(&encoder, corpus, &vectors, dense_path.as_deref(), progress)?;
    }

    let reorder = if config.reorder.is_some() {
        "bp"
    } else {
        "none"
    };
    let lexical = (!config.hybrid.is_empty()).then_some(config.hybrid_bm25);
    let index_path = work.join(match lexical {
        None => format!("index.{key}.{reorder}.bmp"),
        Some(params) => format!(
            "index.{key}.{reorder}.bm25-{}.bmp",
            params.label().replace([',', '='], "-")
        ),
    });
    if !index_path.exists() || !newer(&index_path, &vectors) {
        let lexical = lexical.map(|params| (corpus, params));
        build_cached(
            &vectors,
            lexical,
            &index_path,
            config.reorder.as_ref(),
            progress,
        )?;
    }
    let index = Index::open(&index_path)?;
    // One pass of the model gives each query its sparse vector and, with --dense, its
    // embedding.
    let start = Instant::now();
    let (records, query_embeddings) = encode_queries_with_dense(&encoder, &queries)?;
    progress.note(&format!(
        "encoded {} queries: {:.2} ms per query{}",
        records.len(),
        start.elapsed().as_secs_f64() * 1e3 / records.len().max(1) as f64,
        if config.dense.is_some() {
            " (sparse and dense)"
        } else {
            ""
        }
    ));
    let (measures, options) = (&config.measures, &config.options);
    let mut report = DatasetReport {
        systems: evaluate_systems(
            SearchTarget::Index(&index),
            &records,
            encoder.label(),
            &config.algorithms,
            config.k,
            &qrels,
            measures,
            options,
        )?,
        rerank_costs: Vec::new(),
    };
    if !config.hybrid.is_empty() {
        report.systems.extend(evaluate_hybrid(
            &index,
            &hybrid_records(&queries, records.clone())?,
            &config.hybrid,
            &config.algorithms,
            config.k,
            &qrels,
            measures,
            options,
        )?);
    }
    if let (Some(pooling), Some(path)) = (config.dense, &dense_path) {
        let dense = DenseIndex::open(path)?;
        let (run, micros) = dense_run(&dense, &queries, &query_embeddings, config.k)?;
        report.systems.push(SystemResult::new(
            format!("llm-dense {pooling} (flat)"),
            run,
            Some(Latency::of(micros)),
            &qrels,
            measures,
            options,
        )?);
    }
    if let (Some(stage), Some(token_encoder)) = (&config.rerank, &token_encoder) {
        let stem = index_path
            .file_stem()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let token_inputs = input_key(&[&stage.model])?;
        let stores = work.join(format!("multivec.{}.{token_inputs}.{stem}", stage.key()));
        let first_spec = &config.algorithms[0];
        let mut searcher = first_spec.searcher(&index);
        let mut first_stage = Vec::with_capacity(records.len());
        for record in &records {
            first_stage.push(timed_search(&index, searcher.as_mut(), record, config.k)?.1);
        }
        let texts: Vec<String> = queries.iter().map(|q| q.text.clone()).collect();
        let reranked = Reranked {
            index: &index,
            index_path: &index_path,
            corpus,
            stores: &stores,
            encoder: token_encoder,
            stage,
            query_ids: records.iter().map(|r| r.id.as_str()).collect(),
            query_texts: &texts,
            first_stage: &first_stage,
        };
        for (system, cost) in reranked.evaluate(first_spec, &qrels, measures, options, progress)? {
            report.systems.push(system);
            report.rerank_costs.push(cost);
        }
    }
    if let Some(params) = config.bm25 {
        report.systems.push(bm25_system(
            &data, &queries, params, config.k, &qrels, measures, options, progress,
        )?);
    }
    Ok(report)
}

/// Whether `a` was modified at or after `b` (false when either time is unknown).
fn newer(a: &Path, b: &Path) -> bool {
    let modified =
        |p: &Path| -> Option<SystemTime> { fs::metadata(p).and_then(|m| m.modified()).ok() };
    matches!((modified(a), modified(b)), (Some(x), Some(y)) if x >= y)
}

/// Encodes the corpus into the JSONL file `vectors` (and the dense embeddings into `dense`),
/// each written whole or not at all.
fn encode_cached(
    encoder: &TextEncoder,
    corpus: &Path,
    vectors: &Path,
    dense: Option<&Path>,
    progress: &dyn Progress,
) -> Result<()> {
    let mut file = AtomicFile::create(vectors)?;
    let mut out = BufWriter::new(&mut file);
    let mut embeddings = None::<DenseIndex>;
    let write_error = |e: std::io::Error| Error::io(vectors, e);
    let summary = encode_corpus(encoder, corpus, progress, &mut |doc, vector, embedding| {
        if let Some(embedding) = embedding {
            embeddings
                .get_or_insert_with(|| DenseIndex::new(embedding.len()))
                .push_with_id(&doc.id, embedding)?;
        }
        write_vector_line(&mut out, encoder, &doc.id, vector).map_err(write_error)
    })?;
    out.flush().map_err(write_error)?;
    drop(out);
    file.commit()?;
    if let (Some(path), Some(embeddings)) = (dense, embeddings) {
        embeddings.save(path)?;
    }
    progress.note(&format!(
        "encoded {} documents: {:.1} docs/s{}, {:.1} terms per document",
        summary.docs,
        summary.docs_per_second(),
        if dense.is_some() {
            " (sparse and dense)"
        } else {
            ""
        },
        summary.postings as f64 / summary.docs.max(1) as f64
    ));
    Ok(())
}

/// Indexes the encoded vectors into `index_path`, reordered when `reorder` says so, with the
/// BM25 weights of the corpus as a lexical field when `lexical` gives it and their parameters.
fn build_cached(
    vectors: &Path,
    lexical: Option<(&Path, Bm25Params)>,
    index_path: &Path,
    reorder: Option<&BpOptions>,
    progress: &dyn Progress,
) -> Result<()> {
    let mut collection = read_collection_file(vectors, DocumentFormat::Jsonl)?;
    let mut field = None;
    if let Some((corpus, params)) = lexical {
        let (joined, lexical) = hybrid_from_vectors(&collection, corpus, params, progress)?;
        collection = joined;
        field = Some(lexical);
    }
    let order = match reorder {
        None => (0..collection.num_docs() as u32).collect(),
        Some(options) => {
            let total = collection.num_docs() as u64;
            let order = bp_order_collection(&collection, options, &|done, _| {
                progress.update("reordering", done, total)
            });
            progress.finish();
            order
        }
    };
    let summary = build_index_ordered(
        &collection,
        &order,
        index_path,
        &BuildOptions {
            lexical: field,
            ..BuildOptions::default()
        },
        &mut |stage, done, total| progress.update(stage, done, total),
    )?;
    progress.finish();
    progress.note(&format!(
        "indexed {} documents ({} postings, {} bytes) into {}",
        summary.num_docs,
        summary.num_postings,
        summary.bytes,
        index_path.display()
    ));
    Ok(())
}

/// Dense retrieval: the queries' embeddings `embedded` answered exactly over `index`.
fn dense_run(
    index: &DenseIndex,
    queries: &[TextQuery],
    embedded: &[Vec<f32>],
    k: usize,
) -> Result<(Run, Vec<f64>)> {
    if embedded.len() != queries.len() {
        return Err(Error::Invalid(format!(
            "{} query embeddings for {} queries",
            embedded.len(),
            queries.len()
        )));
    }
    let mut run = Run::new();
    let mut micros = Vec::with_capacity(queries.len());
    for (q, v) in queries.iter().zip(embedded) {
        if v.len() != index.dim() {
            return Err(Error::Invalid(format!(
                "query embeddings of dimension {}, cached document embeddings of {}: delete the \
                 cache directory",
                v.len(),
                index.dim()
            )));
        }
        let start = Instant::now();
        let hits = index.search(v, k);
        micros.push(start.elapsed().as_secs_f64() * 1e6);
        let ranked = hits
            .into_iter()
            .map(|(i, score)| (index.id(i).unwrap_or_default().to_owned(), f64::from(score)));
        run.insert(q.id.clone(), ranked);
    }
    Ok((run, micros))
}

/// The BM25 system: title and text indexed in RAM, every query answered.
#[allow(clippy::too_many_arguments)]
fn bm25_system(
    data: &BeirDataset,
    queries: &[TextQuery],
    params: Bm25Params,
    k: usize,
    qrels: &Qrels,
    measures: &[Measure],
    options: &EvalOptions,
    progress: &dyn Progress,
) -> Result<SystemResult> {
    let start = Instant::now();
    let bm25 = Bm25Index::build(&Bm25Storage::Ram, data.corpus()?)?.with_params(params);
    progress.note(&format!(
        "BM25 index of {} documents built in {:.1} s",
        bm25.num_docs(),
        start.elapsed().as_secs_f64()
    ));
    let mut run = Run::new();
    let mut micros = Vec::with_capacity(queries.len());
    for q in queries {
        let start = Instant::now();
        let hits = bm25.search(&q.text, k)?;
        micros.push(start.elapsed().as_secs_f64() * 1e6);
        run.insert(
            q.id.clone(),
            hits.into_iter().map(|(d, s)| (d, f64::from(s))),
        );
    }
    SystemResult::new(
        format!("bm25 ({})", params.label()),
        run,
        Some(Latency::of(micros)),
        qrels,
        measures,
        options,
    )
}

/// The multi-vector second stage over a first stage's hits.
struct Reranked<'a> {
    index: &'a Index,
    index_path: &'a Path,
    corpus: &'a Path,
    stores: &'a Path,
    encoder: &'a TokenEncoder,
    stage: &'a MultiVectorRerank,
    query_ids: Vec<&'a str>,
    query_texts: &'a [String],
    first_stage: &'a [Vec<Hit>],
}

impl Reranked<'_> {
    /// One system and one cost per reduction; the stores that are missing (or older than the
    /// index) are built first.
    fn evaluate(
        &self,
        first: &SearchSpec,
        qrels: &Qrels,
        measures: &[Measure],
        options: &EvalOptions,
        progress: &dyn Progress,
    ) -> Result<Vec<(SystemResult, RerankCost)>> {
        fs::create_dir_all(self.stores).map_err(|e| Error::io(self.stores, e))?;
        let fresh = |p: &Path| open_store(p, self.index).is_ok() && newer(p, self.index_path);
        let missing: Vec<ClusterSpec> = self
            .stage
            .clusters
            .iter()
            .filter(|s| !fresh(&store_path(self.stores, s)))
            .cloned()
            .collect();
        if !missing.is_empty() {
            let paths: Vec<PathBuf> = missing.iter().map(|s| store_path(self.stores, s)).collect();
            let start = Instant::now();
            build_stores(
                self.index,
                self.corpus,
                self.encoder,
                &missing,
                &paths,
                progress,
            )?;
            progress.note(&format!(
                "built {} multi-vector stores in {:.1} s",
                missing.len(),
                start.elapsed().as_secs_f64()
            ));
        }
        let raw = self.encoder.encode(self.query_texts)?;
        let depth = self.stage.depth;
        let mut out = Vec::with_capacity(self.stage.clusters.len());
        for spec in &self.stage.clusters {
            let store = open_store(&store_path(self.stores, spec), self.index)?;
            let mut scorer = ChamferScorer::new();
            let mut run = Run::new();
            let mut micros = Vec::with_capacity(self.first_stage.len());
            let mut query_vectors = 0usize;
            for ((id, hits), tokens) in self.query_ids.iter().zip(self.first_stage).zip(&raw) {
                let start = Instant::now();
                let q = spec.reduce_query(tokens);
                let reranked = rerank(&mut scorer, &store, &q.data, hits, depth);
                micros.push(start.elapsed().as_secs_f64() * 1e6);
                query_vectors += q.len();
                let mut ranked = Vec::with_capacity(reranked.len());
                for h in &reranked {
                    ranked.push((self.index.doc_id(h.doc)?.to_owned(), f64::from(h.score)));
                }
                run.insert(*id, ranked);
            }
            let latency = Latency::of(micros);
            let system = SystemResult::new(
                format!("{first} > mv {spec}@{depth}"),
                run,
                Some(latency),
                qrels,
                measures,
                options,
            )?;
            let docs_with = (0..store.num_docs())
                .filter(|&d| !store.doc(d).is_empty())
                .count();
            let cost = RerankCost {
                spec: spec.to_string(),
                vectors_per_doc: store.num_vectors() as f64 / docs_with.max(1) as f64,
                query_vectors: query_vectors as f64 / self.first_stage.len().max(1) as f64,
                bytes: store.file_len(),
                latency,
            };
            out.push((system, cost));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_file_names() {
        let system = |name: &str| SystemResult {
            name: name.into(),
            run: Run::new(),
            eval: evaluate(&Qrels::default(), &Run::new(), &[], &EvalOptions::default())
                .expect("empty evaluation"),
            latency: None,
        };
        assert_eq!(system("splade bmp:alpha=0.9").tag(), "splade-bmp-alpha-0.9");
        assert_eq!(system("bm25 (k1=1.2,b=0.75)").tag(), "bm25-k1-1.2-b-0.75");
        assert_eq!(system("bmp > mv C8x32@100").tag(), "bmp-mv-C8x32-100");
        assert_eq!(system("llm-dense mean (flat)").tag(), "llm-dense-mean-flat");
    }
}
