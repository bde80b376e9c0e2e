//! Block-Max WAND (Ding & Suel, 2011), with the 128-doc chunks of the posting lists as blocks.
//!
//! Cursors are kept sorted by their current doc id. The pivot is the first cursor at which the
//! sum of the term upper bounds (query weight times the term's largest impact) of the cursors so
//! far can beat the threshold; no document before the pivot's doc id can. The cursors up to the
//! pivot then make a *shallow* move (over the chunk headers, without decoding) to the chunk that
//! would hold the pivot's doc id, and the sum of those chunks' max impacts times the weights is a
//! tighter bound. When it cannot beat the threshold, the cursor with the largest upper bound skips
//! past the earliest end among those chunks (or to the doc id of the cursor after the pivot, if
//! that comes first). Otherwise all the cursors before the pivot's doc id move to it (a *deep*
//! move, decoding only the chunk where a cursor lands), or, when they are all on it, the document
//! is scored, stopping early once the partial score plus the remaining block maxima cannot beat
//! the threshold. With a [`DocFilter`], a pivot document the filter does not allow sends the
//! cursors up to the pivot to the next document it allows instead.
//!
//! The order is an array of `doc << 32 | cursor` keys, so that it is kept without touching the
//! cursors: a cursor that moved sinks to its place, and the cursors that moved together (all on
//! the pivot document, or all before it) are sorted among themselves and merged with the others
//! in one pass. The block of each cursor's shallow position (its last doc id and bound) is kept
//! beside the order too, and read again from the headers only once the pivot document (which
//! never decreases) passes its end. With many query terms (learned sparse queries have dozens)
//! the upkeep of the order is still where most of the time goes: every move of a cursor costs a
//! pass over up to all the keys.
//!
//! Rank safety with ties: documents are visited in increasing doc id order, so every kept hit has
//! a lower doc id than the current candidate, and a candidate whose score or upper bound is at
//! most the threshold can never enter once the collector is full (see [`crate::maxscore`]). The
//! threshold starts one below BMP's initial threshold, as MaxScore's does.
//! Bounds are summed in `u64`, scores saturating in `u32` as exhaustive scoring does.

use bmp_index::postings::PostingsError;
use bmp_index::{Error, Index, Result};

use crate::blocks::threshold_seed;
use crate::cursor::{PostingCursor, END};
use crate::maxscore::next_allowed;
use crate::{DocFilter, Query, Searcher, TopK};

/// Block-Max WAND over the posting lists of the query terms.
pub struct Bmw<'a> {
    index: &'a Index,
    topk: TopK,
    /// Cursors of the query terms (reused).
    cursors: Vec<PostingCursor<'a>>,
    /// Query weight of each cursor's term.
    weights: Vec<u32>,
    /// Upper bound of each cursor's term: weight times the term's largest impact.
    bounds: Vec<u64>,
    /// The cursors in increasing doc id order, as `doc << 32 | cursor index` keys.
    order: Vec<u64>,
    /// Sort buffer for [`resort`].
    scratch: Vec<u64>,
    /// Each cursor's block at its shallow position, as last read.
    blocks: Vec<Block>,
}

/// A cursor's block at its shallow position: its last doc id, and its max impact times the
/// query weight.
#[derive(Debug, Clone, Copy)]
struct Block {
    last: u32,
    bound: u64,
}

/// The sort key of cursor `i` on document `doc`.
#[inline(always)]
fn key(doc: u32, i: usize) -> u64 {
    u64::from(doc) << 32 | i as u64
}

/// The doc id of a sort key.
#[inline(always)]
fn key_doc(key: u64) -> u32 {
    (key >> 32) as u32
}

/// The cursor index of a sort key.
#[inline(always)]
fn key_cursor(key: u64) -> usize {
    key as u32 as usize
}

impl<'a> Bmw<'a> {
    /// A Block-Max WAND searcher over `index`.
    pub fn new(index: &'a Index) -> Self {
        Bmw {
            index,
            topk: TopK::new(0),
            cursors: Vec::new(),
            weights: Vec::new(),
            bounds: Vec::new(),
            order: Vec::new(),
            scratch: Vec::new(),
            blocks: Vec::new(),
        }
    }

    /// Opens the cursors of the query terms that have postings, sorted by doc id.
    fn open(&mut self, query: &Query) -> Result<()> {
        self.cursors.clear();
        self.weights.clear();
        self.bounds.clear();
        self.order.clear();
        self.blocks.clear();
        for qt in &query.terms {
            let stats = self.index.term_stats(qt.term)?;
            if stats.df == 0 || qt.weight == 0 {
                continue;
            }
            let mut c = PostingCursor::open(self.index, qt.term)?;
            let max = c.block_max_geq(c.doc());
            self.blocks.push(Block {
                last: c.block_last_doc(),
                bound: u64::from(qt.weight) * u64::from(max),
            });
            self.order.push(key(c.doc(), self.cursors.len()));
            self.cursors.push(c);
            self.weights.push(qt.weight);
            self.bounds
                .push(u64::from(qt.weight) * u64::from(stats.max_impact));
        }
        self.order.sort_unstable();
        Ok(())
    }

    fn run(
        &mut self,
        filter: Option<&DocFilter>,
        seed: u32,
    ) -> std::result::Result<(), PostingsError> {
        let cursors = &mut self.cursors[..];
        let weights = &self.weights[..];
        let bounds = &self.bounds[..];
        let order = &mut self.order[..];
        let scratch = &mut self.scratch;
        let blocks = &mut self.blocks[..];
        let topk = &mut self.topk;
        let n = order.len();
        let mut threshold = seed;
        loop {
            if topk.tick() {
                return Ok(());
            }
            // Pivot: the first cursor where the upper bounds so far can beat the threshold.
            let t = u64::from(threshold);
            let mut upper = 0u64;
            let mut pivot = n;
            for (p, &k) in order.iter().enumerate() {
                upper += bounds[key_cursor(k)];
                if upper > t {
                    pivot = p;
                    break;
                }
            }
            let Some(&pivot_key) = order.get(pivot) else {
                return Ok(());
            };
            let pivot_doc = key_doc(pivot_key);
            if pivot_doc == END {
                return Ok(());
            }
            while pivot + 1 < n && key_doc(order[pivot + 1]) == pivot_doc {
                pivot += 1;
            }

            // Block upper bound of the pivot document, from the chunk headers.
            let mut block_upper = 0u64;
            for &k in &order[..=pivot] {
                let i = key_cursor(k);
                let b = &mut blocks[i];
                // The pivot document never decreases, and the cursor is not past it: the
                // shallow position moves only once the pivot document passes its block.
                if pivot_doc > b.last {
                    let c = &mut cursors[i];
                    let m = c.block_max_geq(pivot_doc);
                    *b = Block {
                        last: c.block_last_doc(),
                        bound: u64::from(weights[i]) * u64::from(m),
                    };
                }
                block_upper += b.bound;
            }

            if block_upper > t {
                if let Some(f) = filter {
                    // No document from the pivot document to the next one the filter allows can
                    // enter: the cursors up to the pivot skip there.
                    let allowed = next_allowed(f, pivot_doc);
                    if allowed == END {
                        return Ok(());
                    }
                    if allowed > pivot_doc {
                        for k in &mut order[..=pivot] {
                            let i = key_cursor(*k);
                            let c = &mut cursors[i];
                            c.next_geq(allowed)?;
                            *k = key(c.doc(), i);
                        }
                        resort(order, pivot + 1, scratch);
                        continue;
                    }
                }
                if key_doc(order[0]) == pivot_doc {
                    // Cursors 0..=pivot are all on the pivot document: score it, stopping once
                    // the partial score and the remaining block maxima cannot beat the threshold.
                    let mut score = 0u32;
                    let mut may_enter = true;
                    for &k in &order[..=pivot] {
                        let i = key_cursor(k);
                        let w = u64::from(weights[i]);
                        let part = w * u64::from(cursors[i].impact());
                        score = score.saturating_add(u32::try_from(part).unwrap_or(u32::MAX));
                        // The impact is at most the block maximum (the cursor checks it).
                        block_upper -= blocks[i].bound - part;
                        if block_upper <= t {
                            may_enter = false;
                            break;
                        }
                    }
                    for k in &mut order[..=pivot] {
                        let i = key_cursor(*k);
                        let c = &mut cursors[i];
                        c.next()?;
                        *k = key(c.doc(), i);
                    }
                    // The filter allows the pivot document (checked above).
                    if may_enter && score > threshold && topk.push(pivot_doc, score) {
                        threshold = threshold.max(topk.threshold().unwrap_or(0));
                    }
                    resort(order, pivot + 1, scratch);
                } else {
                    // No document before the pivot document can beat the threshold: move every
                    // cursor before it there.
                    let mut moved = 0;
                    while key_doc(order[moved]) < pivot_doc {
                        let i = key_cursor(order[moved]);
                        let c = &mut cursors[i];
                        c.next_geq(pivot_doc)?;
                        order[moved] = key(c.doc(), i);
                        moved += 1;
                    }
                    resort(order, moved, scratch);
                }
            } else {
                // No document from the pivot document to the end of the first block that ends
                // (and before the cursor after the pivot) can beat the threshold: the cursor of
                // the largest upper bound skips there.
                let mut next = END;
                let mut mover = pivot;
                let mut mover_bound = 0;
                for (p, &k) in order[..=pivot].iter().enumerate() {
                    let i = key_cursor(k);
                    next = next.min(blocks[i].last);
                    if bounds[i] > mover_bound {
                        mover = p;
                        mover_bound = bounds[i];
                    }
                }
                next = next.saturating_add(1);
                if let Some(&k) = order.get(pivot + 1) {
                    next = next.min(key_doc(k));
                }
                if next <= pivot_doc {
                    next = pivot_doc.saturating_add(1);
                }
                let i = key_cursor(order[mover]);
                let c = &mut cursors[i];
                c.next_geq(next)?;
                order[mover] = key(c.doc(), i);
                bubble_down(order, mover);
            }
        }
    }
}

/// Restores the order after the cursors at positions `..moved` moved forward: sorts them (in
/// `scratch`) and merges them with the others, in one pass.
#[inline]
fn resort(order: &mut [u64], moved: usize, scratch: &mut Vec<u64>) {
    if moved <= 1 {
        if moved == 1 {
            bubble_down(order, 0);
        }
        return;
    }
    scratch.clear();
    scratch.extend_from_slice(&order[..moved]);
    scratch.sort_unstable();
    // Front-to-back merge in place: the output position never passes the next unread one.
    let mut out = 0;
    let mut rest = moved;
    for &k in scratch.iter() {
        while let Some(&r) = order.get(rest).filter(|&&r| r < k) {
            order[out] = r;
            out += 1;
            rest += 1;
        }
        order[out] = k;
        out += 1;
    }
}

/// Restores the order after the cursor at position `p` moved forward (the positions after it
/// being in order).
#[inline]
fn bubble_down(order: &mut [u64], mut p: usize) {
    let k = order[p];
    while let Some(&next) = order.get(p + 1).filter(|&&x| x < k) {
        order[p] = next;
        p += 1;
    }
    order[p] = k;
}

impl Searcher for Bmw<'_> {
    fn name(&self) -> &'static str {
        "bmw"
    }

    fn topk(&mut self) -> &mut TopK {
        &mut self.topk
    }

    fn collect(
        &mut self,
        query: &Query,
        k: usize,
        filter: Option<&DocFilter>,
        floor: u32,
    ) -> Result<()> {
        self.open(query)?;
        let seed = threshold_seed(self.index, query, k, filter, floor)?;
        let result = self.run(filter, seed);
        self.cursors.clear();
        result.map_err(|e| Error::corrupt(self.index.path(), e.0))
    }
}
