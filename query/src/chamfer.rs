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
#[inline(always)]
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
        max_similarities(&mut self.best, query, &self.doc, dim);
        self.best.iter().sum()
    }
}

/// `best[i] = max(best[i], max over doc vectors d of <query_i, d>)`, with the widest vector unit
/// the CPU has (AVX-512 or AVX2 + FMA builds of the same loop, chosen at run time).
fn max_similarities(best: &mut [f32], query: &[f32], doc: &[f32], dim: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the feature the function is compiled for.
            unsafe { max_similarities_avx512(best, query, doc, dim) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: as above.
            unsafe { max_similarities_avx2(best, query, doc, dim) };
            return;
        }
    }
    max_similarities_portable(best, query, doc, dim);
}

/// Four query vectors at a time against one document vector, so that each load of the
/// document vector serves four dot products (16 lanes each).
#[inline(always)]
fn max_similarities_portable(best: &mut [f32], query: &[f32], doc: &[f32], dim: usize) {
    const LANES: usize = 16;
    let nq = best.len().min(query.len() / dim);
    let whole = dim - dim % LANES;
    for d in doc.chunks_exact(dim) {
        let mut i = 0;
        while i + 4 <= nq {
            let q = &query[i * dim..(i + 4) * dim];
            let (q0, rest) = q.split_at(dim);
            let (q1, rest) = rest.split_at(dim);
            let (q2, q3) = rest.split_at(dim);
            let mut acc = [[0f32; LANES]; 4];
            for j in (0..whole).step_by(LANES) {
                let dv = &d[j..j + LANES];
                let (a0, a1, a2, a3) = (
                    &q0[j..j + LANES],
                    &q1[j..j + LANES],
                    &q2[j..j + LANES],
                    &q3[j..j + LANES],
                );
                for l in 0..LANES {
                    acc[0][l] += a0[l] * dv[l];
                    acc[1][l] += a1[l] * dv[l];
                    acc[2][l] += a2[l] * dv[l];
                    acc[3][l] += a3[l] * dv[l];
                }
            }
            for (r, (acc, qr)) in acc.iter().zip([q0, q1, q2, q3]).enumerate() {
                let tail: f32 = qr[whole..]
                    .iter()
                    .zip(&d[whole..])
                    .map(|(x, y)| x * y)
                    .sum();
                let s = acc.iter().sum::<f32>() + tail;
                best[i + r] = best[i + r].max(s);
            }
            i += 4;
        }
        for (b, q) in best[i..nq]
            .iter_mut()
            .zip(query[i * dim..].chunks_exact(dim))
        {
            *b = b.max(dot(q, d));
        }
    }
}

/// # Safety
/// The CPU must support AVX-512 F.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn max_similarities_avx512(best: &mut [f32], query: &[f32], doc: &[f32], dim: usize) {
    max_similarities_portable(best, query, doc, dim);
}

/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn max_similarities_avx2(best: &mut [f32], query: &[f32], doc: &[f32], dim: usize) {
    max_similarities_portable(best, query, doc, dim);
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
    fn blocked_kernel_matches_pairwise_dots() {
        for (nq, nd, dim) in [(1, 3, 5), (4, 2, 16), (7, 5, 33), (9, 4, 384)] {
            let q: Vec<f32> = (0..nq * dim).map(|i| (i as f32 * 0.7).sin()).collect();
            let d: Vec<f32> = (0..nd * dim).map(|i| (i as f32 * 0.3).cos()).collect();
            let mut got = vec![f32::NEG_INFINITY; nq];
            max_similarities(&mut got, &q, &d, dim);
            for (i, qv) in q.chunks_exact(dim).enumerate() {
                let want = d
                    .chunks_exact(dim)
                    .map(|dv| dot(qv, dv))
                    .fold(f32::MIN, f32::max);
                assert!(
                    (got[i] - want).abs() < 1e-3,
                    "{nq}x{nd}x{dim}: {} vs {want}",
                    got[i]
                );
            }
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
