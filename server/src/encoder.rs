//! Text queries: the [`QueryEncoder`] a server is given, and the [`Batcher`] that runs it on its
//! own thread, encoding the texts of concurrent requests together.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use crate::error::ApiError;
use crate::metrics::Metrics;

/// A sparse query vector: `(term, weight)` entries, as [`bmp_query::Query::from_entries`] takes.
pub type Entries = Vec<(String, f32)>;

/// Turns query texts, and document texts, into sparse vectors (a SPLADE model, for instance).
pub trait QueryEncoder: Send + Sync + 'static {
    /// The vectors of the query texts `texts`, in order.
    fn encode(&self, texts: &[String]) -> Result<Vec<Entries>, String>;

    /// The vectors of the document texts `texts`, in order, as the index's documents were
    /// encoded (documents may be pruned where queries are not). By default, as queries.
    fn encode_documents(&self, texts: &[String]) -> Result<Vec<Entries>, String> {
        self.encode(texts)
    }

    /// What the encoder is (a model directory, say), for `/v1/stats`.
    fn describe(&self) -> String;
}

type Reply = oneshot::Sender<Result<Vec<Entries>, String>>;

struct Job {
    texts: Vec<String>,
    /// Whether the texts are documents (encoded apart from queries).
    documents: bool,
    reply: Reply,
}

/// Runs a [`QueryEncoder`] on a dedicated thread. Requests queue their texts; the thread takes
/// every queued request up to `max_batch` texts and encodes them in one call, so that concurrent
/// text queries share the model's forward pass. The thread ends when the batcher is dropped.
pub struct Batcher {
    queue: mpsc::UnboundedSender<Job>,
    description: String,
}

impl Batcher {
    /// Starts the encoding thread.
    pub fn start(
        encoder: Arc<dyn QueryEncoder>,
        max_batch: usize,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Batcher> {
        let (queue, jobs) = mpsc::unbounded_channel::<Job>();
        let description = encoder.describe();
        let jobs = Mutex::new(jobs);
        std::thread::Builder::new()
            .name("query-encoder".into())
            .spawn(move || run(&*encoder, &jobs, max_batch.max(1), &metrics))?;
        Ok(Batcher { queue, description })
    }

    /// Encodes the query texts `texts` (in order), batched with other requests' texts.
    pub async fn encode(&self, texts: Vec<String>) -> Result<Vec<Entries>, ApiError> {
        self.submit(texts, false).await
    }

    /// Encodes the document texts `texts` (in order), batched with other requests' documents.
    pub async fn encode_documents(&self, texts: Vec<String>) -> Result<Vec<Entries>, ApiError> {
        self.submit(texts, true).await
    }

    async fn submit(&self, texts: Vec<String>, documents: bool) -> Result<Vec<Entries>, ApiError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Job {
                texts,
                documents,
                reply,
            })
            .map_err(|_| ApiError::internal("the query encoder has stopped"))?;
        answer
            .await
            .map_err(|_| ApiError::internal("the query encoder has stopped"))?
            .map_err(|e| {
                let what = if documents {
                    "the documents"
                } else {
                    "the query"
                };
                ApiError::internal(format!("cannot encode {what}: {e}"))
            })
    }

    /// The encoder's description.
    pub fn describe(&self) -> &str {
        &self.description
    }
}

fn run(
    encoder: &dyn QueryEncoder,
    jobs: &Mutex<mpsc::UnboundedReceiver<Job>>,
    max_batch: usize,
    metrics: &Metrics,
) {
    // A job of the other kind than the batch being gathered waits for the next batch.
    let mut held: Option<Job> = None;
    loop {
        let mut batch = Vec::new();
        {
            let Ok(mut jobs) = jobs.lock() else { return };
            let first = match held.take() {
                Some(job) => job,
                None => match jobs.blocking_recv() {
                    Some(job) => job,
                    None => return,
                },
            };
            let documents = first.documents;
            let mut texts = first.texts.len();
            batch.push(first);
            while texts < max_batch {
                match jobs.try_recv() {
                    Ok(job) if job.documents == documents => {
                        texts += job.texts.len();
                        batch.push(job);
                    }
                    Ok(job) => {
                        held = Some(job);
                        break;
                    }
                    Err(_) => break,
                }
            }
        }
        // Requests whose client gave up (time budget) are not encoded.
        batch.retain(|job| !job.reply.is_closed());
        if batch.is_empty() {
            continue;
        }
        let counts: Vec<usize> = batch.iter().map(|job| job.texts.len()).collect();
        let texts: Vec<String> = batch
            .iter_mut()
            .flat_map(|job| std::mem::take(&mut job.texts))
            .collect();
        let start = Instant::now();
        let documents = batch.first().is_some_and(|job| job.documents);
        let result = catch_unwind(AssertUnwindSafe(|| match documents {
            true => encoder.encode_documents(&texts),
            false => encoder.encode(&texts),
        }))
        .unwrap_or_else(|_| Err("the encoder failed unexpectedly".to_string()));
        metrics.record_encode(texts.len(), start.elapsed());
        reply_all(batch, &counts, result);
    }
}

/// Splits a batch's vectors among the jobs that asked for them (`counts[i]` texts each), in order.
fn reply_all(batch: Vec<Job>, counts: &[usize], result: Result<Vec<Entries>, String>) {
    let total: usize = counts.iter().sum();
    match result {
        Ok(vectors) if vectors.len() == total => {
            let mut vectors = vectors.into_iter();
            for (job, &n) in batch.into_iter().zip(counts) {
                let _ = job.reply.send(Ok(vectors.by_ref().take(n).collect()));
            }
        }
        Ok(vectors) => {
            let e = format!(
                "the encoder returned {} vectors for {total} texts",
                vectors.len()
            );
            for job in batch {
                let _ = job.reply.send(Err(e.clone()));
            }
        }
        Err(e) => {
            for job in batch {
                let _ = job.reply.send(Err(e.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    /// Vectors `{"len": text length}`, after a pause long enough for requests to queue up.
    struct Lengths {
        calls: AtomicUsize,
    }

    impl QueryEncoder for Lengths {
        fn encode(&self, texts: &[String]) -> Result<Vec<Entries>, String> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(50));
            if texts.iter().any(|t| t == "panic") {
                panic!("asked to");
            }
            Ok(texts
                .iter()
                .map(|t| vec![("len".to_string(), t.len() as f32)])
                .collect())
        }

        fn describe(&self) -> String {
            "lengths".into()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_batches_and_get_their_own_answers() {
        let encoder = Arc::new(Lengths {
            calls: AtomicUsize::new(0),
        });
        let batcher =
            Arc::new(Batcher::start(encoder.clone(), 64, Arc::new(Metrics::new())).unwrap());
        let mut tasks = Vec::new();
        for i in 0..20usize {
            let batcher = batcher.clone();
            tasks.push(tokio::spawn(async move {
                let texts: Vec<String> = (0..=i % 3).map(|j| "x".repeat(i + j)).collect();
                let got = batcher.encode(texts.clone()).await.unwrap();
                let want: Vec<Entries> = texts
                    .iter()
                    .map(|t| vec![("len".to_string(), t.len() as f32)])
                    .collect();
                assert_eq!(got, want);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // 20 requests, the first encoded alone while the rest queue: far fewer model calls.
        let calls = encoder.calls.load(Ordering::SeqCst);
        assert!(calls < 10, "{calls} encoder calls for 20 requests");

        // A panicking encoder fails the batch, not the thread.
        let err = batcher.encode(vec!["panic".into()]).await.unwrap_err();
        assert_eq!(err.code, "internal");
        assert_eq!(
            batcher.encode(vec!["ab".into()]).await.unwrap()[0][0].1,
            2.0
        );
        assert_eq!(batcher.describe(), "lengths");
    }
}
