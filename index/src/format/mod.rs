//! The on-disk index format (version 3).
//!
//! One little-endian file:
//!
//! ```text
//! [Header: 128 bytes][section table: num_sections x 32 bytes][sections, each 64-byte aligned]
//! ```
//!
//! The header holds the magic bytes, the format version, the counts, the block size, the
//! quantization scale, the file length and an xxh3-64 checksum over the header and the section
//! table. Each section-table entry holds the section kind, its offset and length, and an xxh3-64
//! checksum of its bytes. The sections are listed in [`SectionKind`] (data sections are written
//! before the offsets that point into them, so the writer streams); their layouts:
//!
//! - `VocabOffsets` (`u64` x terms+1) and `VocabBytes`: term strings in lexicographic order; the
//!   term id is the rank, so lookup is a binary search over the mapped strings.
//! - `DocIdOffsets` (`u64` x docs+1) and `DocIdBytes`: the external id of each internal doc id.
//! - `TermStats` ([`TermStats`] x terms): document frequency and maximum impact per term.
//! - `PostingsOffsets` (`u64` x terms+1) and `Postings`: per term, at a 4-aligned offset,
//!   `ceil(df/128)` [`ChunkHeader`]s, then `df` `u8` impacts, then the chunks' doc-id deltas packed
//!   with bitpacking's `BitPacker4x` (128 ids per chunk; a final partial chunk as LEB128 varint
//!   deltas).
//! - `BlockMaxDir` ([`BlockMaxEntry`] x terms) and `BlockMaxData`: per term, the maximum impact in
//!   each block of `block_size` consecutive doc ids, at a 4-aligned offset, in the smallest of
//!   three layouts: dense (`num_blocks` bytes), sparse ([`ROW_SPARSE`]: the blocks where the term
//!   occurs as `u16` ids within pages of 65,536 blocks, 3 bytes per block) or ranges
//!   ([`ROW_RANGES`]: runs of consecutive blocks, each a start and a length, then the maxima of
//!   the covered blocks), which suits reordered collections where a term's documents cluster.
//! - `ForwardOffsets` (`u64` x blocks+1) and `Forward`: per block, at a 4-aligned offset, a `u32`
//!   word holding `n`, the number of distinct terms (low 31 bits), and a wide flag (bit 31); the
//!   term ids split into buckets of 256 ids: `ceil(terms / 256) + 1` bucket starts (`u16`, or
//!   `u32` when wide), then the low byte of each term id (`n` bytes, increasing within a bucket),
//!   padding to the start width, `n` cumulative pair ends (`u16`, or `u32` when wide), then the
//!   pairs `(doc offset in block: u8, impact: u8)` grouped by term. Finding a term is two array
//!   reads and a scan of the few low bytes of its bucket.
//! - `SuperblockDir` ([`BlockMaxEntry`] x terms) and `SuperblockData`: per term, at a 4-aligned
//!   offset, the summaries of each superblock of `superblock_size` consecutive blocks: the largest
//!   block maximum (`max`) and the mean block maximum rounded up (`avg`, over the superblock's
//!   blocks, absent ones counting 0). Dense ([`SB_DENSE`]: `num_superblocks` maxima then as many
//!   means) or sparse ([`SB_SPARSE`]: the `nnz` superblocks where the term occurs as `u32` ids,
//!   then their maxima, then their means), whichever is smaller.

pub mod reader;
mod term_table;
pub mod writer;

use bytemuck::{Pod, Zeroable};

/// The first eight bytes of every index file.
pub const MAGIC: [u8; 8] = *b"BMPINDEX";
/// The format version this build reads and writes.
pub const FORMAT_VERSION: u32 = 3;
/// Alignment of every section's offset.
pub const SECTION_ALIGN: u64 = 64;
/// Smallest allowed block size.
pub const MIN_BLOCK_SIZE: u32 = 8;
/// Largest allowed block size (doc offsets within a block fit in a `u8`).
pub const MAX_BLOCK_SIZE: u32 = 256;
/// The default block size: the fastest on every benchmark collection at k = 10 and 1000, for an
/// index about 30% larger than at 32 (the sweep is in docs/BENCHMARKS.md).
pub const DEFAULT_BLOCK_SIZE: u32 = 8;
/// The default number of blocks per superblock.
pub const DEFAULT_SUPERBLOCK_SIZE: u32 = 64;
/// Largest allowed number of blocks per superblock (a power of two, as every superblock size is,
/// so that a superblock never straddles a page of a sparse block-max row).
pub const MAX_SUPERBLOCK_SIZE: u32 = 1024;
/// Number of doc ids in one bitpacked posting chunk.
pub const CHUNK_LEN: usize = 128;

/// The fixed-size file header.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable)]
pub struct Header {
    /// [`MAGIC`].
    pub magic: [u8; 8],
    /// [`FORMAT_VERSION`].
    pub version: u32,
    /// Size of this header in bytes (128).
    pub header_size: u32,
    /// Number of documents.
    pub num_docs: u64,
    /// Number of distinct terms.
    pub num_terms: u64,
    /// Number of postings.
    pub num_postings: u64,
    /// Documents per block.
    pub block_size: u32,
    /// `ceil(num_docs / block_size)`.
    pub num_blocks: u32,
    /// Weight units per impact unit (see [`crate::quantize`]).
    pub quant_scale: f32,
    /// Number of entries in the section table.
    pub num_sections: u32,
    /// Length of the whole file in bytes.
    pub file_len: u64,
    /// xxh3-64 of the header (with this field zero) followed by the section table.
    pub checksum: u64,
    /// Blocks per superblock (a power of two, at most [`MAX_SUPERBLOCK_SIZE`]).
    pub superblock_size: u32,
    /// The lexical field's [`LexicalField::scale`], or 0 when the index has no lexical field
    /// (every index written before the field existed has 0 here).
    pub lexical_scale: f32,
    /// The lexical field's BM25 `k1` (0 without a lexical field).
    pub lexical_k1: f32,
    /// The lexical field's BM25 `b` (0 without a lexical field).
    pub lexical_b: f32,
    /// Zero.
    pub reserved: [u8; 40],
}

/// What every term of a lexical (BM25) field begins with: `bm25:flow` is the analyzed word
/// `flow` of the lexical field. No other term may begin with it.
pub const LEXICAL_PREFIX: &str = "bm25:";

/// A lexical field: BM25 term weights of each document (the idf, `k1 + 1` and the length
/// normalization folded in), so that a query of analyzed words weighted by their counts scores
/// a document's BM25 as a dot product. Its terms begin with [`LEXICAL_PREFIX`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LexicalField {
    /// BM25's term-frequency saturation.
    pub k1: f32,
    /// BM25's length normalization.
    pub b: f32,
    /// What a stored lexical weight is multiplied by to give BM25 units (1 when the lexical
    /// field is the only one; otherwise the lexical weights were scaled into the range of the
    /// other field's, to share its quantizer).
    pub scale: f32,
}

impl Header {
    /// The lexical field, if the index has one.
    pub fn lexical(&self) -> Option<LexicalField> {
        (self.lexical_scale > 0.0).then_some(LexicalField {
            k1: self.lexical_k1,
            b: self.lexical_b,
            scale: self.lexical_scale,
        })
    }
}

/// Size of [`Header`] in bytes.
pub const HEADER_SIZE: usize = std::mem::size_of::<Header>();
const _: () = assert!(HEADER_SIZE == 128);

/// One entry of the section table.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, PartialEq, Eq)]
pub struct SectionEntry {
    /// A [`SectionKind`] as `u32`.
    pub kind: u32,
    /// Zero.
    pub reserved: u32,
    /// Byte offset of the section in the file.
    pub offset: u64,
    /// Length of the section in bytes.
    pub len: u64,
    /// xxh3-64 of the section's bytes.
    pub checksum: u64,
}

/// Size of [`SectionEntry`] in bytes.
pub const SECTION_ENTRY_SIZE: usize = std::mem::size_of::<SectionEntry>();
const _: () = assert!(SECTION_ENTRY_SIZE == 32);

/// The `k` values for which each term stores its k-th largest impact.
pub const KTH_IMPACT_KS: [usize; 3] = [10, 100, 1000];

/// Per-term statistics.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, PartialEq, Eq, Default)]
pub struct TermStats {
    /// Number of documents containing the term.
    pub df: u32,
    /// Largest impact of the term.
    pub max_impact: u8,
    /// The term's k-th largest impact for each k of [`KTH_IMPACT_KS`] (0 when df < k): at least
    /// k documents score at least `weight * kth_impact[i]` on any query with this term.
    pub kth_impact: [u8; 3],
}

/// The header of one 128-id posting chunk.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, PartialEq, Eq, Default)]
pub struct ChunkHeader {
    /// The last doc id of the chunk.
    pub last_doc: u32,
    /// Offset of the packed ids, relative to the start of the term's postings.
    pub packed_offset: u32,
    /// Bits per delta.
    pub num_bits: u8,
    /// Largest impact in the chunk.
    pub max_impact: u8,
    /// Zero.
    pub reserved: [u8; 2],
}

/// Where a term's block-max row is.
#[repr(C)]
#[derive(Debug, Clone, Copy, Pod, Zeroable, PartialEq, Eq, Default)]
pub struct BlockMaxEntry {
    /// Offset in the `BlockMaxData` section.
    pub offset: u64,
    /// Number of blocks where the term occurs ([`ROW_DENSE`], [`ROW_SPARSE`]), or number of
    /// ranges ([`ROW_RANGES`]).
    pub nnz: u32,
    /// [`ROW_DENSE`], [`ROW_SPARSE`] or [`ROW_RANGES`].
    pub kind: u32,
}

/// Bit 31 of a forward block's first word: its bucket starts and pair ends are `u32`, not `u16`.
pub const FORWARD_WIDE: u32 = 1 << 31;

/// Term ids per forward-index bucket (the low byte of a term id is stored per entry).
pub const FORWARD_BUCKET: u32 = 256;

/// Number of forward-index buckets for `num_terms` terms.
pub fn forward_buckets(num_terms: u64) -> usize {
    num_terms.div_ceil(u64::from(FORWARD_BUCKET)) as usize
}

/// A block-max row stored as one byte per block.
pub const ROW_DENSE: u32 = 0;
/// A block-max row stored as the blocks where the term occurs: block ids are split into pages of
/// [`ROW_PAGE_BLOCKS`] blocks; the row holds `ceil(num_blocks / ROW_PAGE_BLOCKS)` cumulative
/// entry counts (`u32`, the end of each page's entries), then `nnz` `u16` block ids within their
/// page (increasing), then `nnz` `u8` maxima.
pub const ROW_SPARSE: u32 = 1;
/// Blocks per page of a sparse block-max row.
pub const ROW_PAGE_BLOCKS: usize = 1 << 16;

/// Number of pages of a sparse block-max row in an index of `num_blocks` blocks.
pub fn row_pages(num_blocks: u64) -> usize {
    num_blocks.div_ceil(ROW_PAGE_BLOCKS as u64) as usize
}
/// A block-max row stored as ranges of consecutive blocks: `nnz` range starts (`u32`), `nnz`
/// range lengths (`u16`), then the maxima of every block of every range, range after range.
/// Ranges may cover blocks where the term does not occur (their maximum is 0) when that is
/// shorter than starting a new range.
pub const ROW_RANGES: u32 = 2;
/// The longest run of absent blocks a range covers rather than being split in two.
pub const RANGE_MAX_GAP: u32 = 5;
/// The shortest mean range length (in blocks) for which a row is stored as ranges: shorter
/// ranges make the bound computation slower than a sparse row's scatter.
pub const RANGE_MIN_MEAN_LEN: usize = 16;

/// The sections of an index, in file order.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    /// Offsets of the term strings.
    VocabOffsets = 1,
    /// The term strings.
    VocabBytes = 2,
    /// Offsets of the external doc ids.
    DocIdOffsets = 3,
    /// The external doc ids.
    DocIdBytes = 4,
    /// [`TermStats`] per term.
    TermStats = 5,
    /// Offsets of each term's postings.
    PostingsOffsets = 6,
    /// The compressed postings.
    Postings = 7,
    /// [`BlockMaxEntry`] per term.
    BlockMaxDir = 8,
    /// The block-max rows.
    BlockMaxData = 9,
    /// Offsets of each block in the forward index.
    ForwardOffsets = 10,
    /// The block-grouped forward index.
    Forward = 11,
    /// [`BlockMaxEntry`] per term, for its superblock row.
    SuperblockDir = 12,
    /// The superblock rows.
    SuperblockData = 13,
}

impl SectionKind {
    /// Every section kind, in file order.
    pub const ALL: [SectionKind; 13] = [
        SectionKind::VocabOffsets,
        SectionKind::VocabBytes,
        SectionKind::DocIdOffsets,
        SectionKind::DocIdBytes,
        SectionKind::TermStats,
        SectionKind::Postings,
        SectionKind::PostingsOffsets,
        SectionKind::BlockMaxData,
        SectionKind::BlockMaxDir,
        SectionKind::Forward,
        SectionKind::ForwardOffsets,
        SectionKind::SuperblockData,
        SectionKind::SuperblockDir,
    ];

    /// The kind for a table value.
    pub fn from_u32(v: u32) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| *k as u32 == v)
    }

    /// A short name for reports.
    pub fn name(self) -> &'static str {
        match self {
            SectionKind::VocabOffsets => "vocab offsets",
            SectionKind::VocabBytes => "vocab strings",
            SectionKind::DocIdOffsets => "doc id offsets",
            SectionKind::DocIdBytes => "doc id strings",
            SectionKind::TermStats => "term stats",
            SectionKind::PostingsOffsets => "postings offsets",
            SectionKind::Postings => "postings",
            SectionKind::BlockMaxDir => "block-max directory",
            SectionKind::BlockMaxData => "block-max rows",
            SectionKind::ForwardOffsets => "forward offsets",
            SectionKind::Forward => "forward index",
            SectionKind::SuperblockDir => "superblock directory",
            SectionKind::SuperblockData => "superblock rows",
        }
    }

    /// Position in [`SectionKind::ALL`].
    pub fn index(self) -> usize {
        self as usize - 1
    }
}

/// Checks a block size against the allowed range.
pub fn validate_block_size(block_size: u32) -> crate::Result<()> {
    if (MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&block_size) {
        Ok(())
    } else {
        Err(crate::Error::Invalid(format!(
            "block size {block_size} is out of range {MIN_BLOCK_SIZE}..={MAX_BLOCK_SIZE}"
        )))
    }
}

/// Checks a superblock size: a power of two in `1..=MAX_SUPERBLOCK_SIZE`.
pub fn validate_superblock_size(superblock_size: u32) -> crate::Result<()> {
    if superblock_size.is_power_of_two() && superblock_size <= MAX_SUPERBLOCK_SIZE {
        Ok(())
    } else {
        Err(crate::Error::Invalid(format!(
            "superblock size {superblock_size} must be a power of two in 1..={MAX_SUPERBLOCK_SIZE}"
        )))
    }
}

/// Number of superblocks for `num_blocks` blocks.
pub fn num_superblocks(num_blocks: u64, superblock_size: u32) -> u64 {
    num_blocks.div_ceil(u64::from(superblock_size.max(1)))
}

/// A superblock row stored for every superblock: maxima, then means.
pub const SB_DENSE: u32 = 0;
/// A superblock row stored for the superblocks where the term occurs: `u32` ids, maxima, means.
pub const SB_SPARSE: u32 = 1;

/// Number of blocks for `num_docs` documents.
pub fn num_blocks(num_docs: u64, block_size: u32) -> u64 {
    num_docs.div_ceil(u64::from(block_size))
}

#[cfg(test)]
mod tests;
