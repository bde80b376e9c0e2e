//! Block-Max Pruning (Mallia, Suel, Tonellotto, SIGIR'24).
//!
//! 1. Upper bound of every block: `UB(B) = sum_t q_t * W[t][B]` over the kept query terms, from the
//!    per-term block-max rows (a vectorizable loop over dense rows and over each range of a
//!    range-compressed row, a scatter over sparse ones).
//! 2. An initial threshold from the terms' stored k-th largest impacts: at least `k'` documents
//!    score at least `q_t * kth_t(k')` for the smallest stored `k' >= k`.
//! 3. Blocks whose bound can beat the threshold are bucketed by bound (a counting sort into a fixed
//!    number of buckets) and visited in descending bound, each bucket sorted only when reached.
//! 4. A visited block is scored from the block-grouped forward index into a small accumulator:
//!    each query term is found through the block's 256-id term buckets.
//! 5. The search stops at the first block that cannot hold a top-k document: its bound is below
//!    the k-th score, or equal to it while every document of the block has a higher id than the
//!    current k-th hit (ties are broken by doc id, so such a document could not enter).
//!
//! Approximation: `alpha < 1` replaces each bound by `floor(alpha * UB)`; `beta < 1` keeps only
//! the `ceil(beta * |q|)` heaviest query terms for the bounds (scores always use every term, so the
//! reported scores are exact). `alpha = beta = 1` is rank-safe.
//!
//! Filtered search: blocks holding no allowed document get a zero bound, the initial threshold is
//! not used (the stored k-th impacts count every document), and only allowed documents are offered
//! to the collector; the bounds stay upper bounds, so the search stays rank-safe.

use bmp_index::format::reader::BlockMaxRow;
use bmp_index::format::{KTH_IMPACT_KS, ROW_PAGE_BLOCKS};
use bmp_index::{Error, Index, Result};

use crate::filter::allows;
use crate::{DocFilter, Hit, Query, QueryTerm, Searcher, TopK};

/// Cache lines of the next block's forward data prefetched while a block is scored.
const PREFETCH_LINES: usize = 8;

/// Number of buckets blocks are distributed into by upper bound.
const NUM_BUCKETS: usize = 1024;

/// Approximation parameters of BMP.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BmpParams {
    /// Bound scaling in (0, 1]: a block is visited only while `alpha * UB` can beat the k-th score.
    pub alpha: f32,
    /// Fraction in (0, 1] of the heaviest query terms used for the block bounds.
    pub beta: f32,
}

impl Default for BmpParams {
    fn default() -> Self {
        BmpParams {
            alpha: 1.0,
            beta: 1.0,
        }
    }
}

impl BmpParams {
    /// Checks that both parameters lie in (0, 1].
    pub fn validate(&self) -> std::result::Result<(), String> {
        for (name, v) in [("alpha", self.alpha), ("beta", self.beta)] {
            if !(v > 0.0 && v <= 1.0) {
                return Err(format!("{name} must be in (0, 1], got {v}"));
            }
        }
        Ok(())
    }

    /// Whether these parameters give exact (rank-safe) results.
    pub fn is_safe(&self) -> bool {
        self.alpha >= 1.0 && self.beta >= 1.0
    }
}

/// What the last search did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BmpStats {
    /// Blocks in the index.
    pub blocks: u32,
    /// Blocks whose bound reached the initial threshold.
    pub candidates: u32,
    /// Blocks scored.
    pub scored: u32,
    /// The initial threshold.
    pub initial_threshold: u32,
}

/// The BMP searcher; keeps its buffers between queries.
pub struct Bmp<'a> {
    index: &'a Index,
    params: BmpParams,
    bounds: Vec<u32>,
    candidates: Vec<u32>,
    bucket_starts: Vec<u32>,
    bucket_fill: Vec<u32>,
    kept: Vec<QueryTerm>,
    found: Vec<(&'a [[u8; 2]], u32)>,
    scores: [u32; 256],
    block_mask: Vec<u64>,
    topk: TopK,
    stats: BmpStats,
}

impl<'a> Bmp<'a> {
    /// A BMP searcher over `index`. Parameters outside (0, 1] are clamped into it.
    pub fn new(index: &'a Index, params: BmpParams) -> Self {
        let clamp = |v: f32| if v > 0.0 { v.min(1.0) } else { 1.0 };
        Bmp {
            index,
            params: BmpParams {
                alpha: clamp(params.alpha),
                beta: clamp(params.beta),
            },
            bounds: Vec::new(),
            candidates: Vec::new(),
            bucket_starts: vec![0; NUM_BUCKETS + 1],
            bucket_fill: Vec::with_capacity(NUM_BUCKETS),
            kept: Vec::new(),
            found: Vec::new(),
            scores: [0; 256],
            block_mask: Vec::new(),
            topk: TopK::new(0),
            stats: BmpStats::default(),
        }
    }

    /// What the last search did.
    pub fn stats(&self) -> BmpStats {
        self.stats
    }

    /// The initial threshold: a score that at least `k` documents reach.
    fn initial_threshold(&self, query: &Query, k: usize) -> Result<u32> {
        let Some(slot) = KTH_IMPACT_KS.iter().position(|&stored| stored >= k) else {
            return Ok(0);
        };
        let mut theta = 0u32;
        for qt in &query.terms {
            let kth = self.index.term_stats(qt.term)?.kth_impact[slot];
            theta = theta.max(qt.weight.wrapping_mul(u32::from(kth)));
        }
        Ok(theta)
    }

    /// Fills `self.bounds` with the (alpha-scaled) block upper bounds of the kept terms.
    #[inline(never)]
    fn compute_bounds(&mut self, query: &Query) -> Result<()> {
        let nblocks = self.index.num_blocks() as usize;
        self.bounds.clear();
        self.bounds.resize(nblocks, 0);
        self.kept.clear();
        self.kept.extend_from_slice(&query.terms);
        if self.params.beta < 1.0 {
            let keep = ((self.params.beta as f64 * self.kept.len() as f64).ceil() as usize).max(1);
            self.kept
                .sort_unstable_by(|a, b| b.weight.cmp(&a.weight).then(a.term.cmp(&b.term)));
            self.kept.truncate(keep);
        }
        for qt in &self.kept {
            let w = qt.weight;
            match self.index.block_max(qt.term)? {
                BlockMaxRow::Dense(row) => add_dense(&mut self.bounds, row, w),
                BlockMaxRow::Sparse {
                    page_ends,
                    blocks,
                    maxes,
                } => {
                    let mut from = 0usize;
                    for (page, &end) in self.bounds.chunks_mut(ROW_PAGE_BLOCKS).zip(page_ends) {
                        let to = (end as usize).min(blocks.len()).min(maxes.len());
                        if from < to {
                            for (&b, &m) in blocks[from..to].iter().zip(&maxes[from..to]) {
                                if let Some(u) = page.get_mut(usize::from(b)) {
                                    *u = u.wrapping_add(w.wrapping_mul(u32::from(m)));
                                }
                            }
                            from = to;
                        }
                    }
                }
                BlockMaxRow::Ranges {
                    starts,
                    lens,
                    maxes,
                } => {
                    let mut rest = maxes;
                    for (&start, &len) in starts.iter().zip(lens) {
                        let (row, tail) = rest.split_at(usize::from(len).min(rest.len()));
                        rest = tail;
                        if let Some(span) = self.bounds.get_mut(start as usize..) {
                            add_dense(span, row, w);
                        }
                    }
                }
            }
        }
        if self.params.alpha < 1.0 {
            let alpha = f64::from(self.params.alpha);
            for u in &mut self.bounds {
                *u = (f64::from(*u) * alpha) as u32;
            }
        }
        Ok(())
    }

    /// Buckets the blocks with a bound of at least `floor` by bound; bucket `i` holds bounds in
    /// `[floor + i * width, floor + (i + 1) * width)`.
    #[inline(never)]
    fn bucket_candidates(&mut self, floor: u32, max_bound: u32) -> u64 {
        let span = u64::from(max_bound - floor) + 1;
        let width = span.div_ceil(NUM_BUCKETS as u64).max(1);
        let bucket = |u: u32| (u64::from(u - floor) / width) as usize;
        self.bucket_starts.fill(0);
        for &u in &self.bounds {
            if u >= floor {
                self.bucket_starts[bucket(u) + 1] += 1;
            }
        }
        for i in 0..NUM_BUCKETS {
            self.bucket_starts[i + 1] += self.bucket_starts[i];
        }
        let total = self.bucket_starts[NUM_BUCKETS] as usize;
        self.candidates.clear();
        self.candidates.resize(total, 0);
        self.bucket_fill.clear();
        self.bucket_fill
            .extend_from_slice(&self.bucket_starts[..NUM_BUCKETS]);
        for (b, &u) in self.bounds.iter().enumerate() {
            if u >= floor {
                let slot = &mut self.bucket_fill[bucket(u)];
                self.candidates[*slot as usize] = b as u32;
                *slot += 1;
            }
        }
        width
    }

    /// Zeroes the bound of every block holding no document `filter` allows.
    fn mask_bounds(&mut self, filter: &DocFilter) {
        let nblocks = self.index.num_blocks();
        filter.block_mask(self.index.block_size(), nblocks, &mut self.block_mask);
        for (bounds, &bits) in self.bounds.chunks_mut(64).zip(&self.block_mask) {
            if bits == u64::MAX {
                continue;
            }
            for (i, u) in bounds.iter_mut().enumerate() {
                if bits >> i & 1 == 0 {
                    *u = 0;
                }
            }
        }
    }

    /// Scores every document of `block` and offers the ones `filter` allows to the collector.
    #[inline(never)]
    fn score_block(&mut self, block: u32, query: &Query, filter: Option<&DocFilter>) -> Result<()> {
        let fb = self.index.forward_block(block)?;
        let bs = self.index.block_size();
        let first = block * bs;
        let len = bs.min(self.index.num_docs() - first) as usize;
        let scores = &mut self.scores[..len];
        let mut out_of_block = false;
        let mut add = |pairs: &[[u8; 2]], w: u32| {
            for &[off, impact] in pairs {
                match scores.get_mut(usize::from(off)) {
                    Some(s) => *s = s.wrapping_add(w.wrapping_mul(u32::from(impact))),
                    None => out_of_block = true,
                }
            }
        };
        // Find every query term first and prefetch its pairs, then accumulate: the pair lookups
        // are independent cache misses that overlap instead of stalling one after another.
        let found = &mut self.found;
        found.clear();
        for qt in &query.terms {
            if let Some(pairs) = fb.find(qt.term) {
                prefetch(pairs.as_ptr().cast());
                found.push((pairs, qt.weight));
            }
        }
        for &(pairs, w) in found.iter() {
            add(pairs, w);
        }
        if out_of_block {
            scores.fill(0);
            return Err(Error::corrupt(
                self.index.path(),
                format!("forward block {block} refers to a document beyond the index"),
            ));
        }
        for (off, s) in scores.iter_mut().enumerate() {
            if *s > 0 {
                let doc = first + off as u32;
                if allows(filter, doc) {
                    self.topk.push(doc, *s);
                }
                *s = 0;
            }
        }
        Ok(())
    }
}

/// Hints the processor to load the cache line at `p`.
#[inline(always)]
fn prefetch(p: *const i8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p, std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// `bounds[i] += w * row[i]` over a dense row (vectorized by the compiler).
#[inline]
fn add_dense(bounds: &mut [u32], row: &[u8], w: u32) {
    for (u, &m) in bounds.iter_mut().zip(row) {
        *u = u.wrapping_add(w.wrapping_mul(u32::from(m)));
    }
}

impl Searcher for Bmp<'_> {
    fn name(&self) -> &'static str {
        "bmp"
    }

    fn search_filtered(
        &mut self,
        query: &Query,
        k: usize,
        filter: Option<&DocFilter>,
    ) -> Result<Vec<Hit>> {
        self.topk.reset(k);
        self.stats = BmpStats {
            blocks: self.index.num_blocks(),
            ..BmpStats::default()
        };
        if k == 0 || query.terms.is_empty() || self.index.num_blocks() == 0 {
            return Ok(Vec::new());
        }
        self.compute_bounds(query)?;
        // The stored k-th impacts speak of every document, not of the filtered ones.
        let theta0 = match filter {
            None => self.initial_threshold(query, k)?,
            Some(filter) => {
                self.mask_bounds(filter);
                0
            }
        };
        let max_bound = self.bounds.iter().copied().max().unwrap_or(0);
        // Blocks below the initial threshold cannot hold a top-k document; zero bounds hold none.
        let floor = theta0.max(1);
        if max_bound < floor {
            return Ok(Vec::new());
        }
        let width = self.bucket_candidates(floor, max_bound);
        self.stats.initial_threshold = theta0;
        self.stats.candidates = self.candidates.len() as u32;
        let result = self.visit_blocks(query, floor, width, filter);
        result?;
        Ok(self.topk.drain_sorted())
    }
}

impl Bmp<'_> {
    /// Visits the bucketed candidate blocks in descending bound until none can enter the top-k.
    #[inline(never)]
    fn visit_blocks(
        &mut self,
        query: &Query,
        floor: u32,
        width: u64,
        filter: Option<&DocFilter>,
    ) -> Result<()> {
        let bs = self.index.block_size();
        let mut bucket = NUM_BUCKETS;
        'buckets: while bucket > 0 {
            bucket -= 1;
            let (a, b) = (
                self.bucket_starts[bucket] as usize,
                self.bucket_starts[bucket + 1] as usize,
            );
            if a == b {
                continue;
            }
            // Everything from here on is bounded by the top of this bucket.
            let bucket_top = u64::from(floor) + (bucket as u64 + 1) * width - 1;
            if let Some(theta) = self.topk.threshold() {
                if bucket_top < u64::from(theta) {
                    break;
                }
            }
            let bounds = &self.bounds;
            self.candidates[a..b].sort_unstable_by(|&x, &y| {
                bounds[y as usize].cmp(&bounds[x as usize]).then(x.cmp(&y))
            });
            for i in a..b {
                let block = self.candidates[i];
                let ub = self.bounds[block as usize];
                if let Some((theta, worst_doc)) = self.topk.worst() {
                    if ub < theta {
                        break 'buckets;
                    }
                    if ub == theta && block * bs > worst_doc {
                        continue;
                    }
                }
                if let Some(&next) = self.candidates.get(i + 1) {
                    // The next block's bucket starts are read first when it is scored.
                    let bytes = self.index.forward_block_bytes(next);
                    for line in bytes.chunks(64).take(PREFETCH_LINES) {
                        prefetch(line.as_ptr().cast());
                    }
                }
                self.score_block(block, query, filter)?;
                self.stats.scored += 1;
            }
        }
        Ok(())
    }
}
