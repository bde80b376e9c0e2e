//! Shared server state: the served index (atomically swappable), the configuration, the text
//! encoder and the metrics.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use bmp_index::segments::{CollectionDir, Manifest, RefreshPolicy, Snapshot};
use bmp_index::{ExternalIds, Index};
use bmp_query::segments::live_filters;
use bmp_query::DocFilter;
use tokio::sync::Semaphore;

use crate::config::ServerConfig;
use crate::encoder::{Batcher, QueryEncoder};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::rerank::Reranker;
use crate::writer::{Publisher, Writer};

/// What is being served: one index file, or a collection directory as of one generation; with
/// the lookups that filters need (built on first use).
pub struct ServedIndex {
    snapshot: Snapshot,
    /// The collection directory, when serving one.
    collection: Option<PathBuf>,
    /// Per segment: its live documents, when some are deleted.
    live: Vec<Option<DocFilter>>,
    external_ids: OnceLock<Result<ExternalIds, String>>,
}

impl ServedIndex {
    /// Serves `index`.
    pub fn new(index: Index) -> Self {
        ServedIndex {
            snapshot: Snapshot::single(index),
            collection: None,
            live: vec![None],
            external_ids: OnceLock::new(),
        }
    }

    /// Serves the collection directory `dir` as of `snapshot`.
    pub fn collection(dir: PathBuf, snapshot: Snapshot) -> Self {
        let live = live_filters(&snapshot);
        ServedIndex {
            snapshot,
            collection: Some(dir),
            live,
            external_ids: OnceLock::new(),
        }
    }

    /// The index, when serving one file (`None` for a collection).
    pub fn single(&self) -> Option<&Index> {
        match (&self.collection, self.snapshot.segments.first()) {
            (None, Some(s)) => Some(&s.index),
            _ => None,
        }
    }

    /// The segments served (one for an index file).
    pub fn snapshot(&self) -> &Snapshot {
        &self.snapshot
    }

    /// The collection directory, when serving one.
    pub fn collection_dir(&self) -> Option<&Path> {
        self.collection.as_deref()
    }

    /// Per segment: its live documents, when some are deleted.
    pub fn live(&self) -> &[Option<DocFilter>] {
        &self.live
    }

    /// Live documents served.
    pub fn num_docs(&self) -> u64 {
        self.snapshot.live_docs()
    }

    /// The path served: the index file or the collection directory.
    pub fn path(&self) -> PathBuf {
        match (&self.collection, self.snapshot.segments.first()) {
            (Some(dir), _) => dir.clone(),
            (None, Some(s)) => s.index.path().to_path_buf(),
            (None, None) => PathBuf::new(),
        }
    }

    /// The documents named by `ids` as a filter, and how many ids name no document. The first
    /// call sorts the index's external ids (blocking; 4 bytes per document are kept). One index
    /// file only: see [`ServedIndex::resolve_segment_filters`].
    pub fn resolve_filter(&self, ids: &[String]) -> Result<(DocFilter, usize), ApiError> {
        let index = self
            .single()
            .ok_or_else(|| ApiError::internal("a collection takes per-segment filters"))?;
        let lookup = self
            .external_ids
            .get_or_init(|| ExternalIds::build(index).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| ApiError::internal(format!("cannot look documents up by id: {e}")))?;
        let mut docs = Vec::with_capacity(ids.len());
        let mut unknown = 0;
        for id in ids {
            match lookup.find(index, id) {
                Ok(Some(doc)) => docs.push(doc),
                Ok(None) => unknown += 1,
                Err(e) => return Err(ApiError::internal(format!("cannot read the index: {e}"))),
            }
        }
        docs.sort_unstable();
        Ok((docs.into_iter().collect(), unknown))
    }

    /// The live documents named by `ids` as one filter per segment, and how many ids name no
    /// live document.
    pub fn resolve_segment_filters(
        &self,
        ids: &[String],
    ) -> Result<(Vec<Option<DocFilter>>, usize), ApiError> {
        let mut docs: Vec<Vec<u32>> = vec![Vec::new(); self.snapshot.segments.len()];
        let mut unknown = 0;
        for id in ids {
            let mut found = false;
            for (s, segment) in self.snapshot.segments.iter().enumerate() {
                match segment.find_live(id) {
                    Ok(Some(doc)) => {
                        docs[s].push(doc);
                        found = true;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        return Err(ApiError::internal(format!("cannot read the index: {e}")))
                    }
                }
            }
            unknown += usize::from(!found);
        }
        let filters = docs
            .into_iter()
            .map(|mut d| {
                d.sort_unstable();
                Some(d.into_iter().collect())
            })
            .collect();
        Ok((filters, unknown))
    }
}

/// State shared by every request; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    index: Arc<ArcSwap<ServedIndex>>,
    config: ServerConfig,
    permits: Arc<Semaphore>,
    encoder: Option<Batcher>,
    reranker: Option<Arc<Reranker>>,
    metrics: Arc<Metrics>,
    reloading: tokio::sync::Mutex<()>,
    /// The collection's writer, when the server takes writes.
    writer: Option<Writer>,
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
        AppState::serving(ServedIndex::new(index), config, encoder, reranker)
    }

    /// State serving `served` (an index file or a collection) under `config`, with an optional
    /// text encoder and an optional multi-vector reranker (one index file only).
    pub fn serving(
        served: ServedIndex,
        config: ServerConfig,
        encoder: Option<Arc<dyn QueryEncoder>>,
        reranker: Option<Reranker>,
    ) -> std::io::Result<Self> {
        let metrics = Arc::new(Metrics::new());
        metrics.set_documents(clamp_docs(served.num_docs()));
        let encoder = encoder
            .map(|e| Batcher::start(e, config.encoder_batch, metrics.clone()))
            .transpose()?;
        let permits = Arc::new(Semaphore::new(config.blocking_threads.max(1)));
        Ok(AppState {
            inner: Arc::new(Inner {
                index: Arc::new(ArcSwap::from_pointee(served)),
                config,
                permits,
                encoder,
                reranker: reranker.map(Arc::new),
                metrics,
                reloading: tokio::sync::Mutex::new(()),
                writer: None,
            }),
        })
    }

    /// This state taking writes to the collection `dir` holds (it must be the one served), on a
    /// writer thread of its own ([`Writer`]) that makes them visible as `policy` says, before it
    /// is shared. Fails once the state has been cloned, or when the thread cannot start.
    pub fn with_writer(
        mut self,
        dir: CollectionDir,
        policy: RefreshPolicy,
    ) -> std::io::Result<Self> {
        let inner = Arc::get_mut(&mut self.inner)
            .ok_or_else(|| std::io::Error::other("the server state is shared already"))?;
        let publisher = Publisher {
            index: inner.index.clone(),
            metrics: inner.metrics.clone(),
        };
        inner.writer = Some(Writer::start(dir, policy, publisher)?);
        Ok(self)
    }

    /// The collection's writer, when the server takes writes.
    pub fn writer(&self) -> Option<&Writer> {
        self.inner.writer.as_ref()
    }

    /// Opens the index file or collection directory at `path` and serves it under `config`.
    pub fn open(path: impl AsRef<Path>, config: ServerConfig) -> bmp_index::Result<Self> {
        let served = open_served(path.as_ref())?;
        Ok(AppState::serving(served, config, None, None).expect("no encoder thread to start"))
    }

    /// What is served now. A request takes it once and keeps it for its whole life, so a
    /// concurrent [`AppState::reload`] never mixes two indexes within one request.
    pub fn served(&self) -> Arc<ServedIndex> {
        self.inner.index.load_full()
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

    /// Opens the index file or collection directory at `path`, verifies its checksums (of a
    /// collection: the segments not served already), and only then serves it; on any error what
    /// was served stays. Requests already running finish on the old one, which is unmapped when
    /// the last of them ends. This blocks (it reads whole files): from async code use
    /// [`AppState::reload_async`].
    pub fn reload(&self, path: impl AsRef<Path>) -> bmp_index::Result<()> {
        let current = self.served();
        let result = open_served(path.as_ref()).and_then(|served| {
            let known: std::collections::HashSet<&str> = match current.collection_dir() {
                Some(_) => current
                    .snapshot()
                    .segments
                    .iter()
                    .map(|s| s.file.as_str())
                    .collect(),
                None => Default::default(),
            };
            for s in &served.snapshot().segments {
                if !known.contains(s.file.as_str()) {
                    s.index.verify_checksums()?;
                }
            }
            Ok(served)
        });
        self.inner.metrics.record_reload(result.is_ok());
        let served = result?;
        self.inner
            .metrics
            .set_documents(clamp_docs(served.num_docs()));
        self.inner.index.store(Arc::new(served));
        Ok(())
    }

    /// Serves the collection's newest generation, if it is not served already (a cheap read of
    /// its manifest otherwise). Returns whether it changed.
    pub fn refresh(&self) -> bmp_index::Result<bool> {
        let current = self.served();
        let Some(dir) = current.collection_dir() else {
            return Ok(false);
        };
        if Manifest::read(dir)?.generation == current.snapshot().generation {
            return Ok(false);
        }
        self.reload(dir)?;
        Ok(true)
    }

    /// [`AppState::refresh`] on the blocking pool, one reload at a time.
    pub async fn refresh_async(&self) -> Result<bool, ApiError> {
        let _one_at_a_time = self.inner.reloading.lock().await;
        let state = self.clone();
        tokio::task::spawn_blocking(move || state.refresh())
            .await
            .map_err(|_| ApiError::internal("the refresh failed unexpectedly"))?
            .map_err(|e| ApiError::reload_failed(format!("{e}")))
    }

    /// [`AppState::reload`] on the blocking pool, one reload at a time; `None` reopens the
    /// current index's path (a rebuilt file). Returns the path now served.
    pub async fn reload_async(&self, path: Option<PathBuf>) -> Result<PathBuf, ApiError> {
        let _one_at_a_time = self.inner.reloading.lock().await;
        let path = path.unwrap_or_else(|| self.served().path());
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
            .field("index", &self.served().path())
            .field("config", &self.inner.config)
            .field("encoder", &self.encoder().map(Batcher::describe))
            .finish()
    }
}

/// The document count for the metrics gauge.
fn clamp_docs(docs: u64) -> u32 {
    u32::try_from(docs).unwrap_or(u32::MAX)
}

/// Opens what `path` holds: a collection directory or an index file.
fn open_served(path: &Path) -> bmp_index::Result<ServedIndex> {
    if path.is_dir() {
        Ok(ServedIndex::collection(
            path.to_path_buf(),
            Snapshot::open(path)?,
        ))
    } else {
        Ok(ServedIndex::new(Index::open(path)?))
    }
}
