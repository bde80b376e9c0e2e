//! Build-then-open tests of the whole format against the collection it came from.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::reader::{BlockMaxRow, Index, SuperblockRow};
use crate::build::{build_index, BuildOptions};
use crate::quantize::Quantizer;
use crate::Collection;

type Docs = Vec<(String, Vec<(String, f32)>)>;

fn collection_of(docs: &Docs) -> Collection {
    let mut c = Collection::new();
    for (id, entries) in docs {
        let e: Vec<(u32, f32)> = entries
            .iter()
            .map(|(t, w)| (c.intern_term(t), *w))
            .collect();
        c.add_document(id, &e).unwrap();
    }
    c
}

fn build(docs: &Docs, block_size: u32) -> (tempfile::TempDir, Index) {
    build_with(docs, BuildOptions::with_block_size(block_size))
}

fn build_with(docs: &Docs, options: BuildOptions) -> (tempfile::TempDir, Index) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.bmp");
    build_index(&collection_of(docs), &path, &options, &mut |_, _, _| {}).unwrap();
    let index = Index::open(&path).unwrap();
    (dir, index)
}

/// Checks every section of `index` against `docs`.
fn check_against(docs: &Docs, index: &Index) {
    let c = collection_of(docs);
    let q = Quantizer::for_weights(c.max_weight(), c.all_integral());
    assert_eq!(index.quantizer(), q);
    // Expected postings: term -> [(doc, impact)].
    let mut expected: BTreeMap<&str, Vec<(u32, u8)>> = BTreeMap::new();
    for (d, (_, entries)) in docs.iter().enumerate() {
        for (t, w) in entries {
            if *w > 0.0 {
                expected
                    .entry(t)
                    .or_default()
                    .push((d as u32, q.quantize(*w)));
            }
        }
    }
    assert_eq!(index.num_docs() as usize, docs.len());
    assert_eq!(index.num_terms() as usize, expected.len());
    assert_eq!(
        index.num_postings() as usize,
        expected.values().map(Vec::len).sum::<usize>()
    );
    for (d, (id, _)) in docs.iter().enumerate() {
        assert_eq!(index.doc_id(d as u32).unwrap(), id);
    }
    let b = index.block_size();
    for (t, (term, postings)) in expected.iter().enumerate() {
        let t = t as u32;
        assert_eq!(index.term(t).unwrap(), *term);
        assert_eq!(index.term_id(term).unwrap(), Some(t));
        let stats = index.term_stats(t).unwrap();
        assert_eq!(stats.df as usize, postings.len());
        assert_eq!(
            stats.max_impact,
            postings.iter().map(|p| p.1).max().unwrap()
        );
        let mut sorted: Vec<u8> = postings.iter().map(|p| p.1).collect();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        for (i, k) in super::KTH_IMPACT_KS.iter().enumerate() {
            assert_eq!(stats.kth_impact[i], sorted.get(k - 1).copied().unwrap_or(0));
        }
        let (got_docs, got_impacts) = index.postings(t).unwrap().to_vecs().unwrap();
        let want_docs: Vec<u32> = postings.iter().map(|p| p.0).collect();
        let want_impacts: Vec<u8> = postings.iter().map(|p| p.1).collect();
        assert_eq!(got_docs, want_docs);
        assert_eq!(got_impacts, want_impacts);
        let row = index.block_max(t).unwrap();
        for block in 0..index.num_blocks() {
            let want = postings
                .iter()
                .filter(|p| p.0 / b == block)
                .map(|p| p.1)
                .max()
                .unwrap_or(0);
            assert_eq!(row.get(block), want, "term {term} block {block}");
        }
        match row {
            BlockMaxRow::Sparse { blocks, .. } => {
                assert!(blocks.windows(2).all(|w| w[0] < w[1]));
            }
            BlockMaxRow::Ranges { starts, lens, .. } => {
                for i in 1..starts.len() {
                    assert!(starts[i - 1] + u32::from(lens[i - 1]) < starts[i]);
                }
                assert!(lens.iter().all(|&l| l > 0));
            }
            BlockMaxRow::Dense(_) => {}
        }
        // Superblock rows: the largest and the rounded-up mean block maximum.
        let c = index.superblock_size();
        let (mut max, mut avg) = (vec![0u8; index.num_superblocks() as usize], Vec::new());
        for (s, m) in max.iter_mut().enumerate() {
            let blocks = (s as u32 * c)..((s as u32 + 1) * c).min(index.num_blocks());
            let n = blocks.len() as u32;
            let maxima: Vec<u32> = blocks.map(|b| u32::from(row.get(b))).collect();
            *m = maxima.iter().copied().max().unwrap_or(0) as u8;
            avg.push(maxima.iter().sum::<u32>().div_ceil(n) as u8);
        }
        match index.superblock_row(t).unwrap() {
            SuperblockRow::Dense { max: m, avg: a } => {
                assert_eq!((m, a), (&max[..], &avg[..]), "term {term}");
            }
            SuperblockRow::Sparse {
                ids,
                max: m,
                avg: a,
            } => {
                let present: Vec<u32> = (0..max.len() as u32)
                    .filter(|&s| max[s as usize] > 0)
                    .collect();
                assert_eq!(ids, &present[..], "term {term}");
                for (i, &s) in ids.iter().enumerate() {
                    assert_eq!((m[i], a[i]), (max[s as usize], avg[s as usize]));
                }
            }
        }
    }
    assert_eq!(index.term_id("\u{10ffff}no such term").unwrap(), None);
    // Forward index: every (term, doc, impact) exactly once, in the right block.
    let mut forward: BTreeMap<(String, u32), u8> = BTreeMap::new();
    for block in 0..index.num_blocks() {
        let fb = index.forward_block(block).unwrap();
        let terms: Vec<u32> = fb.iter().map(|(t, _)| t).collect();
        assert!(terms.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(terms.len(), fb.len());
        for &t in &terms {
            assert!(fb.find(t).is_some_and(|p| !p.is_empty()));
        }
        assert!(fb.find(index.num_terms() + 300).is_none());
        for (t, pairs) in fb.iter() {
            assert_eq!(fb.find(t), Some(pairs));
            for &[off, impact] in pairs {
                let doc = block * b + u32::from(off);
                assert!(doc < index.num_docs());
                let term = index.term(t).unwrap().to_owned();
                assert!(forward.insert((term, doc), impact).is_none());
            }
        }
    }
    let mut want_forward = BTreeMap::new();
    for (term, postings) in &expected {
        for &(d, s) in postings {
            want_forward.insert(((*term).to_owned(), d), s);
        }
    }
    assert_eq!(forward, want_forward);
    index.verify_checksums().unwrap();
}

fn docs_strategy() -> impl Strategy<Value = Docs> {
    let entry = (
        "[a-e]{1,2}|é[xy]",
        prop_oneof![
            Just(0.0f32),
            (1u32..10_000).prop_map(|x| x as f32 / 1000.0),
            (1u8..=255).prop_map(f32::from)
        ],
    );
    proptest::collection::vec(
        proptest::collection::btree_map(entry.0, entry.1, 0..12),
        1..150,
    )
    .prop_map(|docs| {
        docs.into_iter()
            .enumerate()
            .map(|(i, m)| (format!("doc-{i}"), m.into_iter().collect()))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn build_then_open_matches_collection(docs in docs_strategy(), bs in prop_oneof![Just(8u32), Just(32), Just(256), 8u32..=256],
                                          superblock_size in prop_oneof![Just(1u32), Just(2), Just(16), Just(1024)]) {
        let (_dir, index) = build_with(&docs, BuildOptions { block_size: bs, superblock_size, ..BuildOptions::default() });
        assert_eq!(index.superblock_size(), superblock_size);
        check_against(&docs, &index);
    }
}

#[test]
fn long_posting_lists_cross_chunks_and_dense_rows() {
    let docs: Docs = (0..1000)
        .map(|i| {
            let mut v = vec![("common".to_owned(), 1.0 + (i % 7) as f32)];
            if i % 3 == 0 {
                v.push(("third".to_owned(), 2.5));
            }
            if i == 999 {
                v.push(("rare".to_owned(), 9.0));
            }
            if (400..560).contains(&i) || (576..700).contains(&i) {
                v.push(("clustered".to_owned(), 1.0 + (i % 5) as f32));
            }
            (format!("d{i}"), v)
        })
        .collect();
    let (_dir, index) = build(&docs, 8);
    check_against(&docs, &index);
    let common = index.term_id("common").unwrap().unwrap();
    assert!(matches!(
        index.block_max(common).unwrap(),
        BlockMaxRow::Dense(_)
    ));
    let rare = index.term_id("rare").unwrap().unwrap();
    assert!(matches!(
        index.block_max(rare).unwrap(),
        BlockMaxRow::Sparse { .. }
    ));
    // Blocks 50..=69 and 72..=87 (block size 8): one range across the two-block gap.
    let clustered = index.term_id("clustered").unwrap().unwrap();
    match index.block_max(clustered).unwrap() {
        BlockMaxRow::Ranges {
            starts,
            lens,
            maxes,
        } => {
            assert_eq!(starts, &[50]);
            assert_eq!(lens, &[38]);
            assert_eq!(maxes.len(), 38);
            assert_eq!(&maxes[20..22], &[0, 0]);
        }
        other => panic!("expected a range-compressed row, got {other:?}"),
    }
    assert_eq!(index.postings(common).unwrap().num_chunks(), 8);
}

#[test]
fn documents_follow_the_given_order() {
    let docs: Docs = (0..100)
        .map(|i| {
            (
                format!("d{i}"),
                vec![(format!("t{}", i % 7), 1.0 + (i % 5) as f32)],
            )
        })
        .collect();
    let order: Vec<u32> = (0..100).rev().collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.bmp");
    crate::build::build_index_ordered(
        &collection_of(&docs),
        &order,
        &path,
        &BuildOptions::with_block_size(8),
        &mut |_, _, _| {},
    )
    .unwrap();
    let index = Index::open(&path).unwrap();
    let reversed: Docs = docs.iter().rev().cloned().collect();
    check_against(&reversed, &index);
    let bad = [0u32, 0, 1];
    assert!(crate::build::build_index_ordered(
        &collection_of(&docs[..3].to_vec()),
        &bad,
        &path,
        &BuildOptions::default(),
        &mut |_, _, _| {}
    )
    .is_err());
}

#[test]
fn empty_documents_are_indexed() {
    let docs: Docs = vec![
        ("a".into(), vec![]),
        ("b".into(), vec![("x".into(), 1.0)]),
        ("c".into(), vec![]),
    ];
    let (_dir, index) = build(&docs, 8);
    check_against(&docs, &index);
}

#[test]
fn invalid_builds_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.bmp");
    let empty = Collection::new();
    assert!(build_index(&empty, &path, &BuildOptions::default(), &mut |_, _, _| {}).is_err());
    let docs: Docs = vec![("a".into(), vec![("x".into(), 1.0)])];
    for bs in [0, 7, 257] {
        let err = build_index(
            &collection_of(&docs),
            &path,
            &BuildOptions::with_block_size(bs),
            &mut |_, _, _| {},
        )
        .unwrap_err();
        assert!(err.to_string().contains("block size"), "{err}");
    }
    for superblock_size in [0, 3, 2048] {
        let options = BuildOptions {
            superblock_size,
            ..BuildOptions::default()
        };
        let err =
            build_index(&collection_of(&docs), &path, &options, &mut |_, _, _| {}).unwrap_err();
        assert!(err.to_string().contains("superblock size"), "{err}");
    }
    assert!(!path.exists());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn every_truncation_is_refused_at_open() {
    let docs: Docs = (0..40)
        .map(|i| {
            (
                format!("d{i}"),
                vec![(format!("t{}", i % 5), 1.0 + i as f32)],
            )
        })
        .collect();
    let (dir, index) = build(&docs, 8);
    let bytes = std::fs::read(index.path()).unwrap();
    let cut = dir.path().join("cut.bmp");
    for len in (0..bytes.len()).step_by(97).chain([bytes.len() - 1]) {
        std::fs::write(&cut, &bytes[..len]).unwrap();
        let err = Index::open(&cut).unwrap_err().to_string();
        assert!(
            err.contains("corrupt index") || err.contains("not a bmp index"),
            "{len}: {err}"
        );
    }
}

#[test]
fn wide_forward_blocks() {
    // 256 documents of 260 terms in one 256-document block: more than 65,535 pairs.
    let docs: Docs = (0..256)
        .map(|i| {
            let entries = (0..260)
                .map(|t| {
                    (
                        format!("t{}", (t * 7 + i) % 400),
                        1.0 + ((t + i) % 9) as f32,
                    )
                })
                .collect::<BTreeMap<_, _>>()
                .into_iter()
                .collect();
            (format!("d{i}"), entries)
        })
        .collect();
    let (_dir, index) = build(&docs, 256);
    check_against(&docs, &index);
}
