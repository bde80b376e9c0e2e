//! The CIFF reader on arbitrary bytes: an error or a collection, never a panic.
#![no_main]

use bmp_index::readers::ciff::read_ciff_into;
use bmp_index::Collection;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut collection = Collection::new();
    let _ = read_ciff_into(data, std::path::Path::new("fuzz.ciff"), &mut collection);
});
