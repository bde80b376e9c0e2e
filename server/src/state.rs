//! Shared server state: the served index (atomically swappable), the configuration, the text
//! encoder and the metrics.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use bmp_index::{ExternalIds, Index};
use bmp_query::DocFilter;
use tokio::sync::Semaphore;

use crate::config::ServerConfig;
use crate::encoder::{Batcher, QueryEncoder};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::rerank::Reranker;

/// An index being served, with the external-id lookup that filters need (built on first use).
pub struct ServedIndex {
    index: Arc<Index>,
    external_ids: OnceLock<Result<ExternalIds, String>>,
}

impl ServedIndex {
    /// Serves `index`.
    pub fn new(index: Index) -> Self {
        ServedIndex {
            index: Arc::new(index),
            external_ids: OnceLock::new(),
        }
    }

    /// The index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The documents named by `ids` as a filter, and how many ids name no document. The first
    /// call sorts the index's external ids (blocking; 4 bytes per document are kept).
    pub fn resolve_filter(&self, ids: &[String]) -> Result<(DocFilter, usize), ApiError> {
        let lookup = self
            .external_ids
            .get_or_init(|| ExternalIds::build(&self.index).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| ApiError::internal(format!("cannot look documents up by id: {e}")))?;
        let mut docs = Vec::with_capacity(ids.len());
        let mut unknown = 0;
        for id in ids {
            match lookup.find(&self.index, id) {
                Ok(Some(doc)) => docs.push(doc),
                Ok(None) => unknown += 1,
                Err(e) => return Err(ApiError::internal(format!("cannot read the index: {e}"))),
            }
        }
        docs.sort_unstable();
        Ok((docs.into_iter().collect(), unknown))
    }
}

/// State shared by every request; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    index: ArcSwap<ServedIndex>,
    config: ServerConfig,
    permits: Arc<Semaphore>,
    encoder: Option<Batcher>,
    reranker: Option<Arc<Reranker>>,
    metrics: Arc<Metrics>,
    reloading: tokio::sync::Mutex<()>,
}

impl AppState {
    /// State serving `index` under `config`, for vector queries only.
    pub fn new(index: Index, config: ServerConfig) -> Self {
        AppState::with_encoder(index, config, None).expect("no encoder thread to start")
    }

    /// State serving `index` under `config`; with an encoder, text queries are accepted too and
    /// encoded on a dedicated thread (see [`Batcher`]).
    pub fn with_encoder(
        index: Index,
        config: ServerConfig,
        encoder: Option<Arc<dyn QueryEncoder>>,
    ) -> std::io::Result<Self> {
        AppState::with_stages(index, config, encoder, None)
    }

    /// State serving `index` under `config`, with an optional text encoder and an optional
    /// multi-vector reranker (which needs the encoder: it reranks text queries).
    pub fn with_stages(
        index: Index,
        config: ServerConfig,
        encoder: Option<Arc<dyn QueryEncoder>>,
        reranker: Option<Reranker>,
    ) -> std::io::Result<Self> {
        let metrics = Arc::new(Metrics::new());
        metrics.set_documents(index.num_docs());
        let encoder = encoder
            .map(|e| Batcher::start(e, config.encoder_batch, metrics.clone()))
            .transpose()?;
        let permits = Arc::new(Semaphore::new(config.blocking_threads.max(1)));
        Ok(AppState {
            inner: Arc::new(Inner {
                index: ArcSwap::from_pointee(ServedIndex::new(index)),
                config,
                permits,
                encoder,
                reranker: reranker.map(Arc::new),
                metrics,
                reloading: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Opens the index at `path` and serves it under `config`.
    pub fn open(path: impl AsRef<Path>, config: ServerConfig) -> bmp_index::Result<Self> {
        Ok(AppState::new(Index::open(path)?, config))
    }

    /// The index being served now. A request takes it once and keeps it for its whole life, so a
    /// concurrent [`AppState::reload`] never mixes two indexes within one request.
    pub fn served(&self) -> Arc<ServedIndex> {
        self.inner.index.load_full()
    }

    /// The index being served now (see [`AppState::served`]).
    pub fn index(&self) -> Arc<Index> {
        self.inner.index.load().index.clone()
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The text encoder, if the server takes text queries.
    pub fn encoder(&self) -> Option<&Batcher> {
        self.inner.encoder.as_ref()
    }

    /// The multi-vector reranker, if the server has one.
    pub fn reranker(&self) -> Option<&Arc<Reranker>> {
        self.inner.reranker.as_ref()
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The semaphore bounding concurrent query jobs (`blocking_threads` permits).
    pub(crate) fn permits(&self) -> Arc<Semaphore> {
        self.inner.permits.clone()
    }

    /// Opens the index at `path`, verifies its checksums, and only then makes it the served index;
    /// on any error the current index stays. Requests already running finish on the old index,
    /// which is unmapped when the last of them ends. This blocks (it reads the whole file): from
    /// async code use [`AppState::reload_async`].
    pub fn reload(&self, path: impl AsRef<Path>) -> bmp_index::Result<()> {
        let result = Index::open(path).and_then(|index| {
            index.verify_checksums()?;
            Ok(index)
        });
        self.inner.metrics.record_reload(result.is_ok());
        let index = result?;
        self.inner.metrics.set_documents(index.num_docs());
        self.inner.index.store(Arc::new(ServedIndex::new(index)));
        Ok(())
    }

    /// [`AppState::reload`] on the blocking pool, one reload at a time; `None` reopens the
    /// current index's path (a rebuilt file). Returns the path now served.
    pub async fn reload_async(&self, path: Option<PathBuf>) -> Result<PathBuf, ApiError> {
        let _one_at_a_time = self.inner.reloading.lock().await;
        let path = path.unwrap_or_else(|| self.index().path().to_path_buf());
        let state = self.clone();
        let target = path.clone();
        tokio::task::spawn_blocking(move || state.reload(&target))
            .await
            .map_err(|_| ApiError::internal("the reload failed unexpectedly"))?
            .map_err(|e| ApiError::reload_failed(format!("{e}")))?;
        Ok(path)
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("index", &self.index().path())
            .field("config", &self.inner.config)
            .field("encoder", &self.encoder().map(Batcher::describe))
            .finish()
    }
}
