//! Top-k query processors over a bmp index.
//!
//! Every processor implements [`Searcher`] and returns the same top-k when run rank-safe: hits in
//! descending score, ties broken by ascending internal doc id, only documents with a score above
//! zero. [`exhaustive`] is the ground truth the others are tested against. Scores are integer sums
//! of quantized query weight times `u8` impact (see [`bmp_index::quantize`]), computed in `u32`.

mod accumulator;
pub mod blocks;
pub mod bmp;
pub mod bmw;
pub mod chamfer;
pub mod cursor;
pub mod deadline;
pub mod exhaustive;
pub mod filter;
pub mod maxscore;
pub mod query;
pub mod segments;
pub mod simd;
pub mod sp;
pub mod spec;
pub mod topk;

pub use deadline::Deadline;
pub use filter::DocFilter;
pub use query::{Query, QueryTerm};
pub use spec::{AlgorithmInfo, ParamInfo, SearchSpec, SpecError, ALGORITHMS};
pub use topk::{Hit, TopK};

/// A top-k query processor bound to one index. Processors keep their scratch buffers between
/// queries, so one instance per thread answers queries without reallocating.
///
/// A processor implements [`Searcher::collect`], which offers documents to its collector
/// ([`Searcher::topk`]); the provided [`Searcher::search_filtered`] does what every search
/// shares around it: resetting the collector (and the statistics), answering nothing for
/// `k == 0` or a query without terms or past the deadline, and draining the collector in result
/// order.
///
/// A search stops at its [`Deadline`] ([`Searcher::set_deadline`]; none by default): it then
/// returns the best hits of the documents it scored, and [`Searcher::stopped`] says so.
pub trait Searcher: Send {
    /// The algorithm's name.
    fn name(&self) -> &'static str;

    /// The processor's collector.
    fn topk(&mut self) -> &mut TopK;

    /// Offers the documents that may enter the top `k` of `query` (only those `filter` allows)
    /// to [`Searcher::topk`], which [`Searcher::search_above`] has reset to `k`. Documents
    /// scoring below `floor` need not be offered (the processor may prune with it from the
    /// start); those scoring at least `floor` are offered as without it. Called only with
    /// `k >= 1` and at least one query term. Every few steps it checks the deadline
    /// ([`TopK::tick`], [`TopK::out_of_time`]) and returns early once it has passed.
    fn collect(
        &mut self,
        query: &Query,
        k: usize,
        filter: Option<&DocFilter>,
        floor: u32,
    ) -> bmp_index::Result<()>;

    /// Sets the deadline of the searches to come ([`Deadline::None`] for none).
    fn set_deadline(&mut self, deadline: Deadline) {
        self.topk().set_deadline(deadline);
    }

    /// Whether the last search stopped at its deadline: its hits are then the best of the
    /// documents it scored, not necessarily the top-k.
    fn stopped(&mut self) -> bool {
        self.topk().stopped()
    }

    /// Forgets the last search's statistics; called at the start of every search.
    fn reset_stats(&mut self) {}

    /// The top `k` documents for `query`: score descending, doc id ascending on ties, score > 0.
    fn search(&mut self, query: &Query, k: usize) -> bmp_index::Result<Vec<Hit>> {
        self.search_filtered(query, k, None)
    }

    /// Like [`Searcher::search`], over only the documents `filter` allows (every document when
    /// `None`): the unfiltered ranking restricted to those documents, cut at `k`.
    fn search_filtered(
        &mut self,
        query: &Query,
        k: usize,
        filter: Option<&DocFilter>,
    ) -> bmp_index::Result<Vec<Hit>> {
        self.search_above(query, k, filter, 0)
    }

    /// Like [`Searcher::search_filtered`], when only documents scoring at least `floor` matter
    /// (a score that `k` hits found elsewhere already reach, as in a search over several
    /// segments): every such document of the top `k` is returned; documents scoring below
    /// `floor` may be missing.
    fn search_above(
        &mut self,
        query: &Query,
        k: usize,
        filter: Option<&DocFilter>,
        floor: u32,
    ) -> bmp_index::Result<Vec<Hit>> {
        self.topk().reset(k);
        self.reset_stats();
        if k == 0 || query.terms.is_empty() || self.topk().out_of_time() {
            return Ok(Vec::new());
        }
        self.collect(query, k, filter, floor)?;
        Ok(self.topk().drain_sorted())
    }

    /// What the last search did, for the processors that work block by block (`None` for the
    /// others).
    fn stats(&self) -> Option<SearchStats> {
        None
    }
}

/// What one search of a block-at-a-time processor did: where its time went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SearchStats {
    /// Blocks scored from the forward index.
    pub scored_blocks: u32,
    /// Superblocks whose block bounds were computed (superblock pruning only).
    pub expanded_superblocks: u32,
    /// The threshold the search started from (from the stored k-th impacts; 0 when filtered).
    pub initial_threshold: u32,
    /// The k-th score at the end (0 with fewer than k hits).
    pub final_threshold: u32,
}
