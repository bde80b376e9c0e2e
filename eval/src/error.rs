//! The error type shared by every module of the crate.

use std::path::PathBuf;

/// Everything that can go wrong while reading evaluation data, evaluating a run or searching
/// the BM25 baseline.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a named file (or stream).
    #[error("{path}: {error}")]
    Io {
        /// The file being read or written.
        path: PathBuf,
        /// The underlying error (in the message only, not chained as a source, so it is
        /// printed once).
        error: std::io::Error,
    },
    /// A malformed line, with its file and 1-based line number.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file being read.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// What is wrong with the line.
        message: String,
    },
    /// A file that a dataset layout requires is absent.
    #[error("missing {what}: {path} does not exist")]
    MissingFile {
        /// Which file, in words ("queries", "qrels for split test", ...).
        what: String,
        /// The path that was looked for (the first candidate when several names are accepted).
        path: PathBuf,
    },
    /// The dataset has no corpus (e.g. the MS MARCO folders ship queries and qrels only).
    #[error("{dir}: this dataset has no corpus (no corpus.jsonl or corpus.jsonl.gz)")]
    NoCorpus {
        /// The dataset folder.
        dir: PathBuf,
    },
    /// Inconsistent data across files, or a run that trec_eval would refuse.
    #[error("{0}")]
    Invalid(String),
    /// An option outside its domain.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// An error from the tantivy BM25 index.
    #[error("BM25 index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// An error from the sparse index or its query processors.
    #[error(transparent)]
    Index(#[from] bmp_index::Error),
    /// An error from a lexical or hybrid query.
    #[error(transparent)]
    Lexical(#[from] bmp_lexical::Error),
    /// An error from a text or token encoder.
    #[error(transparent)]
    Encoder(#[from] bmp_encoder::EncoderError),
    /// An error with what was being done when it happened (a query, a document).
    #[error("{context}: {error}")]
    Context {
        /// What was being done.
        context: String,
        /// What went wrong.
        error: Box<Error>,
    },
}

impl Error {
    /// This error, said to have happened while doing `context`.
    pub fn context(self, context: impl Into<String>) -> Self {
        Error::Context {
            context: context.into(),
            error: Box::new(self),
        }
    }

    /// A parse error at `path:line`.
    pub(crate) fn parse(path: &std::path::Path, line: u64, message: impl Into<String>) -> Self {
        Error::Parse {
            path: path.to_path_buf(),
            line,
            message: message.into(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Error::Io {
            path: path.to_path_buf(),
            error: source,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
