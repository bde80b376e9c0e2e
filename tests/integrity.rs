//! Index integrity: `check` passes on built indexes; every flipped byte of a small index
//! (padding included) is caught at open or by `check`; and when a flipped section byte is re-sealed with a valid
//! checksum (what a bug in a writer would produce), either `check` names the problem or the index
//! still answers every query exactly as before: never a wrong answer, never a crash.

use std::path::Path;

use bmp_index::build::{build_index, BuildOptions};
use bmp_index::check::check;
use bmp_index::{Collection, Index};
use bmp_query::{Hit, Query, SearchSpec};
use xxhash_rust::xxh3::xxh3_64;

const HEADER: usize = 128;
const ENTRY: usize = 32;
const SECTIONS: usize = 13;

/// A deterministic generator (no dependency on a random crate's stream).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// 300 documents over 60 terms (a few in most documents, so the 100th-largest impacts exist),
/// blocks of 8 documents, superblocks of 2 blocks; and 40 queries.
fn small_index(path: &Path) -> Vec<Vec<(String, f32)>> {
    let mut rng = Lcg(7);
    let mut c = Collection::new();
    let terms: Vec<u32> = (0..60)
        .map(|t| c.intern_term(&format!("t{t:02}")))
        .collect();
    for d in 0..300 {
        let mut entries: Vec<(u32, f32)> = Vec::new();
        for (i, &t) in terms.iter().enumerate() {
            let p = if i < 4 { 80 } else { 6 };
            if rng.next(100) < p {
                entries.push((t, 1.0 + rng.next(200) as f32 / 10.0));
            }
        }
        if entries.is_empty() {
            entries.push((terms[59], 0.5));
        }
        c.add_document(&format!("doc{d}"), &entries).unwrap();
    }
    let options = BuildOptions {
        block_size: 8,
        superblock_size: 2,
        ..BuildOptions::default()
    };
    build_index(&c, path, &options, &mut |_, _, _| {}).unwrap();
    (0..40)
        .map(|_| {
            let n = 1 + rng.next(5);
            (0..n)
                .map(|_| {
                    (
                        format!("t{:02}", rng.next(60)),
                        0.2 + rng.next(30) as f32 / 10.0,
                    )
                })
                .collect()
        })
        .collect()
}

/// The safe processors' answers to every query, at k = 5 and k = 40. The queries are resolved to
/// term ids once, on the intact index: a flip that renames a term (and keeps the vocabulary
/// sorted) is content no structure can vouch for, which the checksums catch.
fn answers(index: &Index, queries: &[Query]) -> bmp_index::Result<Vec<Vec<Hit>>> {
    let mut out = Vec::new();
    // Every algorithm, exhaustive first; each is rank-safe with its default settings.
    for spec in SearchSpec::ALL {
        let mut searcher = spec.searcher(index);
        for query in queries {
            for k in [5, 40] {
                out.push(searcher.search(query, k)?);
            }
        }
    }
    Ok(out)
}

/// (offset, len) of every section, from the table after the header.
fn sections(bytes: &[u8]) -> Vec<(usize, usize)> {
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap()) as usize;
    (0..SECTIONS)
        .map(|i| {
            (
                u64_at(HEADER + ENTRY * i + 8),
                u64_at(HEADER + ENTRY * i + 16),
            )
        })
        .collect()
}

/// Recomputes section `i`'s checksum and the header checksum, as a writer would.
fn reseal(bytes: &mut [u8], i: usize, (offset, len): (usize, usize)) {
    let sum = xxh3_64(&bytes[offset..offset + len]);
    let at = HEADER + ENTRY * i + 24;
    bytes[at..at + 8].copy_from_slice(&sum.to_le_bytes());
    let mut head = bytes[..HEADER + ENTRY * SECTIONS].to_vec();
    head[64..72].fill(0);
    let sum = xxh3_64(&head);
    bytes[64..72].copy_from_slice(&sum.to_le_bytes());
}

/// Opens index bytes in memory and checks them.
fn open_and_check(bytes: &[u8]) -> bmp_index::Result<Index> {
    let index = Index::from_bytes("bad.bmp", bytes)?;
    check(&index, &mut |_| {})?;
    Ok(index)
}

#[test]
fn check_passes_on_a_built_index_and_reports_what_it_covered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.bmp");
    small_index(&path);
    let index = Index::open(&path).unwrap();
    let mut calls = 0;
    let report = check(&index, &mut |_| calls += 1).unwrap();
    assert_eq!(report.docs, 300);
    assert_eq!(report.terms, 60);
    assert_eq!(report.postings, index.num_postings());
    assert_eq!(report.blocks, 38);
    assert_eq!(report.superblocks, 19);
    assert_eq!(calls, 60);
}

#[test]
fn every_flipped_byte_is_caught_at_open_or_by_check() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.bmp");
    small_index(&path);
    let good = std::fs::read(&path).unwrap();
    // In memory, the intact bytes open and check like the file.
    let intact = open_and_check(&good).unwrap();
    assert_eq!(
        intact.num_postings(),
        Index::open(&path).unwrap().num_postings()
    );
    assert!(Index::from_bytes("short.bmp", &good[..100]).is_err());
    assert!(Index::from_bytes("empty.bmp", &[]).is_err());
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x5A;
        assert!(
            open_and_check(&bad).is_err(),
            "byte {i} of {} flipped and not caught",
            good.len()
        );
    }
}

#[test]
fn a_resealed_flip_is_caught_by_check_or_changes_no_answer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.bmp");
    let entries = small_index(&path);
    let good = std::fs::read(&path).unwrap();
    let intact = Index::open(&path).unwrap();
    let queries: Vec<Query> = entries
        .iter()
        .map(|q| Query::from_entries(&intact, q).unwrap())
        .collect();
    let expected = answers(&intact, &queries).unwrap();
    let (mut caught, mut harmless) = (0, 0);
    for (s, &(offset, len)) in sections(&good).iter().enumerate() {
        for i in offset..offset + len {
            for mask in [0x01u8, 0x80] {
                let mut bad = good.clone();
                bad[i] ^= mask;
                reseal(&mut bad, s, (offset, len));
                match open_and_check(&bad) {
                    Err(_) => caught += 1,
                    Ok(index) => {
                        let got = answers(&index, &queries);
                        assert!(
                            matches!(&got, Ok(a) if *a == expected),
                            "section {s}, byte {i} ^ {mask:#x}: check passed but the answers \
                             changed"
                        );
                        harmless += 1;
                    }
                }
            }
        }
    }
    eprintln!("re-sealed flips: {caught} caught by open or check, {harmless} changed no answer");
    assert!(caught > harmless, "{caught} caught, {harmless} harmless");
}
