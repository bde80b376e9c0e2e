//! The sparse text encoder the commands, the server and the Python package load: one model for
//! documents and queries, found from what its path holds, with the document pruning applied to
//! document vectors only.
//!
//! A model is anything that implements [`SparseModel`]: SPLADE ([`SpladeEncoder`]) and a decoder
//! LLM through its LM head ([`LlmSparse`]) do. [`TextEncoder::load`] tells them apart;
//! [`TextEncoder::new`] takes any other.

use std::path::Path;

use crate::llm_embed::{LlmEncoder, Pooling};
use crate::sparse::{prune, Pruning, SparseVector};
use crate::{DeviceKind, EncoderError, Precision, Result, SpladeEncoder, SpladeOptions};

/// A model that turns texts into sparse vectors over its vocabulary.
pub trait SparseModel: Send + Sync {
    /// What the vectors come from, as result tables name it (`splade`, `llm-sparse`).
    fn label(&self) -> &'static str;

    /// The token string of vocabulary id `id` (`None` past the vocabulary).
    fn token(&self, id: u32) -> Option<&str>;

    /// The number of vocabulary ids a vector may use.
    fn vocab_size(&self) -> usize;

    /// The sparse vectors of document texts, in input order (unpruned); `progress(n)` after
    /// every `n` texts.
    fn encode_documents(
        &self,
        texts: &[String],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<SparseVector>>;

    /// The sparse vectors of query texts, in input order.
    fn encode_queries(&self, texts: &[String]) -> Result<Vec<SparseVector>>;

    /// The documents' top-k cut when none is asked for.
    fn default_document_top_k(&self) -> Option<usize> {
        None
    }

    /// Whether the model has dense embeddings too.
    fn has_dense(&self) -> bool {
        false
    }

    /// The sparse vectors and the dense embeddings (pooled as `pooling` says) of document texts
    /// from one pass, for a model that has dense embeddings.
    fn encode_documents_with_dense(
        &self,
        texts: &[String],
        pooling: Pooling,
        progress: &mut dyn FnMut(usize),
    ) -> Result<(Vec<SparseVector>, Vec<Vec<f32>>)> {
        let _ = (texts, pooling, progress);
        Err(no_dense(self.label()))
    }

    /// The dense embeddings of query texts, for a model that has them.
    fn encode_dense_queries(&self, texts: &[String], pooling: Pooling) -> Result<Vec<Vec<f32>>> {
        let _ = (texts, pooling);
        Err(no_dense(self.label()))
    }

    /// The sparse vectors and the dense embeddings of query texts from one pass, for a model
    /// that has dense embeddings.
    fn encode_queries_with_dense(
        &self,
        texts: &[String],
        pooling: Pooling,
    ) -> Result<(Vec<SparseVector>, Vec<Vec<f32>>)> {
        let _ = (texts, pooling);
        Err(no_dense(self.label()))
    }
}

fn no_dense(label: &str) -> EncoderError {
    EncoderError::InvalidOption {
        option: "dense",
        message: format!(
            "dense embeddings need a decoder LLM (a .gguf file or a Llama / Mistral / Qwen2 / Qwen3 directory); \
             a {label} model gives sparse vectors only"
        ),
    }
}

impl SparseModel for SpladeEncoder {
    fn label(&self) -> &'static str {
        "splade"
    }

    fn token(&self, id: u32) -> Option<&str> {
        SpladeEncoder::token(self, id)
    }

    fn vocab_size(&self) -> usize {
        SpladeEncoder::vocab_size(self)
    }

    fn encode_documents(
        &self,
        texts: &[String],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<SparseVector>> {
        self.encode_batch_with_progress(texts, progress)
    }

    fn encode_queries(&self, texts: &[String]) -> Result<Vec<SparseVector>> {
        SpladeEncoder::encode_queries(self, texts)
    }
}

/// The documents' top-k cut of a decoder LLM's sparse vectors when none is given: its LM head
/// gives most of its vocabulary a positive weight.
pub const LLM_DEFAULT_DOC_TOP_K: usize = 256;

/// A decoder LLM as a sparse model: its LM head's vectors, and its pooled dense embeddings.
pub struct LlmSparse {
    llm: LlmEncoder,
    vocabulary: Vec<String>,
    batch_size: usize,
}

impl LlmSparse {
    /// Wraps `llm`, encoding `batch_size` texts per forward pass.
    pub fn new(llm: LlmEncoder, batch_size: usize) -> Self {
        let vocabulary = (0..llm.vocab_size() as u32)
            .map(|id| llm.token(id).unwrap_or_else(|| format!("[unused_id_{id}]")))
            .collect();
        LlmSparse {
            llm,
            vocabulary,
            batch_size: batch_size.max(1),
        }
    }

    /// Sparse vectors, and dense embeddings when `pooling` is given (otherwise none), from one
    /// pass in chunks of a few batches.
    fn vectors(
        &self,
        texts: &[String],
        pooling: Option<Pooling>,
        progress: &mut dyn FnMut(usize),
    ) -> Result<(Vec<SparseVector>, Vec<Vec<f32>>)> {
        let mut sparse = Vec::with_capacity(texts.len());
        let mut dense = Vec::new();
        // Each call sorts its texts by length into batches.
        for chunk in texts.chunks(self.batch_size * 4) {
            let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
            match pooling {
                None => sparse.extend(self.llm.encode_sparse(&refs, self.batch_size)?),
                Some(pooling) => {
                    for (s, d) in
                        self.llm
                            .encode_sparse_and_dense(&refs, pooling, self.batch_size)?
                    {
                        sparse.push(s);
                        dense.push(d);
                    }
                }
            }
            progress(chunk.len());
        }
        Ok((sparse, dense))
    }
}

impl SparseModel for LlmSparse {
    fn label(&self) -> &'static str {
        "llm-sparse"
    }

    fn token(&self, id: u32) -> Option<&str> {
        self.vocabulary.get(id as usize).map(String::as_str)
    }

    fn vocab_size(&self) -> usize {
        self.vocabulary.len()
    }

    fn encode_documents(
        &self,
        texts: &[String],
        progress: &mut dyn FnMut(usize),
    ) -> Result<Vec<SparseVector>> {
        Ok(self.vectors(texts, None, progress)?.0)
    }

    fn encode_queries(&self, texts: &[String]) -> Result<Vec<SparseVector>> {
        Ok(self.vectors(texts, None, &mut |_| {})?.0)
    }

    fn default_document_top_k(&self) -> Option<usize> {
        Some(LLM_DEFAULT_DOC_TOP_K)
    }

    fn has_dense(&self) -> bool {
        true
    }

    fn encode_documents_with_dense(
        &self,
        texts: &[String],
        pooling: Pooling,
        progress: &mut dyn FnMut(usize),
    ) -> Result<(Vec<SparseVector>, Vec<Vec<f32>>)> {
        self.vectors(texts, Some(pooling), progress)
    }

    fn encode_dense_queries(&self, texts: &[String], pooling: Pooling) -> Result<Vec<Vec<f32>>> {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        self.llm.encode_dense(&refs, pooling, self.batch_size)
    }

    fn encode_queries_with_dense(
        &self,
        texts: &[String],
        pooling: Pooling,
    ) -> Result<(Vec<SparseVector>, Vec<Vec<f32>>)> {
        self.vectors(texts, Some(pooling), &mut |_| {})
    }
}

/// How [`TextEncoder::load`] loads and runs a model.
#[derive(Debug, Clone, PartialEq)]
pub struct TextEncoderOptions {
    /// Texts per forward pass.
    pub batch_size: usize,
    /// Truncation length in tokens, special tokens included (`None`: the model's maximum; 512
    /// for a decoder LLM).
    pub max_length: Option<usize>,
    /// Keep only the heaviest terms of each document vector (queries are never pruned); a
    /// decoder LLM defaults to [`LLM_DEFAULT_DOC_TOP_K`].
    pub doc_top_k: Option<usize>,
    /// Drop document terms whose weight is below this floor.
    pub doc_min_weight: Option<f32>,
    /// Where the model runs.
    pub device: DeviceKind,
    /// Precision of weights and activations.
    pub dtype: Precision,
    /// Text put before every query (not documents) before it is encoded, as instruction-tuned
    /// embedders expect (Qwen3-Embedding: `Instruct: <task>\nQuery:`).
    pub query_instruction: Option<String>,
    /// Keep only the first N dimensions of the dense embeddings, L2-normalized again
    /// (Matryoshka truncation, for models trained for it).
    pub dense_dim: Option<usize>,
}

impl Default for TextEncoderOptions {
    fn default() -> Self {
        TextEncoderOptions {
            batch_size: 32,
            max_length: None,
            doc_top_k: None,
            doc_min_weight: None,
            device: DeviceKind::Cpu,
            dtype: Precision::F32,
            query_instruction: None,
            dense_dim: None,
        }
    }
}

impl TextEncoderOptions {
    /// A short description of the options that change document vectors (cache keys, logs).
    pub fn document_key(&self) -> String {
        let mut key = format!(
            "len{}",
            self.max_length.map_or("max".into(), |n| n.to_string())
        );
        if let Some(k) = self.doc_top_k {
            key.push_str(&format!("-top{k}"));
        }
        if let Some(w) = self.doc_min_weight {
            key.push_str(&format!("-min{w}"));
        }
        if self.dtype != Precision::F32 {
            key.push_str(&format!("-{:?}", self.dtype).to_ascii_lowercase());
        }
        key
    }

    /// What, besides [`Self::document_key`], changes the dense document embeddings: `""`, or
    /// `-dimN` with a Matryoshka truncation.
    pub fn dense_key(&self) -> String {
        self.dense_dim
            .map(|d| format!("-dim{d}"))
            .unwrap_or_default()
    }
}

/// The first `dim` values of `embedding`, L2-normalized again (all of it when `dim` is `None`).
fn truncate_embedding(embedding: &mut Vec<f32>, dim: Option<usize>) -> Result<()> {
    let Some(dim) = dim else {
        return Ok(());
    };
    if dim == 0 || dim > embedding.len() {
        return Err(EncoderError::InvalidOption {
            option: "dense_dim",
            message: format!(
                "{dim}: the model's embeddings have {} dimensions",
                embedding.len()
            ),
        });
    }
    embedding.truncate(dim);
    let norm = embedding.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in embedding.iter_mut() {
            *x /= norm;
        }
    }
    Ok(())
}

/// A loaded sparse text encoder: a model, the pruning of its document vectors, and whether
/// documents also get dense embeddings.
pub struct TextEncoder {
    model: Box<dyn SparseModel>,
    document_pruning: Pruning,
    dense: Option<Pooling>,
    query_instruction: Option<String>,
    dense_dim: Option<usize>,
}

impl TextEncoder {
    /// An encoder of `model`, its document vectors pruned as `document_pruning` says.
    pub fn new(model: Box<dyn SparseModel>, document_pruning: Pruning) -> Result<TextEncoder> {
        document_pruning.validate()?;
        Ok(TextEncoder {
            model,
            document_pruning,
            dense: None,
            query_instruction: None,
            dense_dim: None,
        })
    }

    /// Puts `instruction` before every query text before encoding it (see
    /// [`TextEncoderOptions::query_instruction`]).
    pub fn with_query_instruction(mut self, instruction: Option<String>) -> Self {
        self.query_instruction = instruction.filter(|i| !i.is_empty());
        self
    }

    /// Truncates the dense embeddings to their first `dim` dimensions (see
    /// [`TextEncoderOptions::dense_dim`]).
    pub fn with_dense_dim(mut self, dim: Option<usize>) -> Result<Self> {
        if dim == Some(0) {
            return Err(EncoderError::InvalidOption {
                option: "dense_dim",
                message: "0: keep at least one dimension".into(),
            });
        }
        self.dense_dim = dim;
        Ok(self)
    }

    /// The query texts as the model reads them: after the query instruction, if any.
    fn instructed<'a>(&self, texts: &'a [String]) -> std::borrow::Cow<'a, [String]> {
        match &self.query_instruction {
            None => std::borrow::Cow::Borrowed(texts),
            Some(i) => std::borrow::Cow::Owned(texts.iter().map(|t| format!("{i}{t}")).collect()),
        }
    }

    fn truncated(&self, mut embeddings: Vec<Vec<f32>>) -> Result<Vec<Vec<f32>>> {
        for e in &mut embeddings {
            truncate_embedding(e, self.dense_dim)?;
        }
        Ok(embeddings)
    }

    /// Loads the model at `path`: a decoder LLM (a `.gguf` file, or a Llama / Mistral / Qwen2 / Qwen3 directory)
    /// when [`LlmEncoder::recognizes`] it, otherwise a SPLADE directory (Hugging Face layout).
    pub fn load(path: &Path, options: &TextEncoderOptions) -> Result<TextEncoder> {
        let mut document_pruning = Pruning {
            top_k: options.doc_top_k,
            min_weight: options.doc_min_weight,
        };
        document_pruning.validate()?;
        let model: Box<dyn SparseModel> = if LlmEncoder::recognizes(path) {
            let llm = LlmEncoder::load_any(path, options.max_length.unwrap_or(512))?;
            Box::new(LlmSparse::new(llm, options.batch_size))
        } else {
            let splade = SpladeOptions {
                batch_size: options.batch_size,
                max_length: options.max_length,
                pruning: Pruning::NONE,
                device: options.device,
                dtype: options.dtype,
                ..SpladeOptions::default()
            };
            Box::new(SpladeEncoder::load(path, splade)?)
        };
        if document_pruning.top_k.is_none() {
            document_pruning.top_k = model.default_document_top_k();
        }
        TextEncoder::new(model, document_pruning)?
            .with_query_instruction(options.query_instruction.clone())
            .with_dense_dim(options.dense_dim)
    }

    /// What the sparse vectors come from, as result tables name it.
    pub fn label(&self) -> &'static str {
        self.model.label()
    }

    /// Also produce dense document embeddings, pooled as `pooling` says, from the same pass as
    /// the sparse vectors (a model with dense embeddings only).
    pub fn enable_dense(&mut self, pooling: Pooling) -> Result<()> {
        if !self.model.has_dense() {
            return Err(no_dense(self.model.label()));
        }
        self.dense = Some(pooling);
        Ok(())
    }

    /// Dense embeddings of query texts (after [`TextEncoder::enable_dense`]), in input order.
    pub fn encode_dense_queries(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        let pooling = self.dense.ok_or_else(|| EncoderError::InvalidOption {
            option: "dense",
            message: "dense embeddings are not enabled for this model".into(),
        })?;
        self.truncated(
            self.model
                .encode_dense_queries(&self.instructed(texts), pooling)?,
        )
    }

    /// The sparse vectors and, when dense embeddings are enabled, the dense embeddings of query
    /// texts, from one pass of the model (otherwise no embeddings), in input order.
    pub fn encode_queries_with_dense(
        &self,
        texts: &[String],
    ) -> Result<(Vec<SparseVector>, Vec<Vec<f32>>)> {
        let texts = self.instructed(texts);
        match self.dense {
            None => Ok((self.model.encode_queries(&texts)?, Vec::new())),
            Some(pooling) => {
                let (sparse, dense) = self.model.encode_queries_with_dense(&texts, pooling)?;
                Ok((sparse, self.truncated(dense)?))
            }
        }
    }

    /// The token string of vocabulary id `id` (`[UNK]` past the vocabulary).
    pub fn token(&self, id: u32) -> &str {
        self.model.token(id).unwrap_or("[UNK]")
    }

    /// The number of vocabulary ids (the columns of a matrix of vectors).
    pub fn vocab_size(&self) -> usize {
        self.model.vocab_size()
    }

    /// Encodes document texts in input order: the sparse vectors (pruned as asked), and the
    /// dense embeddings when enabled (otherwise none).
    pub fn encode_documents(
        &self,
        texts: &[String],
        progress: &mut dyn FnMut(usize),
    ) -> Result<(Vec<SparseVector>, Vec<Vec<f32>>)> {
        let (mut vectors, dense) = match self.dense {
            None => (self.model.encode_documents(texts, progress)?, Vec::new()),
            Some(pooling) => self
                .model
                .encode_documents_with_dense(texts, pooling, progress)?,
        };
        for vector in &mut vectors {
            prune(vector, &self.document_pruning);
        }
        Ok((vectors, self.truncated(dense)?))
    }

    /// Encodes query texts (never pruned; after the query instruction, if any), in input order.
    pub fn encode_queries(&self, texts: &[String]) -> Result<Vec<SparseVector>> {
        self.model.encode_queries(&self.instructed(texts))
    }

    /// The `(term, weight)` entries of a vector, as the index and the query parser take them.
    pub fn entries(&self, vector: &[(u32, f32)]) -> Vec<(String, f32)> {
        vector
            .iter()
            .map(|&(t, w)| (self.token(t).to_owned(), w))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model of three tokens that weighs each word of a text by its length.
    struct Words;

    impl SparseModel for Words {
        fn label(&self) -> &'static str {
            "words"
        }

        fn token(&self, id: u32) -> Option<&str> {
            ["a", "bb", "ccc"].get(id as usize).copied()
        }

        fn vocab_size(&self) -> usize {
            3
        }

        fn encode_documents(
            &self,
            texts: &[String],
            progress: &mut dyn FnMut(usize),
        ) -> Result<Vec<SparseVector>> {
            let out = self.encode_queries(texts)?;
            progress(texts.len());
            Ok(out)
        }

        fn encode_queries(&self, texts: &[String]) -> Result<Vec<SparseVector>> {
            Ok(texts
                .iter()
                .map(|t| {
                    let mut v: SparseVector = t
                        .split_whitespace()
                        .filter_map(|w| match w {
                            "a" => Some((0, 1.0)),
                            "bb" => Some((1, 2.0)),
                            "ccc" => Some((2, 3.0)),
                            _ => None,
                        })
                        .collect();
                    v.sort_by_key(|e| e.0);
                    v.dedup_by_key(|e| e.0);
                    v
                })
                .collect())
        }
    }

    #[test]
    fn a_new_model_plugs_in_and_only_documents_are_pruned() {
        let pruning = Pruning {
            top_k: Some(1),
            min_weight: None,
        };
        let encoder = TextEncoder::new(Box::new(Words), pruning).unwrap();
        assert_eq!(encoder.label(), "words");
        let texts = vec!["a bb ccc".to_string()];
        let mut seen = 0;
        let (docs, dense) = encoder
            .encode_documents(&texts, &mut |n| seen += n)
            .unwrap();
        assert_eq!(seen, 1);
        assert!(dense.is_empty());
        assert_eq!(docs, vec![vec![(2, 3.0)]]);
        let queries = encoder.encode_queries(&texts).unwrap();
        assert_eq!(queries, vec![vec![(0, 1.0), (1, 2.0), (2, 3.0)]]);
        assert_eq!(
            encoder.entries(&queries[0]),
            vec![("a".into(), 1.0), ("bb".into(), 2.0), ("ccc".into(), 3.0)]
        );
        assert_eq!(encoder.token(9), "[UNK]");
    }

    #[test]
    fn dense_embeddings_are_refused_by_a_model_without_them() {
        let mut encoder = TextEncoder::new(Box::new(Words), Pruning::NONE).unwrap();
        let err = encoder.enable_dense(Pooling::Mean).unwrap_err();
        assert!(err
            .to_string()
            .contains("a words model gives sparse vectors only"));
        assert!(encoder.encode_dense_queries(&[]).is_err());
        let bad = Pruning {
            top_k: Some(0),
            min_weight: None,
        };
        assert!(TextEncoder::new(Box::new(Words), bad).is_err());
    }

    /// [`Words`] with dense embeddings: `[number of words, 3, 4]` per text.
    struct DenseWords;

    impl SparseModel for DenseWords {
        fn label(&self) -> &'static str {
            "dense-words"
        }

        fn token(&self, id: u32) -> Option<&str> {
            Words.token(id)
        }

        fn vocab_size(&self) -> usize {
            3
        }

        fn encode_documents(
            &self,
            texts: &[String],
            progress: &mut dyn FnMut(usize),
        ) -> Result<Vec<SparseVector>> {
            Words.encode_documents(texts, progress)
        }

        fn encode_queries(&self, texts: &[String]) -> Result<Vec<SparseVector>> {
            Words.encode_queries(texts)
        }

        fn has_dense(&self) -> bool {
            true
        }

        fn encode_documents_with_dense(
            &self,
            texts: &[String],
            _pooling: Pooling,
            progress: &mut dyn FnMut(usize),
        ) -> Result<(Vec<SparseVector>, Vec<Vec<f32>>)> {
            let sparse = Words.encode_documents(texts, progress)?;
            Ok((sparse, self.encode_dense_queries(texts, Pooling::Mean)?))
        }

        fn encode_dense_queries(&self, texts: &[String], _: Pooling) -> Result<Vec<Vec<f32>>> {
            Ok(texts
                .iter()
                .map(|t| vec![t.split_whitespace().count() as f32, 3.0, 4.0])
                .collect())
        }

        fn encode_queries_with_dense(
            &self,
            texts: &[String],
            pooling: Pooling,
        ) -> Result<(Vec<SparseVector>, Vec<Vec<f32>>)> {
            Ok((
                Words.encode_queries(texts)?,
                self.encode_dense_queries(texts, pooling)?,
            ))
        }
    }

    #[test]
    fn the_query_instruction_goes_before_queries_only() {
        let encoder = TextEncoder::new(Box::new(DenseWords), Pruning::NONE)
            .unwrap()
            .with_query_instruction(Some("ccc a ".into()));
        let texts = vec!["bb".to_string()];
        // The instruction's words are read with the query's, not with the document's.
        assert_eq!(
            encoder.encode_queries(&texts).unwrap(),
            vec![vec![(0, 1.0), (1, 2.0), (2, 3.0)]]
        );
        let (docs, _) = encoder.encode_documents(&texts, &mut |_| {}).unwrap();
        assert_eq!(docs, vec![vec![(1, 2.0)]]);
        // One pass gives the same sparse vectors as the sparse pass alone, and no embedding
        // while dense is not enabled.
        let (sparse, dense) = encoder.encode_queries_with_dense(&texts).unwrap();
        assert_eq!(sparse, encoder.encode_queries(&texts).unwrap());
        assert!(dense.is_empty());
    }

    #[test]
    fn dense_embeddings_are_cut_to_their_first_dimensions_and_renormalized() {
        let mut encoder = TextEncoder::new(Box::new(DenseWords), Pruning::NONE)
            .unwrap()
            .with_query_instruction(Some("a ".into()))
            .with_dense_dim(Some(2))
            .unwrap();
        encoder.enable_dense(Pooling::Mean).unwrap();
        let texts = vec!["a bb".to_string()];
        // Three words with the instruction: [3, 3, 4] cut to [3, 3], normalized.
        let h = std::f32::consts::FRAC_1_SQRT_2;
        let (sparse, dense) = encoder.encode_queries_with_dense(&texts).unwrap();
        assert_eq!(sparse, vec![vec![(0, 1.0), (1, 2.0)]]);
        assert_eq!(dense.len(), 1);
        assert!(
            (dense[0][0] - h).abs() < 1e-6 && (dense[0][1] - h).abs() < 1e-6,
            "{dense:?}"
        );
        assert_eq!(encoder.encode_dense_queries(&texts).unwrap(), dense);
        // Documents: two words, [2, 3, 4] cut to [2, 3].
        let (_, docs) = encoder.encode_documents(&texts, &mut |_| {}).unwrap();
        let n = (4.0f32 + 9.0).sqrt();
        assert!((docs[0][0] - 2.0 / n).abs() < 1e-6 && (docs[0][1] - 3.0 / n).abs() < 1e-6);
        // More dimensions than the model has, or none, are refused.
        let mut wide = TextEncoder::new(Box::new(DenseWords), Pruning::NONE)
            .unwrap()
            .with_dense_dim(Some(4))
            .unwrap();
        wide.enable_dense(Pooling::Mean).unwrap();
        let e = wide.encode_dense_queries(&texts).unwrap_err();
        assert!(e.to_string().contains("3 dimensions"), "{e}");
        assert!(TextEncoder::new(Box::new(DenseWords), Pruning::NONE)
            .unwrap()
            .with_dense_dim(Some(0))
            .is_err());
        let options = TextEncoderOptions {
            dense_dim: Some(256),
            ..TextEncoderOptions::default()
        };
        assert_eq!(options.dense_key(), "-dim256");
    }

    #[test]
    fn document_keys_name_what_changes_the_vectors() {
        let options = TextEncoderOptions::default();
        assert_eq!(options.document_key(), "lenmax");
        let options = TextEncoderOptions {
            max_length: Some(256),
            doc_top_k: Some(64),
            doc_min_weight: Some(0.5),
            ..TextEncoderOptions::default()
        };
        assert_eq!(options.document_key(), "len256-top64-min0.5");
    }
}
