//! Evaluating a run against qrels: which queries count, per-query values and means.
//!
//! Following pytrec_eval (what BEIR reports): a query is evaluated when it has results in the
//! run *and* judgments in the qrels; the mean of a measure is the arithmetic mean over those
//! queries. A judged query whose judgments hold no relevant document is still evaluated and
//! scores 0 (trec_eval and pytrec_eval do the same; BEIR averages it in). With
//! [`MissingQueries::Zero`] (trec_eval's `-c`) judged queries absent from the run are evaluated
//! as empty rankings, scoring 0, and averaged in too.
//!
//! Rankings are formed as trec_eval forms them: by score descending, ties broken by document id
//! descending, the rank column ignored, and scores compared in single precision by default (see
//! [`ScorePrecision`]).

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::metrics::{
    average_precision, ndcg_at, precision_at, rank_trec_eval, recall_at, reciprocal_rank,
    relevance_labels, ScorePrecision,
};
use crate::qrels::{num_relevant, Judgments, Qrels, Relevance};
use crate::run::{Run, ScoredDoc};

/// A measure, as trec_eval defines it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Measure {
    /// nDCG@k (`ndcg_cut_k`).
    Ndcg(usize),
    /// Reciprocal rank (`recip_rank`); with a cutoff k, MRR@k (the first k ranks only).
    ReciprocalRank(Option<usize>),
    /// Recall@k (`recall_k`).
    Recall(usize),
    /// Precision@k (`P_k`).
    Precision(usize),
    /// Average precision (`map`); with a cutoff k, `map_cut_k`.
    AveragePrecision(Option<usize>),
}

impl Measure {
    /// nDCG@10, MRR@10, Recall@100, Recall@1000 and MAP: what papers on BEIR and MS MARCO report.
    pub fn standard() -> Vec<Measure> {
        vec![
            Measure::Ndcg(10),
            Measure::ReciprocalRank(Some(10)),
            Measure::Recall(100),
            Measure::Recall(1000),
            Measure::AveragePrecision(None),
        ]
    }

    /// The name trec_eval / pytrec_eval print (`ndcg_cut_10`, `recip_rank`, `recall_100`,
    /// `P_10`, `map`, `map_cut_100`). trec_eval has no cut reciprocal rank: MRR@k is named
    /// `recip_rank_k` here.
    pub fn trec_name(&self) -> String {
        match *self {
            Measure::Ndcg(k) => format!("ndcg_cut_{k}"),
            Measure::ReciprocalRank(None) => "recip_rank".into(),
            Measure::ReciprocalRank(Some(k)) => format!("recip_rank_{k}"),
            Measure::Recall(k) => format!("recall_{k}"),
            Measure::Precision(k) => format!("P_{k}"),
            Measure::AveragePrecision(None) => "map".into(),
            Measure::AveragePrecision(Some(k)) => format!("map_cut_{k}"),
        }
    }

    /// The value of this measure for one query, from the labels of its ranking.
    fn compute(
        &self,
        labels: &[Option<Relevance>],
        judgments: &Judgments,
        num_rel: usize,
        level: Relevance,
    ) -> f64 {
        match *self {
            Measure::Ndcg(k) => ndcg_at(labels, judgments, k),
            Measure::ReciprocalRank(cut) => reciprocal_rank(labels, level, cut),
            Measure::Recall(k) => recall_at(labels, num_rel, level, k),
            Measure::Precision(k) => precision_at(labels, level, k),
            Measure::AveragePrecision(cut) => average_precision(labels, num_rel, level, cut),
        }
    }
}

/// Paper-style names: `nDCG@10`, `MRR@10` (`MRR` uncut), `R@100`, `P@10`, `MAP`, `MAP@100`.
impl fmt::Display for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Measure::Ndcg(k) => write!(f, "nDCG@{k}"),
            Measure::ReciprocalRank(None) => write!(f, "MRR"),
            Measure::ReciprocalRank(Some(k)) => write!(f, "MRR@{k}"),
            Measure::Recall(k) => write!(f, "R@{k}"),
            Measure::Precision(k) => write!(f, "P@{k}"),
            Measure::AveragePrecision(None) => write!(f, "MAP"),
            Measure::AveragePrecision(Some(k)) => write!(f, "MAP@{k}"),
        }
    }
}

/// Parses paper names (`nDCG@10`, `MRR@10`, `RR@10`, `MRR`, `R@100`, `Recall@100`, `P@10`,
/// `MAP`, `AP`, `MAP@100`; any case) and trec_eval names (`ndcg_cut_10`, `ndcg_cut.10`,
/// `recip_rank`, `recall_100`, `P_10`, `map`, `map_cut_100`).
impl FromStr for Measure {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = || Error::InvalidOption(format!("unknown measure {s:?}"));
        let lower = s.trim().to_ascii_lowercase();
        let (name, cut) = match lower.split_once(['@', '.']) {
            Some((n, k)) => (n.to_owned(), Some(k.parse::<usize>().map_err(|_| bad())?)),
            None => match lower.rsplit_once('_') {
                Some((n, k)) if k.chars().all(|c| c.is_ascii_digit()) && !k.is_empty() => {
                    (n.to_owned(), Some(k.parse::<usize>().map_err(|_| bad())?))
                }
                _ => (lower.clone(), None),
            },
        };
        if cut == Some(0) {
            return Err(Error::InvalidOption(format!(
                "measure {s:?}: the cutoff must be positive"
            )));
        }
        let m = match (name.as_str(), cut) {
            ("ndcg" | "ndcg_cut", Some(k)) => Measure::Ndcg(k),
            ("mrr" | "rr" | "recip_rank", cut) => Measure::ReciprocalRank(cut),
            ("r" | "recall", Some(k)) => Measure::Recall(k),
            ("p", Some(k)) => Measure::Precision(k),
            ("map" | "ap", None) => Measure::AveragePrecision(None),
            ("map" | "ap" | "map_cut", Some(k)) => Measure::AveragePrecision(Some(k)),
            _ => return Err(bad()),
        };
        Ok(m)
    }
}

/// What to do with judged queries that have no results in the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingQueries {
    /// Leave them out of the means (pytrec_eval, BEIR; trec_eval without `-c`).
    #[default]
    Skip,
    /// Evaluate them as empty rankings (0 on every measure) and average them in
    /// (trec_eval `-c`, used e.g. by Pyserini for TREC DL).
    Zero,
}

/// Evaluation options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvalOptions {
    /// The lowest grade that counts as relevant for MRR, recall, precision and MAP (trec_eval
    /// `-l`; 1 by default, 2 for TREC DL recall and MAP). nDCG uses the graded labels and
    /// ignores it, as trec_eval does. Must be ≥ 1.
    pub relevance_level: Relevance,
    /// Judged queries missing from the run.
    pub missing_queries: MissingQueries,
    /// Drop retrieved documents whose id equals the query id before ranking (BEIR's
    /// `ignore_identical_ids`, its default, which matters for ArguAna and Quora). Off by default
    /// (trec_eval and pytrec_eval keep them).
    pub ignore_identical_ids: bool,
    /// Precision of score comparisons when ranking (single, as trec_eval 9 and pytrec_eval, by
    /// default).
    pub score_precision: ScorePrecision,
}

impl Default for EvalOptions {
    fn default() -> Self {
        EvalOptions {
            relevance_level: 1,
            missing_queries: MissingQueries::Skip,
            ignore_identical_ids: false,
            score_precision: ScorePrecision::Single,
        }
    }
}

impl EvalOptions {
    /// Default options with another relevance level.
    pub fn with_relevance_level(relevance_level: Relevance) -> Self {
        EvalOptions {
            relevance_level,
            ..Self::default()
        }
    }
}

/// Per-query values and means of a set of measures.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    measures: Vec<Measure>,
    per_query: BTreeMap<String, Vec<f64>>,
    means: Vec<f64>,
}

impl Evaluation {
    /// The measures, in the order of every value vector.
    pub fn measures(&self) -> &[Measure] {
        &self.measures
    }

    /// Number of evaluated queries.
    pub fn num_queries(&self) -> usize {
        self.per_query.len()
    }

    /// (query id, values in [`Self::measures`] order), ascending query id.
    pub fn per_query(&self) -> impl Iterator<Item = (&str, &[f64])> {
        self.per_query
            .iter()
            .map(|(q, v)| (q.as_str(), v.as_slice()))
    }

    /// The values of one query, in [`Self::measures`] order.
    pub fn query(&self, query_id: &str) -> Option<&[f64]> {
        self.per_query.get(query_id).map(Vec::as_slice)
    }

    /// One query's value of one measure.
    pub fn value(&self, query_id: &str, measure: Measure) -> Option<f64> {
        let i = self.index(measure)?;
        self.per_query.get(query_id).map(|v| v[i])
    }

    /// The mean of a measure over the evaluated queries; `None` when the measure was not
    /// computed or no query was evaluated.
    pub fn mean(&self, measure: Measure) -> Option<f64> {
        if self.per_query.is_empty() {
            return None;
        }
        self.index(measure).map(|i| self.means[i])
    }

    /// The means in [`Self::measures`] order (0 when no query was evaluated).
    pub fn means(&self) -> &[f64] {
        &self.means
    }

    fn index(&self, measure: Measure) -> Option<usize> {
        self.measures.iter().position(|&m| m == measure)
    }
}

/// One line: `nDCG@10=0.6789 MRR@10=0.6400 ... (300 queries)`.
impl fmt::Display for Evaluation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (m, v) in self.measures.iter().zip(&self.means) {
            write!(f, "{m}={v:.4} ")?;
        }
        write!(f, "({} queries)", self.num_queries())
    }
}

/// The values of `measures` for one query: `hits` are its results (any order: they are ranked
/// by [`crate::metrics::trec_eval_order`]), `judgments` its qrels. A document listed twice is an
/// error (trec_eval refuses it too). `options.missing_queries` and
/// `options.ignore_identical_ids` concern whole runs and are not used here.
pub fn evaluate_query(
    judgments: &Judgments,
    hits: &[ScoredDoc],
    measures: &[Measure],
    options: &EvalOptions,
) -> Result<Vec<f64>> {
    let relevance_level = options.relevance_level;
    check_level(relevance_level)?;
    let ranked = rank_trec_eval(hits, options.score_precision);
    let mut seen = HashSet::with_capacity(ranked.len());
    for d in &ranked {
        if !seen.insert(d.doc_id.as_str()) {
            return Err(Error::Invalid(format!(
                "document {:?} is retrieved twice for one query",
                d.doc_id
            )));
        }
    }
    let labels = relevance_labels(&ranked, judgments);
    let num_rel = num_relevant(judgments, relevance_level);
    Ok(measures
        .iter()
        .map(|m| m.compute(&labels, judgments, num_rel, relevance_level))
        .collect())
}

fn check_level(relevance_level: Relevance) -> Result<()> {
    if relevance_level < 1 {
        return Err(Error::InvalidOption(format!(
            "relevance_level must be at least 1, got {relevance_level}"
        )));
    }
    Ok(())
}

/// Evaluates `run` against `qrels` (see the module documentation for which queries count).
pub fn evaluate(
    qrels: &Qrels,
    run: &Run,
    measures: &[Measure],
    options: &EvalOptions,
) -> Result<Evaluation> {
    check_level(options.relevance_level)?;
    let mut per_query = BTreeMap::new();
    let empty: &[ScoredDoc] = &[];
    for (qid, judgments) in qrels.iter() {
        let hits = match (run.get(qid), options.missing_queries) {
            (Some(hits), _) => hits,
            (None, MissingQueries::Zero) => empty,
            (None, MissingQueries::Skip) => continue,
        };
        let values = if options.ignore_identical_ids {
            let kept: Vec<ScoredDoc> = hits.iter().filter(|d| d.doc_id != qid).cloned().collect();
            evaluate_query(judgments, &kept, measures, options)
        } else {
            evaluate_query(judgments, hits, measures, options)
        };
        let values = values.map_err(|e| match e {
            Error::Invalid(m) => Error::Invalid(format!("query {qid:?}: {m}")),
            other => other,
        })?;
        per_query.insert(qid.to_owned(), values);
    }
    let mut means = vec![0.0; measures.len()];
    if !per_query.is_empty() {
        for values in per_query.values() {
            for (s, v) in means.iter_mut().zip(values) {
                *s += v;
            }
        }
        let n = per_query.len() as f64;
        for s in &mut means {
            *s /= n;
        }
    }
    Ok(Evaluation {
        measures: measures.to_vec(),
        per_query,
        means,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measure_names_parse_and_print() {
        for (text, m) in [
            ("nDCG@10", Measure::Ndcg(10)),
            ("ndcg_cut_10", Measure::Ndcg(10)),
            ("ndcg_cut.20", Measure::Ndcg(20)),
            ("MRR@10", Measure::ReciprocalRank(Some(10))),
            ("RR@10", Measure::ReciprocalRank(Some(10))),
            ("recip_rank", Measure::ReciprocalRank(None)),
            ("R@100", Measure::Recall(100)),
            ("recall_1000", Measure::Recall(1000)),
            ("Recall@5", Measure::Recall(5)),
            ("P_10", Measure::Precision(10)),
            ("MAP", Measure::AveragePrecision(None)),
            ("map_cut_100", Measure::AveragePrecision(Some(100))),
            ("AP@100", Measure::AveragePrecision(Some(100))),
        ] {
            assert_eq!(text.parse::<Measure>().expect(text), m, "{text}");
            assert_eq!(m.to_string().parse::<Measure>().expect("display"), m);
            assert_eq!(m.trec_name().parse::<Measure>().expect("trec"), m);
        }
        assert!("ndcg".parse::<Measure>().is_err());
        assert!("R@0".parse::<Measure>().is_err());
        assert!("bogus@3".parse::<Measure>().is_err());
    }

    fn toy() -> (Qrels, Run) {
        let mut qrels = Qrels::new();
        qrels.insert("1", "a", 1);
        qrels.insert("1", "b", 2);
        qrels.insert("2", "a", 0); // judged, nothing relevant
        qrels.insert("3", "c", 1); // not in the run
        let mut run = Run::new();
        run.insert("1", [("b", 1.0), ("1", 0.9), ("a", 0.5)]);
        run.insert("2", [("a", 1.0)]);
        run.insert("9", [("a", 1.0)]); // not judged
        (qrels, run)
    }

    #[test]
    fn query_selection() {
        let (qrels, run) = toy();
        let m = [Measure::ReciprocalRank(None), Measure::Recall(2)];
        let e = evaluate(&qrels, &run, &m, &EvalOptions::default()).expect("evaluates");
        assert_eq!(e.num_queries(), 2);
        assert_eq!(e.query("1"), Some(&[1.0, 0.5][..]));
        assert_eq!(e.query("2"), Some(&[0.0, 0.0][..]));
        assert_eq!(e.mean(Measure::Recall(2)), Some(0.25));
        assert_eq!(e.mean(Measure::Ndcg(10)), None);
        let opts = EvalOptions {
            missing_queries: MissingQueries::Zero,
            ignore_identical_ids: true,
            ..EvalOptions::default()
        };
        let e = evaluate(&qrels, &run, &m, &opts).expect("evaluates");
        assert_eq!(e.num_queries(), 3);
        assert_eq!(e.value("1", Measure::Recall(2)), Some(1.0));
        assert_eq!(e.value("3", Measure::Recall(2)), Some(0.0));
        assert!(e.to_string().ends_with("(3 queries)"));
        let e = evaluate(&qrels, &run, &m, &EvalOptions::with_relevance_level(2)).expect("l2");
        assert_eq!(e.query("1"), Some(&[1.0, 1.0][..]));
        assert!(evaluate(&qrels, &run, &m, &EvalOptions::with_relevance_level(0)).is_err());
    }

    #[test]
    fn duplicates_are_refused() {
        let (qrels, mut run) = toy();
        run.push("1", "b", 0.1);
        let e = evaluate(&qrels, &run, &Measure::standard(), &EvalOptions::default())
            .expect_err("duplicate");
        assert!(e.to_string().contains("query \"1\""), "{e}");
    }
}
