//! Shared server state: the current index (atomically swappable) and the configuration.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bmp_index::Index;
use tokio::sync::Semaphore;

use crate::config::ServerConfig;

/// State shared by every request; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    index: ArcSwap<Index>,
    config: ServerConfig,
    permits: Arc<Semaphore>,
}

impl AppState {
    /// State serving `index` under `config`.
    pub fn new(index: Index, config: ServerConfig) -> Self {
        let permits = Arc::new(Semaphore::new(config.blocking_threads.max(1)));
        AppState {
            inner: Arc::new(Inner {
                index: ArcSwap::from_pointee(index),
                config,
                permits,
            }),
        }
    }

    /// Opens the index at `path` and serves it under `config`.
    pub fn open(path: impl AsRef<Path>, config: ServerConfig) -> bmp_index::Result<Self> {
        Ok(AppState::new(Index::open(path)?, config))
    }

    /// The index being served now. A request takes it once and keeps it for its whole life, so a
    /// concurrent [`AppState::reload`] never mixes two indexes within one request.
    pub fn index(&self) -> Arc<Index> {
        self.inner.index.load_full()
    }

    /// The configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// The semaphore bounding concurrent query jobs (`blocking_threads` permits).
    pub(crate) fn permits(&self) -> Arc<Semaphore> {
        self.inner.permits.clone()
    }

    /// Opens the index at `path`, verifies its checksums, and only then makes it the served index;
    /// on any error the current index stays. Requests already running finish on the old index,
    /// which is unmapped when the last of them ends. This blocks (it reads the whole file): from
    /// async code call it through `tokio::task::spawn_blocking`.
    pub fn reload(&self, path: impl AsRef<Path>) -> bmp_index::Result<()> {
        let index = Index::open(path)?;
        index.verify_checksums()?;
        self.inner.index.store(Arc::new(index));
        Ok(())
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("index", &self.index().path())
            .field("config", &self.inner.config)
            .finish()
    }
}
