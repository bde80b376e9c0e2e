//! Block-Max Pruning and superblock pruning against exhaustive scoring: rank-safe BMP and SP
//! return exactly the exhaustive top-k (same documents, scores and order) on random collections
//! rich in ties, for block sizes 8..=256, superblock sizes 1..=256 and k from 1 to 1000, and on
//! real SPLADE++ queries.

use std::collections::HashMap;
use std::path::Path;

use bmp_index::build::{build_index, BuildOptions};
use bmp_index::format::reader::BlockMaxRow;
use bmp_index::readers::queries::read_queries;
use bmp_index::{Collection, Index};
use bmp_query::bmp::{Bmp, BmpParams};
use bmp_query::exhaustive::Exhaustive;
use bmp_query::sp::{Sp, SpParams};
use bmp_query::{DocFilter, Query, Searcher};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

type Docs = Vec<Vec<(u16, u8)>>;

fn build(docs: &Docs, block_size: u32, dir: &Path) -> Index {
    build_sp(docs, block_size, 16, dir)
}

fn build_sp(docs: &Docs, block_size: u32, superblock_size: u32, dir: &Path) -> Index {
    let mut c = Collection::new();
    for (i, d) in docs.iter().enumerate() {
        let entries: Vec<(u32, f32)> = d
            .iter()
            .map(|&(t, w)| (c.intern_term(&format!("t{t}")), f32::from(w)))
            .collect();
        c.add_document(&format!("d{i}"), &entries).unwrap();
    }
    let path = dir.join("x.bmp");
    let options = BuildOptions {
        block_size,
        superblock_size,
        ..BuildOptions::default()
    };
    build_index(&c, &path, &options, &mut |_, _, _| {}).unwrap();
    Index::open(&path).unwrap()
}

/// Documents drawn from a few topics with tiny integer weights: many equal scores.
fn docs_strategy() -> impl Strategy<Value = Docs> {
    (1usize..1500, 2u16..60, 1u8..5, any::<u64>())
        .prop_map(|(n, vocab, max_w, seed)| random_docs(n, vocab, max_w, seed))
}

/// `n` documents over `vocab` terms with weights `1..=max_w`, drawn from a few topics.
fn random_docs(n: usize, vocab: u16, max_w: u8, seed: u64) -> Docs {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let topic = rng.random_range(0..4u16);
            let len = rng.random_range(0..12);
            let mut d: Vec<(u16, u8)> = (0..len)
                .map(|_| {
                    let t = if rng.random_bool(0.6) {
                        (topic * 7 + rng.random_range(0..7)) % vocab
                    } else {
                        rng.random_range(0..vocab)
                    };
                    (t, rng.random_range(1..=max_w))
                })
                .collect();
            d.sort_unstable();
            d.dedup_by_key(|e| e.0);
            d
        })
        .collect()
}

/// Several workers on an index of many stripes of blocks (the property test's indexes have a
/// few): the same hits as exhaustive scoring, filtered or not.
#[test]
fn parallel_bmp_equals_exhaustive_over_many_stripes() {
    for (seed, bs) in [(1u64, 8u32), (2, 16), (3, 8)] {
        let docs = random_docs(30_000, 50, 4, seed);
        let dir = tempfile::tempdir().unwrap();
        let index = build(&docs, bs, dir.path());
        let mut exhaustive = Exhaustive::new(&index);
        let mut parallel: Vec<Bmp> = (2..=3)
            .map(|t| {
                Bmp::new(&index, BmpParams::default())
                    .with_threads(t)
                    .with_min_blocks_per_worker(64)
                    .with_blocks_per_hit(0)
            })
            .collect();
        // Every posting, the documents split into 2 and 3 ranges filled in parallel.
        parallel.extend((2..=3).map(|t| {
            Bmp::new(&index, BmpParams::default())
                .with_threads(t)
                .with_min_blocks_per_worker(64)
                .with_blocks_per_hit(usize::MAX)
        }));
        let filter = DocFilter::new((0..index.num_docs()).filter(|d| d % 5 != 2).collect());
        for q in queries_for(50, seed) {
            let query = Query::from_entries(&index, &q).unwrap();
            for k in [1, 10, 100, 1000, 5000] {
                let want = exhaustive.search(&query, k).unwrap();
                let want_filtered = exhaustive
                    .search_filtered(&query, k, Some(&filter))
                    .unwrap();
                for p in &mut parallel {
                    assert_eq!(p.search(&query, k).unwrap(), want, "k={k} {q:?}");
                    assert_eq!(
                        p.search_filtered(&query, k, Some(&filter)).unwrap(),
                        want_filtered,
                        "k={k} {q:?}, filtered"
                    );
                }
            }
        }
    }
}

fn queries_for(vocab_hint: u16, seed: u64) -> Vec<Vec<(String, f32)>> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..12)
        .map(|_| {
            let n = rng.random_range(1..10);
            let mut q: HashMap<String, f32> = HashMap::new();
            for _ in 0..n {
                let w = if rng.random_bool(0.5) {
                    f32::from(rng.random_range(1u8..4))
                } else {
                    rng.random_range(0.01f32..2.0)
                };
                q.insert(format!("t{}", rng.random_range(0..vocab_hint + 3)), w);
            }
            q.into_iter().collect()
        })
        .collect()
}

/// An approximate searcher's answers: at most k hits, each with its true (exhaustive) score, in
/// result order.
fn check_true_scores(
    index: &Index,
    searcher: &mut dyn Searcher,
    k: usize,
    qseed: u64,
) -> Result<(), TestCaseError> {
    let mut exhaustive = Exhaustive::new(index);
    for q in queries_for(60, qseed) {
        let query = Query::from_entries(index, &q).unwrap();
        let all: HashMap<u32, u32> = exhaustive
            .search(&query, usize::MAX >> 1)
            .unwrap()
            .into_iter()
            .map(|h| (h.doc, h.score))
            .collect();
        let got = searcher.search(&query, k).unwrap();
        prop_assert!(got.len() <= k);
        for h in &got {
            prop_assert_eq!(all.get(&h.doc), Some(&h.score));
        }
        prop_assert!(got.windows(2).all(|w| w[0].rank_cmp(&w[1]).is_lt()));
    }
    Ok(())
}

/// Numbers `n / 1000` for `n` in `range` (proptest's own float ranges can trip an assertion of
/// its sampler).
fn thousandths(range: std::ops::Range<u32>) -> impl Strategy<Value = f32> {
    range.prop_map(|x| x as f32 / 1000.0)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn safe_bmp_equals_exhaustive(docs in docs_strategy(),
                                  bs in prop_oneof![Just(8u32), Just(32), Just(256), 8u32..=256],
                                  k in prop_oneof![Just(1usize), Just(2), Just(10), Just(100), Just(1000), 1usize..1200],
                                  qseed: u64) {
        let dir = tempfile::tempdir().unwrap();
        let index = build(&docs, bs, dir.path());
        let mut exhaustive = Exhaustive::new(&index);
        let mut bmp = Bmp::new(&index, BmpParams::default());
        // Every block from the forward index, and the blocks left term at a time as soon as
        // the search first checks (after 16 blocks).
        let mut forward_only = Bmp::new(&index, BmpParams::default()).with_block_cost(0);
        let mut term_tail = Bmp::new(&index, BmpParams::default())
            .with_block_cost(usize::MAX)
            .with_blocks_per_hit(0);
        // Every posting into a dense accumulator, from the start; and split into 2 and 3 ranges
        // of documents filled in parallel.
        let mut every_posting = Bmp::new(&index, BmpParams::default()).with_blocks_per_hit(usize::MAX);
        let mut every_posting_split: Vec<Bmp> = (2..=3)
            .map(|t| Bmp::new(&index, BmpParams::default()).with_threads(t).with_min_blocks_per_worker(1).with_blocks_per_hit(usize::MAX))
            .collect();
        // Two and three workers, each on a range of as few as 1 block.
        let mut parallel: Vec<Bmp> = (2..=3)
            .map(|t| Bmp::new(&index, BmpParams::default()).with_threads(t).with_min_blocks_per_worker(1).with_blocks_per_hit(0))
            .collect();
        let filter = DocFilter::new((0..index.num_docs()).filter(|d| d % 3 != 1).collect());
        for q in queries_for(60, qseed) {
            let query = Query::from_entries(&index, &q).unwrap();
            let want = exhaustive.search(&query, k).unwrap();
            let got = bmp.search(&query, k).unwrap();
            prop_assert_eq!(got, want.clone(), "k={} bs={} query={:?}", k, bs, q);
            let want_filtered = exhaustive.search_filtered(&query, k, Some(&filter)).unwrap();
            for one in [&mut forward_only, &mut term_tail, &mut every_posting] {
                prop_assert_eq!(one.search(&query, k).unwrap(), want.clone(), "one worker k={} bs={} query={:?}", k, bs, q);
                prop_assert_eq!(one.search_filtered(&query, k, Some(&filter)).unwrap(), want_filtered.clone(), "one worker, filtered");
            }
            for p in parallel.iter_mut().chain(every_posting_split.iter_mut()) {
                prop_assert_eq!(p.search(&query, k).unwrap(), want.clone(), "parallel k={} bs={} query={:?}", k, bs, q);
                prop_assert_eq!(p.search_filtered(&query, k, Some(&filter)).unwrap(), want_filtered.clone(), "parallel, filtered");
            }
        }
    }

    #[test]
    fn safe_sp_equals_exhaustive(docs in docs_strategy(),
                                 bs in prop_oneof![Just(8u32), Just(32), 8u32..=256],
                                 c in prop_oneof![Just(1u32), Just(2), Just(16), Just(64), Just(256)],
                                 k in prop_oneof![Just(1usize), Just(2), Just(10), Just(100), Just(1000), 1usize..1200],
                                 qseed: u64) {
        let dir = tempfile::tempdir().unwrap();
        let index = build_sp(&docs, bs, c, dir.path());
        let mut exhaustive = Exhaustive::new(&index);
        let mut sp = Sp::new(&index, SpParams::default());
        let mut explicit = Sp::new(&index, SpParams { mu: 1.0, eta: 1.0 });
        for q in queries_for(60, qseed) {
            let query = Query::from_entries(&index, &q).unwrap();
            let want = exhaustive.search(&query, k).unwrap();
            prop_assert_eq!(sp.search(&query, k).unwrap(), want.clone(), "k={} bs={} c={} query={:?}", k, bs, c, q);
            prop_assert_eq!(explicit.search(&query, k).unwrap(), want);
        }
    }

    #[test]
    fn approximate_sp_returns_true_scores(docs in docs_strategy(), mu in thousandths(300..1000),
                                          eta in thousandths(200..1000), k in 1usize..50, qseed: u64) {
        let dir = tempfile::tempdir().unwrap();
        let index = build_sp(&docs, 8, 4, dir.path());
        check_true_scores(&index, &mut Sp::new(&index, SpParams { mu, eta }), k, qseed)?;
    }

    #[test]
    fn approximate_bmp_returns_true_scores(docs in docs_strategy(), alpha in thousandths(300..1000),
                                           beta in thousandths(200..1000), k in 1usize..50, qseed: u64) {
        let dir = tempfile::tempdir().unwrap();
        let index = build(&docs, 16, dir.path());
        check_true_scores(&index, &mut Bmp::new(&index, BmpParams { alpha, beta }), k, qseed)?;
        let term_tail = Bmp::new(&index, BmpParams { alpha, beta }).with_block_cost(usize::MAX);
        // The term pass is taken from k = 100 on.
        check_true_scores(&index, &mut { term_tail }, k + 100, qseed)?;
    }
}

#[test]
fn alpha_and_beta_one_equal_safe() {
    let mut rng = StdRng::seed_from_u64(5);
    let docs: Docs = (0..3000)
        .map(|_| {
            let mut d: Vec<(u16, u8)> = (0..20)
                .map(|_| (rng.random_range(0..200), rng.random_range(1..=3)))
                .collect();
            d.sort_unstable();
            d.dedup_by_key(|e| e.0);
            d
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let index = build(&docs, 32, dir.path());
    let mut safe = Bmp::new(&index, BmpParams::default());
    let mut explicit = Bmp::new(
        &index,
        BmpParams {
            alpha: 1.0,
            beta: 1.0,
        },
    );
    let mut exhaustive = Exhaustive::new(&index);
    for q in queries_for(200, 9) {
        let query = Query::from_entries(&index, &q).unwrap();
        for k in [1, 10, 100, 1000] {
            let want = exhaustive.search(&query, k).unwrap();
            assert_eq!(safe.search(&query, k).unwrap(), want);
            assert_eq!(explicit.search(&query, k).unwrap(), want);
        }
    }
}

/// More than 65,536 blocks: sparse block-max rows span two pages and ranges cross the page
/// boundary (block 65,536 starts at doc 524,288 with blocks of 8).
#[test]
fn block_max_rows_across_pages() {
    let docs: Docs = (0..600_000u32)
        .map(|i| {
            let mut d = Vec::new();
            if i % 40_000 == 7 {
                d.push((1, (1 + i % 3) as u8));
            }
            if (520_000..530_000).contains(&i) && i % 2 == 0 {
                d.push((2, (1 + i % 5) as u8));
            }
            if i % 3 == 0 && i > 500_000 {
                d.push((3, 1));
            }
            if i % 99_991 == 0 {
                d.push((2, 9));
            }
            d
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let index = build(&docs, 8, dir.path());
    assert!(index.num_blocks() > 65_536);
    let row = |t: &str| index.block_max(index.term_id(t).unwrap().unwrap()).unwrap();
    assert!(matches!(row("t1"), BlockMaxRow::Sparse { page_ends, .. } if page_ends.len() == 2));
    assert!(matches!(row("t2"), BlockMaxRow::Ranges { .. }));
    let mut exhaustive = Exhaustive::new(&index);
    // Blocks only: scoring every posting would not read the rows.
    let mut bmp = Bmp::new(&index, BmpParams::default()).with_blocks_per_hit(0);
    let mut sp = Sp::new(&index, SpParams::default());
    let queries: [&[(&str, f32)]; 4] = [
        &[("t1", 3.0)],
        &[("t2", 1.0)],
        &[("t1", 5.0), ("t2", 2.0), ("t3", 1.0)],
        &[("t2", 1.0), ("t3", 4.0)],
    ];
    for q in queries {
        let entries: Vec<(String, f32)> = q.iter().map(|&(t, w)| (t.to_owned(), w)).collect();
        let query = Query::from_entries(&index, &entries).unwrap();
        for k in [1, 10, 100] {
            let want = exhaustive.search(&query, k).unwrap();
            assert_eq!(bmp.search(&query, k).unwrap(), want, "query {q:?}, k = {k}");
            assert_eq!(
                sp.search(&query, k).unwrap(),
                want,
                "sp: query {q:?}, k = {k}"
            );
        }
    }
}

#[test]
fn empty_and_unknown_queries() {
    let docs: Docs = vec![vec![(1, 2)], vec![], vec![(1, 1), (2, 3)]];
    let dir = tempfile::tempdir().unwrap();
    let index = build(&docs, 8, dir.path());
    let mut bmp = Bmp::new(&index, BmpParams::default());
    let query = Query::from_entries(&index, &[("nope".to_owned(), 1.0)]).unwrap();
    assert!(bmp.search(&query, 10).unwrap().is_empty());
    assert!(bmp.search(&Query::default(), 10).unwrap().is_empty());
    let query = Query::from_entries(&index, &[("t1".to_owned(), 1.0)]).unwrap();
    assert!(bmp.search(&query, 0).unwrap().is_empty());
    let hits = bmp.search(&query, 10).unwrap();
    assert_eq!(hits.len(), 2);
}

#[test]
fn real_splade_queries() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/splade-encoded-queries/topics.dl19-passage.splade-pp-ed.tsv.gz"
    ));
    if !path.exists() {
        eprintln!("skipping: {} not found", path.display());
        return;
    }
    let queries = read_queries(path).unwrap();
    let mut vocab: Vec<String> = queries
        .iter()
        .flat_map(|q| q.entries.iter().map(|e| e.0.clone()))
        .collect();
    vocab.sort();
    vocab.dedup();
    let mut rng = StdRng::seed_from_u64(11);
    let mut c = Collection::new();
    for i in 0..4000 {
        let n = rng.random_range(20..60);
        let mut entries: Vec<(u32, f32)> = (0..n)
            .map(|_| {
                let t = &vocab[rng.random_range(0..vocab.len())];
                (c.intern_term(t), f32::from(rng.random_range(1u8..=20)))
            })
            .collect();
        entries.sort_by_key(|e| e.0);
        entries.dedup_by_key(|e| e.0);
        c.add_document(&format!("d{i}"), &entries).unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("real.bmp");
    build_index(&c, &p, &BuildOptions::default(), &mut |_, _, _| {}).unwrap();
    let index = Index::open(&p).unwrap();
    let mut exhaustive = Exhaustive::new(&index);
    let mut bmp = Bmp::new(&index, BmpParams::default());
    let mut sp = Sp::new(&index, SpParams::default());
    for q in &queries {
        let query = Query::from_entries(&index, &q.entries).unwrap();
        for k in [1, 10, 100, 1000] {
            let want = exhaustive.search(&query, k).unwrap();
            assert_eq!(bmp.search(&query, k).unwrap(), want, "query {} k {k}", q.id);
            assert_eq!(
                sp.search(&query, k).unwrap(),
                want,
                "sp: query {} k {k}",
                q.id
            );
        }
    }
}

/// BMP's own account of a search: it scores no more blocks than reached the initial threshold,
/// and on a topical collection it skips most blocks at k = 1.
#[test]
fn statistics_show_pruning() {
    let mut rng = StdRng::seed_from_u64(3);
    // 40 topics of 10 terms each, documents grouped by topic (as reordering would leave them).
    let docs: Docs = (0..4000)
        .map(|i| {
            let topic = (i / 100) as u16;
            let mut d: Vec<(u16, u8)> = (0..8)
                .map(|_| {
                    (
                        topic * 10 + rng.random_range(0..10),
                        rng.random_range(1..=9),
                    )
                })
                .collect();
            d.sort_unstable();
            d.dedup_by_key(|e| e.0);
            d
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let index = build(&docs, 32, dir.path());
    // Blocks only: with two rare terms, scoring every posting is cheaper at any k here.
    let mut bmp = Bmp::new(&index, BmpParams::default()).with_blocks_per_hit(0);
    let mut every_posting = Bmp::new(&index, BmpParams::default());
    let mut exhaustive = Exhaustive::new(&index);
    let query =
        Query::from_entries(&index, &[("t5".to_owned(), 1.0), ("t17".to_owned(), 2.0)]).unwrap();
    for k in [1, 10, 1000] {
        assert_eq!(
            bmp.search(&query, k).unwrap(),
            exhaustive.search(&query, k).unwrap()
        );
        let s = bmp.stats();
        assert_eq!(s.blocks, index.num_blocks());
        assert!(
            s.scored <= s.candidates && s.candidates <= s.blocks,
            "{s:?}"
        );
    }
    bmp.search(&query, 1).unwrap();
    let s = bmp.stats();
    assert!(s.scored > 0 && s.scored * 4 < s.blocks, "{s:?}");
    assert!(s.candidates < s.blocks, "{s:?}");
    // The default scores every posting of these two rare terms instead: no block is visited.
    assert_eq!(
        every_posting.search(&query, 1).unwrap(),
        exhaustive.search(&query, 1).unwrap()
    );
    let s = every_posting.stats();
    assert_eq!((s.scored, s.candidates), (0, 0), "{s:?}");
}

/// A forward-index pair whose document offset lies past the end of its (last, partial) block is
/// reported as a corrupt index by BMP and SP, not read out of bounds or scored.
#[test]
fn forward_offsets_past_the_block_are_corruption() {
    let docs: Docs = (0..10).map(|_| vec![(1, 1)]).collect();
    let dir = tempfile::tempdir().unwrap();
    let index = build(&docs, 8, dir.path());
    let path = index.path().to_path_buf();
    drop(index);
    let mut bytes = std::fs::read(&path).unwrap();
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap()) as usize;
    let sections = u32::from_le_bytes(bytes[52..56].try_into().unwrap()) as usize;
    let forward = (0..sections)
        .map(|i| 128 + 32 * i)
        .find(|&e| u32::from_le_bytes(bytes[e..e + 4].try_into().unwrap()) == 11)
        .unwrap();
    let end = u64_at(&bytes, forward + 8) + u64_at(&bytes, forward + 16);
    // The last block holds documents 8 and 9: its pairs (offset, impact) end the section.
    assert_eq!(&bytes[end - 4..end], &[0, 1, 1, 1]);
    bytes[end - 2] = 5;
    std::fs::write(&path, &bytes).unwrap();
    let index = Index::open(&path).unwrap();
    let query = Query::from_entries(&index, &[("t1".to_owned(), 1.0)]).unwrap();
    let err = Bmp::new(&index, BmpParams::default())
        .with_blocks_per_hit(0)
        .search(&query, 10)
        .unwrap_err();
    assert!(err.to_string().contains("beyond the index"), "{err}");
    let err = Sp::new(&index, SpParams::default())
        .search(&query, 10)
        .unwrap_err();
    assert!(err.to_string().contains("beyond the index"), "{err}");
}
