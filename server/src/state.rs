//! Shared server state: what is served (one index or collection, atomically swappable, or
//! several named collections), the configuration, the text encoder and the metrics.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock, PoisonError};

use arc_swap::ArcSwap;
use bmp_index::build::BuildOptions;
use bmp_index::segments::{CollectionDir, Manifest, Recovery, RefreshPolicy, Snapshot, MANIFEST};
use bmp_index::{ExternalIds, Index};
use bmp_query::segments::live_filters;
use bmp_query::DocFilter;
use tokio::sync::Semaphore;

use crate::config::ServerConfig;
use crate::encoder::{Batcher, QueryEncoder};
use crate::error::{index_message, ApiError};
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
            .get_or_init(|| ExternalIds::build(index).map_err(|e| index_message(&e)))
            .as_ref()
            .map_err(|e| ApiError::internal(format!("cannot look documents up by id: {e}")))?;
        let (docs, unknown) = lookup.find_all(index, ids).map_err(|e| {
            ApiError::internal(format!("cannot read the index: {}", index_message(&e)))
        })?;
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
                        return Err(ApiError::internal(format!(
                            "cannot read the index: {}",
                            index_message(&e)
                        )))
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

/// What one set of routes searches and writes: an index file or a collection directory (as of
/// the generation served now), with its writer when it takes writes.
pub struct Target {
    /// The collection's name, when it is one of a server's several collections.
    name: Option<String>,
    index: Arc<ArcSwap<ServedIndex>>,
    metrics: Arc<Metrics>,
    reloading: tokio::sync::Mutex<()>,
    /// The collection's writer, when the server takes writes.
    writer: Option<Writer>,
}

impl Target {
    fn new(name: Option<String>, served: ServedIndex, metrics: Arc<Metrics>) -> Self {
        metrics.set_documents(name.as_deref().unwrap_or(""), served.num_docs());
        Target {
            name,
            index: Arc::new(ArcSwap::from_pointee(served)),
            metrics,
            reloading: tokio::sync::Mutex::new(()),
            writer: None,
        }
    }

    /// Starts the writer of `dir` (the collection served), applying writes as `policy` says.
    fn start_writer(&mut self, dir: CollectionDir, policy: RefreshPolicy) -> std::io::Result<()> {
        let publisher = Publisher {
            name: self.name.clone().unwrap_or_default(),
            index: self.index.clone(),
            metrics: self.metrics.clone(),
        };
        self.writer = Some(Writer::start(dir, policy, publisher)?);
        Ok(())
    }

    /// The collection's name, when it is one of a server's several collections.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// What is served now. A request takes it once and keeps it for its whole life, so a
    /// concurrent reload never mixes two generations within one request.
    pub fn served(&self) -> Arc<ServedIndex> {
        self.index.load_full()
    }

    /// The collection's writer, when the server takes writes.
    pub fn writer(&self) -> Option<&Writer> {
        self.writer.as_ref()
    }

    /// Opens the index file or collection directory at `path`, verifies its checksums (of a
    /// collection: the segments not served already), and only then serves it; on any error what
    /// was served stays. Requests already running finish on the old one, which is unmapped when
    /// the last of them ends. This blocks (it reads whole files): from async code use
    /// [`Target::reload_async`].
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
        self.metrics.record_reload(result.is_ok());
        let served = result?;
        self.metrics
            .set_documents(self.name.as_deref().unwrap_or(""), served.num_docs());
        self.index.store(Arc::new(served));
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

    /// [`Target::refresh`] on the blocking pool, one reload at a time.
    pub async fn refresh_async(self: &Arc<Self>) -> Result<bool, ApiError> {
        let _one_at_a_time = self.reloading.lock().await;
        let target = self.clone();
        tokio::task::spawn_blocking(move || target.refresh())
            .await
            .map_err(|_| ApiError::internal("the refresh failed unexpectedly"))?
            .map_err(|e| ApiError::reload_failed(index_message(&e)))
    }

    /// [`Target::reload`] on the blocking pool, one reload at a time; `None` reopens the
    /// current path (a rebuilt file). Returns the path now served.
    pub async fn reload_async(
        self: &Arc<Self>,
        path: Option<PathBuf>,
    ) -> Result<PathBuf, ApiError> {
        let _one_at_a_time = self.reloading.lock().await;
        let path = path.unwrap_or_else(|| self.served().path());
        let target = self.clone();
        let to = path.clone();
        tokio::task::spawn_blocking(move || target.reload(&to))
            .await
            .map_err(|_| ApiError::internal("the reload failed unexpectedly"))?
            .map_err(|e| ApiError::reload_failed(format!("{e}")))?;
        Ok(path)
    }
}

/// Whether `name` may name a collection: 1 to 64 ASCII letters, digits, `-` and `_`, not
/// starting with `-` (so that it is one plain directory name).
pub fn valid_collection_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The collections a server serves from one directory, each in a subdirectory named after it.
pub struct Collections {
    root: PathBuf,
    /// With writes: how each collection's writer makes them visible.
    writes: Option<RefreshPolicy>,
    /// The collections served, by name.
    served: std::sync::RwLock<BTreeMap<String, Arc<Target>>>,
    /// Creations and drops, one at a time.
    changing: tokio::sync::Mutex<()>,
}

impl Collections {
    /// The directory the collections live in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the collections take writes (and can be created and dropped).
    pub fn writable(&self) -> bool {
        self.writes.is_some()
    }

    /// The collection `name`, if served.
    pub fn get(&self, name: &str) -> Option<Arc<Target>> {
        self.read().get(name).cloned()
    }

    /// Every collection served, by name.
    pub fn all(&self) -> Vec<Arc<Target>> {
        self.read().values().cloned().collect()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, Arc<Target>>> {
        self.served.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, Arc<Target>>> {
        self.served.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens the collection in `root/name` (for writing, with `writes`) as a [`Target`];
    /// returns what its write-ahead log held.
    fn open_one(
        root: &Path,
        name: &str,
        writes: Option<RefreshPolicy>,
        metrics: &Arc<Metrics>,
        create: Option<&BuildOptions>,
    ) -> bmp_index::Result<(Target, Recovery)> {
        let path = root.join(name);
        match writes {
            Some(policy) => {
                let dir = match create {
                    Some(options) => CollectionDir::open_or_create(&path, options)?,
                    None => CollectionDir::open(&path)?,
                };
                let recovery = dir.recovery();
                let served = ServedIndex::collection(path, dir.snapshot());
                let mut target = Target::new(Some(name.to_string()), served, metrics.clone());
                target
                    .start_writer(dir, policy)
                    .map_err(|e| bmp_index::Error::io(root.join(name), e))?;
                Ok((target, recovery))
            }
            None => {
                let served = ServedIndex::collection(path.clone(), Snapshot::open(&path)?);
                let target = Target::new(Some(name.to_string()), served, metrics.clone());
                Ok((target, Recovery::default()))
            }
        }
    }

    /// Creates the empty collection `name` with `options` and serves it (409 when it exists).
    pub async fn create(
        &self,
        name: &str,
        options: BuildOptions,
        metrics: &Arc<Metrics>,
    ) -> Result<Arc<Target>, ApiError> {
        let policy = self.writes.ok_or_else(ApiError::read_only)?;
        let _one_at_a_time = self.changing.lock().await;
        let path = self.root.join(name);
        if self.get(name).is_some() || path.exists() {
            return Err(ApiError::collection_exists(name));
        }
        let (root, owned, metrics) = (self.root.clone(), name.to_string(), metrics.clone());
        let opened = tokio::task::spawn_blocking(move || {
            let opened = Self::open_one(&root, &owned, Some(policy), &metrics, Some(&options));
            if opened.is_err() {
                // Nothing half-made stays behind.
                let _ = std::fs::remove_dir_all(root.join(&owned));
            }
            opened
        })
        .await
        .map_err(|_| ApiError::internal("creating the collection failed unexpectedly"))?
        .map_err(|e| ApiError::write_failed(format!("cannot create collection {name}: {e}")))?;
        let target = Arc::new(opened.0);
        self.write().insert(name.to_string(), target.clone());
        Ok(target)
    }

    /// Stops serving the collection `name` and removes its directory, once its writer has
    /// stopped; searches already running finish on the files they hold. Returns the documents
    /// it held.
    pub async fn drop_collection(&self, name: &str) -> Result<u64, ApiError> {
        if self.writes.is_none() {
            return Err(ApiError::read_only());
        }
        let _one_at_a_time = self.changing.lock().await;
        let target = self
            .write()
            .remove(name)
            .ok_or_else(|| ApiError::no_collection(name))?;
        let documents = target.served().num_docs();
        if let Some(writer) = target.writer() {
            writer.close().await?;
        }
        target.metrics.forget_documents(name);
        let path = self.root.join(name);
        tokio::task::spawn_blocking(move || std::fs::remove_dir_all(path))
            .await
            .map_err(|_| ApiError::internal("dropping the collection failed unexpectedly"))?
            .map_err(|e| ApiError::write_failed(format!("cannot remove collection {name}: {e}")))?;
        Ok(documents)
    }
}

/// State shared by every request; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    /// What `/v1/search` and the other unnamed routes serve (none with several collections).
    default: Option<Arc<Target>>,
    /// The collections of `/v1/collections/{name}/...`, when the server has several.
    collections: Option<Collections>,
    config: ServerConfig,
    permits: Arc<Semaphore>,
    encoder: Option<Batcher>,
    reranker: Option<Arc<Reranker>>,
    metrics: Arc<Metrics>,
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
        let target = Target::new(None, served, metrics.clone());
        AppState::assemble(Some(target), None, metrics, config, encoder, reranker)
    }

    /// State serving every collection in the subdirectories of `root` (hidden ones and those
    /// that are no collection are passed over) at `/v1/collections/{name}/...`; with `writes`,
    /// each takes writes on a writer of its own and collections can be created and dropped.
    /// Returns, per collection opened for writing, what its write-ahead log held.
    pub fn serving_collections(
        root: &Path,
        writes: Option<RefreshPolicy>,
        config: ServerConfig,
        encoder: Option<Arc<dyn QueryEncoder>>,
    ) -> bmp_index::Result<(Self, Vec<(String, Recovery)>)> {
        let metrics = Arc::new(Metrics::new());
        let mut served = BTreeMap::new();
        let mut recoveries = Vec::new();
        let entries = std::fs::read_dir(root).map_err(|e| bmp_index::Error::io(root, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| bmp_index::Error::io(root, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !entry.path().join(MANIFEST).is_file() || !valid_collection_name(&name) {
                continue;
            }
            let (target, recovery) = Collections::open_one(root, &name, writes, &metrics, None)?;
            recoveries.push((name.clone(), recovery));
            served.insert(name, Arc::new(target));
        }
        let collections = Collections {
            root: root.to_path_buf(),
            writes,
            served: std::sync::RwLock::new(served),
            changing: tokio::sync::Mutex::new(()),
        };
        let state = AppState::assemble(None, Some(collections), metrics, config, encoder, None)
            .map_err(|e| bmp_index::Error::io(root, e))?;
        Ok((state, recoveries))
    }

    fn assemble(
        default: Option<Target>,
        collections: Option<Collections>,
        metrics: Arc<Metrics>,
        config: ServerConfig,
        encoder: Option<Arc<dyn QueryEncoder>>,
        reranker: Option<Reranker>,
    ) -> std::io::Result<Self> {
        let encoder = encoder
            .map(|e| Batcher::start(e, config.encoder_batch, metrics.clone()))
            .transpose()?;
        let permits = Arc::new(Semaphore::new(config.blocking_threads.max(1)));
        Ok(AppState {
            inner: Arc::new(Inner {
                default: default.map(Arc::new),
                collections,
                config,
                permits,
                encoder,
                reranker: reranker.map(Arc::new),
                metrics,
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
        let target = Arc::get_mut(&mut self.inner)
            .and_then(|inner| inner.default.as_mut())
            .and_then(Arc::get_mut)
            .ok_or_else(|| std::io::Error::other("the server state is shared already"))?;
        target.start_writer(dir, policy)?;
        Ok(self)
    }

    /// What the unnamed routes (`/v1/search`, ...) serve, or, given a name, the collection of
    /// `/v1/collections/{name}/...` (404 when the server has none of that name).
    pub fn target(&self, name: Option<&str>) -> Result<Arc<Target>, ApiError> {
        match (name, &self.inner.default, &self.inner.collections) {
            (None, Some(target), _) => Ok(target.clone()),
            (None, None, _) => Err(ApiError::name_a_collection()),
            (Some(name), _, Some(collections)) => collections
                .get(name)
                .ok_or_else(|| ApiError::no_collection(name)),
            (Some(name), _, None) => Err(ApiError::no_collection(name)),
        }
    }

    /// Every index or collection served: the default one, or each of the collections.
    pub fn targets(&self) -> Vec<Arc<Target>> {
        match (&self.inner.default, &self.inner.collections) {
            (Some(target), _) => vec![target.clone()],
            (None, Some(collections)) => collections.all(),
            (None, None) => Vec::new(),
        }
    }

    /// The collections of `/v1/collections/{name}/...`, when the server has several.
    pub fn collections(&self) -> Option<&Collections> {
        self.inner.collections.as_ref()
    }

    /// The metrics, shared.
    pub(crate) fn metrics_arc(&self) -> &Arc<Metrics> {
        &self.inner.metrics
    }

    /// Opens the index file or collection directory at `path` and serves it under `config`.
    pub fn open(path: impl AsRef<Path>, config: ServerConfig) -> bmp_index::Result<Self> {
        let served = open_served(path.as_ref())?;
        Ok(AppState::serving(served, config, None, None).expect("no encoder thread to start"))
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
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field(
                "serving",
                &self
                    .targets()
                    .iter()
                    .map(|t| t.served().path())
                    .collect::<Vec<_>>(),
            )
            .field("config", &self.inner.config)
            .field("encoder", &self.encoder().map(Batcher::describe))
            .finish()
    }
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
