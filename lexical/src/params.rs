//! BM25's parameters and formulas, as tantivy (and Lucene) compute BM25:
//! `idf = ln(1 + (N − n + 0.5) / (n + 0.5))` and per term
//! `idf · tf · (k1 + 1) / (tf + k1 · (1 − b + b · len / avg_len))`.

use crate::error::{Error, Result};

/// BM25's two parameters: `k1` (how fast a term's frequency saturates) and `b` (how much the
/// document's length normalizes it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bm25Params {
    /// Term-frequency saturation, ≥ 0 (0: a term counts once whatever its frequency).
    pub k1: f32,
    /// Length normalization, in [0, 1] (0: none; 1: full).
    pub b: f32,
}

impl Default for Bm25Params {
    /// Lucene's and tantivy's k1 = 1.2, b = 0.75.
    fn default() -> Self {
        Bm25Params { k1: 1.2, b: 0.75 }
    }
}

impl Bm25Params {
    /// Checked parameters: `k1` finite and ≥ 0, `b` in [0, 1].
    pub fn new(k1: f32, b: f32) -> Result<Self> {
        if !(k1.is_finite() && k1 >= 0.0) {
            return Err(Error::InvalidOption(format!(
                "BM25 k1 must be a number ≥ 0, not {k1}"
            )));
        }
        if !(0.0..=1.0).contains(&b) {
            return Err(Error::InvalidOption(format!(
                "BM25 b must lie in [0, 1], not {b}"
            )));
        }
        Ok(Bm25Params { k1, b })
    }

    /// The inverse document frequency of a term found in `doc_freq` of `num_docs` documents:
    /// `ln(1 + (N − n + 0.5) / (n + 0.5))`, never negative.
    pub fn idf(doc_freq: u64, num_docs: u64) -> f32 {
        let n = doc_freq.min(num_docs);
        let x = ((num_docs - n) as f32 + 0.5) / (n as f32 + 0.5);
        (1.0 + x).ln()
    }

    /// The denominator's length part, `k1 · (1 − b + b · len / avg_len)`.
    pub fn length_norm(&self, len: f32, avg_len: f32) -> f32 {
        self.k1 * (1.0 - self.b + self.b * len / avg_len)
    }

    /// A query term's weight: its idf, times `k1 + 1`, times its number of occurrences in the
    /// query.
    pub fn query_weight(&self, idf: f32, count: u32) -> f32 {
        idf * (self.k1 + 1.0) * count as f32
    }

    /// The score of a query term of weight `weight` ([`Self::query_weight`]) that occurs `tf`
    /// times in a document whose [`Self::length_norm`] is `norm`.
    pub fn term_score(weight: f32, tf: f32, norm: f32) -> f32 {
        weight * (tf / (tf + norm))
    }

    /// A short label: `k1=1.2,b=0.75`.
    pub fn label(&self) -> String {
        format!("k1={},b={}", self.k1, self.b)
    }
}
