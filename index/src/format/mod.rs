//! The on-disk index format.
pub mod reader;
