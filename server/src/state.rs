//! Shared server state: the served index (atomically swappable), the configuration, the text
//! encoder and the metrics.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use std::collections::HashMap;

use bmp_index::segments::{CollectionDir, Manifest, MergePolicy, Snapshot};
use bmp_index::{Collection, ExternalIds, Index};
use bmp_query::segments::live_filters;
use bmp_query::DocFilter;
use tokio::sync::Semaphore;

use crate::api::DocumentInput;
use crate::config::ServerConfig;
use crate::encoder::{Batcher, QueryEncoder};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::rerank::Reranker;

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

    /// The index, when serving one file.
    ///
    /// # Panics
    /// When serving a collection: use [`ServedIndex::snapshot`].
    pub fn index(&self) -> &Index {
        self.single().expect("serving one index file")
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
        let index = self.index();
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
    index: ArcSwap<ServedIndex>,
    config: ServerConfig,
    permits: Arc<Semaphore>,
    encoder: Option<Batcher>,
    reranker: Option<Arc<Reranker>>,
    metrics: Arc<Metrics>,
    reloading: tokio::sync::Mutex<()>,
    /// The collection's writer, when the server takes writes.
    writer: Option<std::sync::Mutex<CollectionDir>>,
    /// Adds waiting for the next group commit.
    pending_adds: std::sync::Mutex<Vec<PendingAdd>>,
}

/// One request's documents waiting for a group commit, and where its outcome goes.
struct PendingAdd {
    docs: Vec<DocumentInput>,
    done: std::sync::mpsc::Sender<Result<AddOutcome, ApiError>>,
}

/// What one add request did, once its group commit is durable and served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddOutcome {
    /// Documents of the request added.
    pub added: u64,
    /// Of those, the ones whose id was live before (or came earlier in the same commit).
    pub replaced: u64,
    /// The collection's generation now served.
    pub generation: u64,
    /// Segments now.
    pub segments: usize,
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
                index: ArcSwap::from_pointee(served),
                config,
                permits,
                encoder,
                reranker: reranker.map(Arc::new),
                metrics,
                reloading: tokio::sync::Mutex::new(()),
                writer: None,
                pending_adds: std::sync::Mutex::new(Vec::new()),
            }),
        })
    }

    /// This state taking writes to the collection `dir` holds (it must be the one served), before
    /// it is shared. Fails (returning `dir`) once the state has been cloned.
    pub fn with_writer(mut self, dir: CollectionDir) -> Result<Self, Box<CollectionDir>> {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => {
                inner.writer = Some(std::sync::Mutex::new(dir));
                Ok(self)
            }
            None => Err(Box::new(dir)),
        }
    }

    /// Whether the server takes writes.
    pub fn writable(&self) -> bool {
        self.inner.writer.is_some()
    }

    /// Runs `write` on the collection (one write at a time, blocking), then serves the collection
    /// as the write left it. The write is durable when this returns.
    pub fn write<T>(
        &self,
        write: impl FnOnce(&mut CollectionDir) -> bmp_index::Result<T>,
    ) -> Result<T, ApiError> {
        let writer = self.inner.writer.as_ref().ok_or_else(ApiError::read_only)?;
        let mut dir = writer
            .lock()
            .map_err(|_| ApiError::internal("an earlier write failed unexpectedly"))?;
        let result = write(&mut dir);
        // Serve what is on disk now, whatever the outcome (a failed write changed nothing).
        self.serve_written(&dir);
        result.map_err(write_error)
    }

    /// Serves the collection as `dir` has it now.
    fn serve_written(&self, dir: &CollectionDir) {
        let served = ServedIndex::collection(dir.path().to_path_buf(), dir.snapshot());
        self.inner
            .metrics
            .set_documents(clamp_docs(served.num_docs()));
        self.inner.index.store(Arc::new(served));
    }

    /// Adds `docs` (valid, ids unique) with group commit (blocking): the request queues its
    /// documents, and whoever takes the writer next commits everything queued as one segment
    /// (for an id in several requests, the last one queued wins), runs the merge policy, serves
    /// the result and answers every request of the group. Returns once this request's documents
    /// are durable and served.
    pub fn add_documents(&self, docs: Vec<DocumentInput>) -> Result<AddOutcome, ApiError> {
        let writer = self.inner.writer.as_ref().ok_or_else(ApiError::read_only)?;
        let poisoned = || ApiError::internal("an earlier write failed unexpectedly");
        let (done, outcome) = std::sync::mpsc::channel();
        self.inner
            .pending_adds
            .lock()
            .map_err(|_| poisoned())?
            .push(PendingAdd { docs, done });
        {
            let mut dir = writer.lock().map_err(|_| poisoned())?;
            let group =
                std::mem::take(&mut *self.inner.pending_adds.lock().map_err(|_| poisoned())?);
            if !group.is_empty() {
                self.commit_adds(&mut dir, group);
            }
        }
        outcome
            .recv()
            .unwrap_or_else(|_| Err(ApiError::internal("the write was lost unexpectedly")))
    }

    /// Commits `group` as one segment and answers each of its requests.
    fn commit_adds(&self, dir: &mut CollectionDir, group: Vec<PendingAdd>) {
        let before = dir.snapshot();
        let mut seen: HashMap<&str, (usize, usize)> = HashMap::new();
        let mut replaced = vec![0u64; group.len()];
        for (r, p) in group.iter().enumerate() {
            for (d, (id, _)) in p.docs.iter().enumerate() {
                let live = seen.contains_key(id.as_str())
                    || before
                        .segments
                        .iter()
                        .any(|s| matches!(s.find_live(id), Ok(Some(_))));
                replaced[r] += u64::from(live);
                seen.insert(id, (r, d));
            }
        }
        let mut collection = Collection::new();
        let mut result = Ok(());
        'docs: for (r, p) in group.iter().enumerate() {
            for (d, (id, entries)) in p.docs.iter().enumerate() {
                if seen.get(id.as_str()) != Some(&(r, d)) {
                    continue;
                }
                let e: Vec<(u32, f32)> = entries
                    .iter()
                    .map(|(t, w)| (collection.intern_term(t), *w))
                    .collect();
                if let Err(m) = collection.add_document(id, &e) {
                    result = Err(bmp_index::Error::Invalid(m));
                    break 'docs;
                }
            }
        }
        let result = result
            .and_then(|()| {
                dir.add(&collection, &mut |_, _, _| {})?;
                dir.merge_by_policy(&MergePolicy::default(), &mut |_, _, _| {})?;
                Ok(())
            })
            .map_err(write_error);
        self.serve_written(dir);
        let (generation, segments) = (dir.manifest().generation, dir.manifest().segments.len());
        for (p, replaced) in group.iter().zip(replaced) {
            let outcome = match &result {
                Ok(()) => Ok(AddOutcome {
                    added: p.docs.len() as u64,
                    replaced,
                    generation,
                    segments,
                }),
                Err(e) => Err(e.clone()),
            };
            let _ = p.done.send(outcome);
        }
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

/// The API error of a failed write.
fn write_error(e: bmp_index::Error) -> ApiError {
    match e {
        bmp_index::Error::Invalid(m) => ApiError::invalid(m),
        e => ApiError::write_failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bmp_index::build::BuildOptions;

    fn docs(items: &[(&str, f32)]) -> Vec<DocumentInput> {
        items
            .iter()
            .map(|&(id, w)| (id.to_string(), vec![("x".to_string(), w)]))
            .collect()
    }

    fn scores(state: &AppState) -> Vec<(String, u32)> {
        let served = state.served();
        let mut out = Vec::new();
        for s in &served.snapshot().segments {
            let x = s.index.term_id("x").unwrap().unwrap();
            s.index
                .postings(x)
                .unwrap()
                .for_each(|d, i| {
                    if !s.deleted.contains(d) {
                        out.push((s.index.doc_id(d).unwrap().to_string(), u32::from(i)));
                    }
                })
                .unwrap();
        }
        out.sort();
        out
    }

    #[test]
    fn a_group_commit_answers_every_request_and_the_last_write_wins() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CollectionDir::open_or_create(tmp.path(), &BuildOptions::default()).unwrap();
        let served = ServedIndex::collection(tmp.path().to_path_buf(), dir.snapshot());
        let state = AppState::serving(served, ServerConfig::default(), None, None)
            .unwrap()
            .with_writer(dir)
            .unwrap();
        // Integer weights up to 255 are their own impacts.
        let first = state
            .add_documents(docs(&[("a", 1.0), ("b", 2.0)]))
            .unwrap();
        assert_eq!((first.added, first.replaced, first.generation), (2, 0, 1));
        // Two requests queued together, committed as one segment: "b" replaced by the first,
        // "c" written by both (the second, queued last, wins and counts as a replacement).
        let (tx1, rx1) = std::sync::mpsc::channel();
        let (tx2, rx2) = std::sync::mpsc::channel();
        let group = vec![
            PendingAdd {
                docs: docs(&[("b", 3.0), ("c", 4.0)]),
                done: tx1,
            },
            PendingAdd {
                docs: docs(&[("c", 5.0), ("d", 6.0)]),
                done: tx2,
            },
        ];
        {
            let writer = state.inner.writer.as_ref().unwrap();
            let mut dir = writer.lock().unwrap();
            state.commit_adds(&mut dir, group);
        }
        let (o1, o2) = (rx1.recv().unwrap().unwrap(), rx2.recv().unwrap().unwrap());
        assert_eq!((o1.added, o1.replaced), (2, 1));
        assert_eq!((o2.added, o2.replaced), (2, 1));
        // One commit for both.
        assert_eq!((o1.generation, o2.generation), (2, 2));
        assert_eq!(state.served().snapshot().segments.len(), 2);
        assert_eq!(
            scores(&state),
            [("a", 1), ("b", 3), ("c", 5), ("d", 6)]
                .iter()
                .map(|&(d, s)| (d.to_string(), s))
                .collect::<Vec<_>>()
        );
    }
}
