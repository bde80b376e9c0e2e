//! Exhaustive search against brute-force scoring, and search results preserved by a
//! JSONL -> index -> CIFF -> index round trip.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use bmp_index::build::{build_index, BuildOptions};
use bmp_index::export::export_ciff;
use bmp_index::readers::{ciff, jsonl, open_maybe_gzip};
use bmp_index::{Collection, Index, Quantizer};
use bmp_query::{Hit, Query, SearchSpec};
use proptest::prelude::*;

type Docs = Vec<Vec<(String, f32)>>;

fn write_jsonl(path: &Path, docs: &Docs) {
    let mut f = std::fs::File::create(path).unwrap();
    for (i, d) in docs.iter().enumerate() {
        let v: Vec<String> = d.iter().map(|(t, w)| format!("\"{t}\": {w:?}")).collect();
        writeln!(
            f,
            "{{\"id\": \"doc{i}\", \"vector\": {{{}}}}}",
            v.join(", ")
        )
        .unwrap();
    }
}

fn build_from(input: &Path, output: &Path, is_ciff: bool, block_size: u32) -> Index {
    let mut c = Collection::new();
    let reader = open_maybe_gzip(input).unwrap();
    if is_ciff {
        ciff::read_ciff_into(reader, input, &mut c).unwrap();
    } else {
        jsonl::read_jsonl_into(reader, input, &mut c).unwrap();
    }
    build_index(
        &c,
        output,
        &BuildOptions::with_block_size(block_size),
        &mut |_, _, _| {},
    )
    .unwrap();
    Index::open(output).unwrap()
}

/// Ranks every document by sum of query weight x quantized impact, straight from the input.
fn brute_force(docs: &Docs, index: &Index, query: &Query, k: usize) -> Vec<(String, u32)> {
    let max = docs.iter().flatten().map(|e| e.1).fold(0.0f32, f32::max);
    let integral = docs.iter().flatten().all(|e| e.1.fract() == 0.0);
    let q = Quantizer::for_weights(max, integral);
    let weights: BTreeMap<&str, u32> = query
        .terms
        .iter()
        .map(|t| (index.term(t.term).unwrap(), t.weight))
        .collect();
    let mut scored: Vec<(u32, u32)> = docs
        .iter()
        .enumerate()
        .map(|(d, entries)| {
            let s = entries
                .iter()
                .map(|(t, w)| {
                    weights.get(t.as_str()).copied().unwrap_or(0) * u32::from(q.quantize(*w))
                })
                .sum();
            (d as u32, s)
        })
        .filter(|&(_, s)| s > 0)
        .collect();
    scored.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(k);
    scored
        .into_iter()
        .map(|(d, s)| (format!("doc{d}"), s))
        .collect()
}

fn named(index: &Index, hits: &[Hit]) -> Vec<(String, u32)> {
    hits.iter()
        .map(|h| (index.doc_id(h.doc).unwrap().to_owned(), h.score))
        .collect()
}

fn docs_strategy() -> impl Strategy<Value = Docs> {
    let weight = prop_oneof![
        (10u32..5000).prop_map(|x| x as f32 / 1000.0),
        (1u8..=30).prop_map(f32::from)
    ];
    proptest::collection::vec(
        proptest::collection::btree_map("t[0-9]{1,2}", weight, 0..15)
            .prop_map(|m| m.into_iter().collect()),
        1..300,
    )
}

fn queries_strategy() -> impl Strategy<Value = Vec<Vec<(String, f32)>>> {
    let weight = prop_oneof![
        (10u32..3000).prop_map(|x| x as f32 / 1000.0),
        (1u16..=400).prop_map(f32::from)
    ];
    proptest::collection::vec(
        proptest::collection::btree_map("t[0-9]{1,2}|unknown[a-z]", weight, 0..12)
            .prop_map(|m| m.into_iter().collect()),
        1..20,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn exhaustive_matches_brute_force(docs in docs_strategy(), queries in queries_strategy(),
                                      k in prop_oneof![Just(1usize), Just(10), 1usize..400],
                                      bs in prop_oneof![Just(8u32), Just(32), Just(256)]) {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("docs.jsonl");
        write_jsonl(&input, &docs);
        let index = build_from(&input, &dir.path().join("a.bmp"), false, bs);
        let mut searcher = SearchSpec::Exhaustive.searcher(&index);
        for q in &queries {
            let query = Query::from_entries(&index, q).unwrap();
            let hits = searcher.search(&query, k).unwrap();
            prop_assert_eq!(named(&index, &hits), brute_force(&docs, &index, &query, k));
        }
    }

    #[test]
    fn ciff_round_trip_preserves_results(docs in docs_strategy(), queries in queries_strategy(), gz: bool) {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("docs.jsonl");
        write_jsonl(&input, &docs);
        let a = build_from(&input, &dir.path().join("a.bmp"), false, 32);
        let ciff_path = dir.path().join(if gz { "a.ciff.gz" } else { "a.ciff" });
        export_ciff(&a, &ciff_path, &mut |_, _| {}).unwrap();
        let b = build_from(&ciff_path, &dir.path().join("b.bmp"), true, 32);
        prop_assert_eq!(a.num_docs(), b.num_docs());
        prop_assert_eq!(a.num_terms(), b.num_terms());
        prop_assert_eq!(a.num_postings(), b.num_postings());
        let mut sa = SearchSpec::Exhaustive.searcher(&a);
        let mut sb = SearchSpec::Exhaustive.searcher(&b);
        for q in &queries {
            let qa = Query::from_entries(&a, q).unwrap();
            let qb = Query::from_entries(&b, q).unwrap();
            prop_assert_eq!(&qa, &qb);
            let ha = named(&a, &sa.search(&qa, 50).unwrap());
            let hb = named(&b, &sb.search(&qb, 50).unwrap());
            prop_assert_eq!(ha, hb);
        }
    }
}

#[test]
fn query_with_no_known_term_returns_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("docs.jsonl");
    write_jsonl(&input, &vec![vec![("a".to_owned(), 1.0)]]);
    let index = build_from(&input, &dir.path().join("a.bmp"), false, 8);
    let query = Query::from_entries(&index, &[("zzz".to_owned(), 2.0)]).unwrap();
    assert_eq!(query.unknown_terms, 1);
    assert!(query.is_empty());
    let mut s = SearchSpec::Exhaustive.searcher(&index);
    assert!(s.search(&query, 10).unwrap().is_empty());
    assert!(Query::from_entries(&index, &[("a".to_owned(), f32::NAN)]).is_err());
    assert!(Query::from_entries(&index, &[("a".to_owned(), -1.0)]).is_err());
}

#[test]
fn real_splade_queries_on_toy_ciff() {
    let ciff_path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/ciff-toy/toy-complete-20200309.ciff.gz"
    ));
    if !ciff_path.exists() {
        eprintln!("skipping: {} not found", ciff_path.display());
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let index = build_from(ciff_path, &dir.path().join("toy.bmp"), true, 8);
    assert_eq!(index.num_docs(), 3);
    assert_eq!(index.num_terms(), 9);
    let q = Query::from_entries(&index, &[("text".into(), 1.0), ("simpl".into(), 2.0)]).unwrap();
    let hits = SearchSpec::Exhaustive
        .searcher(&index)
        .search(&q, 10)
        .unwrap();
    // DOC222: text 3 + 2 * simpl 1 = 5; TREC_DOC_1: 1 + 2 = 3; WSJ_1: 1.
    assert_eq!(
        named(&index, &hits),
        vec![
            ("DOC222".into(), 5),
            ("TREC_DOC_1".into(), 3),
            ("WSJ_1".into(), 1)
        ]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// One index's query (term table, ids merged in order) equals the query the segments'
    /// shared path makes: repeated terms summed, zero weights and unknown terms dropped, unknown
    /// ones counted.
    #[test]
    fn one_index_queries_equal_the_shared_path(
        entries in prop::collection::vec(
            (prop::sample::select(vec!["a", "b", "c", "dd", "é", "zz", "unknown", "a "]),
             prop::sample::select(vec![0.0f32, 0.25, 1.0, 1.5, 3.0, 7.0])),
            0..24,
        ),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let docs: Docs = vec![
            vec![("a".into(), 1.0), ("b".into(), 2.0)],
            vec![("c".into(), 0.5), ("dd".into(), 4.0), ("é".into(), 1.0)],
            vec![("zz".into(), 3.0), ("a".into(), 0.5)],
        ];
        let input = dir.path().join("d.jsonl");
        write_jsonl(&input, &docs);
        let index = build_from(&input, &dir.path().join("d.bmp"), false, 8);
        let entries: Vec<(String, f32)> =
            entries.into_iter().map(|(t, w)| (t.to_owned(), w)).collect();
        let single = Query::from_entries(&index, &entries).unwrap();
        let (mut shared, unknown) = Query::from_entries_shared(&[&index], &entries).unwrap();
        let shared = shared.pop().unwrap();
        prop_assert_eq!(&single.terms, &shared.terms);
        prop_assert_eq!(single.scale, shared.scale);
        prop_assert_eq!(single.unknown_terms, unknown);
        for (term, _) in &entries {
            let found = index.term_id(term).unwrap();
            prop_assert_eq!(found.map(|id| index.term(id).unwrap().to_owned()), found.map(|_| term.clone()));
            prop_assert_eq!(found.is_some(), docs.iter().flatten().any(|(t, _)| t == term));
        }
    }
}

/// Collections larger than one run of the final scan (4,096 documents): the k-th score read
/// again between runs never drops a document that should enter, with or without a filter.
#[test]
fn many_runs_of_the_scan_match_brute_force() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    let docs: Docs = (0..20_000)
        .map(|_| {
            let mut terms: BTreeMap<String, f32> = BTreeMap::new();
            for _ in 0..1 + next(6) {
                terms.insert(format!("t{}", next(40)), 1.0 + next(30) as f32);
            }
            terms.into_iter().collect()
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("docs.jsonl");
    write_jsonl(&input, &docs);
    let index = build_from(&input, &dir.path().join("a.bmp"), false, 8);
    let filter = bmp_query::DocFilter::new((0..index.num_docs()).filter(|d| d % 3 != 1).collect());
    let mut searcher = SearchSpec::Exhaustive.searcher(&index);
    for q in 0..6 {
        let entries: Vec<(String, f32)> = (0..1 + q * 3)
            .map(|i| {
                (
                    format!("t{}", (q * 7 + i * 3) % 40),
                    1.0 + ((q + i) % 5) as f32,
                )
            })
            .collect();
        let query = Query::from_entries(&index, &entries).unwrap();
        for k in [1, 10, 1000] {
            let hits = searcher.search(&query, k).unwrap();
            assert_eq!(
                named(&index, &hits),
                brute_force(&docs, &index, &query, k),
                "k={k} query={entries:?}"
            );
            let want: Vec<(String, u32)> = brute_force(&docs, &index, &query, docs.len())
                .into_iter()
                .filter(|(id, _)| id[3..].parse::<u32>().unwrap() % 3 != 1)
                .take(k)
                .collect();
            let hits = searcher.search_filtered(&query, k, Some(&filter)).unwrap();
            assert_eq!(named(&index, &hits), want, "filtered, k={k}");
        }
    }
}
