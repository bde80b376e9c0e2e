//! The native module of the `bmp` Python package (`bmp._bmp`): indexes built from Python data or
//! files, opened, checked and searched, with the GIL released while the engine works.
//!
//! Errors become Python exceptions: `OSError` for files, `ValueError` for bad input, and
//! `bmp.CorruptIndexError` for a damaged or foreign index; no panic crosses into Python (PyO3
//! turns one into `pyo3_runtime.PanicException`, which no code path here is meant to reach).

mod collection;
mod convert;
mod encoder;
mod errors;
mod evaluate;
mod index;
mod rerank;

use pyo3::prelude::*;

/// The allocator `bmp-index` uses, for the engine's own allocations (Python's are its own).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The native part of the `bmp` package.
#[pymodule]
fn _bmp(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<index::Index>()?;
    m.add_class::<collection::Collection>()?;
    m.add_class::<encoder::TextEncoder>()?;
    m.add_class::<rerank::MultiVectorReranker>()?;
    m.add_function(wrap_pyfunction!(evaluate::evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate::evaluate_dataset, m)?)?;
    m.add_function(wrap_pyfunction!(rerank::build_multivector_stores, m)?)?;
    m.add(
        "CorruptIndexError",
        m.py().get_type::<errors::CorruptIndexError>(),
    )?;
    m.add("ALGORITHMS", index::algorithm_names())?;
    Ok(())
}
