//! HTTP search API over a bmp index.
//!
//! Build an [`AppState`] from an index and a [`ServerConfig`], then either mount [`router`] in
//! your own axum app or run [`serve`] (or [`serve_tls`]) on a bound listener. Endpoints (JSON):
//!
//! - `POST /v1/search`: `{"vector": {"term": weight}}` or `{"query": "text"}` (with an encoder),
//!   plus `"k"?: 10, "algorithm"?: "bmp"` and the algorithm's parameters (`"alpha"?: f, "beta"?: f`
//!   for BMP, `"mu"?: f, "eta"?: f` for superblock pruning, `"sp"`; whatever
//!   [`bmp_query::ALGORITHMS`] lists), `"filter"?: ["doc id", ...]`, `"rerank"?: depth` (a text
//!   query on a server with a multi-vector store: the top `depth` reordered by Chamfer score)
//!   → `{"hits": [{"id", "score", "rank", "rerank_score"?}], "took_us", "algorithm", "k",
//!   "unknown_terms"}`.
//! - `POST /v1/search/batch`: `{"queries": [{..., "id"?}]}` → `{"results": [...]}`.
//! - `GET /v1/health`, `GET /v1/stats`.
//! - With several collections ([`AppState::serving_collections`]): the routes above under
//!   `/v1/collections/{name}/` (`search`, `search/batch`, `documents`, `documents/delete`,
//!   `documents/{id}`, `refresh`), `GET /v1/collections`, and `GET` / `PUT` / `DELETE
//!   /v1/collections/{name}` (stats, create, drop).
//! - `POST /v1/admin/reload` (with an admin key only): swap in a rebuilt index atomically.
//!
//! With API keys ([`ServerConfig::keys`], see [`auth`]) every route but `GET /v1/health` needs
//! `Authorization: Bearer <key>` of a scope that covers it (401 without, 403 for too small a
//! scope).
//! - `GET /metrics` (Prometheus), `GET /openapi.json` (OpenAPI 3.0, see [`openapi`]).
//!
//! Errors are `{"error": {"code", "message"}}` with a 4xx or 5xx status (see [`ApiError`]).

pub mod api;
pub mod auth;
pub mod config;
pub mod encoder;
pub mod error;
pub mod handlers;
pub mod limits;
pub mod logging;
pub mod metrics;
pub mod openapi;
pub mod rerank;
pub mod searchers;
pub mod state;
mod writer;

use std::future::Future;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

pub use auth::{ApiKeys, Scope};
pub use config::ServerConfig;
pub use encoder::{Batcher, QueryEncoder};
pub use error::ApiError;
pub use metrics::Metrics;
pub use rerank::{QueryVectorizer, Reranker};
pub use state::{AppState, Collections, ServedIndex, Target};
pub use writer::{Served, WriteOutcome, Writer};

fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal("the request failed unexpectedly").into_response()
}

/// The API's routes over `state`, with the body limit, JSON 404/405 fallbacks, and panics turned
/// into JSON 500 answers.
pub fn router(state: AppState) -> Router {
    let limit = state.config().max_body_bytes;
    let keys = state.config().keys.clone();
    let admin = keys.as_ref().is_some_and(ApiKeys::has_admin);
    // The routes of one index or collection: under `/v1` for the server's only one, under
    // `/v1/collections/{collection}` for each of several.
    let target = || {
        Router::new()
            .route("/search", post(handlers::search))
            .route("/search/batch", post(handlers::search_batch))
            .route("/documents", post(handlers::add_documents))
            .route("/documents/delete", post(handlers::delete_documents))
            .route("/documents/{id}", delete(handlers::delete_document))
            .route("/refresh", post(handlers::refresh))
    };
    let mut routes = Router::new()
        .nest("/v1", target())
        .nest("/v1/collections/{collection}", target())
        .route("/v1/health", get(handlers::health))
        .route("/v1/stats", get(handlers::stats))
        .route("/v1/collections", get(handlers::list_collections))
        .route("/v1/collections/{collection}", {
            let collection = get(handlers::stats);
            match admin {
                true => collection
                    .put(handlers::create_collection)
                    .delete(handlers::drop_collection),
                false => collection,
            }
        })
        .route("/metrics", get(handlers::metrics))
        .route("/openapi.json", get(handlers::openapi));
    if admin {
        routes = routes.route("/v1/admin/reload", post(handlers::reload));
    }
    if let Some(keys) = keys {
        let config = state.config();
        let limits = limits::KeyLimits::new(keys.len(), config.key_rate, config.key_concurrency);
        routes = routes.route_layer(middleware::from_fn_with_state(
            std::sync::Arc::new(Gate { keys, limits }),
            authorize,
        ));
    }
    routes
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            refuse_oversized,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .layer(CatchPanicLayer::custom(panic_response))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(logging::request_span)
                .on_request(())
                .on_response(logging::log_response)
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(logging::REQUEST_ID))
        .layer(SetRequestIdLayer::new(
            logging::REQUEST_ID,
            logging::RequestIds::default(),
        ))
        .with_state(state)
}

/// The keys and their limits, as the router checks them.
struct Gate {
    keys: ApiKeys,
    limits: limits::KeyLimits,
}

/// Lets a request through only with a key whose scope covers its route (see [`auth`]), within
/// the key's limits (see [`limits`]).
async fn authorize(
    State(gate): State<std::sync::Arc<Gate>>,
    request: Request,
    next: Next,
) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("", |p| p.as_str());
    let Some(needed) = auth::Scope::required(request.method(), route) else {
        return next.run(request).await;
    };
    let key = match gate.keys.identify(request.headers(), needed) {
        Ok((key, _)) => key,
        Err(e) => return e.into_response(),
    };
    let _in_flight = match gate.limits.admit(key) {
        Ok(in_flight) => in_flight,
        Err(refusal) => {
            let mut response = ApiError::too_many(refusal.message).into_response();
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(refusal.retry_after),
            );
            return response;
        }
    };
    next.run(request).await
}

/// Answers 413 at once to a request whose `Content-Length` exceeds the body limit, without
/// reading the body (the body limit alone would first wait for the announced bytes).
async fn refuse_oversized(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit = state.config().max_body_bytes;
    let announced = request
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return ApiError::too_large(limit).into_response();
    }
    next.run(request).await
}

/// Counts a request in the metrics from arrival to response; one dropped before its response
/// (the client went away) is counted with status `cancelled`.
async fn track(State(state): State<AppState>, request: Request, next: Next) -> Response {
    struct Tracker {
        state: AppState,
        route: String,
        start: Instant,
        status: Option<u16>,
    }
    impl Drop for Tracker {
        fn drop(&mut self) {
            let status = self
                .status
                .map_or_else(|| "cancelled".to_string(), |s| s.to_string());
            self.state
                .metrics()
                .request_finished(&self.route, &status, self.start.elapsed());
        }
    }
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    state.metrics().request_started();
    let mut tracker = Tracker {
        state: state.clone(),
        route,
        start: Instant::now(),
        status: None,
    };
    let response = next.run(request).await;
    tracker.status = Some(response.status().as_u16());
    response
}

/// Serves the API on `listener` until `shutdown` completes; then stops accepting connections and
/// returns once the requests in flight have been answered.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A TLS certificate chain and its private key, loaded for [`serve_tls`] (rustls).
#[derive(Clone)]
pub struct Tls(axum_server::tls_rustls::RustlsConfig);

impl Tls {
    /// Loads the certificate chain `cert` and its private key `key` (PEM files).
    pub async fn load(cert: &std::path::Path, key: &std::path::Path) -> std::io::Result<Tls> {
        axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
            .await
            .map(Tls)
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!(
                        "cannot load the TLS certificate {} and key {}: {e}",
                        cert.display(),
                        key.display()
                    ),
                )
            })
    }
}

/// [`serve`] over TLS. Serves until `shutdown` completes, then lets the requests in flight
/// finish.
pub async fn serve_tls(
    listener: std::net::TcpListener,
    state: AppState,
    tls: Tls,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let tls = tls.0;
    listener.set_nonblocking(true)?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(None);
    });
    axum_server::from_tcp_rustls(listener, tls)
        .handle(handle)
        .serve(router(state).into_make_service())
        .await
}

/// Reloads every index or collection served from its path on every SIGHUP (Unix; never
/// returns), reporting each outcome on standard error. Spawn it beside [`serve`].
pub async fn reload_on_hangup(state: AppState) {
    #[cfg(unix)]
    {
        let hangup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
        if let Ok(mut hangup) = hangup {
            while hangup.recv().await.is_some() {
                for target in state.targets() {
                    match target.reload_async(None).await {
                        Ok(path) => eprintln!(
                            "SIGHUP: reloaded {} ({} documents)",
                            path.display(),
                            target.served().num_docs()
                        ),
                        Err(e) => eprintln!(
                            "SIGHUP: reload failed, still serving the old index: {}",
                            e.message
                        ),
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = state;
    std::future::pending::<()>().await
}

/// Serves each collection's newest generation within `every` of its writing (never returns):
/// reads their manifests every `every` and reloads those whose generation changed, reporting
/// each change on standard error. Spawn it beside [`serve`]; it does nothing for an index file
/// or a collection the server writes itself.
pub async fn refresh_every(state: AppState, every: std::time::Duration) {
    loop {
        tokio::time::sleep(every).await;
        for target in state.targets() {
            if target.writer().is_some() {
                continue;
            }
            match target.refresh_async().await {
                Ok(true) => {
                    let served = target.served();
                    eprintln!(
                        "refreshed {}: generation {}, {} documents",
                        served.path().display(),
                        served.snapshot().generation,
                        served.num_docs()
                    )
                }
                Ok(false) => {}
                Err(e) => eprintln!(
                    "refresh of {} failed, still serving the old generation: {}",
                    target.served().path().display(),
                    e.message
                ),
            }
        }
    }
}

/// Completes on Ctrl-C or, on Unix, SIGTERM: a `shutdown` future for [`serve`].
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    use super::*;

    async fn boom() -> &'static str {
        panic!("boom")
    }

    #[tokio::test]
    async fn a_panicking_handler_is_a_json_500() {
        let app: Router = Router::new()
            .route("/boom", get(boom))
            .layer(CatchPanicLayer::custom(panic_response));
        let r = app
            .oneshot(Request::get("/boom").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["error"]["code"], "internal");
    }
}
