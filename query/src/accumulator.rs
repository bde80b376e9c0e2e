//! A dense score accumulator: one score per document, filled term at a time from the posting
//! lists, and read back with one vector scan for the documents that can enter the top k.
//!
//! Exhaustive scoring is one fill and one scan; BMP's term pass uses the same two steps when it
//! scores every posting of the query.

use bmp_index::{Error, Index, Result};

use crate::filter::allows;
use crate::simd;
use crate::{DocFilter, Query, TopK};

/// Documents per run of the final scan: the k-th score is read again before each.
const SCAN_RUN: usize = 4096;

/// One score per document (all zero between searches), and the buffers of the final scan.
#[derive(Debug, Default)]
pub(crate) struct DenseScores {
    /// One score per document.
    pub scores: Vec<u32>,
    /// The documents of one run of the scan that may enter, and their scores.
    out_docs: Vec<u32>,
    out_scores: Vec<u32>,
}

impl DenseScores {
    /// Sizes the accumulator for `index` (all zero).
    pub fn prepare(&mut self, index: &Index) {
        let num_docs = index.num_docs() as usize;
        if self.scores.len() != num_docs {
            self.scores = vec![0; num_docs];
        }
    }

    /// Adds every posting of every query term, saturating. The deadline is checked between two
    /// lists (after the first). On an error nothing is left in the accumulator.
    pub fn add_all(&mut self, index: &Index, query: &Query, topk: &mut TopK) -> Result<()> {
        self.prepare(index);
        let scores = &mut self.scores;
        let mut out_of_range = false;
        let mut add = || -> Result<()> {
            for (i, qt) in query.terms.iter().enumerate() {
                if i > 0 && topk.out_of_time() {
                    break;
                }
                let postings = index.postings(qt.term)?;
                let weight = qt.weight;
                postings
                    .for_each(|doc, impact| match scores.get_mut(doc as usize) {
                        Some(s) => *s = s.saturating_add(weight * u32::from(impact)),
                        None => out_of_range = true,
                    })
                    .map_err(|e| {
                        Error::corrupt(index.path(), format!("term {}: {}", qt.term, e.0))
                    })?;
            }
            Ok(())
        };
        let result = add();
        if result.is_err() || out_of_range {
            // A corrupt list stops the search part way: leave no partial score to the next one.
            self.scores.fill(0);
        }
        result?;
        if out_of_range {
            return Err(Error::corrupt(
                index.path(),
                "a posting refers to a document beyond the index",
            ));
        }
        Ok(())
    }

    /// Offers every document scoring at least `floor` (and at least the k-th score so far) that
    /// `filter` allows to `topk`, and zeroes the accumulator. The scan goes a run of documents at
    /// a time, 16 scores per step where the CPU allows: once the collector is full, most of the
    /// accumulator is below its k-th score.
    pub fn offer(&mut self, floor: u32, filter: Option<&DocFilter>, topk: &mut TopK) {
        let (out_docs, out_scores) = (&mut self.out_docs, &mut self.out_scores);
        out_docs.resize(SCAN_RUN + 16, 0);
        out_scores.resize(SCAN_RUN + 16, 0);
        for (r, run) in self.scores.chunks_mut(SCAN_RUN).enumerate() {
            let at_least = floor.max(1).max(topk.threshold().unwrap_or(0));
            let n = simd::take_at_least(run, at_least, out_docs, out_scores);
            let first = (r * SCAN_RUN) as u32;
            for (&i, &s) in out_docs.iter().zip(out_scores.iter()).take(n) {
                let doc = first + i;
                if allows(filter, doc) {
                    topk.push(doc, s);
                }
            }
        }
    }
}
