//! Reducing a text's token vectors to fewer vectors, CRISP-style, and the baselines it is compared
//! with.
//!
//! A [`ClusterSpec`] names what happens on each side (queries and documents):
//!
//! | spec | query side | document side |
//! |---|---|---|
//! | `none` | every token | every token |
//! | `C4x8`, `C8x32`, `CqxD` | k-means into q centroids | k-means into D centroids |
//! | `C25`, `C50`, `Cp` | k-means into `ceil(p% of the length)` | the same |
//! | `K2`, `K4`, `Kn` | every n-th token (the first, the n+1-th, ...) | the same |
//! | `tail`, `tailQxD` | the last Q tokens (default 8) | the last D tokens (default 32) |
//!
//! k-means ([`kmeans`]) seeds with k-means++ from a fixed seed, assigns each vector to the centroid
//! of largest dot product, recomputes each centroid as the mean of its members renormalised to unit
//! length, and stops when no assignment changes or after [`KMEANS_ITERATIONS`] rounds. A text with
//! no more vectors than centroids keeps its vectors.

use std::fmt;
use std::str::FromStr;

use crate::token_embed::{l2_normalize, TokenVectors};

/// The iteration cap of [`kmeans`].
pub const KMEANS_ITERATIONS: usize = 10;

/// How one side's token vectors are reduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    /// Keep every vector.
    All,
    /// k-means into this many centroids.
    Clusters(usize),
    /// k-means into `ceil(percent / 100 * len)` centroids (at least one).
    Fraction(u32),
    /// Keep every n-th vector, starting with the first.
    EveryNth(usize),
    /// Keep the last n vectors.
    Tail(usize),
}

impl Reduction {
    /// The reduced vectors of `v`; `seed` makes k-means deterministic.
    pub fn apply(&self, v: &TokenVectors, seed: u64) -> TokenVectors {
        let n = v.len();
        match *self {
            Reduction::All => v.clone(),
            Reduction::Clusters(k) => kmeans(v, k, seed),
            Reduction::Fraction(p) => {
                let k = (u64::from(p) * n as u64).div_ceil(100).max(1) as usize;
                kmeans(v, k, seed)
            }
            Reduction::EveryNth(step) => {
                let mut out = TokenVectors::new(v.dim);
                for row in v.rows().step_by(step.max(1)) {
                    out.push(row);
                }
                out
            }
            Reduction::Tail(keep) => {
                let mut out = TokenVectors::new(v.dim);
                for row in v.rows().skip(n.saturating_sub(keep)) {
                    out.push(row);
                }
                out
            }
        }
    }
}

/// What happens to query and document token vectors; see the module documentation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    /// The query side.
    pub query: Reduction,
    /// The document side.
    pub doc: Reduction,
    name: String,
}

impl ClusterSpec {
    /// Every token on both sides (the unpruned multi-vector model).
    pub fn none() -> Self {
        Self {
            query: Reduction::All,
            doc: Reduction::All,
            name: "none".into(),
        }
    }

    /// The spec's name as written (`C8x32`, `K2`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A query's token vectors reduced by the query side, seeded with [`QUERY_SEED`]: a query's
    /// vectors depend on its text alone, not on where it stands in a file or a batch.
    pub fn reduce_query(&self, v: &TokenVectors) -> TokenVectors {
        self.query.apply(v, QUERY_SEED)
    }
}

/// The k-means seed of every query (see [`ClusterSpec::reduce_query`]). Documents are seeded with
/// their internal id, so that a store is reproducible.
pub const QUERY_SEED: u64 = 0;

impl fmt::Display for ClusterSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Parses `QxD` into two positive counts.
fn pair(s: &str) -> Option<(usize, usize)> {
    let (q, d) = s.split_once(['x', 'X'])?;
    let (q, d) = (q.parse().ok()?, d.parse().ok()?);
    (q > 0 && d > 0).then_some((q, d))
}

impl FromStr for ClusterSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "unknown clustering `{s}`: expected none, CqxD (e.g. C8x32), Cp (percent of the \
                 length, e.g. C25), Kn (every n-th token, e.g. K2), tail or tailQxD"
            )
        };
        let t = s.trim();
        let (query, doc) = if t.eq_ignore_ascii_case("none") {
            (Reduction::All, Reduction::All)
        } else if let Some(rest) = t.strip_prefix("tail") {
            let (q, d) = if rest.is_empty() {
                (8, 32)
            } else {
                pair(rest).ok_or_else(bad)?
            };
            (Reduction::Tail(q), Reduction::Tail(d))
        } else if let Some(rest) = t.strip_prefix(['C', 'c']) {
            match pair(rest) {
                Some((q, d)) => (Reduction::Clusters(q), Reduction::Clusters(d)),
                None => {
                    let p: u32 = rest.parse().map_err(|_| bad())?;
                    if p == 0 || p > 100 {
                        return Err(format!("clustering `{s}`: the percentage must be 1..=100"));
                    }
                    (Reduction::Fraction(p), Reduction::Fraction(p))
                }
            }
        } else if let Some(rest) = t.strip_prefix(['K', 'k']) {
            let n: usize = rest.parse().map_err(|_| bad())?;
            if n == 0 {
                return Err(format!("clustering `{s}`: the step must be at least 1"));
            }
            (Reduction::EveryNth(n), Reduction::EveryNth(n))
        } else {
            return Err(bad());
        };
        Ok(Self {
            query,
            doc,
            name: t.to_owned(),
        })
    }
}

/// A small deterministic generator (SplitMix64) for the k-means++ draws.
struct SplitMix(u64);

impl SplitMix {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn squared_distance(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// k-means of `v` into at most `k` unit-length centroids (see the module documentation): the
/// renormalised means of the groups of [`kmeans_groups`]. Returns `v` itself when it has at most
/// `k` vectors.
pub fn kmeans(v: &TokenVectors, k: usize, seed: u64) -> TokenVectors {
    if v.len() <= k || k == 0 {
        return v.clone();
    }
    let groups = kmeans_groups(v, k, seed);
    let m = groups.iter().max().map_or(0, |&g| g + 1);
    let mut centroids = TokenVectors {
        dim: v.dim,
        data: vec![0.0; m * v.dim],
    };
    for (x, &g) in v.rows().zip(&groups) {
        for (c, &xv) in centroids.data[g * v.dim..(g + 1) * v.dim].iter_mut().zip(x) {
            *c += xv;
        }
    }
    for c in centroids.data.chunks_exact_mut(v.dim) {
        l2_normalize(c);
    }
    centroids
}

/// The k-means group of each vector of `v` (k-means++ seeding from `seed`, assignment by largest
/// dot product with the renormalised group means, at most [`KMEANS_ITERATIONS`] rounds). Groups
/// are numbered `0..m` in order of first member, `m <= k`; no group is empty.
pub fn kmeans_groups(v: &TokenVectors, k: usize, seed: u64) -> Vec<usize> {
    let (n, dim) = (v.len(), v.dim);
    if n <= k || k == 0 {
        return (0..n).collect();
    }
    let mut rng = SplitMix(seed ^ (n as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
    // k-means++ seeding: each next centre drawn with probability proportional to the squared
    // distance to the nearest centre so far.
    let mut centroids = TokenVectors::new(dim);
    centroids.push(v.row((rng.next_u64() % n as u64) as usize));
    let mut nearest: Vec<f32> = v
        .rows()
        .map(|x| squared_distance(x, centroids.row(0)))
        .collect();
    while centroids.len() < k {
        let total: f64 = nearest.iter().map(|&d| f64::from(d)).sum();
        let pick = if total > 0.0 {
            let mut target = rng.next_f64() * total;
            let mut pick = n - 1;
            for (i, &d) in nearest.iter().enumerate() {
                target -= f64::from(d);
                if target < 0.0 {
                    pick = i;
                    break;
                }
            }
            pick
        } else {
            // Every vector coincides with a centre already: any choice is as good.
            centroids.len() % n
        };
        centroids.push(v.row(pick));
        let c = centroids.len() - 1;
        for (i, x) in v.rows().enumerate() {
            nearest[i] = nearest[i].min(squared_distance(x, centroids.row(c)));
        }
    }
    let mut assignment = vec![usize::MAX; n];
    let mut sums = vec![0f32; k * dim];
    let mut counts = vec![0usize; k];
    for round in 0..KMEANS_ITERATIONS {
        let mut changed = false;
        for (i, x) in v.rows().enumerate() {
            let mut best = (f32::NEG_INFINITY, 0usize);
            for (c, centre) in centroids.rows().enumerate() {
                let s = dot(x, centre);
                if s > best.0 {
                    best = (s, c);
                }
            }
            if assignment[i] != best.1 {
                assignment[i] = best.1;
                changed = true;
            }
        }
        if !changed || round + 1 == KMEANS_ITERATIONS {
            break;
        }
        sums.fill(0.0);
        counts.fill(0);
        for (x, &c) in v.rows().zip(&assignment) {
            counts[c] += 1;
            for (s, &xv) in sums[c * dim..(c + 1) * dim].iter_mut().zip(x) {
                *s += xv;
            }
        }
        for c in 0..k {
            // An empty cluster keeps its centre.
            if counts[c] > 0 {
                let centre = &mut centroids.data[c * dim..(c + 1) * dim];
                centre.copy_from_slice(&sums[c * dim..(c + 1) * dim]);
                l2_normalize(centre);
            }
        }
    }
    // Number the groups in order of first member, leaving out empty ones.
    let mut renumber = vec![usize::MAX; k];
    let mut next = 0;
    for a in &mut assignment {
        if renumber[*a] == usize::MAX {
            renumber[*a] = next;
            next += 1;
        }
        *a = renumber[*a];
    }
    assignment
}

impl Reduction {
    /// The reduction as a linear map: `rows` weights over the `v.len()` input vectors each
    /// (row-major), such that row `r` of the reduced vectors is the weighted sum of the inputs
    /// (renormalised for the cluster reductions). Training uses it to keep the reduction inside
    /// the differentiable forward pass while the grouping itself is not differentiated.
    pub fn weights(&self, v: &TokenVectors, seed: u64) -> (usize, Vec<f32>) {
        let n = v.len();
        let select = |picked: Vec<usize>| {
            let mut w = vec![0f32; picked.len() * n];
            for (r, &i) in picked.iter().enumerate() {
                w[r * n + i] = 1.0;
            }
            (picked.len(), w)
        };
        let groups = |k: usize| {
            let g = kmeans_groups(v, k, seed);
            let m = g.iter().max().map_or(0, |&x| x + 1);
            let mut w = vec![0f32; m * n];
            for (i, &gi) in g.iter().enumerate() {
                w[gi * n + i] = 1.0;
            }
            (m, w)
        };
        match *self {
            Reduction::All => select((0..n).collect()),
            Reduction::EveryNth(step) => select((0..n).step_by(step.max(1)).collect()),
            Reduction::Tail(keep) => select((n.saturating_sub(keep)..n).collect()),
            Reduction::Clusters(k) => groups(k),
            Reduction::Fraction(p) => {
                groups((u64::from(p) * n as u64).div_ceil(100).max(1) as usize)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vectors(rows: &[&[f32]]) -> TokenVectors {
        let mut v = TokenVectors::new(rows[0].len());
        for r in rows {
            let mut r = r.to_vec();
            l2_normalize(&mut r);
            v.push(&r);
        }
        v
    }

    #[test]
    fn parses_every_form_and_refuses_the_rest() {
        let c: ClusterSpec = "C8x32".parse().unwrap();
        assert_eq!(
            (c.query, c.doc),
            (Reduction::Clusters(8), Reduction::Clusters(32))
        );
        let c: ClusterSpec = "C25".parse().unwrap();
        assert_eq!(c.doc, Reduction::Fraction(25));
        let c: ClusterSpec = "K4".parse().unwrap();
        assert_eq!(c.doc, Reduction::EveryNth(4));
        let c: ClusterSpec = "tail".parse().unwrap();
        assert_eq!((c.query, c.doc), (Reduction::Tail(8), Reduction::Tail(32)));
        let c: ClusterSpec = "tail4x16".parse().unwrap();
        assert_eq!(c.doc, Reduction::Tail(16));
        assert_eq!("none".parse::<ClusterSpec>().unwrap(), ClusterSpec::none());
        for bad in [
            "", "C", "C0x4", "C101", "C0", "K0", "Kx", "tailx", "X8", "C4x",
        ] {
            assert!(bad.parse::<ClusterSpec>().is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn kmeans_separates_clear_groups_and_is_deterministic() {
        let v = vectors(&[
            &[1.0, 0.0, 0.0],
            &[0.9, 0.1, 0.0],
            &[0.95, 0.0, 0.05],
            &[0.0, 1.0, 0.0],
            &[0.1, 0.9, 0.0],
            &[0.0, 0.0, 1.0],
            &[0.0, 0.1, 0.9],
        ]);
        let c = kmeans(&v, 3, 7);
        assert_eq!(c.len(), 3);
        assert_eq!(c, kmeans(&v, 3, 7));
        for row in c.rows() {
            assert!((dot(row, row) - 1.0).abs() < 1e-5);
        }
        // Every input vector has a centroid close to it: one centroid per group.
        for x in v.rows() {
            let best = c.rows().map(|r| dot(x, r)).fold(f32::MIN, f32::max);
            assert!(best > 0.95, "a vector is far from every centroid: {best}");
        }
    }

    #[test]
    fn short_texts_keep_their_vectors_and_baselines_pick_the_right_rows() {
        let v = vectors(&[
            &[1.0, 0.0],
            &[0.0, 1.0],
            &[1.0, 1.0],
            &[1.0, -1.0],
            &[-1.0, 0.0],
        ]);
        assert_eq!(kmeans(&v, 8, 1), v);
        assert_eq!(Reduction::Fraction(40).apply(&v, 1).len(), 2);
        assert_eq!(Reduction::Fraction(1).apply(&v, 1).len(), 1);
        let every = Reduction::EveryNth(2).apply(&v, 0);
        assert_eq!(every.len(), 3);
        assert_eq!(every.row(1), v.row(2));
        let tail = Reduction::Tail(2).apply(&v, 0);
        assert_eq!(tail.rows().collect::<Vec<_>>(), vec![v.row(3), v.row(4)]);
        assert_eq!(Reduction::All.apply(&v, 0), v);
    }

    #[test]
    fn weights_reproduce_every_reduction() {
        let rows: Vec<Vec<f32>> = (0..23)
            .map(|i| {
                vec![
                    (i as f32).sin(),
                    (i as f32 * 0.3).cos(),
                    1.0 + (i % 4) as f32,
                ]
            })
            .collect();
        let refs: Vec<&[f32]> = rows.iter().map(Vec::as_slice).collect();
        let v = vectors(&refs);
        for r in [
            Reduction::All,
            Reduction::Clusters(4),
            Reduction::Fraction(25),
            Reduction::EveryNth(3),
            Reduction::Tail(5),
        ] {
            let want = r.apply(&v, 11);
            let (m, w) = r.weights(&v, 11);
            assert_eq!(m, want.len(), "{r:?}");
            for (row, wrow) in want.rows().zip(w.chunks_exact(v.len())) {
                let mut got = vec![0f32; v.dim];
                for (x, &c) in v.rows().zip(wrow) {
                    for (g, &xv) in got.iter_mut().zip(x) {
                        *g += c * xv;
                    }
                }
                if matches!(r, Reduction::Clusters(_) | Reduction::Fraction(_)) {
                    l2_normalize(&mut got);
                }
                for (a, b) in got.iter().zip(row) {
                    assert!((a - b).abs() < 1e-5, "{r:?}: {a} vs {b}");
                }
            }
        }
    }
}
