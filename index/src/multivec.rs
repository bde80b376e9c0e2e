//! The multi-vector store: a few f16 vectors per document (token embeddings or their centroids),
//! beside a sparse index and addressed by its internal doc ids, read through a memory map.
//!
//! Layout (little endian):
//!
//! | bytes | what |
//! |---|---|
//! | 0..8 | magic `BMPMVEC\0` |
//! | 8..12 | format version ([`MULTIVEC_VERSION`]) |
//! | 12..16 | `dim`, floats per vector |
//! | 16..20 | `num_docs`, the sparse index's document count |
//! | 20..24 | reserved (0) |
//! | 24..32 | `num_vectors`, the total over documents |
//! | 32..40 | the sparse index's header checksum, which ties the store to that index |
//! | 40..48 | xxh3-64 of every byte after the header |
//! | 48..56 | xxh3-64 of bytes 0..48 and 56..128 |
//! | 56..64 | reserved (0) |
//! | 64..128 | the name of the reduction that made the vectors (`C8x32`, ...), UTF-8, zero-padded |
//! | 128.. | the vectors, `num_vectors * dim` f16, padded with zeros to a multiple of 8 bytes |
//! | then | `starts`: `num_docs` u64, each document's first vector |
//! | then | `counts`: `num_docs` u32, each document's number of vectors |
//!
//! Documents may be written in any order; a document never written has no vector. Opening checks
//! the lengths, both checksums and that every document's vectors lie inside the vector section, so
//! [`MultiVecStore::doc`] never reads outside the file.

use std::fs::File;
use std::io::{SeekFrom, Write};
use std::path::{Path, PathBuf};

use half::f16;
use memmap2::Mmap;
use xxhash_rust::xxh3::{xxh3_64, Xxh3};

use crate::atomic::AtomicFile;
use crate::error::{Error, Result};

/// The store format version this build writes and reads.
pub const MULTIVEC_VERSION: u32 = 1;
const MAGIC: &[u8; 8] = b"BMPMVEC\0";
const HEADER_BYTES: usize = 128;
const NAME_BYTES: usize = 64;

/// The header checksum: xxh3-64 of the header with its own field (48..56) left out.
fn header_checksum(header: &[u8]) -> u64 {
    let mut h = Xxh3::new();
    h.update(&header[..48]);
    h.update(&header[56..HEADER_BYTES]);
    h.digest()
}

fn vector_bytes(num_vectors: u64, dim: u32) -> Option<u64> {
    num_vectors.checked_mul(u64::from(dim))?.checked_mul(2)
}

/// Writes a store, document by document, into a temporary file that replaces the target on
/// [`MultiVecWriter::finish`].
pub struct MultiVecWriter {
    file: AtomicFile,
    path: PathBuf,
    dim: u32,
    name: String,
    fingerprint: u64,
    starts: Vec<u64>,
    counts: Vec<u32>,
    num_vectors: u64,
    hash: Xxh3,
    buf: Vec<u8>,
}

impl MultiVecWriter {
    /// A store for `num_docs` documents of `dim`-float vectors, tied to the sparse index whose
    /// header checksum is `fingerprint`; `name` says how the vectors were made (at most 64 bytes).
    pub fn create(
        path: &Path,
        dim: u32,
        num_docs: u32,
        fingerprint: u64,
        name: &str,
    ) -> Result<Self> {
        if dim == 0 {
            return Err(Error::Invalid("multi-vector store: dimension 0".into()));
        }
        if name.len() > NAME_BYTES {
            return Err(Error::Invalid(format!(
                "multi-vector store: name `{name}` longer than {NAME_BYTES} bytes"
            )));
        }
        let mut file = AtomicFile::create(path)?;
        let io = |error| Error::Io {
            path: path.to_path_buf(),
            error,
        };
        file.writer().write_all(&[0u8; HEADER_BYTES]).map_err(io)?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            dim,
            name: name.to_owned(),
            fingerprint,
            starts: vec![0; num_docs as usize],
            counts: vec![0; num_docs as usize],
            num_vectors: 0,
            hash: Xxh3::new(),
            buf: Vec::new(),
        })
    }

    fn write_hashed(&mut self, bytes: &[u8]) -> Result<()> {
        self.hash.update(bytes);
        let path = self.path.clone();
        self.file
            .writer()
            .write_all(bytes)
            .map_err(|error| Error::Io { path, error })
    }

    /// Stores the vectors of internal document `doc` (`vectors.len()` a multiple of `dim`),
    /// converted to f16. A document may be written once.
    pub fn add(&mut self, doc: u32, vectors: &[f32]) -> Result<()> {
        let dim = self.dim as usize;
        let slot = doc as usize;
        if slot >= self.starts.len() {
            return Err(Error::Invalid(format!(
                "multi-vector store: document {doc} beyond the index's {} documents",
                self.starts.len()
            )));
        }
        if !vectors.len().is_multiple_of(dim) {
            return Err(Error::Invalid(format!(
                "multi-vector store: {} floats for document {doc} is not a multiple of the \
                 dimension {dim}",
                vectors.len()
            )));
        }
        if self.counts[slot] != 0 {
            return Err(Error::Invalid(format!(
                "multi-vector store: document {doc} written twice"
            )));
        }
        let count = vectors.len() / dim;
        let count32 = u32::try_from(count)
            .map_err(|_| Error::Invalid(format!("document {doc}: too many vectors")))?;
        self.starts[slot] = self.num_vectors;
        self.counts[slot] = count32;
        self.num_vectors += count as u64;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend(vectors.iter().flat_map(|&x| f16::from_f32(x).to_le_bytes()));
        let written = self.write_hashed(&buf);
        self.buf = buf;
        written
    }

    /// Writes the tables and the header and puts the store in place.
    pub fn finish(mut self) -> Result<()> {
        let bytes = vector_bytes(self.num_vectors, self.dim)
            .ok_or_else(|| Error::Invalid("multi-vector store too large".into()))?;
        let pad = (8 - bytes % 8) % 8;
        self.write_hashed(&vec![0u8; pad as usize])?;
        let starts: Vec<u8> = self.starts.iter().flat_map(|s| s.to_le_bytes()).collect();
        self.write_hashed(&starts)?;
        let counts: Vec<u8> = self.counts.iter().flat_map(|c| c.to_le_bytes()).collect();
        self.write_hashed(&counts)?;
        let mut header = [0u8; HEADER_BYTES];
        header[..8].copy_from_slice(MAGIC);
        header[8..12].copy_from_slice(&MULTIVEC_VERSION.to_le_bytes());
        header[12..16].copy_from_slice(&self.dim.to_le_bytes());
        header[16..20].copy_from_slice(&(self.starts.len() as u32).to_le_bytes());
        header[24..32].copy_from_slice(&self.num_vectors.to_le_bytes());
        header[32..40].copy_from_slice(&self.fingerprint.to_le_bytes());
        header[40..48].copy_from_slice(&self.hash.digest().to_le_bytes());
        header[64..64 + self.name.len()].copy_from_slice(self.name.as_bytes());
        let checksum = header_checksum(&header);
        header[48..56].copy_from_slice(&checksum.to_le_bytes());
        self.file.seek(SeekFrom::Start(0))?;
        let path = self.path.clone();
        self.file
            .writer()
            .write_all(&header)
            .map_err(|error| Error::Io { path, error })?;
        self.file.commit()
    }
}

impl std::fmt::Debug for MultiVecWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MultiVecWriter")
            .field("path", &self.path)
            .field("dim", &self.dim)
            .field("num_docs", &self.starts.len())
            .field("num_vectors", &self.num_vectors)
            .finish_non_exhaustive()
    }
}

/// An open multi-vector store.
#[derive(Debug)]
pub struct MultiVecStore {
    path: PathBuf,
    map: Mmap,
    dim: u32,
    num_docs: u32,
    num_vectors: u64,
    fingerprint: u64,
    name: String,
    /// Byte offsets of the three sections.
    tables_at: usize,
}

impl MultiVecStore {
    /// Opens and checks a store (see the module documentation for what is checked).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let corrupt = |message: String| Error::Corrupt {
            path: path.clone(),
            message,
        };
        let file = File::open(&path).map_err(|error| Error::Io {
            path: path.clone(),
            error,
        })?;
        // SAFETY: read-only map; like every mmap it must not be truncated while in use (the
        // writer replaces files by rename, which leaves an open map intact).
        let map = unsafe { Mmap::map(&file) }.map_err(|error| Error::Io {
            path: path.clone(),
            error,
        })?;
        if map.len() < HEADER_BYTES || &map[..8] != MAGIC {
            return Err(corrupt("not a multi-vector store (bad magic)".into()));
        }
        let u32_at = |at: usize| u32::from_le_bytes(map[at..at + 4].try_into().unwrap_or([0; 4]));
        let u64_at = |at: usize| u64::from_le_bytes(map[at..at + 8].try_into().unwrap_or([0; 8]));
        let version = u32_at(8);
        if version != MULTIVEC_VERSION {
            return Err(corrupt(format!(
                "multi-vector store version {version}, this build reads {MULTIVEC_VERSION}"
            )));
        }
        if header_checksum(&map[..HEADER_BYTES]) != u64_at(48) {
            return Err(corrupt("header checksum mismatch".into()));
        }
        let (dim, num_docs, num_vectors) = (u32_at(12), u32_at(16), u64_at(24));
        let vectors = vector_bytes(num_vectors, dim)
            .and_then(|b| b.checked_add((8 - b % 8) % 8))
            .ok_or_else(|| corrupt("vector count overflows".into()))?;
        let expected = (HEADER_BYTES as u64)
            .checked_add(vectors)
            .and_then(|n| n.checked_add(u64::from(num_docs) * 12))
            .ok_or_else(|| corrupt("length overflows".into()))?;
        if dim == 0 || expected != map.len() as u64 {
            return Err(corrupt(format!(
                "{} bytes, expected {expected} for {num_docs} documents and {num_vectors} \
                 vectors of dimension {dim}",
                map.len()
            )));
        }
        if xxh3_64(&map[HEADER_BYTES..]) != u64_at(40) {
            return Err(corrupt("data checksum mismatch".into()));
        }
        let name_bytes = &map[64..128];
        let end = name_bytes
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(NAME_BYTES);
        let name = std::str::from_utf8(&name_bytes[..end])
            .map_err(|_| corrupt("name is not UTF-8".into()))?
            .to_owned();
        let store = Self {
            fingerprint: u64_at(32),
            tables_at: HEADER_BYTES + vectors as usize,
            path: path.clone(),
            map,
            dim,
            num_docs,
            num_vectors,
            name,
        };
        for doc in 0..num_docs {
            let (start, count) = store.extent(doc);
            if start
                .checked_add(u64::from(count))
                .is_none_or(|end| end > num_vectors)
            {
                return Err(corrupt(format!(
                    "document {doc}: vectors {start}..+{count} beyond the {num_vectors} stored"
                )));
            }
        }
        Ok(store)
    }

    fn extent(&self, doc: u32) -> (u64, u32) {
        let d = doc as usize;
        let s = self.tables_at + d * 8;
        let c = self.tables_at + self.num_docs as usize * 8 + d * 4;
        let start = self
            .map
            .get(s..s + 8)
            .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])));
        let count = self
            .map
            .get(c..c + 4)
            .map_or(0, |b| u32::from_le_bytes(b.try_into().unwrap_or([0; 4])));
        (start, count)
    }

    /// The vectors of internal document `doc`, `dim` f16 each, row after row (empty for a
    /// document out of range or never written).
    pub fn doc(&self, doc: u32) -> &[f16] {
        if doc >= self.num_docs {
            return &[];
        }
        let (start, count) = self.extent(doc);
        let dim = self.dim as usize;
        let from = HEADER_BYTES + start as usize * dim * 2;
        let to = from + count as usize * dim * 2;
        // Checked at open: the range lies in the vector section, which starts 2-aligned in a
        // page-aligned map.
        self.map
            .get(from..to)
            .map_or(&[], |b| bytemuck::cast_slice::<u8, f16>(b))
    }

    /// Floats per vector.
    pub fn dim(&self) -> usize {
        self.dim as usize
    }

    /// Documents (the sparse index's count).
    pub fn num_docs(&self) -> u32 {
        self.num_docs
    }

    /// Vectors over all documents.
    pub fn num_vectors(&self) -> u64 {
        self.num_vectors
    }

    /// The header checksum of the sparse index the store was built for.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// How the vectors were made (`C8x32`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file's size in bytes.
    pub fn file_len(&self) -> u64 {
        self.map.len() as u64
    }

    /// The store's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Refuses a store built for another index.
    pub fn check_matches(&self, index: &crate::Index) -> Result<()> {
        if self.fingerprint != index.header().checksum || self.num_docs != index.num_docs() {
            return Err(Error::Input {
                path: self.path.clone(),
                message: format!(
                    "multi-vector store was built for another index than {} (rebuild it)",
                    index.path().display()
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &Path, docs: &[(u32, Vec<f32>)]) -> Result<()> {
        let mut w = MultiVecWriter::create(path, 3, 4, 99, "C2x2")?;
        for (d, v) in docs {
            w.add(*d, v)?;
        }
        w.finish()
    }

    #[test]
    fn round_trips_in_any_order() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::Invalid(e.to_string()))?;
        let path = dir.path().join("mv");
        write(
            &path,
            &[
                (2, vec![1.0, 0.5, -0.25, 0.0, 1.0, 0.0]),
                (0, vec![0.125, 0.0, 1.0]),
            ],
        )?;
        let s = MultiVecStore::open(&path)?;
        assert_eq!((s.dim(), s.num_docs(), s.num_vectors()), (3, 4, 3));
        assert_eq!((s.fingerprint(), s.name()), (99, "C2x2"));
        let f = |d| s.doc(d).iter().map(|x| x.to_f32()).collect::<Vec<_>>();
        assert_eq!(f(2), vec![1.0, 0.5, -0.25, 0.0, 1.0, 0.0]);
        assert_eq!(f(0), vec![0.125, 0.0, 1.0]);
        assert!(f(1).is_empty() && f(3).is_empty() && f(9).is_empty());
        Ok(())
    }

    #[test]
    fn refuses_bad_input_and_every_flipped_byte() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::Invalid(e.to_string()))?;
        let path = dir.path().join("mv");
        let mut w = MultiVecWriter::create(&path, 3, 2, 1, "x")?;
        assert!(w.add(2, &[0.0; 3]).is_err(), "document past the end");
        assert!(w.add(0, &[0.0; 4]).is_err(), "not a multiple of dim");
        w.add(0, &[1.0; 3])?;
        assert!(w.add(0, &[1.0; 3]).is_err(), "written twice");
        w.finish()?;
        let good = std::fs::read(&path).map_err(|e| Error::Invalid(e.to_string()))?;
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x41;
            std::fs::write(&path, &bad).map_err(|e| Error::Invalid(e.to_string()))?;
            assert!(
                MultiVecStore::open(&path).is_err(),
                "flip at byte {i} not caught"
            );
        }
        std::fs::write(&path, &good[..good.len() - 1])
            .map_err(|e| Error::Invalid(e.to_string()))?;
        assert!(MultiVecStore::open(&path).is_err(), "truncation not caught");
        Ok(())
    }
}
