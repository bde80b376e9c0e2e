//! Opens an index file with memmap2 and reads it in place.
//!
//! Opening checks the header (magic, version, checksum, file length, counts) and the section table
//! (every kind present once, aligned, inside the file, sized for the counts); it does not walk the
//! postings. Every offset read later from the file is checked against its section before use, so a
//! corrupted file yields [`Error::Corrupt`], never an out-of-bounds read. [`Index::verify_checksums`]
//! checks every section's checksum.

use std::fs::File;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use memmap2::Mmap;
use xxhash_rust::xxh3::xxh3_64;

use super::term_table::TermTable;
use super::writer::header_checksum;
use super::{
    forward_buckets, num_blocks, num_superblocks, row_pages, validate_superblock_size,
    BlockMaxEntry, Header, SectionEntry, SectionKind, TermStats, FORMAT_VERSION, FORWARD_BUCKET,
    FORWARD_WIDE, HEADER_SIZE, MAGIC, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE, ROW_DENSE, ROW_PAGE_BLOCKS,
    ROW_RANGES, ROW_SPARSE, SB_DENSE, SB_SPARSE, SECTION_ALIGN, SECTION_ENTRY_SIZE,
};
use crate::error::{Error, Result};
use crate::postings::PostingList;
use crate::quantize::Quantizer;

/// An open, memory-mapped index.
pub struct Index {
    path: PathBuf,
    mmap: Mmap,
    header: Header,
    table: Vec<SectionEntry>,
    ranges: [Range<usize>; SectionKind::ALL.len()],
    /// Term ids by the hash of their strings, built on the first term lookup (`None` inside:
    /// the vocabulary could not be read, and lookups search the sorted strings).
    terms: OnceLock<Option<TermTable>>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("path", &self.path)
            .field("header", &self.header)
            .finish()
    }
}

/// A term's block-max row: the maximum impact of the term in each block.
#[derive(Debug, Clone, Copy)]
pub enum BlockMaxRow<'a> {
    /// One byte per block.
    Dense(&'a [u8]),
    /// The blocks where the term occurs (increasing) and their maxima, block ids split into pages
    /// of [`ROW_PAGE_BLOCKS`] blocks.
    Sparse {
        /// End of each page's entries in `blocks` and `maxes` (cumulative).
        page_ends: &'a [u32],
        /// Block ids within their page.
        blocks: &'a [u16],
        /// Maximum impact in each of those blocks.
        maxes: &'a [u8],
    },
    /// Ranges of consecutive blocks (increasing, disjoint) and the maxima of every block they
    /// cover, range after range.
    Ranges {
        /// First block of each range.
        starts: &'a [u32],
        /// Number of blocks in each range.
        lens: &'a [u16],
        /// Maximum impact of each covered block (`sum(lens)` bytes).
        maxes: &'a [u8],
    },
}

/// A term's superblock row: for each superblock, the largest and the mean (rounded up) of the
/// term's block maxima.
#[derive(Debug, Clone, Copy)]
pub enum SuperblockRow<'a> {
    /// Every superblock.
    Dense {
        /// Largest block maximum per superblock.
        max: &'a [u8],
        /// Mean block maximum per superblock, rounded up.
        avg: &'a [u8],
    },
    /// The superblocks where the term occurs.
    Sparse {
        /// Their ids, increasing.
        ids: &'a [u32],
        /// Largest block maximum of each.
        max: &'a [u8],
        /// Mean block maximum of each, rounded up.
        avg: &'a [u8],
    },
}

impl BlockMaxRow<'_> {
    /// The maximum impact of the term in `block` (0 when absent).
    pub fn get(&self, block: u32) -> u8 {
        match self {
            BlockMaxRow::Dense(row) => row.get(block as usize).copied().unwrap_or(0),
            BlockMaxRow::Sparse {
                page_ends,
                blocks,
                maxes,
            } => {
                let page = block as usize / ROW_PAGE_BLOCKS;
                let from = match page {
                    0 => 0,
                    p => page_ends.get(p - 1).map_or(usize::MAX, |&e| e as usize),
                };
                let to = page_ends.get(page).map_or(0, |&e| e as usize);
                let low = (block as usize % ROW_PAGE_BLOCKS) as u16;
                blocks
                    .get(from..to)
                    .and_then(|ids| ids.binary_search(&low).ok())
                    .and_then(|i| maxes.get(from + i).copied())
                    .unwrap_or(0)
            }
            BlockMaxRow::Ranges {
                starts,
                lens,
                maxes,
            } => {
                let mut at = 0usize;
                for (&s, &l) in starts.iter().zip(lens.iter()) {
                    let l = usize::from(l);
                    if block >= s && ((block - s) as usize) < l {
                        return maxes.get(at + (block - s) as usize).copied().unwrap_or(0);
                    }
                    at += l;
                }
                0
            }
        }
    }
}

/// A little-endian array of `u16` or `u32` values in a forward block.
#[derive(Debug, Clone, Copy)]
pub enum Offsets<'a> {
    /// `u16` values (blocks with at most 65,535 terms and pairs).
    Narrow(&'a [u16]),
    /// `u32` values.
    Wide(&'a [u32]),
}

impl Offsets<'_> {
    /// Value `i` (0 when out of range).
    #[inline]
    pub fn get(&self, i: usize) -> usize {
        match self {
            Offsets::Narrow(e) => e.get(i).map_or(0, |&v| usize::from(v)),
            Offsets::Wide(e) => e.get(i).map_or(0, |&v| v as usize),
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Offsets::Narrow(e) => e.len(),
            Offsets::Wide(e) => e.len(),
        }
    }

    /// Whether there is no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Hints the processor to load the cache line at `p`.
#[inline(always)]
pub fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; it never faults, whatever the address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p.cast(), std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// One block of the forward index: its terms, and for each term the (doc offset, impact) pairs.
///
/// Terms are grouped in buckets of [`FORWARD_BUCKET`] ids; each entry stores the low byte of
/// its term id. Offsets inside the block are checked on access: a corrupted block yields empty or
/// wrong pairs, never an out-of-bounds read (section checksums detect the corruption).
#[derive(Debug, Clone, Copy)]
pub struct ForwardBlock<'a> {
    /// `starts[b]..starts[b + 1]` are the entries of bucket `b`.
    pub starts: Offsets<'a>,
    /// Low byte of each entry's term id, increasing within a bucket.
    pub lows: &'a [u8],
    /// Cumulative ends of each entry's pairs in `pairs`.
    pub ends: Offsets<'a>,
    /// `(doc offset within the block, impact)` pairs, grouped by term.
    pub pairs: &'a [[u8; 2]],
}

impl<'a> ForwardBlock<'a> {
    /// Number of distinct terms in the block.
    pub fn len(&self) -> usize {
        self.lows.len()
    }

    /// Whether the block has no term.
    pub fn is_empty(&self) -> bool {
        self.lows.is_empty()
    }

    /// The pairs of the `i`-th entry of the block.
    #[inline]
    pub fn pairs_of(&self, i: usize) -> &'a [[u8; 2]] {
        let start = if i == 0 { 0 } else { self.ends.get(i - 1) };
        self.pairs.get(start..self.ends.get(i)).unwrap_or(&[])
    }

    /// Hints the processor to load the pair offsets of the `i`-th entry.
    #[inline]
    pub fn prefetch_entry(&self, i: usize) {
        let p: *const u8 = match self.ends {
            Offsets::Narrow(e) => e.as_ptr().wrapping_add(i.saturating_sub(1)).cast(),
            Offsets::Wide(e) => e.as_ptr().wrapping_add(i.saturating_sub(1)).cast(),
        };
        prefetch(p);
    }

    /// The pairs of term `term`, if the block has it.
    #[inline]
    pub fn find(&self, term: u32) -> Option<&'a [[u8; 2]]> {
        let bucket = (term / FORWARD_BUCKET) as usize;
        let low = (term % FORWARD_BUCKET) as u8;
        let (a, b) = (self.starts.get(bucket), self.starts.get(bucket + 1));
        let lows = self.lows.get(a..b)?;
        let i = lows.iter().position(|&l| l >= low)?;
        (lows[i] == low).then(|| self.pairs_of(a + i))
    }

    /// The block's terms with their `(doc offset, impact)` pairs, in term order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &'a [[u8; 2]])> + '_ {
        let buckets = self.starts.len().saturating_sub(1);
        (0..buckets).flat_map(move |b| {
            let (start, end) = (self.starts.get(b), self.starts.get(b + 1));
            (start..end.min(self.lows.len())).map(move |i| {
                let term = b as u32 * FORWARD_BUCKET + u32::from(self.lows[i]);
                (term, self.pairs_of(i))
            })
        })
    }
}

fn read_pod<T: bytemuck::Pod>(bytes: &[u8]) -> T {
    bytemuck::pod_read_unaligned(&bytes[..std::mem::size_of::<T>()])
}

impl Index {
    /// Opens and validates the index at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Index> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| Error::io(&path, e))?;
        // SAFETY: the file is opened read-only and treated as immutable; indexes are only ever
        // replaced by rename, never modified in place, so the mapping does not change underneath.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| Error::io(&path, e))?;
        Self::from_mmap(path, mmap)
    }

    /// Opens an index held in memory (copied into an anonymous mapping), with the checks of
    /// [`Index::open`]; `name` stands for the path in error messages.
    pub fn from_bytes(name: impl Into<PathBuf>, bytes: &[u8]) -> Result<Index> {
        let path = name.into();
        // An empty map is allowed (memmap2 maps a byte behind it); `from_mmap` refuses it.
        let mut map = memmap2::MmapMut::map_anon(bytes.len()).map_err(|e| Error::io(&path, e))?;
        map.copy_from_slice(bytes);
        let mmap = map.make_read_only().map_err(|e| Error::io(&path, e))?;
        Self::from_mmap(path, mmap)
    }

    fn from_mmap(path: PathBuf, mmap: Mmap) -> Result<Index> {
        let corrupt = |m: String| Error::corrupt(&path, m);
        let len = mmap.len();
        if len < 8 || mmap[..8] != MAGIC {
            return Err(corrupt("not a bmp index (bad magic bytes)".into()));
        }
        if len < HEADER_SIZE {
            return Err(corrupt(format!(
                "file of {len} bytes is shorter than the header"
            )));
        }
        let header: Header = read_pod(&mmap[..HEADER_SIZE]);
        if header.version != FORMAT_VERSION {
            return Err(Error::Version {
                path,
                found: header.version,
                expected: FORMAT_VERSION,
            });
        }
        if header.header_size as usize != HEADER_SIZE {
            return Err(corrupt(format!("header size {}", header.header_size)));
        }
        if header.file_len != len as u64 {
            return Err(corrupt(format!(
                "file is {len} bytes, header says {} (truncated or extended)",
                header.file_len
            )));
        }
        if header.num_sections as usize != SectionKind::ALL.len() {
            return Err(corrupt(format!(
                "{} sections, expected {}",
                header.num_sections,
                SectionKind::ALL.len()
            )));
        }
        let table_end = HEADER_SIZE + SectionKind::ALL.len() * SECTION_ENTRY_SIZE;
        if len < table_end {
            return Err(corrupt("file ends inside the section table".into()));
        }
        let table: Vec<SectionEntry> = mmap[HEADER_SIZE..table_end]
            .chunks_exact(SECTION_ENTRY_SIZE)
            .map(read_pod)
            .collect();
        if header_checksum(&header, &table) != header.checksum {
            return Err(corrupt("header checksum mismatch".into()));
        }
        if !(MIN_BLOCK_SIZE..=MAX_BLOCK_SIZE).contains(&header.block_size) {
            return Err(corrupt(format!("block size {}", header.block_size)));
        }
        if header.num_docs >= u64::from(u32::MAX) || header.num_terms >= u64::from(u32::MAX) {
            return Err(corrupt("document or term count out of range".into()));
        }
        if u64::from(header.num_blocks) != num_blocks(header.num_docs, header.block_size) {
            return Err(corrupt(format!("block count {}", header.num_blocks)));
        }
        if validate_superblock_size(header.superblock_size).is_err() {
            return Err(corrupt(format!(
                "superblock size {}",
                header.superblock_size
            )));
        }
        if Quantizer::from_scale(header.quant_scale).is_none() {
            return Err(corrupt(format!(
                "quantization scale {}",
                header.quant_scale
            )));
        }
        let mut ranges: [Range<usize>; SectionKind::ALL.len()] = Default::default();
        let mut seen = [false; SectionKind::ALL.len()];
        let mut previous_end = table_end as u64;
        for entry in &table {
            let kind = SectionKind::from_u32(entry.kind)
                .ok_or_else(|| corrupt(format!("unknown section kind {}", entry.kind)))?;
            if std::mem::replace(&mut seen[kind.index()], true) {
                return Err(corrupt(format!("section {} appears twice", kind.name())));
            }
            let end = entry.offset.checked_add(entry.len);
            if entry.offset % SECTION_ALIGN != 0
                || entry.offset < previous_end
                || end.is_none_or(|e| e > len as u64)
            {
                return Err(corrupt(format!(
                    "section {} at {}+{} lies outside the file or overlaps another",
                    kind.name(),
                    entry.offset,
                    entry.len
                )));
            }
            previous_end = entry.offset + entry.len;
            ranges[kind.index()] = entry.offset as usize..(entry.offset + entry.len) as usize;
        }
        let index = Index {
            path,
            mmap,
            header,
            table,
            ranges,
            terms: OnceLock::new(),
        };
        index.check_section_sizes()?;
        Ok(index)
    }

    fn check_section_sizes(&self) -> Result<()> {
        let h = &self.header;
        let (t, n, b) = (
            h.num_terms as usize,
            h.num_docs as usize,
            h.num_blocks as usize,
        );
        let expect = [
            (SectionKind::VocabOffsets, (t + 1) * 8),
            (SectionKind::DocIdOffsets, (n + 1) * 8),
            (SectionKind::TermStats, t * std::mem::size_of::<TermStats>()),
            (SectionKind::PostingsOffsets, (t + 1) * 8),
            (
                SectionKind::BlockMaxDir,
                t * std::mem::size_of::<BlockMaxEntry>(),
            ),
            (SectionKind::ForwardOffsets, (b + 1) * 8),
            (
                SectionKind::SuperblockDir,
                t * std::mem::size_of::<BlockMaxEntry>(),
            ),
        ];
        for (kind, size) in expect {
            if self.section(kind).len() != size {
                return Err(self.corrupt(format!(
                    "section {} is {} bytes, expected {size}",
                    kind.name(),
                    self.section(kind).len()
                )));
            }
        }
        let pairs = [
            (SectionKind::VocabOffsets, SectionKind::VocabBytes),
            (SectionKind::DocIdOffsets, SectionKind::DocIdBytes),
            (SectionKind::PostingsOffsets, SectionKind::Postings),
            (SectionKind::ForwardOffsets, SectionKind::Forward),
        ];
        for (offsets, data) in pairs {
            let o = self.u64s(offsets);
            if o.first() != Some(&0) || o.last() != Some(&(self.section(data).len() as u64)) {
                return Err(self.corrupt(format!(
                    "section {} does not span {}",
                    offsets.name(),
                    data.name()
                )));
            }
        }
        Ok(())
    }

    fn corrupt(&self, message: String) -> Error {
        Error::corrupt(&self.path, message)
    }

    fn section(&self, kind: SectionKind) -> &[u8] {
        &self.mmap[self.ranges[kind.index()].clone()]
    }

    fn u64s(&self, kind: SectionKind) -> &[u64] {
        // Sections are 64-byte aligned in a page-aligned mapping and sized by check_section_sizes.
        bytemuck::try_cast_slice(self.section(kind)).unwrap_or(&[])
    }

    /// The byte range `[offsets[i], offsets[i+1])` of `data`, checked.
    fn range(&self, offsets: SectionKind, data: SectionKind, i: usize) -> Result<Range<usize>> {
        let o = self.u64s(offsets);
        let (Some(&a), Some(&b)) = (o.get(i), o.get(i + 1)) else {
            return Err(self.corrupt(format!("{} index {i} out of range", offsets.name())));
        };
        if a > b || b > self.section(data).len() as u64 {
            return Err(self.corrupt(format!("{} entry {i} is out of bounds", offsets.name())));
        }
        Ok(a as usize..b as usize)
    }

    /// The path the index was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Number of documents.
    pub fn num_docs(&self) -> u32 {
        self.header.num_docs as u32
    }

    /// Number of terms.
    pub fn num_terms(&self) -> u32 {
        self.header.num_terms as u32
    }

    /// Number of postings.
    pub fn num_postings(&self) -> u64 {
        self.header.num_postings
    }

    /// Documents per block.
    pub fn block_size(&self) -> u32 {
        self.header.block_size
    }

    /// Number of blocks.
    pub fn num_blocks(&self) -> u32 {
        self.header.num_blocks
    }

    /// The document quantizer (its scale converts impacts back to weights).
    pub fn quantizer(&self) -> Quantizer {
        Quantizer::from_scale(self.header.quant_scale).unwrap_or(Quantizer::for_weights(0.0, true))
    }

    /// Size of the file in bytes.
    pub fn file_len(&self) -> u64 {
        self.mmap.len() as u64
    }

    /// Section kinds with their sizes in bytes, in file order.
    pub fn section_sizes(&self) -> Vec<(SectionKind, u64)> {
        self.table
            .iter()
            .filter_map(|e| SectionKind::from_u32(e.kind).map(|k| (k, e.len)))
            .collect()
    }

    /// Checks the checksum of every section.
    pub fn verify_checksums(&self) -> Result<()> {
        for entry in &self.table {
            let kind = SectionKind::from_u32(entry.kind).expect("validated at open");
            if xxh3_64(self.section(kind)) != entry.checksum {
                return Err(self.corrupt(format!("checksum mismatch in section {}", kind.name())));
            }
        }
        Ok(())
    }

    /// Checks that every byte outside the header, the section table and the sections (the
    /// alignment padding, which no checksum covers) is zero, as the writer leaves it.
    pub fn verify_padding(&self) -> Result<()> {
        let mut sections: Vec<Range<usize>> = self.ranges.to_vec();
        sections.sort_by_key(|r| r.start);
        let mut at = HEADER_SIZE + SectionKind::ALL.len() * SECTION_ENTRY_SIZE;
        for r in sections
            .iter()
            .chain(std::iter::once(&(self.mmap.len()..self.mmap.len())))
        {
            if let Some(i) = self.mmap[at..r.start].iter().position(|&b| b != 0) {
                return Err(self.corrupt(format!("padding byte {} is not zero", at + i)));
            }
            at = at.max(r.end);
        }
        Ok(())
    }

    /// The string of term `id`.
    pub fn term(&self, id: u32) -> Result<&str> {
        let r = self.range(
            SectionKind::VocabOffsets,
            SectionKind::VocabBytes,
            id as usize,
        )?;
        std::str::from_utf8(&self.section(SectionKind::VocabBytes)[r])
            .map_err(|_| self.corrupt(format!("term {id} is not valid UTF-8")))
    }

    /// The bytes of term `id`, unchecked as UTF-8 (`None` past the vocabulary or when its
    /// offsets are damaged).
    fn term_bytes(&self, id: u32) -> Option<&[u8]> {
        let r = self
            .range(
                SectionKind::VocabOffsets,
                SectionKind::VocabBytes,
                id as usize,
            )
            .ok()?;
        self.section(SectionKind::VocabBytes).get(r)
    }

    /// The id of `term`, if it is in the vocabulary: a hash-table lookup (the table, 8 to 16
    /// bytes per term, is built on the first call), or a binary search over the sorted strings
    /// when the vocabulary's offsets are damaged.
    pub fn term_id(&self, term: &str) -> Result<Option<u32>> {
        let table = self
            .terms
            .get_or_init(|| TermTable::build(self.num_terms(), |id| self.term_bytes(id)));
        match table {
            Some(table) => Ok(table.find(term.as_bytes(), |id| self.term_bytes(id))),
            None => self.term_id_by_search(term),
        }
    }

    /// The id of `term` by binary search over the sorted strings.
    fn term_id_by_search(&self, term: &str) -> Result<Option<u32>> {
        // Byte order is the order of UTF-8 strings: the search compares bytes and needs no
        // decoding (a stored term equal to `term` is valid UTF-8).
        let bytes = self.section(SectionKind::VocabBytes);
        let (mut lo, mut hi) = (0u32, self.num_terms());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let r = self.range(
                SectionKind::VocabOffsets,
                SectionKind::VocabBytes,
                mid as usize,
            )?;
            match bytes[r].cmp(term.as_bytes()) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(Some(mid)),
            }
        }
        Ok(None)
    }

    /// The external id of document `doc`.
    pub fn doc_id(&self, doc: u32) -> Result<&str> {
        let r = self.range(
            SectionKind::DocIdOffsets,
            SectionKind::DocIdBytes,
            doc as usize,
        )?;
        std::str::from_utf8(&self.section(SectionKind::DocIdBytes)[r])
            .map_err(|_| self.corrupt(format!("doc id {doc} is not valid UTF-8")))
    }

    /// Statistics of term `id`.
    pub fn term_stats(&self, id: u32) -> Result<TermStats> {
        let all: &[TermStats] = bytemuck::try_cast_slice(self.section(SectionKind::TermStats))
            .map_err(|_| self.corrupt("misaligned term stats".into()))?;
        all.get(id as usize)
            .copied()
            .ok_or_else(|| self.corrupt(format!("term {id} out of range")))
    }

    /// The posting list of term `id`.
    pub fn postings(&self, id: u32) -> Result<PostingList<'_>> {
        let df = self.term_stats(id)?.df as usize;
        let r = self.range(
            SectionKind::PostingsOffsets,
            SectionKind::Postings,
            id as usize,
        )?;
        if r.start % 4 != 0 {
            return Err(self.corrupt(format!("postings of term {id} are misaligned")));
        }
        PostingList::new(&self.section(SectionKind::Postings)[r], df, self.num_docs())
            .map_err(|e| self.corrupt(format!("term {id}: {}", e.0)))
    }

    /// The block-max row of term `id`.
    pub fn block_max(&self, id: u32) -> Result<BlockMaxRow<'_>> {
        let dir: &[BlockMaxEntry] =
            bytemuck::try_cast_slice(self.section(SectionKind::BlockMaxDir))
                .map_err(|_| self.corrupt("misaligned block-max directory".into()))?;
        let e = dir
            .get(id as usize)
            .ok_or_else(|| self.corrupt(format!("term {id} out of range")))?;
        let data = self.section(SectionKind::BlockMaxData);
        let nblocks = self.num_blocks() as usize;
        let start = usize::try_from(e.offset).unwrap_or(usize::MAX);
        let nnz = e.nnz as usize;
        let bad = || self.corrupt(format!("block-max row of term {id} is out of bounds"));
        match e.kind {
            ROW_DENSE => {
                let end = start.checked_add(nblocks).ok_or_else(bad)?;
                data.get(start..end).map(BlockMaxRow::Dense).ok_or_else(bad)
            }
            ROW_SPARSE if nnz <= nblocks && start % 4 == 0 => {
                let ids_at = start
                    .checked_add(row_pages(nblocks as u64) * 4)
                    .ok_or_else(bad)?;
                let maxes_at = ids_at.checked_add(nnz * 2).ok_or_else(bad)?;
                let page_ends: &[u32] =
                    bytemuck::try_cast_slice(data.get(start..ids_at).ok_or_else(bad)?)
                        .map_err(|_| bad())?;
                let blocks: &[u16] =
                    bytemuck::try_cast_slice(data.get(ids_at..maxes_at).ok_or_else(bad)?)
                        .map_err(|_| bad())?;
                let maxes = data.get(maxes_at..maxes_at + nnz).ok_or_else(bad)?;
                Ok(BlockMaxRow::Sparse {
                    page_ends,
                    blocks,
                    maxes,
                })
            }
            ROW_RANGES if nnz <= nblocks && start % 4 == 0 => {
                let lens_at = start.checked_add(nnz * 4).ok_or_else(bad)?;
                let maxes_at = lens_at + nnz * 2;
                let starts: &[u32] =
                    bytemuck::try_cast_slice(data.get(start..lens_at).ok_or_else(bad)?)
                        .map_err(|_| bad())?;
                let lens: &[u16] =
                    bytemuck::try_cast_slice(data.get(lens_at..maxes_at).ok_or_else(bad)?)
                        .map_err(|_| bad())?;
                let covered: usize = lens.iter().map(|&l| usize::from(l)).sum();
                let maxes = data.get(maxes_at..maxes_at + covered).ok_or_else(bad)?;
                Ok(BlockMaxRow::Ranges {
                    starts,
                    lens,
                    maxes,
                })
            }
            _ => Err(bad()),
        }
    }

    /// Blocks per superblock.
    pub fn superblock_size(&self) -> u32 {
        self.header.superblock_size
    }

    /// Number of superblocks.
    pub fn num_superblocks(&self) -> u32 {
        num_superblocks(u64::from(self.num_blocks()), self.superblock_size()) as u32
    }

    /// The superblock row of term `id`.
    pub fn superblock_row(&self, id: u32) -> Result<SuperblockRow<'_>> {
        let dir: &[BlockMaxEntry] =
            bytemuck::try_cast_slice(self.section(SectionKind::SuperblockDir))
                .map_err(|_| self.corrupt("misaligned superblock directory".into()))?;
        let e = dir
            .get(id as usize)
            .ok_or_else(|| self.corrupt(format!("term {id} out of range")))?;
        let data = self.section(SectionKind::SuperblockData);
        let nsb = self.num_superblocks() as usize;
        let start = usize::try_from(e.offset).unwrap_or(usize::MAX);
        let nnz = e.nnz as usize;
        let bad = || self.corrupt(format!("superblock row of term {id} is out of bounds"));
        let slice = |from: usize, len: usize| {
            from.checked_add(len)
                .and_then(|end| data.get(from..end))
                .ok_or_else(bad)
        };
        match e.kind {
            SB_DENSE => Ok(SuperblockRow::Dense {
                max: slice(start, nsb)?,
                avg: slice(start.saturating_add(nsb), nsb)?,
            }),
            SB_SPARSE if nnz <= nsb && start % 4 == 0 => {
                let ids: &[u32] =
                    bytemuck::try_cast_slice(slice(start, nnz * 4)?).map_err(|_| bad())?;
                Ok(SuperblockRow::Sparse {
                    ids,
                    max: slice(start + nnz * 4, nnz)?,
                    avg: slice(start + nnz * 5, nnz)?,
                })
            }
            _ => Err(bad()),
        }
    }

    /// The bytes of forward block `block` (empty when out of range), e.g. to prefetch them.
    #[inline]
    pub fn forward_block_bytes(&self, block: u32) -> &[u8] {
        self.range(
            SectionKind::ForwardOffsets,
            SectionKind::Forward,
            block as usize,
        )
        .map_or(&[], |r| &self.section(SectionKind::Forward)[r])
    }

    /// Hints the processor to load the offset of forward block `block` (the first of the
    /// dependent loads that reach a block's data).
    #[inline]
    pub fn prefetch_forward_offset(&self, block: u32) {
        let offsets = self.u64s(SectionKind::ForwardOffsets);
        prefetch(offsets.as_ptr().wrapping_add(block as usize).cast());
    }

    /// Block `block` of the forward index.
    pub fn forward_block(&self, block: u32) -> Result<ForwardBlock<'_>> {
        let r = self.range(
            SectionKind::ForwardOffsets,
            SectionKind::Forward,
            block as usize,
        )?;
        self.parse_forward_block(block, &self.section(SectionKind::Forward)[r])
    }

    /// Forward block `block` read from its bytes, as [`Index::forward_block_bytes`] gives them
    /// (empty bytes are malformed).
    pub fn parse_forward_block<'a>(&self, block: u32, bytes: &'a [u8]) -> Result<ForwardBlock<'a>> {
        let bad = || self.corrupt(format!("forward block {block} is malformed"));
        if bytes.len() < 4 || !(bytes.as_ptr() as usize).is_multiple_of(4) {
            return Err(bad());
        }
        let word = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        let wide = word & FORWARD_WIDE != 0;
        let n = (word & !FORWARD_WIDE) as usize;
        let width = if wide { 4 } else { 2 };
        let nbuckets = forward_buckets(self.header.num_terms);
        let starts_end = (nbuckets + 1)
            .checked_mul(width)
            .and_then(|x| x.checked_add(4))
            .ok_or_else(bad)?;
        let lows_end = starts_end.checked_add(n).ok_or_else(bad)?;
        let ends_start = lows_end.next_multiple_of(width);
        let ends_end = n
            .checked_mul(width)
            .and_then(|x| x.checked_add(ends_start))
            .ok_or_else(bad)?;
        let start_bytes = bytes.get(4..starts_end).ok_or_else(bad)?;
        let lows = bytes.get(starts_end..lows_end).ok_or_else(bad)?;
        let end_bytes = bytes.get(ends_start..ends_end).ok_or_else(bad)?;
        let (starts, ends) = if wide {
            (
                Offsets::Wide(bytemuck::try_cast_slice(start_bytes).map_err(|_| bad())?),
                Offsets::Wide(bytemuck::try_cast_slice(end_bytes).map_err(|_| bad())?),
            )
        } else {
            (
                Offsets::Narrow(bytemuck::try_cast_slice(start_bytes).map_err(|_| bad())?),
                Offsets::Narrow(bytemuck::try_cast_slice(end_bytes).map_err(|_| bad())?),
            )
        };
        let total = if n == 0 { 0 } else { ends.get(n - 1) };
        let pair_end = ends_end.checked_add(total * 2).ok_or_else(bad)?;
        let pair_bytes = bytes.get(ends_end..pair_end).ok_or_else(bad)?;
        let pairs: &[[u8; 2]] = bytemuck::cast_slice(pair_bytes);
        Ok(ForwardBlock {
            starts,
            lows,
            ends,
            pairs,
        })
    }
}
