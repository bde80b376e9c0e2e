//! The optional multi-vector second stage: a store of document vectors beside the served index
//! and a model that turns query texts into query vectors, reduced the way the store's documents
//! were.

use std::sync::Arc;

use bmp_index::multivec::MultiVecStore;
use bmp_index::Index;
use bmp_query::chamfer::{rerank, ChamferScorer, RerankedHit};
use bmp_query::Hit;

use crate::error::ApiError;

/// Turns query texts into multi-vector query representations (the root binary wraps a token
/// encoder and the store's query-side reduction).
pub trait QueryVectorizer: Send + Sync + 'static {
    /// The query vectors of each text, `dim` floats each, row after row.
    fn vectors(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String>;

    /// What the model is, for `/v1/stats`.
    fn describe(&self) -> String;
}

/// A store and the model for its queries.
pub struct Reranker {
    store: MultiVecStore,
    vectorizer: Arc<dyn QueryVectorizer>,
}

impl std::fmt::Debug for Reranker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reranker")
            .field("store", &self.store.path())
            .field("model", &self.vectorizer.describe())
            .finish()
    }
}

impl Reranker {
    /// Pairs `store` with the model of its queries.
    pub fn new(store: MultiVecStore, vectorizer: Arc<dyn QueryVectorizer>) -> Self {
        Self { store, vectorizer }
    }

    /// The query vectors of `texts` (blocking: it runs the model).
    pub fn query_vectors(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, ApiError> {
        let vectors = self
            .vectorizer
            .vectors(texts)
            .map_err(|e| ApiError::internal(format!("query embedding failed: {e}")))?;
        if vectors.len() != texts.len() {
            return Err(ApiError::internal("the token model lost a query"));
        }
        Ok(vectors)
    }

    /// Reorders the first `depth` of `hits` by Chamfer similarity with `query`. Refused when
    /// the served index is not the one the store was built for (after a reload, say).
    pub fn rerank(
        &self,
        index: &Index,
        query: &[f32],
        hits: &[Hit],
        depth: usize,
    ) -> Result<Vec<RerankedHit>, ApiError> {
        if self.store.check_matches(index).is_err() {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                "multivec_stale",
                format!(
                    "the multi-vector store {} was built for another index than the one served \
                     ({}); restart the server with a store built for it",
                    self.store.path().display(),
                    index.path().display()
                ),
            ));
        }
        let mut scorer = ChamferScorer::new();
        Ok(rerank(&mut scorer, &self.store, query, hits, depth))
    }

    /// The store's reduction name and the model, for `/v1/stats`.
    pub fn describe(&self) -> String {
        format!(
            "{} ({}, {} vectors) with {}",
            self.store.path().display(),
            self.store.name(),
            self.store.num_vectors(),
            self.vectorizer.describe()
        )
    }
}
