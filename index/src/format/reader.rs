//! reader
pub struct Index;
