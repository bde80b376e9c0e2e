//! Document reordering by recursive graph bisection ("BP": Dhulipala et al., *Compressing Graphs
//! and Indexes with Recursive Graph Bisection*, KDD 2016), as in PISA's
//! `reorder-docids --recursive-graph-bisection` and the Block-Max Pruning paper.
//!
//! Documents that share terms get nearby ids, so posting gaps shrink and the per-block maxima of
//! the block-max table become tight (few blocks hold a given term, and those that do hold it for
//! similar documents).
//!
//! The algorithm: the current range of documents is split into two halves; for a number of rounds,
//! every document gets a *move gain* (how much the log-gap cost approximation of the two halves
//! would drop if it moved to the other half), each half is sorted by gain descending, and pairs
//! (left `i`, right `i`) are swapped while the sum of their gains is positive; a round that moves
//! nothing ends the loop. Both halves are then bisected the same way in parallel, until a range has
//! at most [`BpOptions::min_partition`] documents or [`BpOptions::max_depth`] is reached.
//!
//! The cost of a term with degree `d` in a half of `n` documents is `d * log2(n / (d + 1))`
//! (PISA's approximation of the log-gaps of `d` ids spread over `n`); a document's gain for moving
//! from half 1 to half 2 is the sum over its terms of
//! `cost(d1, n1) + cost(d2, n2) - cost(d1 - 1, n1) - cost(d2 + 1, n2)`.
//!
//! Speed and memory: the postings of the kept terms are copied (a `u16` per posting when at most
//! 65,536 terms are kept, else a `u32`), and every partition keeps its documents' postings
//! contiguously (a split copies them into its two halves, and the parent's copy is dropped), so
//! small partitions work in cache and memory holds one copy, two while a partition is split. Per
//! document: 8 bytes of sort key, 4 of order, 12 of offsets and ids, 16 of `log2` tables. Per
//! kept term: 16 bytes for every partition being processed at once (pooled buffers, cleared by
//! touching only the partition's terms, never cloned per level). A term's gain depends only on its
//! two degrees, so gains are computed once per term and round (or only for the terms of swapped
//! documents, when fewer), then summed per document.
//!
//! The result depends only on the input and [`BpOptions`]: not on the number of threads. Every
//! partition's work is a pure function of its documents; parallel steps inside a large partition
//! write disjoint outputs or sum integers; sort keys are unique.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use rayon::prelude::*;

/// Parameters of [`bp_order`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BpOptions {
    /// Maximum number of bisection levels; `None` (the default) bisects until every partition has
    /// at most [`BpOptions::min_partition`] documents. `Some(0)` keeps the input order.
    pub max_depth: Option<u32>,
    /// Partitions of at most this many documents are not split further (default 16; values below
    /// 1 are treated as 1).
    pub min_partition: usize,
    /// Maximum number of swap rounds per partition (default 20); a round that moves nothing ends
    /// the partition early.
    pub iterations: u32,
    /// Terms with a document frequency below this are ignored (default 2: a term in one document
    /// cannot bring documents together).
    pub min_df: u32,
    /// Terms in more than this fraction of the documents are ignored (default 1.0: all kept).
    pub max_df_fraction: f64,
    /// How ties between documents of equal gain are broken: 0 (the default) keeps them in their
    /// current order, as a stable sort would; another seed orders them by a seeded bijection of
    /// their positions. The same seed gives the same order.
    pub seed: u64,
}

impl Default for BpOptions {
    fn default() -> Self {
        BpOptions {
            max_depth: None,
            min_partition: 16,
            iterations: 20,
            min_df: 2,
            max_df_fraction: 1.0,
            seed: 0,
        }
    }
}

/// Partitions with at least this many documents compute gains and sort in parallel.
const PARALLEL_MIN: usize = 1 << 14;
/// Documents per parallel task when computing gains.
const GAIN_CHUNK: usize = 4096;

/// [`bp_order`] of the documents of `collection`.
pub fn bp_order_collection(
    collection: &crate::Collection,
    options: &BpOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Vec<u32> {
    let (offsets, terms) = collection.csr();
    bp_order(collection.num_terms(), offsets, terms, options, progress)
}

/// Computes a document order by recursive graph bisection: `order[new] = old`, a permutation of
/// `0..num_docs` where `num_docs = doc_offsets.len() - 1` (0 when `doc_offsets` is empty), to be
/// given to [`crate::build::build_index_ordered`].
///
/// `doc_offsets` and `doc_terms` are compressed sparse rows as returned by
/// [`crate::Collection::csr`]: document `i` has the term ids `doc_terms[doc_offsets[i]..doc_offsets[i + 1]]`,
/// each below `num_terms`. Malformed rows do not panic: term ids of `num_terms` or more are
/// ignored and offsets are clamped to `doc_terms`. At most `u32::MAX` documents.
///
/// `progress(done, total)` is called, possibly from several threads at once, with the number of
/// documents whose final position is known, as leaf partitions finish.
pub fn bp_order(
    num_terms: usize,
    doc_offsets: &[u64],
    doc_terms: &[u32],
    options: &BpOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
) -> Vec<u32> {
    let num_docs = doc_offsets.len().saturating_sub(1);
    let mut order: Vec<u32> = (0..num_docs as u32).collect();
    progress(0, num_docs as u64);
    let max_depth = options.max_depth.unwrap_or(u32::MAX);
    let min_partition = options.min_partition.max(1);
    if num_docs <= min_partition || max_depth == 0 {
        progress(num_docs as u64, num_docs as u64);
        return order;
    }
    let rows = Rows {
        offsets: doc_offsets,
        terms: doc_terms,
    };
    let (remap, kept) = kept_terms(num_terms, &rows, options);
    if kept <= 1 << 16 {
        let root = Part::<u16>::new(&remap, &rows);
        drop(remap);
        bisect_all(root, kept, options, progress, &mut order);
    } else {
        let root = Part::<u32>::new(&remap, &rows);
        drop(remap);
        bisect_all(root, kept, options, progress, &mut order);
    }
    order
}

/// Runs the recursive bisection of `root`, all the documents, writing the order into `order`.
fn bisect_all<T: TermId>(
    root: Part<T>,
    num_terms: usize,
    options: &BpOptions,
    progress: &(dyn Fn(u64, u64) + Sync),
    order: &mut [u32],
) {
    let num_docs = order.len();
    let log2: Vec<f64> = (0..num_docs + 2)
        .map(|i| if i == 0 { 0.0 } else { (i as f64).log2() })
        .collect();
    let step = step_table(&log2);
    let ctx = Context {
        num_terms,
        log2: &log2,
        step: &step,
        iterations: options.iterations,
        min_partition: options.min_partition.max(1),
        max_depth: options.max_depth.unwrap_or(u32::MAX),
        mix: Mix::new(options.seed),
        pool: Mutex::new(Vec::new()),
        done: AtomicU64::new(0),
        total: num_docs as u64,
        progress,
    };
    let mut keys = vec![0u64; num_docs];
    ctx.bisect(root, order, &mut keys, 0);
}

/// The input rows, read defensively.
struct Rows<'a> {
    offsets: &'a [u64],
    terms: &'a [u32],
}

impl Rows<'_> {
    fn num_docs(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// The terms of document `d < num_docs`, with offsets clamped to `terms`.
    fn row(&self, d: usize) -> &[u32] {
        let a = (self.offsets[d] as usize).min(self.terms.len());
        let b = (self.offsets[d + 1] as usize).clamp(a, self.terms.len());
        &self.terms[a..b]
    }
}

/// Marks the terms below `num_terms` with `min_df <= df <= max_df_fraction * num_docs` as kept and
/// numbers them `0..kept` in term id order: `remap[t]` is the new id or `u32::MAX`.
fn kept_terms(num_terms: usize, rows: &Rows, options: &BpOptions) -> (Vec<u32>, usize) {
    let mut df = vec![0u32; num_terms];
    for d in 0..rows.num_docs() {
        for &t in rows.row(d) {
            if let Some(x) = df.get_mut(t as usize) {
                *x = x.saturating_add(1);
            }
        }
    }
    let max_df = options.max_df_fraction * rows.num_docs() as f64;
    let mut remap = df;
    let mut kept = 0u32;
    for r in &mut remap {
        // False for a NaN fraction, which keeps every term like the default.
        let too_common = f64::from(*r) > max_df;
        *r = if *r >= options.min_df.max(1) && !too_common {
            kept += 1;
            kept - 1
        } else {
            u32::MAX
        };
    }
    (remap, kept as usize)
}

/// A kept term id as stored in a [`Part`]: `u16` when there are at most 65,536 kept terms (half
/// the memory and memory traffic), `u32` otherwise.
trait TermId: Copy + Send + Sync {
    /// `t`, which fits.
    fn from_u32(t: u32) -> Self;
    /// As an index.
    fn index(self) -> usize;
}

impl TermId for u16 {
    #[inline]
    fn from_u32(t: u32) -> Self {
        t as u16
    }

    #[inline]
    fn index(self) -> usize {
        usize::from(self)
    }
}

impl TermId for u32 {
    #[inline]
    fn from_u32(t: u32) -> Self {
        t
    }

    #[inline]
    fn index(self) -> usize {
        self as usize
    }
}

/// The documents of a partition, in its order when it was created: their kept terms, stored
/// contiguously so that a small partition is a small, cache-friendly block of memory, and their
/// input ids. Within a partition documents are named by their position in it.
struct Part<T> {
    offsets: Vec<usize>,
    terms: Vec<T>,
    ids: Vec<u32>,
}

impl<T: TermId> Part<T> {
    /// All documents of `rows` in input order, with every term `t` replaced by `remap[t]`, or
    /// dropped when that is `u32::MAX` or `t` is out of range.
    fn new(remap: &[u32], rows: &Rows) -> Self {
        let keep = |t: &u32| remap.get(*t as usize).copied().filter(|&n| n != u32::MAX);
        let total: usize = (0..rows.num_docs())
            .map(|d| rows.row(d).iter().filter_map(keep).count())
            .sum();
        let mut offsets = Vec::with_capacity(rows.num_docs() + 1);
        let mut terms = Vec::with_capacity(total);
        offsets.push(0);
        for d in 0..rows.num_docs() {
            terms.extend(rows.row(d).iter().filter_map(keep).map(T::from_u32));
            offsets.push(terms.len());
        }
        Part {
            offsets,
            terms,
            ids: (0..rows.num_docs() as u32).collect(),
        }
    }

    /// Number of documents.
    fn len(&self) -> usize {
        self.ids.len()
    }

    /// The kept terms of document `d` (a position in this partition).
    #[inline]
    fn doc(&self, d: u32) -> &[T] {
        let d = d as usize;
        &self.terms[self.offsets[d]..self.offsets[d + 1]]
    }

    /// A new partition of the documents `docs` (positions in this one), in that order.
    fn gather(&self, docs: &[u32]) -> Part<T> {
        let total = docs.iter().map(|&d| self.doc(d).len()).sum();
        let mut offsets = Vec::with_capacity(docs.len() + 1);
        let mut terms = Vec::with_capacity(total);
        offsets.push(0);
        for &d in docs {
            terms.extend_from_slice(self.doc(d));
            offsets.push(terms.len());
        }
        Part {
            offsets,
            terms,
            ids: docs.iter().map(|&d| self.ids[d as usize]).collect(),
        }
    }
}

/// Buffers of one partition, indexed by kept term: degrees in the left and right halves (all zero
/// between uses), the gain a document holding the term earns by moving to the other half, and the
/// terms present in the partition. The gains are separate arrays so that the gain pass, which
/// reads one of them per posting, keeps a small working set in cache.
struct Scratch {
    degrees: Vec<[u32; 2]>,
    to_right: Vec<f32>,
    to_left: Vec<f32>,
    touched: Vec<u32>,
}

/// A seeded bijection of `u32` (xor, then multiplication by an odd constant): sort keys hold the
/// mixed position of their document, so that ties between equal gains are broken in a seeded but
/// reversible way.
#[derive(Debug, Clone, Copy)]
struct Mix {
    xor: u32,
    mul: u32,
    inv: u32,
}

impl Mix {
    /// The identity for seed 0, else a bijection drawn from `seed`.
    fn new(seed: u64) -> Self {
        if seed == 0 {
            return Mix {
                xor: 0,
                mul: 1,
                inv: 1,
            };
        }
        // splitmix64.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let mul = (z as u32) | 1;
        // Newton's iteration for the inverse of an odd number modulo 2^32.
        let mut inv = mul;
        for _ in 0..5 {
            inv = inv.wrapping_mul(2u32.wrapping_sub(mul.wrapping_mul(inv)));
        }
        Mix {
            xor: (z >> 32) as u32,
            mul,
            inv,
        }
    }

    #[inline]
    fn forward(self, x: u32) -> u32 {
        (x ^ self.xor).wrapping_mul(self.mul)
    }

    #[inline]
    fn backward(self, y: u32) -> u32 {
        y.wrapping_mul(self.inv) ^ self.xor
    }
}

const SIGN: u32 = 0x8000_0000;

/// The bits of `g` as an unsigned integer with the same order as the floats.
#[inline]
fn ordered_bits(g: f32) -> u32 {
    let b = g.to_bits();
    if b & SIGN != 0 {
        !b
    } else {
        b | SIGN
    }
}

/// The inverse of [`ordered_bits`].
#[inline]
fn from_ordered_bits(o: u32) -> f32 {
    f32::from_bits(if o & SIGN != 0 { o & !SIGN } else { !o })
}

/// A sort key: ascending keys are gains descending, then the seeded tie-breaker; unique per
/// document, whose position is `Mix::backward` of the low 32 bits.
#[inline]
fn key(gain: f32, mixed_doc: u32) -> u64 {
    (u64::from(!ordered_bits(gain)) << 32) | u64::from(mixed_doc)
}

/// The gain stored in a key.
#[inline]
fn key_gain(key: u64) -> f32 {
    from_ordered_bits(!((key >> 32) as u32))
}

/// `step[d] = cost(d, n) - cost(d - 1, n) - log2(n) = (d - 1) * log2(d) - d * log2(d + 1)` for
/// `d >= 1` (independent of `n`), from `log2[i] = log2(i)`; one entry less than `log2`.
fn step_table(log2: &[f64]) -> Vec<f64> {
    let mut step = vec![0.0; log2.len().saturating_sub(1)];
    for (d, s) in step.iter_mut().enumerate().skip(1) {
        *s = (d - 1) as f64 * log2[d] - d as f64 * log2[d + 1];
    }
    step
}

/// The gain of moving one document holding a term from a half of `n_from` documents where the term
/// has degree `from` to a half of `n_to` where it has degree `to`, with `log_from = log2(n_from)`
/// and `log_to = log2(n_to)`:
/// `cost(from, n_from) + cost(to, n_to) - cost(from - 1, n_from) - cost(to + 1, n_to)`
/// `= log_from + step[from] - log_to - step[to + 1]` (0 when `from` is 0: no document moves).
#[inline]
fn move_gain(step: &[f64], from: u32, to: u32, log_from: f64, log_to: f64) -> f32 {
    if from == 0 {
        return 0.0;
    }
    (log_from + step[from as usize] - log_to - step[to as usize + 1]) as f32
}

/// What every partition shares.
struct Context<'a> {
    /// Number of kept terms.
    num_terms: usize,
    /// `log2[i] = log2(i)` for `i` in `1..=num_docs + 1`.
    log2: &'a [f64],
    /// [`step_table`].
    step: &'a [f64],
    iterations: u32,
    min_partition: usize,
    max_depth: u32,
    mix: Mix,
    /// Reusable buffers, one per partition being processed.
    pool: Mutex<Vec<Scratch>>,
    done: AtomicU64,
    total: u64,
    progress: &'a (dyn Fn(u64, u64) + Sync),
}

impl Context<'_> {
    /// Whether a partition of `len` documents at level `depth` is a leaf (not split).
    fn is_leaf(&self, len: usize, depth: u32) -> bool {
        len <= self.min_partition || depth >= self.max_depth
    }

    /// Reports that the final positions of `docs` more documents are known.
    fn report(&self, docs: usize) {
        let done = self.done.fetch_add(docs as u64, Ordering::Relaxed) + docs as u64;
        (self.progress)(done, self.total);
    }

    /// Orders the documents of `part`, at level `depth`, writing their input ids into `out` (with
    /// `keys`, scratch; both of the partition's length).
    fn bisect<T: TermId>(&self, part: Part<T>, out: &mut [u32], keys: &mut [u64], depth: u32) {
        if self.is_leaf(part.len(), depth) {
            out.copy_from_slice(&part.ids);
            self.report(out.len());
            return;
        }
        // `out` holds positions in `part` until the children are made.
        for (i, o) in out.iter_mut().enumerate() {
            *o = i as u32;
        }
        let mid = out.len() / 2;
        self.partition(&part, out, keys, mid);
        let (out_left, out_right) = out.split_at_mut(mid);
        let (left, right) = if part.len() >= PARALLEL_MIN {
            rayon::join(
                || self.child(&part, out_left, depth + 1),
                || self.child(&part, out_right, depth + 1),
            )
        } else {
            (
                self.child(&part, out_left, depth + 1),
                self.child(&part, out_right, depth + 1),
            )
        };
        // Only the children's copies stay alive below: memory stays at one copy of the postings
        // (two while a partition is being split).
        drop(part);
        let (keys_left, keys_right) = keys.split_at_mut(mid);
        rayon::join(
            || {
                if let Some(left) = left {
                    self.bisect(left, out_left, keys_left, depth + 1);
                }
            },
            || {
                if let Some(right) = right {
                    self.bisect(right, out_right, keys_right, depth + 1);
                }
            },
        );
    }

    /// The child of `part` made of the documents `docs` (positions in `part`), at level `depth`;
    /// for a leaf, `None`, with their input ids written into `docs` instead.
    fn child<T: TermId>(&self, part: &Part<T>, docs: &mut [u32], depth: u32) -> Option<Part<T>> {
        if self.is_leaf(docs.len(), depth) {
            for d in docs.iter_mut() {
                *d = part.ids[*d as usize];
            }
            self.report(docs.len());
            None
        } else {
            Some(part.gather(docs))
        }
    }

    fn take_scratch(&self) -> Scratch {
        let pooled = self
            .pool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        pooled.unwrap_or_else(|| Scratch {
            degrees: vec![[0; 2]; self.num_terms],
            to_right: vec![0.0; self.num_terms],
            to_left: vec![0.0; self.num_terms],
            touched: Vec::new(),
        })
    }

    fn give_scratch(&self, mut scratch: Scratch) {
        for &t in &scratch.touched {
            scratch.degrees[t.index()] = [0; 2];
        }
        scratch.touched.clear();
        self.pool
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(scratch);
    }

    /// Writes the sort key of every document of `docs` into `keys`: the sum of `gains` over its
    /// terms, and its mixed position.
    fn fill_keys<T: TermId>(&self, part: &Part<T>, gains: &[f32], docs: &[u32], keys: &mut [u64]) {
        let fill = |docs: &[u32], keys: &mut [u64]| {
            for (k, &d) in keys.iter_mut().zip(docs) {
                // Four independent sums, not one chain of dependent additions.
                let row = part.doc(d);
                let mut quads = row.chunks_exact(4);
                let mut acc = [0.0f32; 4];
                for q in &mut quads {
                    for (a, &t) in acc.iter_mut().zip(q) {
                        *a += gains[t.index()];
                    }
                }
                let mut g = (acc[0] + acc[1]) + (acc[2] + acc[3]);
                for &t in quads.remainder() {
                    g += gains[t.index()];
                }
                *k = key(g, self.mix.forward(d));
            }
        };
        if docs.len() >= PARALLEL_MIN {
            docs.par_chunks(GAIN_CHUNK)
                .zip(keys.par_chunks_mut(GAIN_CHUNK))
                .for_each(|(d, k)| fill(d, k));
        } else {
            fill(docs, keys);
        }
    }

    /// Runs the swap rounds on `docs`, split into `docs[..mid]` and `docs[mid..]`.
    fn partition<T: TermId>(&self, part: &Part<T>, docs: &mut [u32], keys: &mut [u64], mid: usize) {
        let mut scratch = self.take_scratch();
        let Scratch {
            degrees,
            to_right,
            to_left,
            touched,
        } = &mut scratch;
        let (degrees, to_right, to_left) = (&mut degrees[..], &mut to_right[..], &mut to_left[..]);
        for (i, &d) in docs.iter().enumerate() {
            let side = usize::from(i >= mid);
            for &t in part.doc(d) {
                let deg = &mut degrees[t.index()];
                if deg[0] == 0 && deg[1] == 0 {
                    touched.push(t.index() as u32);
                }
                deg[side] += 1;
            }
        }
        let (n_left, n_right) = (mid, docs.len() - mid);
        let (log_left, log_right) = (self.log2[n_left], self.log2[n_right]);
        let update = |t: usize, degrees: &[[u32; 2]], to_right: &mut [f32], to_left: &mut [f32]| {
            let [left, right] = degrees[t];
            to_right[t] = move_gain(self.step, left, right, log_left, log_right);
            to_left[t] = move_gain(self.step, right, left, log_right, log_left);
        };
        let parallel = docs.len() >= PARALLEL_MIN;
        // Whether every term's gains must be (re)computed, or only those of the documents swapped
        // last round (already done).
        let mut all_stale = true;
        for _ in 0..self.iterations {
            if all_stale {
                for &t in touched.iter() {
                    update(t as usize, degrees, to_right, to_left);
                }
            }
            let (docs_left, docs_right) = docs.split_at_mut(mid);
            let (keys_left, keys_right) = keys.split_at_mut(mid);
            self.fill_keys(part, to_right, docs_left, keys_left);
            self.fill_keys(part, to_left, docs_right, keys_right);
            if parallel {
                rayon::join(
                    || keys_left.par_sort_unstable(),
                    || keys_right.par_sort_unstable(),
                );
            } else {
                keys_left.sort_unstable();
                keys_right.sort_unstable();
            }
            let swaps = keys_left
                .iter()
                .zip(keys_right.iter())
                .take_while(|&(&l, &r)| f64::from(key_gain(l)) + f64::from(key_gain(r)) > 0.0)
                .count();
            for (d, &k) in docs.iter_mut().zip(keys.iter()) {
                *d = self.mix.backward(k as u32);
            }
            if swaps == 0 {
                break;
            }
            let (docs_left, docs_right) = docs.split_at_mut(mid);
            let mut moved = 0;
            for (l, r) in docs_left[..swaps].iter_mut().zip(&mut docs_right[..swaps]) {
                let (terms_l, terms_r) = (part.doc(*l), part.doc(*r));
                for &t in terms_l {
                    let deg = &mut degrees[t.index()];
                    deg[0] -= 1;
                    deg[1] += 1;
                }
                for &t in terms_r {
                    let deg = &mut degrees[t.index()];
                    deg[1] -= 1;
                    deg[0] += 1;
                }
                moved += terms_l.len() + terms_r.len();
                std::mem::swap(l, r);
            }
            // Gains depend only on degrees: recompute those of the moved documents' terms when
            // that is less work than recomputing all.
            all_stale = moved >= touched.len();
            if !all_stale {
                for &d in docs_left[..swaps].iter().chain(&docs_right[..swaps]) {
                    for &t in part.doc(d) {
                        update(t.index(), degrees, to_right, to_left);
                    }
                }
            }
        }
        self.give_scratch(scratch);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use proptest::prelude::*;
    use rand::rngs::StdRng;
    use rand::seq::SliceRandom;
    use rand::{Rng, SeedableRng};

    /// A collection as compressed sparse rows.
    struct Rows {
        num_terms: usize,
        offsets: Vec<u64>,
        terms: Vec<u32>,
    }

    impl Rows {
        fn from_docs(num_terms: usize, docs: &[Vec<u32>]) -> Self {
            let mut offsets = vec![0u64];
            let mut terms = Vec::new();
            for d in docs {
                let mut d = d.clone();
                d.sort_unstable();
                d.dedup();
                terms.extend(d);
                offsets.push(terms.len() as u64);
            }
            Rows {
                num_terms,
                offsets,
                terms,
            }
        }

        fn num_docs(&self) -> usize {
            self.offsets.len() - 1
        }

        fn doc(&self, d: usize) -> &[u32] {
            &self.terms[self.offsets[d] as usize..self.offsets[d + 1] as usize]
        }

        fn order(&self, options: &BpOptions) -> Vec<u32> {
            bp_order(
                self.num_terms,
                &self.offsets,
                &self.terms,
                options,
                &|_, _| {},
            )
        }

        /// The posting lists (sorted new doc ids) under `order`.
        fn postings(&self, order: &[u32]) -> Vec<Vec<u32>> {
            let mut lists = vec![Vec::new(); self.num_terms];
            for (new, &old) in order.iter().enumerate() {
                for &t in self.doc(old as usize) {
                    lists[t as usize].push(new as u32);
                }
            }
            lists
        }

        /// Mean over postings of `log2` of the doc-id gap (the first gap is `id + 1`): what BP
        /// minimises.
        fn mean_log_gap(&self, order: &[u32]) -> f64 {
            let (mut sum, mut count) = (0.0, 0u64);
            for list in self.postings(order) {
                let mut prev = None;
                for &d in &list {
                    let gap = prev.map_or(d + 1, |p| d - p);
                    sum += f64::from(gap).log2();
                    count += 1;
                    prev = Some(d);
                }
            }
            sum / count.max(1) as f64
        }

        /// The number of distinct (term, block of `block` docs) pairs.
        fn nonempty_blocks(&self, order: &[u32], block: u32) -> usize {
            self.postings(order)
                .iter()
                .map(|list| {
                    let mut blocks: Vec<u32> = list.iter().map(|&d| d / block).collect();
                    blocks.dedup();
                    blocks.len()
                })
                .sum()
        }
    }

    fn assert_permutation(order: &[u32], n: usize) {
        let mut sorted = order.to_vec();
        sorted.sort_unstable();
        assert!(
            sorted.iter().copied().eq(0..n as u32),
            "not a permutation of 0..{n}: {order:?}"
        );
    }

    /// `docs` documents from `topics` disjoint topics of `per_topic` terms each (`draw` distinct
    /// terms of its topic per document, plus `noise` terms from a shared pool of 100), shuffled.
    fn planted(docs: usize, topics: u32, per_topic: u32, draw: usize, noise: usize) -> Rows {
        let mut rng = StdRng::seed_from_u64(11);
        let pool = topics * per_topic;
        let mut rows: Vec<Vec<u32>> = (0..docs)
            .map(|i| {
                let topic = i as u32 % topics;
                let mut own: Vec<u32> = (0..per_topic).map(|j| topic * per_topic + j).collect();
                own.shuffle(&mut rng);
                own.truncate(draw);
                own.extend((0..noise).map(|_| pool + rng.random_range(0..100)));
                own
            })
            .collect();
        rows.shuffle(&mut rng);
        Rows::from_docs(pool as usize + 100, &rows)
    }

    fn small_rows(docs: &[Vec<u32>]) -> Rows {
        Rows::from_docs(12, docs)
    }

    #[test]
    fn edge_sizes_give_permutations() {
        let mut rng = StdRng::seed_from_u64(3);
        for n in [0usize, 1, 2, 3, 16, 17, 33] {
            let docs: Vec<Vec<u32>> = (0..n)
                .map(|_| (0..4).map(|_| rng.random_range(0..12)).collect())
                .collect();
            let rows = small_rows(&docs);
            for min_partition in [0, 1, 2, 16] {
                let options = BpOptions {
                    min_partition,
                    ..BpOptions::default()
                };
                assert_permutation(&rows.order(&options), n);
            }
        }
        // No offsets at all: no documents.
        assert!(bp_order(5, &[], &[], &BpOptions::default(), &|_, _| {}).is_empty());
    }

    #[test]
    fn malformed_rows_do_not_panic() {
        // Offsets past the end, decreasing offsets, term ids out of range.
        let offsets = [0u64, 3, 2, 100, 4];
        let terms = [0u32, 7, 1, 1];
        let options = BpOptions {
            min_partition: 1,
            min_df: 1,
            ..BpOptions::default()
        };
        let order = bp_order(2, &offsets, &terms, &options, &|_, _| {});
        assert_permutation(&order, 4);
        let nan = BpOptions {
            max_df_fraction: f64::NAN,
            ..options
        };
        assert_permutation(&bp_order(2, &offsets, &terms, &nan, &|_, _| {}), 4);
    }

    #[test]
    fn progress_reaches_the_total() {
        let rows = planted(1000, 10, 20, 8, 1);
        let last = AtomicU64::new(0);
        let calls = AtomicU64::new(0);
        let order = bp_order(
            rows.num_terms,
            &rows.offsets,
            &rows.terms,
            &BpOptions::default(),
            &|done, total| {
                assert_eq!(total, 1000);
                assert!(done <= total);
                last.fetch_max(done, Ordering::Relaxed);
                calls.fetch_add(1, Ordering::Relaxed);
            },
        );
        assert_permutation(&order, 1000);
        assert_eq!(last.load(Ordering::Relaxed), 1000);
        assert!(calls.load(Ordering::Relaxed) > 10);
    }

    #[test]
    fn documents_without_shared_terms_keep_the_input_order() {
        // Every term in one document (ignored with the default `min_df`), or no terms at all:
        // every gain is 0 and nothing moves.
        let docs: Vec<Vec<u32>> = (0..100)
            .map(|i| if i % 3 == 0 { vec![] } else { vec![i] })
            .collect();
        let rows = Rows::from_docs(100, &docs);
        let identity: Vec<u32> = (0..100).collect();
        assert_eq!(rows.order(&BpOptions::default()), identity);
        // With a seed, ties are broken by a bijection of positions: still a permutation.
        let seeded = BpOptions {
            seed: 7,
            ..BpOptions::default()
        };
        let order = rows.order(&seeded);
        assert_permutation(&order, 100);
        assert_ne!(order, identity);
    }

    #[test]
    fn max_depth_zero_and_no_iterations_keep_the_input_order() {
        let rows = planted(300, 5, 10, 4, 0);
        let identity: Vec<u32> = (0..300).collect();
        let depth0 = BpOptions {
            max_depth: Some(0),
            ..BpOptions::default()
        };
        assert_eq!(rows.order(&depth0), identity);
        let iterations0 = BpOptions {
            iterations: 0,
            ..BpOptions::default()
        };
        assert_eq!(rows.order(&iterations0), identity);
    }

    #[test]
    fn deterministic_across_runs_and_thread_counts() {
        let rows = planted(40_000, 40, 30, 12, 2);
        let options = BpOptions {
            iterations: 8,
            ..BpOptions::default()
        };
        let in_pool = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| rows.order(&options))
        };
        let one = in_pool(1);
        assert_permutation(&one, rows.num_docs());
        assert_eq!(in_pool(4), one, "4 threads differ from 1");
        assert_eq!(in_pool(4), one, "a second run differs");
        assert_eq!(in_pool(3), one, "3 threads differ from 1");
        // Another seed: another tie-breaking, still a permutation.
        let other = BpOptions { seed: 9, ..options };
        assert_permutation(&rows.order(&other), rows.num_docs());
    }

    #[test]
    fn planted_topics_are_recovered() {
        let rows = planted(4000, 40, 30, 12, 2);
        let input: Vec<u32> = (0..4000).collect();
        let order = rows.order(&BpOptions::default());
        assert_permutation(&order, 4000);
        let (gap_before, gap_after) = (rows.mean_log_gap(&input), rows.mean_log_gap(&order));
        let (blocks_before, blocks_after) = (
            rows.nonempty_blocks(&input, 32),
            rows.nonempty_blocks(&order, 32),
        );
        // The planted order: documents grouped by topic (the topic of a document is that of its
        // smallest term).
        let mut by_topic = input.clone();
        by_topic.sort_by_key(|&d| (rows.doc(d as usize)[0] / 30, d));
        let (gap_ideal, blocks_ideal) = (
            rows.mean_log_gap(&by_topic),
            rows.nonempty_blocks(&by_topic, 32),
        );
        eprintln!(
            "mean log2 gap {gap_before:.3} -> {gap_after:.3} (grouped by topic {gap_ideal:.3}); \
             non-empty (term, block) pairs {blocks_before} -> {blocks_after} \
             (grouped by topic {blocks_ideal})"
        );
        // Measured: gap 5.695 -> 1.798 (grouped 1.723), pairs 47,270 -> 11,647 (grouped 10,681).
        assert!(
            gap_after * 2.5 < gap_before && gap_after < gap_ideal * 1.1,
            "mean log2 gap {gap_before:.3} -> {gap_after:.3} (grouped {gap_ideal:.3})"
        );
        assert!(
            blocks_after * 3 < blocks_before && blocks_after * 10 < blocks_ideal * 12,
            "non-empty (term, block) pairs {blocks_before} -> {blocks_after} (grouped {blocks_ideal})"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 64,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Any collection, any options: a permutation of the documents.
        #[test]
        fn result_is_a_permutation(
            docs in prop::collection::vec(prop::collection::vec(0u32..12, 0..6), 0..80),
            min_partition in 0usize..20,
            iterations in 0u32..6,
            min_df in 0u32..4,
            max_df_fraction in prop::sample::select(vec![0.0, 0.3, 1.0, 2.0]),
            max_depth in prop::option::of(0u32..6),
            seed in any::<u64>(),
        ) {
            let rows = small_rows(&docs);
            let options = BpOptions {
                max_depth,
                min_partition,
                iterations,
                min_df,
                max_df_fraction,
                seed,
            };
            let order = rows.order(&options);
            let mut sorted = order.clone();
            sorted.sort_unstable();
            prop_assert!(sorted.iter().copied().eq(0..docs.len() as u32));
        }
    }

    #[test]
    fn move_gain_is_the_cost_difference() {
        let n = 1000usize;
        let log2: Vec<f64> = (0..n + 2)
            .map(|i| if i == 0 { 0.0 } else { (i as f64).log2() })
            .collect();
        let step = step_table(&log2);
        let cost = |d: u32, n: usize| f64::from(d) * ((n as f64) / f64::from(d + 1)).log2();
        for (n_from, n_to) in [(500, 500), (3, 997), (999, 1), (1, 1)] {
            for from in 1..=n_from as u32 {
                for to in (0..=n_to as u32).step_by(7) {
                    if from as usize + to as usize > n {
                        continue;
                    }
                    let want = cost(from, n_from) + cost(to, n_to)
                        - cost(from - 1, n_from)
                        - cost(to + 1, n_to);
                    let got = move_gain(&step, from, to, log2[n_from], log2[n_to]);
                    assert!(
                        (f64::from(got) - want).abs() < 1e-4 * want.abs().max(1.0),
                        "{from} of {n_from} -> {to} of {n_to}: {got} != {want}"
                    );
                }
            }
        }
        assert_eq!(move_gain(&step, 0, 5, log2[10], log2[10]), 0.0);
    }

    #[test]
    fn mix_is_a_bijection() {
        for seed in [0, 1, 42, u64::MAX] {
            let mix = Mix::new(seed);
            for x in [0u32, 1, 2, 1000, u32::MAX, 0x8000_0000] {
                assert_eq!(mix.backward(mix.forward(x)), x);
            }
        }
        for g in [-3.5f32, -0.0, 0.0, 1e-9, 2.0, 1e30] {
            assert_eq!(key_gain(key(g, 7)).to_bits(), g.to_bits());
        }
        assert!(key(2.0, 0) < key(1.0, 0) && key(1.0, 0) < key(-1.0, 0));
    }
}
