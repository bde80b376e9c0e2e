//! MaxScore (Turtle & Flood, 1995), document-at-a-time as in PISA.
//!
//! Query terms are sorted by their maximum contribution (query weight times the term's largest
//! impact), and the prefix sums of those upper bounds are kept. The terms whose prefix sum is at
//! most the current threshold are *non-essential*: a document that contains only such terms
//! cannot enter the top k. Candidates are the documents of the essential lists, visited in
//! increasing doc id order; the non-essential lists are only probed (with
//! [`PostingCursor::next_geq`], which skips whole chunks by their headers) while the partial
//! score plus the remaining upper bounds can still beat the threshold.
//!
//! Rank safety with ties: a hit enters the [`TopK`] with a score above the k-th score, or with an
//! equal score and a lower doc id. Every kept hit was visited before the current candidate, so it
//! has a lower doc id, and a candidate whose score (or upper bound) is at most the threshold can
//! never enter once the collector is full. While it is not full the threshold is taken as 0, and
//! only scores above 0 enter, so nothing is pruned that could enter.

use bmp_index::{Error, Index, Result};

use crate::cursor::{PostingCursor, END};
use crate::filter::allows;
use crate::{DocFilter, Hit, Query, Searcher, TopK};

/// MaxScore over the posting lists of the query terms.
pub struct MaxScore<'a> {
    index: &'a Index,
    topk: TopK,
    /// Cursors of the query terms, in increasing order of their upper bounds (reused).
    cursors: Vec<PostingCursor<'a>>,
    /// Query weight of each cursor's term.
    weights: Vec<u32>,
    /// `prefix[i]`: sum of the upper bounds of cursors `0..=i`.
    prefix: Vec<u32>,
    /// `(upper bound, term index)` pairs, for sorting.
    order: Vec<(u32, usize)>,
}

impl<'a> MaxScore<'a> {
    /// A MaxScore searcher over `index`.
    pub fn new(index: &'a Index) -> Self {
        MaxScore {
            index,
            topk: TopK::new(0),
            cursors: Vec::new(),
            weights: Vec::new(),
            prefix: Vec::new(),
            order: Vec::new(),
        }
    }

    /// Opens the cursors of the query terms that have postings, sorted by upper bound.
    fn open(&mut self, query: &Query) -> Result<()> {
        self.cursors.clear();
        self.weights.clear();
        self.prefix.clear();
        self.order.clear();
        for (i, qt) in query.terms.iter().enumerate() {
            let stats = self.index.term_stats(qt.term)?;
            if stats.df == 0 || qt.weight == 0 {
                continue;
            }
            self.order
                .push((qt.weight.saturating_mul(u32::from(stats.max_impact)), i));
        }
        self.order.sort_unstable();
        let mut sum = 0u32;
        for &(ub, i) in &self.order {
            let qt = query.terms[i];
            self.cursors.push(PostingCursor::open(self.index, qt.term)?);
            self.weights.push(qt.weight);
            sum = sum.saturating_add(ub);
            self.prefix.push(sum);
        }
        Ok(())
    }

    fn run(
        &mut self,
        filter: Option<&DocFilter>,
    ) -> std::result::Result<(), bmp_index::postings::PostingsError> {
        let cursors = &mut self.cursors[..];
        let weights = &self.weights[..];
        let prefix = &self.prefix[..];
        let topk = &mut self.topk;
        let n = cursors.len();
        let mut threshold = 0u32;
        // Number of non-essential lists: cursors[..ne].
        let mut ne = 0;
        let mut cur = cursors.iter().map(PostingCursor::doc).min().unwrap_or(END);
        while ne < n && cur != END {
            let mut score = 0u32;
            let mut next = END;
            for (c, &w) in cursors[ne..].iter_mut().zip(&weights[ne..]) {
                if c.doc() == cur {
                    score = score.saturating_add(w.saturating_mul(u32::from(c.impact())));
                    c.next()?;
                }
                next = next.min(c.doc());
            }
            // Non-essential lists, largest upper bound first, while the document may still enter.
            let mut may_enter = true;
            for i in (0..ne).rev() {
                if score.saturating_add(prefix[i]) <= threshold {
                    may_enter = false;
                    break;
                }
                let c = &mut cursors[i];
                c.next_geq(cur)?;
                if c.doc() == cur {
                    score = score.saturating_add(weights[i].saturating_mul(u32::from(c.impact())));
                }
            }
            if may_enter && score > threshold && allows(filter, cur) && topk.push(cur, score) {
                threshold = topk.threshold().unwrap_or(0);
                while ne < n && prefix[ne] <= threshold {
                    ne += 1;
                }
            }
            cur = next;
        }
        Ok(())
    }
}

impl Searcher for MaxScore<'_> {
    fn name(&self) -> &'static str {
        "maxscore"
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
