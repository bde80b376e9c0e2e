//! `bmp.evaluate`: trec_eval's measures over a run and its judgments, as `bmp-index eval`
//! computes them.

use std::path::PathBuf;

use bmp_eval::{Bm25Params, DatasetEval, EvalOptions, Measure, MissingQueries, Qrels, Run};
use bmp_index::reorder::BpOptions;
use bmp_query::SearchSpec;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use crate::encoder::encoder_options;

use crate::errors::{eval_to_py, invalid};

/// A run given as `{query: {doc: score}}` (pytrec_eval's form) or `{query: [(doc, score), ...]}`.
fn run_of(run: &Bound<'_, PyDict>) -> PyResult<Run> {
    let mut out = Run::new();
    for (qid, hits) in run.iter() {
        let qid: String = qid
            .extract()
            .map_err(|_| invalid(format!("run: query id {qid:?} must be a str")))?;
        let pairs: Vec<(String, f64)> = match hits.cast::<PyDict>() {
            Ok(d) => d
                .iter()
                .map(|(doc, score)| Ok((doc.extract()?, score.extract()?)))
                .collect::<PyResult<_>>(),
            Err(_) => hits
                .try_iter()?
                .map(|h| h?.extract::<(String, f64)>())
                .collect::<PyResult<_>>(),
        }
        .map_err(|_| {
            invalid(format!(
                "run[{qid:?}] must map document ids to scores, or list (doc, score) pairs"
            ))
        })?;
        out.insert(qid, pairs);
    }
    Ok(out)
}

/// Judgments given as `{query: {doc: grade}}` or as the path of a qrels file (BEIR TSV with a
/// header, or TREC `qid 0 doc grade`).
fn qrels_of(qrels: &Bound<'_, PyAny>) -> PyResult<Qrels> {
    if qrels.is_instance_of::<PyString>() || qrels.hasattr("__fspath__")? {
        let path: PathBuf = qrels.extract()?;
        return Qrels::read(&path).map_err(eval_to_py);
    }
    let dict = qrels
        .cast::<PyDict>()
        .map_err(|_| invalid("qrels must be a {query: {doc: grade}} dict or a file path"))?;
    let mut out = Qrels::new();
    for (qid, docs) in dict.iter() {
        let qid: String = qid
            .extract()
            .map_err(|_| invalid(format!("qrels: query id {qid:?} must be a str")))?;
        let docs = docs
            .cast::<PyDict>()
            .map_err(|_| invalid(format!("qrels[{qid:?}] must map document ids to grades")))?;
        for (doc, grade) in docs.iter() {
            let doc: String = doc.extract().map_err(|_| {
                invalid(format!("qrels[{qid:?}]: document id {doc:?} must be a str"))
            })?;
            let grade: i32 = grade.extract().map_err(|_| {
                invalid(format!("qrels[{qid:?}][{doc:?}] must be an integer grade"))
            })?;
            out.insert(qid.clone(), doc, grade);
        }
    }
    Ok(out)
}

/// The names given (or the standard ones) and their measures.
fn measures_of(metrics: Option<Vec<String>>) -> PyResult<(Vec<String>, Vec<Measure>)> {
    Ok(match metrics {
        None => Measure::standard()
            .into_iter()
            .map(|m| (m.to_string(), m))
            .unzip(),
        Some(names) => {
            let measures = names
                .iter()
                .map(|n| n.parse::<Measure>().map_err(eval_to_py))
                .collect::<PyResult<Vec<_>>>()?;
            (names, measures)
        }
    })
}

/// How measures are averaged.
fn eval_options(relevance_level: i32, missing_as_zero: bool) -> EvalOptions {
    EvalOptions {
        relevance_level,
        missing_queries: if missing_as_zero {
            MissingQueries::Zero
        } else {
            MissingQueries::Skip
        },
        ..EvalOptions::default()
    }
}

/// Scores `run` against `qrels` with trec_eval's definitions (nDCG with graded gains; MRR,
/// recall, precision and MAP counting grades of at least `relevance_level`), averaged over the
/// judged queries present in the run (`missing_as_zero=True`: over every judged query, as
/// `trec_eval -c`).
///
/// `run` is `{query: {doc: score}}` or `{query: [(doc, score), ...]}`; `qrels` is
/// `{query: {doc: grade}}` or a qrels file's path; `metrics` are names such as "nDCG@10",
/// "MRR@10", "R@100", "P@10", "MAP" or trec_eval's ("ndcg_cut_10", "recall_1000"), by default
/// nDCG@10, MRR@10, R@100, R@1000 and MAP. Returns `{metric: mean}` under the names given, or
/// with `per_query=True` `{query: {metric: value}}`.
#[pyfunction]
#[pyo3(signature = (run, qrels, metrics=None, *, relevance_level=1, missing_as_zero=false,
                    per_query=false))]
pub fn evaluate<'py>(
    py: Python<'py>,
    run: &Bound<'py, PyDict>,
    qrels: &Bound<'py, PyAny>,
    metrics: Option<Vec<String>>,
    relevance_level: i32,
    missing_as_zero: bool,
    per_query: bool,
) -> PyResult<Bound<'py, PyDict>> {
    if relevance_level < 1 {
        return Err(invalid("relevance_level must be at least 1"));
    }
    let (names, measures) = measures_of(metrics)?;
    let run = run_of(run)?;
    let qrels = qrels_of(qrels)?;
    let options = eval_options(relevance_level, missing_as_zero);
    let evaluation = py
        .detach(|| bmp_eval::evaluate(&qrels, &run, &measures, &options))
        .map_err(eval_to_py)?;
    let out = PyDict::new(py);
    if per_query {
        for (qid, values) in evaluation.per_query() {
            let row = PyDict::new(py);
            for (name, value) in names.iter().zip(values) {
                row.set_item(name, value)?;
            }
            out.set_item(qid, row)?;
        }
    } else {
        for (name, value) in names.iter().zip(evaluation.means()) {
            out.set_item(name, value)?;
        }
    }
    Ok(out)
}

/// One value or a list of them, as a list.
fn one_or_many<'py, T: pyo3::conversion::FromPyObjectOwned<'py>>(
    value: &Bound<'py, PyAny>,
) -> PyResult<Vec<T>> {
    match value.extract::<T>() {
        Ok(one) => Ok(vec![one]),
        Err(_) => value.extract::<Vec<T>>(),
    }
}

/// The hybrid specs of `evaluate_dataset`'s `hybrid` (weights) and `fusion` (names; "linear"
/// when None): one per pair.
fn hybrid_specs(
    hybrid: Option<&Bound<'_, PyAny>>,
    fusion: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<bmp_lexical::HybridSpec>> {
    let Some(hybrid) = hybrid else {
        if fusion.is_some() {
            return Err(invalid("fusion is for hybrid systems: give hybrid too"));
        }
        return Ok(Vec::new());
    };
    let weights: Vec<f32> = one_or_many(hybrid)
        .map_err(|_| invalid("hybrid must be a lexical weight in [0, 1] or a list of them"))?;
    let fusions: Vec<String> = match fusion {
        None => vec!["linear".to_owned()],
        Some(f) => one_or_many(f)
            .map_err(|_| invalid("fusion must be \"linear\", \"rrf\" or a list of them"))?,
    };
    let mut specs = Vec::new();
    for name in &fusions {
        let fusion = name
            .parse()
            .map_err(|e: bmp_lexical::Error| eval_to_py(e.into()))?;
        for &weight in &weights {
            specs.push(
                bmp_lexical::HybridSpec::new(weight, fusion).map_err(|e| eval_to_py(e.into()))?,
            );
        }
    }
    Ok(specs)
}

/// Evaluates a BEIR-layout dataset from its text, as `bmp-index eval --dataset` does (the same
/// code): every model loaded first, the corpus encoded with `model` (vectors cached in
/// `work_dir`, default `eval-cache/<dataset name>`), indexed (cached; `reorder="bp"` reorders),
/// the judged queries encoded and answered with each of `algorithms` (strings as the CLI takes
/// them: "bmp", "bmp:alpha=0.9", "exhaustive", ...) at depth `k`, and, with `bm25=True`, a BM25
/// system with `bm25_k1` and `bm25_b`. `hybrid` (a lexical weight, or a list of them) adds
/// hybrid SPLADE + BM25 systems, one per weight, algorithm and fusion of `fusion` ("linear",
/// "rrf" or a list of both): the index is then built with a lexical field (BM25 with `bm25_k1`
/// and `bm25_b`), as `eval --dataset --hybrid` builds it.
///
/// Returns one dict per system: `system` (its name), `tag` (a file-name form of it), `metrics`
/// (`{metric: mean}` as `evaluate` gives them), `latency_us` (`mean`, `p50`, `p99` of the search
/// alone, one thread) and, with `runs=True`, `run` (`{query: [(doc, score), ...]}`).
#[pyfunction]
#[pyo3(signature = (dataset, model, *, split="test", algorithms=vec!["bmp".to_owned()], k=1000,
                    bm25=false, bm25_k1=1.2, bm25_b=0.75, hybrid=None, fusion=None,
                    reorder=None, work_dir=None,
                    metrics=None, relevance_level=1, missing_as_zero=false, runs=false,
                    device="cpu", dtype="f32", batch_size=32, max_length=None, doc_top_k=None,
                    doc_min_weight=None, query_instruction=None))]
#[allow(clippy::too_many_arguments)]
pub fn evaluate_dataset<'py>(
    py: Python<'py>,
    dataset: PathBuf,
    model: PathBuf,
    split: &str,
    algorithms: Vec<String>,
    k: usize,
    bm25: bool,
    bm25_k1: f32,
    bm25_b: f32,
    hybrid: Option<&Bound<'py, PyAny>>,
    fusion: Option<&Bound<'py, PyAny>>,
    reorder: Option<&str>,
    work_dir: Option<PathBuf>,
    metrics: Option<Vec<String>>,
    relevance_level: i32,
    missing_as_zero: bool,
    runs: bool,
    device: &str,
    dtype: &str,
    batch_size: usize,
    max_length: Option<usize>,
    doc_top_k: Option<usize>,
    doc_min_weight: Option<f32>,
    query_instruction: Option<String>,
) -> PyResult<Bound<'py, PyList>> {
    if relevance_level < 1 {
        return Err(invalid("relevance_level must be at least 1"));
    }
    if k == 0 {
        return Err(invalid("k must be at least 1"));
    }
    let (names, measures) = measures_of(metrics)?;
    let mut config = DatasetEval::new(dataset, model);
    config.split = split.to_owned();
    config.encoder = encoder_options(
        device,
        dtype,
        batch_size,
        max_length,
        doc_top_k,
        doc_min_weight,
        query_instruction,
    )?;
    config.work_dir = work_dir;
    config.k = k;
    config.algorithms = algorithms
        .iter()
        .map(|a| a.parse::<SearchSpec>().map_err(|e| invalid(e.to_string())))
        .collect::<PyResult<_>>()?;
    config.reorder = match reorder {
        None | Some("none") => None,
        Some("bp") => Some(BpOptions::default()),
        Some(other) => {
            return Err(invalid(format!(
                "reorder must be None, \"none\" or \"bp\", not {other:?}"
            )))
        }
    };
    let params = Bm25Params::new(bm25_k1, bm25_b).map_err(|e| eval_to_py(e.into()))?;
    if bm25 {
        config.bm25 = Some(params);
    }
    config.hybrid = hybrid_specs(hybrid, fusion)?;
    config.hybrid_bm25 = params;
    config.measures = measures;
    config.options = eval_options(relevance_level, missing_as_zero);
    let report = py
        .detach(|| bmp_eval::evaluate_dataset(&config, &bmp_eval::Silent))
        .map_err(eval_to_py)?;
    let out = PyList::empty(py);
    for system in &report.systems {
        let d = PyDict::new(py);
        d.set_item("system", &system.name)?;
        d.set_item("tag", system.tag())?;
        let means = PyDict::new(py);
        for (name, value) in names.iter().zip(system.eval.means()) {
            means.set_item(name, value)?;
        }
        d.set_item("metrics", means)?;
        match system.latency {
            Some(l) => {
                let latency = PyDict::new(py);
                latency.set_item("mean", l.mean)?;
                latency.set_item("p50", l.p50)?;
                latency.set_item("p99", l.p99)?;
                d.set_item("latency_us", latency)?;
            }
            None => d.set_item("latency_us", py.None())?,
        }
        if runs {
            let run = PyDict::new(py);
            for (qid, hits) in system.run.iter() {
                let ranked: Vec<(&str, f64)> =
                    hits.iter().map(|h| (h.doc_id.as_str(), h.score)).collect();
                run.set_item(qid, ranked)?;
            }
            d.set_item("run", run)?;
        }
        out.append(d)?;
    }
    Ok(out)
}
