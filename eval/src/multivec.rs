//! Multi-vector stores beside an index: every document's token embeddings, reduced CRISP-style,
//! one store per clustering spec.

use std::path::{Path, PathBuf};

use bmp_encoder::{beir_document_text, ClusterSpec, TokenEncoder};
use bmp_index::multivec::{MultiVecStore, MultiVecWriter};
use bmp_index::{ExternalIds, Index};

use crate::encode::{count_documents, CHUNK_DOCS};
use crate::error::{Error, Result};
use crate::jsonl::{CorpusReader, Document};
use crate::progress::Progress;

/// Texts per forward pass of the token model while a store is built.
const EMBED_BATCH: usize = 256;

/// What building one store wrote.
#[derive(Debug, Clone)]
pub struct StoreSummary {
    /// The spec.
    pub spec: String,
    /// Documents with vectors.
    pub docs: u64,
    /// Vectors over all documents.
    pub vectors: u64,
    /// File size.
    pub bytes: u64,
}

/// The store file of `spec` in `dir`.
pub fn store_path(dir: &Path, spec: &ClusterSpec) -> PathBuf {
    dir.join(format!("{spec}.mvec"))
}

/// Embeds every document of `corpus` found in `index` once and writes one store per spec to the
/// matching path. k-means is seeded with the internal doc id, so a store is reproducible.
/// Progress is reported as the stage "token embeddings"; documents of the corpus that the index
/// lacks are skipped with a note.
pub fn build_stores(
    index: &Index,
    corpus: &Path,
    encoder: &TokenEncoder,
    specs: &[ClusterSpec],
    paths: &[PathBuf],
    progress: &dyn Progress,
) -> Result<Vec<StoreSummary>> {
    let ids = ExternalIds::build(index)?;
    let dim = u32::try_from(encoder.dim())
        .map_err(|_| Error::Invalid("token dimension too large".into()))?;
    let mut writers = specs
        .iter()
        .zip(paths)
        .map(|(s, p)| {
            MultiVecWriter::create(p, dim, index.num_docs(), index.header().checksum, s.name())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut summaries: Vec<StoreSummary> = specs
        .iter()
        .map(|s| StoreSummary {
            spec: s.to_string(),
            docs: 0,
            vectors: 0,
            bytes: 0,
        })
        .collect();
    const STAGE: &str = "token embeddings";
    let total = count_documents(corpus)?;
    let mut done = 0u64;
    progress.update(STAGE, 0, total);
    let mut unknown = 0u64;
    let mut seen = vec![false; index.num_docs() as usize];
    let mut chunk: Vec<(u32, Document)> = Vec::with_capacity(CHUNK_DOCS);
    let mut flush = |chunk: &mut Vec<(u32, Document)>, done: &mut u64| -> Result<()> {
        let texts: Vec<String> = chunk
            .iter()
            .map(|(_, d)| beir_document_text(&d.title, &d.text))
            .collect();
        for (part, texts) in chunk.chunks(EMBED_BATCH).zip(texts.chunks(EMBED_BATCH)) {
            let vectors = encoder.encode(texts)?;
            for ((doc, _), v) in part.iter().zip(&vectors) {
                for ((spec, w), summary) in specs.iter().zip(&mut writers).zip(&mut summaries) {
                    let reduced = spec.doc.apply(v, u64::from(*doc));
                    w.add(*doc, &reduced.data)?;
                    summary.docs += u64::from(!reduced.is_empty());
                    summary.vectors += reduced.len() as u64;
                }
            }
            *done += part.len() as u64;
            progress.update(STAGE, *done, total);
        }
        chunk.clear();
        Ok(())
    };
    for doc in CorpusReader::open(corpus)? {
        let doc = doc?;
        match ids.find(index, &doc.id)? {
            Some(internal) if !seen[internal as usize] => {
                seen[internal as usize] = true;
                chunk.push((internal, doc));
            }
            Some(_) => {
                return Err(Error::Invalid(format!(
                    "{}: document {:?} appears twice",
                    corpus.display(),
                    doc.id
                )))
            }
            None => {
                unknown += 1;
                done += 1;
            }
        }
        if chunk.len() == CHUNK_DOCS {
            flush(&mut chunk, &mut done)?;
        }
    }
    flush(&mut chunk, &mut done)?;
    progress.finish();
    if unknown > 0 {
        progress.note(&format!(
            "note: {unknown} documents of {} are not in the index and were skipped",
            corpus.display()
        ));
    }
    for ((w, summary), path) in writers.into_iter().zip(&mut summaries).zip(paths) {
        w.finish()?;
        summary.bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    }
    Ok(summaries)
}

/// Opens a store and checks it belongs to `index`.
pub fn open_store(path: &Path, index: &Index) -> Result<MultiVecStore> {
    let store = MultiVecStore::open(path)?;
    store.check_matches(index)?;
    Ok(store)
}

/// Opens the store at `path` for `index` with the clustering spec it was built with, and checks
/// that `encoder` makes vectors of the store's dimension.
pub fn open_rerank_store(
    path: &Path,
    index: &Index,
    encoder: &TokenEncoder,
) -> Result<(MultiVecStore, ClusterSpec)> {
    let store = open_store(path, index)?;
    let spec: ClusterSpec = store
        .name()
        .parse()
        .map_err(|e| Error::Invalid(format!("{}: {e}", path.display())))?;
    if encoder.dim() != store.dim() {
        return Err(Error::Invalid(format!(
            "{}: vectors of dimension {}, but the token model makes {}",
            path.display(),
            store.dim(),
            encoder.dim()
        )));
    }
    Ok((store, spec))
}
