//! Arbitrary bytes as an index file: opening, checking and querying it give errors or answers,
//! never a panic or an out-of-bounds read. When `check` passes, every safe processor must agree
//! with exhaustive scoring.
#![no_main]

use bmp_index::check::check;
use bmp_index::Index;
use bmp_query::{Algorithm, Query, QueryTerm, SearchSpec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(index) = Index::from_bytes("fuzz.bmp", data) else {
        return;
    };
    let checked = check(&index, &mut |_| {}).is_ok();
    let terms: Vec<QueryTerm> = (0..index.num_terms().min(8))
        .map(|term| QueryTerm { term, weight: 1 + term % 5 })
        .collect();
    let query = Query { terms, unknown_terms: 0 };
    let mut answers = Vec::new();
    for algorithm in [Algorithm::Exhaustive, Algorithm::Bmp, Algorithm::Sp, Algorithm::MaxScore] {
        let answer = SearchSpec::new(algorithm).searcher(&index).search(&query, 10);
        answers.push(answer.ok());
    }
    if checked {
        for a in &answers[1..] {
            assert_eq!(a, &answers[0], "a checked index answered differently");
        }
    }
});
