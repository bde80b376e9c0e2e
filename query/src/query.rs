//! A query resolved against an index: known term ids with quantized integer weights.

use bmp_index::quantize::quantize_query_weights;
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// Terms in increasing term-id order, each once, with weight > 0.
    pub terms: Vec<QueryTerm>,
    /// Number of input terms that are not in the index vocabulary (they are ignored).
    pub unknown_terms: usize,
}

impl Query {
    /// Resolves `(term, weight)` entries against `index`: unknown terms are ignored and counted,
    /// repeated terms add their weights, weights of 0 are dropped, and the rest are quantized.
    /// A negative or non-finite weight is an error.
    pub fn from_entries(index: &Index, entries: &[(String, f32)]) -> Result<Query> {
        let mut unknown_terms = 0;
        let mut resolved: Vec<(u32, f32)> = Vec::with_capacity(entries.len());
        for (term, weight) in entries {
            if !weight.is_finite() || *weight < 0.0 {
                return Err(Error::Invalid(format!(
                    "query term {term:?} has an invalid weight {weight}"
                )));
            }
            match index.term_id(term)? {
                Some(id) => resolved.push((id, *weight)),
                None => unknown_terms += 1,
            }
        }
        let mut query = Query::from_term_weights(resolved);
        query.unknown_terms = unknown_terms;
        Ok(query)
    }

    /// Builds a query from term ids and real weights (positive, finite; others are dropped).
    pub fn from_term_weights(mut terms: Vec<(u32, f32)>) -> Query {
        terms.retain(|&(_, w)| w.is_finite() && w > 0.0);
        terms.sort_unstable_by_key(|&(t, _)| t);
        terms.dedup_by(|b, a| {
            if a.0 == b.0 {
                a.1 += b.1;
                true
            } else {
                false
            }
        });
        let weights: Vec<f32> = terms.iter().map(|&(_, w)| w).collect();
        let quantized = quantize_query_weights(&weights);
        Query {
            terms: terms
                .iter()
                .zip(quantized)
                .filter(|&(_, q)| q > 0)
                .map(|(&(term, _), weight)| QueryTerm { term, weight })
                .collect(),
            unknown_terms: 0,
        }
    }

    /// Whether no known term is left.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }
}
