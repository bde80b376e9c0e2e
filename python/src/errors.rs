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
