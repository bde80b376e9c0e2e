//! Opening text files (gzip when the name ends in `.gz`) and reading them line by line with
//! line numbers, for error messages of the form `file:line: message`.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::error::{Error, Result};

/// True when the file name ends in `.gz` (compared without regard to case).
pub(crate) fn is_gzip(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
}

/// Opens `path` for buffered reading, decompressing gzip (all members) when the name ends in `.gz`.
pub fn open_text(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    if is_gzip(path) {
        Ok(Box::new(BufReader::with_capacity(
            1 << 16,
            MultiGzDecoder::new(BufReader::with_capacity(1 << 16, file)),
        )))
    } else {
        Ok(Box::new(BufReader::with_capacity(1 << 16, file)))
    }
}

/// Creates `path` for writing, gzip-compressed when the name ends in `.gz`. Call
/// [`TextWriter::finish`] to flush and close it (and the gzip trailer) with error reporting.
pub(crate) fn create_text(path: &Path) -> Result<TextWriter> {
    let file = File::create(path).map_err(|e| Error::io(path, e))?;
    let inner = if is_gzip(path) {
        Sink::Gzip(GzEncoder::new(BufWriter::new(file), Compression::default()))
    } else {
        Sink::Plain(BufWriter::new(file))
    };
    Ok(TextWriter {
        path: path.to_path_buf(),
        inner,
    })
}

/// A buffered, possibly gzip-compressed, output file.
pub(crate) struct TextWriter {
    path: PathBuf,
    inner: Sink,
}

enum Sink {
    Plain(BufWriter<File>),
    Gzip(GzEncoder<BufWriter<File>>),
}

impl TextWriter {
    /// The writer to format into.
    pub(crate) fn writer(&mut self) -> &mut dyn Write {
        match &mut self.inner {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w,
        }
    }

    /// Flushes everything, writes the gzip trailer and syncs the file to disk.
    pub(crate) fn finish(self) -> Result<()> {
        let path = self.path;
        let buffered = match self.inner {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish().map_err(|e| Error::io(&path, e))?,
        };
        let file = buffered
            .into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?;
        file.sync_all().map_err(|e| Error::io(&path, e))
    }
}

/// Reads a text stream line by line, keeping the 1-based line number for error messages.
///
/// Line ends (`\n` or `\r\n`) are removed, a UTF-8 byte order mark at the start of the stream is
/// skipped, and invalid UTF-8 is reported as a parse error on its line.
pub(crate) struct Lines {
    reader: Box<dyn BufRead + Send>,
    path: PathBuf,
    line_no: u64,
    buf: Vec<u8>,
}

impl Lines {
    /// Opens `path` (see [`open_text`]).
    pub(crate) fn open(path: &Path) -> Result<Self> {
        Ok(Self::new(open_text(path)?, path))
    }

    /// Wraps an already open stream; `name` is used in error messages.
    pub(crate) fn new(reader: Box<dyn BufRead + Send>, name: &Path) -> Self {
        Lines {
            reader,
            path: name.to_path_buf(),
            line_no: 0,
            buf: Vec::new(),
        }
    }

    /// The next line without its line end, or `None` at the end of the stream.
    pub(crate) fn next_line(&mut self) -> Result<Option<Line<'_>>> {
        self.buf.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| Error::io(&self.path, e))?;
        if n == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        if self.buf.last() == Some(&b'\n') {
            self.buf.pop();
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
        }
        let mut bytes: &[u8] = &self.buf;
        if self.line_no == 1 {
            bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(Some(Line {
                text,
                path: &self.path,
                number: self.line_no,
            })),
            Err(e) => Err(Error::parse(
                &self.path,
                self.line_no,
                format!("invalid UTF-8 at byte {}", e.valid_up_to()),
            )),
        }
    }
}

/// One line of a text file, with what is needed to report an error on it.
pub(crate) struct Line<'a> {
    /// The text, without its line end.
    pub(crate) text: &'a str,
    /// The file.
    pub(crate) path: &'a Path,
    /// 1-based line number.
    pub(crate) number: u64,
}

impl Line<'_> {
    /// A parse error on this line.
    pub(crate) fn error(&self, message: impl Into<String>) -> Error {
        Error::parse(self.path, self.number, message)
    }
}
