//! Posting lists: doc ids delta-coded in 128-id chunks with bitpacking's `BitPacker4x`, one
//! [`ChunkHeader`] per chunk (last doc id, packed offset, bit width, max impact), and `u8` impacts.
//! One list is laid out as its chunk headers, then its `df` impacts, then its packed ids.
//! A final chunk of fewer than 128 ids is stored as LEB128 varint deltas instead (bit width
//! [`VARINT_TAIL`]), so short lists do not pay for 128 packed slots.

use bitpacking::{BitPacker, BitPacker4x};

use crate::format::{ChunkHeader, CHUNK_LEN};

const _: () = assert!(BitPacker4x::BLOCK_LEN == CHUNK_LEN);

/// The `num_bits` value of a final partial chunk stored as varint deltas.
pub const VARINT_TAIL: u8 = u8::MAX;

fn write_varint(mut v: u32, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn read_varint(bytes: &[u8], pos: &mut usize) -> Option<u32> {
    let mut v = 0u32;
    for shift in (0..35).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        v |= u32::from(b & 0x7f).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return (shift < 28 || b < 0x10).then_some(v);
        }
    }
    None
}

/// Appends the encoding of one posting list to `out` (which must be 4-aligned in the file).
///
/// `docs` must be strictly increasing and `impacts` as long as `docs`.
pub fn encode_postings(docs: &[u32], impacts: &[u8], out: &mut Vec<u8>) {
    debug_assert_eq!(docs.len(), impacts.len());
    let packer = BitPacker4x::new();
    let start = out.len();
    let num_chunks = docs.len().div_ceil(CHUNK_LEN);
    let headers_len = num_chunks * std::mem::size_of::<ChunkHeader>();
    out.resize(start + headers_len, 0);
    out.extend_from_slice(impacts);
    let mut headers = Vec::with_capacity(num_chunks);
    let mut block = [0u32; CHUNK_LEN];
    let mut packed = [0u8; 4 * CHUNK_LEN];
    let mut previous = 0u32;
    for (chunk_docs, chunk_impacts) in docs.chunks(CHUNK_LEN).zip(impacts.chunks(CHUNK_LEN)) {
        let last = chunk_docs[chunk_docs.len() - 1];
        let packed_offset = (out.len() - start) as u32;
        let num_bits = if chunk_docs.len() == CHUNK_LEN {
            block.copy_from_slice(chunk_docs);
            let num_bits = packer.num_bits_sorted(previous, &block);
            let n = packer.compress_sorted(previous, &block, &mut packed, num_bits);
            out.extend_from_slice(&packed[..n]);
            num_bits
        } else {
            let mut prev = previous;
            for &d in chunk_docs {
                write_varint(d - prev, out);
                prev = d;
            }
            VARINT_TAIL
        };
        headers.push(ChunkHeader {
            last_doc: last,
            packed_offset,
            num_bits,
            max_impact: chunk_impacts.iter().copied().max().unwrap_or(0),
            reserved: [0; 2],
        });
        previous = last;
    }
    out[start..start + headers_len].copy_from_slice(bytemuck::cast_slice(&headers));
}

/// Size in bytes of the packed ids of a chunk with `num_bits` bits per delta.
pub fn packed_len(num_bits: u8) -> usize {
    usize::from(num_bits) * CHUNK_LEN / 8
}

/// A read-only view of one encoded posting list.
#[derive(Debug, Clone, Copy)]
pub struct PostingList<'a> {
    bytes: &'a [u8],
    headers: &'a [ChunkHeader],
    impacts: &'a [u8],
    df: usize,
    num_docs: u32,
}

/// What is wrong with a posting list that fails a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostingsError(pub String);

impl<'a> PostingList<'a> {
    /// A view of the `df` postings encoded in `bytes` (which must start 4-aligned), checking that
    /// the headers and impacts fit. Doc ids are checked against `num_docs` as chunks are decoded.
    pub fn new(bytes: &'a [u8], df: usize, num_docs: u32) -> Result<Self, PostingsError> {
        let num_chunks = df.div_ceil(CHUNK_LEN);
        let headers_len = num_chunks * std::mem::size_of::<ChunkHeader>();
        if bytes.len() < headers_len + df {
            return Err(PostingsError(format!(
                "posting list of {df} postings needs at least {} bytes, has {}",
                headers_len + df,
                bytes.len()
            )));
        }
        let headers: &[ChunkHeader] = bytemuck::try_cast_slice(&bytes[..headers_len])
            .map_err(|e| PostingsError(format!("misaligned chunk headers: {e}")))?;
        let impacts = &bytes[headers_len..headers_len + df];
        Ok(PostingList {
            bytes,
            headers,
            impacts,
            df,
            num_docs,
        })
    }

    /// Number of postings.
    pub fn len(&self) -> usize {
        self.df
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.df == 0
    }

    /// Number of 128-id chunks.
    pub fn num_chunks(&self) -> usize {
        self.headers.len()
    }

    /// The chunk headers (last doc id and max impact per chunk, for skipping).
    pub fn chunk_headers(&self) -> &'a [ChunkHeader] {
        self.headers
    }

    /// All impacts, in doc-id order.
    pub fn impacts(&self) -> &'a [u8] {
        self.impacts
    }

    /// Decodes chunk `i` into `out` and returns its doc ids and impacts.
    pub fn decode_chunk<'o>(
        &self,
        i: usize,
        out: &'o mut [u32; CHUNK_LEN],
    ) -> Result<(&'o [u32], &'a [u8]), PostingsError> {
        let header = self
            .headers
            .get(i)
            .ok_or_else(|| PostingsError(format!("chunk {i} out of range")))?;
        let headers_end = std::mem::size_of_val(self.headers);
        // Packed ids follow the impacts; the list may end with alignment padding.
        let packed_start = headers_end + self.df;
        let packed_end = self.bytes.len();
        let start = header.packed_offset as usize;
        let initial = if i == 0 {
            0
        } else {
            self.headers[i - 1].last_doc
        };
        let is_last = i + 1 == self.headers.len();
        let len = if is_last {
            self.df - i * CHUNK_LEN
        } else {
            CHUNK_LEN
        };
        let bad = |what: &str| PostingsError(format!("chunk {i}: {what}"));
        if start < packed_start || start > packed_end {
            return Err(bad("packed ids out of bounds"));
        }
        if header.num_bits == VARINT_TAIL && is_last && len < CHUNK_LEN {
            let bytes = &self.bytes[..packed_end];
            let mut pos = start;
            let mut doc = initial;
            for (j, slot) in out[..len].iter_mut().enumerate() {
                let delta = read_varint(bytes, &mut pos).ok_or_else(|| bad("bad varint"))?;
                if delta == 0 && (i > 0 || j > 0) {
                    return Err(bad("doc ids not increasing"));
                }
                doc = doc
                    .checked_add(delta)
                    .ok_or_else(|| bad("doc id overflow"))?;
                *slot = doc;
            }
        } else {
            if header.num_bits > 32 || len != CHUNK_LEN {
                return Err(bad("bad bit width"));
            }
            let end = start + packed_len(header.num_bits);
            if end > packed_end {
                return Err(bad("packed ids out of bounds"));
            }
            BitPacker4x::new().decompress_sorted(
                initial,
                &self.bytes[start..end],
                out,
                header.num_bits,
            );
        }
        let docs = &out[..len];
        let last = docs[len - 1];
        if last != header.last_doc || last >= self.num_docs || (i > 0 && docs[0] <= initial) {
            return Err(PostingsError(format!(
                "chunk {i}: decoded doc ids do not match the chunk header"
            )));
        }
        Ok((docs, &self.impacts[i * CHUNK_LEN..i * CHUNK_LEN + len]))
    }

    /// Calls `f(doc, impact)` for every posting in doc-id order.
    pub fn for_each(&self, mut f: impl FnMut(u32, u8)) -> Result<(), PostingsError> {
        let mut buf = [0u32; CHUNK_LEN];
        for i in 0..self.headers.len() {
            let (docs, impacts) = self.decode_chunk(i, &mut buf)?;
            for (&d, &s) in docs.iter().zip(impacts) {
                f(d, s);
            }
        }
        Ok(())
    }

    /// All postings as `(doc ids, impacts)` vectors.
    pub fn to_vecs(&self) -> Result<(Vec<u32>, Vec<u8>), PostingsError> {
        let mut docs = Vec::with_capacity(self.df);
        self.for_each(|d, _| docs.push(d))?;
        Ok((docs, self.impacts.to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn aligned(bytes: Vec<u8>) -> Vec<u32> {
        let mut words = vec![0u32; bytes.len().div_ceil(4)];
        bytemuck::cast_slice_mut::<u32, u8>(&mut words)[..bytes.len()].copy_from_slice(&bytes);
        words
    }

    fn round_trip(docs: &[u32], impacts: &[u8], num_docs: u32) -> (Vec<u32>, Vec<u8>) {
        let mut out = Vec::new();
        encode_postings(docs, impacts, &mut out);
        let len = out.len();
        let words = aligned(out);
        let bytes = &bytemuck::cast_slice::<u32, u8>(&words)[..len];
        PostingList::new(bytes, docs.len(), num_docs)
            .unwrap()
            .to_vecs()
            .unwrap()
    }

    #[test]
    fn empty_list() {
        assert_eq!(round_trip(&[], &[], 10), (vec![], vec![]));
    }

    #[test]
    fn exact_chunk_boundaries() {
        for n in [1usize, 127, 128, 129, 256, 300] {
            let docs: Vec<u32> = (0..n as u32).map(|i| i * 3 + 1).collect();
            let impacts: Vec<u8> = (0..n).map(|i| (i % 255 + 1) as u8).collect();
            assert_eq!(round_trip(&docs, &impacts, 1000), (docs, impacts));
        }
    }

    #[test]
    fn corrupted_header_is_detected() {
        let docs: Vec<u32> = (0..200).collect();
        let impacts = vec![1u8; 200];
        let mut out = Vec::new();
        encode_postings(&docs, &impacts, &mut out);
        out[0] ^= 0x40; // last_doc of chunk 0
        let len = out.len();
        let words = aligned(out);
        let bytes = &bytemuck::cast_slice::<u32, u8>(&words)[..len];
        assert!(PostingList::new(bytes, 200, 1000)
            .unwrap()
            .to_vecs()
            .is_err());
    }

    #[test]
    fn doc_ids_beyond_num_docs_are_refused() {
        let mut out = Vec::new();
        encode_postings(&[5, 50], &[1, 2], &mut out);
        let len = out.len();
        let words = aligned(out);
        let bytes = &bytemuck::cast_slice::<u32, u8>(&words)[..len];
        assert!(PostingList::new(bytes, 2, 20).unwrap().to_vecs().is_err());
    }

    proptest! {
        #[test]
        fn compression_round_trip(mut docs in proptest::collection::btree_set(0u32..1_000_000, 0..1000),
                                  seed: u8) {
            let docs: Vec<u32> = std::mem::take(&mut docs).into_iter().collect();
            let impacts: Vec<u8> = docs.iter().map(|&d| ((d as u8) ^ seed).max(1)).collect();
            prop_assert_eq!(round_trip(&docs, &impacts, 1_000_000), (docs, impacts));
        }
    }
}
