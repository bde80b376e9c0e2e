//! Exhaustive term-at-a-time scoring: the ground truth for every other processor.

use bmp_index::{Error, Index, Result};

use crate::filter::allows;
use crate::simd;
use crate::{DocFilter, Query, Searcher, TopK};

/// Scores every posting of every query term into a dense accumulator.
pub struct Exhaustive<'a> {
    index: &'a Index,
    scores: Vec<u32>,
    /// The documents of one run of the accumulator that may enter, and their scores.
    out_docs: Vec<u32>,
    out_scores: Vec<u32>,
    topk: TopK,
}

/// Documents per run of the final scan: the k-th score is read again before each.
const SCAN_RUN: usize = 4096;

impl<'a> Exhaustive<'a> {
    /// An exhaustive searcher over `index`.
    pub fn new(index: &'a Index) -> Self {
        Exhaustive {
            index,
            scores: Vec::new(),
            out_docs: Vec::new(),
            out_scores: Vec::new(),
            topk: TopK::new(0),
        }
    }
}

impl Searcher for Exhaustive<'_> {
    fn name(&self) -> &'static str {
        "exhaustive"
    }

    fn topk(&mut self) -> &mut TopK {
        &mut self.topk
    }

    fn collect(
        &mut self,
        query: &Query,
        _k: usize,
        filter: Option<&DocFilter>,
        floor: u32,
    ) -> Result<()> {
        let num_docs = self.index.num_docs() as usize;
        if self.scores.len() != num_docs {
            self.scores = vec![0; num_docs];
        }
        let scores = &mut self.scores;
        let topk = &mut self.topk;
        let mut out_of_range = false;
        let mut accumulate = || -> Result<()> {
            for (i, qt) in query.terms.iter().enumerate() {
                // The deadline is checked between two lists (after the first).
                if i > 0 && topk.out_of_time() {
                    break;
                }
                let postings = self.index.postings(qt.term)?;
                let weight = qt.weight;
                postings
                    .for_each(|doc, impact| match scores.get_mut(doc as usize) {
                        Some(s) => *s = s.saturating_add(weight * u32::from(impact)),
                        None => out_of_range = true,
                    })
                    .map_err(|e| {
                        Error::corrupt(self.index.path(), format!("term {}: {}", qt.term, e.0))
                    })?;
            }
            Ok(())
        };
        if let Err(e) = accumulate() {
            // A corrupt list stops the search part way: leave no partial score to the next one.
            self.scores.fill(0);
            return Err(e);
        }
        // The documents that may enter are picked a run at a time, from the k-th score so far:
        // most of the accumulator is below it once the collector is full.
        let (out_docs, out_scores) = (&mut self.out_docs, &mut self.out_scores);
        out_docs.resize(SCAN_RUN + 16, 0);
        out_scores.resize(SCAN_RUN + 16, 0);
        for (r, run) in self.scores.chunks_mut(SCAN_RUN).enumerate() {
            let at_least = floor.max(1).max(self.topk.threshold().unwrap_or(0));
            let n = simd::take_at_least(run, at_least, out_docs, out_scores);
            let first = (r * SCAN_RUN) as u32;
            for (&i, &s) in out_docs.iter().zip(out_scores.iter()).take(n) {
                let doc = first + i;
                if allows(filter, doc) {
                    self.topk.push(doc, s);
                }
            }
        }
        if out_of_range {
            return Err(Error::corrupt(
                self.index.path(),
                "a posting refers to a document beyond the index",
            ));
        }
        Ok(())
    }
}
