//! Dense embeddings searched by brute force (exact inner product), and their file: a header
//! (`BMPDENSE`, version, dimension, count), the vectors as little-endian f32 rows, then each
//! document id (u32 byte length, UTF-8 bytes).

use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::{EncoderError, Result};

const MAGIC: &[u8; 8] = b"BMPDENSE";
const VERSION: u32 = 1;
const HEADER_BYTES: usize = 8 + 4 + 4 + 8;

/// Dense vectors with their document ids, searched exhaustively.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DenseIndex {
    dim: usize,
    vectors: Vec<f32>,
    ids: Vec<String>,
}

impl DenseIndex {
    /// An empty index of `dim`-dimensional vectors.
    pub fn new(dim: usize) -> Self {
        Self {
            dim,
            vectors: Vec::new(),
            ids: Vec::new(),
        }
    }

    /// Adds a vector; its position is its number (ids are `0, 1, ...` as text).
    pub fn push(&mut self, v: &[f32]) -> Result<()> {
        let id = self.ids.len().to_string();
        self.push_with_id(&id, v)
    }

    /// Adds the vector of document `id`.
    pub fn push_with_id(&mut self, id: &str, v: &[f32]) -> Result<()> {
        if v.len() != self.dim {
            return Err(EncoderError::InvalidInput(format!(
                "document {id:?}: vector of dimension {}, index of {}",
                v.len(),
                self.dim
            )));
        }
        self.vectors.extend_from_slice(v);
        self.ids.push(id.to_owned());
        Ok(())
    }

    /// The vectors' dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// How many vectors the index holds.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the index holds no vector.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The id of vector `i`.
    pub fn id(&self, i: usize) -> Option<&str> {
        self.ids.get(i).map(String::as_str)
    }

    /// The `k` best vectors by inner product with `q`, best first, ties by smaller position.
    pub fn search(&self, q: &[f32], k: usize) -> Vec<(usize, f32)> {
        let mut scored: Vec<(usize, f32)> = self
            .vectors
            .chunks_exact(self.dim.max(1))
            .enumerate()
            .map(|(i, v)| (i, v.iter().zip(q).map(|(a, b)| a * b).sum()))
            .collect();
        let order = |a: &(usize, f32), b: &(usize, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if k < scored.len() {
            if k == 0 {
                return Vec::new();
            }
            scored.select_nth_unstable_by(k - 1, order);
            scored.truncate(k);
        }
        scored.sort_by(order);
        scored
    }

    /// Writes the index to `path` (through a temporary file renamed into place, so a failed write
    /// leaves any former file intact).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".tmp");
        let tmp = path.with_file_name(name);
        let file = std::fs::File::create(&tmp).map_err(EncoderError::io(&tmp))?;
        let mut out = BufWriter::new(file);
        let write = |out: &mut BufWriter<std::fs::File>| -> std::io::Result<()> {
            out.write_all(MAGIC)?;
            out.write_all(&VERSION.to_le_bytes())?;
            out.write_all(&(self.dim as u32).to_le_bytes())?;
            out.write_all(&(self.ids.len() as u64).to_le_bytes())?;
            for x in &self.vectors {
                out.write_all(&x.to_le_bytes())?;
            }
            for id in &self.ids {
                out.write_all(&(id.len() as u32).to_le_bytes())?;
                out.write_all(id.as_bytes())?;
            }
            out.flush()?;
            out.get_ref().sync_all()
        };
        if let Err(error) = write(&mut out) {
            drop(out);
            let _ = std::fs::remove_file(&tmp);
            return Err(EncoderError::Io {
                path: tmp.clone(),
                error,
            });
        }
        drop(out);
        std::fs::rename(&tmp, path).map_err(EncoderError::io(path))
    }

    /// Reads an index [`DenseIndex::save`] wrote, checking its header and length.
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|error| EncoderError::Io {
            path: path.to_path_buf(),
            error,
        })?;
        let bad = |what: String| {
            EncoderError::InvalidInput(format!("{}: not a dense index: {what}", path.display()))
        };
        if bytes.len() < HEADER_BYTES || &bytes[..8] != MAGIC {
            return Err(bad("no BMPDENSE header".into()));
        }
        let u32_at = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let version = u32_at(8);
        if version != VERSION {
            return Err(bad(format!("version {version}, expected {VERSION}")));
        }
        let dim = u32_at(12) as usize;
        let mut count = [0u8; 8];
        count.copy_from_slice(&bytes[16..24]);
        let count = u64::from_le_bytes(count) as usize;
        let floats = count
            .checked_mul(dim)
            .and_then(|n| n.checked_mul(4))
            .filter(|&n| n <= bytes.len() - HEADER_BYTES)
            .ok_or_else(|| bad(format!("{count} vectors of dimension {dim} do not fit")))?;
        let vectors = bytes[HEADER_BYTES..HEADER_BYTES + floats]
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        let mut at = HEADER_BYTES + floats;
        let mut ids = Vec::with_capacity(count);
        for i in 0..count {
            if at + 4 > bytes.len() {
                return Err(bad(format!("truncated at the id of vector {i}")));
            }
            let len = u32_at(at) as usize;
            at += 4;
            let id = bytes
                .get(at..at + len)
                .ok_or_else(|| bad(format!("truncated in the id of vector {i}")))?;
            let id = std::str::from_utf8(id)
                .map_err(|_| bad(format!("the id of vector {i} is not UTF-8")))?;
            ids.push(id.to_owned());
            at += len;
        }
        if at != bytes.len() {
            return Err(bad(format!("{} trailing bytes", bytes.len() - at)));
        }
        Ok(Self { dim, vectors, ids })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> DenseIndex {
        let mut index = DenseIndex::new(3);
        index.push_with_id("a", &[1.0, 0.0, 0.0]).unwrap();
        index.push_with_id("bé", &[0.0, 1.0, 0.0]).unwrap();
        index.push_with_id("c", &[0.6, 0.8, 0.0]).unwrap();
        index.push_with_id("d", &[0.0, 1.0, 0.0]).unwrap();
        index
    }

    #[test]
    fn search_ranks_by_inner_product_with_ties_by_position() {
        let mut index = index();
        let hits = index.search(&[0.0, 1.0, 0.0], 3);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![1, 3, 2]);
        assert_eq!(index.search(&[1.0, 0.0, 0.0], 10).len(), 4);
        assert!(index.search(&[1.0, 0.0, 0.0], 0).is_empty());
        assert!(index.push(&[1.0]).is_err());
    }

    #[test]
    fn save_and_open_round_trip_and_reject_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.dense");
        let index = index();
        index.save(&path).unwrap();
        assert_eq!(DenseIndex::open(&path).unwrap(), index);
        let bytes = std::fs::read(&path).unwrap();
        for cut in [0, 10, HEADER_BYTES + 5, bytes.len() - 1] {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            assert!(DenseIndex::open(&path).is_err(), "cut at {cut}");
        }
        let mut extra = bytes.clone();
        extra.push(0);
        std::fs::write(&path, &extra).unwrap();
        assert!(DenseIndex::open(&path).is_err());
        let mut version = bytes;
        version[8] = 9;
        std::fs::write(&path, &version).unwrap();
        assert!(DenseIndex::open(&path).is_err());
    }
}
