//! The error type shared by everything in the index crate.

use std::path::PathBuf;

/// Everything that can go wrong while reading input, building, or opening an index.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An operating-system error on a named file. The message already holds the OS error, so
    /// it is not chained as a source as well (that would print it twice).
    #[error("{path}: {error}")]
    Io {
        /// The file the operation was on.
        path: PathBuf,
        /// The underlying error.
        error: std::io::Error,
    },
    /// Malformed input at a given line (or record) of an input file.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The input file.
        path: PathBuf,
        /// 1-based line number (or record number for binary formats).
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// Input that parses but is not acceptable as a whole (empty corpus, inconsistent counts, ...).
    #[error("{path}: {message}")]
    Input {
        /// The input file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// An index file that is truncated, corrupted, or not an index at all.
    #[error("{path}: corrupt index: {message}")]
    Corrupt {
        /// The index file.
        path: PathBuf,
        /// What check failed.
        message: String,
    },
    /// An index written in a format version this build cannot read.
    #[error("{path}: index format version {found}, this build reads version {expected}; rebuild the index")]
    Version {
        /// The index file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this build reads and writes.
        expected: u32,
    },
    /// An invalid argument (block size out of range, ...).
    #[error("{0}")]
    Invalid(String),
}

/// Result alias for the index crate.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, error: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error,
        }
    }

    /// A parse error at `line` of `path`.
    pub fn parse(path: impl Into<PathBuf>, line: u64, message: impl Into<String>) -> Self {
        Error::Parse {
            path: path.into(),
            line,
            message: message.into(),
        }
    }

    /// An error about an input file as a whole.
    pub fn input(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Input {
            path: path.into(),
            message: message.into(),
        }
    }

    /// A corrupt-index error.
    pub fn corrupt(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            message: message.into(),
        }
    }
}
