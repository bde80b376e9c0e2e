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
//! Approximation: `alpha < 1` stops the search at the first block whose `floor(alpha * UB)` cannot
//! beat the k-th score found so far (the initial threshold still prunes by the whole bound: it is
//! not a score found, and a candidate close to it may well hold a top-k document); `beta < 1`
//! keeps only the `ceil(beta * |q|)` heaviest query terms for the bounds and the initial
//! threshold (scores always use every term, so the reported scores are exact). `alpha = beta = 1`
//! is rank-safe.
//!
//! Several workers (see [`Bmp::with_threads`]) answer one query together on as many cores.
//!
//! Filtered search: blocks holding no allowed document get a zero bound, the initial threshold is
//! not used (the stored k-th impacts count every document), and only allowed documents are offered
//! to the collector; the bounds stay upper bounds, so the search stays rank-safe.

use std::cmp::Reverse;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use bmp_index::format::reader::BlockMaxRow;
use bmp_index::format::{row_pages, ROW_PAGE_BLOCKS};
use bmp_index::{Index, Result};

use crate::blocks::{
    add_dense, block_allowed, clamp_scale, initial_threshold, scaled, BlockScorer, Buckets,
    HitSink, Walk,
};
use crate::simd::add_sparse_page;

use crate::{DocFilter, Query, QueryTerm, SearchStats, Searcher, TopK};

pub(crate) mod parts;
mod tail;

use tail::TermPass;
pub use tail::{BLOCKS_PER_HIT, BLOCK_COST_IN_POSTINGS};

/// Approximation parameters of BMP.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BmpParams {
    /// Bound scaling in (0, 1]: a block is visited only while `alpha * UB` can beat the k-th score
    /// found so far.
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
#[derive(Clone, Copy)]
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
    /// Workers of one query: one, or `threads` (see [`Bmp::with_threads`]).
    threads: usize,
    /// The fewest blocks worth a worker of its own.
    min_blocks_per_worker: usize,
    /// The block bounds; with several workers, the first worker's part of the terms.
    bounds: Vec<u32>,
    /// With several workers, the bounds of the other workers' parts of the terms.
    partial: Vec<Vec<u32>>,
    kept: Vec<QueryTerm>,
    rows: Vec<PagedRow<'a>>,
    block_mask: Vec<u64>,
    workers: Vec<Worker<'a>>,
    stats: BmpStats,
    /// What scoring one block from the forward index costs, in postings streamed.
    block_cost: usize,
    /// See [`Bmp::with_blocks_per_hit`].
    blocks_per_hit: usize,
}

/// The fewest blocks worth a worker of its own, by default: below it, a worker costs more to
/// start than it saves.
pub const MIN_BLOCKS_PER_WORKER: usize = 1024;

/// The visiting state of one worker: the candidate blocks of its stripes of blocks, its top-k
/// and its scorer.
///
/// Aligned to a pair of cache lines, so that the workers of one query, each on its own core,
/// never write to the same line.
#[repr(align(128))]
struct Worker<'a> {
    buckets: Buckets,
    scorer: BlockScorer<'a>,
    /// Scores the blocks left term at a time, when they are many (one worker only).
    tail: TermPass,
    topk: TopK,
    scored: u32,
    /// With several workers, the bounds of this worker's stripes of blocks, one after the other.
    stripes: Vec<u32>,
}

impl<'a> Worker<'a> {
    fn new(index: &'a Index) -> Self {
        Worker {
            buckets: Buckets::new(),
            scorer: BlockScorer::new(index),
            tail: TermPass::default(),
            topk: TopK::new(0),
            scored: 0,
            stripes: Vec::new(),
        }
    }
}

/// Blocks per stripe: with several workers, the blocks are dealt out in stripes of this many,
/// in turn, so that each worker gets blocks from every part of the index (the blocks of high
/// bound cluster where similar documents were reordered together).
const STRIPE: usize = 64;

/// Where a worker's bounds lie: the numbering of its candidate blocks (their places in its
/// bounds array) and the blocks' own.
trait Layout: Copy {
    /// The block at place `local`.
    fn block(self, local: u32) -> u32;
    /// The place of `block`.
    fn place(self, block: u32) -> usize;
}

/// Every block, at its own place (one worker).
#[derive(Clone, Copy)]
struct AllBlocks;

impl Layout for AllBlocks {
    #[inline]
    fn block(self, local: u32) -> u32 {
        local
    }

    #[inline]
    fn place(self, block: u32) -> usize {
        block as usize
    }
}

/// Worker `worker` of `workers`: stripes `worker`, `worker + workers`, … of [`STRIPE`] blocks,
/// one after the other.
#[derive(Clone, Copy)]
struct Stripes {
    worker: usize,
    workers: usize,
}

impl Layout for Stripes {
    #[inline]
    fn block(self, local: u32) -> u32 {
        let l = local as usize;
        (((l / STRIPE) * self.workers + self.worker) * STRIPE + l % STRIPE) as u32
    }

    #[inline]
    fn place(self, block: u32) -> usize {
        let b = block as usize;
        (b / STRIPE / self.workers) * STRIPE + b % STRIPE
    }
}

/// Divides the rows into `groups` parts of about equal work (the entries each one adds), largest
/// first into the lightest part; returns the part of each row.
fn balance_rows(rows: &[PagedRow<'_>], groups: usize) -> Vec<usize> {
    let cost = |r: &PagedRow<'_>| match r.row {
        BlockMaxRow::Dense(row) => row.len(),
        BlockMaxRow::Sparse { blocks, .. } => blocks.len(),
        BlockMaxRow::Ranges { maxes, .. } => maxes.len(),
    };
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(cost(&rows[i])));
    let mut load = vec![0usize; groups];
    let mut part = vec![0usize; rows.len()];
    for i in order {
        let g = (0..groups).min_by_key(|&g| load[g]).unwrap_or(0);
        load[g] += cost(&rows[i]);
        part[i] = g;
    }
    part
}

/// Adds the rows into `bounds` (whole pages; only the first `nblocks` are zeroed and filled).
///
/// The bounds are computed one page of 65,536 blocks at a time, every term's part of the page in
/// turn, so that the page (256 KiB) stays in cache while the rows stream through.
fn accumulate(rows: &mut [PagedRow<'_>], bounds: &mut [u32], nblocks: usize) {
    for (p, page) in bounds.chunks_exact_mut(ROW_PAGE_BLOCKS).enumerate() {
        let Ok(page) = <&mut [u32; ROW_PAGE_BLOCKS]>::try_from(page) else {
            continue;
        };
        let lo = p * ROW_PAGE_BLOCKS;
        let n = nblocks.saturating_sub(lo).min(ROW_PAGE_BLOCKS);
        page[..n].fill(0);
        for t in rows.iter_mut() {
            t.add_page(page, p, lo, n);
        }
    }
}

/// Zeroes the bound of every block of `bounds` (blocks `first..`) that `mask` does not allow.
fn mask_bounds(bounds: &mut [u32], first: usize, mask: &[u64]) {
    for (i, u) in bounds.iter_mut().enumerate() {
        if !block_allowed(mask, (first + i) as u32) {
            *u = 0;
        }
    }
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
            threads: 1,
            min_blocks_per_worker: MIN_BLOCKS_PER_WORKER,
            bounds: Vec::new(),
            partial: Vec::new(),
            kept: Vec::new(),
            rows: Vec::new(),
            block_mask: Vec::new(),
            workers: vec![Worker::new(index)],
            stats: BmpStats::default(),
            block_cost: BLOCK_COST_IN_POSTINGS,
            blocks_per_hit: BLOCKS_PER_HIT,
        }
    }

    /// Answers each query with `threads` workers on rayon's thread pool (1: on the calling
    /// thread). The results are the same: every worker computes the bounds of a part of the
    /// query terms, then visits its stripes of blocks ([`STRIPE`] blocks dealt out in turn, so
    /// that every worker gets a fair share of the blocks of high bound) in descending bound. The
    /// hits that enter a worker's own top-k are passed on to a top-k all the workers share,
    /// whose worst hit prunes for every worker: together they score about the blocks one worker
    /// would.
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        while self.workers.len() < self.threads {
            self.workers.push(Worker::new(self.index));
        }
        self.workers.truncate(self.threads);
        self.partial.resize_with(self.threads - 1, Vec::new);
        self
    }

    /// Sets the fewest blocks worth a worker of its own (default [`MIN_BLOCKS_PER_WORKER`]):
    /// a query on fewer blocks per worker uses fewer workers.
    pub fn with_min_blocks_per_worker(mut self, blocks: usize) -> Self {
        self.min_blocks_per_worker = blocks.max(1);
        self
    }

    /// Sets what scoring one block from the forward index costs, in postings streamed from a
    /// posting list (default [`BLOCK_COST_IN_POSTINGS`]). One worker scores the blocks whose bound
    /// still reaches the k-th score term at a time, from the posting lists, once they outweigh
    /// the postings of the query's terms at this cost (0: never, and then no search scores every
    /// posting either (see [`Bmp::with_blocks_per_hit`]); nor for k below 100). The results are
    /// the same.
    pub fn with_block_cost(mut self, postings: usize) -> Self {
        self.block_cost = postings;
        self
    }

    /// Sets how many blocks a search is expected to score per hit wanted at large k
    /// (default [`BLOCKS_PER_HIT`]): a search scores every posting of the query into a dense
    /// accumulator instead of visiting blocks when `k` times this many blocks, at the block cost
    /// of [`Bmp::with_block_cost`], outweigh the query's postings and a scan of every document
    /// (0: never). The results are the same.
    pub fn with_blocks_per_hit(mut self, blocks: usize) -> Self {
        self.blocks_per_hit = blocks;
        self
    }

    /// What the last search did.
    pub fn stats(&self) -> BmpStats {
        self.stats
    }

    /// Resolves the block-max rows of the kept query terms (all of them, or the heaviest
    /// `ceil(beta * |q|)`) into `self.rows`.
    fn resolve_rows(&mut self, query: &Query) -> Result<()> {
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
        Ok(())
    }

    /// Sizes `v` to whole pages of bounds, so that a sparse row's `u16` block id indexes its page
    /// without a bounds check. Only the real blocks are zeroed per query: the padding past them
    /// is never read (a corrupt id may add into it, harmlessly).
    fn size_pages(v: &mut Vec<u32>, nblocks: usize) {
        let padded = row_pages(nblocks as u64) * ROW_PAGE_BLOCKS;
        if v.len() != padded {
            *v = vec![0; padded];
        }
    }
}

impl Searcher for Bmp<'_> {
    fn name(&self) -> &'static str {
        "bmp"
    }

    fn topk(&mut self) -> &mut TopK {
        &mut self.workers[0].topk
    }

    fn reset_stats(&mut self) {
        self.stats = BmpStats {
            blocks: self.index.num_blocks(),
            ..BmpStats::default()
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
        let nblocks = self.index.num_blocks() as usize;
        self.resolve_rows(query)?;
        if let Some(filter) = filter {
            filter.block_mask(
                self.index.block_size(),
                self.index.num_blocks(),
                &mut self.block_mask,
            );
        }
        // Blocks below the initial threshold cannot hold a top-k document, nor blocks below
        // `min_score` one worth offering; zero bounds hold none.
        let theta0 = initial_threshold(self.index, &self.kept, k, filter)?.max(min_score);
        let floor = theta0.max(1);
        let alpha = self.params.alpha;
        let mask = filter.map(|_| &self.block_mask[..]);
        self.stats.initial_threshold = theta0;
        // A top k so deep that scoring every posting costs less than the blocks it would need:
        // every posting is scored, exactly, whatever alpha and beta ask (approximate search skips
        // some blocks, but at alpha = 0.9 and k = 1000 it still took 1.3 to 2.2 times as long on
        // the benchmark suite's collections).
        let postings = tail_postings(self.index, query)?;
        if every_posting_is_cheaper(
            k,
            self.blocks_per_hit,
            self.block_cost,
            postings,
            self.index.num_docs(),
        ) {
            // With several workers, each fills the accumulator of one range of blocks' documents.
            let parts = self
                .threads
                .min(self.index.num_blocks() as usize / self.min_blocks_per_worker)
                .max(1);
            let w = &mut self.workers[0];
            w.tail
                .score_all(self.index, query, filter, floor, &mut w.topk, parts)?;
            self.stats.candidates = 0;
            self.stats.scored = 0;
            self.stats.final_threshold = w.topk.threshold().unwrap_or(0);
            return Ok(());
        }
        // Many workers only when each gets a fair share of blocks.
        let threads = self
            .threads
            .min(nblocks / self.min_blocks_per_worker)
            .max(1);
        if threads == 1 {
            Self::size_pages(&mut self.bounds, nblocks);
            accumulate(&mut self.rows, &mut self.bounds, nblocks);
            let bounds = &mut self.bounds[..nblocks];
            if let Some(mask) = mask {
                mask_bounds(bounds, 0, mask);
            }
            // The collector was reset by the search.
            let w = &mut self.workers[0];
            w.scored = 0;
            if let Some(n) = w.buckets.fill(bounds, floor).map(|_| w.buckets.items.len()) {
                self.stats.candidates = n as u32;
                let visit = Visit {
                    query,
                    filter,
                    alpha,
                    shared: None,
                    floor,
                    block_cost: match k >= TAIL_MIN_K {
                        true => self.block_cost,
                        false => 0,
                    },
                    postings,
                };
                w.visit(self.index, bounds, AllBlocks, &visit)?;
            }
            self.stats.scored = w.scored;
            self.stats.final_threshold = w.topk.threshold().unwrap_or(0);
            Ok(())
        } else {
            self.search_parallel(threads, query, k, filter, floor)
        }
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
    /// The search with `threads` workers: the bounds of `threads` parts of the terms in
    /// parallel, then the stripes of blocks of each worker visited in parallel into one shared
    /// top-k, which the first worker's collector takes at the end.
    fn search_parallel(
        &mut self,
        threads: usize,
        query: &Query,
        k: usize,
        filter: Option<&DocFilter>,
        floor: u32,
    ) -> Result<()> {
        let nblocks = self.index.num_blocks() as usize;
        Self::size_pages(&mut self.bounds, nblocks);
        for v in &mut self.partial[..threads - 1] {
            Self::size_pages(v, nblocks);
        }
        // 1. Bounds: worker g adds the rows of part g into its own array.
        let part = balance_rows(&self.rows, threads);
        let mut groups: Vec<Vec<PagedRow<'_>>> = vec![Vec::new(); threads];
        for (row, &g) in self.rows.iter().zip(&part) {
            groups[g].push(*row);
        }
        {
            let (first, rest) = groups.split_at_mut(1);
            let bounds = &mut self.bounds;
            let partial = &mut self.partial[..threads - 1];
            rayon::scope(|s| {
                for (rows, out) in rest.iter_mut().zip(partial.iter_mut()) {
                    s.spawn(move |_| accumulate(rows, out, nblocks));
                }
                accumulate(&mut first[0], bounds, nblocks);
            });
        }
        // 2. Visits: worker t gathers the summed bounds of its stripes of blocks, then visits
        // them.
        let shared = SharedTopK::new(k);
        let alpha = self.params.alpha;
        let mask = filter.map(|_| &self.block_mask[..]);
        let partial = &self.partial[..threads - 1];
        let bounds = &self.bounds[..nblocks];
        let index = self.index;
        // The first worker's collector is the search's (reset by it); the others take its
        // deadline.
        let deadline = self.workers[0].topk.deadline();
        for (i, w) in self.workers[..threads].iter_mut().enumerate() {
            if i > 0 {
                w.topk.reset(k);
                w.topk.set_deadline(deadline);
            }
            w.scored = 0;
            w.buckets.items.clear();
        }
        let results: Vec<Result<()>> = {
            let mut results: Vec<Result<()>> = (0..threads).map(|_| Ok(())).collect();
            let shared = &shared;
            let run = move |t: usize, w: &mut Worker<'_>| -> Result<()> {
                let layout = Stripes {
                    worker: t,
                    workers: threads,
                };
                let mut mine = std::mem::take(&mut w.stripes);
                mine.clear();
                for start in (t * STRIPE..nblocks).step_by(threads * STRIPE) {
                    let end = (start + STRIPE).min(nblocks);
                    let at = mine.len();
                    mine.extend_from_slice(&bounds[start..end]);
                    for p in partial {
                        add_assign(&mut mine[at..], &p[start..end]);
                    }
                    if let Some(mask) = mask {
                        mask_bounds(&mut mine[at..], start, mask);
                    }
                }
                let mut out = Ok(());
                if w.buckets.fill(&mine, floor).is_some() {
                    let visit = Visit {
                        query,
                        filter,
                        alpha,
                        shared: Some(shared),
                        floor,
                        block_cost: 0,
                        postings: usize::MAX,
                    };
                    out = w.visit(index, &mine, layout, &visit);
                }
                w.stripes = mine;
                out
            };
            let mut jobs = self.workers[..threads]
                .iter_mut()
                .zip(results.iter_mut())
                .enumerate();
            let first_job = jobs.next();
            rayon::scope(|s| {
                for (t, (w, r)) in jobs {
                    s.spawn(move |_| *r = run(t, w));
                }
                if let Some((t, (w, r))) = first_job {
                    *r = run(t, w);
                }
            });
            results
        };
        for r in results {
            r?;
        }
        for w in &self.workers[..threads] {
            self.stats.scored += w.scored;
            self.stats.candidates += w.buckets.items.len() as u32;
        }
        // The shared top-k holds every hit of the answer (each entered the top-k of the worker
        // that scored it); the search's collector takes them.
        let stopped = self.workers[..threads].iter().any(|w| w.topk.stopped());
        let mut all = shared.topk.into_inner().unwrap_or_else(|e| e.into_inner());
        let topk = &mut self.workers[0].topk;
        topk.reset(k);
        for h in all.drain_sorted() {
            topk.push(h.doc, h.score);
        }
        if stopped {
            topk.mark_stopped();
        }
        self.stats.final_threshold = topk.threshold().unwrap_or(0);
        Ok(())
    }
}

/// `a[i] += b[i]` (bounds never overflow `u32`: at most 4096 terms of weight and impact below 256
/// each... and wrapping keeps a corrupt file from panicking).
fn add_assign(a: &mut [u32], b: &[u32]) {
    for (x, &y) in a.iter_mut().zip(b) {
        *x = x.wrapping_add(y);
    }
}

/// The smallest k for which a worker may finish term at a time: with fewer hits to find, the
/// k-th score rises within a few blocks, and the blocks left above it say little of the work
/// to go (on the synthetic collections at k = 10 it switched where BMP was about to finish).
const TAIL_MIN_K: usize = 100;

/// A worker decides whether to finish term at a time every this many blocks scored.
const TAIL_CHECK: u32 = 16;

/// A worker finishes term at a time only once it has scored at least one block for every this
/// many left: before, its k-th score is still far below the final one, and the blocks left
/// would shrink as it rises (on real text at k = 1000, 8 to 32 were equally fast, 1 and 2
/// slower; docs/BENCHMARKS.md).
const TAIL_MATURITY: usize = 16;

/// Whether scoring every posting (`postings` of them) into a dense accumulator and scanning its
/// `num_docs` scores costs less than the `k × blocks_per_hit` blocks a top k that deep is
/// expected to need, at `block_cost` postings a block. A scanned score costs about a 32nd of a
/// posting (16 per vector step).
fn every_posting_is_cheaper(
    k: usize,
    blocks_per_hit: usize,
    block_cost: usize,
    postings: usize,
    num_docs: u32,
) -> bool {
    k.saturating_mul(blocks_per_hit).saturating_mul(block_cost)
        > postings.saturating_add(num_docs as usize / 32)
}

/// The postings of `query`'s terms: what scoring term at a time would stream at most.
fn tail_postings(index: &Index, query: &Query) -> Result<usize> {
    let mut n = 0usize;
    for qt in &query.terms {
        n = n.saturating_add(index.term_stats(qt.term)?.df as usize);
    }
    Ok(n)
}

/// What every worker of one search shares.
#[derive(Clone, Copy)]
struct Visit<'q> {
    query: &'q Query,
    filter: Option<&'q DocFilter>,
    /// The bound scaling of approximate search (1: safe).
    alpha: f32,
    /// The top-k of all the workers, with several.
    shared: Option<&'q SharedTopK>,
    /// The lowest bound of a candidate block.
    floor: u32,
    /// [`Bmp::with_block_cost`].
    block_cost: usize,
    /// The postings of the query's terms ([`tail_postings`]), counted once per search.
    postings: usize,
}

/// The top-k of several workers: every hit that enters a worker's own top-k is offered to it, so
/// that it holds the top-k of all the documents scored, and its worst hit prunes for every
/// worker.
struct SharedTopK {
    topk: Mutex<TopK>,
    /// The worst hit of the full top-k as `score << 32 | doc`; 0 while it holds fewer than k.
    worst: AtomicU64,
}

impl SharedTopK {
    fn new(k: usize) -> Self {
        SharedTopK {
            topk: Mutex::new(TopK::new(k)),
            worst: AtomicU64::new(0),
        }
    }

    /// The worst hit of the full top-k, as [`TopK::worst`].
    #[inline]
    fn worst(&self) -> Option<(u32, u32)> {
        match self.worst.load(Ordering::Relaxed) {
            0 => None,
            w => Some(((w >> 32) as u32, w as u32)),
        }
    }

    /// Offers `hits`, and publishes the new worst hit.
    fn offer(&self, hits: &[(u32, u32)]) {
        // A worker that panicked left a top-k whose hits are still valid.
        let mut topk = self.topk.lock().unwrap_or_else(|e| e.into_inner());
        for &(doc, score) in hits {
            topk.push(doc, score);
        }
        if let Some((score, doc)) = topk.worst() {
            self.worst
                .store(u64::from(score) << 32 | u64::from(doc), Ordering::Relaxed);
        }
    }
}

/// Hits that entered a worker's top-k are passed on to the shared one once this many wait.
const PASS_ON: usize = 64;

/// A worker's top-k, which keeps the hits that enter it for the shared one.
struct Entering<'w> {
    topk: &'w mut TopK,
    entered: &'w mut Vec<(u32, u32)>,
}

impl HitSink for Entering<'_> {
    #[inline]
    fn offer(&mut self, doc: u32, score: u32) {
        if self.topk.push(doc, score) {
            self.entered.push((doc, score));
        }
    }
}

impl Worker<'_> {
    /// Visits the bucketed candidate blocks of `bounds` (placed as `layout` says) in descending bound
    /// until none can enter the top-k, nor beat the k-th score `shared` that another worker has
    /// reached, each bound taken as `floor(alpha * UB)` in those tests.
    #[inline(never)]
    fn visit<L: Layout>(
        &mut self,
        index: &Index,
        bounds: &[u32],
        layout: L,
        v: &Visit<'_>,
    ) -> Result<()> {
        let Visit {
            query,
            filter,
            alpha,
            shared,
            floor,
            block_cost,
            postings,
        } = *v;
        let bs = index.block_size();
        // With several workers, the shared top-k prunes too: the better of the two worst hits
        // (the shared one lags by the hits not yet passed on).
        let worst = |topk: &TopK| match (topk.worst(), shared.and_then(SharedTopK::worst)) {
            (Some(a), Some(b)) => Some(if (b.0, Reverse(b.1)) > (a.0, Reverse(a.1)) {
                b
            } else {
                a
            }),
            (a, b) => a.or(b),
        };
        // One worker may finish term at a time once the blocks left outweigh the postings.
        let postings = match shared {
            None if block_cost > 0 => postings,
            _ => usize::MAX,
        };
        let mut entered = Vec::new();
        let mut walk = Walk::default();
        let mut walked = false;
        let mut tail = false;
        self.scorer.clear();
        loop {
            let next = if walked || tail {
                None
            } else {
                // Everything from the next bucket on is bounded by its top.
                let theta = worst(&self.topk).map_or(0, |(s, _)| s);
                let next = self.buckets.next(&mut walk, bounds, |top| {
                    scaled(u32::try_from(top).unwrap_or(u32::MAX), alpha) >= theta
                });
                walked = next.is_none();
                next.map(|local| layout.block(local))
            };
            let Some(block) = self.scorer.step(next, query) else {
                if self.scorer.busy() {
                    continue;
                }
                break;
            };
            let ub = scaled(bounds[layout.place(block)], alpha);
            if let Some((theta, worst_doc)) = worst(&self.topk) {
                if ub < theta {
                    break;
                }
                if ub == theta && block * bs > worst_doc {
                    continue;
                }
            }
            match shared {
                None => self.scorer.finish(filter, &mut self.topk, 0)?,
                Some(s) => {
                    let mut sink = Entering {
                        topk: &mut self.topk,
                        entered: &mut entered,
                    };
                    self.scorer.finish(filter, &mut sink, 0)?;
                    // Passed on a few blocks' worth at a time: the lock is taken rarely.
                    if entered.len() >= PASS_ON {
                        s.offer(&entered);
                        entered.clear();
                    }
                }
            }
            self.scored += 1;
            if self.topk.tick() {
                break;
            }
            if !walked && !tail && self.scored.is_multiple_of(TAIL_CHECK) {
                if let Some((theta, _)) = worst(&self.topk) {
                    let left = self.buckets.remaining_at_least(&walk, theta);
                    tail = left.saturating_mul(block_cost) > postings
                        && (self.scored as usize).saturating_mul(TAIL_MATURITY) >= left;
                }
            }
        }
        if tail && !self.topk.stopped() {
            // The blocks in flight are scored; the rest whose bound reaches the k-th score go
            // term at a time.
            let theta = worst(&self.topk).map_or(floor, |(s, _)| s.max(floor));
            self.tail.blocks.clear();
            self.buckets.take_remaining(
                &mut walk,
                bounds,
                theta,
                |ub| scaled(ub, alpha) >= theta,
                &mut self.tail.blocks,
            );
            for b in &mut self.tail.blocks {
                *b = layout.block(*b);
            }
            self.scored += self.tail.blocks.len() as u32;
            self.tail.score(index, query, filter, &mut self.topk)?;
        }
        if let Some(s) = shared {
            s.offer(&entered);
        }
        Ok(())
    }
}
