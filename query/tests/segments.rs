//! Search over a collection of segments against exhaustive scoring of a model of its live
//! documents, whatever the interleaving of adds (with upserts), deletes, compactions, writes
//! through the write-ahead log, refreshes and reopenings with writes still logged.

use std::collections::{BTreeMap, HashSet};

use bmp_index::build::BuildOptions;
use bmp_index::quantize::{quantize_query_weights, Quantizer};
use bmp_index::segments::{CollectionDir, MergePolicy, Snapshot, WalOp};
use bmp_index::Collection;
use bmp_query::bmp::BmpParams;
use bmp_query::segments::SnapshotSearcher;
use bmp_query::sp::SpParams;
use bmp_query::SearchSpec;
use proptest::prelude::*;

const SPECS: [SearchSpec; 5] = [
    SearchSpec::Exhaustive,
    SearchSpec::Bmp(BmpParams {
        alpha: 1.0,
        beta: 1.0,
    }),
    SearchSpec::MaxScore,
    SearchSpec::Bmw,
    SearchSpec::Sp(SpParams { mu: 1.0, eta: 1.0 }),
];

/// A document: its id number and its `(term number, weight)` entries.
type Doc = (u8, Vec<(u8, f32)>);

/// A logged write: an add (`Some` entries) or a delete (`None`) of an id number.
type Write = (u8, Option<Vec<(u8, f32)>>);

#[derive(Debug, Clone)]
enum Op {
    Add(Vec<Doc>),
    Delete(Vec<u8>),
    Compact,
    /// Merge down to this many segments, two at a time.
    Merge(usize),
    /// Writes through the log: an add (`Some`) or a delete (`None`) of an id, in order.
    Log(Vec<Write>),
    /// Applies the logged writes.
    Refresh,
    /// Drops the writer with writes maybe still logged (as a crash would) and opens it again.
    Reopen,
    /// Plans a merge down to this many segments, to be built and committed later, with other
    /// writes in between (a background merge).
    Plan(usize),
    /// Builds and commits the planned merge.
    CommitPlanned,
}

fn doc_strategy() -> impl Strategy<Value = Doc> {
    (
        0u8..200,
        proptest::collection::btree_map(0u8..24, 1u32..40, 1..8)
            .prop_map(|m| m.into_iter().map(|(t, w)| (t, w as f32 / 8.0)).collect()),
    )
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => proptest::collection::vec(doc_strategy(), 1..90).prop_map(|docs| {
            // Ids are unique within one add.
            let mut seen = HashSet::new();
            Op::Add(docs.into_iter().filter(|(id, _)| seen.insert(*id)).collect())
        }),
        2 => proptest::collection::vec(0u8..200, 1..40).prop_map(Op::Delete),
        1 => Just(Op::Compact),
        1 => (1usize..4).prop_map(Op::Merge),
        3 => proptest::collection::vec(
            (0u8..200, proptest::option::weighted(0.7, doc_strategy().prop_map(|d| d.1))),
            1..40,
        )
        .prop_map(Op::Log),
        1 => Just(Op::Refresh),
        1 => Just(Op::Reopen),
        2 => (1usize..4).prop_map(Op::Plan),
        2 => Just(Op::CommitPlanned),
    ]
}

fn term(t: u8) -> String {
    format!("t{t}")
}

fn id(d: u8) -> String {
    format!("d{d}")
}

/// The expected top-k over the model's live documents: `(id, score)` best first, ties by id
/// (only the scores and the documents above the k-th score are compared).
fn expected(
    model: &BTreeMap<u8, Vec<(u8, f32)>>,
    quantizer: Quantizer,
    snapshot: &Snapshot,
    query: &[(u8, f32)],
) -> Vec<(String, u32)> {
    // Known terms: those some segment's vocabulary holds.
    let known: Vec<(u8, f32)> = query
        .iter()
        .copied()
        .filter(|&(t, _)| {
            snapshot
                .segments
                .iter()
                .any(|s| s.index.term_id(&term(t)).unwrap().is_some())
        })
        .collect();
    let weights: Vec<f32> = known.iter().map(|&(_, w)| w).collect();
    let q: BTreeMap<u8, u32> = known
        .iter()
        .zip(quantize_query_weights(&weights))
        .map(|(&(t, _), q)| (t, q))
        .collect();
    let mut scored: Vec<(String, u32)> = model
        .iter()
        .map(|(&d, entries)| {
            let score = entries
                .iter()
                .map(|&(t, w)| q.get(&t).copied().unwrap_or(0) * u32::from(quantizer.quantize(w)))
                .sum();
            (id(d), score)
        })
        .filter(|&(_, s)| s > 0)
        .collect();
    scored.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    scored
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(100))]

    #[test]
    fn segments_equal_exhaustive_over_live_documents(
        ops in proptest::collection::vec(op_strategy(), 1..10),
        queries in proptest::collection::vec(
            proptest::collection::btree_map(0u8..26, 1u32..20, 1..6), 1..4),
        block_size in prop_oneof![Just(8u32), Just(16)],
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let options = BuildOptions { superblock_size: 2, ..BuildOptions::with_block_size(block_size) };
        let mut dir = CollectionDir::open_or_create(tmp.path(), &options).unwrap();
        let mut model: BTreeMap<u8, Vec<(u8, f32)>> = BTreeMap::new();
        // Writes logged and not yet applied.
        let mut logged: Vec<Write> = Vec::new();
        // A merge planned and not committed, and whether a compaction took its segments since.
        let mut planned: Option<bmp_index::segments::PlannedMerge> = None;
        let mut compacted = false;
        let apply = |model: &mut BTreeMap<u8, Vec<(u8, f32)>>, logged: &mut Vec<_>| {
            for (d, write) in logged.drain(..) {
                match write {
                    Some(entries) => model.insert(d, entries),
                    None => model.remove(&d),
                };
            }
        };
        for op in &ops {
            // Direct writes apply the log first.
            if matches!(op, Op::Add(_) | Op::Delete(_) | Op::Compact | Op::Refresh | Op::Reopen) {
                apply(&mut model, &mut logged);
            }
            match op {
                Op::Add(docs) if !docs.is_empty() => {
                    let mut c = Collection::new();
                    for (d, entries) in docs {
                        let e: Vec<(u32, f32)> =
                            entries.iter().map(|&(t, w)| (c.intern_term(&term(t)), w)).collect();
                        c.add_document(&id(*d), &e).unwrap();
                        model.insert(*d, entries.clone());
                    }
                    dir.add(&c, &mut |_, _, _| {}).unwrap();
                }
                Op::Add(_) => {}
                Op::Delete(ids) => {
                    let names: Vec<String> = ids.iter().map(|&d| id(d)).collect();
                    let summary = dir.delete(names.iter().map(String::as_str)).unwrap();
                    let distinct: HashSet<u8> = ids.iter().copied().collect();
                    let live = distinct.iter().filter(|d| model.contains_key(d)).count();
                    prop_assert_eq!(summary.deleted as usize, live);
                    for d in &distinct {
                        model.remove(d);
                    }
                }
                Op::Compact => {
                    compacted = planned.is_some();
                    dir.compact(&mut |_, _, _| {}).unwrap();
                    prop_assert!(dir.snapshot().segments.len() <= 1);
                }
                Op::Merge(max_segments) => {
                    let policy = MergePolicy { max_segments: *max_segments, merge_factor: 2, ..MergePolicy::default() };
                    dir.merge_by_policy(&policy, &mut |_, _, _| {}).unwrap();
                    // The segments a planned merge holds wait for its commit; the others are
                    // merged down to the bound (or to one, beside the held ones).
                    let held = match (&planned, compacted) {
                        (Some(plan), false) => plan.len(),
                        _ => 0,
                    };
                    prop_assert!(dir.snapshot().segments.len() <= *max_segments + held);
                }
                Op::Log(writes) => {
                    // What each write finds: the model with the earlier writes applied.
                    let mut now = model.clone();
                    let mut expect_live = Vec::new();
                    for (d, w) in logged.iter().chain(writes) {
                        let was = now.contains_key(d);
                        match w {
                            Some(e) => now.insert(*d, e.clone()),
                            None => now.remove(d),
                        };
                        expect_live.push(was);
                    }
                    let ops: Vec<WalOp> = writes.iter().map(|(d, w)| match w {
                        Some(e) => WalOp::Add {
                            id: id(*d),
                            vector: e.iter().map(|&(t, w)| (term(t), w)).collect(),
                        },
                        None => WalOp::Delete { id: id(*d) },
                    }).collect();
                    let live = dir.log(ops).unwrap();
                    prop_assert_eq!(&live[..], &expect_live[logged.len()..]);
                    logged.extend(writes.iter().cloned());
                }
                Op::Plan(max_segments) => {
                    if planned.is_none() {
                        let policy = MergePolicy { max_segments: *max_segments, merge_factor: 2, ..MergePolicy::default() };
                        planned = dir.plan_merge(&policy).unwrap();
                        compacted = false;
                    }
                }
                Op::CommitPlanned => {
                    if let Some(plan) = planned.take() {
                        let result = dir.commit_merge(plan.build(&mut |_, _, _| {}));
                        // Only a compaction in between takes a planned merge's segments away.
                        prop_assert_eq!(result.is_err(), compacted, "{:?}", result);
                    }
                }
                Op::Refresh => {
                    dir.refresh(&mut |_, _, _| {}).unwrap();
                    prop_assert!(dir.pending().is_empty());
                }
                Op::Reopen => {
                    planned = None;
                    drop(dir);
                    dir = CollectionDir::open(tmp.path()).unwrap();
                    prop_assert!(dir.pending().is_empty());
                }
            }
            let snapshot = dir.snapshot();
            prop_assert_eq!(snapshot.live_docs() as usize, model.len());
            let Some(quantizer) = dir.manifest().scale.and_then(Quantizer::from_scale) else {
                continue;
            };
            let mut exact = SnapshotSearcher::new(&snapshot, &SearchSpec::Exhaustive);
            for spec in &SPECS {
                let mut searcher = SnapshotSearcher::new(&snapshot, spec);
                for query in &queries {
                    let query: Vec<(u8, f32)> =
                        query.iter().map(|(&t, &w)| (t, w as f32 / 4.0)).collect();
                    let entries: Vec<(String, f32)> =
                        query.iter().map(|&(t, w)| (term(t), w)).collect();
                    let all = expected(&model, quantizer, &snapshot, &query);
                    for k in [1usize, 3, 10, 100] {
                        let got = searcher.search(&entries, k).unwrap();
                        // Ties included, every processor ranks as exhaustive scoring of the
                        // segments does: score, then segment, then internal doc id.
                        prop_assert_eq!(&got, &exact.search(&entries, k).unwrap(), "{}", spec.name());
                        let got: Vec<(String, u32)> = got.hits.iter().map(|h| {
                            let s = &snapshot.segments[h.segment];
                            (s.index.doc_id(h.doc).unwrap().to_owned(), h.score)
                        }).collect();
                        let want = &all[..k.min(all.len())];
                        let scores = |v: &[(String, u32)]| v.iter().map(|x| x.1).collect::<Vec<_>>();
                        prop_assert_eq!(scores(&got), scores(want), "{} k={} {:?}", spec.name(), k, query);
                        // Above the k-th score the documents are the same; at it, any of the
                        // documents with that score may be returned.
                        if let Some(&(_, kth)) = want.last() {
                            let above = |v: &[(String, u32)]| v.iter()
                                .filter(|x| x.1 > kth).map(|x| x.0.clone()).collect::<HashSet<_>>();
                            prop_assert_eq!(above(&got), above(want));
                            for (doc, s) in got.iter().filter(|x| x.1 == kth) {
                                prop_assert!(all.iter().any(|(d, t)| d == doc && *t == *s));
                            }
                        }
                    }
                }
            }
        }
    }
}
