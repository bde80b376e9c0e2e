//! `bmp.Collection`: a collection directory that takes adds, upserts and deletes while it is
//! searched, as `bmp-index add` / `delete` and the writable server keep it.

use std::path::PathBuf;
use std::sync::Mutex;

use bmp_index::build::BuildOptions;
use bmp_index::format::{DEFAULT_BLOCK_SIZE, DEFAULT_SUPERBLOCK_SIZE};
use bmp_index::segments::{CollectionDir, MergePolicy, WalOp};
use bmp_query::segments::SnapshotSearcher;
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::convert::{document_pairs, id_list, query_entries};
use crate::errors::{invalid, to_py};
use crate::index::{check_k, spec};

/// A collection directory opened for writing: its segments, its write-ahead log and its lock.
///
/// Writes (`add`, `upsert`, `delete`) are durable when they return: they are logged, and a
/// process that dies before `refresh` loses none of them (the next `open` applies them).
/// Searches see the writes applied by the last `refresh`. One process at a time may hold a
/// collection for writing; others can search it with `bmp.Collection.open` elsewhere only once
/// it is released, or through `bmp-index serve --collections`.
#[pyclass(frozen, module = "bmp")]
pub struct Collection {
    dir: Mutex<CollectionDir>,
    path: PathBuf,
}

impl Collection {
    /// The writer, or a `RuntimeError` when a thread panicked while holding it.
    fn writer(&self) -> PyResult<std::sync::MutexGuard<'_, CollectionDir>> {
        self.dir.lock().map_err(|_| {
            pyo3::exceptions::PyRuntimeError::new_err("the collection's writer was poisoned")
        })
    }

    /// Logs `ops`; returns, for each, whether its id was live just before.
    fn log(&self, py: Python<'_>, ops: Vec<WalOp>) -> PyResult<Vec<bool>> {
        py.detach(|| self.writer()?.log(ops).map_err(to_py))
    }
}

/// `ops` as adds of `documents`.
fn adds(documents: &Bound<'_, PyAny>) -> PyResult<Vec<WalOp>> {
    Ok(document_pairs(documents)?
        .into_iter()
        .map(|(id, vector)| WalOp::Add { id, vector })
        .collect())
}

#[pymethods]
impl Collection {
    /// Opens the collection directory at `path` for writing, creating it when it does not
    /// exist or is empty (`block_size` and `superblock_size` then set its layout; an existing
    /// collection keeps its own). Writes a crashed writer had logged are applied.
    ///
    /// Raises ValueError when another writer holds it, OSError when it cannot be read, and
    /// CorruptIndexError when a segment is damaged.
    #[staticmethod]
    #[pyo3(signature = (path, *, block_size=DEFAULT_BLOCK_SIZE, superblock_size=DEFAULT_SUPERBLOCK_SIZE))]
    fn open(
        py: Python<'_>,
        path: PathBuf,
        block_size: u32,
        superblock_size: u32,
    ) -> PyResult<Collection> {
        let options = BuildOptions {
            block_size,
            superblock_size,
            ..BuildOptions::default()
        };
        let dir = py
            .detach(|| CollectionDir::open_or_create(&path, &options))
            .map_err(to_py)?;
        Ok(Collection {
            dir: Mutex::new(dir),
            path,
        })
    }

    /// The collection directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// Live documents as of the last refresh.
    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        py.detach(|| Ok(self.writer()?.snapshot().live_docs() as usize))
    }

    /// Writes logged and not yet applied by `refresh`.
    #[getter]
    fn pending(&self, py: Python<'_>) -> PyResult<usize> {
        py.detach(|| Ok(self.writer()?.pending().len()))
    }

    fn __repr__(&self) -> String {
        format!("bmp.Collection({:?})", self.path.display().to_string())
    }

    /// Adds new documents, an iterable of `(id, {term: weight})` pairs. Raises ValueError,
    /// logging nothing, when an id is already live (or added twice): use `upsert` to replace
    /// documents. Returns the number of documents logged.
    fn add(&self, py: Python<'_>, documents: &Bound<'_, PyAny>) -> PyResult<usize> {
        let ops = adds(documents)?;
        py.detach(|| {
            let mut dir = self.writer()?;
            let mut seen = std::collections::HashSet::with_capacity(ops.len());
            for op in &ops {
                let id = op.id();
                if !seen.insert(id) || dir.is_live(id).map_err(to_py)? {
                    return Err(invalid(format!(
                        "document {id:?} exists already: upsert replaces documents"
                    )));
                }
            }
            Ok(dir.log(ops).map_err(to_py)?.len())
        })
    }

    /// Adds documents, replacing the live ones with the same ids. Returns
    /// `{"added": n, "replaced": m}`.
    fn upsert<'py>(
        &self,
        py: Python<'py>,
        documents: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let ops = adds(documents)?;
        let was_live = self.log(py, ops)?;
        let out = PyDict::new(py);
        out.set_item("added", was_live.len())?;
        out.set_item("replaced", was_live.iter().filter(|&&l| l).count())?;
        Ok(out)
    }

    /// Deletes the documents with these ids (unknown ids are ignored). Returns how many were
    /// live.
    fn delete(&self, py: Python<'_>, ids: &Bound<'_, PyAny>) -> PyResult<usize> {
        let ops = id_list(ids, "ids")?
            .into_iter()
            .map(|id| WalOp::Delete { id })
            .collect();
        Ok(self.log(py, ops)?.into_iter().filter(|&l| l).count())
    }

    /// Applies the logged writes (the adds as one new segment, then the deletes), then merges
    /// segments as `bmp-index add` does (ten at most). Returns `{"added", "deleted",
    /// "segments", "generation"}`.
    fn refresh<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let (summary, segments, generation) = py.detach(|| {
            let mut dir = self.writer()?;
            let summary = dir.refresh(&mut |_, _, _| {}).map_err(to_py)?;
            dir.merge_by_policy(&MergePolicy::default(), &mut |_, _, _| {})
                .map_err(to_py)?;
            let snapshot = dir.snapshot();
            Ok::<_, PyErr>((summary, snapshot.segments.len(), snapshot.generation))
        })?;
        let out = PyDict::new(py);
        out.set_item("added", summary.added)?;
        out.set_item("deleted", summary.deleted)?;
        out.set_item("segments", segments)?;
        out.set_item("generation", generation)?;
        Ok(out)
    }

    /// Applies the logged writes and rewrites the collection as one segment without its deleted
    /// documents. Returns `{"segments_before", "dropped", "docs", "generation"}`.
    fn compact<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let summary = py.detach(|| {
            let mut dir = self.writer()?;
            dir.refresh(&mut |_, _, _| {}).map_err(to_py)?;
            dir.compact(&mut |_, _, _| {}).map_err(to_py)
        })?;
        let out = PyDict::new(py);
        out.set_item("segments_before", summary.segments_before)?;
        out.set_item("dropped", summary.dropped)?;
        out.set_item("docs", summary.docs)?;
        out.set_item("generation", summary.generation)?;
        Ok(out)
    }

    /// The top `k` live documents for `query` across the segments, as `Index.search` answers:
    /// a list of `(id, score)`, scores in the model's units, ties by id.
    #[pyo3(signature = (query, k=10, algorithm="bmp", *, vocabulary=None, **params))]
    fn search(
        &self,
        py: Python<'_>,
        query: &Bound<'_, PyAny>,
        k: usize,
        algorithm: &str,
        vocabulary: Option<Vec<String>>,
        params: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Vec<(String, f64)>> {
        check_k(k)?;
        let spec = spec(algorithm, params)?;
        let entries = query_entries(query, vocabulary.as_deref(), || "query".to_string())?;
        py.detach(|| {
            let snapshot = self.writer()?.snapshot();
            let mut searcher = SnapshotSearcher::new(&snapshot, &spec);
            let results = searcher.search(&entries, k).map_err(to_py)?;
            results
                .hits
                .iter()
                .map(|h| {
                    let id = snapshot.segments[h.segment].index.doc_id(h.doc)?;
                    Ok((id.to_owned(), f64::from(h.score) * results.score_scale))
                })
                .collect::<bmp_index::Result<Vec<_>>>()
                .map_err(to_py)
        })
    }
}
