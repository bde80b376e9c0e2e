//! MaxScore (Turtle & Flood, 1995) over doc-id windows, as Lucene's `MaxScoreBulkScorer`.
//!
//! Doc ids are processed in increasing order, in *outer windows*. An outer window starts at the
//! first doc id not yet processed and ends after the first chunk end (from the chunk headers) of
//! the essential lists of the previous window, but covers at least [`WINDOW`] doc ids. At its
//! start every query term gets a *window upper bound*: its query weight times the largest max
//! impact of its posting-list chunks that overlap the window (read from the headers, without
//! decoding; 0 when the term has no posting left in the window). The terms are sorted by bound
//! per posting (bound over document frequency, Lucene's order: long lists of small bounds come
//! first) and the prefix sums of their bounds are taken: the terms whose prefix sum is at most the
//! current threshold are *non-essential* in this window, since a document that contains only such
//! terms cannot enter the top k. When every term is non-essential the window is skipped.
//!
//! Otherwise the window is scored in *inner windows* of at most [`WINDOW`] doc ids, each starting
//! at the smallest doc id of the essential lists (so stretches without an essential posting are
//! skipped, and so are stretches the [`DocFilter`] allows nothing in). The essential lists are
//! scored term-at-a-time into a window accumulator (a score per document and a bitset of the
//! documents touched). The touched documents, in increasing doc id order, are the candidates:
//! those whose partial score plus the bounds of all non-essential terms can beat the threshold
//! (and that pass the filter) are kept. The non-essential lists are then probed term by term,
//! largest bound first, with [`PostingCursor::next_geq`] (which skips whole chunks by their
//! headers): before each term, the candidates whose partial score plus the bounds of the terms not
//! yet probed cannot beat the threshold are dropped. The survivors are offered to the [`TopK`] in
//! increasing doc id order, and the threshold rises as they enter; after each inner window the
//! essential lists whose prefix sum it now covers become non-essential.
//!
//! Rank safety with ties: a hit enters the [`TopK`] with a score above the k-th score, or with an
//! equal score and a lower doc id. Candidates are offered in increasing doc id order, window
//! after window, so every kept hit has a lower doc id than the current candidate, and a candidate
//! whose score (or upper bound) is at most the threshold can never enter once the collector is
//! full. While it is not full the threshold is one below BMP's initial threshold (at least k
//! documents score that much, from the terms' stored k-th impacts), 0 with a
//! filter; only scores above it enter, so a document that could enter on a tie is never pruned. Pruning inside an inner window uses the threshold of its
//! start, which is never above the current one. Scores are summed saturating, as exhaustive
//! scoring does (a saturated sum never passes a threshold it should not).

use bmp_index::postings::PostingsError;
use bmp_index::{Error, Index, Result};

use crate::blocks::threshold_seed;
use crate::cursor::{PostingCursor, END};
use crate::{DocFilter, Query, Searcher, TopK};

/// The most doc ids in an inner window, and the least in an outer one (a power of two). Chosen
/// by measurement (docs/BENCHMARKS.md): against 4,096, fewer windows to set up on 1M-document
/// collections of 45-term queries; 65,536 was slower on real text.
pub const WINDOW: usize = 16_384;

/// MaxScore over the posting lists of the query terms.
pub struct MaxScore<'a> {
    index: &'a Index,
    topk: TopK,
    /// Cursors of the query terms (reused).
    cursors: Vec<PostingCursor<'a>>,
    /// Query weight of each cursor's term.
    weights: Vec<u32>,
    /// Upper bound of each cursor's term in the current window.
    bounds: Vec<u32>,
    /// Cursor indices in increasing order of window upper bound per posting (bound over document
    /// frequency): the non-essential ones first.
    order: Vec<usize>,
    /// `prefix[p]`: sum of the window upper bounds of cursors `order[..=p]`.
    prefix: Vec<u32>,
    /// The non-essential cursors in increasing order of their window upper bounds.
    probe: Vec<usize>,
    /// `probe_prefix[p]`: sum of the window upper bounds of cursors `probe[..=p]`.
    probe_prefix: Vec<u32>,
    /// Window accumulator: the essential score of each document of the window.
    scores: Box<[u32; WINDOW]>,
    /// The documents of the window with an essential posting, one bit each.
    touched: Box<[u64; WINDOW / 64]>,
    /// Doc ids of the candidates of the window, in increasing order.
    cand_docs: Box<[u32; WINDOW]>,
    /// Partial scores of the candidates.
    cand_scores: Box<[u32; WINDOW]>,
}

impl<'a> MaxScore<'a> {
    /// A MaxScore searcher over `index`.
    pub fn new(index: &'a Index) -> Self {
        MaxScore {
            index,
            topk: TopK::new(0),
            cursors: Vec::new(),
            weights: Vec::new(),
            bounds: Vec::new(),
            order: Vec::new(),
            prefix: Vec::new(),
            probe: Vec::new(),
            probe_prefix: Vec::new(),
            scores: Box::new([0; WINDOW]),
            touched: Box::new([0; WINDOW / 64]),
            cand_docs: Box::new([0; WINDOW]),
            cand_scores: Box::new([0; WINDOW]),
        }
    }

    /// Opens the cursors of the query terms that have postings.
    fn open(&mut self, query: &Query) -> Result<()> {
        self.cursors.clear();
        self.weights.clear();
        self.bounds.clear();
        self.order.clear();
        self.prefix.clear();
        self.probe.clear();
        self.probe_prefix.clear();
        for qt in &query.terms {
            let stats = self.index.term_stats(qt.term)?;
            if stats.df == 0 || qt.weight == 0 {
                continue;
            }
            self.order.push(self.cursors.len());
            self.cursors.push(PostingCursor::open(self.index, qt.term)?);
            self.weights.push(qt.weight);
            self.bounds.push(0);
            self.prefix.push(0);
            self.probe.push(0);
            self.probe_prefix.push(0);
        }
        Ok(())
    }

    fn run(
        &mut self,
        filter: Option<&DocFilter>,
        seed: u32,
    ) -> std::result::Result<(), PostingsError> {
        let cursors = &mut self.cursors[..];
        let weights = &self.weights[..];
        let bounds = &mut self.bounds[..];
        let order = &mut self.order[..];
        let prefix = &mut self.prefix[..];
        let probe = &mut self.probe[..];
        let probe_prefix = &mut self.probe_prefix[..];
        let mut window = Window {
            scores: &mut self.scores,
            touched: &mut self.touched,
            cand_docs: &mut self.cand_docs,
            cand_scores: &mut self.cand_scores,
        };
        let topk = &mut self.topk;
        let n = order.len();
        let mut threshold = seed;
        // Every doc id is below the number of documents (the cursors check it).
        let num_docs = self.index.num_docs();
        // Non-essential cursors: order[..ne] (none before the first outer window).
        let mut ne = 0;
        let mut start = cursors.iter().map(PostingCursor::doc).min().unwrap_or(END);
        while start < num_docs && n > 0 {
            if topk.tick() {
                return Ok(());
            }
            // The outer window ends after the first chunk end of the essential lists (of the last
            // window, or the list of the largest bound when there were none), but not before a
            // whole inner window.
            let mut end = END;
            for &i in &order[ne.min(n - 1)..] {
                let c = &mut cursors[i];
                c.block_max_geq(start.max(c.doc()));
                end = end.min(c.block_last_doc().saturating_add(1));
            }
            let end = end.max(start.saturating_add(WINDOW as u32));

            // Window upper bounds, sorted by bound per posting (insertion sort: the order changes
            // little between windows), and their prefix sums.
            for ((b, c), &w) in bounds.iter_mut().zip(cursors.iter_mut()).zip(weights) {
                *b = w.saturating_mul(u32::from(c.window_max(start, end)));
            }
            // bounds[a] / df[a] > bounds[i] / df[i]
            insertion_sort(&mut order[..n], |a, i| {
                u64::from(bounds[a]) * cursors[i].len() as u64
                    > u64::from(bounds[i]) * cursors[a].len() as u64
            });
            prefix_sums(order, bounds, prefix);
            ne = prefix.partition_point(|&s| s <= threshold);
            probe_order(&order[..ne], bounds, probe, probe_prefix);

            // Inner windows, each from the smallest doc id of the essential lists.
            for &i in &order[ne..] {
                cursors[i].next_geq(start)?;
            }
            while ne < n {
                let inner = order[ne..]
                    .iter()
                    .map(|&i| cursors[i].doc())
                    .min()
                    .unwrap_or(END);
                if inner >= end {
                    break;
                }
                if let Some(f) = filter {
                    // Documents the filter does not allow are left out a whole range at a time.
                    let allowed = next_allowed(f, inner);
                    if allowed == END {
                        return Ok(());
                    }
                    if allowed > inner {
                        let target = allowed.min(end);
                        for &i in &order[ne..] {
                            cursors[i].next_geq(target)?;
                        }
                        continue;
                    }
                }
                let inner_end = inner.saturating_add(WINDOW as u32).min(end);
                window.score(
                    inner,
                    inner_end,
                    cursors,
                    weights,
                    &order[ne..],
                    &probe[..ne],
                    &probe_prefix[..ne],
                    filter,
                    topk,
                    &mut threshold,
                )?;
                // A window is long enough (WINDOW documents) for a check after each.
                if topk.out_of_time() {
                    return Ok(());
                }
                // A higher threshold may leave fewer essential lists.
                let old = ne;
                while ne < n && prefix[ne] <= threshold {
                    ne += 1;
                }
                if ne != old {
                    probe_order(&order[..ne], bounds, probe, probe_prefix);
                }
            }

            // No posting lies between the window's end and the smallest doc id of the cursors.
            // (A non-essential cursor left behind keeps the next window at the end of this one.)
            let next = cursors.iter().map(PostingCursor::doc).min().unwrap_or(END);
            start = end.max(next);
        }
        Ok(())
    }
}

/// The scratch buffers of one inner window.
struct Window<'w> {
    /// The essential score of each document of the window.
    scores: &'w mut [u32; WINDOW],
    /// The documents of the window with an essential posting, one bit each.
    touched: &'w mut [u64; WINDOW / 64],
    /// Doc ids of the candidates, in increasing order.
    cand_docs: &'w mut [u32; WINDOW],
    /// Partial scores of the candidates.
    cand_scores: &'w mut [u32; WINDOW],
}

impl Window<'_> {
    /// Scores the documents `start..end` (at most [`WINDOW`] of them, none below the doc ids of
    /// the `essential` cursors): those lists term-at-a-time, then the non-essential ones, `probe`
    /// (in increasing order of bound, `probe_prefix` holding the prefix sums of the bounds), for
    /// the candidates that may still enter, offering the survivors to `topk`.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    fn score(
        &mut self,
        start: u32,
        end: u32,
        cursors: &mut [PostingCursor<'_>],
        weights: &[u32],
        essential: &[usize],
        probe: &[usize],
        probe_prefix: &[u32],
        filter: Option<&DocFilter>,
        topk: &mut TopK,
        threshold: &mut u32,
    ) -> std::result::Result<(), PostingsError> {
        let scores = &mut *self.scores;
        let touched = &mut *self.touched;
        let cand_docs = &mut *self.cand_docs;
        let cand_scores = &mut *self.cand_scores;
        // Essential lists, term-at-a-time into the window accumulator.
        for &i in essential {
            let w = weights[i];
            cursors[i].for_each_below(end, |doc, impact| {
                // `start <= doc < end`: the mask only spares the bounds check.
                let j = (doc - start) as usize % WINDOW;
                scores[j] = scores[j].saturating_add(w.saturating_mul(u32::from(impact)));
                touched[j / 64] |= 1 << (j % 64);
            })?;
        }
        // Candidates: the touched documents that may still enter (branch-free: the outcome
        // is unpredictable).
        let rest = probe_prefix.last().copied().unwrap_or(0);
        let mut n = 0;
        for (wi, word) in touched.iter_mut().enumerate() {
            let mut bits = std::mem::take(word);
            while bits != 0 {
                let j = wi * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let score = std::mem::take(&mut scores[j % WINDOW]);
                // At most `WINDOW` documents are touched: `n < WINDOW` here.
                cand_docs[n % WINDOW] = start + j as u32;
                cand_scores[n % WINDOW] = score;
                n += usize::from(score.saturating_add(rest) > *threshold);
            }
        }
        if let Some(f) = filter {
            let mut kept = 0;
            for q in 0..n {
                let doc = cand_docs[q];
                if f.contains(doc) {
                    cand_docs[kept] = doc;
                    cand_scores[kept] = cand_scores[q];
                    kept += 1;
                }
            }
            n = kept;
        }

        // Non-essential lists, largest bound first: drop the candidates that cannot enter even
        // with this term and the smaller ones, then probe the others.
        for (&i, &rest) in probe.iter().zip(probe_prefix).rev() {
            let mut kept = 0;
            for q in 0..n {
                let score = cand_scores[q];
                cand_docs[kept] = cand_docs[q];
                cand_scores[kept] = score;
                kept += usize::from(score.saturating_add(rest) > *threshold);
            }
            n = kept;
            if n == 0 {
                break;
            }
            let c = &mut cursors[i];
            let w = weights[i];
            for (&doc, score) in cand_docs[..n].iter().zip(&mut cand_scores[..n]) {
                c.next_geq(doc)?;
                let part = w.saturating_mul(u32::from(c.impact()));
                *score = score.saturating_add(if c.doc() == doc { part } else { 0 });
            }
        }
        for (&doc, &score) in cand_docs[..n].iter().zip(&cand_scores[..n]) {
            if score > *threshold && topk.push(doc, score) {
                *threshold = (*threshold).max(topk.threshold().unwrap_or(0));
            }
        }
        Ok(())
    }
}

/// Sorts the non-essential cursors `order` by window upper bound into `probe`, with the prefix
/// sums of their bounds.
fn probe_order(order: &[usize], bounds: &[u32], probe: &mut [usize], prefix: &mut [u32]) {
    let probe = &mut probe[..order.len()];
    probe.copy_from_slice(order);
    insertion_sort(probe, |a, i| bounds[a] > bounds[i]);
    prefix_sums(probe, bounds, prefix);
}

/// Sorts `order` in place by insertion, `after(a, b)` telling whether `a` belongs after `b`: the
/// orders sorted here change little between windows.
#[inline]
fn insertion_sort(order: &mut [usize], after: impl Fn(usize, usize) -> bool) {
    for p in 1..order.len() {
        let i = order[p];
        let mut q = p;
        while q > 0 && after(order[q - 1], i) {
            order[q] = order[q - 1];
            q -= 1;
        }
        order[q] = i;
    }
}

/// `prefix[j]`: the (saturating) sum of the bounds of `order[..=j]`.
#[inline]
fn prefix_sums(order: &[usize], bounds: &[u32], prefix: &mut [u32]) {
    let mut sum = 0u32;
    for (s, &i) in prefix.iter_mut().zip(order) {
        sum = sum.saturating_add(bounds[i]);
        *s = sum;
    }
}

/// The first doc id `>= doc` that `filter` allows ([`END`] when none).
pub(crate) fn next_allowed(filter: &DocFilter, doc: u32) -> u32 {
    let docs = filter.docs();
    let below = doc.checked_sub(1).map_or(0, |d| docs.rank(d));
    u32::try_from(below)
        .ok()
        .and_then(|n| docs.select(n))
        .unwrap_or(END)
}

impl Searcher for MaxScore<'_> {
    fn name(&self) -> &'static str {
        "maxscore"
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
        if result.is_err() {
            // The accumulator is only left dirty by an error in the middle of a window.
            self.scores.fill(0);
            self.touched.fill(0);
        }
        result.map_err(|e| Error::corrupt(self.index.path(), e.0))
    }
}
