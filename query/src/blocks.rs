//! Machinery shared by the block-at-a-time processors ([`crate::bmp`] and [`crate::sp`]): the
//! initial threshold, bound accumulation, bucketing blocks by bound, and scoring one block from the
//! forward index.

use bmp_index::format::reader::{prefetch, ForwardBlock};
use bmp_index::format::{FORWARD_BUCKET, KTH_IMPACT_KS};
use bmp_index::{Error, Index, Result};

use crate::filter::allows;
use crate::{DocFilter, Query, QueryTerm, TopK};

/// Cache lines of the next block's forward data prefetched while a block is scored.
pub(crate) const PREFETCH_LINES: usize = 8;

/// Number of buckets blocks are distributed into by upper bound.
pub const NUM_BUCKETS: usize = 1024;

/// A score that at least `k` documents `filter` allows reach: each term stores its 10th, 100th
/// and 1000th largest impact, so at least k' documents score at least `q_t * kth_t(k')`, of which
/// at most the `e` documents the filter excludes are not allowed; the smallest stored
/// `k' >= k + e` is used (0 when there is none).
pub(crate) fn initial_threshold(
    index: &Index,
    terms: &[QueryTerm],
    k: usize,
    filter: Option<&DocFilter>,
) -> Result<u32> {
    let excluded = filter.map_or(0, |f| f.excluded_below(index.num_docs()));
    let need = (k as u64).saturating_add(excluded);
    let Some(slot) = KTH_IMPACT_KS
        .iter()
        .position(|&stored| stored as u64 >= need)
    else {
        return Ok(0);
    };
    let mut theta = 0u32;
    for qt in terms {
        let kth = index.term_stats(qt.term)?.kth_impact[slot];
        theta = theta.max(qt.weight.wrapping_mul(u32::from(kth)));
    }
    Ok(theta)
}

/// The threshold a document-at-a-time processor starts from: one below the larger of the
/// [`initial_threshold`] and `floor`, so that a document scoring below it (which cannot be in
/// the top-k, or need not be offered) is pruned while one scoring exactly it (which may enter
/// on a tie) is not.
pub(crate) fn threshold_seed(
    index: &Index,
    query: &Query,
    k: usize,
    filter: Option<&DocFilter>,
    floor: u32,
) -> Result<u32> {
    Ok(initial_threshold(index, &query.terms, k, filter)?
        .max(floor)
        .saturating_sub(1))
}

/// Whether bit `block` of a block mask ([`DocFilter::block_mask`]) is set: the block holds an
/// allowed document.
#[inline]
pub(crate) fn block_allowed(mask: &[u64], block: u32) -> bool {
    mask.get((block / 64) as usize)
        .is_some_and(|w| w >> (block % 64) & 1 == 1)
}

/// An approximation scale clamped into (0, 1]: 1 (exact) when it is not positive.
pub(crate) fn clamp_scale(v: f32) -> f32 {
    if v > 0.0 {
        v.min(1.0)
    } else {
        1.0
    }
}

/// Prefetches the first cache lines of forward block `block`.
#[inline]
pub(crate) fn prefetch_block(index: &Index, block: u32) {
    let bytes = index.forward_block_bytes(block);
    for line in bytes.chunks(64).take(PREFETCH_LINES) {
        prefetch(line.as_ptr().cast());
    }
}

pub(crate) use crate::simd::add_dense;
use crate::simd::gather_at_least;

/// Items (blocks, superblocks) counting-sorted into [`NUM_BUCKETS`] buckets by bound, each bucket
/// sorted only when reached.
#[derive(Debug)]
pub struct Buckets {
    /// Start of each bucket in `items`, and the end.
    pub starts: Vec<u32>,
    fill: Vec<u32>,
    /// The items, bucket after bucket.
    pub items: Vec<u32>,
    /// The bound of the lowest bucket.
    pub floor: u32,
    /// Bound width of a bucket (a power of two).
    pub width: u64,
    /// Scratch for the candidates of a fill (its first entries), at least as long as the last
    /// bounds.
    gathered: Vec<u32>,
}

impl Default for Buckets {
    fn default() -> Self {
        Self::new()
    }
}

impl Buckets {
    /// Empty buckets.
    pub fn new() -> Self {
        Buckets {
            starts: vec![0; NUM_BUCKETS + 1],
            fill: Vec::with_capacity(NUM_BUCKETS),
            items: Vec::new(),
            floor: 0,
            width: 1,
            gathered: Vec::new(),
        }
    }

    /// Buckets the items `i` with `bounds[i] >= floor`; bucket `j` holds bounds in
    /// `[floor + j * width, floor + (j + 1) * width)`. Returns the largest bound among them, or
    /// `None` (and no items) when no bound reaches `floor`.
    ///
    /// One pass over `bounds` gathers the candidates and their maximum
    /// ([`crate::simd::gather_at_least`]: AVX-512 compress, or a branch-free scalar loop); counting
    /// and placing then touch the candidates only.
    pub fn fill(&mut self, bounds: &[u32], floor: u32) -> Option<u32> {
        // Kept at least as long as `bounds` (plus a vector) between calls: no clearing pass.
        if self.gathered.len() < bounds.len() + 16 {
            self.gathered.resize(bounds.len() + 16, 0);
        }
        let (n, max_bound) = gather_at_least(bounds, floor, &mut self.gathered);
        let gathered = &self.gathered[..n];
        self.items.clear();
        self.floor = floor;
        if n == 0 {
            self.starts.fill(0);
            return None;
        }
        let span = u64::from(max_bound - floor) + 1;
        let width = span.div_ceil(NUM_BUCKETS as u64).max(1);
        // A power-of-two width turns the bucket index into a shift.
        let shift = width.next_power_of_two().trailing_zeros();
        let bucket = |u: u32| (u64::from(u - floor) >> shift) as usize;
        self.starts.fill(0);
        for &i in gathered {
            self.starts[bucket(bounds[i as usize]) + 1] += 1;
        }
        for j in 0..NUM_BUCKETS {
            self.starts[j + 1] += self.starts[j];
        }
        self.items.resize(n, 0);
        self.fill.clear();
        self.fill.extend_from_slice(&self.starts[..NUM_BUCKETS]);
        for &i in gathered {
            let slot = &mut self.fill[bucket(bounds[i as usize])];
            self.items[*slot as usize] = i;
            *slot += 1;
        }
        self.width = 1 << shift;
        Some(max_bound)
    }

    /// The highest bound bucket `j` can hold.
    pub fn top(&self, j: usize) -> u64 {
        u64::from(self.floor) + (j as u64 + 1) * self.width - 1
    }

    /// Sorts bucket `j` by descending bound (then ascending item) and returns its range in
    /// `items`.
    pub fn sort(&mut self, j: usize, bounds: &[u32]) -> std::ops::Range<usize> {
        let (a, b) = (self.starts[j] as usize, self.starts[j + 1] as usize);
        self.items[a..b]
            .sort_unstable_by(|&x, &y| bounds[y as usize].cmp(&bounds[x as usize]).then(x.cmp(&y)));
        a..b
    }
}

/// Stages of preparing a block for scoring, each one's loads prefetched by the one before: the
/// block's offset, its header and bucket starts, the query terms' buckets, their entries, their
/// pairs. The documents are then scored.
pub(crate) const STAGES: usize = 5;

/// One block on its way through the stages of [`BlockScorer`]. (Aligned to a pair of cache lines:
/// the slots of two workers never share one.)
#[repr(align(128))]
struct Slot<'a> {
    block: Option<u32>,
    bytes: &'a [u8],
    forward: Option<ForwardBlock<'a>>,
    /// A malformed block, reported when the block is scored.
    error: Option<Error>,
    /// Per query term present in the block's buckets: `(first entry of its bucket, end of the
    /// bucket, low byte of the term, weight)`, then `(entry, 0, 0, weight)` once found.
    lookups: Vec<(u32, u32, u8, u32)>,
    /// The pairs of the query terms found in the block, with their weights.
    found: Vec<(&'a [[u8; 2]], u32)>,
}

impl<'a> Slot<'a> {
    fn new() -> Self {
        Slot {
            block: None,
            bytes: &[],
            forward: None,
            error: None,
            lookups: Vec::new(),
            found: Vec::new(),
        }
    }

    /// Runs stage `stage` (0 to [`STAGES`] - 1) of this slot's block.
    #[inline]
    fn advance(&mut self, stage: usize, index: &'a Index, query: &Query, header_lines: usize) {
        let Some(block) = self.block else {
            return;
        };
        match stage {
            0 => {
                self.error = None;
                index.prefetch_forward_offset(block);
            }
            1 => {
                self.bytes = index.forward_block_bytes(block);
                for line in self.bytes.chunks(64).take(header_lines) {
                    prefetch(line.as_ptr());
                }
            }
            2 => {
                self.lookups.clear();
                self.found.clear();
                match index.parse_forward_block(block, self.bytes) {
                    Ok(fb) => {
                        for qt in &query.terms {
                            let bucket = (qt.term / FORWARD_BUCKET) as usize;
                            let (a, b) = (fb.starts.get(bucket), fb.starts.get(bucket + 1));
                            if a < b && b <= fb.lows.len() {
                                prefetch(fb.lows[a..].as_ptr());
                                self.lookups.push((
                                    a as u32,
                                    b as u32,
                                    (qt.term % FORWARD_BUCKET) as u8,
                                    qt.weight,
                                ));
                            }
                        }
                        self.forward = Some(fb);
                    }
                    Err(e) => {
                        self.forward = None;
                        self.error = Some(e);
                    }
                }
            }
            3 => {
                let Some(fb) = &self.forward else {
                    return;
                };
                let mut n = 0;
                for i in 0..self.lookups.len() {
                    let (a, b, low, w) = self.lookups[i];
                    let lows = &fb.lows[a as usize..b as usize];
                    let at = lows.partition_point(|&l| l < low);
                    if lows.get(at) == Some(&low) {
                        let entry = a as usize + at;
                        fb.prefetch_entry(entry);
                        self.lookups[n] = (entry as u32, 0, 0, w);
                        n += 1;
                    }
                }
                self.lookups.truncate(n);
            }
            _ => {
                let Some(fb) = &self.forward else {
                    return;
                };
                for &(entry, _, _, w) in &self.lookups {
                    let pairs = fb.pairs_of(entry as usize);
                    prefetch(pairs.as_ptr().cast());
                    self.found.push((pairs, w));
                }
            }
        }
    }
}

/// Where a walk over [`Buckets`] in descending bound stands.
#[derive(Debug, Clone, Copy)]
pub struct Walk {
    bucket: usize,
    pos: usize,
    end: usize,
}

impl Default for Walk {
    fn default() -> Self {
        Walk {
            bucket: NUM_BUCKETS,
            pos: 0,
            end: 0,
        }
    }
}

impl Buckets {
    /// The next item of `walk` in descending bound (then ascending item), each bucket sorted
    /// when reached; `None` once the items are exhausted or once the next bucket's highest bound
    /// fails `reachable`.
    #[inline]
    pub fn next(
        &mut self,
        walk: &mut Walk,
        bounds: &[u32],
        reachable: impl Fn(u64) -> bool,
    ) -> Option<u32> {
        loop {
            if walk.pos < walk.end {
                let item = self.items[walk.pos];
                walk.pos += 1;
                return Some(item);
            }
            loop {
                if walk.bucket == 0 {
                    return None;
                }
                walk.bucket -= 1;
                if self.starts[walk.bucket] != self.starts[walk.bucket + 1] {
                    break;
                }
            }
            if !reachable(self.top(walk.bucket)) {
                walk.bucket = 0;
                return None;
            }
            let range = self.sort(walk.bucket, bounds);
            (walk.pos, walk.end) = (range.start, range.end);
        }
    }
}

impl Buckets {
    /// The bucket that holds bound `bound` (0 below the floor, [`NUM_BUCKETS`] above the top).
    fn bucket_of(&self, bound: u32) -> usize {
        let shift = self.width.trailing_zeros();
        let above = u64::from(bound.saturating_sub(self.floor)) >> shift;
        above.min(NUM_BUCKETS as u64) as usize
    }

    /// How many items `walk` has not reached whose bucket may hold a bound of at least `theta`:
    /// the rest of the current bucket and every lower bucket down to `theta`'s (an upper
    /// estimate of the items with a bound `>= theta`, in constant time).
    pub fn remaining_at_least(&self, walk: &Walk, theta: u32) -> usize {
        let lowest = self.bucket_of(theta).min(walk.bucket);
        let below = self.starts[walk.bucket] - self.starts[lowest];
        (walk.end - walk.pos) + below as usize
    }

    /// Takes every item `walk` has not reached whose bound `keep` accepts into `out` (in no
    /// particular order), looking no lower than the bucket of `lowest`, and ends the walk.
    /// `keep` must reject every bound below `lowest`.
    pub fn take_remaining(
        &mut self,
        walk: &mut Walk,
        bounds: &[u32],
        lowest: u32,
        keep: impl Fn(u32) -> bool,
        out: &mut Vec<u32>,
    ) {
        let mut add = |items: &[u32]| {
            out.extend(items.iter().copied().filter(|&i| keep(bounds[i as usize])));
        };
        add(&self.items[walk.pos..walk.end]);
        let last = self.bucket_of(lowest).min(walk.bucket);
        let (a, b) = (
            self.starts[last] as usize,
            self.starts[walk.bucket] as usize,
        );
        add(&self.items[a..b]);
        *walk = Walk {
            bucket: 0,
            pos: 0,
            end: 0,
        };
    }
}

/// Where [`BlockScorer::finish`] offers the documents it scored.
pub(crate) trait HitSink {
    /// Offers one document and its score.
    fn offer(&mut self, doc: u32, score: u32);
}

impl HitSink for TopK {
    #[inline]
    fn offer(&mut self, doc: u32, score: u32) {
        self.push(doc, score);
    }
}

/// Scores whole blocks from the block-grouped forward index.
///
/// Reaching a block's pairs takes a chain of dependent loads (offset, bucket starts, entry, pair
/// offsets, pairs), each likely a cache miss. Blocks go through a pipeline of [`STAGES`] stages,
/// one block entering per [`BlockScorer::step`]: every step runs one stage of each block in
/// flight, so that the loads of one stage, prefetched by the stage before, overlap across
/// several blocks and all their query terms instead of queueing one behind the other.
pub(crate) struct BlockScorer<'a> {
    index: &'a Index,
    slots: Vec<Slot<'a>>,
    /// Steps taken; block fed at step `t` lives in slot `t % STAGES`.
    step: usize,
    /// Blocks in flight.
    in_flight: usize,
    /// Cache lines holding a block's header and bucket starts (with 16-bit starts).
    header_lines: usize,
    scores: [u32; 256],
}

impl<'a> BlockScorer<'a> {
    pub fn new(index: &'a Index) -> Self {
        let buckets = index.num_terms().div_ceil(FORWARD_BUCKET) as usize;
        BlockScorer {
            index,
            slots: (0..STAGES).map(|_| Slot::new()).collect(),
            step: 0,
            in_flight: 0,
            header_lines: (4 + 2 * (buckets + 1)).div_ceil(64),
            scores: [0; 256],
        }
    }

    /// Empties the pipeline.
    pub fn clear(&mut self) {
        for slot in &mut self.slots {
            slot.block = None;
        }
        self.in_flight = 0;
    }

    /// Whether blocks are still in flight.
    pub fn busy(&self) -> bool {
        self.in_flight > 0
    }

    /// Feeds `next` (or nothing) into the pipeline and runs one stage of every block in flight;
    /// returns the block whose stages are done, to be scored by [`BlockScorer::finish`] (or
    /// dropped) before the next step.
    #[inline]
    pub fn step(&mut self, next: Option<u32>, query: &Query) -> Option<u32> {
        let t = self.step;
        self.step = t.wrapping_add(1);
        // The slot of the block fed `STAGES` steps ago was left behind by the last step.
        let new = t % STAGES;
        if self.slots[new].block.take().is_some() {
            self.in_flight -= 1;
        }
        if next.is_some() {
            self.in_flight += 1;
        }
        self.slots[new].block = next;
        for stage in (0..STAGES).rev() {
            let at = (t + STAGES - stage) % STAGES;
            self.slots[at].advance(stage, self.index, query, self.header_lines);
        }
        self.slots[(t + 1) % STAGES].block
    }

    /// Scores every document of the block [`BlockScorer::step`] last returned and offers the
    /// ones `filter` allows to `topk`, numbered from `base` (0 for one index; the documents of
    /// the segments before, for one of several).
    #[inline(never)]
    pub fn finish<S: HitSink>(
        &mut self,
        filter: Option<&DocFilter>,
        topk: &mut S,
        base: u32,
    ) -> Result<()> {
        let at = self.step % STAGES;
        let slot = &mut self.slots[at];
        let Some(block) = slot.block else {
            return Ok(());
        };
        if let Some(e) = slot.error.take() {
            return Err(e);
        }
        let bs = self.index.block_size();
        let first = block * bs;
        let len = bs.min(self.index.num_docs() - first) as usize;
        // A `u8` offset always indexes the 256 accumulators: no bounds check per pair. An offset
        // past the block (a corrupt file) is caught after the loop from the largest one seen.
        let scores = &mut self.scores;
        let mut max_off = 0u8;
        for &(pairs, w) in slot.found.iter() {
            for &[off, impact] in pairs {
                let s = &mut scores[usize::from(off)];
                *s = s.wrapping_add(w.wrapping_mul(u32::from(impact)));
                max_off = max_off.max(off);
            }
        }
        if usize::from(max_off) >= len {
            self.scores.fill(0);
            return Err(Error::corrupt(
                self.index.path(),
                format!("forward block {block} refers to a document beyond the index"),
            ));
        }
        for (off, s) in self.scores[..len].iter_mut().enumerate() {
            if *s > 0 {
                let doc = first + off as u32;
                if allows(filter, doc) {
                    topk.offer(base.wrapping_add(doc), *s);
                }
                *s = 0;
            }
        }
        Ok(())
    }

    /// Scores every document of `block` at once (all stages in turn) and offers the ones
    /// `filter` allows to `topk`. The pipeline must be empty.
    pub fn score(
        &mut self,
        block: u32,
        query: &Query,
        filter: Option<&DocFilter>,
        topk: &mut TopK,
    ) -> Result<()> {
        let at = self.step % STAGES;
        let slot = &mut self.slots[at];
        slot.block = Some(block);
        for stage in 0..STAGES {
            slot.advance(stage, self.index, query, self.header_lines);
        }
        let r = self.finish(filter, topk, 0);
        self.slots[at].block = None;
        r
    }
}

/// Whether a block (or superblock) whose documents start at `first_doc`, with upper bound `ub`,
/// may still hold a document entering `topk`: its bound beats the k-th score, or equals it while
/// it starts below the k-th hit's doc id (ties are broken by doc id). `scale` < 1 shrinks the
/// bound to `floor(scale * ub)` first (approximate search).
#[inline]
pub(crate) fn may_enter(topk: &TopK, ub: u32, first_doc: u32, scale: f32) -> bool {
    let Some((theta, worst_doc)) = topk.worst() else {
        return true;
    };
    let ub = scaled(ub, scale);
    ub > theta || (ub == theta && first_doc < worst_doc)
}

/// `floor(scale * ub)`, or `ub` when `scale >= 1`.
#[inline]
pub(crate) fn scaled(ub: u32, scale: f32) -> u32 {
    if scale < 1.0 {
        (f64::from(ub) * f64::from(scale)) as u32
    } else {
        ub
    }
}
