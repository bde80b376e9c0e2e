//! The error type of the crate.

use std::path::{Path, PathBuf};

/// Everything that can go wrong while loading or running an encoder.
///
/// Variants that come from a file name it, so a user can tell which file to fix.
#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    /// The model directory does not exist or is not a directory.
    #[error(
        "model directory {0} does not exist or is not a directory \
         (run scripts/setup-models.sh to fetch the bundled models)"
    )]
    ModelDirNotFound(PathBuf),

    /// A file the model needs is not in the model directory.
    #[error("model directory {dir} has no {file} (expected {path})")]
    MissingFile {
        /// The model directory that was searched.
        dir: PathBuf,
        /// The name of the missing file, e.g. `tokenizer.json`.
        file: &'static str,
        /// The full path that was expected.
        path: PathBuf,
    },

    /// A file exists but could not be read.
    #[error("cannot read {path}: {error}")]
    Io {
        /// The file being read.
        path: PathBuf,
        /// The underlying I/O error.
        error: std::io::Error,
    },

    /// `config.json` is not valid JSON or does not describe a BERT model.
    #[error("invalid model config {path}: {error}")]
    Config {
        /// The config file.
        path: PathBuf,
        /// The JSON error (names the field that did not parse).
        error: serde_json::Error,
    },

    /// A field of `config.json` parsed but holds a value the encoder cannot use.
    #[error("invalid model config {path}: field `{field}`: {message}")]
    ConfigField {
        /// The config file.
        path: PathBuf,
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },

    /// `tokenizer.json` could not be loaded or configured.
    #[error("cannot load tokenizer {path}: {message}")]
    Tokenizer {
        /// The tokenizer file.
        path: PathBuf,
        /// The tokenizer library's message.
        message: String,
    },

    /// Tokenizing an input text failed.
    #[error("tokenization failed: {0}")]
    Tokenize(String),

    /// The weights file could not be opened or lacks a tensor the model needs.
    #[error("cannot load weights from {path}: {error}")]
    Weights {
        /// The safetensors file.
        path: PathBuf,
        /// candle's error (names the tensor that is missing or has the wrong shape).
        error: candle_core::Error,
    },

    /// An option has a value the encoder cannot use.
    #[error("invalid option `{option}`: {message}")]
    InvalidOption {
        /// The option's name.
        option: &'static str,
        /// What is wrong with the value.
        message: String,
    },

    /// The requested device or dtype is not available.
    #[error("device: {0}")]
    Device(String),

    /// An input given to the model is malformed (e.g. an empty token sequence).
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A tensor operation failed while running the model.
    #[error("model computation failed: {0}")]
    Candle(candle_core::Error),
}

// Not `#[from]`: that would also chain candle's error as the source and print it twice.
impl From<candle_core::Error> for EncoderError {
    fn from(error: candle_core::Error) -> Self {
        EncoderError::Candle(error)
    }
}

/// The crate's result type.
pub type Result<T, E = EncoderError> = std::result::Result<T, E>;

impl EncoderError {
    /// For `map_err`: an I/O error on `path` as [`EncoderError::Io`], naming the file.
    pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EncoderError {
        let path = path.to_path_buf();
        move |error| EncoderError::Io { path, error }
    }
}
