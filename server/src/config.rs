//! Server limits and tuning knobs.

use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use crate::auth::ApiKeys;

/// Limits applied to every request, and the size of the pools that run queries and encode text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Largest accepted request body in bytes; a larger one is answered 413.
    pub max_body_bytes: usize,
    /// Largest accepted `k`.
    pub max_k: usize,
    /// Most entries accepted in one query's `vector`.
    pub max_query_terms: usize,
    /// Longest accepted text `query`, in bytes.
    pub max_text_bytes: usize,
    /// Most queries accepted in one batch request.
    pub max_batch: usize,
    /// Longest a request may wait for and run its work (encoding and search), from its arrival;
    /// its searches stop there, and the request is answered 503 with code
    /// `time_budget_exceeded` (or with partial hits, for queries that ask for them).
    pub time_budget: Duration,
    /// Most query jobs run at once (each on a blocking thread); further requests wait their turn.
    pub blocking_threads: usize,
    /// Most query texts the encoder runs through the model together: text queries that arrive
    /// while the encoder is busy are encoded in one batch of up to this many. 1 turns batching
    /// off.
    pub encoder_batch: usize,
    /// The API keys requests must give (see [`crate::auth`]); `None`: every route but the
    /// admin routes is open, and those are not served. The admin routes (reloads, creating and
    /// dropping collections) are served only when some key has the admin scope.
    pub keys: Option<ApiKeys>,
    /// The directory a reload may open files in (at any depth); `None`: a reload may only
    /// reopen what is served.
    pub data_dir: Option<PathBuf>,
    /// With keys: the most requests a second each key may make (bursts of as many); past it,
    /// 429 with `Retry-After`.
    pub key_rate: Option<NonZeroU32>,
    /// With keys: the most requests each key may have in flight at once; past it, 429.
    pub key_concurrency: Option<usize>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body_bytes: 4 << 20,
            max_k: 1000,
            max_query_terms: 4096,
            max_text_bytes: 16 << 10,
            max_batch: 256,
            time_budget: Duration::from_secs(10),
            blocking_threads: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(4),
            encoder_batch: 16,
            keys: None,
            data_dir: None,
            key_rate: None,
            key_concurrency: None,
        }
    }
}

impl ServerConfig {
    /// A multi-threaded tokio runtime whose blocking pool holds `blocking_threads` threads, for
    /// running [`crate::serve`].
    pub fn build_runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        tokio::runtime::Builder::new_multi_thread()
            .max_blocking_threads(self.blocking_threads.max(1))
            .enable_all()
            .build()
    }
}
