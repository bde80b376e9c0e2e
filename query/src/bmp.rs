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
use bmp_index::format::{row_pages, ROW_PAGE_BLOCKS};
use bmp_index::{Index, Result};

use crate::blocks::{
    add_dense, clamp_scale, initial_threshold, prefetch_block, validate_scales, BlockScorer,
    Buckets, NUM_BUCKETS,
};
use crate::simd::add_sparse_page;
use crate::{DocFilter, Hit, Query, QueryTerm, SearchStats, Searcher, TopK};

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
        validate_scales(&[("alpha", self.alpha), ("beta", self.beta)])
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
    /// The k-th score at the end (0 with fewer than k hits).
    pub final_threshold: u32,
}

/// A kept query term's block-max row, walked page by page.
struct PagedRow<'a> {
    weight: u32,
    row: BlockMaxRow<'a>,
    /// For a range row: the first range not wholly added yet, and where its maxima start.
    range: usize,
    range_offset: usize,
}

impl PagedRow<'_> {
    /// Adds this term's part of page `p` (blocks `lo..lo + n`) into `page`.
    #[inline]
    fn add_page(&mut self, page: &mut [u32; ROW_PAGE_BLOCKS], p: usize, lo: usize, n: usize) {
        let w = self.weight;
        match self.row {
            BlockMaxRow::Dense(row) => {
                if let Some(part) = row.get(lo..lo + n) {
                    add_dense(&mut page[..n], part, w);
                }
            }
            BlockMaxRow::Sparse {
                page_ends,
                blocks,
                maxes,
            } => {
                let from = match p {
                    0 => 0,
                    _ => page_ends.get(p - 1).map_or(usize::MAX, |&e| e as usize),
                };
                let to = page_ends
                    .get(p)
                    .map_or(0, |&e| e as usize)
                    .min(blocks.len())
                    .min(maxes.len());
                if from < to {
                    add_sparse_page(page, &blocks[from..to], &maxes[from..to], w);
                }
            }
            BlockMaxRow::Ranges {
                starts,
                lens,
                maxes,
            } => {
                let hi = lo + n;
                while let (Some(&st), Some(&len)) = (starts.get(self.range), lens.get(self.range)) {
                    let (st, end) = (st as usize, st as usize + usize::from(len));
                    if st >= hi {
                        break;
                    }
                    let (a, b) = (st.max(lo), end.min(hi));
                    if a < b {
                        let from = self.range_offset + (a - st);
                        if let Some(part) = maxes.get(from..from + (b - a)) {
                            add_dense(&mut page[a - lo..b - lo], part, w);
                        }
                    }
                    if end > hi {
                        // The range goes on into the next page.
                        break;
                    }
                    self.range += 1;
                    self.range_offset += usize::from(len);
                }
            }
        }
    }
}

/// The BMP searcher; keeps its buffers between queries.
pub struct Bmp<'a> {
    index: &'a Index,
    params: BmpParams,
    bounds: Vec<u32>,
    buckets: Buckets,
    kept: Vec<QueryTerm>,
    rows: Vec<PagedRow<'a>>,
    scorer: BlockScorer<'a>,
    block_mask: Vec<u64>,
    topk: TopK,
    stats: BmpStats,
}

impl<'a> Bmp<'a> {
    /// A BMP searcher over `index`. Parameters outside (0, 1] are clamped into it.
    pub fn new(index: &'a Index, params: BmpParams) -> Self {
        Bmp {
            index,
            params: BmpParams {
                alpha: clamp_scale(params.alpha),
                beta: clamp_scale(params.beta),
            },
            bounds: Vec::new(),
            buckets: Buckets::new(),
            kept: Vec::new(),
            rows: Vec::new(),
            scorer: BlockScorer::new(index),
            block_mask: Vec::new(),
            topk: TopK::new(0),
            stats: BmpStats::default(),
        }
    }

    /// What the last search did.
    pub fn stats(&self) -> BmpStats {
        self.stats
    }

    /// Fills `self.bounds` with the (alpha-scaled) block upper bounds of the kept terms.
    ///
    /// The bounds are computed one page of 65,536 blocks at a time, every term's part of the page
    /// in turn, so that the page (256 KiB) stays in cache while the rows stream through.
    #[inline(never)]
    fn compute_bounds(&mut self, query: &Query) -> Result<()> {
        let nblocks = self.index.num_blocks() as usize;
        // Whole pages of bounds, so that a sparse row's `u16` block id indexes its page without a
        // bounds check. Only the real blocks are zeroed per query: the padding past them is never
        // read (a corrupt id may add into it, harmlessly).
        let padded = row_pages(nblocks as u64) * ROW_PAGE_BLOCKS;
        if self.bounds.len() != padded {
            self.bounds = vec![0; padded];
        }
        self.kept.clear();
        self.kept.extend_from_slice(&query.terms);
        if self.params.beta < 1.0 {
            let keep = ((self.params.beta as f64 * self.kept.len() as f64).ceil() as usize).max(1);
            self.kept
                .sort_unstable_by(|a, b| b.weight.cmp(&a.weight).then(a.term.cmp(&b.term)));
            self.kept.truncate(keep);
        }
        self.rows.clear();
        for qt in &self.kept {
            self.rows.push(PagedRow {
                weight: qt.weight,
                row: self.index.block_max(qt.term)?,
                range: 0,
                range_offset: 0,
            });
        }
        let alpha = f64::from(self.params.alpha);
        for (p, page) in self.bounds.chunks_exact_mut(ROW_PAGE_BLOCKS).enumerate() {
            let Ok(page) = <&mut [u32; ROW_PAGE_BLOCKS]>::try_from(page) else {
                continue;
            };
            let lo = p * ROW_PAGE_BLOCKS;
            let n = nblocks.saturating_sub(lo).min(ROW_PAGE_BLOCKS);
            page[..n].fill(0);
            for t in &mut self.rows {
                t.add_page(page, p, lo, n);
            }
            if self.params.alpha < 1.0 {
                for u in &mut page[..n] {
                    *u = (f64::from(*u) * alpha) as u32;
                }
            }
        }
        Ok(())
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
            None => initial_threshold(self.index, query, k)?,
            Some(filter) => {
                self.mask_bounds(filter);
                0
            }
        };
        // Blocks below the initial threshold cannot hold a top-k document; zero bounds hold none.
        let floor = theta0.max(1);
        let nblocks = self.index.num_blocks() as usize;
        if self.buckets.fill(&self.bounds[..nblocks], floor).is_none() {
            return Ok(Vec::new());
        }
        self.stats.initial_threshold = theta0;
        self.stats.candidates = self.buckets.items.len() as u32;
        self.visit_blocks(query, filter)?;
        self.stats.final_threshold = self.topk.threshold().unwrap_or(0);
        Ok(self.topk.drain_sorted())
    }

    fn stats(&self) -> Option<SearchStats> {
        Some(SearchStats {
            scored_blocks: self.stats.scored,
            expanded_superblocks: 0,
            initial_threshold: self.stats.initial_threshold,
            final_threshold: self.stats.final_threshold,
        })
    }
}

impl Bmp<'_> {
    /// Visits the bucketed candidate blocks in descending bound until none can enter the top-k.
    #[inline(never)]
    fn visit_blocks(&mut self, query: &Query, filter: Option<&DocFilter>) -> Result<()> {
        let bs = self.index.block_size();
        let mut bucket = NUM_BUCKETS;
        'buckets: while bucket > 0 {
            bucket -= 1;
            if self.buckets.starts[bucket] == self.buckets.starts[bucket + 1] {
                continue;
            }
            // Everything from here on is bounded by the top of this bucket.
            if let Some(theta) = self.topk.threshold() {
                if self.buckets.top(bucket) < u64::from(theta) {
                    break;
                }
            }
            let range = self.buckets.sort(bucket, &self.bounds);
            for i in range {
                let block = self.buckets.items[i];
                let ub = self.bounds[block as usize];
                if let Some((theta, worst_doc)) = self.topk.worst() {
                    if ub < theta {
                        break 'buckets;
                    }
                    if ub == theta && block * bs > worst_doc {
                        continue;
                    }
                }
                if let Some(&next) = self.buckets.items.get(i + 1) {
                    // The next block's bucket starts are read first when it is scored.
                    prefetch_block(self.index, next);
                }
                self.scorer.score(block, query, filter, &mut self.topk)?;
                self.stats.scored += 1;
            }
        }
        Ok(())
    }
}
