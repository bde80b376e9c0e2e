//! Criterion benchmarks of the query side on a BP-reordered synthetic collection: every query
//! processor at k = 10 and 1000, and posting-list decoding; and the dense bound accumulation of
//! BMP (`bounds[i] += w * row[i]`) in each of its variants (portable, AVX2, AVX-512) on rows as
//! long as 1M and 8.8M documents make at 32 documents per block; the sparse scatter of block
//! maxima into a page of bounds (bounds-checked, page-indexed, AVX-512 gather/scatter); and the
//! bucketing of block bounds (two branchy passes against one branch-free gathering pass).
//!
//! `cargo bench --bench search` (set `BMP_BENCH_DOCS` to change the collection size, default 50,000).

mod common;

use std::hint::black_box;

use bmp_index::Index;
use bmp_query::{Query, SearchSpec};
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
        for spec in SearchSpec::ALL {
            let mut searcher = spec.searcher(&index);
            group.bench_function(format!("{spec}/k={k}/{}-queries", queries.len()), |b| {
                b.iter(|| {
                    for q in &queries {
                        black_box(searcher.search(q, k).expect("search succeeds"));
                    }
                })
            });
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

/// Deterministic pseudo-random numbers for the synthetic bound tables (xorshift).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// The sparse scatter of block maxima into a page of bounds: the bounds-checked loop (before the
/// paged layout), the page-indexed scalar loop used now, and the AVX-512 gather/scatter loop.
fn bench_scatter(c: &mut Criterion) {
    use bmp_query::simd::{add_sparse_page_portable, PAGE_ENTRIES};
    let mut group = c.benchmark_group("scatter");
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for entries in [2_000usize, 20_000] {
        // Distinct ids, increasing, as in a sparse row.
        let mut ids: Vec<u16> = (0..entries).map(|_| rng.next() as u16).collect();
        ids.sort_unstable();
        ids.dedup();
        let maxes: Vec<u8> = ids.iter().map(|_| rng.next() as u8).collect();
        let mut page = vec![0u32; PAGE_ENTRIES];
        let n = ids.len();
        group.bench_function(format!("checked/{n}-entries"), |b| {
            b.iter(|| {
                for (&id, &m) in black_box(&ids).iter().zip(&maxes) {
                    if let Some(u) = page.get_mut(usize::from(id)) {
                        *u = u.wrapping_add(7u32.wrapping_mul(u32::from(m)));
                    }
                }
            })
        });
        let page: &mut [u32; PAGE_ENTRIES] = (&mut page[..]).try_into().expect("page size");
        group.bench_function(format!("paged/{n}-entries"), |b| {
            b.iter(|| add_sparse_page_portable(page, black_box(&ids), &maxes, 7))
        });
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
        {
            group.bench_function(format!("avx512-gather-scatter/{n}-entries"), |b| {
                // SAFETY: the CPU has AVX-512 F and BW (checked above).
                b.iter(|| unsafe {
                    bmp_query::simd::add_sparse_page_avx512(page, black_box(&ids), &maxes, 7)
                })
            });
        }
    }
    group.finish();
}

/// Bucketing as it was before the one-pass gather: count and place in two branchy passes over
/// every bound, with a division for the bucket index. Returns the number of candidates.
fn two_pass_buckets(bounds: &[u32], floor: u32, starts: &mut [u32], items: &mut Vec<u32>) -> usize {
    let nb = starts.len() - 1;
    let max_bound = bounds.iter().copied().max().unwrap_or(0);
    if max_bound < floor {
        return 0;
    }
    let width = (u64::from(max_bound - floor) + 1)
        .div_ceil(nb as u64)
        .max(1);
    let bucket = |u: u32| (u64::from(u - floor) / width) as usize;
    starts.fill(0);
    for &u in bounds {
        if u >= floor {
            starts[bucket(u) + 1] += 1;
        }
    }
    for j in 0..nb {
        starts[j + 1] += starts[j];
    }
    let total = starts[nb] as usize;
    items.clear();
    items.resize(total, 0);
    let mut fill = starts[..nb].to_vec();
    for (i, &u) in bounds.iter().enumerate() {
        if u >= floor {
            let slot = &mut fill[bucket(u)];
            items[*slot as usize] = i as u32;
            *slot += 1;
        }
    }
    total
}

/// Bucketing the block bounds of one query: the two-pass loop against the one-pass
/// gather ([`bmp_query::blocks::Buckets::fill`]), and the gathering pass alone, scalar and
/// AVX-512, on bound tables shaped like BMP's (most blocks
/// touched by a few query terms, a floor that keeps about a tenth of them).
fn bench_bucketing(c: &mut Criterion) {
    use bmp_query::blocks::{Buckets, NUM_BUCKETS};
    let mut group = c.benchmark_group("bucketing");
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    for blocks in [31_250usize, 276_307] {
        let mut bounds = vec![0u32; blocks];
        for u in &mut bounds {
            for _ in 0..30 {
                if rng.next().is_multiple_of(8) {
                    *u += (rng.next() % 40) as u32 * (rng.next() % 256) as u32;
                }
            }
        }
        let mut sorted = bounds.clone();
        sorted.sort_unstable();
        let floor = sorted[blocks * 9 / 10];
        let mut starts = vec![0u32; NUM_BUCKETS + 1];
        let mut items = Vec::new();
        let kept = two_pass_buckets(&bounds, floor, &mut starts, &mut items);
        let mut buckets = Buckets::new();
        buckets.fill(&bounds, floor);
        assert_eq!(
            buckets.items.len(),
            kept,
            "both bucketings keep the same blocks"
        );
        group.bench_function(format!("two-pass/{blocks}-blocks"), |b| {
            b.iter(|| two_pass_buckets(black_box(&bounds), floor, &mut starts, &mut items))
        });
        group.bench_function(format!("one-pass/{blocks}-blocks"), |b| {
            b.iter(|| buckets.fill(black_box(&bounds), floor))
        });
        // The gathering pass alone, in each of its variants.
        let mut out = vec![0u32; blocks + 16];
        group.bench_function(format!("gather-scalar/{blocks}-blocks"), |b| {
            b.iter(|| {
                bmp_query::simd::gather_at_least_portable(black_box(&bounds), floor, &mut out)
            })
        });
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx512f") {
            group.bench_function(format!("gather-avx512/{blocks}-blocks"), |b| {
                // SAFETY: the CPU has AVX-512 F (checked above); `out` has 16 spare entries.
                b.iter(|| unsafe {
                    bmp_query::simd::gather_at_least_avx512(black_box(&bounds), floor, &mut out)
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench, bench_bounds, bench_scatter, bench_bucketing);
criterion_main!(benches);
