//! The bmp index: sparse vectors, quantization, input readers (JSONL, CIFF, Anserini TSV), CIFF
//! export, and the single-file, memory-mapped block-max index format.
//!
//! Build an index from a [`Collection`] with [`build::build_index`], open it with [`Index::open`];
//! a collection that takes adds and deletes is a directory of such indexes ([`segments`]).

#[cfg(not(target_endian = "little"))]
compile_error!("the bmp index format is little-endian and is read in place: a little-endian target is required");

pub mod atomic;
pub mod build;
pub mod check;
pub mod collection;
pub mod docids;
pub mod error;
pub mod export;
pub mod format;
pub mod multivec;
pub mod postings;
pub mod quantize;
pub mod readers;
pub mod reorder;
pub mod segments;
pub mod synth;

pub use collection::Collection;
pub use docids::ExternalIds;
pub use error::{Error, Result};
pub use format::reader::Index;
pub use format::{LexicalField, LEXICAL_PREFIX};
pub use quantize::{quantize_query_weights, Quantizer};
pub use readers::SparseRecord;
