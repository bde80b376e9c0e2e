//! `bmp.evaluate`: trec_eval's measures over a run and its judgments, as `bmp-index eval`
//! computes them.

use std::path::PathBuf;

use bmp_eval::{EvalOptions, Measure, MissingQueries, Qrels, Run};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};

use crate::errors::invalid;

/// An evaluation error as a Python exception: `OSError` for an unreadable file, `ValueError`
/// for everything else.
fn eval_error(e: bmp_eval::Error) -> PyErr {
    match e {
        bmp_eval::Error::Io { .. } => pyo3::exceptions::PyOSError::new_err(e.to_string()),
        e => invalid(e.to_string()),
    }
}

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
        return Qrels::read(&path).map_err(eval_error);
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
    let (names, measures): (Vec<String>, Vec<Measure>) = match metrics {
        None => Measure::standard()
            .into_iter()
            .map(|m| (m.to_string(), m))
            .unzip(),
        Some(names) => {
            let measures = names
                .iter()
                .map(|n| n.parse::<Measure>().map_err(eval_error))
                .collect::<PyResult<Vec<_>>>()?;
            (names, measures)
        }
    };
    let run = run_of(run)?;
    let qrels = qrels_of(qrels)?;
    let options = EvalOptions {
        relevance_level,
        missing_queries: if missing_as_zero {
            MissingQueries::Zero
        } else {
            MissingQueries::Skip
        },
        ..EvalOptions::default()
    };
    let evaluation = py
        .detach(|| bmp_eval::evaluate(&qrels, &run, &measures, &options))
        .map_err(eval_error)?;
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
