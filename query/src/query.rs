//! A query resolved against an index: known term ids with quantized integer weights.

use std::collections::BTreeMap;

use bmp_index::quantize::quantize_query_weights_scaled;
use bmp_index::{Error, Index, Result};

/// One query term: an index term id and its quantized weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryTerm {
    /// The term id in the index.
    pub term: u32,
    /// The quantized weight (see [`bmp_index::quantize`]).
    pub weight: u32,
}

/// A query ready for any [`crate::Searcher`].
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Terms in increasing term-id order, each once, with weight > 0.
    pub terms: Vec<QueryTerm>,
    /// Number of input terms that are not in the index vocabulary (they are ignored).
    pub unknown_terms: usize,
    /// The query weight units of one quantized unit (see
    /// [`bmp_index::quantize::quantize_query_weights_scaled`]).
    pub scale: f64,
}

impl Default for Query {
    fn default() -> Self {
        Query {
            terms: Vec::new(),
            unknown_terms: 0,
            scale: 1.0,
        }
    }
}

impl Query {
    /// The factor from this query's integer scores in `index` to scores in the model's units
    /// (the dot product of the real query and document weights, up to quantization): the
    /// query's scale times the index's impact scale.
    pub fn score_scale(&self, index: &Index) -> f64 {
        self.scale * f64::from(index.quantizer().scale())
    }

    /// The largest integer score any document of `index` can reach for this query: the sum of
    /// each quantized weight times its term's largest impact.
    pub fn max_score(&self, index: &Index) -> Result<u64> {
        let mut top = 0u64;
        for qt in &self.terms {
            let max = index.term_stats(qt.term)?.max_impact;
            top = top.saturating_add(u64::from(qt.weight) * u64::from(max));
        }
        Ok(top)
    }

    /// Resolves `(term, weight)` entries against `index`: unknown terms are ignored and counted,
    /// repeated terms add their weights, weights of 0 are dropped, and the rest are quantized.
    /// A negative or non-finite weight is an error.
    pub fn from_entries(index: &Index, entries: &[(String, f32)]) -> Result<Query> {
        Query::from_terms(index, entries.iter().map(|(t, w)| (t.as_str(), *w)))
    }

    /// [`Query::from_entries`] over borrowed terms (e.g. straight from a caller's strings).
    pub fn from_terms<'a>(
        index: &Index,
        entries: impl IntoIterator<Item = (&'a str, f32)>,
    ) -> Result<Query> {
        let mut unknown_terms = 0;
        let mut known: Vec<(u32, f32)> = Vec::new();
        for (term, weight) in entries {
            if !weight.is_finite() || weight < 0.0 {
                return Err(Error::Invalid(format!(
                    "query term {term:?} has an invalid weight {weight}"
                )));
            }
            match index.term_id(term)? {
                Some(id) => known.push((id, weight)),
                None => unknown_terms += 1,
            }
        }
        let mut query = Query::from_term_weights(known);
        query.unknown_terms = unknown_terms;
        Ok(query)
    }

    /// Resolves `(term, weight)` entries against several indexes at once (the segments of a
    /// collection), as [`Query::from_entries`] does against one, with the weights quantized once,
    /// over the terms at least one of them knows: a document scores the same in any of them.
    /// Returns one query per index and the number of entries whose term none of them knows.
    pub fn from_entries_shared(
        indexes: &[&Index],
        entries: &[(String, f32)],
    ) -> Result<(Vec<Query>, usize)> {
        Query::from_entries_resolved(indexes.len(), entries, |term| {
            indexes.iter().map(|index| index.term_id(term)).collect()
        })
    }

    /// [`Query::from_entries_shared`] over `n` indexes whose term ids `resolve` gives (one entry
    /// per index, `None` where the index lacks the term), e.g. from a cache.
    pub fn from_entries_resolved(
        n: usize,
        entries: &[(String, f32)],
        mut resolve: impl FnMut(&str) -> Result<Vec<Option<u32>>>,
    ) -> Result<(Vec<Query>, usize)> {
        let mut unknown_terms = 0;
        // Per distinct term: its summed weight and its id in each index.
        let mut merged: BTreeMap<&str, (f32, Vec<Option<u32>>)> = BTreeMap::new();
        for (term, weight) in entries {
            if !weight.is_finite() || *weight < 0.0 {
                return Err(Error::Invalid(format!(
                    "query term {term:?} has an invalid weight {weight}"
                )));
            }
            if let Some((w, _)) = merged.get_mut(term.as_str()) {
                *w += weight;
                continue;
            }
            let ids = resolve(term)?;
            if ids.len() != n || ids.iter().all(Option::is_none) {
                unknown_terms += 1;
                continue;
            }
            merged.insert(term, (*weight, ids));
        }
        // Terms none of the indexes knows were counted above each time they appeared.
        merged.retain(|_, (w, _)| *w > 0.0);
        let weights: Vec<f32> = merged.values().map(|(w, _)| *w).collect();
        let (quantized, scale) = quantize_query_weights_scaled(&weights);
        let queries = (0..n)
            .map(|i| {
                let mut terms: Vec<QueryTerm> = merged
                    .values()
                    .zip(&quantized)
                    .filter(|&(_, &q)| q > 0)
                    .filter_map(|((_, ids), &weight)| ids[i].map(|term| QueryTerm { term, weight }))
                    .collect();
                terms.sort_unstable_by_key(|t| t.term);
                Query {
                    terms,
                    unknown_terms: 0,
                    scale,
                }
            })
            .collect();
        Ok((queries, unknown_terms))
    }

    /// Builds a query from term ids and real weights (positive, finite; others are dropped). A
    /// repeated term adds its weights in the order given.
    pub fn from_term_weights(mut terms: Vec<(u32, f32)>) -> Query {
        terms.retain(|&(_, w)| w.is_finite() && w > 0.0);
        terms.sort_by_key(|&(t, _)| t);
        terms.dedup_by(|b, a| {
            if a.0 == b.0 {
                a.1 += b.1;
                true
            } else {
                false
            }
        });
        let weights: Vec<f32> = terms.iter().map(|&(_, w)| w).collect();
        let (quantized, scale) = quantize_query_weights_scaled(&weights);
        Query {
            terms: terms
                .iter()
                .zip(quantized)
                .filter(|&(_, q)| q > 0)
                .map(|(&(term, _), weight)| QueryTerm { term, weight })
                .collect(),
            unknown_terms: 0,
            scale,
        }
    }

    /// Whether no known term is left.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}
