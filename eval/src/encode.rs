//! Text into sparse vectors: a BEIR corpus encoded chunk by chunk with a [`TextEncoder`], queries
//! encoded into the records the query parser takes, and the JSONL lines `build` reads.

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use bmp_encoder::{beir_document_text, SparseVector, TextEncoder};
use bmp_index::readers::SparseRecord;
use bmp_index::Collection;

use crate::error::{Error, Result};
use crate::jsonl::{CorpusReader, Document, Query, QueryReader};
use crate::progress::Progress;

/// Documents encoded per chunk: long enough for length sorting to remove most padding, short
/// enough to keep memory bounded.
pub const CHUNK_DOCS: usize = 2048;

/// What encoding a corpus took.
#[derive(Debug, Clone, Copy, Default)]
pub struct EncodeSummary {
    /// Documents encoded.
    pub docs: usize,
    /// Seconds spent encoding (reading and writing excluded).
    pub encode_seconds: f64,
    /// Non-zero terms over all document vectors.
    pub postings: usize,
}

impl EncodeSummary {
    /// Documents per second of encoding.
    pub fn docs_per_second(&self) -> f64 {
        self.docs as f64 / self.encode_seconds.max(1e-9)
    }
}

/// Counts the documents of a BEIR corpus (for progress reports), reading it once.
pub fn count_documents(path: &Path) -> Result<u64> {
    let mut n = 0u64;
    for doc in CorpusReader::open(path)? {
        doc?;
        n += 1;
    }
    Ok(n)
}

/// What receives each encoded document: the document, its sparse vector, and its dense
/// embedding when the encoder makes one.
pub type DocumentSink<'a> = dyn FnMut(&Document, &SparseVector, Option<&[f32]>) -> Result<()> + 'a;

/// Encodes the BEIR corpus (`{"_id", "title", "text"}` lines) at `path` chunk by chunk, calling
/// `sink(document, vector, dense)` for each document in corpus order (`dense` when the encoder
/// makes dense embeddings too). Progress is reported as the stage "encoding".
pub fn encode_corpus(
    encoder: &TextEncoder,
    path: &Path,
    progress: &dyn Progress,
    sink: &mut DocumentSink<'_>,
) -> Result<EncodeSummary> {
    let total = count_documents(path)?;
    let mut summary = EncodeSummary::default();
    let mut done = 0u64;
    progress.update("encoding", 0, total);
    let mut chunk: Vec<Document> = Vec::with_capacity(CHUNK_DOCS);
    let mut flush = |chunk: &mut Vec<Document>, summary: &mut EncodeSummary| -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        let texts: Vec<String> = chunk
            .iter()
            .map(|d| beir_document_text(&d.title, &d.text))
            .collect();
        let start = Instant::now();
        let (vectors, dense) = encoder.encode_documents(&texts, &mut |n| {
            done += n as u64;
            progress.update("encoding", done, total);
        })?;
        summary.encode_seconds += start.elapsed().as_secs_f64();
        for (i, (doc, vector)) in chunk.iter().zip(&vectors).enumerate() {
            summary.docs += 1;
            summary.postings += vector.len();
            sink(doc, vector, dense.get(i).map(Vec::as_slice))?;
        }
        chunk.clear();
        Ok(())
    };
    for doc in CorpusReader::open(path)? {
        chunk.push(doc?);
        if chunk.len() == CHUNK_DOCS {
            flush(&mut chunk, &mut summary)?;
        }
    }
    flush(&mut chunk, &mut summary)?;
    progress.finish();
    if summary.docs == 0 {
        return Err(Error::Invalid(format!(
            "{}: no documents in the corpus",
            path.display()
        )));
    }
    Ok(summary)
}

/// Encodes a BEIR corpus straight into a collection (empty vectors included, so every document
/// keeps its id).
pub fn encode_corpus_into(
    encoder: &TextEncoder,
    path: &Path,
    progress: &dyn Progress,
    collection: &mut Collection,
) -> Result<EncodeSummary> {
    encode_corpus_into_with(encoder, path, progress, collection, &mut |_, _, _| Ok(()))
}

/// What adds entries of its own to each document [`encode_corpus_into_with`] adds: the
/// document, the collection (to intern terms in) and its entries so far.
pub type ExtraEntries<'a> =
    dyn FnMut(&Document, &mut Collection, &mut Vec<(u32, f32)>) -> Result<()> + 'a;

/// [`encode_corpus_into`], with `extra` adding entries to each document before it is added
/// (e.g. the BM25 weights of its text).
pub fn encode_corpus_into_with(
    encoder: &TextEncoder,
    path: &Path,
    progress: &dyn Progress,
    collection: &mut Collection,
    extra: &mut ExtraEntries<'_>,
) -> Result<EncodeSummary> {
    let mut term_of_token: Vec<Option<u32>> = Vec::new();
    let mut entries: Vec<(u32, f32)> = Vec::new();
    encode_corpus(encoder, path, progress, &mut |doc, vector, _| {
        entries.clear();
        for &(token, w) in vector {
            let slot = token as usize;
            if term_of_token.len() <= slot {
                term_of_token.resize(slot + 1, None);
            }
            let term = *term_of_token[slot]
                .get_or_insert_with(|| collection.intern_term(encoder.token(token)));
            entries.push((term, w));
        }
        extra(doc, collection, &mut entries)?;
        collection.add_document(&doc.id, &entries).map_err(|e| {
            Error::Invalid(format!("{}: document {:?}: {e}", path.display(), doc.id))
        })?;
        Ok(())
    })
}

/// Reads text queries (BEIR queries.jsonl: `{"_id", "text"}`) and encodes them.
pub fn encode_query_file(encoder: &TextEncoder, path: &Path) -> Result<Vec<SparseRecord>> {
    let queries = QueryReader::open(path)?.collect::<Result<Vec<_>>>()?;
    encode_queries(encoder, &queries)
}

/// Encodes text queries into records the query parser takes.
pub fn encode_queries(encoder: &TextEncoder, queries: &[Query]) -> Result<Vec<SparseRecord>> {
    let texts: Vec<String> = queries.iter().map(|q| q.text.clone()).collect();
    let vectors = encoder.encode_queries(&texts)?;
    Ok(queries
        .iter()
        .zip(&vectors)
        .map(|(q, v)| SparseRecord {
            id: q.id.clone(),
            entries: encoder.entries(v),
        })
        .collect())
}

/// Encodes text queries into records the query parser takes, and, when the encoder has dense
/// embeddings enabled, their embeddings, from one pass of the model (otherwise none).
pub fn encode_queries_with_dense(
    encoder: &TextEncoder,
    queries: &[Query],
) -> Result<(Vec<SparseRecord>, Vec<Vec<f32>>)> {
    let texts: Vec<String> = queries.iter().map(|q| q.text.clone()).collect();
    let (vectors, embeddings) = encoder.encode_queries_with_dense(&texts)?;
    let records = queries
        .iter()
        .zip(&vectors)
        .map(|(q, v)| SparseRecord {
            id: q.id.clone(),
            entries: encoder.entries(v),
        })
        .collect();
    Ok((records, embeddings))
}

/// Writes one JSONL line `{"id": ..., "vector": {"term": weight, ...}}` of an encoded document.
pub fn write_vector_line(
    out: &mut impl Write,
    encoder: &TextEncoder,
    id: &str,
    vector: &[(u32, f32)],
) -> std::io::Result<()> {
    bmp_index::synth::write_jsonl_line(out, id, vector, |t| encoder.token(t))
}
