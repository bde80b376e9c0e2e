//! Top-k query processors over a bmp index.
//!
//! Every processor implements [`Searcher`] and returns the same top-k when run rank-safe: hits in
//! descending score, ties broken by ascending internal doc id, only documents with a score above
//! zero. [`exhaustive`] is the ground truth the others are tested against. Scores are integer sums
//! of quantized query weight times `u8` impact (see [`bmp_index::quantize`]), computed in `u32`.

pub mod blocks;
pub mod bmp;
pub mod bmw;
pub mod chamfer;
pub mod cursor;
pub mod exhaustive;
pub mod filter;
pub mod maxscore;
pub mod query;
pub mod simd;
pub mod sp;
pub mod spec;
pub mod topk;

use std::fmt;
use std::str::FromStr;

use bmp_index::Index;

pub use filter::DocFilter;
pub use query::{Query, QueryTerm};
pub use spec::SearchSpec;
pub use topk::{Hit, TopK};

/// A top-k query processor bound to one index. Processors keep their scratch buffers between
/// queries, so one instance per thread answers queries without reallocating.
pub trait Searcher: Send {
    /// The algorithm's name.
    fn name(&self) -> &'static str;

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
    ) -> bmp_index::Result<Vec<Hit>>;

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

/// The available query processors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Term-at-a-time scoring of every posting of every query term.
    Exhaustive,
    /// Block-Max Pruning, rank-safe (see [`bmp`]).
    Bmp,
    /// MaxScore, document-at-a-time (see [`maxscore`]).
    MaxScore,
    /// Block-Max WAND over the posting-list chunks (see [`bmw`]).
    Bmw,
    /// Superblock pruning over BMP's blocks, rank-safe (see [`sp`]).
    Sp,
}

impl Algorithm {
    /// Every algorithm.
    pub const ALL: [Algorithm; 5] = [
        Algorithm::Exhaustive,
        Algorithm::Bmp,
        Algorithm::MaxScore,
        Algorithm::Bmw,
        Algorithm::Sp,
    ];

    /// The algorithm's name, as accepted by [`FromStr`].
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Exhaustive => "exhaustive",
            Algorithm::Bmp => "bmp",
            Algorithm::MaxScore => "maxscore",
            Algorithm::Bmw => "bmw",
            Algorithm::Sp => "sp",
        }
    }

    /// A searcher for this algorithm over `index`.
    pub fn searcher(self, index: &Index) -> Box<dyn Searcher + '_> {
        match self {
            Algorithm::Exhaustive => Box::new(exhaustive::Exhaustive::new(index)),
            Algorithm::Bmp => Box::new(bmp::Bmp::new(index, bmp::BmpParams::default())),
            Algorithm::MaxScore => Box::new(maxscore::MaxScore::new(index)),
            Algorithm::Bmw => Box::new(bmw::Bmw::new(index)),
            Algorithm::Sp => Box::new(sp::Sp::new(index, sp::SpParams::default())),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Algorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .iter()
            .copied()
            .find(|a| a.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
                format!("unknown algorithm {s:?} (available: {})", names.join(", "))
            })
    }
}
