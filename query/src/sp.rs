//! Superblock pruning (Carlson et al., SIGIR'25), on top of BMP's blocks.
//!
//! Blocks are grouped into superblocks of `c` consecutive blocks (`c` is stored in the index).
//! Each term stores, per superblock, the largest of its block maxima and their mean (rounded up).
//!
//! 1. Superblock bounds over the query terms: `SBMax(S) = sum_t q_t * max_t(S)` and
//!    `SBAvg(S) = sum_t q_t * avg_t(S)`: `num_blocks / c` entries per term instead of
//!    `num_blocks`.
//! 2. Superblocks whose `SBMax` reaches the initial threshold (BMP's, from the stored k-th
//!    impacts) enter one max-heap, keyed by `SBMax`.
//! 3. The heap's best item is taken again and again. A superblock is pruned when
//!    `SBMax <= theta / mu` and `SBAvg <= theta / eta`, `theta` being the current k-th score;
//!    otherwise it is *expanded*: the block bounds of its `c` blocks are computed (dense rows
//!    sliced, range rows and sparse rows searched), and its best block goes into the heap, keyed
//!    by its bound. A block taken from the heap is scored while `mu * UB` can beat `theta`, and
//!    the next block of its superblock takes its place. Blocks are thus scored in the same
//!    descending-bound order as BMP's, across superblocks, while only the superblocks whose
//!    `SBMax` is ever the best bound left have their block bounds computed.
//! 4. The search ends when the best key left, times `max(mu, eta)`, is below `theta`.
//!
//! `mu = eta = 1` is rank-safe: `SBMax` bounds every block of the superblock, and the tie rule of
//! BMP (a bound equal to the k-th score still counts while the block starts below the k-th hit's
//! doc id) applies to superblocks and blocks alike. `mu, eta < 1` prune more and are approximate.

use bmp_index::format::reader::{BlockMaxRow, SuperblockRow};
use bmp_index::format::ROW_PAGE_BLOCKS;
use bmp_index::{Error, Index, Result};

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use crate::blocks::{
    add_dense, block_allowed, clamp_scale, initial_threshold, may_enter, prefetch_block, scaled,
    BlockScorer,
};
use crate::{DocFilter, Query, SearchStats, Searcher, TopK};

/// Approximation parameters of superblock pruning.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpParams {
    /// Scaling in (0, 1] of the superblock and block maxima.
    pub mu: f32,
    /// Scaling in (0, 1] of the superblock means.
    pub eta: f32,
}

impl Default for SpParams {
    fn default() -> Self {
        SpParams { mu: 1.0, eta: 1.0 }
    }
}

impl SpParams {
    /// Whether these parameters give exact (rank-safe) results.
    pub fn is_safe(&self) -> bool {
        self.mu >= 1.0 && self.eta >= 1.0
    }
}

/// Marks a heap item of [`Sp::visit`] as a position in the runs of expanded superblocks.
const CURSOR: u32 = 1 << 31;

/// What the last search did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SpStats {
    /// Superblocks in the index.
    pub superblocks: u32,
    /// Superblocks whose bound reached the initial threshold.
    pub candidates: u32,
    /// Superblocks whose block bounds were computed.
    pub expanded: u32,
    /// Blocks scored.
    pub scored: u32,
    /// The initial threshold.
    pub initial_threshold: u32,
    /// The k-th score at the end (0 with fewer than k hits).
    pub final_threshold: u32,
}

/// A query term's block-max row, resolved once per query.
struct TermRow<'a> {
    weight: u32,
    row: BlockMaxRow<'a>,
    /// For a range row: where each range's maxima start in `maxes` (`lens` prefix sums), in
    /// `Sp::range_offsets`.
    offsets_at: usize,
}

/// The superblock-pruning searcher; keeps its buffers between queries.
pub struct Sp<'a> {
    index: &'a Index,
    params: SpParams,
    sb_max: Vec<u32>,
    sb_avg: Vec<u32>,
    /// The visiting order (see [`Sp::visit`]): `(bound, Reverse(first doc), item)`, the item a
    /// superblock id, or [`CURSOR`] plus a position in `runs`.
    heap: BinaryHeap<(u32, Reverse<u32>, u32)>,
    /// The candidate blocks of the expanded superblocks as `(bound, block)`, one run per
    /// superblock, each sorted best first.
    runs: Vec<(u32, u32)>,
    /// The lowest bound worth visiting: the initial threshold, at least 1.
    floor: u32,
    rows: Vec<TermRow<'a>>,
    range_offsets: Vec<u32>,
    ub: Vec<u32>,
    block_mask: Vec<u64>,
    scorer: BlockScorer<'a>,
    topk: TopK,
    stats: SpStats,
}

impl<'a> Sp<'a> {
    /// A superblock-pruning searcher over `index`. Parameters outside (0, 1] are clamped into it.
    pub fn new(index: &'a Index, params: SpParams) -> Self {
        Sp {
            index,
            params: SpParams {
                mu: clamp_scale(params.mu),
                eta: clamp_scale(params.eta),
            },
            sb_max: Vec::new(),
            sb_avg: Vec::new(),
            heap: BinaryHeap::new(),
            runs: Vec::new(),
            floor: 1,
            rows: Vec::new(),
            range_offsets: Vec::new(),
            ub: Vec::new(),
            block_mask: Vec::new(),
            scorer: BlockScorer::new(index),
            topk: TopK::new(0),
            stats: SpStats::default(),
        }
    }

    /// What the last search did.
    pub fn stats(&self) -> SpStats {
        self.stats
    }

    /// Fills the superblock bounds and resolves every term's block-max row.
    fn prepare(&mut self, query: &Query) -> Result<()> {
        let nsb = self.index.num_superblocks() as usize;
        self.sb_max.clear();
        self.sb_max.resize(nsb, 0);
        self.sb_avg.clear();
        self.sb_avg.resize(nsb, 0);
        self.rows.clear();
        self.range_offsets.clear();
        for qt in &query.terms {
            let w = qt.weight;
            match self.index.superblock_row(qt.term)? {
                SuperblockRow::Dense { max, avg } => {
                    add_dense(&mut self.sb_max, max, w);
                    add_dense(&mut self.sb_avg, avg, w);
                }
                SuperblockRow::Sparse { ids, max, avg } => {
                    for ((&s, &m), &a) in ids.iter().zip(max).zip(avg) {
                        if let (Some(u), Some(v)) = (
                            self.sb_max.get_mut(s as usize),
                            self.sb_avg.get_mut(s as usize),
                        ) {
                            *u = u.wrapping_add(w.wrapping_mul(u32::from(m)));
                            *v = v.wrapping_add(w.wrapping_mul(u32::from(a)));
                        }
                    }
                }
            }
            let row = self.index.block_max(qt.term)?;
            let offsets_at = self.range_offsets.len();
            if let BlockMaxRow::Ranges { lens, .. } = row {
                let mut at = 0u32;
                for &len in lens {
                    self.range_offsets.push(at);
                    at += u32::from(len);
                }
            }
            self.rows.push(TermRow {
                weight: w,
                row,
                offsets_at,
            });
        }
        Ok(())
    }

    /// Zeroes the bounds of superblocks holding no allowed document; fills `block_mask`.
    fn mask_superblocks(&mut self, filter: &DocFilter) {
        let (c, nblocks) = (self.index.superblock_size(), self.index.num_blocks());
        filter.block_mask(self.index.block_size(), nblocks, &mut self.block_mask);
        for (s, (u, v)) in self.sb_max.iter_mut().zip(&mut self.sb_avg).enumerate() {
            let b0 = s as u32 * c;
            let any = (b0..(b0 + c).min(nblocks)).any(|b| block_allowed(&self.block_mask, b));
            if !any {
                *u = 0;
                *v = 0;
            }
        }
    }

    /// The block bounds of superblock `s` into `self.ub` (one per block of `s`).
    fn block_bounds(&mut self, s: u32, filter: Option<&DocFilter>) -> Result<()> {
        let c = self.index.superblock_size();
        let nblocks = self.index.num_blocks();
        let b0 = s * c;
        let n = c.min(nblocks - b0) as usize;
        let ub = &mut self.ub;
        ub.clear();
        ub.resize(n, 0);
        let (lo, hi) = (b0 as usize, b0 as usize + n);
        for t in &self.rows {
            let w = t.weight;
            match t.row {
                BlockMaxRow::Dense(row) => {
                    if let Some(part) = row.get(lo..hi) {
                        add_dense(ub, part, w);
                    }
                }
                BlockMaxRow::Sparse {
                    page_ends,
                    blocks,
                    maxes,
                } => {
                    // A superblock lies within one page (superblock sizes are powers of two).
                    let page = lo / ROW_PAGE_BLOCKS;
                    let start = if page == 0 {
                        0
                    } else {
                        page_ends.get(page - 1).copied().unwrap_or(0) as usize
                    };
                    let end = page_ends.get(page).copied().unwrap_or(0) as usize;
                    let end = end.min(blocks.len()).min(maxes.len());
                    if start >= end {
                        continue;
                    }
                    let low = lo % ROW_PAGE_BLOCKS;
                    let ids = &blocks[start..end];
                    let first = ids.partition_point(|&b| usize::from(b) < low);
                    for (&b, &m) in ids[first..].iter().zip(&maxes[start + first..end]) {
                        match ub.get_mut(usize::from(b) - low) {
                            Some(u) => *u = u.wrapping_add(w.wrapping_mul(u32::from(m))),
                            None => break,
                        }
                    }
                }
                BlockMaxRow::Ranges {
                    starts,
                    lens,
                    maxes,
                } => {
                    let offsets = &self.range_offsets[t.offsets_at..t.offsets_at + starts.len()];
                    // The first range that ends after `lo`: ranges are disjoint and increasing.
                    let mut r = starts
                        .partition_point(|&st| st as usize <= lo)
                        .saturating_sub(1);
                    while let (Some(&st), Some(&len), Some(&off)) =
                        (starts.get(r), lens.get(r), offsets.get(r))
                    {
                        let (st, end) = (st as usize, st as usize + usize::from(len));
                        if st >= hi {
                            break;
                        }
                        let (a, b) = (st.max(lo), end.min(hi));
                        if a < b {
                            let from = off as usize + (a - st);
                            if let Some(part) = maxes.get(from..from + (b - a)) {
                                add_dense(&mut ub[a - lo..b - lo], part, w);
                            }
                        }
                        r += 1;
                    }
                }
            }
        }
        if filter.is_some() {
            for (i, u) in ub.iter_mut().enumerate() {
                if !block_allowed(&self.block_mask, b0 + i as u32) {
                    *u = 0;
                }
            }
        }
        Ok(())
    }

    /// Visits blocks in descending bound, across superblocks, expanding a superblock only when
    /// its `SBMax` is the largest bound left.
    ///
    /// One max-heap holds the unexpanded candidate superblocks (keyed by `SBMax`) and, for each
    /// expanded superblock, its best block not yet visited (keyed by that block's bound); equal
    /// keys come lowest first document first. `SBMax` bounds every block inside, so blocks leave
    /// the heap in the same descending-bound order as BMP's, while the bounds of a superblock's
    /// blocks are computed only if its `SBMax` is ever the best bound left.
    fn visit(&mut self, query: &Query, filter: Option<&DocFilter>) -> Result<()> {
        let (c, bs) = (self.index.superblock_size(), self.index.block_size());
        let SpParams { mu, eta } = self.params;
        let stop_scale = mu.max(eta);
        while let Some(&(bound, Reverse(first_doc), item)) = self.heap.peek() {
            if let Some(theta) = self.topk.threshold() {
                if scaled(bound, stop_scale) < theta {
                    break;
                }
            }
            self.heap.pop();
            if item & CURSOR == 0 {
                let s = item;
                let (sbmax, sbavg) = (self.sb_max[s as usize], self.sb_avg[s as usize]);
                if !may_enter(&self.topk, sbmax, first_doc, mu)
                    && !may_enter(&self.topk, sbavg, first_doc, eta)
                {
                    continue;
                }
                self.stats.expanded += 1;
                self.block_bounds(s, filter)?;
                // The superblock's blocks that may still enter, best first, as one run of
                // `self.runs`.
                let start = self.runs.len();
                for (j, &u) in self.ub.iter().enumerate() {
                    let block = s * c + j as u32;
                    if u >= self.floor && may_enter(&self.topk, u, block * bs, mu) {
                        self.runs.push((u, block));
                    }
                }
                self.runs[start..].sort_unstable_by(|x, y| y.0.cmp(&x.0).then(x.1.cmp(&y.1)));
                if let Some(&(u, block)) = self.runs.get(start) {
                    self.heap
                        .push((u, Reverse(block * bs), CURSOR | start as u32));
                }
                if self.topk.tick() {
                    break;
                }
            } else {
                let at = (item & !CURSOR) as usize;
                let Some(&(u, block)) = self.runs.get(at) else {
                    continue;
                };
                let next = self
                    .runs
                    .get(at + 1)
                    .filter(|n| n.1 / c == block / c)
                    .copied();
                if let Some((nu, nblock)) = next {
                    self.heap
                        .push((nu, Reverse(nblock * bs), CURSOR | (at + 1) as u32));
                }
                if !may_enter(&self.topk, u, block * bs, mu) {
                    continue;
                }
                if let Some((_, nblock)) = next {
                    prefetch_block(self.index, nblock);
                }
                self.scorer.score(block, query, filter, &mut self.topk)?;
                self.stats.scored += 1;
                if self.topk.tick() {
                    break;
                }
            }
        }
        Ok(())
    }
}

impl Searcher for Sp<'_> {
    fn name(&self) -> &'static str {
        "sp"
    }

    fn topk(&mut self) -> &mut TopK {
        &mut self.topk
    }

    fn reset_stats(&mut self) {
        self.stats = SpStats {
            superblocks: self.index.num_superblocks(),
            ..SpStats::default()
        };
    }

    fn collect(
        &mut self,
        query: &Query,
        k: usize,
        filter: Option<&DocFilter>,
        min_score: u32,
    ) -> Result<()> {
        if self.index.num_blocks() == 0 {
            return Ok(());
        }
        if self.index.superblock_size() == 0 {
            return Err(Error::corrupt(self.index.path(), "superblock size 0"));
        }
        self.prepare(query)?;
        if let Some(filter) = filter {
            self.mask_superblocks(filter);
        }
        let theta0 = initial_threshold(self.index, &query.terms, k, filter)?.max(min_score);
        self.floor = theta0.max(1);
        let first_doc =
            |s: usize| s as u32 * self.index.superblock_size() * self.index.block_size();
        self.heap.clear();
        self.runs.clear();
        for (s, &u) in self.sb_max.iter().enumerate() {
            if u >= self.floor {
                self.heap.push((u, Reverse(first_doc(s)), s as u32));
            }
        }
        self.stats.candidates = self.heap.len() as u32;
        self.stats.initial_threshold = theta0;
        self.visit(query, filter)?;
        self.stats.final_threshold = self.topk.threshold().unwrap_or(0);
        Ok(())
    }

    fn stats(&self) -> Option<SearchStats> {
        Some(SearchStats {
            scored_blocks: self.stats.scored,
            expanded_superblocks: self.stats.expanded,
            initial_threshold: self.stats.initial_threshold,
            final_threshold: self.stats.final_threshold,
        })
    }
}
