//! Chamfer (MaxSim) scoring of multi-vector representations, and reranking a first-stage top-k
//! with it.
//!
//! `chamfer(Q, D) = sum over q in Q of max over d in D of <q, d>`. Query vectors are f32, document
//! vectors f16 from a [`MultiVecStore`]; each document vector is widened once into a scratch
//! buffer, then dotted with every query vector in a loop of 16 independent lanes that the compiler
//! vectorizes.

use bmp_index::multivec::MultiVecStore;
use half::f16;
use half::slice::HalfFloatSliceExt;

use crate::Hit;

/// `<a, b>` over `min(a.len(), b.len())` floats, accumulated in 16 lanes.
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    const LANES: usize = 16;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; LANES];
    let mut ca = a.chunks_exact(LANES);
    let mut cb = b.chunks_exact(LANES);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..LANES {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    acc.iter().sum::<f32>() + tail
}

/// Scores documents of a store against one query's vectors; keeps its buffers between calls.
#[derive(Debug, Default)]
pub struct ChamferScorer {
    doc: Vec<f32>,
    best: Vec<f32>,
}

impl ChamferScorer {
    /// A scorer with empty buffers.
    pub fn new() -> Self {
        Self::default()
    }

    /// `chamfer(query, doc)` with `query` holding `query.len() / dim` vectors and `doc` f16
    /// vectors of the same `dim`; 0 when either side has no vector.
    pub fn score(&mut self, query: &[f32], doc: &[f16], dim: usize) -> f32 {
        if dim == 0 || query.len() < dim || doc.len() < dim {
            return 0.0;
        }
        let nq = query.len() / dim;
        self.doc.resize(doc.len(), 0.0);
        doc.convert_to_f32_slice(&mut self.doc);
        self.best.clear();
        self.best.resize(nq, f32::NEG_INFINITY);
        for d in self.doc.chunks_exact(dim) {
            for (best, q) in self.best.iter_mut().zip(query.chunks_exact(dim)) {
                *best = best.max(dot(q, d));
            }
        }
        self.best.iter().sum()
    }
}

/// A reranked hit: the document and its new score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RerankedHit {
    /// Internal doc id.
    pub doc: u32,
    /// The Chamfer score for the reranked head; below every head score, in first-stage order,
    /// for the tail.
    pub score: f32,
}

/// Reorders the first `depth` of `hits` (a first-stage ranking) by Chamfer score against
/// `query` (ties by the first-stage order) and keeps the rest after them in their order, with
/// scores below the head's lowest.
pub fn rerank(
    scorer: &mut ChamferScorer,
    store: &MultiVecStore,
    query: &[f32],
    hits: &[Hit],
    depth: usize,
) -> Vec<RerankedHit> {
    let dim = store.dim();
    let head = depth.min(hits.len());
    let mut scored: Vec<(usize, RerankedHit)> = hits[..head]
        .iter()
        .enumerate()
        .map(|(rank, h)| {
            let score = scorer.score(query, store.doc(h.doc), dim);
            (rank, RerankedHit { doc: h.doc, score })
        })
        .collect();
    scored.sort_by(|(ra, a), (rb, b)| b.score.total_cmp(&a.score).then(ra.cmp(rb)));
    let floor = scored.last().map_or(0.0, |(_, h)| h.score).min(0.0);
    let mut out: Vec<RerankedHit> = scored.into_iter().map(|(_, h)| h).collect();
    out.extend(hits[head..].iter().enumerate().map(|(i, h)| RerankedHit {
        doc: h.doc,
        score: floor - 1.0 - i as f32,
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_matches_the_plain_sum() {
        for n in [0usize, 1, 15, 16, 17, 384] {
            let a: Vec<f32> = (0..n).map(|i| (i as f32 * 0.37).sin()).collect();
            let b: Vec<f32> = (0..n).map(|i| (i as f32 * 0.11).cos()).collect();
            let want: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
            assert!((dot(&a, &b) - want).abs() < 1e-4, "n = {n}");
        }
    }

    #[test]
    fn chamfer_sums_each_query_vectors_best_match() {
        let mut s = ChamferScorer::new();
        let q = [1.0, 0.0, 0.0, 1.0];
        let d: Vec<f16> = [0.5, 0.5, 1.0, 0.0, 0.0, -1.0]
            .iter()
            .map(|&x| f16::from_f32(x))
            .collect();
        // q0 best with d1 (1.0), q1 best with d0 (0.5).
        assert_eq!(s.score(&q, &d, 2), 1.5);
        assert_eq!(s.score(&q, &[], 2), 0.0);
        assert_eq!(s.score(&[], &d, 2), 0.0);
    }
}
