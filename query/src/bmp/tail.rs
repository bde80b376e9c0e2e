//! The tail of a BMP search, term at a time.
//!
//! Scoring one block from the forward index costs a chain of cache misses per query term (about
//! a microsecond for a block of 8 documents and 18 terms), while a posting list streams its
//! documents at a few nanoseconds each. When many blocks are left whose bound still reaches the
//! k-th score (at large k, or where the bounds are loose, as on real text), they are cheaper to
//! score all at once from the posting lists: each query term's list is walked in doc-id order,
//! its 128-posting chunks that hold no document of a marked block are skipped on their headers
//! alone, and the postings of marked blocks are added into a dense accumulator. Every document
//! of a marked block gets its exact score, so the search stays rank-safe.

use bmp_index::format::CHUNK_LEN;
use bmp_index::{Error, Index, Result};

use crate::accumulator::DenseScores;
use crate::filter::allows;
use crate::simd;
use crate::{DocFilter, Query, TopK};

/// What scoring one block from the forward index costs, in units of one posting streamed from a
/// posting list: a search finishes term at a time once its blocks left, weighted by this,
/// outweigh the postings of its terms (see [`super::Bmp::with_block_cost`]).
pub const BLOCK_COST_IN_POSTINGS: usize = 300;

/// How many blocks a search is expected to score per hit wanted, at large k: a search
/// whose `k` times this many blocks outweigh its postings scores every posting instead (see
/// [`super::Bmp::with_blocks_per_hit`]). Chosen by measurement on the benchmark suite's four
/// collections (docs/BENCHMARKS.md): BMP scores 0.8 to 2.7 blocks per hit at k = 1000 there, and
/// 6 comes closest to the faster of the two ways per query at k = 30 to 1000.
pub const BLOCKS_PER_HIT: usize = 6;

/// Scores a set of blocks term at a time from the posting lists; keeps its buffers between
/// searches.
pub(crate) struct TermPass {
    /// The blocks to score.
    pub blocks: Vec<u32>,
    /// One bit per block: the blocks of `blocks` (all clear between passes).
    marked: Vec<u64>,
    /// One score per document (all zero between passes).
    dense: DenseScores,
    /// One decoded chunk of doc ids.
    buf: Box<[u32; CHUNK_LEN]>,
    /// The doc ids of one chunk's postings in marked blocks (16 more for whole-vector stores).
    kept_docs: Vec<u32>,
    /// Their impacts.
    kept_impacts: Vec<u32>,
}

impl Default for TermPass {
    fn default() -> Self {
        TermPass {
            blocks: Vec::new(),
            marked: Vec::new(),
            dense: DenseScores::default(),
            buf: Box::new([0; CHUNK_LEN]),
            kept_docs: vec![0; CHUNK_LEN + 16],
            kept_impacts: vec![0; CHUNK_LEN + 16],
        }
    }
}

/// Whether any block of `lo..=hi` is marked in `marked`.
#[inline]
fn any_marked(marked: &[u64], lo: u32, hi: u32) -> bool {
    let (wlo, whi) = ((lo / 64) as usize, (hi / 64) as usize);
    let Some(words) = marked.get(wlo..=whi.min(marked.len().saturating_sub(1))) else {
        return false;
    };
    let n = words.len();
    words.iter().enumerate().any(|(i, &w)| {
        let mut m = w;
        if i == 0 {
            m &= u64::MAX << (lo % 64);
        }
        if i + 1 == n && wlo + i == whi {
            m &= u64::MAX >> (63 - hi % 64);
        }
        m != 0
    })
}

impl TermPass {
    /// Scores every document of the blocks in [`TermPass::blocks`] with all the terms of `query`
    /// and offers those `filter` allows to `topk`; empties `blocks`.
    pub fn score(
        &mut self,
        index: &Index,
        query: &Query,
        filter: Option<&DocFilter>,
        topk: &mut TopK,
    ) -> Result<()> {
        let num_docs = index.num_docs() as usize;
        let words = (index.num_blocks() as usize).div_ceil(64);
        if self.marked.len() != words {
            self.marked = vec![0; words];
        }
        self.dense.prepare(index);
        for &b in &self.blocks {
            if let Some(w) = self.marked.get_mut((b / 64) as usize) {
                *w |= 1 << (b % 64);
            }
        }
        let result = self.accumulate(index, query, topk);
        if result.is_ok() {
            let bs = index.block_size();
            for &b in &self.blocks {
                let first = (b * bs) as usize;
                let end = (first + bs as usize).min(num_docs);
                for (doc, s) in (first..end).zip(&mut self.dense.scores[first.min(end)..end]) {
                    if *s > 0 {
                        if allows(filter, doc as u32) {
                            topk.push(doc as u32, *s);
                        }
                        *s = 0;
                    }
                }
            }
            for &b in &self.blocks {
                if let Some(w) = self.marked.get_mut((b / 64) as usize) {
                    *w = 0;
                }
            }
        } else {
            // A corrupt list stops the pass part way: leave nothing to the next one.
            self.dense.scores.fill(0);
            self.marked.fill(0);
        }
        self.blocks.clear();
        result
    }

    /// Scores every document with all the terms of `query` into the dense accumulator (split
    /// into `parts` ranges filled in parallel, with more than one), and offers those `filter`
    /// allows that score at least `floor` to `topk`, which holds no hit yet.
    pub fn score_all(
        &mut self,
        index: &Index,
        query: &Query,
        filter: Option<&DocFilter>,
        floor: u32,
        topk: &mut TopK,
        parts: usize,
    ) -> Result<()> {
        debug_assert!(topk.is_empty(), "every posting is scored before any block");
        if parts > 1 {
            self.dense.add_all_split(index, query, topk, parts)?;
        } else {
            self.dense.add_all(index, query, topk)?;
        }
        self.dense.offer(floor, filter, topk);
        Ok(())
    }

    /// Adds the postings of the marked blocks of every query term into `scores`.
    fn accumulate(&mut self, index: &Index, query: &Query, topk: &mut TopK) -> Result<()> {
        let bs = index.block_size();
        let shift = bs.is_power_of_two().then(|| bs.trailing_zeros());
        let marked = &self.marked[..];
        let scores = &mut self.dense.scores[..];
        let buf = &mut *self.buf;
        let (kept_docs, kept_impacts) = (&mut self.kept_docs[..], &mut self.kept_impacts[..]);
        for (i, qt) in query.terms.iter().enumerate() {
            // The deadline is checked between two lists (after the first).
            if i > 0 && topk.out_of_time() {
                break;
            }
            let list = index.postings(qt.term)?;
            let w = qt.weight;
            let mut first_doc = 0u32;
            for (c, h) in list.chunk_headers().iter().enumerate() {
                let (lo, hi) = match shift {
                    Some(s) => (first_doc >> s, h.last_doc >> s),
                    None => (first_doc / bs, h.last_doc / bs),
                };
                first_doc = h.last_doc.saturating_add(1);
                if !any_marked(marked, lo, hi) {
                    continue;
                }
                let (docs, impacts) = list.decode_chunk(c, buf).map_err(|e| {
                    Error::corrupt(index.path(), format!("term {}: {}", qt.term, e.0))
                })?;
                // Only the postings of marked blocks are added, so the scattered writes into the
                // accumulator are theirs alone (on real text at k = 1000 about 40% of them).
                let n = match shift {
                    Some(sh) => {
                        simd::keep_marked(docs, impacts, marked, sh, kept_docs, kept_impacts)
                    }
                    None => simd::keep_marked_by(
                        docs,
                        impacts,
                        marked,
                        |d| d / bs,
                        kept_docs,
                        kept_impacts,
                    ),
                };
                for (&d, &imp) in kept_docs.iter().zip(kept_impacts.iter()).take(n) {
                    if let Some(s) = scores.get_mut(d as usize) {
                        *s = s.wrapping_add(w.wrapping_mul(imp));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::any_marked;

    #[test]
    fn any_marked_looks_at_exactly_the_range() {
        let mut marked = vec![0u64; 4];
        marked[1] = 1 << 5; // block 69
        assert!(any_marked(&marked, 69, 69));
        assert!(any_marked(&marked, 0, 255));
        assert!(any_marked(&marked, 60, 70));
        assert!(!any_marked(&marked, 0, 68));
        assert!(!any_marked(&marked, 70, 255));
        assert!(!any_marked(&marked, 64, 68));
        assert!(any_marked(&marked, 64, 127));
        marked[3] = 1 << 63; // block 255
        assert!(any_marked(&marked, 200, 255));
        assert!(!any_marked(&marked, 128, 254));
        // Past the end: nothing is marked there.
        assert!(!any_marked(&marked, 256, 300));
    }
}
