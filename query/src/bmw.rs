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
//! the threshold.
//!
//! Rank safety with ties: documents are visited in increasing doc id order, so every kept hit has
//! a lower doc id than the current candidate, and a candidate whose score or upper bound is at
//! most the threshold can never enter once the collector is full (see [`crate::maxscore`]).

use bmp_index::postings::PostingsError;
use bmp_index::{Error, Index, Result};

use crate::cursor::{PostingCursor, END};
use crate::filter::allows;
use crate::{DocFilter, Hit, Query, Searcher, TopK};

/// Block-Max WAND over the posting lists of the query terms.
pub struct Bmw<'a> {
    index: &'a Index,
    topk: TopK,
    /// Cursors of the query terms (reused).
    cursors: Vec<PostingCursor<'a>>,
    /// Query weight of each cursor's term.
    weights: Vec<u32>,
    /// Upper bound of each cursor's term: weight times the term's largest impact.
    bounds: Vec<u32>,
    /// Cursor indices sorted by current doc id.
    order: Vec<usize>,
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
        }
    }

    /// Opens the cursors of the query terms that have postings, sorted by doc id.
    fn open(&mut self, query: &Query) -> Result<()> {
        self.cursors.clear();
        self.weights.clear();
        self.bounds.clear();
        self.order.clear();
        for qt in &query.terms {
            let stats = self.index.term_stats(qt.term)?;
            if stats.df == 0 || qt.weight == 0 {
                continue;
            }
            self.order.push(self.cursors.len());
            self.cursors.push(PostingCursor::open(self.index, qt.term)?);
            self.weights.push(qt.weight);
            self.bounds
                .push(qt.weight.saturating_mul(u32::from(stats.max_impact)));
        }
        let cursors = &self.cursors;
        self.order.sort_unstable_by_key(|&i| cursors[i].doc());
        Ok(())
    }

    fn run(&mut self, filter: Option<&DocFilter>) -> std::result::Result<(), PostingsError> {
        let cursors = &mut self.cursors[..];
        let weights = &self.weights[..];
        let bounds = &self.bounds[..];
        let order = &mut self.order[..];
        let topk = &mut self.topk;
        let n = order.len();
        let mut threshold = 0u32;
        loop {
            // Pivot: the first cursor where the upper bounds so far can beat the threshold.
            let mut upper = 0u32;
            let mut pivot = n;
            for (p, &i) in order.iter().enumerate() {
                if cursors[i].doc() == END {
                    break;
                }
                upper = upper.saturating_add(bounds[i]);
                if upper > threshold {
                    pivot = p;
                    break;
                }
            }
            if pivot == n {
                return Ok(());
            }
            let pivot_doc = cursors[order[pivot]].doc();
            while pivot + 1 < n && cursors[order[pivot + 1]].doc() == pivot_doc {
                pivot += 1;
            }

            // Block upper bound of the pivot document, from the chunk headers.
            let mut block_upper = 0u32;
            for &i in &order[..=pivot] {
                let c = &mut cursors[i];
                let m = c.block_max_geq(pivot_doc);
                block_upper = block_upper.saturating_add(weights[i].saturating_mul(u32::from(m)));
            }

            if block_upper > threshold {
                if cursors[order[0]].doc() == pivot_doc {
                    // Cursors 0..=pivot are all on the pivot document: score it.
                    let mut score = 0u32;
                    let mut may_enter = true;
                    for &i in &order[..=pivot] {
                        let c = &cursors[i];
                        let part = weights[i].saturating_mul(u32::from(c.impact()));
                        score = score.saturating_add(part);
                        let block = weights[i].saturating_mul(u32::from(c.block_max()));
                        block_upper = block_upper.saturating_sub(block.saturating_sub(part));
                        if block_upper <= threshold {
                            may_enter = false;
                            break;
                        }
                    }
                    for &i in &order[..=pivot] {
                        cursors[i].next()?;
                    }
                    if may_enter
                        && score > threshold
                        && allows(filter, pivot_doc)
                        && topk.push(pivot_doc, score)
                    {
                        threshold = topk.threshold().unwrap_or(0);
                    }
                    resort(order, cursors, pivot);
                } else {
                    // No document before the pivot document can beat the threshold: move every
                    // cursor before it there.
                    let mut moved = 0;
                    while moved < pivot && cursors[order[moved]].doc() < pivot_doc {
                        cursors[order[moved]].next_geq(pivot_doc)?;
                        moved += 1;
                    }
                    resort(order, cursors, pivot);
                }
            } else {
                // No document from the pivot document to the end of the first block that ends
                // (and before the cursor after the pivot) can beat the threshold.
                let mut next = END;
                let mut mover = pivot;
                for (p, &i) in order[..=pivot].iter().enumerate() {
                    next = next.min(cursors[i].block_last_doc());
                    if bounds[i] > bounds[order[mover]] {
                        mover = p;
                    }
                }
                next = next.saturating_add(1);
                if let Some(&i) = order.get(pivot + 1) {
                    next = next.min(cursors[i].doc());
                }
                if next <= pivot_doc {
                    next = pivot_doc.saturating_add(1);
                }
                cursors[order[mover]].next_geq(next)?;
                bubble_down(order, cursors, mover);
            }
        }
    }
}

/// Restores doc id order after the cursors at `order[..=last]` moved forward.
fn resort(order: &mut [usize], cursors: &[PostingCursor<'_>], last: usize) {
    for p in (0..=last).rev() {
        bubble_down(order, cursors, p);
    }
}

/// Restores doc id order after the cursor at `order[p]` moved forward.
#[inline]
fn bubble_down(order: &mut [usize], cursors: &[PostingCursor<'_>], mut p: usize) {
    let doc = cursors[order[p]].doc();
    while p + 1 < order.len() && cursors[order[p + 1]].doc() < doc {
        order.swap(p, p + 1);
        p += 1;
    }
}

impl Searcher for Bmw<'_> {
    fn name(&self) -> &'static str {
        "bmw"
    }

    fn search_filtered(
        &mut self,
        query: &Query,
        k: usize,
        filter: Option<&DocFilter>,
    ) -> Result<Vec<Hit>> {
        self.topk.reset(k);
        if k == 0 || query.terms.is_empty() {
            return Ok(Vec::new());
        }
        self.open(query)?;
        let result = self.run(filter);
        self.cursors.clear();
        result.map_err(|e| Error::corrupt(self.index.path(), e.0))?;
        Ok(self.topk.drain_sorted())
    }
}
