//! Per-query measures, computed exactly as trec_eval 9.0.x computes them (the code pytrec_eval
//! wraps). Each function takes the relevance *labels* of a ranking: for each retrieved document
//! in trec_eval's order ([`trec_eval_order`]), its judged relevance, or `None` when unjudged.
//!
//! Conventions (trec_eval's):
//! - a document is *relevant* when its label is ≥ `relevance_level` (≥ 1; trec_eval's `-l`,
//!   default 1). Unjudged, 0 and negative labels are never relevant;
//! - nDCG ignores `relevance_level`: the gain of a document is its label when positive, else 0,
//!   the discount of rank r (1-based) is log2(r + 1), and the ideal ranking is every positive
//!   judgment of the query sorted by grade (trec_eval's `ndcg_cut`);
//! - a cutoff larger than the ranking counts the missing ranks as non-relevant;
//! - a query without a relevant document scores 0 on every measure.

use std::cmp::Ordering;

use crate::qrels::{Judgments, Relevance};
use crate::run::ScoredDoc;

/// How scores are compared when ranking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScorePrecision {
    /// Scores rounded to `f32` first, as trec_eval 9.x stores them (`float sim`): what
    /// pytrec_eval (BEIR), Anserini and most published numbers use. Scores that differ only
    /// beyond single precision tie.
    #[default]
    Single,
    /// Scores compared as `f64`, as trec_eval 10 does.
    Double,
}

/// trec_eval's ranking order: score descending, then document id descending (byte-wise
/// `strcmp`) on equal scores. The rank column of a run file plays no part.
///
/// This is `comp_sim_docno` in trec_eval's `form_res_rels.c`; scores are compared at the given
/// precision. `-0.0` equals `0.0`; NaN (which the run reader refuses) sorts above every number
/// so that the order stays total.
pub fn trec_eval_order(a: &ScoredDoc, b: &ScoredDoc, precision: ScorePrecision) -> Ordering {
    let by_score = match precision {
        ScorePrecision::Single => {
            let key = |s: f64| {
                let s = s as f32;
                if s == 0.0 {
                    0.0
                } else {
                    s
                }
            };
            key(b.score).total_cmp(&key(a.score))
        }
        ScorePrecision::Double => {
            let key = |s: f64| if s == 0.0 { 0.0 } else { s };
            key(b.score).total_cmp(&key(a.score))
        }
    };
    by_score.then_with(|| b.doc_id.as_bytes().cmp(a.doc_id.as_bytes()))
}

/// The documents of one query's results in [`trec_eval_order`].
pub fn rank_trec_eval(hits: &[ScoredDoc], precision: ScorePrecision) -> Vec<&ScoredDoc> {
    let mut ranked: Vec<&ScoredDoc> = hits.iter().collect();
    ranked.sort_unstable_by(|a, b| trec_eval_order(a, b, precision));
    ranked
}

/// The label of each ranked document: its judgment, or `None` when it is not judged.
pub fn relevance_labels(ranked: &[&ScoredDoc], judgments: &Judgments) -> Vec<Option<Relevance>> {
    ranked
        .iter()
        .map(|d| judgments.get(&d.doc_id).copied())
        .collect()
}

fn is_relevant(label: Option<Relevance>, relevance_level: Relevance) -> bool {
    label.is_some_and(|r| r >= relevance_level)
}

fn gain(label: Option<Relevance>) -> f64 {
    match label {
        Some(r) if r > 0 => f64::from(r),
        _ => 0.0,
    }
}

/// The discount of the document at 0-based position `i`: log2(i + 2).
fn discount(i: usize) -> f64 {
    ((i + 2) as f64).log2()
}

/// Discounted cumulative gain of the first `k` ranks: Σ label / log2(rank + 1) over positive labels.
pub fn dcg(labels: &[Option<Relevance>], k: usize) -> f64 {
    let mut sum = 0.0;
    for (i, &label) in labels.iter().take(k).enumerate() {
        let g = gain(label);
        if g > 0.0 {
            sum += g / discount(i);
        }
    }
    sum
}

/// The DCG at `k` of the ideal ranking: the query's positive judgments sorted by grade.
pub fn ideal_dcg(judgments: &Judgments, k: usize) -> f64 {
    let mut grades: Vec<Relevance> = judgments.values().copied().filter(|&r| r > 0).collect();
    grades.sort_unstable_by(|a, b| b.cmp(a));
    grades
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, &r)| f64::from(r) / discount(i))
        .sum()
}

/// nDCG@k (trec_eval `ndcg_cut.k`): [`dcg`] / [`ideal_dcg`], or 0 when the ideal is 0.
pub fn ndcg_at(labels: &[Option<Relevance>], judgments: &Judgments, k: usize) -> f64 {
    let ideal = ideal_dcg(judgments, k);
    if ideal > 0.0 {
        dcg(labels, k) / ideal
    } else {
        0.0
    }
}

/// Reciprocal rank of the first relevant document within the first `cutoff` ranks (all ranks
/// when `None`), 0 when there is none. trec_eval's `recip_rank` is the uncut form; MRR@10 is
/// `cutoff = Some(10)`, which equals `recip_rank` on the run truncated to 10 documents.
pub fn reciprocal_rank(
    labels: &[Option<Relevance>],
    relevance_level: Relevance,
    cutoff: Option<usize>,
) -> f64 {
    let n = cutoff.unwrap_or(usize::MAX);
    labels
        .iter()
        .take(n)
        .position(|&l| is_relevant(l, relevance_level))
        .map_or(0.0, |i| 1.0 / (i + 1) as f64)
}

/// Number of relevant documents in the first `k` ranks.
pub fn relevant_retrieved(
    labels: &[Option<Relevance>],
    relevance_level: Relevance,
    k: usize,
) -> usize {
    labels
        .iter()
        .take(k)
        .filter(|&&l| is_relevant(l, relevance_level))
        .count()
}

/// Recall@k (trec_eval `recall.k`): relevant documents in the first `k` ranks / relevant
/// documents judged for the query (`num_relevant`, see [`crate::qrels::num_relevant`]); 0 when
/// the query has none.
pub fn recall_at(
    labels: &[Option<Relevance>],
    num_relevant: usize,
    relevance_level: Relevance,
    k: usize,
) -> f64 {
    if num_relevant == 0 {
        return 0.0;
    }
    relevant_retrieved(labels, relevance_level, k) as f64 / num_relevant as f64
}

/// Precision@k (trec_eval `P.k`): relevant documents in the first `k` ranks / k.
pub fn precision_at(labels: &[Option<Relevance>], relevance_level: Relevance, k: usize) -> f64 {
    if k == 0 {
        return 0.0;
    }
    relevant_retrieved(labels, relevance_level, k) as f64 / k as f64
}

/// Average precision (trec_eval `map`, or `map_cut.k` with `cutoff = Some(k)`): the sum of the
/// precision at the rank of each relevant retrieved document (within the cutoff), divided by the
/// number of relevant documents judged for the query; 0 when it has none.
pub fn average_precision(
    labels: &[Option<Relevance>],
    num_relevant: usize,
    relevance_level: Relevance,
    cutoff: Option<usize>,
) -> f64 {
    if num_relevant == 0 {
        return 0.0;
    }
    let n = cutoff.unwrap_or(usize::MAX);
    let mut found = 0usize;
    let mut sum = 0.0;
    for (i, &label) in labels.iter().take(n).enumerate() {
        if is_relevant(label, relevance_level) {
            found += 1;
            sum += found as f64 / (i + 1) as f64;
        }
    }
    sum / num_relevant as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(id: &str, score: f64) -> ScoredDoc {
        ScoredDoc {
            doc_id: id.into(),
            score,
        }
    }

    #[test]
    fn ties_break_by_doc_id_descending() {
        let hits = vec![doc("a", 1.0), doc("b", 2.0), doc("10", 1.0), doc("9", 1.0)];
        let order: Vec<&str> = rank_trec_eval(&hits, ScorePrecision::Single)
            .iter()
            .map(|d| d.doc_id.as_str())
            .collect();
        assert_eq!(order, vec!["b", "a", "9", "10"]);
        for p in [ScorePrecision::Single, ScorePrecision::Double] {
            assert_eq!(
                trec_eval_order(&doc("x", 0.0), &doc("y", -0.0), p),
                Ordering::Greater
            );
        }
    }

    #[test]
    fn single_precision_ties_like_trec_eval_9() {
        let (p, q) = (doc("p", 1.000_000_000_1), doc("q", 1.0));
        assert_eq!(
            trec_eval_order(&p, &q, ScorePrecision::Single),
            Ordering::Greater
        );
        assert_eq!(
            trec_eval_order(&p, &q, ScorePrecision::Double),
            Ordering::Less
        );
        // 1e300 overflows to +inf in single precision, 1e-300 underflows to zero.
        let (big, small) = (doc("a", 1e300), doc("b", -1e-300));
        assert_eq!(
            trec_eval_order(&small, &doc("c", 0.0), ScorePrecision::Single),
            Ordering::Greater
        );
        assert_eq!(
            trec_eval_order(&big, &small, ScorePrecision::Single),
            Ordering::Less
        );
    }

    #[test]
    fn hand_computed_values() {
        let judgments: Judgments = [("a", 2), ("b", 0), ("c", 1), ("d", -1)]
            .into_iter()
            .map(|(d, r)| (d.to_owned(), r))
            .collect();
        // Ranking: b (0), x (unjudged), a (2), d (-1), c (1).
        let labels = vec![Some(0), None, Some(2), Some(-1), Some(1)];
        let dcg3 = 2.0 / 4f64.log2();
        assert!((dcg(&labels, 3) - dcg3).abs() < 1e-15);
        let ideal3 = 2.0 + 1.0 / 3f64.log2();
        assert!((ndcg_at(&labels, &judgments, 3) - dcg3 / ideal3).abs() < 1e-15);
        assert_eq!(reciprocal_rank(&labels, 1, None), 1.0 / 3.0);
        assert_eq!(reciprocal_rank(&labels, 1, Some(2)), 0.0);
        assert_eq!(reciprocal_rank(&labels, 2, None), 1.0 / 3.0);
        assert_eq!(recall_at(&labels, 2, 1, 3), 0.5);
        assert_eq!(recall_at(&labels, 2, 1, 1000), 1.0);
        assert_eq!(precision_at(&labels, 1, 10), 0.2);
        let ap = (1.0 / 3.0 + 2.0 / 5.0) / 2.0;
        assert!((average_precision(&labels, 2, 1, None) - ap).abs() < 1e-15);
        assert!((average_precision(&labels, 2, 1, Some(4)) - 1.0 / 6.0).abs() < 1e-15);
        assert_eq!(average_precision(&labels, 0, 1, None), 0.0);
        assert_eq!(ndcg_at(&[], &Judgments::new(), 10), 0.0);
    }
}
