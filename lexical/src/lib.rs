//! BM25 in a bmp index, and hybrid queries.
//!
//! - [`LexicalAnalyzer`]: words of text as tantivy's `en_stem` analyzer cuts them (simple
//!   tokenizer, tokens over 40 bytes dropped, lower case, Snowball English stemmer), the words
//!   BM25 indexes and queries; a text query over an index's lexical field
//!   ([`bmp_index::LexicalField`]) becomes `bm25:word` terms.
//! - [`Bm25Params`]: BM25's `k1` and `b`, and its formulas.
//! - [`hybrid`]: a learned-sparse query and a BM25 query of the same text fused, either in one
//!   pass (`(1 − λ) · learned / L + λ · bm25 / B`, the exact top k of which every safe processor
//!   returns) or by reciprocal rank over two passes.

pub mod analyzer;
pub mod error;
pub mod hybrid;
pub mod params;

pub use analyzer::{en_stem, LexicalAnalyzer};
pub use error::{Error, Result};
pub use hybrid::{FusedHit, FusedHits, Fusion, HybridQuery, HybridSpec, DEFAULT_LEXICAL_WEIGHT};
pub use params::Bm25Params;
