//! Input readers: JSONL sparse vectors, CIFF v1, and Anserini query TSV; CIFF export.
//!
//! Every reader streams its input (memory grows with what is kept, not with the file), reads gzip
//! transparently, and reports malformed input with the file, line (or record) and what is wrong.

pub mod ciff;
pub mod jsonl;
pub mod queries;
pub mod tsv;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::error::{Error, Result};

/// One sparse vector read from a file: an external id and `(term, weight)` entries.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SparseRecord {
    /// The external id (document or query id), as a string.
    pub id: String,
    /// Term strings with their weights, in input order.
    pub entries: Vec<(String, f32)>,
}

/// Opens `path` for buffered reading, decompressing gzip when the file starts with the gzip magic.
pub fn open_maybe_gzip(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    wrap_maybe_gzip(Box::new(file), path)
}

/// Wraps a reader, decompressing gzip when the stream starts with the gzip magic bytes.
pub fn wrap_maybe_gzip(
    inner: Box<dyn Read + Send>,
    path: &Path,
) -> Result<Box<dyn BufRead + Send>> {
    let mut reader = BufReader::with_capacity(1 << 20, inner);
    let head = reader.fill_buf().map_err(|e| Error::io(path, e))?;
    if head.len() >= 2 && head[0] == 0x1f && head[1] == 0x8b {
        Ok(Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::bufread::MultiGzDecoder::new(reader),
        )))
    } else {
        Ok(Box::new(reader))
    }
}

/// The formats of document vector files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentFormat {
    /// One JSON object per line: `{"id": ..., "vector": {"term": weight, ...}}`.
    Jsonl,
    /// CIFF v1 protobuf.
    Ciff,
}

impl DocumentFormat {
    /// The format a file name suggests: `.ciff` or `.ciff.gz` is CIFF, anything else JSONL.
    pub fn detect(path: &Path) -> DocumentFormat {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.ends_with(".ciff") || name.ends_with(".ciff.gz") {
            DocumentFormat::Ciff
        } else {
            DocumentFormat::Jsonl
        }
    }
}

/// Reads the document vectors of `path` (in `format`, plain or gzip) from `reader` into a new
/// collection; refuses a file without documents.
pub fn read_collection(
    reader: Box<dyn Read + Send>,
    path: &Path,
    format: DocumentFormat,
) -> Result<crate::Collection> {
    let reader = wrap_maybe_gzip(reader, path)?;
    let mut collection = crate::Collection::new();
    match format {
        DocumentFormat::Ciff => {
            ciff::read_ciff_into(reader, path, &mut collection)?;
        }
        DocumentFormat::Jsonl => {
            jsonl::read_jsonl_into(reader, path, &mut collection)?;
        }
    }
    if collection.num_docs() == 0 {
        return Err(Error::input(path, "no documents in the input"));
    }
    Ok(collection)
}

/// [`read_collection`] of the file at `path`.
pub fn read_collection_file(path: &Path, format: DocumentFormat) -> Result<crate::Collection> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    read_collection(Box::new(file), path, format)
}
