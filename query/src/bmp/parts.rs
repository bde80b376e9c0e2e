//! One BMP search over several indexes (the segments of a collection): every segment's blocks in
//! descending bound, merged into one descending order across the segments, scored into one
//! top-k. The blocks scored are those a single index of all the documents would score with the
//! same block bounds, whatever the number of segments.
//!
//! The documents are numbered one segment after the other (segment `i`'s document `d` is
//! `base_i + d`), which is also the tie order. The initial threshold of every segment holds for
//! the whole (k documents of that segment reach it), so the largest one bounds every segment's
//! candidates from below. Each segment keeps its own block pipeline; the segment whose next
//! ready block has the highest bound (the lowest first document among equals) goes next, and the
//! search stops when that bound cannot beat the shared k-th score.

use bmp_index::Result;

use super::{accumulate, mask_bounds, Bmp};
use crate::blocks::{initial_threshold, scaled, Walk};
use crate::{DocFilter, Query, TopK};

/// One segment of a search over several.
pub(crate) struct Part<'p, 'a> {
    /// The segment's BMP searcher (its buffers are used, its own top-k is not).
    pub bmp: &'p mut Bmp<'a>,
    /// The query resolved against the segment.
    pub query: &'p Query,
    /// The segment's allowed (live) documents, if not all.
    pub filter: Option<&'p DocFilter>,
    /// The number of the segment's first document.
    pub base: u32,
}

/// Where one segment's walk over its blocks stands.
struct Cursor {
    walk: Walk,
    walked: bool,
    /// The segment's next block, prepared by its pipeline; `None` once it has no more.
    ready: Option<u32>,
}

/// Brings the next block of `bmp`'s walk out of its pipeline (feeding the walk's next block in),
/// `None` when the segment has no block left that can beat `theta`.
fn advance(bmp: &mut Bmp<'_>, cursor: &mut Cursor, query: &Query, theta: u32) -> Option<u32> {
    let nblocks = bmp.index.num_blocks() as usize;
    let alpha = bmp.params.alpha;
    let w = &mut bmp.workers[0];
    loop {
        let next = if cursor.walked {
            None
        } else {
            let n = w
                .buckets
                .next(&mut cursor.walk, &bmp.bounds[..nblocks], |top| {
                    scaled(u32::try_from(top).unwrap_or(u32::MAX), alpha) >= theta
                });
            cursor.walked = n.is_none();
            n
        };
        if let Some(block) = w.scorer.step(next, query) {
            return Some(block);
        }
        if !w.scorer.busy() {
            return None;
        }
    }
}

/// The top `k` over `parts` into `topk` (documents numbered from each part's base).
pub(crate) fn search_parts(parts: &mut [Part<'_, '_>], k: usize, topk: &mut TopK) -> Result<()> {
    topk.reset(k);
    if k == 0 || topk.out_of_time() {
        return Ok(());
    }
    // 1. Every segment's block bounds; the largest initial threshold.
    let mut theta0 = 0u32;
    let mut live = vec![false; parts.len()];
    for (p, live) in parts.iter_mut().zip(live.iter_mut()) {
        let b = &mut *p.bmp;
        b.stats = Default::default();
        if topk.out_of_time() {
            return Ok(());
        }
        let nblocks = b.index.num_blocks() as usize;
        if nblocks == 0 || p.query.terms.is_empty() {
            continue;
        }
        *live = true;
        b.resolve_rows(p.query)?;
        if let Some(f) = p.filter {
            f.block_mask(
                b.index.block_size(),
                b.index.num_blocks(),
                &mut b.block_mask,
            );
        }
        let t = initial_threshold(b.index, &b.kept, k, p.filter)?;
        b.stats.initial_threshold = t;
        theta0 = theta0.max(t);
        Bmp::size_pages(&mut b.bounds, nblocks);
        accumulate(&mut b.rows, &mut b.bounds, nblocks);
        if p.filter.is_some() {
            mask_bounds(&mut b.bounds[..nblocks], 0, &b.block_mask);
        }
    }
    // 2. Every segment's candidates above it, and its first block.
    let floor = theta0.max(1);
    let mut cursors: Vec<Cursor> = Vec::with_capacity(parts.len());
    for (p, &live) in parts.iter_mut().zip(&live) {
        let b = &mut *p.bmp;
        let nblocks = b.index.num_blocks() as usize;
        let w = &mut b.workers[0];
        w.scored = 0;
        w.scorer.clear();
        let mut cursor = Cursor {
            walk: Walk::default(),
            walked: true,
            ready: None,
        };
        if live && w.buckets.fill(&b.bounds[..nblocks], floor).is_some() {
            b.stats.candidates = w.buckets.items.len() as u32;
            cursor.walked = false;
            cursor.ready = advance(b, &mut cursor, p.query, 0);
        }
        cursors.push(cursor);
    }
    // 3. The ready blocks, best first across the segments.
    loop {
        let mut best: Option<(u32, u32, usize)> = None;
        for (i, (p, c)) in parts.iter().zip(&cursors).enumerate() {
            let Some(block) = c.ready else { continue };
            let b = &*p.bmp;
            let ub = scaled(b.bounds[block as usize], b.params.alpha);
            let first = p.base.wrapping_add(block * b.index.block_size());
            if best.is_none_or(|(u, f, _)| ub > u || (ub == u && first < f)) {
                best = Some((ub, first, i));
            }
        }
        let Some((ub, first, i)) = best else { break };
        let theta = topk.threshold().unwrap_or(0);
        let skip = match topk.worst() {
            Some((theta, worst_doc)) => {
                if ub < theta {
                    break;
                }
                // Ties go to lower document numbers: this block has no document that enters.
                ub == theta && first > worst_doc
            }
            None => false,
        };
        let p = &mut parts[i];
        if !skip {
            let w = &mut p.bmp.workers[0];
            w.scorer.finish(p.filter, topk, p.base)?;
            w.scored += 1;
            if topk.tick() {
                break;
            }
        }
        cursors[i].ready = advance(p.bmp, &mut cursors[i], p.query, theta);
    }
    let final_threshold = topk.threshold().unwrap_or(0);
    for p in parts.iter_mut() {
        let b = &mut *p.bmp;
        b.stats.scored = b.workers[0].scored;
        b.stats.final_threshold = final_threshold;
    }
    Ok(())
}
