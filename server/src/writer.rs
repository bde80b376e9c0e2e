//! The writer of a collection served with `--writable`.
//!
//! One thread owns the [`CollectionDir`] and takes the writes queued to it, in arrival order.
//! The writes queued together are logged in the collection's write-ahead log as one record with
//! one fsync (group commit) and each request is answered once its writes are durable. They become
//! visible to searches when the writer applies the log (a refresh: the adds as one new segment,
//! then the deletes, then the merge policy) and serves the collection as it left it: when the
//! oldest write has waited the refresh interval, when the pending adds reach the size limit,
//! when a request asks for it (`refresh`), or on `POST /v1/refresh`. Merges run in the
//! background, on a thread of their own ([`merge_loop`]): a merge is planned and committed
//! under the collection's lock and built without it, so that writes are logged, acknowledged
//! and refreshed while it runs. Refreshes and merges each run on a one-thread rayon pool, so
//! that writes (document ordering, segment builds, merges) take at most a core each from the
//! searches, and neither is a thread of tokio's blocking pool, which the searches use.

use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use bmp_index::segments::{CollectionDir, MergePolicy, RefreshPolicy, WalOp};
use tokio::sync::oneshot;

use crate::api::DocumentInput;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::state::ServedIndex;

/// What one write request did, once durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Documents added (adds), or live documents deleted (deletes).
    pub applied: u64,
    /// Adds: of those, the ones whose id was live before. Deletes: ids that named no live
    /// document.
    pub other: u64,
    /// Whether the write is visible to searches already (a refresh ran after it).
    pub visible: bool,
    /// The collection's generation now served.
    pub generation: u64,
    /// Segments now served.
    pub segments: usize,
}

/// What a refresh left served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    /// The collection's generation now served.
    pub generation: u64,
    /// Segments now served.
    pub segments: usize,
    /// Live documents now served.
    pub documents: u64,
}

/// Makes a collection served as the writer left it.
pub(crate) struct Publisher {
    /// The collection's name (`""` for a server's only one), for the metrics.
    pub name: String,
    pub index: Arc<ArcSwap<ServedIndex>>,
    pub metrics: Arc<Metrics>,
}

impl Publisher {
    fn publish(&self, dir: &CollectionDir) -> Served {
        let snapshot = dir.snapshot();
        let out = Served {
            generation: snapshot.generation,
            segments: snapshot.segments.len(),
            documents: snapshot.live_docs(),
        };
        let served = ServedIndex::collection(dir.path().to_path_buf(), snapshot);
        self.metrics.set_documents(&self.name, served.num_docs());
        self.index.store(Arc::new(served));
        out
    }
}

type Reply<T> = oneshot::Sender<Result<T, ApiError>>;

/// A request waiting for the writer.
pub(crate) enum Job {
    /// Adds (or replaces) documents; `refresh` makes them visible before the answer.
    Add {
        docs: Vec<DocumentInput>,
        refresh: bool,
        done: Reply<WriteOutcome>,
    },
    /// Deletes documents by id (each id once).
    Delete {
        ids: Vec<String>,
        refresh: bool,
        done: Reply<WriteOutcome>,
    },
    /// Applies every logged write now.
    Refresh { done: Reply<Served> },
    /// Stops the writer and the merger, leaving what is logged unapplied, and answers once
    /// the collection is closed (its lock released).
    Close { done: Reply<()> },
}

/// The handle of the writer thread; dropping it lets the thread finish its queue, apply what is
/// logged, and stop.
pub struct Writer {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread of `dir`, applying logged writes as `policy` says.
    pub(crate) fn start(
        dir: CollectionDir,
        policy: RefreshPolicy,
        publisher: Publisher,
    ) -> std::io::Result<Writer> {
        let (jobs, queue) = std::sync::mpsc::channel();
        let (kicks, merges) = std::sync::mpsc::channel();
        let one_thread = || {
            rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .map_err(std::io::Error::other)
        };
        let shared = Arc::new(Writable {
            dir: Mutex::new(dir),
            publisher,
        });
        let mut thread = WriterThread {
            shared: shared.clone(),
            policy,
            pool: one_thread()?,
            backoff: Instant::now(),
            merges: Some(kicks),
        };
        let merge_pool = one_thread()?;
        let merger = std::thread::Builder::new()
            .name("bmp-merger".into())
            .spawn(move || merge_loop(&shared, &merges, &merge_pool))?;
        std::thread::Builder::new()
            .name("bmp-writer".into())
            .spawn(move || {
                let closing = thread.run(queue);
                // Without the writer's handle on it, the merger stops after its merge.
                drop(thread);
                let _ = merger.join();
                if let Some(done) = closing {
                    let _ = done.send(Ok(()));
                }
            })?;
        Ok(Writer { jobs })
    }

    /// Adds `docs` (each valid, ids unique); answers once they are durable (and, with
    /// `refresh`, visible).
    pub async fn add(
        &self,
        docs: Vec<DocumentInput>,
        refresh: bool,
    ) -> Result<WriteOutcome, ApiError> {
        let (done, outcome) = oneshot::channel();
        self.send(Job::Add {
            docs,
            refresh,
            done,
        })?;
        outcome.await.unwrap_or_else(|_| Err(lost()))
    }

    /// Deletes the live documents `ids` name; answers once durable (and, with `refresh`,
    /// visible).
    pub async fn delete(&self, ids: Vec<String>, refresh: bool) -> Result<WriteOutcome, ApiError> {
        let (done, outcome) = oneshot::channel();
        self.send(Job::Delete { ids, refresh, done })?;
        outcome.await.unwrap_or_else(|_| Err(lost()))
    }

    /// Makes every write acknowledged so far visible.
    pub async fn refresh(&self) -> Result<Served, ApiError> {
        let (done, outcome) = oneshot::channel();
        self.send(Job::Refresh { done })?;
        outcome.await.unwrap_or_else(|_| Err(lost()))
    }

    /// Stops the writer and its merger without applying what is logged (for a collection
    /// about to be removed); answers once the collection is closed. Writes sent later fail.
    pub async fn close(&self) -> Result<(), ApiError> {
        let (done, outcome) = oneshot::channel();
        self.send(Job::Close { done })?;
        outcome.await.unwrap_or_else(|_| Err(lost()))
    }

    fn send(&self, job: Job) -> Result<(), ApiError> {
        self.jobs.send(job).map_err(|_| lost())
    }
}

fn lost() -> ApiError {
    ApiError::internal("the writer stopped unexpectedly")
}

/// The API error of a failed write.
fn write_error(e: bmp_index::Error) -> ApiError {
    match e {
        bmp_index::Error::Invalid(m) => ApiError::invalid(m),
        e => ApiError::write_failed(crate::error::index_message(&e)),
    }
}

/// The writes of a request as log records.
fn ops_of(job: &Job) -> Vec<WalOp> {
    match job {
        Job::Add { docs, .. } => docs
            .iter()
            .map(|(id, vector)| WalOp::Add {
                id: id.clone(),
                vector: vector.clone(),
            })
            .collect(),
        Job::Delete { ids, .. } => ids
            .iter()
            .map(|id| WalOp::Delete { id: id.clone() })
            .collect(),
        Job::Refresh { .. } | Job::Close { .. } => Vec::new(),
    }
}

/// The collection the writer and the merger share.
pub(crate) struct Writable {
    pub dir: Mutex<CollectionDir>,
    pub publisher: Publisher,
}

impl Writable {
    /// The collection, to write it (a panic while it was held left it as a failed write would:
    /// its files are whole).
    fn lock(&self) -> MutexGuard<'_, CollectionDir> {
        self.dir.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) struct WriterThread {
    pub shared: Arc<Writable>,
    pub policy: RefreshPolicy,
    pub pool: rayon::ThreadPool,
    /// No refresh of the writer's own accord before this (after one failed).
    pub backoff: Instant,
    /// Wakes the merger after each refresh (`None`: no background merges).
    pub merges: Option<Sender<()>>,
}

/// How long the writer waits after a refresh failed before it tries again of its own accord.
const RETRY: Duration = Duration::from_secs(1);

impl WriterThread {
    /// Takes everything queued, logs it as one group, refreshes when due or asked, answers;
    /// waits for the next request at most until the pending writes fall due. When the handle
    /// is dropped, applies what is logged and stops; on [`Job::Close`], stops at once (the jobs
    /// queued with it before it are answered) and returns its reply.
    fn run(&mut self, queue: Receiver<Job>) -> Option<Reply<()>> {
        loop {
            let first = match self.due_in() {
                None => queue.recv().ok(),
                Some(wait) => match queue.recv_timeout(wait) {
                    Ok(job) => Some(job),
                    Err(RecvTimeoutError::Timeout) => {
                        // A failure is reported, and retried after a pause.
                        let _ = self.refresh();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => None,
                },
            };
            let Some(first) = first else {
                if !self.shared.lock().pending().is_empty() {
                    // What fails stays logged: the next writer applies it.
                    let _ = self.refresh();
                }
                return None;
            };
            let mut jobs = vec![first];
            jobs.extend(queue.try_iter());
            let close = jobs.iter().position(|j| matches!(j, Job::Close { .. }));
            if let Some(at) = close {
                // Jobs sent after the close are dropped with the queue: their senders hear so.
                let mut rest = jobs.split_off(at).into_iter();
                self.handle(jobs);
                return match rest.next() {
                    Some(Job::Close { done }) => Some(done),
                    _ => None,
                };
            }
            self.handle(jobs);
        }
    }

    /// Logs the writes of `jobs` as one group, refreshes when due or asked, and answers each.
    pub(crate) fn handle(&mut self, jobs: Vec<Job>) {
        let mut ops = Vec::new();
        let mut spans = Vec::with_capacity(jobs.len());
        for job in &jobs {
            let mine = ops_of(job);
            spans.push(ops.len()..ops.len() + mine.len());
            ops.extend(mine);
        }
        let logged = match ops.is_empty() {
            true => Ok(Vec::new()),
            false => self.shared.lock().log(ops).map_err(write_error),
        };
        let asked = jobs.iter().any(|j| match j {
            Job::Add { refresh, .. } | Job::Delete { refresh, .. } => *refresh,
            Job::Refresh { .. } => true,
            Job::Close { .. } => false,
        });
        let refreshed = match asked || self.due_in() == Some(Duration::ZERO) {
            true => Some(self.refresh()),
            false => None,
        };
        let current = self.shared.lock().snapshot();
        for (job, span) in jobs.into_iter().zip(spans) {
            let outcome = |live: &Vec<bool>, adds: bool| {
                let was: u64 = live[span.clone()].iter().map(|&l| u64::from(l)).sum();
                let n = span.len() as u64;
                WriteOutcome {
                    applied: if adds { n } else { was },
                    other: if adds { was } else { n - was },
                    visible: matches!(refreshed, Some(Ok(_))),
                    generation: current.generation,
                    segments: current.segments.len(),
                }
            };
            let adds = matches!(job, Job::Add { .. });
            match job {
                Job::Add { done, .. } | Job::Delete { done, .. } => {
                    let _ = done.send(
                        logged
                            .as_ref()
                            .map(|l| outcome(l, adds))
                            .map_err(Clone::clone),
                    );
                }
                Job::Refresh { done } => {
                    let _ = done.send(match &refreshed {
                        Some(r) => r.clone(),
                        None => Err(lost()),
                    });
                }
                Job::Close { done } => {
                    let _ = done.send(Err(ApiError::internal("a close is not a write")));
                }
            }
        }
    }

    /// How long until the writer refreshes of its own accord (`None`: nothing pending).
    fn due_in(&self) -> Option<Duration> {
        let wait = self.policy.due_in(self.shared.lock().pending())?;
        Some(wait.max(self.backoff.saturating_duration_since(Instant::now())))
    }

    /// Applies the logged writes, serves the result (whatever the outcome: a failed refresh
    /// keeps its writes logged, and the next one applies them) and wakes the merger.
    fn refresh(&mut self) -> Result<Served, ApiError> {
        let shared = &self.shared;
        let result = self
            .pool
            .install(|| shared.lock().refresh(&mut |_, _, _| {}));
        let dir = shared.lock();
        let served = shared.publisher.publish(&dir);
        if let Err(e) = &result {
            eprintln!(
                "refresh of {} failed, its writes stay logged: {e}",
                dir.path().display()
            );
            self.backoff = Instant::now() + RETRY;
        }
        drop(dir);
        if let Some(merges) = &self.merges {
            let _ = merges.send(());
        }
        result.map(|_| served).map_err(write_error)
    }
}

/// The merger: after each refresh, runs the merges the default policy calls for, one at a
/// time, each planned and committed under the lock and built without it; stops when the writer
/// does.
fn merge_loop(shared: &Writable, kicks: &Receiver<()>, pool: &rayon::ThreadPool) {
    while kicks.recv().is_ok() {
        while kicks.try_recv().is_ok() {}
        loop {
            let plan = shared.lock().plan_merge(&MergePolicy::default());
            let plan = match plan {
                Ok(Some(plan)) => plan,
                Ok(None) => break,
                Err(e) => {
                    eprintln!("cannot plan a merge: {e}");
                    break;
                }
            };
            let built = pool.install(|| plan.build(&mut |_, _, _| {}));
            let mut dir = shared.lock();
            let result = dir.commit_merge(built);
            shared.publisher.publish(&dir);
            if let Err(e) = result {
                eprintln!("merge in {} failed: {e}", dir.path().display());
                break;
            }
        }
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

    fn scores(served: &ServedIndex) -> Vec<(String, u32)> {
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

    fn add(
        d: Vec<DocumentInput>,
        refresh: bool,
    ) -> (Job, oneshot::Receiver<Result<WriteOutcome, ApiError>>) {
        let (done, rx) = oneshot::channel();
        (
            Job::Add {
                docs: d,
                refresh,
                done,
            },
            rx,
        )
    }

    #[test]
    fn a_group_is_logged_at_once_answered_in_order_and_visible_after_a_refresh() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = CollectionDir::open_or_create(tmp.path(), &BuildOptions::default()).unwrap();
        let publisher = Publisher {
            name: String::new(),
            index: Arc::new(ArcSwap::from_pointee(ServedIndex::collection(
                tmp.path().to_path_buf(),
                dir.snapshot(),
            ))),
            metrics: Arc::new(Metrics::new()),
        };
        let index = publisher.index.clone();
        let mut writer = WriterThread {
            shared: Arc::new(Writable {
                dir: Mutex::new(dir),
                publisher,
            }),
            policy: RefreshPolicy {
                interval: None,
                max_pending_postings: u64::MAX,
            },
            pool: rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap(),
            backoff: Instant::now(),
            merges: None,
        };
        // Integer weights up to 255 are their own impacts. Asked to refresh: visible at once.
        let (job, mut rx) = add(docs(&[("a", 1.0), ("b", 2.0)]), true);
        writer.handle(vec![job]);
        let first = rx.try_recv().unwrap().unwrap();
        assert_eq!((first.applied, first.other, first.visible), (2, 0, true));
        assert_eq!(first.generation, 1);

        // Two adds and a delete queued together: one log record, answered in order, not
        // visible until a refresh. "b" is replaced by the first add; "c" is written by both
        // (the second, queued last, wins and counts as a replacement); then "a" is deleted.
        let (j1, mut r1) = add(docs(&[("b", 3.0), ("c", 4.0)]), false);
        let (j2, mut r2) = add(docs(&[("c", 5.0), ("d", 6.0)]), false);
        let (done, mut r3) = oneshot::channel();
        let j3 = Job::Delete {
            ids: vec!["a".into(), "zz".into()],
            refresh: false,
            done,
        };
        writer.handle(vec![j1, j2, j3]);
        let (o1, o2, o3) = (
            r1.try_recv().unwrap().unwrap(),
            r2.try_recv().unwrap().unwrap(),
            r3.try_recv().unwrap().unwrap(),
        );
        assert_eq!((o1.applied, o1.other, o1.visible), (2, 1, false));
        assert_eq!((o2.applied, o2.other, o2.visible), (2, 1, false));
        assert_eq!((o3.applied, o3.other, o3.visible), (1, 1, false));
        assert_eq!(writer.shared.lock().pending().len(), 5);
        assert_eq!(scores(&index.load_full()).len(), 2);

        let (done, mut rx) = oneshot::channel();
        writer.handle(vec![Job::Refresh { done }]);
        let served = rx.try_recv().unwrap().unwrap();
        assert_eq!((served.documents, served.segments), (3, 2));
        assert_eq!(
            scores(&index.load_full()),
            [("b", 3), ("c", 5), ("d", 6)]
                .iter()
                .map(|&(d, s)| (d.to_string(), s))
                .collect::<Vec<_>>()
        );
    }
}
