//! What the benchmarks share: a BP-reordered synthetic index and its queries.

use std::path::{Path, PathBuf};

use bmp_index::build::{build_index_ordered, BuildOptions};
use bmp_index::reorder::{bp_order_collection, BpOptions};
use bmp_index::synth::{build_vocabulary, SynthGenerator, SynthOptions};
use bmp_index::Collection;

/// Builds a BP-reordered synthetic index of `docs` documents at `dir/name`; returns its path and
/// `queries` synthetic queries as `(term, weight)` entries.
pub fn synthetic_index(
    dir: &Path,
    name: &str,
    docs: u64,
    queries: u64,
) -> (PathBuf, Vec<Vec<(String, f32)>>) {
    let options = SynthOptions {
        docs,
        queries,
        ..SynthOptions::default()
    };
    let mut gen = SynthGenerator::new(&options, build_vocabulary(options.vocab, None, &[]), &[]);
    let mut collection = Collection::new();
    for i in 0..options.docs {
        let doc: Vec<(u32, f32)> = gen
            .document()
            .into_iter()
            .map(|(t, w)| (collection.intern_term(gen.term(t)), w))
            .collect();
        collection
            .add_document(&format!("d{i}"), &doc)
            .expect("synthetic documents are valid");
    }
    let order = bp_order_collection(&collection, &BpOptions::default(), &|_, _| {});
    let path = dir.join(name);
    build_index_ordered(
        &collection,
        &order,
        &path,
        &BuildOptions::default(),
        &mut |_, _, _| {},
    )
    .expect("index builds");
    let queries = (0..options.queries)
        .map(|_| {
            gen.query()
                .into_iter()
                .map(|(t, w)| (gen.term(t).to_owned(), w))
                .collect()
        })
        .collect();
    (path, queries)
}
