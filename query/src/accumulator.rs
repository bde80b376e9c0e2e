//! A dense score accumulator: one score per document, filled term at a time from the posting
//! lists, and read back with one vector scan for the documents that can enter the top k.
//!
//! Exhaustive scoring is one fill and one scan; BMP's term pass uses the same two steps when it
//! scores every posting of the query.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use bmp_index::format::CHUNK_LEN;
use bmp_index::postings::PostingList;
use bmp_index::{Error, Index, Result};

use crate::filter::allows;
use crate::simd;
use crate::{DocFilter, Query, TopK};

/// Documents per run of the final scan: the k-th score is read again before each.
const SCAN_RUN: usize = 4096;

/// Ranges of documents per thread in [`DenseScores::add_all_split`]: enough for the calling
/// thread to go on while a helper wakes up, few enough that re-reading the chunk at each range's
/// start (one per list) stays small.
const RANGES_PER_PART: usize = 4;

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

    /// [`DenseScores::add_all`] on `parts` threads: the documents are cut into
    /// [`RANGES_PER_PART`] times `parts` ranges, disjoint slices of the accumulator, each filled
    /// from every posting list by whichever thread takes it next (the calling thread, which
    /// checks the deadline between two lists and then stops the others, and `parts - 1` tasks
    /// on rayon's pool). A helper thread may take a while to wake up; the calling thread starts
    /// at once and takes the ranges it has not taken yet. The sums are the same as one thread's.
    pub fn add_all_split(
        &mut self,
        index: &Index,
        query: &Query,
        topk: &mut TopK,
        parts: usize,
    ) -> Result<()> {
        self.prepare(index);
        let num_docs = self.scores.len();
        let range_len = num_docs.div_ceil(parts.max(1) * RANGES_PER_PART).max(1);
        let lists: Vec<(PostingList<'_>, u32, u32)> = query
            .terms
            .iter()
            .map(|qt| Ok((index.postings(qt.term)?, qt.weight, qt.term)))
            .collect::<Result<_>>()?;
        let ranges: Vec<Mutex<Option<&mut [u32]>>> = self
            .scores
            .chunks_mut(range_len)
            .map(|r| Mutex::new(Some(r)))
            .collect();
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let work = |mut topk: Option<&mut TopK>| -> std::result::Result<(), String> {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(range) = ranges.get(i) else {
                    return Ok(());
                };
                let slice = range.lock().map_err(|_| "a scoring task failed")?.take();
                if let Some(slice) = slice {
                    add_range(
                        &lists,
                        i * range_len,
                        slice,
                        num_docs,
                        &stop,
                        topk.as_deref_mut(),
                    )?;
                }
            }
        };
        let mut results: Vec<std::result::Result<(), String>> = Vec::new();
        results.resize_with(parts.max(1), || Ok(()));
        let (first, rest) = results.split_at_mut(1);
        let work = &work;
        // The closure runs on the calling thread (`rayon::scope` would hand it to the pool).
        rayon::in_place_scope(|s| {
            for r in rest.iter_mut() {
                s.spawn(move |_| *r = work(None));
            }
            first[0] = work(Some(topk));
        });
        if let Some(message) = results.into_iter().find_map(|r| r.err()) {
            // A corrupt list stops the search part way: leave no partial score to the next one.
            self.scores.fill(0);
            return Err(Error::corrupt(index.path(), message));
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

/// Adds the postings of `lists` (each with its query weight and term id) whose document lies in
/// `first..first + scores.len()` into `scores`, saturating; a posting at or past `num_docs` is an
/// error. `topk`, for the range that checks the deadline: past it, or once `stop` is set, no
/// further list is added.
fn add_range(
    lists: &[(PostingList<'_>, u32, u32)],
    first: usize,
    scores: &mut [u32],
    num_docs: usize,
    stop: &AtomicBool,
    mut topk: Option<&mut TopK>,
) -> std::result::Result<(), String> {
    let (lo, hi) = (first as u64, (first + scores.len()) as u64);
    let mut buf = [0u32; CHUNK_LEN];
    for (i, &(list, weight, term)) in lists.iter().enumerate() {
        if i > 0 {
            if let Some(t) = topk.as_deref_mut() {
                if t.out_of_time() {
                    stop.store(true, Ordering::Relaxed);
                }
            }
            if stop.load(Ordering::Relaxed) {
                break;
            }
        }
        let headers = list.chunk_headers();
        // The first chunk that may hold a document of the range.
        let start = headers.partition_point(|h| u64::from(h.last_doc) < lo);
        for (c, header) in headers.iter().enumerate().skip(start) {
            let (docs, impacts) = list
                .decode_chunk(c, &mut buf)
                .map_err(|e| format!("term {term}: {}", e.0))?;
            for (&d, &imp) in docs.iter().zip(impacts) {
                let d = u64::from(d);
                if d >= lo && d < hi {
                    let s = &mut scores[(d - lo) as usize];
                    *s = s.saturating_add(weight * u32::from(imp));
                } else if d >= num_docs as u64 {
                    return Err("a posting refers to a document beyond the index".into());
                }
            }
            if u64::from(header.last_doc) >= hi {
                break;
            }
        }
    }
    Ok(())
}
