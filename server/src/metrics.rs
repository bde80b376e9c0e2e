//! Prometheus metrics, served at `GET /metrics` in the text exposition format.
//!
//! - `bmp_http_requests_total{route, status}`: answered requests.
//! - `bmp_http_request_duration_seconds{route}`: time from request to response head.
//! - `bmp_http_requests_in_flight`: requests being answered now.
//! - `bmp_search_duration_seconds{algorithm, safe}`: query processing per query (parsing the
//!   vector, the search, naming the hits), without encoding or queueing.
//! - `bmp_encode_duration_seconds` and `bmp_encode_batch_texts`: per model call of the text
//!   encoder.
//! - `bmp_search_stopped_total{answer}`: queries stopped at their time budget, answered with
//!   partial hits (`partial`) or 503 (`unavailable`).
//! - `bmp_index_reloads_total{result}` and `bmp_index_documents`.
//!
//! Label values come from a fixed set (route templates, algorithm names), never from request
//! content, so the number of series stays bounded.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlgorithmLabels {
    algorithm: String,
    safe: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AnswerLabels {
    answer: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 10 µs to about 42 s.
    Histogram::new(exponential_buckets(1e-5, 2.0, 23))
}

/// The server's metrics registry.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    request_seconds: HistogramFamily<RouteLabels>,
    in_flight: Gauge,
    search_seconds: HistogramFamily<AlgorithmLabels>,
    encode_seconds: Histogram,
    encode_batch: Histogram,
    reloads: Family<ResultLabels, Counter>,
    stopped: Family<AnswerLabels, Counter>,
    documents: Gauge<u64, AtomicU64>,
    /// Live documents per index or collection served, summed in `documents`.
    document_counts: std::sync::Mutex<std::collections::HashMap<String, u64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every metric at zero.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("bmp");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        let request_seconds: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_duration_seconds",
            "Time from request to response, by route",
            request_seconds.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "Requests being answered",
            in_flight.clone(),
        );
        let search_seconds: HistogramFamily<AlgorithmLabels> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "search_duration_seconds",
            "Query processing time per query, by algorithm (safe=false: approximate)",
            search_seconds.clone(),
        );
        let encode_seconds = latency_histogram();
        registry.register(
            "encode_duration_seconds",
            "Time per call of the text encoder",
            encode_seconds.clone(),
        );
        let encode_batch = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        registry.register(
            "encode_batch_texts",
            "Texts encoded per call of the text encoder",
            encode_batch.clone(),
        );
        let reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "index_reloads",
            "Index reloads, by result (ok or error)",
            reloads.clone(),
        );
        let stopped = Family::<AnswerLabels, Counter>::default();
        registry.register(
            "search_stopped",
            "Queries stopped at their time budget, by answer (partial or unavailable)",
            stopped.clone(),
        );
        let documents = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "index_documents",
            "Live documents served (summed over the collections)",
            documents.clone(),
        );
        Metrics {
            registry,
            requests,
            request_seconds,
            in_flight,
            search_seconds,
            encode_seconds,
            encode_batch,
            reloads,
            stopped,
            documents,
            document_counts: Default::default(),
        }
    }

    /// Counts a request being answered.
    pub fn request_started(&self) {
        self.in_flight.inc();
    }

    /// Records an answered request (`status` is the HTTP status, or `cancelled`).
    pub fn request_finished(&self, route: &str, status: &str, elapsed: Duration) {
        self.in_flight.dec();
        self.requests
            .get_or_create(&RequestLabels {
                route: route.to_string(),
                status: status.to_string(),
            })
            .inc();
        self.request_seconds
            .get_or_create(&RouteLabels {
                route: route.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Records one query's processing time.
    pub fn record_search(&self, algorithm: &'static str, safe: bool, elapsed: Duration) {
        self.search_seconds
            .get_or_create(&AlgorithmLabels {
                algorithm: algorithm.to_string(),
                safe: safe.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// Records one call of the text encoder.
    pub fn record_encode(&self, texts: usize, elapsed: Duration) {
        self.encode_seconds.observe(elapsed.as_secs_f64());
        self.encode_batch.observe(texts as f64);
    }

    /// Records a query stopped at its time budget, answered with partial hits or 503.
    pub fn record_stopped(&self, partial: bool) {
        self.stopped
            .get_or_create(&AnswerLabels {
                answer: if partial { "partial" } else { "unavailable" }.to_string(),
            })
            .inc();
    }

    /// Records a reload attempt.
    pub fn record_reload(&self, ok: bool) {
        self.reloads
            .get_or_create(&ResultLabels {
                result: if ok { "ok" } else { "error" }.to_string(),
            })
            .inc();
    }

    /// Sets the live document count of the index or collection `name` (`""` for the only one);
    /// the gauge shows the sum over every one served.
    pub fn set_documents(&self, name: &str, documents: u64) {
        let mut counts = self
            .document_counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        counts.insert(name.to_string(), documents);
        self.documents.set(counts.values().sum());
    }

    /// Stops counting the documents of the collection `name` (dropped).
    pub fn forget_documents(&self, name: &str) {
        let mut counts = self
            .document_counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        counts.remove(name);
        self.documents.set(counts.values().sum());
    }

    /// Requests being answered now.
    pub fn in_flight(&self) -> i64 {
        self.in_flight.get()
    }

    /// The metrics in the text exposition format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_recorded_values() {
        let m = Metrics::new();
        m.request_started();
        m.request_finished("/v1/search", "200", Duration::from_micros(300));
        m.request_started();
        assert_eq!(m.in_flight(), 1);
        m.record_search("bmp", true, Duration::from_micros(150));
        m.record_encode(3, Duration::from_millis(2));
        m.record_reload(false);
        m.set_documents("", 42);
        let text = m.render();
        for needle in [
            "bmp_http_requests_total{route=\"/v1/search\",status=\"200\"} 1",
            "bmp_http_requests_in_flight 1",
            "bmp_search_duration_seconds_count{algorithm=\"bmp\",safe=\"true\"} 1",
            "bmp_encode_batch_texts_sum 3",
            "bmp_index_reloads_total{result=\"error\"} 1",
            "bmp_index_documents 42",
            "# EOF",
        ] {
            assert!(text.contains(needle), "{needle:?} missing from\n{text}");
        }
    }
}
