//! Search over a collection of segments ([`bmp_index::segments::Snapshot`]).
//!
//! The query weights are quantized once for every segment ([`Query::from_entries_shared`]) and
//! every segment shares the collection's document scale, so a document scores the same whichever
//! segment holds it. Each segment is searched with its deleted documents filtered out (the
//! processors' filtered search is the unfiltered ranking restricted to the allowed documents),
//! BMP over all the segments at once (one descending order of blocks across the segments, one
//! shared top-k: [`crate::bmp::parts`]), any other processor segment after segment, best segment
//! first, the k-th score found so far carried into the next, the segments' top-k lists merged: score descending, then segment in manifest order, then
//! internal doc id. With a rank-safe processor the result is the top-k of exhaustive scoring over
//! the live documents: the same scores, and the same documents except among ties at the k-th
//! score.

use std::borrow::Cow;
use std::collections::HashMap;

use bmp_index::segments::Snapshot;
use bmp_index::Result;
use roaring::RoaringBitmap;

use crate::bmp::parts::{search_parts, Part};
use crate::bmp::Bmp;
use crate::{Deadline, DocFilter, Query, SearchSpec, Searcher, TopK};

/// One result over a collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentHit {
    /// Position of the segment in the snapshot.
    pub segment: usize,
    /// Internal doc id in that segment.
    pub doc: u32,
    /// Sum of quantized query weight times impact.
    pub score: u32,
}

/// The results of one search over a collection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SnapshotResults {
    /// The top-k, best first.
    pub hits: Vec<SegmentHit>,
    /// Query terms no segment knows (ignored).
    pub unknown_terms: usize,
    /// The factor from the hits' integer scores to scores in the model's units (see
    /// [`Query::score_scale`]; the segments of a collection share their impact scale).
    pub score_scale: f64,
    /// Whether the search stopped at its deadline ([`SnapshotSearcher::set_deadline`]): the
    /// hits are then the best of the documents scored, not the top-k.
    pub stopped: bool,
}

/// The processors of a [`SnapshotSearcher`], one per segment.
enum Processors<'a> {
    /// BMP over all the segments at once ([`crate::bmp::parts`]), with the number of each
    /// segment's first document and the shared top-k.
    Bmp {
        searchers: Vec<Bmp<'a>>,
        bases: Vec<u32>,
        topk: TopK,
    },
    /// Any processor, segment after segment.
    Each(Vec<Box<dyn Searcher + 'a>>),
}

/// Answers queries over the segments of one snapshot with one processor per segment (kept
/// between queries, with their buffers).
pub struct SnapshotSearcher<'a> {
    snapshot: &'a Snapshot,
    processors: Processors<'a>,
    /// Per segment: the documents it may return (its live ones when some are deleted).
    filters: Cow<'a, [Option<DocFilter>]>,
    /// Query terms met so far, with their id in each segment (at most [`TERM_CACHE`]).
    term_ids: HashMap<String, Vec<Option<u32>>>,
}

/// The most query terms a [`SnapshotSearcher`] remembers the ids of.
const TERM_CACHE: usize = 1 << 20;

impl<'a> SnapshotSearcher<'a> {
    /// Searchers of `spec` over every segment of `snapshot`.
    pub fn new(snapshot: &'a Snapshot, spec: &SearchSpec) -> Self {
        let filters = live_filters(snapshot);
        Self::with_filters(snapshot, spec, Cow::Owned(filters))
    }

    /// Searchers of `spec` over every segment of `snapshot`, each segment restricted to the
    /// documents of its filter (`None`: all; one entry per segment, e.g. [`live_filters`]).
    pub fn with_filters(
        snapshot: &'a Snapshot,
        spec: &SearchSpec,
        filters: Cow<'a, [Option<DocFilter>]>,
    ) -> Self {
        let mut bases = Vec::with_capacity(snapshot.segments.len());
        let mut next = 0u64;
        for s in &snapshot.segments {
            bases.push(u32::try_from(next).ok());
            next += u64::from(s.index.num_docs());
        }
        let processors = match (spec, u32::try_from(next)) {
            // One numbering of every document is needed for one shared top-k.
            (SearchSpec::Bmp(params), Ok(_)) => Processors::Bmp {
                searchers: snapshot
                    .segments
                    .iter()
                    .map(|s| Bmp::new(&s.index, *params))
                    .collect(),
                bases: bases.into_iter().map(|b| b.unwrap_or(0)).collect(),
                topk: TopK::new(0),
            },
            _ => Processors::Each(
                snapshot
                    .segments
                    .iter()
                    .map(|s| spec.searcher(&s.index))
                    .collect(),
            ),
        };
        SnapshotSearcher {
            snapshot,
            processors,
            filters,
            term_ids: HashMap::new(),
        }
    }

    /// Sets the deadline of the searches to come ([`Deadline::None`] for none): a search stops
    /// there, with the best hits found so far, marked [`SnapshotResults::stopped`].
    pub fn set_deadline(&mut self, deadline: Deadline) {
        match &mut self.processors {
            Processors::Bmp { topk, .. } => topk.set_deadline(deadline),
            Processors::Each(searchers) => {
                for s in searchers {
                    s.set_deadline(deadline);
                }
            }
        }
    }

    /// Restricts the next searches to the documents of `filters` (one entry per segment, as in
    /// [`SnapshotSearcher::with_filters`]), keeping the processors and their buffers.
    pub fn set_filters(&mut self, filters: Cow<'a, [Option<DocFilter>]>) {
        self.filters = filters;
    }

    /// The snapshot searched.
    pub fn snapshot(&self) -> &'a Snapshot {
        self.snapshot
    }

    /// The top `k` live documents for the `(term, weight)` entries of a query.
    ///
    /// The segments are searched in descending order of the best score the query can reach in
    /// them (its weights times the terms' largest impacts); once `k` hits are in hand, their k-th
    /// score is the floor of the next segment's search ([`Searcher::search_above`]), and a segment
    /// whose best score is below it is skipped.
    pub fn search(&mut self, entries: &[(String, f32)], k: usize) -> Result<SnapshotResults> {
        let indexes: Vec<&bmp_index::Index> =
            self.snapshot.segments.iter().map(|s| &*s.index).collect();
        let cache = &mut self.term_ids;
        let (queries, unknown_terms) =
            Query::from_entries_resolved(indexes.len(), entries, |term| {
                if let Some(ids) = cache.get(term) {
                    return Ok(ids.clone());
                }
                let ids = indexes
                    .iter()
                    .map(|index| index.term_id(term))
                    .collect::<Result<Vec<_>>>()?;
                if cache.len() < TERM_CACHE {
                    cache.insert(term.to_owned(), ids.clone());
                }
                Ok(ids)
            })?;
        let score_scale = match (queries.first(), indexes.first()) {
            (Some(query), Some(index)) => query.score_scale(index),
            _ => 1.0,
        };
        let searchers = match &mut self.processors {
            Processors::Bmp {
                searchers,
                bases,
                topk,
            } => {
                let mut parts: Vec<Part<'_, '_>> = searchers
                    .iter_mut()
                    .zip(&queries)
                    .zip(self.filters.iter())
                    .zip(bases.iter())
                    .map(|(((bmp, query), filter), &base)| Part {
                        bmp,
                        query,
                        filter: filter.as_ref(),
                        base,
                    })
                    .collect();
                search_parts(&mut parts, k, topk)?;
                let hits = topk
                    .drain_sorted()
                    .into_iter()
                    .map(|h| {
                        let segment = bases.partition_point(|&b| b <= h.doc) - 1;
                        SegmentHit {
                            segment,
                            doc: h.doc - bases[segment],
                            score: h.score,
                        }
                    })
                    .collect();
                return Ok(SnapshotResults {
                    hits,
                    unknown_terms,
                    score_scale,
                    stopped: topk.stopped(),
                });
            }
            Processors::Each(searchers) => searchers,
        };
        let mut best = Vec::with_capacity(queries.len());
        for (segment, (index, query)) in indexes.iter().zip(&queries).enumerate() {
            best.push((query.max_score(index)?, segment));
        }
        best.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut hits: Vec<SegmentHit> = Vec::new();
        let mut stopped = false;
        for &(bound, segment) in &best {
            let floor = kth_score(&mut hits, k);
            if bound < u64::from(floor) || bound == 0 {
                break;
            }
            let filter = self.filters[segment].as_ref();
            let query = &queries[segment];
            let searcher = &mut searchers[segment];
            for h in searcher.search_above(query, k, filter, floor)? {
                hits.push(SegmentHit {
                    segment,
                    doc: h.doc,
                    score: h.score,
                });
            }
            if searcher.stopped() {
                stopped = true;
                break;
            }
        }
        rank(&mut hits, k);
        Ok(SnapshotResults {
            hits,
            unknown_terms,
            score_scale,
            stopped,
        })
    }
}

/// Per segment of `snapshot`: its live documents as a filter when some are deleted.
pub fn live_filters(snapshot: &Snapshot) -> Vec<Option<DocFilter>> {
    snapshot
        .segments
        .iter()
        .map(|s| {
            (!s.deleted.is_empty()).then(|| {
                let mut live = RoaringBitmap::new();
                live.insert_range(0..s.index.num_docs());
                live -= &s.deleted;
                DocFilter::new(live)
            })
        })
        .collect()
}

/// Sorts `hits` in result order (score descending, then segment, then doc id) and keeps the
/// first `k`.
fn rank(hits: &mut Vec<SegmentHit>, k: usize) {
    hits.sort_unstable_by(|a, b| {
        b.score
            .cmp(&a.score)
            .then(a.segment.cmp(&b.segment))
            .then(a.doc.cmp(&b.doc))
    });
    hits.truncate(k);
}

/// The k-th best score of `hits` (ranking them), or 0 with fewer than `k`.
fn kth_score(hits: &mut Vec<SegmentHit>, k: usize) -> u32 {
    rank(hits, k);
    if hits.len() < k {
        0
    } else {
        hits.last().map_or(0, |h| h.score)
    }
}
