//! Exhaustive term-at-a-time scoring: the ground truth for every other processor.

use bmp_index::{Index, Result};

use crate::accumulator::DenseScores;
use crate::{DocFilter, Query, Searcher, TopK};

/// Scores every posting of every query term into a dense accumulator.
pub struct Exhaustive<'a> {
    index: &'a Index,
    scores: DenseScores,
    topk: TopK,
}

impl<'a> Exhaustive<'a> {
    /// An exhaustive searcher over `index`.
    pub fn new(index: &'a Index) -> Self {
        Exhaustive {
            index,
            scores: DenseScores::default(),
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
        self.scores.add_all(self.index, query, &mut self.topk)?;
        self.scores.offer(floor, filter, &mut self.topk);
        Ok(())
    }
}
