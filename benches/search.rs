//! Criterion benchmarks of the query side on a BP-reordered synthetic collection: every query
//! processor at k = 10 and 1000, and posting-list decoding; and the dense bound accumulation of
//! BMP (`bounds[i] += w * row[i]`) in each of its variants (portable, AVX2, AVX-512) on rows as
//! long as 1M and 8.8M documents make at 32 documents per block.
//!
//! `cargo bench --bench search` (set `BMP_BENCH_DOCS` to change the collection size, default 50,000).

mod common;

use std::hint::black_box;

use bmp_index::Index;
use bmp_query::{Algorithm, Query, SearchSpec};
use criterion::{criterion_group, criterion_main, Criterion};

fn setup() -> (tempfile::TempDir, Index, Vec<Query>) {
    let docs = std::env::var("BMP_BENCH_DOCS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let dir = tempfile::tempdir().expect("temporary directory");
    let (path, entries) = common::synthetic_index(dir.path(), "bench.bmp", docs, 200);
    let index = Index::open(&path).expect("index opens");
    let queries = entries
        .iter()
        .map(|q| Query::from_entries(&index, q).expect("valid query"))
        .collect();
    (dir, index, queries)
}

fn bench(c: &mut Criterion) {
    let (_dir, index, queries) = setup();
    let mut group = c.benchmark_group("search");
    group.sample_size(10);
    for k in [10usize, 1000] {
        for algorithm in Algorithm::ALL {
            let mut searcher = SearchSpec::new(algorithm).searcher(&index);
            group.bench_function(
                format!("{algorithm}/k={k}/{}-queries", queries.len()),
                |b| {
                    b.iter(|| {
                        for q in &queries {
                            black_box(searcher.search(q, k).expect("search succeeds"));
                        }
                    })
                },
            );
        }
    }
    group.finish();
    let longest = (0..index.num_terms())
        .max_by_key(|&t| index.term_stats(t).map(|s| s.df).unwrap_or(0))
        .unwrap_or(0);
    let postings = index.postings(longest).expect("postings");
    c.bench_function(&format!("decode/{}-postings", postings.len()), |b| {
        b.iter(|| {
            let mut sum = 0u64;
            postings
                .for_each(|d, s| sum += u64::from(d) + u64::from(s))
                .expect("decodes");
            black_box(sum)
        })
    });
}

fn bench_bounds(c: &mut Criterion) {
    let mut group = c.benchmark_group("bounds");
    for blocks in [31_250usize, 276_307] {
        let row: Vec<u8> = (0..blocks).map(|i| (i * 37 % 251) as u8).collect();
        let mut bounds = vec![0u32; blocks];
        group.bench_function(format!("portable/{blocks}-blocks"), |b| {
            b.iter(|| bmp_query::simd::add_dense_portable(&mut bounds, black_box(&row), 7))
        });
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2") {
                group.bench_function(format!("avx2/{blocks}-blocks"), |b| {
                    // SAFETY: the CPU has AVX2 (checked above).
                    b.iter(|| unsafe {
                        bmp_query::simd::add_dense_avx2(&mut bounds, black_box(&row), 7)
                    })
                });
            }
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
            {
                group.bench_function(format!("avx512/{blocks}-blocks"), |b| {
                    // SAFETY: the CPU has AVX-512 F and BW (checked above).
                    b.iter(|| unsafe {
                        bmp_query::simd::add_dense_avx512(&mut bounds, black_box(&row), 7)
                    })
                });
            }
        }
        group.bench_function(format!("dispatched/{blocks}-blocks"), |b| {
            b.iter(|| bmp_query::simd::add_dense(&mut bounds, black_box(&row), 7))
        });
    }
    group.finish();
}

criterion_group!(benches, bench, bench_bounds);
criterion_main!(benches);
