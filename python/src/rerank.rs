//! The multi-vector second stage in Python: `bmp.build_multivector_stores` writes token-embedding
//! stores beside an index (as `bmp-index multivec` does), and `bmp.MultiVectorReranker` reorders a
//! first stage's hits by Chamfer similarity (as `search --multivec` and `eval --rerank` do).

use std::path::PathBuf;

use bmp_encoder::token_embed::DEFAULT_TOKEN_MODEL;
use bmp_encoder::{ClusterSpec, DeviceKind, TokenEncoder, TokenEncoderOptions};
use bmp_eval::multivec::{build_stores, open_rerank_store, store_path};
use bmp_eval::pipeline::MultiVectorRerank;
use bmp_index::multivec::MultiVecStore;
use bmp_query::chamfer::{rerank, ChamferScorer};
use bmp_query::Hit;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::errors::{encoder_to_py, eval_to_py, invalid, to_py};
use crate::index::Index;

/// The token model `model` with these options, loaded.
fn load_token_model(
    model: PathBuf,
    max_length: usize,
    batch_size: usize,
    device: &str,
) -> PyResult<TokenEncoder> {
    if batch_size == 0 {
        return Err(invalid("batch_size must be at least 1"));
    }
    let stage = MultiVectorRerank {
        model,
        options: TokenEncoderOptions {
            batch_size,
            max_length,
            device: device.parse::<DeviceKind>().map_err(encoder_to_py)?,
        },
        clusters: Vec::new(),
        depth: 0,
    };
    stage.load().map_err(eval_to_py)
}

/// Embeds every document of the BEIR corpus `corpus` that `index` holds, token by token, with
/// the token model, reduces the vectors per clustering spec (`"none"`, `"C8x32"`, `"C25"`,
/// `"K2"`, `"tail"`, ...) and writes one store per spec to `output/<spec>.mvec`. Returns a
/// dict per store: `spec`, `path`, `docs`, `vectors`, `bytes`.
#[pyfunction]
#[pyo3(signature = (index, corpus, output, clusters=vec!["C8x32".to_owned()], *,
                    token_model=PathBuf::from(DEFAULT_TOKEN_MODEL), max_length=256,
                    batch_size=32, device="cpu"))]
#[allow(clippy::too_many_arguments)]
pub fn build_multivector_stores<'py>(
    py: Python<'py>,
    index: &Bound<'py, Index>,
    corpus: PathBuf,
    output: PathBuf,
    clusters: Vec<String>,
    token_model: PathBuf,
    max_length: usize,
    batch_size: usize,
    device: &str,
) -> PyResult<Bound<'py, PyList>> {
    let specs = clusters
        .iter()
        .map(|c| c.parse::<ClusterSpec>().map_err(invalid))
        .collect::<PyResult<Vec<_>>>()?;
    if specs.is_empty() {
        return Err(invalid("clusters must name at least one spec"));
    }
    let encoder = load_token_model(token_model, max_length, batch_size, device)?;
    let shared = index.get().shared().clone();
    let paths: Vec<PathBuf> = specs.iter().map(|s| store_path(&output, s)).collect();
    let summaries = py.detach(|| {
        std::fs::create_dir_all(&output)
            .map_err(|e| bmp_eval::Error::io(&output, e))
            .and_then(|()| {
                build_stores(
                    &shared,
                    &corpus,
                    &encoder,
                    &specs,
                    &paths,
                    &bmp_eval::Silent,
                )
            })
            .map_err(eval_to_py)
    })?;
    let out = PyList::empty(py);
    for (s, path) in summaries.iter().zip(&paths) {
        let d = PyDict::new(py);
        d.set_item("spec", &s.spec)?;
        d.set_item("path", path)?;
        d.set_item("docs", s.docs)?;
        d.set_item("vectors", s.vectors)?;
        d.set_item("bytes", s.bytes)?;
        out.append(d)?;
    }
    Ok(out)
}

/// Reorders a first stage's hits by Chamfer (MaxSim) similarity between the query's and each
/// document's token embeddings, reduced as the store was built.
#[pyclass(frozen, module = "bmp")]
pub struct MultiVectorReranker {
    index: Py<Index>,
    store: MultiVecStore,
    spec: ClusterSpec,
    encoder: TokenEncoder,
}

#[pymethods]
impl MultiVectorReranker {
    /// Opens the store `store` (written by `build_multivector_stores` or `bmp-index multivec`
    /// for `index`) and loads the token model it was built with.
    ///
    /// Raises ValueError when the store belongs to another index or the model makes vectors of
    /// another dimension, OSError when a file cannot be read.
    #[new]
    #[pyo3(signature = (index, store, *, token_model=PathBuf::from(DEFAULT_TOKEN_MODEL),
                        max_length=256, batch_size=32, device="cpu"))]
    fn new(
        py: Python<'_>,
        index: Py<Index>,
        store: PathBuf,
        token_model: PathBuf,
        max_length: usize,
        batch_size: usize,
        device: &str,
    ) -> PyResult<MultiVectorReranker> {
        let encoder = load_token_model(token_model, max_length, batch_size, device)?;
        let shared = index.get().shared().clone();
        let (store, spec) = py
            .detach(|| open_rerank_store(&store, &shared, &encoder))
            .map_err(eval_to_py)?;
        Ok(MultiVectorReranker {
            index,
            store,
            spec,
            encoder,
        })
    }

    /// The clustering spec of the store (`"C8x32"`, ...).
    #[getter]
    fn clusters(&self) -> String {
        self.spec.to_string()
    }

    /// Reorders the first `depth` of `hits` for the text `query`: `hits` is a first stage's
    /// ranking, a list of `(id, score)` (as `Index.search` returns) or of ids. Returns
    /// `(id, score)` pairs: the head by Chamfer score (ties in first-stage order), then the rest
    /// of `hits` in their order with lower scores. Raises ValueError for an id the index lacks.
    #[pyo3(signature = (query, hits, depth=100))]
    fn rerank(
        &self,
        py: Python<'_>,
        query: &str,
        hits: &Bound<'_, PyAny>,
        depth: usize,
    ) -> PyResult<Vec<(String, f64)>> {
        let index = self.index.get();
        let ids = index.external_ids()?;
        let engine = index.shared();
        let mut first = Vec::new();
        for (i, item) in hits.try_iter()?.enumerate() {
            let item = item?;
            let id: String = if item.is_instance_of::<PyString>() {
                item.extract()?
            } else {
                item.get_item(0).and_then(|id| id.extract()).map_err(|_| {
                    invalid(format!("hits[{i}] must be an id or an (id, score) pair"))
                })?
            };
            let doc = ids
                .find(engine, &id)
                .map_err(to_py)?
                .ok_or_else(|| invalid(format!("hits[{i}]: no document {id:?} in the index")))?;
            first.push(Hit { doc, score: 0 });
        }
        let text = [query.to_owned()];
        let reranked = py.detach(|| {
            let tokens = self.encoder.encode(&text).map_err(encoder_to_py)?;
            let q = self.spec.reduce_query(&tokens[0]);
            Ok::<_, PyErr>(rerank(
                &mut ChamferScorer::new(),
                &self.store,
                &q.data,
                &first,
                depth,
            ))
        })?;
        reranked
            .iter()
            .map(|h| {
                Ok((
                    engine.doc_id(h.doc).map_err(to_py)?.to_owned(),
                    f64::from(h.score),
                ))
            })
            .collect()
    }
}
