//! The writer of a collection served with `--writable`.
//!
//! One thread owns the [`CollectionDir`] and commits the writes queued to it, in arrival order.
//! Adds that are queued together are committed as one segment (group commit; for an id in
//! several of them, the last queued wins). Each commit is durable (segment, deletions and
//! manifest fsynced) and the collection as it left it is served before the requests are
//! answered. The thread runs the commits on a one-thread rayon pool, so that writes (document
//! ordering, segment builds, merges) take at most one core from the searches, and it is not a
//! thread of tokio's blocking pool, which the searches use.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use bmp_index::segments::{CollectionDir, DeleteSummary, MergePolicy};
use bmp_index::Collection;
use tokio::sync::oneshot;

use crate::api::DocumentInput;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::state::ServedIndex;

/// What one add request did, once its commit is durable and served.
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

/// Makes a collection served as a commit left it.
pub(crate) struct Publisher {
    pub index: Arc<ArcSwap<ServedIndex>>,
    pub metrics: Arc<Metrics>,
}

impl Publisher {
    fn publish(&self, dir: &CollectionDir) {
        let served = ServedIndex::collection(dir.path().to_path_buf(), dir.snapshot());
        self.metrics
            .set_documents(u32::try_from(served.num_docs()).unwrap_or(u32::MAX));
        self.index.store(Arc::new(served));
    }
}

/// A write waiting for the writer.
pub(crate) enum Job {
    Add {
        docs: Vec<DocumentInput>,
        done: oneshot::Sender<Result<AddOutcome, ApiError>>,
    },
    Delete {
        ids: Vec<String>,
        done: oneshot::Sender<Result<DeleteSummary, ApiError>>,
    },
}

/// The handle of the writer thread; dropping it lets the thread finish its queue and stop.
pub struct Writer {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer thread of `dir`.
    pub(crate) fn start(dir: CollectionDir, publisher: Publisher) -> std::io::Result<Writer> {
        let (jobs, queue) = std::sync::mpsc::channel();
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .map_err(std::io::Error::other)?;
        std::thread::Builder::new()
            .name("bmp-writer".into())
            .spawn(move || run(dir, queue, &publisher, &pool))?;
        Ok(Writer { jobs })
    }

    /// Adds `docs` (each valid, ids unique); answers once they are durable and served.
    pub async fn add(&self, docs: Vec<DocumentInput>) -> Result<AddOutcome, ApiError> {
        let (done, outcome) = oneshot::channel();
        self.send(Job::Add { docs, done })?;
        outcome.await.unwrap_or_else(|_| Err(lost()))
    }

    /// Deletes the live documents `ids` name; answers once durable and served.
    pub async fn delete(&self, ids: Vec<String>) -> Result<DeleteSummary, ApiError> {
        let (done, outcome) = oneshot::channel();
        self.send(Job::Delete { ids, done })?;
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
        e => ApiError::write_failed(e.to_string()),
    }
}

/// The writer thread: takes everything queued, commits it in order (runs of adds as one commit).
fn run(
    mut dir: CollectionDir,
    queue: std::sync::mpsc::Receiver<Job>,
    publisher: &Publisher,
    pool: &rayon::ThreadPool,
) {
    while let Ok(first) = queue.recv() {
        let mut jobs = vec![first];
        jobs.extend(queue.try_iter());
        let mut adds = Vec::new();
        for job in jobs {
            match job {
                Job::Add { docs, done } => adds.push((docs, done)),
                Job::Delete { ids, done } => {
                    if !adds.is_empty() {
                        pool.install(|| {
                            commit_adds(&mut dir, std::mem::take(&mut adds), publisher)
                        });
                    }
                    let result = pool.install(|| dir.delete(ids.iter().map(String::as_str)));
                    publisher.publish(&dir);
                    let _ = done.send(result.map_err(write_error));
                }
            }
        }
        if !adds.is_empty() {
            pool.install(|| commit_adds(&mut dir, adds, publisher));
        }
    }
}

type PendingAdd = (
    Vec<DocumentInput>,
    oneshot::Sender<Result<AddOutcome, ApiError>>,
);

/// Commits `group` as one segment, runs the merge policy, publishes the result and answers each
/// request of the group.
pub(crate) fn commit_adds(dir: &mut CollectionDir, group: Vec<PendingAdd>, publisher: &Publisher) {
    let before = dir.snapshot();
    // The last request writing an id wins; a request's document replaces a live one, or one
    // of an earlier request of the group.
    let mut last: HashMap<&str, (usize, usize)> = HashMap::new();
    let mut replaced = vec![0u64; group.len()];
    for (r, (docs, _)) in group.iter().enumerate() {
        for (d, (id, _)) in docs.iter().enumerate() {
            let live = last.contains_key(id.as_str())
                || before
                    .segments
                    .iter()
                    .any(|s| matches!(s.find_live(id), Ok(Some(_))));
            replaced[r] += u64::from(live);
            last.insert(id, (r, d));
        }
    }
    let mut collection = Collection::new();
    let mut result = Ok(());
    'docs: for (r, (docs, _)) in group.iter().enumerate() {
        for (d, (id, entries)) in docs.iter().enumerate() {
            if last.get(id.as_str()) != Some(&(r, d)) {
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
    // Serve what is on disk now, whatever the outcome (a failed commit changed nothing).
    publisher.publish(dir);
    let (generation, segments) = (dir.manifest().generation, dir.manifest().segments.len());
    for ((docs, done), replaced) in group.into_iter().zip(replaced) {
        let outcome = match &result {
            Ok(()) => Ok(AddOutcome {
                added: docs.len() as u64,
                replaced,
                generation,
                segments,
            }),
            Err(e) => Err(e.clone()),
        };
        let _ = done.send(outcome);
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

    #[test]
    fn a_group_commit_answers_every_request_and_the_last_write_wins() {
        let tmp = tempfile::tempdir().unwrap();
        let mut dir = CollectionDir::open_or_create(tmp.path(), &BuildOptions::default()).unwrap();
        let publisher = Publisher {
            index: Arc::new(ArcSwap::from_pointee(ServedIndex::collection(
                tmp.path().to_path_buf(),
                dir.snapshot(),
            ))),
            metrics: Arc::new(Metrics::new()),
        };
        let mut commit = |groups: Vec<Vec<DocumentInput>>| {
            let (group, outcomes): (Vec<_>, Vec<_>) = groups
                .into_iter()
                .map(|d| {
                    let (tx, rx) = oneshot::channel();
                    ((d, tx), rx)
                })
                .unzip();
            commit_adds(&mut dir, group, &publisher);
            outcomes
                .into_iter()
                .map(|mut rx| rx.try_recv().unwrap().unwrap())
                .collect::<Vec<_>>()
        };
        // Integer weights up to 255 are their own impacts.
        let first = commit(vec![docs(&[("a", 1.0), ("b", 2.0)])]);
        assert_eq!(
            (first[0].added, first[0].replaced, first[0].generation),
            (2, 0, 1)
        );
        // Two requests committed together: "b" replaced by the first, "c" written by both (the
        // second, queued last, wins and counts as a replacement).
        let o = commit(vec![
            docs(&[("b", 3.0), ("c", 4.0)]),
            docs(&[("c", 5.0), ("d", 6.0)]),
        ]);
        assert_eq!((o[0].added, o[0].replaced), (2, 1));
        assert_eq!((o[1].added, o[1].replaced), (2, 1));
        assert_eq!((o[0].generation, o[1].generation), (2, 2));
        let served = publisher.index.load_full();
        assert_eq!(served.snapshot().segments.len(), 2);
        assert_eq!(
            scores(&served),
            [("a", 1), ("b", 3), ("c", 5), ("d", 6)]
                .iter()
                .map(|&(d, s)| (d.to_string(), s))
                .collect::<Vec<_>>()
        );
    }
}
