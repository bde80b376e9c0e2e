//! The JSONL reader on arbitrary bytes: an error or a collection, never a panic. A collection it
//! accepts, written back as JSONL, reads again to the same documents: same ids in the same order,
//! same terms with the same weights.
#![no_main]

use std::collections::BTreeMap;

use bmp_index::readers::jsonl::read_jsonl_into;
use bmp_index::Collection;
use libfuzzer_sys::fuzz_target;

/// Every document as (id, term -> weight bits).
fn documents(c: &Collection) -> Vec<(String, BTreeMap<String, u32>)> {
    (0..c.num_docs())
        .map(|d| {
            let (terms, weights) = c.doc(d);
            let vector = terms
                .iter()
                .zip(weights)
                .map(|(&t, w)| (c.term(t).to_owned(), w.to_bits()))
                .collect();
            (c.doc_id(d).to_owned(), vector)
        })
        .collect()
}

/// The documents as JSONL, one `{"id": .., "vector": {..}}` per line.
fn to_jsonl(docs: &[(String, BTreeMap<String, u32>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (id, vector) in docs {
        let vector: serde_json::Map<String, serde_json::Value> = vector
            .iter()
            .map(|(t, &w)| (t.clone(), serde_json::json!(f32::from_bits(w))))
            .collect();
        serde_json::to_writer(&mut out, &serde_json::json!({"id": id, "vector": vector}))
            .expect("a JSON value serialises");
        out.push(b'\n');
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let path = std::path::Path::new("fuzz.jsonl");
    let mut first = Collection::new();
    if read_jsonl_into(data, path, &mut first).is_err() {
        return;
    }
    let docs = documents(&first);
    let written = to_jsonl(&docs);
    let mut again = Collection::new();
    if let Err(e) = read_jsonl_into(&written[..], path, &mut again) {
        panic!("the collection written back is refused: {e}");
    }
    assert_eq!(
        documents(&again),
        docs,
        "the collection changed on a round trip"
    );
});
