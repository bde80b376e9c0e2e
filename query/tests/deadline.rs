//! Deadlines: every processor, on one index and over the segments of a collection, stops at its
//! deadline with hits it really scored, answers exactly without one, and leaves nothing behind
//! for the next search.
//!
//! The deadlines here are budgets of checks ([`Deadline::AfterChecks`]), so that every run stops
//! at the same place; [`Deadline::At`] goes through the same checks.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use bmp_index::build::{build_index, BuildOptions};
use bmp_index::segments::CollectionDir;
use bmp_index::{Collection, Index};
use bmp_query::bmp::{Bmp, BmpParams};
use bmp_query::exhaustive::Exhaustive;
use bmp_query::segments::SnapshotSearcher;
use bmp_query::{Deadline, Hit, Query, SearchSpec, Searcher};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const DOCS: usize = 20_000;
const VOCAB: usize = 60;
const K: usize = 1000;

/// `DOCS` documents of 5 to 25 terms; term `t` is drawn with a weight that falls with `t`.
fn documents(seed: u64) -> Vec<Vec<(String, f32)>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..DOCS)
        .map(|_| {
            let n = rng.random_range(5..25);
            let doc: HashMap<usize, f32> = (0..n)
                .map(|_| {
                    let t = rng.random_range(0..VOCAB);
                    let w = rng.random_range(0.1..3.0f32) * (1.0 + (VOCAB - t) as f32 / 10.0);
                    (t, w)
                })
                .collect();
            doc.into_iter().map(|(t, w)| (format!("t{t}"), w)).collect()
        })
        .collect()
}

/// The documents `which` of `docs`, named `d{i}`.
fn collection(docs: &[Vec<(String, f32)>], which: impl Iterator<Item = usize>) -> Collection {
    let mut c = Collection::new();
    for i in which {
        let entries: Vec<(u32, f32)> = docs[i]
            .iter()
            .map(|(t, w)| (c.intern_term(t), *w))
            .collect();
        c.add_document(&format!("d{i}"), &entries).unwrap();
    }
    c
}

fn build(dir: &Path) -> Index {
    let path = dir.join("index.bmp");
    let options = BuildOptions {
        superblock_size: 8,
        ..BuildOptions::with_block_size(8)
    };
    build_index(
        &collection(&documents(7), 0..DOCS),
        &path,
        &options,
        &mut |_, _, _| {},
    )
    .unwrap();
    Index::open(&path).unwrap()
}

/// A query of 40 terms.
fn query_entries() -> Vec<(String, f32)> {
    (0..40)
        .map(|t| (format!("t{t}"), 1.0 + t as f32 / 20.0))
        .collect()
}

/// Every processor, and BMP visiting blocks only, on one thread and on two.
fn searchers(index: &Index) -> Vec<(String, Box<dyn Searcher + '_>)> {
    let mut all: Vec<(String, Box<dyn Searcher + '_>)> = SearchSpec::ALL
        .iter()
        .map(|spec| (spec.to_string(), spec.searcher(index)))
        .collect();
    // Block at a time only (this query's postings are few enough to score them all).
    let blocks = Bmp::new(index, BmpParams::default()).with_blocks_per_hit(0);
    all.push(("bmp, blocks only".into(), Box::new(blocks)));
    let two = Bmp::new(index, BmpParams::default())
        .with_threads(2)
        .with_min_blocks_per_worker(1)
        .with_blocks_per_hit(0);
    all.push(("bmp on 2 threads, blocks only".into(), Box::new(two)));
    all
}

/// Each hit's exact score.
fn exact_scores(index: &Index, query: &Query) -> HashMap<u32, u32> {
    let mut exact = Exhaustive::new(index);
    exact
        .search(query, DOCS)
        .unwrap()
        .into_iter()
        .map(|h| (h.doc, h.score))
        .collect()
}

/// `hits` are in result order, at most `K`, each scored at most its exact score (exactly, for
/// the processors that score whole documents; `term_at_a_time`: those that add whole posting
/// lists, as exhaustive scoring does and BMP does when it scores every posting).
fn check_partial(name: &str, hits: &[Hit], exact: &HashMap<u32, u32>, term_at_a_time: bool) {
    assert!(hits.len() <= K, "{name}");
    assert!(
        hits.windows(2).all(|w| w[0].rank_cmp(&w[1]).is_lt()),
        "{name}: not in result order"
    );
    for h in hits {
        let e = exact.get(&h.doc).copied().unwrap_or(0);
        if term_at_a_time {
            // Stopped between two lists: the sum of the lists it went through.
            assert!(h.score <= e, "{name}: doc {} {} > {e}", h.doc, h.score);
        } else {
            assert_eq!(h.score, e, "{name}: doc {}", h.doc);
        }
    }
}

#[test]
fn every_processor_stops_at_its_deadline_and_then_answers_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let index = build(tmp.path());
    let query = Query::from_entries(&index, &query_entries()).unwrap();
    let expected = Exhaustive::new(&index).search(&query, K).unwrap();
    assert_eq!(expected.len(), K);
    let exact = exact_scores(&index, &query);
    for (name, mut s) in searchers(&index) {
        // No deadline, and one far away: the exact top-k.
        assert_eq!(s.search(&query, K).unwrap(), expected, "{name}");
        assert!(!s.stopped(), "{name}");
        s.set_deadline(Deadline::after(Duration::from_secs(3600)));
        assert_eq!(s.search(&query, K).unwrap(), expected, "{name}");
        assert!(!s.stopped(), "{name}");
        let full = s.stats();
        // BMP scored every posting instead of visiting blocks (this query's postings are few).
        let term_at_a_time = name == "exhaustive" || full.is_some_and(|f| f.scored_blocks == 0);

        // Past before the search starts: nothing done.
        for past in [Deadline::AfterChecks(0), Deadline::At(Instant::now())] {
            s.set_deadline(past);
            assert_eq!(s.search(&query, K).unwrap(), vec![], "{name}");
            assert!(s.stopped(), "{name}");
        }

        // Past at the first check inside the search's loop.
        s.set_deadline(Deadline::AfterChecks(1));
        let hits = s.search(&query, K).unwrap();
        assert!(s.stopped(), "{name}: did not stop");
        assert_ne!(hits, expected, "{name}: stopped with the whole answer");
        check_partial(&name, &hits, &exact, term_at_a_time);
        if let (Some(full), Some(stopped)) = (full.filter(|_| !term_at_a_time), s.stats()) {
            assert!(
                stopped.scored_blocks < full.scored_blocks,
                "{name}: scored {} blocks of {}",
                stopped.scored_blocks,
                full.scored_blocks
            );
        }

        // A few checks later: more of the work done, still stopped.
        s.set_deadline(Deadline::AfterChecks(3));
        let hits = s.search(&query, K).unwrap();
        check_partial(&name, &hits, &exact, term_at_a_time);

        // Nothing is left behind for the next search.
        s.set_deadline(Deadline::None);
        assert_eq!(s.search(&query, K).unwrap(), expected, "{name}");
        assert!(!s.stopped(), "{name}");
    }
}

#[test]
fn collection_searches_stop_at_their_deadline() {
    let tmp = tempfile::tempdir().unwrap();
    let options = BuildOptions::with_block_size(8);
    let mut dir = CollectionDir::open_or_create(tmp.path(), &options).unwrap();
    let docs = documents(11);
    // Three segments, the documents dealt out in turn.
    for part in 0..3 {
        let c = collection(&docs, (part..DOCS).step_by(3));
        dir.add(&c, &mut |_, _, _| {}).unwrap();
    }
    let snapshot = dir.snapshot();
    assert_eq!(snapshot.segments.len(), 3);
    let entries = query_entries();
    let expected = SnapshotSearcher::new(&snapshot, &SearchSpec::Exhaustive)
        .search(&entries, K)
        .unwrap();
    assert!(!expected.stopped);
    for spec in SearchSpec::ALL {
        let mut s = SnapshotSearcher::new(&snapshot, &spec);
        assert_eq!(s.search(&entries, K).unwrap(), expected, "{spec}");
        s.set_deadline(Deadline::AfterChecks(0));
        let r = s.search(&entries, K).unwrap();
        assert!(r.stopped && r.hits.is_empty(), "{spec}");
        s.set_deadline(Deadline::AfterChecks(1));
        let r = s.search(&entries, K).unwrap();
        assert!(r.stopped, "{spec}: did not stop");
        assert_ne!(r.hits, expected.hits, "{spec}");
        s.set_deadline(Deadline::None);
        assert_eq!(s.search(&entries, K).unwrap(), expected, "{spec}");
    }
}
