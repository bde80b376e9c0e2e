//! The top-k collector shared by every processor: score descending, doc id ascending on ties.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use crate::deadline::{Deadline, CHECK_EVERY};

/// One result: an internal doc id and its integer score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hit {
    /// Internal doc id (position in the index).
    pub doc: u32,
    /// Sum of quantized query weight times impact.
    pub score: u32,
}

impl Hit {
    /// Result order: higher score first, then lower doc id.
    pub fn rank_cmp(&self, other: &Hit) -> Ordering {
        other
            .score
            .cmp(&self.score)
            .then_with(|| self.doc.cmp(&other.doc))
    }
}

/// A hit's rank as one integer, larger for a better hit: the score in the high half, the doc id
/// reversed in the low half (a lower doc id wins a tie).
#[inline(always)]
fn goodness(doc: u32, score: u32) -> u64 {
    u64::from(score) << 32 | u64::from(!doc)
}

/// The `(score, doc)` of a [`goodness`].
#[inline(always)]
fn hit_of(g: u64) -> (u32, u32) {
    ((g >> 32) as u32, !(g as u32))
}

/// Keeps the best `k` hits seen so far, and watches the search's [`Deadline`].
#[derive(Debug, Clone)]
pub struct TopK {
    k: usize,
    // Min-heap by "goodness" (score, then lower doc id is better), packed in one `u64` by
    // [`goodness`] so that a comparison is one instruction: the top is the worst hit kept.
    heap: BinaryHeap<Reverse<u64>>,
    deadline: Deadline,
    /// Loop steps counted by [`TopK::tick`] since the reset.
    steps: u32,
    /// Deadline checks made since the reset.
    checks: u32,
    /// Whether the search stopped at its deadline.
    stopped: bool,
}

impl TopK {
    /// A collector for the best `k` hits.
    pub fn new(k: usize) -> Self {
        TopK {
            k,
            heap: BinaryHeap::with_capacity(k.min(1 << 20) + 1),
            deadline: Deadline::None,
            steps: 0,
            checks: 0,
            stopped: false,
        }
    }

    /// Empties the collector and sets a new `k` for a new search (under the same deadline).
    pub fn reset(&mut self, k: usize) {
        self.k = k;
        self.heap.clear();
        self.steps = 0;
        self.checks = 0;
        self.stopped = false;
    }

    /// Sets the deadline of the searches to come.
    pub fn set_deadline(&mut self, deadline: Deadline) {
        self.deadline = deadline;
    }

    /// The deadline of the searches.
    pub fn deadline(&self) -> Deadline {
        self.deadline
    }

    /// Checks the deadline now: whether the search must stop (and it is then marked stopped).
    #[inline]
    pub fn out_of_time(&mut self) -> bool {
        if self.deadline.is_some() && !self.stopped {
            self.checks += 1;
            self.stopped = self.deadline.passed(self.checks);
        }
        self.stopped
    }

    /// Counts one step of a search loop (a block scored, a window or a document visited) and
    /// checks the deadline every [`CHECK_EVERY`] steps: whether the search must stop.
    #[inline]
    pub fn tick(&mut self) -> bool {
        if !self.deadline.is_some() {
            return false;
        }
        self.steps = self.steps.wrapping_add(1);
        self.steps.is_multiple_of(CHECK_EVERY) && self.out_of_time()
    }

    /// Whether the last search stopped at its deadline: its hits are then the best of the
    /// documents it scored, not the top-k.
    pub fn stopped(&self) -> bool {
        self.stopped
    }

    /// Marks the search stopped (when one of its parts, kept elsewhere, stopped).
    pub fn mark_stopped(&mut self) {
        self.stopped = true;
    }

    /// Offers a hit; returns whether it was kept. Hits with score 0 are never kept.
    #[inline]
    pub fn push(&mut self, doc: u32, score: u32) -> bool {
        if score == 0 || self.k == 0 {
            return false;
        }
        let g = goodness(doc, score);
        if self.heap.len() < self.k {
            self.heap.push(Reverse(g));
            return true;
        }
        let mut worst = self.heap.peek_mut().expect("heap is full");
        if g > worst.0 {
            *worst = Reverse(g);
            true
        } else {
            false
        }
    }

    /// The score a new hit must reach to enter once the collector is full (it enters with an
    /// equal score only with a lower doc id); `None` while fewer than `k` hits are kept.
    pub fn threshold(&self) -> Option<u32> {
        if self.heap.len() < self.k {
            None
        } else {
            self.heap.peek().map(|&Reverse(g)| hit_of(g).0)
        }
    }

    /// The worst kept hit as `(score, doc)` once the collector is full: a new hit enters only
    /// with a higher score, or the same score and a lower doc id.
    pub fn worst(&self) -> Option<(u32, u32)> {
        if self.heap.len() < self.k {
            None
        } else {
            self.heap.peek().map(|&Reverse(g)| hit_of(g))
        }
    }

    /// Number of hits kept.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no hit is kept.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// The kept hits in result order, leaving the collector empty.
    pub fn drain_sorted(&mut self) -> Vec<Hit> {
        let mut hits: Vec<Hit> = self
            .heap
            .drain()
            .map(|Reverse(g)| {
                let (score, doc) = hit_of(g);
                Hit { doc, score }
            })
            .collect();
        hits.sort_unstable_by(Hit::rank_cmp);
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ties_keep_lower_doc_ids() {
        let mut t = TopK::new(2);
        for doc in [5, 3, 9, 1] {
            t.push(doc, 10);
        }
        assert_eq!(
            t.drain_sorted(),
            vec![Hit { doc: 1, score: 10 }, Hit { doc: 3, score: 10 }]
        );
    }

    #[test]
    fn zero_scores_and_k_zero() {
        let mut t = TopK::new(3);
        assert!(!t.push(1, 0));
        assert!(t.is_empty());
        let mut t = TopK::new(0);
        assert!(!t.push(1, 5));
        assert_eq!(t.threshold(), None.or(Some(0)).filter(|_| false));
    }

    proptest! {
        #[test]
        fn matches_full_sort(scores in proptest::collection::vec(0u32..20, 0..200), k in 1usize..50) {
            let mut t = TopK::new(k);
            for (d, &s) in scores.iter().enumerate() {
                t.push(d as u32, s);
            }
            let mut all: Vec<Hit> = scores.iter().enumerate()
                .filter(|(_, &s)| s > 0)
                .map(|(d, &s)| Hit { doc: d as u32, score: s }).collect();
            all.sort_by(Hit::rank_cmp);
            all.truncate(k);
            prop_assert_eq!(t.drain_sorted(), all);
        }
    }
}
