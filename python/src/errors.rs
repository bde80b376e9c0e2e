//! The engine's errors as Python exceptions.

use bmp_index::Error;
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyOSError, PyValueError};
use pyo3::PyErr;

create_exception!(
    bmp,
    CorruptIndexError,
    PyException,
    "An index file that is truncated, damaged, not an index, or of another format version."
);

/// `OSError` for a file that cannot be read or written, `CorruptIndexError` for a damaged index,
/// `ValueError` for bad input; the message names the file and what is wrong.
pub fn to_py(e: Error) -> PyErr {
    match e {
        Error::Io { .. } => PyOSError::new_err(e.to_string()),
        Error::Corrupt { .. } | Error::Version { .. } => CorruptIndexError::new_err(e.to_string()),
        Error::Parse { .. } | Error::Input { .. } | Error::Invalid(_) => {
            PyValueError::new_err(e.to_string())
        }
    }
}

/// A `ValueError` with `message`.
pub fn invalid(message: impl Into<String>) -> PyErr {
    PyValueError::new_err(message.into())
}

/// An encoder error as a Python exception: `OSError` for a model that cannot be read,
/// `ValueError` for everything else.
pub fn encoder_to_py(e: bmp_encoder::EncoderError) -> PyErr {
    use bmp_encoder::EncoderError as E;
    match e {
        E::ModelDirNotFound(_) | E::MissingFile { .. } | E::Io { .. } => {
            PyOSError::new_err(e.to_string())
        }
        e => invalid(e.to_string()),
    }
}

/// An evaluation-pipeline error as a Python exception: the index's and the encoder's as
/// [`to_py`] and [`encoder_to_py`] map them, `OSError` for an unreadable file, `ValueError` for
/// everything else; the message keeps its context.
pub fn eval_to_py(e: bmp_eval::Error) -> PyErr {
    let message = e.to_string();
    let mut inner = &e;
    while let bmp_eval::Error::Context { error, .. } = inner {
        inner = error;
    }
    match inner {
        bmp_eval::Error::Io { .. } | bmp_eval::Error::MissingFile { .. } => {
            PyOSError::new_err(message)
        }
        bmp_eval::Error::Index(Error::Io { .. }) => PyOSError::new_err(message),
        bmp_eval::Error::Index(Error::Corrupt { .. } | Error::Version { .. }) => {
            CorruptIndexError::new_err(message)
        }
        bmp_eval::Error::Encoder(
            bmp_encoder::EncoderError::ModelDirNotFound(_)
            | bmp_encoder::EncoderError::MissingFile { .. }
            | bmp_encoder::EncoderError::Io { .. },
        ) => PyOSError::new_err(message),
        _ => invalid(message),
    }
}
