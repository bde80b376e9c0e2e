//! Route handlers. Query work runs on tokio's blocking pool, bounded by the state's semaphore and
//! the configured time budget; each request takes the served index once, at its start.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::Json;
use bmp_index::Index;
use bmp_query::Query;

use crate::api::{
    parse_batch, parse_json, BatchResponse, BatchResult, HealthResponse, HitOut, SearchRequest,
    SearchResponse, StatsResponse,
};
use crate::error::ApiError;
use crate::state::AppState;

/// Answers `request` over `index` (blocking).
pub fn run_query(index: &Index, request: &SearchRequest) -> Result<SearchResponse, ApiError> {
    let start = Instant::now();
    let query = Query::from_entries(index, &request.entries)
        .map_err(|e| ApiError::invalid(format!("vector: {e}")))?;
    let mut searcher = request.spec.searcher(index);
    let hits = searcher
        .search(&query, request.k)
        .map_err(|e| ApiError::internal(format!("search failed: {e}")))?;
    let hits = hits
        .iter()
        .enumerate()
        .map(|(i, h)| {
            Ok(HitOut {
                id: index
                    .doc_id(h.doc)
                    .map_err(|e| ApiError::internal(format!("bad document {}: {e}", h.doc)))?
                    .to_string(),
                score: h.score,
                rank: i + 1,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    Ok(SearchResponse {
        hits,
        took_us: start.elapsed().as_micros() as u64,
        algorithm: request.spec.to_string(),
        k: request.k,
        unknown_terms: query.unknown_terms,
    })
}

/// Runs `job` on the blocking pool with the request's index, once a permit is free, within the
/// time budget. A panic in `job` becomes a 500.
async fn blocking<T, F>(state: &AppState, job: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Index) -> Result<T, ApiError> + Send + 'static,
{
    let index: Arc<Index> = state.index();
    let permits = state.permits();
    let work = async move {
        let permit = permits
            .acquire_owned()
            .await
            .map_err(|_| ApiError::internal("the query pool is closed"))?;
        let handle = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            job(&index)
        });
        match handle.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => Err(ApiError::internal("the query failed unexpectedly")),
            Err(_) => Err(ApiError::internal("the query was cancelled")),
        }
    };
    tokio::time::timeout(state.config().time_budget, work)
        .await
        .unwrap_or_else(|_| Err(ApiError::timeout()))
}

fn body_json(
    state: &AppState,
    body: Result<Bytes, BytesRejection>,
) -> Result<serde_json::Value, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(state.config().max_body_bytes)
        } else {
            ApiError::new(e.status(), "bad_body", e.body_text())
        }
    })?;
    parse_json(&body)
}

/// `POST /v1/search`.
pub async fn search(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<SearchResponse>, ApiError> {
    let value = body_json(&state, body)?;
    let request = SearchRequest::from_json(&value, state.config(), "", &[])?;
    let response = blocking(&state, move |index| run_query(index, &request)).await?;
    Ok(Json(response))
}

/// `POST /v1/search/batch`.
pub async fn search_batch(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<BatchResponse>, ApiError> {
    let value = body_json(&state, body)?;
    let queries = parse_batch(&value, state.config())?;
    let results = blocking(&state, move |index| {
        queries
            .into_iter()
            .enumerate()
            .map(|(i, q)| {
                let response = run_query(index, &q.request).map_err(|mut e| {
                    e.message = format!("queries[{i}]: {}", e.message);
                    e
                })?;
                Ok(BatchResult { id: q.id, response })
            })
            .collect::<Result<Vec<_>, ApiError>>()
    })
    .await?;
    Ok(Json(BatchResponse { results }))
}

/// `GET /v1/health`.
pub async fn health(State(state): State<AppState>) -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok",
        documents: state.index().num_docs(),
    })
}

/// `GET /v1/stats`.
pub async fn stats(State(state): State<AppState>) -> Json<StatsResponse> {
    let index = state.index();
    Json(StatsResponse {
        documents: index.num_docs(),
        terms: index.num_terms(),
        postings: index.num_postings(),
        block_size: index.block_size(),
        blocks: index.num_blocks(),
        file_bytes: index.file_len(),
        path: index.path().display().to_string(),
    })
}

/// Any unknown route: a JSON 404.
pub async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(uri.path())
}

/// A known route with the wrong method: a JSON 405.
pub async fn method_not_allowed() -> ApiError {
    ApiError::method_not_allowed()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::StatusCode;
    use bmp_index::build::{build_index, BuildOptions};
    use bmp_index::Collection;

    use super::*;
    use crate::config::ServerConfig;

    fn state(dir: &std::path::Path, config: ServerConfig) -> AppState {
        let mut c = Collection::new();
        let t = c.intern_term("t");
        c.add_document("d0", &[(t, 1.0)]).unwrap();
        let path = dir.join("x.bmp");
        build_index(
            &c,
            &path,
            &BuildOptions { block_size: 16 },
            &mut |_, _, _| {},
        )
        .unwrap();
        AppState::open(&path, config).unwrap()
    }

    #[tokio::test]
    async fn a_panicking_job_is_a_500() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path(), ServerConfig::default());
        let err = blocking::<(), _>(&state, |_| panic!("boom"))
            .await
            .unwrap_err();
        assert_eq!(err.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(err.code, "internal");
        // The state still answers.
        assert_eq!(blocking(&state, |i| Ok(i.num_docs())).await.unwrap(), 1);
    }

    #[tokio::test]
    async fn a_slow_job_exceeds_the_time_budget() {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig {
            time_budget: Duration::from_millis(20),
            ..ServerConfig::default()
        };
        let state = state(dir.path(), config);
        let err = blocking(&state, |_| {
            std::thread::sleep(Duration::from_millis(300));
            Ok(())
        })
        .await
        .unwrap_err();
        assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.code, "time_budget_exceeded");
    }
}
