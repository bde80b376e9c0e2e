//! postings
