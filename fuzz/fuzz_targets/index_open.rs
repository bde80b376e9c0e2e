//! Arbitrary bytes as an index file: opening, checking and querying it give errors or answers,
//! never a panic or an out-of-bounds read. The bytes are tried twice: as they are, and re-sealed
//! (every section checksum and the header checksum recomputed, as a buggy writer would leave
//! them) so that mutations reach the structure behind the checksums. When `check` passes, every
//! safe processor must agree with exhaustive scoring.
#![no_main]

use bmp_index::check::check;
use bmp_index::format::writer::header_checksum;
use bmp_index::format::{Header, SectionEntry, HEADER_SIZE, SECTION_ENTRY_SIZE};
use bmp_index::Index;
use bmp_query::{Query, QueryTerm, SearchSpec};
use libfuzzer_sys::fuzz_target;
use xxhash_rust::xxh3::xxh3_64;

/// The bytes with valid checksums, when they hold a header and a section table.
fn resealed(data: &[u8]) -> Option<Vec<u8>> {
    let mut bytes = data.to_vec();
    if bytes.len() < HEADER_SIZE {
        return None;
    }
    let header: Header = bytemuck::pod_read_unaligned(&bytes[..HEADER_SIZE]);
    let sections = header.num_sections as usize;
    let table_end = HEADER_SIZE.checked_add(sections.checked_mul(SECTION_ENTRY_SIZE)?)?;
    if sections > 64 || bytes.len() < table_end {
        return None;
    }
    let mut entries: Vec<SectionEntry> = bytes[HEADER_SIZE..table_end]
        .chunks_exact(SECTION_ENTRY_SIZE)
        .map(bytemuck::pod_read_unaligned)
        .collect();
    for e in &mut entries {
        let start = usize::try_from(e.offset).ok()?;
        let end = start.checked_add(usize::try_from(e.len).ok()?)?;
        if let Some(section) = bytes.get(start..end) {
            e.checksum = xxh3_64(section);
        }
    }
    let mut header = header;
    header.checksum = header_checksum(&header, &entries);
    bytes[..HEADER_SIZE].copy_from_slice(bytemuck::bytes_of(&header));
    bytes[HEADER_SIZE..table_end].copy_from_slice(bytemuck::cast_slice(&entries));
    Some(bytes)
}

fn exercise(bytes: &[u8]) {
    let Ok(index) = Index::from_bytes("fuzz.bmp", bytes) else {
        return;
    };
    let checked = check(&index, &mut |_| {}).is_ok();
    let terms: Vec<QueryTerm> = (0..index.num_terms().min(8))
        .map(|term| QueryTerm {
            term,
            weight: 1 + term % 5,
        })
        .collect();
    let query = Query {
        terms,
        unknown_terms: 0,
    };
    let mut answers = Vec::new();
    // Every algorithm, exhaustive first; each is rank-safe with its default settings.
    for spec in SearchSpec::ALL {
        let mut searcher = spec.searcher(&index);
        answers.push(searcher.search(&query, 10).ok());
    }
    if checked {
        for a in &answers[1..] {
            assert_eq!(a, &answers[0], "a checked index answered differently");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    exercise(data);
    if let Some(bytes) = resealed(data) {
        exercise(&bytes);
    }
});
