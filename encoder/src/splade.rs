//! SPLADE: sparse vectors from a BERT masked-LM.
//!
//! `w_j = max over the real tokens i of log(1 + relu(logit_ij))`, with the raw weights kept (no
//! normalisation), so documents and queries are compared by dot product.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::batching::length_sorted_batches;
use crate::bert_mlm::{bert_mlm_var_builder, BertMlm, StageTimes};
use crate::config::read_bert_config;
use crate::device::{open_device, DeviceKind, Precision};
use crate::error::{EncoderError, Result};
use crate::model_dir::ModelDir;
use crate::sparse::{splade_from_pooled_logits, Pruning, SparseVector};
use crate::tokenizer::TextTokenizer;

/// How a [`SpladeEncoder`] is loaded and run.
#[derive(Debug, Clone, PartialEq)]
pub struct SpladeOptions {
    /// Texts per forward pass (default 32).
    pub batch_size: usize,
    /// Truncation length in tokens, special tokens included. `None` uses the model's
    /// `max_position_embeddings`; a larger value is refused.
    pub max_length: Option<usize>,
    /// Pruning applied to every output vector (default: none).
    pub pruning: Pruning,
    /// Where the model runs (default: CPU).
    pub device: DeviceKind,
    /// Weight and activation precision (default f32; f16/bf16 need CUDA).
    pub dtype: Precision,
    /// How the vocabulary projection runs. `None` (the default): a fused projection + max-pool
    /// kernel on the CPU in f32 (no logits tensor is ever materialised), candle's matmul over
    /// blocks of about 256 MB of logits on a GPU. `Some(n)`: candle's matmul over blocks of `n`
    /// tokens (`[n, vocab]` logits at a time) on any device. Only speed and memory depend on
    /// it, never the output.
    pub projection_chunk_tokens: Option<usize>,
}

impl Default for SpladeOptions {
    fn default() -> Self {
        Self {
            batch_size: 32,
            max_length: None,
            pruning: Pruning::NONE,
            device: DeviceKind::Cpu,
            dtype: Precision::F32,
            projection_chunk_tokens: None,
        }
    }
}

/// Counters and stage timings of encoding calls, summed over the calls that received it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct EncodeStats {
    /// Texts encoded.
    pub texts: usize,
    /// Real (non-padding) tokens, special tokens included.
    pub tokens: usize,
    /// Token slots the transformer ran over, padding included (`sum of batch × longest`).
    pub padded_tokens: usize,
    /// Forward passes run.
    pub batches: usize,
    /// Time in the embeddings and transformer layers.
    pub encoder_time: Duration,
    /// Time in the MLM head: transform and vocabulary projection (the matmul).
    pub projection_time: Duration,
    /// Time in max-pooling over tokens, bias, copy to the host.
    pub pooling_time: Duration,
    /// Time turning pooled logits into sparse vectors (activation, pruning).
    pub sparsify_time: Duration,
}

impl EncodeStats {
    /// Floating-point operations of the vocabulary projection: `2 · tokens · hidden · vocab`.
    pub fn projection_flops(&self, hidden_size: usize, vocab_size: usize) -> f64 {
        2.0 * self.tokens as f64 * hidden_size as f64 * vocab_size as f64
    }

    /// Adds another set of counters into this one.
    pub fn add(&mut self, other: &EncodeStats) {
        self.texts += other.texts;
        self.tokens += other.tokens;
        self.padded_tokens += other.padded_tokens;
        self.batches += other.batches;
        self.encoder_time += other.encoder_time;
        self.projection_time += other.projection_time;
        self.pooling_time += other.pooling_time;
        self.sparsify_time += other.sparsify_time;
    }
}

/// A SPLADE encoder: a BertForMaskedLM checkpoint plus its tokenizer.
pub struct SpladeEncoder {
    model: BertMlm,
    tokenizer: TextTokenizer,
    vocabulary: Vec<String>,
    options: SpladeOptions,
    hidden_size: usize,
}

impl std::fmt::Debug for SpladeEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpladeEncoder")
            .field("vocab_size", &self.vocab_size())
            .field("hidden_size", &self.hidden_size)
            .field("max_length", &self.max_length())
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl SpladeEncoder {
    /// Loads a model directory in Hugging Face layout (`config.json`, `model.safetensors`,
    /// `tokenizer.json`). Nothing is downloaded.
    pub fn load(dir: impl AsRef<Path>, options: SpladeOptions) -> Result<Self> {
        let files = ModelDir::open(dir)?;
        if options.batch_size == 0 {
            return Err(EncoderError::InvalidOption {
                option: "batch_size",
                message: "must be at least 1".into(),
            });
        }
        options.pruning.validate()?;
        let (device, dtype) = open_device(options.device, options.dtype)?;

        let config = read_bert_config(&files.config)?;
        let max_positions = config.max_position_embeddings;
        let max_length = match options.max_length {
            None => max_positions,
            Some(n) if n <= max_positions => n,
            Some(n) => {
                return Err(EncoderError::InvalidOption {
                    option: "max_length",
                    message: format!(
                        "{n} exceeds the model's max_position_embeddings {max_positions} \
                         (from {})",
                        files.config.display()
                    ),
                })
            }
        };
        let tokenizer = TextTokenizer::load(&files.tokenizer, max_length)?;

        if options.projection_chunk_tokens == Some(0) {
            return Err(EncoderError::InvalidOption {
                option: "projection_chunk_tokens",
                message: "must be at least 1".into(),
            });
        }
        let vb = bert_mlm_var_builder(&files.weights, dtype, &device)?;
        let model = BertMlm::load(vb, &config, &files.weights, options.projection_chunk_tokens)?;
        let vocabulary = tokenizer.vocabulary(model.vocab_size());

        let options = SpladeOptions {
            max_length: Some(max_length),
            ..options
        };
        Ok(Self {
            model,
            tokenizer,
            vocabulary,
            options,
            hidden_size: config.hidden_size,
        })
    }

    /// The options in effect, with `max_length` resolved.
    pub fn options(&self) -> &SpladeOptions {
        &self.options
    }

    /// The truncation length in tokens, special tokens included.
    pub fn max_length(&self) -> usize {
        self.tokenizer.max_length()
    }

    /// The vocabulary size (token ids are `0..vocab_size`).
    pub fn vocab_size(&self) -> usize {
        self.model.vocab_size()
    }

    /// The model's hidden size.
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// The token string of every id (index = token id), for writing `{"term": weight}` output.
    pub fn vocabulary(&self) -> Vec<String> {
        self.vocabulary.clone()
    }

    /// The token string of one id, if it is in the vocabulary.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.vocabulary.get(id as usize).map(String::as_str)
    }

    /// Tokenizes texts (special tokens added, truncated at [`Self::max_length`]), in input order.
    pub fn tokenize<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<u32>>> {
        let texts: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        self.tokenizer.tokenize(&texts)
    }

    /// Encodes one text.
    pub fn encode(&self, text: &str) -> Result<SparseVector> {
        let mut out = self.encode_batch(&[text])?;
        out.pop()
            .ok_or_else(|| EncoderError::InvalidInput("no output for the text".into()))
    }

    /// Encodes texts (documents or queries); the result is in input order. The texts are sorted
    /// by length and run in batches of `batch_size`, each padded to its longest text.
    pub fn encode_batch<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<SparseVector>> {
        self.encode_batch_with_progress(texts, &mut |_| {})
    }

    /// Like [`Self::encode_batch`], calling `progress(n)` after each forward pass with the number
    /// of texts it finished; drive a progress bar with it. Long inputs are best fed in chunks of
    /// a few thousand texts (memory stays bounded, sorting still removes most padding).
    pub fn encode_batch_with_progress<S: AsRef<str>>(
        &self,
        texts: &[S],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<SparseVector>> {
        let ids = self.tokenize(texts)?;
        self.encode_token_ids(&ids, progress, &mut EncodeStats::default())
    }

    /// Encodes one query. Queries go through the same model as documents.
    pub fn encode_query(&self, query: &str) -> Result<SparseVector> {
        self.encode(query)
    }

    /// Encodes queries, in input order. Queries go through the same model as documents.
    pub fn encode_queries<S: AsRef<str>>(&self, queries: &[S]) -> Result<Vec<SparseVector>> {
        self.encode_batch(queries)
    }

    /// Encodes already tokenized inputs (from [`Self::tokenize`]), in input order, adding counts
    /// and stage timings to `stats`. An empty sequence gives an empty vector. A sequence longer
    /// than [`Self::max_length`] or holding an id outside the vocabulary is an error.
    pub fn encode_token_ids(
        &self,
        inputs: &[Vec<u32>],
        progress: &mut dyn FnMut(usize),
        stats: &mut EncodeStats,
    ) -> Result<Vec<SparseVector>> {
        let max_length = self.max_length();
        let vocab = self.vocab_size();
        for (i, seq) in inputs.iter().enumerate() {
            if seq.len() > max_length {
                return Err(EncoderError::InvalidInput(format!(
                    "input {i} has {} tokens, more than max_length {max_length}",
                    seq.len()
                )));
            }
            if let Some(&bad) = seq.iter().find(|&&id| id as usize >= vocab) {
                return Err(EncoderError::InvalidInput(format!(
                    "input {i} holds token id {bad}, outside the vocabulary of {vocab}"
                )));
            }
        }

        let lengths: Vec<usize> = inputs.iter().map(Vec::len).collect();
        let mut out: Vec<SparseVector> = vec![SparseVector::new(); inputs.len()];
        let empty = lengths.iter().filter(|&&n| n == 0).count();
        if empty > 0 {
            stats.texts += empty;
            progress(empty);
        }
        let mut times = StageTimes::default();
        for batch in length_sorted_batches(&lengths, self.options.batch_size) {
            let seqs: Vec<&[u32]> = batch.iter().map(|&i| inputs[i].as_slice()).collect();
            let pooled = self.model.pooled_logits(&seqs, &mut times)?;

            let start = Instant::now();
            for (&i, row) in batch.iter().zip(pooled.chunks_exact(vocab)) {
                out[i] = splade_from_pooled_logits(row, &self.options.pruning);
            }
            stats.sparsify_time += start.elapsed();

            let longest = seqs.iter().map(|s| s.len()).max().unwrap_or(0);
            stats.texts += batch.len();
            stats.tokens += seqs.iter().map(|s| s.len()).sum::<usize>();
            stats.padded_tokens += longest * batch.len();
            stats.batches += 1;
            progress(batch.len());
        }
        stats.encoder_time += times.encoder;
        stats.projection_time += times.projection;
        stats.pooling_time += times.pooling;
        Ok(out)
    }

    /// The `(token string, weight)` pairs of a vector, for `{"term": weight}` output. Ids outside
    /// the vocabulary are skipped.
    pub fn term_weights<'a>(
        &'a self,
        vector: &'a [(u32, f32)],
    ) -> impl Iterator<Item = (&'a str, f32)> + 'a {
        vector
            .iter()
            .filter_map(|&(id, w)| self.token(id).map(|t| (t, w)))
    }
}
