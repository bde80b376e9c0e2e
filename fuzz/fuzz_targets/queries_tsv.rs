//! The Anserini query reader (`id \t term weight ...`) on arbitrary bytes.
#![no_main]

use bmp_index::readers::tsv::read_tsv_queries;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = read_tsv_queries(data, std::path::Path::new("fuzz.tsv"));
});
