//! Writes the sections of an index file with their checksums, then the header and section table.

use std::io::{SeekFrom, Write};
use std::path::{Path, PathBuf};

use xxhash_rust::xxh3::{xxh3_64, Xxh3};

use super::{
    Header, SectionEntry, SectionKind, FORMAT_VERSION, HEADER_SIZE, MAGIC, SECTION_ALIGN,
    SECTION_ENTRY_SIZE,
};
use crate::atomic::AtomicFile;
use crate::error::{Error, Result};

/// The counts and parameters that go into the header.
#[derive(Debug, Clone, Copy)]
pub struct HeaderFields {
    /// Number of documents.
    pub num_docs: u64,
    /// Number of terms.
    pub num_terms: u64,
    /// Number of postings.
    pub num_postings: u64,
    /// Block size.
    pub block_size: u32,
    /// Number of blocks.
    pub num_blocks: u32,
    /// Quantization scale.
    pub quant_scale: f32,
    /// Blocks per superblock.
    pub superblock_size: u32,
    /// The lexical field, if any.
    pub lexical: Option<super::LexicalField>,
}

/// Writes sections in [`SectionKind::ALL`] order into an [`AtomicFile`].
pub struct SectionWriter {
    file: AtomicFile,
    path: PathBuf,
    pos: u64,
    entries: Vec<SectionEntry>,
    current: Option<(SectionKind, u64, Xxh3)>,
}

impl SectionWriter {
    /// Starts an index file that will replace `target` when finished.
    pub fn create(target: &Path) -> Result<Self> {
        let mut file = AtomicFile::create(target)?;
        let table_end = (HEADER_SIZE + SectionKind::ALL.len() * SECTION_ENTRY_SIZE) as u64;
        let path = file.temp_path().to_path_buf();
        file.write_all(&vec![0u8; table_end as usize])
            .map_err(|e| Error::io(&path, e))?;
        Ok(SectionWriter {
            file,
            path,
            pos: table_end,
            entries: Vec::new(),
            current: None,
        })
    }

    /// Starts the next section; it must be the next kind in [`SectionKind::ALL`] order.
    pub fn begin(&mut self, kind: SectionKind) -> Result<()> {
        assert!(
            self.current.is_none(),
            "section {kind:?} begun inside another"
        );
        assert_eq!(
            SectionKind::ALL[self.entries.len()],
            kind,
            "sections must be written in order"
        );
        let aligned = self.pos.next_multiple_of(SECTION_ALIGN);
        let pad = (aligned - self.pos) as usize;
        self.raw_write(&[0u8; SECTION_ALIGN as usize][..pad])?;
        self.current = Some((kind, self.pos, Xxh3::new()));
        Ok(())
    }

    /// Bytes written so far in the current section.
    pub fn section_pos(&self) -> u64 {
        let (_, start, _) = self.current.as_ref().expect("inside a section");
        self.pos - start
    }

    /// Appends bytes to the current section.
    pub fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let (_, _, hasher) = self.current.as_mut().expect("inside a section");
        hasher.update(bytes);
        self.raw_write(bytes)
    }

    /// Pads the current section with zeros to a multiple of `align` bytes.
    pub fn align(&mut self, align: u64) -> Result<()> {
        let pos = self.section_pos();
        let pad = (pos.next_multiple_of(align) - pos) as usize;
        self.write(&vec![0u8; pad])
    }

    /// Ends the current section.
    pub fn end(&mut self) -> Result<()> {
        let (kind, start, hasher) = self.current.take().expect("inside a section");
        self.entries.push(SectionEntry {
            kind: kind as u32,
            reserved: 0,
            offset: start,
            len: self.pos - start,
            checksum: hasher.digest(),
        });
        Ok(())
    }

    /// Writes a whole section at once.
    pub fn section(&mut self, kind: SectionKind, bytes: &[u8]) -> Result<()> {
        self.begin(kind)?;
        self.write(bytes)?;
        self.end()
    }

    fn raw_write(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all(bytes)
            .map_err(|e| Error::io(&self.path, e))?;
        self.pos += bytes.len() as u64;
        Ok(())
    }

    /// Writes the header and section table, fsyncs and renames over the target.
    /// Returns the file size.
    pub fn finish(mut self, fields: HeaderFields) -> Result<u64> {
        assert_eq!(
            self.entries.len(),
            SectionKind::ALL.len(),
            "all sections written"
        );
        let mut header = Header {
            magic: MAGIC,
            version: FORMAT_VERSION,
            header_size: HEADER_SIZE as u32,
            num_docs: fields.num_docs,
            num_terms: fields.num_terms,
            num_postings: fields.num_postings,
            block_size: fields.block_size,
            num_blocks: fields.num_blocks,
            quant_scale: fields.quant_scale,
            num_sections: self.entries.len() as u32,
            file_len: self.pos,
            checksum: 0,
            superblock_size: fields.superblock_size,
            lexical_scale: fields.lexical.map_or(0.0, |l| l.scale),
            lexical_k1: fields.lexical.map_or(0.0, |l| l.k1),
            lexical_b: fields.lexical.map_or(0.0, |l| l.b),
            reserved: [0; 40],
        };
        header.checksum = header_checksum(&header, &self.entries);
        self.file.seek(SeekFrom::Start(0))?;
        let path = self.path.clone();
        self.file
            .write_all(bytemuck::bytes_of(&header))
            .map_err(|e| Error::io(&path, e))?;
        self.file
            .write_all(bytemuck::cast_slice(&self.entries))
            .map_err(|e| Error::io(&path, e))?;
        let len = self.pos;
        self.file.commit()?;
        Ok(len)
    }
}

/// The checksum stored in the header: xxh3-64 of the header with a zero checksum field,
/// followed by the section table.
pub fn header_checksum(header: &Header, entries: &[SectionEntry]) -> u64 {
    let mut h = *header;
    h.checksum = 0;
    let mut bytes = bytemuck::bytes_of(&h).to_vec();
    bytes.extend_from_slice(bytemuck::cast_slice(entries));
    xxh3_64(&bytes)
}
