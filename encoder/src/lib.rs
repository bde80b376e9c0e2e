//! Text encoders that turn text into sparse vectors over a model's vocabulary, on candle.
//!
//! [`SpladeEncoder`] loads a SPLADE checkpoint (a BERT masked-LM in Hugging Face layout:
//! `config.json`, `model.safetensors`, `tokenizer.json`) and encodes documents and queries into
//! [`SparseVector`]s: `(token_id, weight)` pairs sorted by token id, weights
//! `w_j = max_i log(1 + relu(logit_ij))` over the text's tokens. CPU by default; the `cuda` feature
//! adds the GPU path.
//!
//! ```no_run
//! use bmp_encoder::{SpladeEncoder, SpladeOptions};
//! let encoder = SpladeEncoder::load("models/splade-tiny", SpladeOptions::default())?;
//! let vectors = encoder.encode_batch(&["a first document", "and a second one"])?;
//! let vocab = encoder.vocabulary();
//! for (id, weight) in &vectors[0] {
//!     println!("{} {weight}", vocab[*id as usize]);
//! }
//! # Ok::<(), bmp_encoder::EncoderError>(())
//! ```

#![warn(missing_docs)]

mod batching;
mod bert_mlm;
pub mod clustering;
pub mod config;
pub mod dense_index;
pub mod device;
pub mod error;
pub mod gaprune;
pub mod gguf_tokenizer;
pub mod layer_cut;
pub mod llama;
pub mod llm_embed;
pub mod llm_train;
pub mod model_dir;
mod projection;
pub mod sparse;
pub mod splade;
pub mod text;
pub mod text_encoder;
pub mod token_embed;
mod tokenizer;
pub mod train;

pub use clustering::{ClusterSpec, Reduction};
pub use device::{DeviceKind, Precision};
pub use error::{EncoderError, Result};
pub use model_dir::ModelDir;
pub use sparse::{prune, Pruning, SparseVector};
pub use splade::{EncodeStats, SpladeEncoder, SpladeOptions};
pub use text::beir_document_text;
pub use text_encoder::{SparseModel, TextEncoder, TextEncoderOptions};
pub use token_embed::{TokenEncoder, TokenEncoderOptions, TokenVectors};
