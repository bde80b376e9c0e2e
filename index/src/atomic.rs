//! Atomic file replacement: write to a temporary file beside the target, fsync, rename.
//!
//! A writer that fails or is killed never leaves a partial file under the target name and never
//! clobbers an existing target. Temporary files are named `.<target name>.tmp-<pid>`; one left by a
//! killed process is removed by the next writer of the same target.
//!
//! A target that exists and is not a regular file (`/dev/null`, `/dev/stdout`, a named pipe) is
//! written directly: renaming over a device would replace it.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A file being written that replaces `target` on [`AtomicFile::commit`].
#[derive(Debug)]
pub struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    writer: Option<BufWriter<File>>,
    /// Writing straight into a device or pipe: no temporary file, no rename.
    direct: bool,
}

fn temp_prefix(target: &Path) -> Result<String> {
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Invalid(format!("{}: not a file name", target.display())))?;
    Ok(format!(".{name}.tmp-"))
}

fn process_is_alive(pid: u32) -> bool {
    if cfg!(target_os = "linux") {
        Path::new(&format!("/proc/{pid}")).exists()
    } else {
        true
    }
}

/// Removes temporary files of `target` left behind by processes that no longer run.
pub fn remove_stale_temps(target: &Path) -> Result<usize> {
    let prefix = temp_prefix(target)?;
    let dir = parent_dir(target);
    let mut removed = 0;
    let Ok(entries) = fs::read_dir(&dir) else {
        return Ok(0);
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(pid) = name.strip_prefix(&prefix) else {
            continue;
        };
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if pid != std::process::id()
            && !process_is_alive(pid)
            && fs::remove_file(entry.path()).is_ok()
        {
            removed += 1;
        }
    }
    Ok(removed)
}

fn parent_dir(target: &Path) -> PathBuf {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

impl AtomicFile {
    /// Starts writing a replacement for `target`.
    pub fn create(target: &Path) -> Result<Self> {
        let dir = parent_dir(target);
        if !dir.is_dir() {
            return Err(Error::io(
                target,
                std::io::Error::new(std::io::ErrorKind::NotFound, "directory does not exist"),
            ));
        }
        if target.is_dir() {
            return Err(Error::Invalid(format!(
                "{}: is a directory",
                target.display()
            )));
        }
        if fs::metadata(target).is_ok_and(|m| !m.is_file()) {
            let file = OpenOptions::new()
                .write(true)
                .open(target)
                .map_err(|e| Error::io(target, e))?;
            return Ok(AtomicFile {
                target: target.to_path_buf(),
                temp: target.to_path_buf(),
                writer: Some(BufWriter::with_capacity(1 << 20, file)),
                direct: true,
            });
        }
        remove_stale_temps(target)?;
        let temp = dir.join(format!("{}{}", temp_prefix(target)?, std::process::id()));
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temp)
            .map_err(|e| Error::io(&temp, e))?;
        Ok(AtomicFile {
            target: target.to_path_buf(),
            temp,
            writer: Some(BufWriter::with_capacity(1 << 20, file)),
            direct: false,
        })
    }

    /// The path of the temporary file.
    pub fn temp_path(&self) -> &Path {
        &self.temp
    }

    /// The buffered writer of the temporary file.
    pub fn writer(&mut self) -> &mut BufWriter<File> {
        self.writer
            .as_mut()
            .expect("AtomicFile writer is present until commit")
    }

    /// Seeks the temporary file (flushing the buffer first).
    pub fn seek(&mut self, pos: std::io::SeekFrom) -> Result<u64> {
        let temp = self.temp.clone();
        self.writer().seek(pos).map_err(|e| Error::io(temp, e))
    }

    /// Flushes, fsyncs and renames the temporary file over the target, then fsyncs the directory.
    pub fn commit(mut self) -> Result<()> {
        let writer = self.writer.take().expect("AtomicFile committed once");
        let file = writer
            .into_inner()
            .map_err(|e| Error::io(&self.temp, e.into_error()))?;
        if self.direct {
            return Ok(());
        }
        file.sync_all().map_err(|e| Error::io(&self.temp, e))?;
        drop(file);
        fs::rename(&self.temp, &self.target).map_err(|e| Error::io(&self.target, e))?;
        if let Ok(dir) = File::open(parent_dir(&self.target)) {
            let _ = dir.sync_all();
        }
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.writer().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.writer().write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.writer().flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() && !self.direct {
            let _ = fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_replaces_and_drop_discards() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.idx");
        fs::write(&target, b"old").unwrap();
        {
            let mut f = AtomicFile::create(&target).unwrap();
            f.write_all(b"half").unwrap();
            // dropped without commit
        }
        assert_eq!(fs::read(&target).unwrap(), b"old");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
        let mut f = AtomicFile::create(&target).unwrap();
        f.write_all(b"new").unwrap();
        f.commit().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn stale_temp_of_dead_process_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x.idx");
        // pid 4294967 is far above Linux's pid_max limit, so no such process runs.
        let stale = dir.path().join(".x.idx.tmp-4294967");
        fs::write(&stale, b"partial").unwrap();
        let f = AtomicFile::create(&target).unwrap();
        assert!(!stale.exists());
        drop(f);
    }

    #[test]
    fn devices_are_written_in_place() {
        let null = Path::new("/dev/null");
        if !fs::metadata(null).is_ok_and(|m| !m.is_file()) {
            return;
        }
        let mut f = AtomicFile::create(null).unwrap();
        f.write_all(b"discarded").unwrap();
        f.commit().unwrap();
        assert!(!fs::metadata(null).unwrap().is_file());
        let f = AtomicFile::create(null).unwrap();
        drop(f);
        assert!(null.exists());
    }

    #[test]
    fn missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("no/such/dir/x.idx");
        assert!(AtomicFile::create(&target).is_err());
    }
}
