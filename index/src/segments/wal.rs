//! The write-ahead log of a collection: writes that are durable but not yet in a segment.
//!
//! The file `WAL` in the collection directory holds one record a line, `<xxh3 of the JSON, 16 hex
//! digits> <JSON array of writes>`. [`Wal::append`] writes a group of writes (those of several
//! requests: group commit) as one record and fsyncs once: the writes are durable, and may be
//! acknowledged, once `append` returns, and a group is logged whole or not at all. The log is emptied once its writes are in segments named by a durable manifest.
//!
//! A crash in the middle of an append leaves a torn last record: [`Wal::open`] keeps the records
//! up to the first one that is incomplete or fails its checksum and cuts the rest off, since none
//! of it was acknowledged; a bad record followed by good ones is corruption, and an error.
//! Replaying the log over segments that already hold some of its writes gives the same
//! collection (a write's effect depends only on the last write of its id), so a crash between
//! the manifest and the emptying of the log loses nothing and doubles nothing.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::error::{Error, Result};

/// The log's file name in a collection directory.
pub const WAL: &str = "WAL";

/// One logged write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase", deny_unknown_fields)]
pub enum WalOp {
    /// Adds the document `id` (replacing a live one with the same id).
    Add {
        /// External document id.
        id: String,
        /// `(term, weight)` entries.
        vector: Vec<(String, f32)>,
    },
    /// Deletes the document `id`.
    Delete {
        /// External document id.
        id: String,
    },
}

impl WalOp {
    /// The document id the write is about.
    pub fn id(&self) -> &str {
        match self {
            WalOp::Add { id, .. } | WalOp::Delete { id } => id,
        }
    }
}

/// The open log of a collection directory (only its writer opens it).
#[derive(Debug)]
pub struct Wal {
    path: PathBuf,
    file: File,
    /// Bytes in the log.
    len: u64,
    /// Bytes of a torn last write cut off when the log was opened.
    torn: u64,
}

impl Wal {
    /// Opens (creating it when missing) the log of the collection directory `dir` and returns
    /// the writes it holds, in order. A torn last group is cut off.
    pub fn open(dir: &Path) -> Result<(Wal, Vec<WalOp>)> {
        let path = dir.join(WAL);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(|e| Error::io(&path, e))?;
        let (ops, good) = parse(&path, &bytes)?;
        let mut wal = Wal {
            path,
            file,
            len: bytes.len() as u64,
            torn: 0,
        };
        if good < wal.len {
            wal.torn = wal.len - good;
            wal.truncate_to(good)?;
        }
        Ok((wal, ops))
    }

    /// Appends `ops` in one write and fsyncs: they are durable when this returns. On failure
    /// the log is cut back to where it was.
    pub fn append(&mut self, ops: &[WalOp]) -> Result<()> {
        if ops.is_empty() {
            return Ok(());
        }
        let json = serde_json::to_vec(ops)
            .map_err(|e| Error::Invalid(format!("cannot log a write: {e}")))?;
        let mut buf = Vec::with_capacity(json.len() + 18);
        write!(buf, "{:016x} ", xxh3_64(&json)).map_err(|e| Error::io(&self.path, e))?;
        buf.extend_from_slice(&json);
        buf.push(b'\n');
        let written = self
            .file
            .seek(SeekFrom::Start(self.len))
            .and_then(|_| self.file.write_all(&buf))
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            let _ = self.truncate_to(self.len);
            return Err(Error::io(&self.path, e));
        }
        self.len += buf.len() as u64;
        Ok(())
    }

    /// Empties the log (its writes are in segments now) and fsyncs.
    pub fn clear(&mut self) -> Result<()> {
        self.truncate_to(0)
    }

    /// Bytes in the log.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Bytes of a torn last write (never acknowledged) cut off when the log was opened.
    pub fn torn_bytes(&self) -> u64 {
        self.torn
    }

    /// Whether the log holds no write.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn truncate_to(&mut self, len: u64) -> Result<()> {
        self.file
            .set_len(len)
            .and_then(|()| self.file.sync_all())
            .map_err(|e| Error::io(&self.path, e))?;
        self.len = len;
        Ok(())
    }
}

/// The records of a log's bytes, and the length of the whole records among them.
fn parse(path: &Path, bytes: &[u8]) -> Result<(Vec<WalOp>, u64)> {
    let mut ops = Vec::new();
    let mut pos = 0usize;
    let mut line_no = 0u64;
    while pos < bytes.len() {
        line_no += 1;
        let Some(end) = bytes[pos..].iter().position(|&b| b == b'\n') else {
            // An incomplete last line: torn.
            break;
        };
        match parse_record(&bytes[pos..pos + end]) {
            Some(group) => ops.extend(group),
            None => {
                // A torn group ends the log: nothing good may follow it.
                let rest = &bytes[pos + end + 1..];
                if rest
                    .split(|&b| b == b'\n')
                    .any(|line| parse_record(line).is_some())
                {
                    return Err(Error::parse(
                        path,
                        line_no,
                        "a damaged record before good ones: the write-ahead log is corrupt",
                    ));
                }
                break;
            }
        }
        pos += end + 1;
    }
    Ok((ops, pos as u64))
}

/// The writes of one record line (without its newline), or `None` when it is damaged.
fn parse_record(line: &[u8]) -> Option<Vec<WalOp>> {
    let hex = std::str::from_utf8(line.get(..16)?).ok()?;
    let sum = u64::from_str_radix(hex, 16).ok()?;
    if line.get(16) != Some(&b' ') {
        return None;
    }
    let json = &line[17..];
    if xxh3_64(json) != sum {
        return None;
    }
    serde_json::from_slice(json).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(id: &str, w: f32) -> WalOp {
        WalOp::Add {
            id: id.into(),
            vector: vec![("t".into(), w), ("ü \"q\"".into(), 0.1)],
        }
    }

    #[test]
    fn appended_writes_are_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, ops) = Wal::open(dir.path()).unwrap();
        assert!(ops.is_empty() && wal.is_empty());
        let written = vec![
            add("a", 1.5),
            WalOp::Delete { id: "b".into() },
            add("c", 0.3),
        ];
        wal.append(&written[..2]).unwrap();
        wal.append(&written[2..]).unwrap();
        drop(wal);
        let (wal, ops) = Wal::open(dir.path()).unwrap();
        assert_eq!(ops, written);
        assert!(!wal.is_empty());
    }

    #[test]
    fn a_torn_last_group_is_cut_off_and_the_log_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        wal.append(&[add("a", 1.0)]).unwrap();
        let good = wal.len();
        wal.append(&[add("b", 2.0), add("c", 3.0)]).unwrap();
        drop(wal);
        let path = dir.path().join(WAL);
        let bytes = std::fs::read(&path).unwrap();
        for cut in [good + 1, good + 20, bytes.len() as u64 - 1] {
            std::fs::write(&path, &bytes[..cut as usize]).unwrap();
            let (mut wal, ops) = Wal::open(dir.path()).unwrap();
            assert_eq!(ops, vec![add("a", 1.0)], "cut at {cut}");
            assert_eq!(wal.len(), good);
            assert_eq!(wal.torn_bytes(), cut - good);
            wal.append(&[add("d", 4.0)]).unwrap();
            drop(wal);
            let (_, ops) = Wal::open(dir.path()).unwrap();
            assert_eq!(ops, vec![add("a", 1.0), add("d", 4.0)]);
        }
    }

    #[test]
    fn a_damaged_record_before_good_ones_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        wal.append(&[add("a", 1.0)]).unwrap();
        wal.append(&[add("b", 2.0)]).unwrap();
        drop(wal);
        let path = dir.path().join(WAL);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[20] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = Wal::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("corrupt") && err.contains("1"), "{err}");
    }

    #[test]
    fn cleared_log_is_empty_when_opened_again() {
        let dir = tempfile::tempdir().unwrap();
        let (mut wal, _) = Wal::open(dir.path()).unwrap();
        wal.append(&[add("a", 1.0)]).unwrap();
        wal.clear().unwrap();
        assert!(wal.is_empty());
        wal.append(&[add("b", 1.0)]).unwrap();
        drop(wal);
        let (_, ops) = Wal::open(dir.path()).unwrap();
        assert_eq!(ops, vec![add("b", 1.0)]);
    }
}
