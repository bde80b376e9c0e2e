//! `bmp.Index`: build, open, inspect, check and search one index file.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use bmp_index::build::{build_index_ordered, BuildOptions};
use bmp_index::docids::ExternalIds;
use bmp_index::format::{DEFAULT_BLOCK_SIZE, DEFAULT_SUPERBLOCK_SIZE};
use bmp_index::readers::{read_collection_file, DocumentFormat};
use bmp_index::reorder::{bp_order_collection, BpOptions};
use bmp_index::Collection;
use bmp_query::{DocFilter, Query, SearchSpec, ALGORITHMS};
use numpy::ndarray::Array2;
use numpy::{PyArray1, PyArray2};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use rayon::prelude::*;

use crate::convert::{
    collection_from_csr, collection_from_pairs, id_list, is_sparse, queries_of, query_of, Csr,
};
use crate::errors::{encoder_to_py, eval_to_py, invalid, to_py};

/// The names of the query processors, in the order `bmp-index search --help` lists them.
pub fn algorithm_names() -> Vec<&'static str> {
    ALGORITHMS.iter().map(|a| a.name).collect()
}

/// A memory-mapped index file, opened once and shared by every search (searches release the GIL
/// and may run from several Python threads at once).
#[pyclass(frozen, module = "bmp")]
pub struct Index {
    inner: Arc<bmp_index::Index>,
    /// The external ids sorted for lookup, built on the first filtered search.
    ids: OnceLock<ExternalIds>,
}

/// The processor `algorithm` with the parameters `params` (`alpha=0.9`, ...), checked by the one
/// parser the CLI and the server use.
pub fn spec(algorithm: &str, params: Option<&Bound<'_, PyDict>>) -> PyResult<SearchSpec> {
    let mut pairs: Vec<(String, f32)> = Vec::new();
    if let Some(params) = params {
        for (key, value) in params.iter() {
            let key: String = key.extract()?;
            let value: f32 = value
                .extract()
                .map_err(|_| invalid(format!("{key} must be a number, got {value:?}")))?;
            pairs.push((key, value));
        }
    }
    let pairs: Vec<(&str, f32)> = pairs.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    SearchSpec::from_parts(Some(algorithm), &pairs).map_err(|e| invalid(e.to_string()))
}

/// Refuses `k == 0`.
pub fn check_k(k: usize) -> PyResult<()> {
    if k == 0 {
        return Err(invalid("k must be at least 1"));
    }
    Ok(())
}

impl Index {
    fn new(index: bmp_index::Index) -> Index {
        Index {
            inner: Arc::new(index),
            ids: OnceLock::new(),
        }
    }

    /// The engine's index.
    pub(crate) fn shared(&self) -> &Arc<bmp_index::Index> {
        &self.inner
    }

    /// The external ids sorted for lookup, built on first use.
    pub(crate) fn external_ids(&self) -> PyResult<&ExternalIds> {
        match self.ids.get() {
            Some(lookup) => Ok(lookup),
            None => {
                let built = ExternalIds::build(&self.inner).map_err(to_py)?;
                Ok(self.ids.get_or_init(|| built))
            }
        }
    }

    /// The documents of the index among `ids` (unknown ids are left out).
    fn filter(&self, ids: &[String]) -> PyResult<DocFilter> {
        let (docs, _) = self
            .external_ids()?
            .find_all(&self.inner, ids)
            .map_err(to_py)?;
        Ok(DocFilter::new(docs.into_iter().collect()))
    }
}

/// One query's hits: `(internal doc, score)` with scores in the model's units.
fn search_one(
    index: &bmp_index::Index,
    searcher: &mut dyn bmp_query::Searcher,
    query: &Query,
    k: usize,
    filter: Option<&DocFilter>,
) -> bmp_index::Result<Vec<(u32, f64)>> {
    let hits = searcher.search_filtered(query, k, filter)?;
    let scale = query.score_scale(index);
    Ok(hits
        .into_iter()
        .map(|h| (h.doc, f64::from(h.score) * scale))
        .collect())
}

/// [`search_one`] of the entries `entries`, unfiltered.
fn search_entries(
    index: &bmp_index::Index,
    searcher: &mut dyn bmp_query::Searcher,
    entries: &[(String, f32)],
    k: usize,
) -> PyResult<Vec<(u32, f64)>> {
    let query = Query::from_entries(index, entries).map_err(to_py)?;
    search_one(index, searcher, &query, k, None).map_err(to_py)
}

#[pymethods]
impl Index {
    /// Opens an index file written by `Index.build` or `bmp-index build`.
    ///
    /// Raises OSError when the file cannot be read and CorruptIndexError when it is not a
    /// valid index.
    #[staticmethod]
    fn open(py: Python<'_>, path: PathBuf) -> PyResult<Index> {
        let index = py.detach(|| bmp_index::Index::open(&path)).map_err(to_py)?;
        Ok(Index::new(index))
    }

    /// Builds an index at `path` and opens it.
    ///
    /// `documents` is one of:
    /// - an iterable of `(id, {term: weight})` pairs (ids are str or int);
    /// - a SciPy sparse matrix (a document per row) with `vocabulary`, the term of each column,
    ///   and optionally `ids`, the id of each row (default: the row numbers);
    /// - the path of a JSONL (`{"id": ..., "vector": {...}}` per line) or CIFF file, plain or
    ///   gzip; `format` ("jsonl" or "ciff") overrides what the name suggests.
    ///
    /// `block_size` (8 to 256) and `superblock_size` are the index layout; `reorder="bp"`
    /// reorders the documents by graph bisection first (smaller, faster indexes; slower build).
    /// The file is replaced only once the new index is complete.
    #[staticmethod]
    #[pyo3(signature = (path, documents, *, vocabulary=None, ids=None, format=None,
                        block_size=DEFAULT_BLOCK_SIZE, superblock_size=DEFAULT_SUPERBLOCK_SIZE,
                        reorder="none"))]
    #[allow(clippy::too_many_arguments)]
    fn build(
        py: Python<'_>,
        path: PathBuf,
        documents: &Bound<'_, PyAny>,
        vocabulary: Option<Vec<String>>,
        ids: Option<&Bound<'_, PyAny>>,
        format: Option<&str>,
        block_size: u32,
        superblock_size: u32,
        reorder: &str,
    ) -> PyResult<Index> {
        let bp = parse_reorder(reorder)?;
        let collection = if let Ok(input) = documents.extract::<PathBuf>() {
            let format = match format {
                None => DocumentFormat::detect(&input),
                Some("jsonl") => DocumentFormat::Jsonl,
                Some("ciff") => DocumentFormat::Ciff,
                Some(other) => {
                    return Err(invalid(format!(
                        "format must be \"jsonl\" or \"ciff\", got {other:?}"
                    )))
                }
            };
            py.detach(|| read_collection_file(&input, format))
                .map_err(to_py)?
        } else if is_sparse(documents) {
            let vocabulary = vocabulary.ok_or_else(|| {
                invalid("a sparse matrix needs the vocabulary of its columns (vocabulary=...)")
            })?;
            let ids = ids.map(|ids| id_list(ids, "ids")).transpose()?;
            let csr = Csr::from_scipy(documents)?;
            py.detach(|| collection_from_csr(&csr, &vocabulary, ids.as_deref()))?
        } else {
            if vocabulary.is_some() || ids.is_some() {
                return Err(invalid(
                    "vocabulary and ids go with a sparse matrix; (id, vector) pairs name their own",
                ));
            }
            collection_from_pairs(documents)?
        };
        let options = BuildOptions {
            block_size,
            superblock_size,
            ..BuildOptions::default()
        };
        let index = py
            .detach(|| build_and_open(&collection, &path, &options, bp))
            .map_err(to_py)?;
        Ok(Index::new(index))
    }

    /// The index file's path.
    #[getter]
    fn path(&self) -> PathBuf {
        self.inner.path().to_path_buf()
    }

    /// The number of documents.
    fn __len__(&self) -> usize {
        self.inner.num_docs() as usize
    }

    fn __repr__(&self) -> String {
        format!(
            "bmp.Index({:?}, documents={}, terms={})",
            self.inner.path().display().to_string(),
            self.inner.num_docs(),
            self.inner.num_terms()
        )
    }

    /// What the index holds: documents, terms, postings, block and superblock sizes, blocks,
    /// and the file's size in bytes.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let index = &self.inner;
        let info = PyDict::new(py);
        info.set_item("path", index.path().display().to_string())?;
        info.set_item("documents", index.num_docs())?;
        info.set_item("terms", index.num_terms())?;
        info.set_item("postings", index.num_postings())?;
        info.set_item("block_size", index.block_size())?;
        info.set_item("superblock_size", index.superblock_size())?;
        info.set_item("blocks", index.num_blocks())?;
        info.set_item("bytes", index.file_len())?;
        Ok(info)
    }

    /// Verifies the whole file (checksums, every posting against the forward index, the block
    /// and superblock maxima) and returns what was checked; raises CorruptIndexError at the
    /// first problem.
    fn check<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let index = self.inner.clone();
        let report = py
            .detach(|| {
                index.verify_checksums()?;
                bmp_index::check::check(&index, &mut |_| {})
            })
            .map_err(to_py)?;
        let out = PyDict::new(py);
        out.set_item("terms", report.terms)?;
        out.set_item("documents", report.docs)?;
        out.set_item("postings", report.postings)?;
        out.set_item("blocks", report.blocks)?;
        out.set_item("superblocks", report.superblocks)?;
        Ok(out)
    }

    /// The top `k` documents for `query`: a list of `(id, score)`, best first (ties by index
    /// order), scores the dot product in the model's units.
    ///
    /// `query` is a mapping of terms to weights, or a one-row sparse matrix with `vocabulary`.
    /// `algorithm` is one of `bmp.ALGORITHMS` ("bmp" by default; every one is rank-safe with its
    /// default parameters), its parameters given as keywords (`alpha=0.9`). `filter`, a list
    /// of document ids, restricts the answer to those documents (unknown ids are ignored).
    #[pyo3(signature = (query, k=10, algorithm="bmp", *, filter=None, vocabulary=None, **params))]
    #[allow(clippy::too_many_arguments)]
    fn search(
        &self,
        py: Python<'_>,
        query: &Bound<'_, PyAny>,
        k: usize,
        algorithm: &str,
        filter: Option<&Bound<'_, PyAny>>,
        vocabulary: Option<Vec<String>>,
        params: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Vec<(String, f64)>> {
        check_k(k)?;
        let spec = spec(algorithm, params)?;
        let index = &*self.inner;
        let query = query_of(index, query, vocabulary.as_deref(), || "query".to_string())?;
        let filter = match filter {
            Some(ids) => Some(self.filter(&id_list(ids, "filter")?)?),
            None => None,
        };
        let hits = py
            .detach(|| {
                let mut searcher = spec.searcher(index);
                search_one(index, searcher.as_mut(), &query, k, filter.as_ref())
            })
            .map_err(to_py)?;
        hits.into_iter()
            .map(|(doc, score)| Ok((index.doc_id(doc).map_err(to_py)?.to_owned(), score)))
            .collect()
    }

    /// Builds at `path`, from the BEIR corpus `corpus` (`{"_id", "title", "text"}` lines), an
    /// index of each document's BM25 term weights (`k1`, `b`; title and text analyzed with
    /// English stemming as `bmp-index eval --bm25` analyzes them), and opens it. With `encoder`
    /// the index holds the encoder's vectors too, for hybrid queries (`search_text(...,
    /// hybrid=λ)`), as `bmp-index build --model M --lexical` builds it.
    #[staticmethod]
    #[pyo3(signature = (path, corpus, *, encoder=None, k1=1.2, b=0.75,
                        block_size=DEFAULT_BLOCK_SIZE, superblock_size=DEFAULT_SUPERBLOCK_SIZE,
                        reorder="none"))]
    #[allow(clippy::too_many_arguments)]
    fn build_lexical(
        py: Python<'_>,
        path: PathBuf,
        corpus: PathBuf,
        encoder: Option<PyRef<'_, crate::encoder::TextEncoder>>,
        k1: f32,
        b: f32,
        block_size: u32,
        superblock_size: u32,
        reorder: &str,
    ) -> PyResult<Index> {
        let bp = parse_reorder(reorder)?;
        let params = bmp_eval::Bm25Params::new(k1, b).map_err(|e| eval_to_py(e.into()))?;
        let encoder = encoder.as_ref().map(|e| &e.inner);
        let index = py.detach(|| {
            let (collection, field) = match encoder {
                None => bmp_eval::lexical_collection(&corpus, params, &bmp_eval::Silent),
                Some(e) => {
                    bmp_eval::lexical::hybrid_collection(e, &corpus, params, &bmp_eval::Silent)
                }
            }
            .map_err(eval_to_py)?;
            let options = BuildOptions {
                block_size,
                superblock_size,
                lexical: Some(field),
                ..BuildOptions::default()
            };
            build_and_open(&collection, &path, &options, bp).map_err(to_py)
        })?;
        Ok(Index::new(index))
    }

    /// The top `k` documents for the text `query`, as `(id, score)`:
    /// - over an index built by `build_lexical` without an encoder: BM25 scores;
    /// - with `encoder`: its query vector (SPLADE scores);
    /// - with `encoder` and `hybrid=λ` over an index built with that encoder: with
    ///   `fusion="linear"`, `(1 − λ) · learned / L + λ · bm25 / B`, each part divided by the
    ///   query's largest possible score in it, exact top k in one pass; with `fusion="rrf"`, the
    ///   top k of each part fused by weighted reciprocal rank (`hybrid=True` takes λ = 0.5).
    #[pyo3(signature = (query, k=10, algorithm="bmp", *, encoder=None, hybrid=None,
                        fusion="linear", **params))]
    #[allow(clippy::too_many_arguments)]
    fn search_text(
        &self,
        py: Python<'_>,
        query: &str,
        k: usize,
        algorithm: &str,
        encoder: Option<PyRef<'_, crate::encoder::TextEncoder>>,
        hybrid: Option<&Bound<'_, PyAny>>,
        fusion: &str,
        params: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Vec<(String, f64)>> {
        check_k(k)?;
        let spec = spec(algorithm, params)?;
        let lexical_to_py = |e: bmp_lexical::Error| eval_to_py(e.into());
        let fusion: bmp_lexical::Fusion = fusion.parse().map_err(lexical_to_py)?;
        let hybrid = match hybrid {
            None => None,
            Some(h) if h.is_instance_of::<pyo3::types::PyBool>() => h
                .extract::<bool>()?
                .then_some(bmp_lexical::DEFAULT_LEXICAL_WEIGHT),
            Some(h) => Some(
                h.extract::<f32>()
                    .map_err(|_| invalid("hybrid must be a number in [0, 1] or True"))?,
            ),
        }
        .map(|weight| bmp_lexical::HybridSpec::new(weight, fusion))
        .transpose()
        .map_err(lexical_to_py)?;
        let index = &*self.inner;
        let encoder = encoder.as_ref().map(|e| &e.inner);
        let text = query.to_owned();
        let hits = py.detach(|| {
            let mut searcher = spec.searcher(index);
            let entries = match (encoder, hybrid) {
                (Some(e), hybrid) => {
                    let vectors = e
                        .encode_queries(std::slice::from_ref(&text))
                        .map_err(encoder_to_py)?;
                    let learned = e.entries(&vectors[0]);
                    let Some(hybrid) = hybrid else {
                        return search_entries(index, searcher.as_mut(), &learned, k);
                    };
                    let mut analyzer = bmp_lexical::LexicalAnalyzer::default();
                    let query = bmp_lexical::HybridQuery::new(
                        index,
                        &hybrid,
                        &learned,
                        &text,
                        &mut analyzer,
                    )
                    .map_err(lexical_to_py)?;
                    let fused = query
                        .search(index, k, &mut |q, k| searcher.search(q, k))
                        .map_err(lexical_to_py)?;
                    return Ok(fused.hits.iter().map(|h| (h.doc, h.score)).collect());
                }
                (None, Some(_)) => {
                    return Err(invalid(
                        "hybrid queries need the encoder the index was built with",
                    ))
                }
                (None, None) => {
                    let field = index.header().lexical().ok_or_else(|| {
                        invalid("this index has no lexical field: give the encoder of its vectors")
                    })?;
                    bmp_lexical::LexicalAnalyzer::default().bm25_query(&text, &field)
                }
            };
            search_entries(index, searcher.as_mut(), &entries, k)
        })?;
        hits.into_iter()
            .map(|(doc, score)| Ok((index.doc_id(doc).map_err(to_py)?.to_owned(), score)))
            .collect()
    }

    /// The top `k` documents of many queries, answered in parallel without the GIL: returns
    /// `(ids, scores)`, two NumPy arrays of shape `(len(queries), k)`, ids as fixed-width
    /// unicode strings (dtype `<U{longest id}`; "" past a query's last hit) and scores as float32
    /// (NaN there).
    ///
    /// `queries` is a list of mappings or sparse rows, or one sparse matrix (a query per row)
    /// with `vocabulary`. `threads` is the number of threads (default: every core).
    #[pyo3(signature = (queries, k=10, algorithm="bmp", *, threads=None, vocabulary=None, **params))]
    #[allow(clippy::too_many_arguments)]
    fn search_batch<'py>(
        &self,
        py: Python<'py>,
        queries: &Bound<'py, PyAny>,
        k: usize,
        algorithm: &str,
        threads: Option<usize>,
        vocabulary: Option<Vec<String>>,
        params: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyArray2<f32>>)> {
        check_k(k)?;
        let spec = spec(algorithm, params)?;
        if threads == Some(0) {
            return Err(invalid("threads must be at least 1"));
        }
        let index = &*self.inner;
        let all = queries_of(index, queries, vocabulary.as_deref())?;
        let answers: Vec<Vec<(u32, f64)>> = py
            .detach(|| {
                // A searcher (and its buffers) per chunk of queries: a few chunks per thread
                // keep the threads busy to the end.
                let run = || {
                    let chunk = all.len().div_ceil(4 * rayon::current_num_threads()).max(1);
                    all.par_chunks(chunk)
                        .map(|queries| {
                            let mut searcher = spec.searcher(index);
                            queries
                                .iter()
                                .map(|query| search_one(index, searcher.as_mut(), query, k, None))
                                .collect::<bmp_index::Result<Vec<_>>>()
                        })
                        .collect::<bmp_index::Result<Vec<_>>>()
                        .map(|chunks| chunks.into_iter().flatten().collect::<Vec<_>>())
                };
                match threads {
                    None => run(),
                    // On this thread, whose allocator caches are warm, with one searcher.
                    Some(1) => {
                        let mut searcher = spec.searcher(index);
                        all.iter()
                            .map(|query| search_one(index, searcher.as_mut(), query, k, None))
                            .collect()
                    }
                    Some(n) => rayon::ThreadPoolBuilder::new()
                        .num_threads(n)
                        .build()
                        .map_err(|e| bmp_index::Error::Invalid(e.to_string()))?
                        .install(run),
                }
            })
            .map_err(to_py)?;
        let n = answers.len();
        let mut scores = vec![f32::NAN; n * k];
        let mut names: Vec<&str> = Vec::with_capacity(n * k);
        for (q, hits) in answers.iter().enumerate() {
            for (i, &(doc, score)) in hits.iter().enumerate() {
                names.push(index.doc_id(doc).map_err(to_py)?);
                scores[q * k + i] = score as f32;
            }
            names.extend((hits.len()..k).map(|_| ""));
        }
        let ids = unicode_array(py, &names, (n, k))?;
        let scores =
            Array2::from_shape_vec((n, k), scores).map_err(|e| invalid(format!("scores: {e}")))?;
        Ok((ids, PyArray2::from_owned_array(py, scores)))
    }
}

/// A NumPy array of fixed-width unicode strings (`<U{longest}`) of `shape` holding `strings` in
/// row-major order: one copy of their code points, no Python object per string.
fn unicode_array<'py>(
    py: Python<'py>,
    strings: &[&str],
    shape: (usize, usize),
) -> PyResult<Bound<'py, PyAny>> {
    let width = strings
        .iter()
        .map(|s| s.chars().count())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut points = vec![0u32; strings.len() * width];
    for (slot, s) in points.chunks_exact_mut(width).zip(strings) {
        for (p, c) in slot.iter_mut().zip(s.chars()) {
            *p = c as u32;
        }
    }
    PyArray1::from_vec(py, points)
        .call_method1("view", (format!("<U{width}"),))?
        .call_method1("reshape", (shape,))
}

/// Whether `reorder` ("none" or "bp") asks for graph-bisection reordering.
fn parse_reorder(reorder: &str) -> PyResult<bool> {
    match reorder {
        "none" => Ok(false),
        "bp" => Ok(true),
        other => Err(invalid(format!(
            "reorder must be \"none\" or \"bp\", got {other:?}"
        ))),
    }
}

/// Builds `collection` at `path` (reordered by graph bisection when `bp`) and opens it.
fn build_and_open(
    collection: &Collection,
    path: &std::path::Path,
    options: &BuildOptions,
    bp: bool,
) -> bmp_index::Result<bmp_index::Index> {
    if collection.num_docs() == 0 {
        return Err(bmp_index::Error::input(path, "no documents to index"));
    }
    let order: Vec<u32> = if bp {
        bp_order_collection(collection, &BpOptions::default(), &|_, _| {})
    } else {
        (0..collection.num_docs() as u32).collect()
    };
    build_index_ordered(collection, &order, path, options, &mut |_, _, _| {})?;
    bmp_index::Index::open(path)
}
