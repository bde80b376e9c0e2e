//! Hybrid queries over random two-field indexes: every safe processor returns the exact top k
//! of the fused query (linear fusion) and the same reciprocal rank fusion (rrf) as exhaustive
//! scoring; and the fused score is the weighted sum of the normalized parts.

use std::path::Path;

use bmp_index::build::{build_index, BuildOptions};
use bmp_index::{Collection, Index, LexicalField};
use bmp_lexical::{Fusion, HybridQuery, HybridSpec, LexicalAnalyzer};
use bmp_query::SearchSpec;
use proptest::prelude::*;

/// A document: learned `(term, weight)` entries over `t0..`, and lexical ones over `bm25:w0..`.
type Doc = (Vec<(usize, u32)>, Vec<(usize, u32)>);

fn build(docs: &[Doc], block_size: u32, dir: &Path) -> Index {
    let mut c = Collection::new();
    for (i, (learned, lexical)) in docs.iter().enumerate() {
        let mut entries: Vec<(u32, f32)> = Vec::new();
        for &(t, w) in learned {
            entries.push((c.intern_term(&format!("t{t}")), w as f32));
        }
        for &(t, w) in lexical {
            entries.push((c.intern_term(&format!("bm25:w{t}")), w as f32));
        }
        c.add_document(&format!("doc{i}"), &entries)
            .expect("valid document");
    }
    let path = dir.join("hybrid.bmp");
    let options = BuildOptions {
        lexical: Some(LexicalField {
            k1: 1.2,
            b: 0.75,
            scale: 1.0,
        }),
        ..BuildOptions::with_block_size(block_size)
    };
    build_index(&c, &path, &options, &mut |_, _, _| {}).expect("builds");
    Index::open(&path).expect("opens")
}

/// Entries drawn without repeats from `0..vocab`, weights `1..=max`.
fn entries(vocab: usize, max: u32) -> impl Strategy<Value = Vec<(usize, u32)>> {
    proptest::collection::btree_map(0..vocab, 1..=max, 0..6).prop_map(|m| m.into_iter().collect())
}

fn docs() -> impl Strategy<Value = Vec<Doc>> {
    proptest::collection::vec((entries(12, 200), entries(10, 60)), 1..400)
}

/// A query: learned entries (weights over 100), and the words of its text (`w3 w3 w7`).
fn query() -> impl Strategy<Value = (Vec<(usize, u32)>, Vec<usize>)> {
    (
        entries(14, 100),
        proptest::collection::vec(0usize..12, 0..6),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_safe_processor_returns_the_fused_top_k(
        docs in docs(),
        queries in proptest::collection::vec(query(), 1..6),
        weight in 0u32..=10,
        block_size in prop_oneof![Just(8u32), Just(32)],
        k in prop_oneof![Just(1usize), Just(10), Just(1000)],
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let index = build(&docs, block_size, dir.path());
        let mut analyzer = LexicalAnalyzer::default();
        let safe: Vec<SearchSpec> = SearchSpec::ALL.iter().filter(|s| s.is_safe()).cloned().collect();
        for fusion in Fusion::ALL {
            let spec = HybridSpec::new(weight as f32 / 10.0, fusion).expect("valid");
            for (learned, words) in &queries {
                let learned: Vec<(String, f32)> =
                    learned.iter().map(|&(t, w)| (format!("t{t}"), w as f32 / 100.0)).collect();
                let text: Vec<String> = words.iter().map(|w| format!("w{w}")).collect();
                let text = text.join(" ");
                let query = HybridQuery::new(&index, &spec, &learned, &text, &mut analyzer)
                    .expect("a valid hybrid query");
                let mut exhaustive = SearchSpec::Exhaustive.searcher(&index);
                let want = query
                    .search(&index, k, &mut |q, k| exhaustive.search(q, k))
                    .expect("searches");
                for s in &safe {
                    let mut searcher = s.searcher(&index);
                    let got = query
                        .search(&index, k, &mut |q, k| searcher.search(q, k))
                        .expect("searches");
                    prop_assert_eq!(&got.hits, &want.hits, "{} with {} for {:?} / {:?}", s, spec, learned, text);
                }
                for hit in &want.hits {
                    prop_assert!(hit.score > 0.0 && hit.score <= 1.0 + 1e-6, "{}: {}", spec, hit.score);
                    prop_assert_eq!(hit.raw_score.is_some(), fusion == Fusion::Linear);
                }
            }
        }
    }
}

/// Two learned terms and two words on four documents, with weights the quantizer keeps exactly
/// (integers up to 255): the fused scores are `(1 − λ) · learned / L + λ · bm25 / B`.
#[test]
fn linear_fusion_weighs_the_normalized_parts() {
    let docs: Vec<Doc> = vec![
        (vec![(0, 255), (1, 10)], vec![(0, 40)]),
        (vec![(1, 100)], vec![(0, 80), (1, 20)]),
        (vec![(0, 50)], vec![(1, 60)]),
        (vec![], vec![(0, 10)]),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let index = build(&docs, 8, dir.path());
    let learned = vec![("t0".to_owned(), 2.0), ("t1".to_owned(), 1.0)];
    // Upper bounds: L = 2 · 255 + 1 · 100 = 610; the text "w0 w1" counts each word once, so
    // B = 80 + 60 = 140.
    let learned_scores = [2.0 * 255.0 + 10.0, 100.0, 100.0, 0.0];
    let bm25_scores = [40.0, 100.0, 60.0, 10.0];
    for lambda in [0.0f32, 0.3, 0.5, 1.0] {
        let spec = HybridSpec::new(lambda, Fusion::Linear).expect("valid");
        let query = HybridQuery::new(
            &index,
            &spec,
            &learned,
            "w0 W1",
            &mut LexicalAnalyzer::default(),
        )
        .expect("valid");
        let mut searcher = SearchSpec::Exhaustive.searcher(&index);
        let fused = query
            .search(&index, 10, &mut |q, k| searcher.search(q, k))
            .expect("searches");
        let l = f64::from(lambda);
        let mut want: Vec<(u32, f64)> = (0..4u32)
            .map(|d| {
                let i = d as usize;
                (
                    d,
                    (1.0 - l) * learned_scores[i] / 610.0 + l * bm25_scores[i] / 140.0,
                )
            })
            .filter(|&(_, s)| s > 0.0)
            .collect();
        want.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        assert_eq!(fused.hits.len(), want.len(), "λ = {lambda}");
        for (got, (doc, score)) in fused.hits.iter().zip(&want) {
            assert_eq!(got.doc, *doc, "λ = {lambda}");
            // The query's weights are quantized to 255 levels of its largest.
            assert!(
                (got.score - score).abs() < 5e-3,
                "λ = {lambda}: {} vs {score}",
                got.score
            );
        }
    }
}

/// A hybrid query needs a lexical field; an index built without one is refused by name.
#[test]
fn an_index_without_a_lexical_field_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = Collection::new();
    let t = c.intern_term("t0");
    c.add_document("d", &[(t, 1.0)]).expect("valid");
    let path = dir.path().join("plain.bmp");
    build_index(&c, &path, &BuildOptions::default(), &mut |_, _, _| {}).expect("builds");
    let index = Index::open(&path).expect("opens");
    let e = HybridQuery::new(
        &index,
        &HybridSpec::default(),
        &[("t0".to_owned(), 1.0)],
        "words",
        &mut LexicalAnalyzer::default(),
    )
    .expect_err("no lexical field");
    assert!(e.to_string().contains("no lexical field"), "{e}");
}
