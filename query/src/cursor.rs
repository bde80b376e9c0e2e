//! A document-at-a-time cursor over one posting list, for the dynamic-pruning processors.
//!
//! The cursor decodes one 128-id chunk at a time, lazily, into a buffer it owns, and uses the
//! chunk headers (last doc id and max impact per chunk) to skip whole chunks without decoding
//! them. Past the last posting its doc id is the sentinel [`END`] (`u32::MAX`).
//!
//! Besides the deep position (the current posting), the cursor keeps a *shallow* position: the
//! chunk that [`PostingCursor::block_max_geq`] (or [`PostingCursor::window_max`]) last moved to,
//! read from the headers only, which is what Block-Max WAND and MaxScore use for block and window
//! upper bounds.
//!
//! Term-at-a-time scoring of a doc-id range goes through [`PostingCursor::for_each_below`], which
//! runs over the decoded chunks without a call per posting.
//!
//! Every decoded chunk is checked: strictly increasing doc ids that agree with the chunk headers,
//! all below the number of documents (see [`PostingList::decode_chunk`]), and impacts no larger
//! than the chunk's and the term's maxima. A failed check is a [`PostingsError`] naming the term;
//! after it the cursor is left at [`END`].

use bmp_index::format::{ChunkHeader, CHUNK_LEN};
use bmp_index::postings::{PostingList, PostingsError};
use bmp_index::{Error, Index, Result};

/// The doc id of a cursor past its last posting.
pub const END: u32 = u32::MAX;

/// A cursor over the postings of one term. Moves only forward.
///
/// Cursors are meant to live in a pool (a `Vec`) owned by a searcher and reused across queries:
/// the decode buffer is inline, so building one does not allocate.
#[derive(Clone)]
#[repr(C)] // the fields of the hot paths first, in one cache line; the buffer last
pub struct PostingCursor<'a> {
    /// The current doc id, or [`END`].
    doc: u32,
    /// Last doc id of the decoded chunk.
    chunk_last: u32,
    /// Position in the decoded chunk.
    pos: usize,
    /// Number of doc ids in the decoded chunk.
    len: usize,
    /// Impacts of the decoded chunk (empty once past the end).
    impacts: &'a [u8],
    /// The decoded chunk (`headers.len()` once past the end).
    chunk: usize,
    /// The chunk of the shallow position.
    shallow: usize,
    headers: &'a [ChunkHeader],
    list: PostingList<'a>,
    /// The term id, for error messages.
    term: u32,
    /// The term's largest impact.
    max_impact: u8,
    buf: [u32; CHUNK_LEN],
}

impl std::fmt::Debug for PostingCursor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostingCursor")
            .field("term", &self.term)
            .field("df", &self.list.len())
            .field("chunk", &self.chunk)
            .field("pos", &self.pos)
            .field("doc", &self.doc)
            .field("shallow", &self.shallow)
            .finish()
    }
}

impl<'a> PostingCursor<'a> {
    /// A cursor on the first posting of term `term` of `index` (at [`END`] when the term has no
    /// posting). Errors when the term id is out of range or the first chunk is corrupt.
    pub fn open(index: &'a Index, term: u32) -> Result<Self> {
        let max_impact = index.term_stats(term)?.max_impact;
        let list = index.postings(term)?;
        PostingCursor::new(term, list, max_impact).map_err(|e| Error::corrupt(index.path(), e.0))
    }

    /// A cursor on the first posting of `list`, the postings of term `term` whose largest impact
    /// is `max_impact`.
    pub fn new(
        term: u32,
        list: PostingList<'a>,
        max_impact: u8,
    ) -> std::result::Result<Self, PostingsError> {
        let mut cursor = PostingCursor {
            list,
            headers: list.chunk_headers(),
            term,
            max_impact,
            chunk: 0,
            pos: 0,
            len: 0,
            doc: END,
            chunk_last: END,
            impacts: &[],
            shallow: 0,
            buf: [0; CHUNK_LEN],
        };
        if cursor.headers.is_empty() {
            cursor.set_end();
        } else {
            cursor.load(0)?;
            cursor.doc = cursor.buf[0];
        }
        Ok(cursor)
    }

    /// The term id.
    pub fn term(&self) -> u32 {
        self.term
    }

    /// The term's largest impact (from the term statistics).
    pub fn max_impact(&self) -> u8 {
        self.max_impact
    }

    /// Number of postings of the list.
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether the list has no posting.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The current doc id, or [`END`] past the last posting.
    #[inline(always)]
    pub fn doc(&self) -> u32 {
        self.doc
    }

    /// The impact of the current posting (0 past the end).
    #[inline(always)]
    pub fn impact(&self) -> u8 {
        self.impacts.get(self.pos).copied().unwrap_or(0)
    }

    /// Moves to the next posting (or to [`END`]).
    // Not an `Iterator`: it moves the cursor and reports decoding errors, yielding nothing.
    #[allow(clippy::should_implement_trait)]
    #[inline]
    pub fn next(&mut self) -> std::result::Result<(), PostingsError> {
        let pos = self.pos + 1;
        if pos < self.len {
            self.pos = pos;
            // `len <= CHUNK_LEN`: the mask only spares the bounds check.
            self.doc = self.buf[pos % CHUNK_LEN];
            Ok(())
        } else if self.doc == END {
            Ok(())
        } else {
            self.next_chunk()
        }
    }

    /// Moves to the first posting with doc id `>= target` (or to [`END`]); does nothing when the
    /// current doc id is already `>= target`. Chunks that end before `target` are skipped by
    /// their headers, without being decoded.
    #[inline]
    pub fn next_geq(&mut self, target: u32) -> std::result::Result<(), PostingsError> {
        if target <= self.doc {
            return Ok(());
        }
        if target <= self.chunk_last {
            // In the decoded chunk, after the current position; its last id is >= target.
            let start = self.pos + 1;
            // Short moves are the common case: try the next posting before a binary search.
            if let Some(&doc) = self
                .buf
                .get(start)
                .filter(|&&d| start < self.len && d >= target)
            {
                self.pos = start;
                self.doc = doc;
                return Ok(());
            }
            let start = start + 1;
            let rest = self.buf.get(start..self.len).unwrap_or(&[]);
            let pos = start + rest.partition_point(|&d| d < target);
            if let Some(&doc) = self.buf.get(pos).filter(|_| pos < self.len) {
                self.pos = pos;
                self.doc = doc;
                return Ok(());
            }
        }
        self.seek(target)
    }

    /// Calls `f(doc, impact)` for every posting from the current one up to (excluding) the first
    /// with doc id `>= end`, and moves there (or to [`END`]). Does nothing when the current doc id
    /// is already `>= end`. This is the term-at-a-time path: it runs over the decoded chunks
    /// without a per-posting call of [`Self::next`].
    #[inline]
    pub fn for_each_below(
        &mut self,
        end: u32,
        mut f: impl FnMut(u32, u8),
    ) -> std::result::Result<(), PostingsError> {
        while self.doc < end {
            let start = self.pos;
            let len = self.len;
            let docs = self.buf.get(start..len).unwrap_or(&[]);
            let impacts = self.impacts.get(start..len).unwrap_or(&[]);
            if self.chunk_last < end {
                for (&doc, &impact) in docs.iter().zip(impacts) {
                    f(doc, impact);
                }
            } else {
                for (i, (&doc, &impact)) in docs.iter().zip(impacts).enumerate() {
                    if doc >= end {
                        self.pos = start + i;
                        self.doc = doc;
                        return Ok(());
                    }
                    f(doc, impact);
                }
            }
            self.next_chunk()?;
        }
        Ok(())
    }

    /// An upper bound on the impact of every posting from the current one on with a doc id in
    /// `start..end`: the largest max impact of the chunks that may hold one, read from the
    /// headers (0 when the current doc id is already `>= end`). Moves the shallow position to
    /// the first chunk whose last doc id is `>= start` (never backwards, as
    /// [`Self::block_max_geq`]), so calls must come with non-decreasing `start`.
    #[inline]
    pub fn window_max(&mut self, start: u32, end: u32) -> u8 {
        if self.doc >= end {
            return 0;
        }
        let h = self.headers;
        let mut s = self.shallow.max(self.chunk);
        while s < h.len() && h[s].last_doc < start {
            s += 1;
        }
        self.shallow = s;
        let mut max = 0;
        for c in h.get(s..).unwrap_or(&[]) {
            max = max.max(c.max_impact);
            if c.last_doc >= end.saturating_sub(1) {
                break;
            }
        }
        max
    }

    /// Moves the shallow position to the chunk that would hold `target` (the first chunk whose
    /// last doc id is `>= target`), reading headers only, and returns that chunk's max impact:
    /// an upper bound on the impact of every posting with a doc id in `target..=`
    /// [`Self::block_last_doc`]. Returns 0 (and the block ends at [`END`]) when no posting is
    /// `>= target`. The shallow position never moves backwards, and never before the chunk of
    /// the current posting.
    #[inline]
    pub fn block_max_geq(&mut self, target: u32) -> u8 {
        let n = self.headers.len();
        let mut s = self.shallow.max(self.chunk);
        while s < n && self.headers[s].last_doc < target {
            s += 1;
        }
        self.shallow = s;
        self.headers.get(s).map_or(0, |h| h.max_impact)
    }

    /// The max impact of the chunk at the shallow position (0 past the end).
    #[inline]
    pub fn block_max(&self) -> u8 {
        self.headers.get(self.shallow).map_or(0, |h| h.max_impact)
    }

    /// The last doc id of the chunk at the shallow position ([`END`] past the end).
    #[inline]
    pub fn block_last_doc(&self) -> u32 {
        self.headers.get(self.shallow).map_or(END, |h| h.last_doc)
    }

    /// Decodes the chunk after the current one and moves to its first posting.
    #[cold]
    #[inline(never)]
    fn next_chunk(&mut self) -> std::result::Result<(), PostingsError> {
        let c = self.chunk + 1;
        if c >= self.headers.len() {
            self.set_end();
            return Ok(());
        }
        self.load(c)?;
        self.pos = 0;
        self.doc = self.buf[0];
        Ok(())
    }

    /// Moves to the first posting `>= target` in a later chunk, found with a galloping search
    /// over the chunk headers.
    #[inline(never)]
    fn seek(&mut self, target: u32) -> std::result::Result<(), PostingsError> {
        let mut from = self.chunk + 1;
        loop {
            let c = self.find_chunk(from, target);
            if c >= self.headers.len() {
                self.set_end();
                return Ok(());
            }
            self.load(c)?;
            let pos = self.buf[..self.len].partition_point(|&d| d < target);
            if pos < self.len {
                self.pos = pos;
                self.doc = self.buf[pos];
                return Ok(());
            }
            // Only reachable with headers out of order, which the decoded chunk disproved.
            from = c + 1;
        }
    }

    /// The first chunk at index `>= from` whose last doc id is `>= target` (`headers.len()` when
    /// none), by galloping then binary search.
    #[inline]
    fn find_chunk(&self, from: usize, target: u32) -> usize {
        let h = self.headers;
        let n = h.len();
        let mut lo = from;
        let mut hi = from;
        let mut step = 1;
        while hi < n && h[hi].last_doc < target {
            lo = hi + 1;
            hi += step;
            step *= 2;
        }
        let hi = hi.min(n);
        lo + h[lo..hi].partition_point(|c| c.last_doc < target)
    }

    /// Decodes chunk `c` into the buffer and checks it; on error the cursor is left at [`END`].
    fn load(&mut self, c: usize) -> std::result::Result<(), PostingsError> {
        match self.try_load(c) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.set_end();
                Err(PostingsError(format!("term {}: {}", self.term, e.0)))
            }
        }
    }

    fn try_load(&mut self, c: usize) -> std::result::Result<(), PostingsError> {
        let header = self.headers[c];
        let (docs, impacts) = self.list.decode_chunk(c, &mut self.buf)?;
        // decode_chunk checks the last id against the header and the number of documents, and
        // the first id against the previous chunk; packed deltas may still be 0 or wrap around.
        // Branch-free folds, which vectorize.
        let increasing = docs
            .iter()
            .zip(docs.get(1..).unwrap_or(&[]))
            .fold(true, |ok, (a, b)| ok & (a < b));
        if !increasing {
            return Err(PostingsError(format!("chunk {c}: doc ids not increasing")));
        }
        let max = impacts.iter().copied().fold(0u8, u8::max);
        if max > header.max_impact || header.max_impact > self.max_impact {
            return Err(PostingsError(format!(
                "chunk {c}: impacts exceed the chunk or term maximum"
            )));
        }
        self.len = docs.len();
        self.impacts = impacts;
        self.chunk = c;
        self.chunk_last = header.last_doc;
        Ok(())
    }

    fn set_end(&mut self) {
        self.chunk = self.headers.len();
        self.shallow = self.shallow.max(self.chunk);
        self.pos = 0;
        self.len = 0;
        self.doc = END;
        self.chunk_last = END;
        self.impacts = &[];
    }
}
