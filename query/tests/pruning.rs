//! MaxScore and Block-Max WAND against exhaustive search (same hits, same scores, same order),
//! on collections rich in ties; filtered search by every processor against the exhaustive ranking
//! restricted to the filter; and unit tests of the posting cursor.

use std::collections::BTreeSet;
use std::path::Path;

use bmp_index::build::{build_index, BuildOptions};
use bmp_index::format::SectionKind;
use bmp_index::postings::{encode_postings, PostingList};
use bmp_index::readers::queries::read_queries;
use bmp_index::{Collection, Index};
use bmp_query::cursor::{PostingCursor, END};
use bmp_query::maxscore::WINDOW;
use bmp_query::sp::SpParams;
use bmp_query::{DocFilter, Hit, Query, QueryTerm, SearchSpec, Searcher};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const PRUNING: [SearchSpec; 3] = [
    SearchSpec::MaxScore,
    SearchSpec::Bmw,
    SearchSpec::Sp(SpParams { mu: 1.0, eta: 1.0 }),
];

/// Documents as `(term name, weight)` lists.
type Docs = Vec<Vec<(String, f32)>>;

fn build(docs: &Docs, dir: &Path) -> Index {
    build_with(docs, dir, BuildOptions::default())
}

fn build_with(docs: &Docs, dir: &Path, options: BuildOptions) -> Index {
    let mut c = Collection::new();
    for (i, d) in docs.iter().enumerate() {
        let entries: Vec<(u32, f32)> = d.iter().map(|(t, w)| (c.intern_term(t), *w)).collect();
        c.add_document(&format!("doc{i}"), &entries).unwrap();
    }
    let path = dir.join("index.bmp");
    build_index(&c, &path, &options, &mut |_, _, _| {}).unwrap();
    Index::open(&path).unwrap()
}

/// A collection rich in ties: `num_docs` documents over `vocab` terms with small integer
/// weights; term `t` occurs with a probability drawn from a few levels, so that some lists cover
/// most documents (several 128-doc chunks) and others are rare.
///
/// Weights are `1..=max_weight`, plus `max_weight` in "hot" runs of documents (when `clustered`)
/// and rare spikes of `4 * max_weight`, so that the chunk maxima differ from the term maxima and
/// the block bounds of Block-Max WAND prune.
fn tie_docs(seed: u64, num_docs: usize, vocab: usize, max_weight: u32, clustered: bool) -> Docs {
    let mut rng = StdRng::seed_from_u64(seed);
    let levels = [0.9, 0.6, 0.3, 0.1, 0.02, 0.002];
    let probs: Vec<f64> = (0..vocab)
        .map(|_| levels[rng.random_range(0..levels.len())])
        .collect();
    let run = rng.random_range(20..300);
    let hot: Vec<bool> = (0..num_docs / run + 1)
        .map(|_| clustered && rng.random_bool(0.3))
        .collect();
    (0..num_docs)
        .map(|i| {
            let mut doc = Vec::new();
            for (t, &p) in probs.iter().enumerate() {
                if rng.random_bool(p) {
                    let mut w = rng.random_range(1..=max_weight);
                    if hot[i / run] {
                        w += max_weight;
                    }
                    if rng.random_bool(0.003) {
                        w = 4 * max_weight;
                    }
                    doc.push((format!("t{t}"), w as f32));
                }
            }
            doc
        })
        .collect()
}

/// Queries of 1 to 30 terms, known and unknown, with integer or real weights.
fn random_queries(seed: u64, vocab: usize, count: usize) -> Vec<Vec<(String, f32)>> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    (0..count)
        .map(|_| {
            let n = rng.random_range(1..=30);
            let integral = rng.random_bool(0.6);
            (0..n)
                .map(|_| {
                    let term = if rng.random_bool(0.1) {
                        format!("unknown{}", rng.random_range(0..5))
                    } else {
                        format!("t{}", rng.random_range(0..vocab))
                    };
                    let w = if integral {
                        rng.random_range(1..=5) as f32
                    } else {
                        rng.random_range(0.01f32..3.0)
                    };
                    (term, w)
                })
                .collect()
        })
        .collect()
}

/// Runs `query` through exhaustive and every pruning searcher; returns the first mismatch.
fn check(
    exhaustive: &mut dyn Searcher,
    pruning: &mut [Box<dyn Searcher + '_>],
    query: &Query,
    k: usize,
) -> Result<Vec<Hit>, String> {
    let expected = exhaustive.search(query, k).unwrap();
    for s in pruning.iter_mut() {
        let got = s.search(query, k).map_err(|e| e.to_string())?;
        if got != expected {
            return Err(format!(
                "{} differs from exhaustive at k = {k} for {query:?}:\n got {got:?}\nwant {expected:?}",
                s.name()
            ));
        }
    }
    Ok(expected)
}

fn searchers(index: &Index) -> Vec<Box<dyn Searcher + '_>> {
    PRUNING.iter().map(|a| a.searcher(index)).collect()
}

/// A filter over `num_docs` documents of one of several shapes: random at some density, one
/// contiguous range, every `step`-th document, a single document, or nothing.
fn random_filter(seed: u64, num_docs: usize) -> DocFilter {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x51f1_7e2d);
    let n = num_docs as u32;
    match rng.random_range(0..7) {
        // Every document but a few deleted ones, or every document.
        5 => (0..n).filter(|_| !rng.random_bool(0.005)).collect(),
        6 => (0..n).collect(),
        0 => {
            let density = [0.001, 0.01, 0.1, 0.5, 0.95][rng.random_range(0..5)];
            (0..n).filter(|_| rng.random_bool(density)).collect()
        }
        1 => {
            let a = rng.random_range(0..n);
            let b = rng.random_range(a..=n);
            (a..b).collect()
        }
        2 => (0..n).step_by(rng.random_range(1..50)).collect(),
        3 => std::iter::once(rng.random_range(0..n)).collect(),
        _ => DocFilter::default(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn filtered_search_is_the_restricted_exhaustive_ranking(seed: u64,
                                  num_docs in 1usize..=1500,
                                  vocab in 1usize..=30,
                                  max_weight in prop_oneof![2 => Just(1u32), 1 => Just(3), 1 => Just(30)],
                                  block_size in prop_oneof![Just(8u32), Just(32), Just(128)],
                                  clustered: bool) {
        let dir = tempfile::tempdir().unwrap();
        let docs = tie_docs(seed, num_docs, vocab, max_weight, clustered);
        let index = build_with(&docs, dir.path(), BuildOptions::with_block_size(block_size));
        let filter = random_filter(seed, num_docs);
        let mut exhaustive = SearchSpec::Exhaustive.searcher(&index);
        let mut all: Vec<_> = SearchSpec::ALL.iter().map(|a| a.searcher(&index)).collect();
        for (qi, q) in random_queries(seed, vocab, 8).iter().enumerate() {
            let query = Query::from_entries(&index, q).unwrap();
            let k = [1, 10, 2, 100, 1000, 3, 1, 10][qi % 8];
            let mut expected = exhaustive.search(&query, num_docs).unwrap();
            expected.retain(|h| filter.contains(h.doc));
            expected.truncate(k);
            // A floor at the score of some hit: every hit reaching it is returned, as without it.
            let floor = expected.get(qi * 7 % (k + 1)).map_or(0, |h| h.score);
            let mut above = expected.clone();
            above.retain(|h| h.score >= floor);
            for s in all.iter_mut() {
                let got = s.search_filtered(&query, k, Some(&filter)).unwrap();
                prop_assert_eq!(&got, &expected, "{} at k = {} for {:?}", s.name(), k, q);
                let mut got = s.search_above(&query, k, Some(&filter), floor).unwrap();
                got.retain(|h| h.score >= floor);
                prop_assert_eq!(&got, &above, "{} at k = {}, floor {} for {:?}", s.name(), k, floor, q);
            }
        }
    }

    #[test]
    fn pruning_matches_exhaustive(seed: u64,
                                  num_docs in prop_oneof![1usize..=2000, 1usize..=200],
                                  vocab in 1usize..=40,
                                  max_weight in prop_oneof![3 => Just(1u32), 1 => Just(2), 1 => Just(4), 1 => Just(30)],
                                  clustered: bool,
                                  random_k in 1usize..=3000) {
        let dir = tempfile::tempdir().unwrap();
        let docs = tie_docs(seed, num_docs, vocab, max_weight, clustered);
        let index = build(&docs, dir.path());
        let mut exhaustive = SearchSpec::Exhaustive.searcher(&index);
        let mut pruning = searchers(&index);
        let queries = random_queries(seed, vocab, 18);
        for (qi, q) in queries.iter().enumerate() {
            let query = Query::from_entries(&index, q).unwrap();
            let k = [1, 2, 1, 10, 100, 1, 1000, random_k, 3][qi % 9];
            if let Err(e) = check(exhaustive.as_mut(), &mut pruning, &query, k) {
                prop_assert!(false, "{}", e);
            }
        }
    }

    #[test]
    fn cursor_next_geq_matches_reference(docs in proptest::collection::btree_set(0u32..5000, 1..1200),
                                         steps in proptest::collection::vec((0u32..700, any::<bool>()), 1..60)) {
        let docs: Vec<u32> = docs.into_iter().collect();
        let impacts: Vec<u8> = docs.iter().map(|&d| (d % 7 + 1) as u8).collect();
        let words = encode(&docs, &impacts);
        let list = list_of(&words, docs.len(), 5000);
        let mut c = PostingCursor::new(0, list, 7).unwrap();
        let mut i = 0usize; // index of the reference position
        let mut shallow_target = 0u32;
        for (jump, use_next) in steps {
            if use_next {
                c.next().unwrap();
                i = (i + 1).min(docs.len());
            } else {
                let target = c.doc().saturating_add(jump);
                c.next_geq(target).unwrap();
                i = docs.partition_point(|&d| d < target).max(i);
            }
            prop_assert_eq!(c.doc(), docs.get(i).copied().unwrap_or(END));
            prop_assert_eq!(c.impact(), impacts.get(i).copied().unwrap_or(0));
            // Shallow move to a target at or after the current doc (and the previous target, as
            // in Block-Max WAND): the block bounds every posting from the target to its end.
            shallow_target = shallow_target.max(c.doc().saturating_add(jump / 3));
            let max = c.block_max_geq(shallow_target);
            let last = c.block_last_doc();
            let from = docs.partition_point(|&d| d < shallow_target);
            if from == docs.len() {
                prop_assert_eq!((max, last), (0, END));
            } else {
                prop_assert!(last >= docs[from]);
                for j in from..docs.len() {
                    if docs[j] > last {
                        break;
                    }
                    prop_assert!(impacts[j] <= max);
                }
            }
        }
    }
}

/// An encoded posting list in a buffer, with the offset where it starts 4-aligned.
struct Encoded {
    buf: Vec<u8>,
    start: usize,
    len: usize,
}

/// Encodes a posting list at a 4-aligned position (the index format requires it).
fn encode(docs: &[u32], impacts: &[u8]) -> Encoded {
    let mut out = Vec::new();
    encode_postings(docs, impacts, &mut out);
    let mut buf = vec![0u8; out.len() + 4];
    let start = buf.as_ptr().align_offset(4);
    assert!(start < 4);
    buf[start..start + out.len()].copy_from_slice(&out);
    Encoded {
        buf,
        start,
        len: out.len(),
    }
}

fn list_of(e: &Encoded, df: usize, num_docs: u32) -> PostingList<'_> {
    PostingList::new(&e.buf[e.start..e.start + e.len], df, num_docs).unwrap()
}

#[test]
fn cursor_walks_chunks_and_skips() {
    // 1,000 postings (every third doc): 7 full chunks of 128 and a varint tail of 104.
    let docs: Vec<u32> = (0..1000u32).map(|i| i * 3 + 1).collect();
    let impacts: Vec<u8> = (0..1000u32).map(|i| (i % 200 + 1) as u8).collect();
    let words = encode(&docs, &impacts);
    let list = list_of(&words, docs.len(), 3001);
    assert_eq!(list.num_chunks(), 8);

    // next() over everything.
    let mut c = PostingCursor::new(7, list, 200).unwrap();
    for (i, &d) in docs.iter().enumerate() {
        assert_eq!((c.doc(), c.impact()), (d, impacts[i]));
        c.next().unwrap();
    }
    assert_eq!((c.doc(), c.impact()), (END, 0));
    c.next().unwrap();
    assert_eq!(c.doc(), END);

    // next_geq from a fresh cursor to every target, including chunk boundaries and past the end.
    for target in (0..3010).chain([u32::MAX - 1, u32::MAX]) {
        let mut c = PostingCursor::new(7, list, 200).unwrap();
        c.next_geq(target).unwrap();
        let i = docs.partition_point(|&d| d < target);
        assert_eq!(
            c.doc(),
            docs.get(i).copied().unwrap_or(END),
            "target {target}"
        );
    }

    // Across chunk boundaries: the last doc of chunk 0 is 382, the first of chunk 1 is 385.
    let mut c = PostingCursor::new(7, list, 200).unwrap();
    c.next_geq(382).unwrap();
    assert_eq!(c.doc(), 382);
    c.next_geq(383).unwrap();
    assert_eq!(c.doc(), 385);
    c.next_geq(384).unwrap(); // behind: no move
    assert_eq!(c.doc(), 385);
    // Skip several chunks at once, into the varint tail, then to the last doc and beyond.
    c.next_geq(2800).unwrap();
    assert_eq!(c.doc(), 2800);
    c.next_geq(2998).unwrap();
    assert_eq!(c.doc(), 2998);
    c.next_geq(2999).unwrap();
    assert_eq!(c.doc(), END);
    c.next_geq(5).unwrap();
    assert_eq!(c.doc(), END);
}

#[test]
fn cursor_shallow_moves_use_chunk_headers() {
    let docs: Vec<u32> = (0..300u32).collect();
    // Chunk maxima: 10, 50, 3 (partial chunk of 44).
    let impacts: Vec<u8> = (0..300u32)
        .map(|d| match d {
            0..=127 => (d % 10 + 1) as u8,
            128..=255 => {
                if d == 200 {
                    50
                } else {
                    2
                }
            }
            _ => 3,
        })
        .collect();
    let words = encode(&docs, &impacts);
    let list = list_of(&words, docs.len(), 300);
    let mut c = PostingCursor::new(0, list, 50).unwrap();
    assert_eq!(c.block_max_geq(0), 10);
    assert_eq!(c.block_last_doc(), 127);
    assert_eq!(c.block_max_geq(128), 50);
    assert_eq!(c.block_last_doc(), 255);
    assert_eq!(c.block_max(), 50);
    // Shallow moves do not move the deep position.
    assert_eq!(c.doc(), 0);
    assert_eq!(c.block_max_geq(299), 3);
    assert_eq!(c.block_last_doc(), 299);
    assert_eq!(c.block_max_geq(300), 0);
    assert_eq!(c.block_last_doc(), END);
    c.next_geq(256).unwrap();
    assert_eq!((c.doc(), c.impact()), (256, 3));
}

#[test]
fn cursor_refuses_corrupt_lists() {
    // A doc id beyond the number of documents, in the first chunk.
    let words = encode(&[5, 50], &[1, 2]);
    assert!(PostingCursor::new(0, list_of(&words, 2, 20), 2).is_err());
    // In a later chunk: reported when the cursor gets there, and the cursor ends.
    let docs: Vec<u32> = (0..300).collect();
    let words = encode(&docs, &[1; 300]);
    let mut c = PostingCursor::new(3, list_of(&words, 300, 200), 1).unwrap();
    let err = c.next_geq(150).unwrap_err();
    assert!(err.0.contains("term 3"), "{}", err.0);
    assert_eq!(c.doc(), END);
    // An impact above the term maximum.
    let words = encode(&[1, 2], &[1, 9]);
    assert!(PostingCursor::new(0, list_of(&words, 2, 20), 4).is_err());
}

#[test]
fn edge_cases() {
    let dir = tempfile::tempdir().unwrap();
    let docs: Docs = (0..700)
        .map(|i| {
            let mut d = vec![("common".to_owned(), 1.0)];
            if i % 2 == 0 {
                d.push(("even".to_owned(), 2.0));
            }
            if i % 350 == 3 {
                d.push(("rare".to_owned(), 3.0));
            }
            d
        })
        .collect();
    let index = build(&docs, dir.path());
    let mut exhaustive = SearchSpec::Exhaustive.searcher(&index);
    let mut pruning = searchers(&index);
    let q = |entries: &[(&str, f32)]| {
        let e: Vec<(String, f32)> = entries.iter().map(|(t, w)| (t.to_string(), *w)).collect();
        Query::from_entries(&index, &e).unwrap()
    };

    // Empty query, and a query of unknown terms only.
    for query in [Query::default(), q(&[("nope", 1.0)])] {
        for s in pruning.iter_mut() {
            assert!(s.search(&query, 10).unwrap().is_empty());
        }
    }
    // k = 0.
    for s in pruning.iter_mut() {
        assert!(s.search(&q(&[("common", 1.0)]), 0).unwrap().is_empty());
    }
    // A single term (all 700 documents tie), k below and above the number of matches.
    for k in [1, 2, 10, 127, 128, 129, 699, 700, 701, 5000] {
        let hits = check(exhaustive.as_mut(), &mut pruning, &q(&[("common", 1.0)]), k).unwrap();
        assert_eq!(hits.len(), k.min(700));
        assert!(hits.iter().enumerate().all(|(i, h)| h.doc == i as u32));
    }
    // k larger than the number of matching documents returns all of them.
    let hits = check(exhaustive.as_mut(), &mut pruning, &q(&[("rare", 1.0)]), 10).unwrap();
    assert_eq!(
        hits,
        vec![Hit { doc: 3, score: 3 }, Hit { doc: 353, score: 3 }]
    );
    for k in [1, 5, 100, 351, 1000] {
        for query in [
            q(&[("common", 1.0), ("even", 1.0), ("rare", 1.0)]),
            q(&[("common", 3.0), ("even", 1.0), ("rare", 2.0), ("nope", 5.0)]),
            q(&[("even", 0.5), ("rare", 0.25)]),
        ] {
            check(exhaustive.as_mut(), &mut pruning, &query, k).unwrap();
        }
    }

    // Hand-built queries: a zero weight, a repeated term (their scores add up).
    let id = |t: &str| index.term_id(t).unwrap().unwrap();
    let hand = Query {
        terms: vec![
            QueryTerm {
                term: id("common"),
                weight: 0,
            },
            QueryTerm {
                term: id("even"),
                weight: 2,
            },
            QueryTerm {
                term: id("even"),
                weight: 1,
            },
            QueryTerm {
                term: id("rare"),
                weight: 4,
            },
        ],
        unknown_terms: 0,
        scale: 1.0,
    };
    for k in [1, 3, 400] {
        check(exhaustive.as_mut(), &mut pruning, &hand, k).unwrap();
    }
    // A term id beyond the vocabulary is an error, not a panic.
    let bad = Query {
        terms: vec![QueryTerm {
            term: 99,
            weight: 1,
        }],
        unknown_terms: 0,
        scale: 1.0,
    };
    for s in pruning.iter_mut() {
        assert!(s.search(&bad, 10).is_err());
    }
}

/// Block-Max WAND skipping by chunk headers: term `a` is in documents 0..512 (four chunks of
/// 128) with impact 1, except the first document of its last chunk (384, impact 4); `b` is only
/// in document 0. At k = 1 the threshold is 3 after document 0, the first three chunks of `a`
/// (max impact 1) are skipped whole, and document 384, right after a chunk end, must be found.
#[test]
fn block_skips_land_on_the_first_document_after_a_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let docs: Docs = (0..600)
        .map(|d| {
            let mut v = Vec::new();
            if d < 512 {
                v.push(("a".to_owned(), if d == 384 { 4.0 } else { 1.0 }));
            }
            if d == 0 {
                v.push(("b".to_owned(), 2.0));
            }
            v
        })
        .collect();
    let index = build(&docs, dir.path());
    let mut exhaustive = SearchSpec::Exhaustive.searcher(&index);
    let mut pruning = searchers(&index);
    let query = Query::from_entries(&index, &[("a".into(), 1.0), ("b".into(), 1.0)]).unwrap();
    let hits = check(exhaustive.as_mut(), &mut pruning, &query, 1).unwrap();
    assert_eq!(hits, vec![Hit { doc: 384, score: 4 }]);
    let hits = check(exhaustive.as_mut(), &mut pruning, &query, 2).unwrap();
    assert_eq!(
        hits,
        vec![Hit { doc: 384, score: 4 }, Hit { doc: 0, score: 3 }]
    );
    check(exhaustive.as_mut(), &mut pruning, &query, 3).unwrap();
}

#[test]
fn corrupt_postings_are_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    let docs = tie_docs(7, 1500, 12, 30, true);
    let index = build(&docs, dir.path());
    let queries: Vec<Vec<(String, f32)>> = random_queries(7, 12, 6);
    // Sections are written in file order: the postings come after the vocabulary, the doc ids
    // and the term statistics (each section 64-byte aligned, hence the slack).
    let mut start = 0u64;
    let mut postings_len = 0u64;
    for (kind, len) in index.section_sizes() {
        if kind == SectionKind::Postings {
            postings_len = len;
            break;
        }
        start += len;
    }
    assert!(postings_len > 0);
    let bytes = std::fs::read(index.path()).unwrap();
    drop(index);
    let mut rng = StdRng::seed_from_u64(99);
    let mut errors = 0;
    for trial in 0..300 {
        let mut corrupt = bytes.clone();
        for _ in 0..rng.random_range(1..=4) {
            let at = start + rng.random_range(0..postings_len + 1024);
            if let Some(b) = corrupt.get_mut(at as usize) {
                *b ^= 1 << rng.random_range(0..8);
            }
        }
        let path = dir.path().join(format!("corrupt{trial}.bmp"));
        std::fs::write(&path, &corrupt).unwrap();
        let Ok(index) = Index::open(&path) else {
            continue;
        };
        for algorithm in PRUNING {
            let mut s = algorithm.searcher(&index);
            for q in &queries {
                let Ok(query) = Query::from_entries(&index, q) else {
                    continue;
                };
                for k in [1, 10, 1000] {
                    if let Err(e) = s.search(&query, k) {
                        assert!(e.to_string().contains("corrupt"), "{e}");
                        errors += 1;
                    }
                }
            }
        }
        std::fs::remove_file(&path).unwrap();
    }
    assert!(errors > 0, "no corruption was detected");
}

#[test]
fn algorithm_names() {
    assert_eq!(
        "maxscore".parse::<SearchSpec>().unwrap(),
        SearchSpec::MaxScore
    );
    assert_eq!("bmw".parse::<SearchSpec>().unwrap(), SearchSpec::Bmw);
    assert!(SearchSpec::ALL.contains(&SearchSpec::MaxScore));
    assert!(SearchSpec::ALL.contains(&SearchSpec::Bmw));
    assert_eq!(SearchSpec::MaxScore.to_string(), "maxscore");
    assert_eq!(SearchSpec::Bmw.to_string(), "bmw");
}

#[test]
fn real_dl19_queries_on_a_synthetic_collection() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/splade-encoded-queries/topics.dl19-passage.splade-pp-ed.tsv.gz"
    ));
    if !path.exists() {
        eprintln!("skipping: {} not found", path.display());
        return;
    }
    let queries = read_queries(path).unwrap();
    assert_eq!(queries.len(), 43);
    let vocab: Vec<String> = queries
        .iter()
        .flat_map(|q| q.entries.iter().map(|(t, _)| t.clone()))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut rng = StdRng::seed_from_u64(19);
    let docs: Docs = (0..3000)
        .map(|_| {
            let n = rng.random_range(20..=60);
            let terms: BTreeSet<usize> = (0..n).map(|_| rng.random_range(0..vocab.len())).collect();
            terms
                .into_iter()
                .map(|t| (vocab[t].clone(), rng.random_range(1..=20u32) as f32))
                .collect()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let index = build(&docs, dir.path());
    let mut exhaustive = SearchSpec::Exhaustive.searcher(&index);
    let mut pruning = searchers(&index);
    for q in &queries {
        let query = Query::from_entries(&index, &q.entries).unwrap();
        assert_eq!(query.unknown_terms, 0);
        for k in [10, 1000] {
            let hits = check(exhaustive.as_mut(), &mut pruning, &query, k)
                .unwrap_or_else(|e| panic!("query {}: {e}", q.id));
            assert!(!hits.is_empty());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Collections of several MaxScore windows (`WINDOW` documents each), so that window bounds,
    /// windows left out, lists that turn essential or non-essential from one window to the next
    /// and thresholds carried across windows are all exercised, with and without a filter.
    #[test]
    fn pruning_matches_exhaustive_across_windows(seed: u64,
                                  num_docs in (WINDOW - 96)..=(3 * WINDOW + 5000),
                                  vocab in 1usize..=20,
                                  max_weight in prop_oneof![2 => Just(1u32), 1 => Just(3), 1 => Just(30)],
                                  clustered: bool) {
        let dir = tempfile::tempdir().unwrap();
        let docs = tie_docs(seed, num_docs, vocab, max_weight, clustered);
        let index = build(&docs, dir.path());
        let filter = random_filter(seed, num_docs);
        let mut exhaustive = SearchSpec::Exhaustive.searcher(&index);
        let mut pruning = searchers(&index);
        for (qi, q) in random_queries(seed, vocab, 10).iter().enumerate() {
            let query = Query::from_entries(&index, q).unwrap();
            let k = [1, 10, 100, 1000, 5000][qi % 5];
            if let Err(e) = check(exhaustive.as_mut(), &mut pruning, &query, k) {
                prop_assert!(false, "{}", e);
            }
            let mut expected = exhaustive.search(&query, num_docs).unwrap();
            expected.retain(|h| filter.contains(h.doc));
            expected.truncate(k);
            for s in pruning.iter_mut() {
                let got = s.search_filtered(&query, k, Some(&filter)).unwrap();
                prop_assert_eq!(&got, &expected, "{} filtered at k = {} for {:?}", s.name(), k, q);
            }
        }
    }

    /// `for_each_below` visits exactly the postings before its bound and stops on the next one;
    /// `window_max` bounds every impact left in its window, and is 0 when none is left there.
    #[test]
    fn cursor_windows_match_reference(docs in proptest::collection::btree_set(0u32..20000, 1..2000),
                                      steps in proptest::collection::vec(1u32..3000, 1..30)) {
        let docs: Vec<u32> = docs.into_iter().collect();
        let impacts: Vec<u8> = docs.iter().map(|&d| (d % 11 + 1) as u8).collect();
        let words = encode(&docs, &impacts);
        let list = list_of(&words, docs.len(), 20000);
        let mut c = PostingCursor::new(0, list, 11).unwrap();
        let mut start = 0u32;
        for len in steps {
            let end = start.saturating_add(len);
            let from = docs.partition_point(|&d| d < c.doc());
            let left = &docs[from..];
            let in_window = left.iter().take_while(|&&d| d < end).count();
            let max = c.window_max(start, end);
            if left.first().is_none_or(|&d| d >= end) {
                prop_assert_eq!(max, 0);
            }
            for (j, &d) in left.iter().enumerate().take(in_window) {
                if d >= start {
                    prop_assert!(impacts[from + j] <= max);
                }
            }
            let mut seen = Vec::new();
            c.for_each_below(end, |d, i| seen.push((d, i))).unwrap();
            let want: Vec<(u32, u8)> = (from..from + in_window).map(|j| (docs[j], impacts[j])).collect();
            prop_assert_eq!(seen, want);
            prop_assert_eq!(c.doc(), docs.get(from + in_window).copied().unwrap_or(END));
            start = end;
        }
    }
}
