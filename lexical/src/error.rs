//! Errors of lexical and hybrid queries.

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter out of its range (a lexical weight, BM25's `k1` or `b`, a fusion's name).
    #[error("{0}")]
    InvalidOption(String),
    /// The index has no lexical field where a hybrid query needs one.
    #[error("{0}: no lexical field (build it with --lexical)")]
    NoLexicalField(String),
    /// The index failed.
    #[error(transparent)]
    Index(#[from] bmp_index::Error),
}

/// This crate's result.
pub type Result<T> = std::result::Result<T, Error>;
