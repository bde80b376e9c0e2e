//! The manifest of a collection directory: which segments are live, with which deletions.
//!
//! JSON, replaced atomically ([`crate::atomic::AtomicFile`]: written beside, fsynced, renamed, the
//! directory fsynced), with a generation number that grows by one per change and an xxh3 checksum
//! of its content, so that a torn or edited manifest is an error, never a silently different
//! collection.

use std::path::Path;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::atomic::AtomicFile;
use crate::error::{Error, Result};

/// The manifest's file name in a collection directory.
pub const MANIFEST: &str = "MANIFEST";

/// The value of the manifest's `format` field.
const FORMAT: &str = "bmp-collection";

/// The manifest version this build writes and reads.
const VERSION: u32 = 1;

/// One live segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentEntry {
    /// The segment's index file, in the collection directory.
    pub file: String,
    /// Documents in the segment, deleted ones included.
    pub docs: u32,
    /// Documents of the segment deleted.
    pub deleted: u64,
    /// The file holding the deleted internal doc ids (a portable roaring bitmap), if any.
    pub deletes: Option<String>,
}

/// What a collection directory holds, as of one generation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always `bmp-collection`.
    pub format: String,
    /// The manifest version.
    pub version: u32,
    /// Grows by one with every change.
    pub generation: u64,
    /// Weight units per impact unit, shared by every segment (fixed by the first documents
    /// added), so that scores compare across segments; `None` before any document.
    pub scale: Option<f32>,
    /// Documents per block of new segments.
    pub block_size: u32,
    /// Blocks per superblock of new segments.
    pub superblock_size: u32,
    /// The number the next new segment's file gets.
    pub next_segment: u64,
    /// The live segments, oldest first: ties between documents of equal score are broken by
    /// segment in this order, then by internal doc id.
    pub segments: Vec<SegmentEntry>,
    /// xxh3 of the manifest serialized without this field, in hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

impl Manifest {
    /// The manifest of an empty collection.
    pub fn empty(block_size: u32, superblock_size: u32) -> Self {
        Manifest {
            format: FORMAT.into(),
            version: VERSION,
            generation: 0,
            scale: None,
            block_size,
            superblock_size,
            next_segment: 1,
            segments: Vec::new(),
            checksum: None,
        }
    }

    /// The checksum of this manifest's content (every field but the checksum).
    fn content_checksum(&self) -> Result<String> {
        let body = serde_json::to_vec(&Manifest {
            checksum: None,
            ..self.clone()
        })
        .map_err(|e| Error::Invalid(format!("cannot serialize the manifest: {e}")))?;
        Ok(format!("{:016x}", xxh3_64(&body)))
    }

    /// Reads and checks the manifest of the collection directory `dir`.
    pub fn read(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::input(&path, format!("not a collection manifest: {e}")))?;
        if manifest.format != FORMAT {
            return Err(Error::input(
                &path,
                format!("format {:?}, expected {FORMAT:?}", manifest.format),
            ));
        }
        if manifest.version != VERSION {
            return Err(Error::input(
                &path,
                format!(
                    "manifest version {}, this build reads version {VERSION}",
                    manifest.version
                ),
            ));
        }
        let expected = manifest.content_checksum()?;
        if manifest.checksum.as_deref() != Some(expected.as_str()) {
            return Err(Error::corrupt(
                &path,
                format!(
                    "manifest checksum {:?} does not match its content ({expected})",
                    manifest.checksum.as_deref().unwrap_or("missing")
                ),
            ));
        }
        for s in &manifest.segments {
            for name in std::iter::once(&s.file).chain(s.deletes.as_ref()) {
                if !is_plain_name(name) {
                    return Err(Error::corrupt(
                        &path,
                        format!("segment file name {name:?} is not a plain file name"),
                    ));
                }
            }
        }
        Ok(manifest)
    }

    /// Writes this manifest into the collection directory `dir` (atomically), with its checksum.
    pub fn write(&mut self, dir: &Path) -> Result<()> {
        self.checksum = Some(self.content_checksum()?);
        let mut file = AtomicFile::create(&dir.join(MANIFEST))?;
        let temp = file.temp_path().to_path_buf();
        let body = serde_json::to_vec_pretty(&*self)
            .map_err(|e| Error::Invalid(format!("cannot serialize the manifest: {e}")))?;
        std::io::Write::write_all(file.writer(), &body).map_err(|e| Error::io(&temp, e))?;
        std::io::Write::write_all(file.writer(), b"\n").map_err(|e| Error::io(&temp, e))?;
        file.commit()
    }

    /// Number of live (not deleted) documents.
    pub fn live_docs(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| u64::from(s.docs).saturating_sub(s.deleted))
            .sum()
    }
}

/// Whether `name` is one plain file name (no directory part, not `.` or `..`).
fn is_plain_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\\')
        && !name.contains('\0')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::empty(8, 64);
        m.scale = Some(0.0125);
        m.segments.push(SegmentEntry {
            file: "seg-00000001.bmp".into(),
            docs: 10,
            deleted: 2,
            deletes: Some("seg-00000001.del-3".into()),
        });
        m.generation = 3;
        m.write(dir.path()).unwrap();
        let read = Manifest::read(dir.path()).unwrap();
        assert_eq!(read, m);
        assert_eq!(read.live_docs(), 8);

        // Any edit of the content is caught.
        let path = dir.path().join(MANIFEST);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("\"docs\": 10", "\"docs\": 11")).unwrap();
        let err = Manifest::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("checksum"), "{err}");
    }

    #[test]
    fn file_names_must_be_plain() {
        let dir = tempfile::tempdir().unwrap();
        let mut m = Manifest::empty(8, 64);
        m.segments.push(SegmentEntry {
            file: "../outside.bmp".into(),
            docs: 1,
            deleted: 0,
            deletes: None,
        });
        m.write(dir.path()).unwrap();
        let err = Manifest::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("plain file name"), "{err}");
    }

    #[test]
    fn not_a_manifest() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(MANIFEST), "{\"format\": 3}").unwrap();
        let err = Manifest::read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a collection manifest"), "{err}");
    }
}
