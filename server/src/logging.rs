//! Request logs: one span per request and one event when it is answered, through `tracing`.
//!
//! Each request gets an id (the client's `x-request-id` if it sent one, else one made here),
//! echoed in the response's `x-request-id` header and carried by its log lines with the method,
//! the route template (`/v1/collections/{collection}/search`, never the raw path), the status
//! and the latency. Headers (API keys among them) and bodies (query texts) are never logged.
//! The binary chooses where the events go and at which level (`RUST_LOG`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::http::{HeaderName, Request, Response};
use tower_http::request_id::{MakeRequestId, RequestId};
use tracing::Span;

/// The header carrying a request's id, both ways.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Request ids: this process's start time and a counter (`18c4f2a1b3-42`), unique per server.
#[derive(Clone)]
pub struct RequestIds {
    prefix: String,
    next: std::sync::Arc<AtomicU64>,
}

impl Default for RequestIds {
    fn default() -> Self {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        RequestIds {
            prefix: format!("{started:x}"),
            next: std::sync::Arc::new(AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n}", self.prefix)
            .parse()
            .ok()
            .map(RequestId::new)
    }
}

/// The span of one request: its id, method and route template.
pub fn request_span<B>(request: &Request<B>) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str());
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!("request", id, method = %request.method(), route)
}

/// Logs an answered request: its status and latency (warnings for 5xx answers).
pub fn log_response<B>(response: &Response<B>, latency: Duration, _: &Span) {
    let status = response.status().as_u16();
    let micros = latency.as_micros() as u64;
    if status >= 500 {
        tracing::warn!(status, latency_us = micros, "answered");
    } else {
        tracing::info!(status, latency_us = micros, "answered");
    }
}
