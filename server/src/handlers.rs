//! Route handlers. Text queries are encoded by the state's [`crate::encoder::Batcher`]; query
//! work runs on tokio's blocking pool, bounded by the state's semaphore; both within the
//! configured time budget. A query's processor stops at the budget's deadline (its request's
//! arrival plus the budget, or the query's shorter `timeout_ms`), which frees its thread: the
//! query is then answered 503, or with the hits found so far flagged `partial` when it asked for
//! them. Each request takes the served index once, at its start.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequestParts, Query as UrlQuery, RawPathParams, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bmp_index::Collection;
use bmp_lexical::{HybridQuery, HybridSpec, LexicalAnalyzer};
use bmp_query::{Deadline, Query, SearchSpec};

use crate::api::{
    parse_batch, parse_create, parse_delete, parse_documents, parse_json, parse_reload,
    AddResponse, BatchResponse, BatchResult, CollectionInfo, CollectionsResponse, DeleteResponse,
    DroppedResponse, HealthResponse, HitOut, QueryInput, RefreshResponse, ReloadResponse,
    SearchRequest, SearchResponse, StatsResponse, WriteParams,
};
use crate::encoder::Entries;
use crate::error::{index_message, ApiError};
use crate::metrics::Metrics;
use crate::rerank::Reranker;
use crate::searchers;
use crate::state::{valid_collection_name, AppState, ServedIndex, Target};

/// A validated request whose text, if it had one, has been encoded.
#[derive(Debug, Clone)]
pub struct PreparedQuery {
    /// Its query vector (the request's own, or its text's encoding).
    pub entries: Entries,
    /// The number of hits wanted.
    pub k: usize,
    /// The query processor and its parameters.
    pub spec: SearchSpec,
    /// External ids of the only documents the search may return, if given.
    pub filter: Option<Vec<String>>,
    /// Microseconds spent encoding its text (text queries only).
    pub encode_us: Option<u64>,
    /// With `rerank`: the depth and the query's multi-vector representation.
    pub rerank: Option<(usize, Vec<f32>)>,
    /// Microseconds spent embedding the query for the rerank.
    pub rerank_us: Option<u64>,
    /// When its search must stop.
    pub deadline: Deadline,
    /// Whether, stopped there, it answers with the hits found so far rather than 503.
    pub partial: bool,
    /// A hybrid query: its lexical weight and fusion, and its text (`entries` are the text's
    /// learned encoding).
    pub hybrid: Option<(HybridSpec, String)>,
}

/// The index or collection a request is for: the collection its path names
/// (`/v1/collections/{collection}/...`), or the server's only one.
pub struct Targeted(pub Arc<Target>);

/// The path parameter `key` of a request, if its route has one.
fn param(path: &RawPathParams, key: &str) -> Option<String> {
    path.iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v.to_string())
}

/// The path parameter `key` of a request whose route has one.
fn required_param(path: &RawPathParams, key: &str) -> Result<String, ApiError> {
    param(path, key).ok_or_else(|| ApiError::internal(format!("the route has no {key}")))
}

impl FromRequestParts<AppState> for Targeted {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let path = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::invalid(format!("path: {}", e.body_text())))?;
        let name = param(&path, "collection");
        state.target(name.as_deref()).map(Targeted)
    }
}

/// Answers `query` over `served` (blocking) with this thread's searcher of it (see
/// [`crate::searchers`]), recording the search time in `metrics`; a query with `rerank` goes
/// through `reranker` as well.
pub fn run_query(
    served: &Arc<ServedIndex>,
    query: &PreparedQuery,
    metrics: &Metrics,
    reranker: Option<&Reranker>,
) -> Result<SearchResponse, ApiError> {
    let start = Instant::now();
    let Some(index) = served.single() else {
        if query.hybrid.is_some() {
            return Err(ApiError::invalid(
                "hybrid queries need an index file with a lexical field (built with --lexical), \
                 not a collection",
            ));
        }
        return run_collection_query(served, query, metrics, start);
    };
    if let Some((spec, text)) = &query.hybrid {
        return run_hybrid_query(served, index, query, spec, text, metrics, start);
    }
    let parsed = Query::from_entries(index, &query.entries)
        .map_err(|e| ApiError::invalid(format!("vector: {}", index_message(&e))))?;
    let filter = match &query.filter {
        Some(ids) => Some(served.resolve_filter(ids)?),
        None => None,
    };
    let (hits, stopped) = searchers::with_index_searcher(served, &query.spec, |searcher| {
        searcher.set_deadline(query.deadline);
        let hits = searcher.search_filtered(&parsed, query.k, filter.as_ref().map(|(f, _)| f));
        (hits, searcher.stopped())
    })
    .ok_or_else(|| ApiError::internal("no searcher for the index"))?;
    let hits =
        hits.map_err(|e| ApiError::internal(format!("search failed: {}", index_message(&e))))?;
    let search_elapsed = start.elapsed();
    check_stopped(query, stopped, metrics)?;
    let scale = parsed.score_scale(index);
    let doc_id = |doc: u32| external_id(index, doc);
    let mut rerank_us = None;
    let hits = match (&query.rerank, reranker) {
        (Some((depth, vectors)), Some(reranker)) => {
            let t0 = Instant::now();
            let reranked = reranker.rerank(index, vectors, &hits, *depth)?;
            let first_score: std::collections::HashMap<u32, u32> =
                hits.iter().map(|h| (h.doc, h.score)).collect();
            let out = reranked
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    let raw = first_score.get(&h.doc).copied().unwrap_or(0);
                    Ok(HitOut {
                        id: doc_id(h.doc)?,
                        score: f64::from(raw) * scale,
                        raw_score: Some(raw),
                        rank: i + 1,
                        rerank_score: (i < *depth).then_some(h.score),
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()?;
            rerank_us = Some(t0.elapsed().as_micros() as u64 + query.rerank_us.unwrap_or(0));
            out
        }
        (Some(_), None) => return Err(ApiError::internal("no reranker for a rerank query")),
        (None, _) => hits
            .iter()
            .enumerate()
            .map(|(i, h)| {
                Ok(HitOut {
                    id: doc_id(h.doc)?,
                    score: f64::from(h.score) * scale,
                    raw_score: Some(h.score),
                    rank: i + 1,
                    rerank_score: None,
                })
            })
            .collect::<Result<Vec<_>, ApiError>>()?,
    };
    let elapsed = start.elapsed();
    metrics.record_search(query.spec.name(), query.spec.is_safe(), search_elapsed);
    Ok(SearchResponse {
        hits,
        took_us: elapsed.as_micros() as u64
            + query.encode_us.unwrap_or(0)
            + query.rerank_us.unwrap_or(0),
        algorithm: query.spec.to_string(),
        k: query.k,
        unknown_terms: parsed.unknown_terms,
        unknown_filter_ids: filter.map(|(_, unknown)| unknown),
        encode_us: query.encode_us,
        rerank_us,
        partial: stopped,
    })
}

/// [`run_query`] of a hybrid query over one index file with a lexical field: its learned
/// encoding (`query.entries`) and the BM25 words of `text`, fused as `spec` says.
fn run_hybrid_query(
    served: &Arc<ServedIndex>,
    index: &bmp_index::Index,
    query: &PreparedQuery,
    spec: &HybridSpec,
    text: &str,
    metrics: &Metrics,
    start: Instant,
) -> Result<SearchResponse, ApiError> {
    let hybrid = HybridQuery::new(
        index,
        spec,
        &query.entries,
        text,
        &mut LexicalAnalyzer::default(),
    )
    .map_err(|e| match e {
        bmp_lexical::Error::Index(e) => ApiError::invalid(format!("vector: {}", index_message(&e))),
        e => ApiError::invalid(format!("hybrid: {e}")),
    })?;
    let filter = match &query.filter {
        Some(ids) => Some(served.resolve_filter(ids)?),
        None => None,
    };
    let (fused, stopped) = searchers::with_index_searcher(served, &query.spec, |searcher| {
        searcher.set_deadline(query.deadline);
        let filter = filter.as_ref().map(|(f, _)| f);
        let fused = hybrid.search(index, query.k, &mut |q, k| {
            searcher.search_filtered(q, k, filter)
        });
        (fused, searcher.stopped())
    })
    .ok_or_else(|| ApiError::internal("no searcher for the index"))?;
    let fused = fused.map_err(|e| ApiError::internal(format!("search failed: {e}")))?;
    let search_elapsed = start.elapsed();
    check_stopped(query, stopped, metrics)?;
    let hits = fused
        .hits
        .iter()
        .enumerate()
        .map(|(i, h)| {
            Ok(HitOut {
                id: external_id(index, h.doc)?,
                score: h.score,
                raw_score: h.raw_score,
                rank: i + 1,
                rerank_score: None,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    metrics.record_search(query.spec.name(), query.spec.is_safe(), search_elapsed);
    Ok(SearchResponse {
        hits,
        took_us: start.elapsed().as_micros() as u64 + query.encode_us.unwrap_or(0),
        algorithm: query.spec.to_string(),
        k: query.k,
        unknown_terms: fused.unknown_terms,
        unknown_filter_ids: filter.map(|(_, unknown)| unknown),
        encode_us: query.encode_us,
        rerank_us: None,
        partial: stopped,
    })
}

/// [`run_query`] over a collection: every segment, one ranking (no rerank: the multi-vector
/// store belongs to one index file).
fn run_collection_query(
    served: &Arc<ServedIndex>,
    query: &PreparedQuery,
    metrics: &Metrics,
    start: Instant,
) -> Result<SearchResponse, ApiError> {
    if query.rerank.is_some() {
        return Err(ApiError::internal("no reranker for a collection"));
    }
    let snapshot = served.snapshot();
    let (filters, unknown_filter_ids) = match &query.filter {
        Some(ids) => {
            let (filters, unknown) = served.resolve_segment_filters(ids)?;
            (Some(filters), Some(unknown))
        }
        None => (None, None),
    };
    let results = searchers::with_collection_searcher(served, &query.spec, filters, |searcher| {
        searcher.set_deadline(query.deadline);
        searcher.search(&query.entries, query.k)
    });
    let results = results.map_err(|e| match e {
        bmp_index::Error::Invalid(m) => ApiError::invalid(format!("vector: {m}")),
        e => ApiError::internal(format!("search failed: {}", index_message(&e))),
    })?;
    let search_elapsed = start.elapsed();
    check_stopped(query, results.stopped, metrics)?;
    let hits = results
        .hits
        .iter()
        .enumerate()
        .map(|(i, h)| {
            Ok(HitOut {
                id: external_id(&snapshot.segments[h.segment].index, h.doc)?,
                score: f64::from(h.score) * results.score_scale,
                raw_score: Some(h.score),
                rank: i + 1,
                rerank_score: None,
            })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    metrics.record_search(query.spec.name(), query.spec.is_safe(), search_elapsed);
    Ok(SearchResponse {
        hits,
        took_us: start.elapsed().as_micros() as u64 + query.encode_us.unwrap_or(0),
        algorithm: query.spec.to_string(),
        k: query.k,
        unknown_terms: results.unknown_terms,
        unknown_filter_ids,
        encode_us: query.encode_us,
        rerank_us: None,
        partial: results.stopped,
    })
}

/// The external id of document `doc` of `index` (a 500 when the index cannot say).
fn external_id(index: &bmp_index::Index, doc: u32) -> Result<String, ApiError> {
    index
        .doc_id(doc)
        .map(str::to_string)
        .map_err(|e| ApiError::internal(format!("bad document {doc}: {}", index_message(&e))))
}

/// Past its deadline, a query that did not ask for partial results is answered 503.
fn check_stopped(query: &PreparedQuery, stopped: bool, metrics: &Metrics) -> Result<(), ApiError> {
    if stopped {
        metrics.record_stopped(query.partial);
        if !query.partial {
            return Err(ApiError::timeout());
        }
    }
    Ok(())
}

/// Encodes the texts among `requests` (all in one call of the encoder); `fields` names each
/// request's `query` field for errors. Vectors and texts are moved, not copied.
async fn prepare(
    state: &AppState,
    requests: Vec<SearchRequest>,
    arrival: Instant,
    fields: impl Fn(usize) -> String,
) -> Result<Vec<PreparedQuery>, ApiError> {
    let mut texts = Vec::new();
    let mut rerank_texts: Vec<(usize, String)> = Vec::new();
    let mut is_text = Vec::with_capacity(requests.len());
    let mut prepared = Vec::with_capacity(requests.len());
    for request in requests {
        let SearchRequest {
            input,
            k,
            spec,
            filter,
            rerank,
            timeout,
            partial,
            hybrid,
        } = request;
        let budget = state.config().time_budget;
        let deadline = match arrival.checked_add(timeout.map_or(budget, |t| t.min(budget))) {
            Some(at) => Deadline::At(at),
            None => Deadline::None,
        };
        is_text.push(matches!(input, QueryInput::Text(_)));
        let mut hybrid_text = None;
        let entries = match input {
            QueryInput::Vector(entries) => entries,
            QueryInput::Text(text) => {
                if rerank.is_some() {
                    rerank_texts.push((prepared.len(), text.clone()));
                }
                if let Some(spec) = hybrid {
                    hybrid_text = Some((spec, text.clone()));
                }
                texts.push(text);
                Vec::new()
            }
        };
        prepared.push(PreparedQuery {
            entries,
            k,
            spec,
            filter,
            encode_us: None,
            rerank: rerank.map(|d| (d, Vec::new())),
            rerank_us: None,
            deadline,
            partial,
            hybrid: hybrid_text,
        });
    }
    if let Some(&(first, _)) = rerank_texts.first() {
        let reranker = state.reranker().cloned().ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "no_multivec",
                format!(
                    "{} asks for a rerank, but this server has no multi-vector store (start it \
                     with --multivec)",
                    fields(first).replace("query", "rerank")
                ),
            )
        })?;
        let start = Instant::now();
        let (slots, texts): (Vec<usize>, Vec<String>) = rerank_texts.into_iter().unzip();
        let vectors = tokio::task::spawn_blocking(move || reranker.query_vectors(&texts))
            .await
            .map_err(|_| ApiError::internal("query embedding failed unexpectedly"))??;
        let took = Some(start.elapsed().as_micros() as u64);
        for (slot, v) in slots.into_iter().zip(vectors) {
            if let Some(q) = prepared.get_mut(slot) {
                if let Some((_, qv)) = q.rerank.as_mut() {
                    *qv = v;
                }
                q.rerank_us = took;
            }
        }
    }
    let Some(first_text) = is_text.iter().position(|&t| t) else {
        return Ok(prepared);
    };
    let encoder = state
        .encoder()
        .ok_or_else(|| ApiError::no_model(&fields(first_text)))?;
    let start = Instant::now();
    let mut vectors = encoder.encode(texts).await?.into_iter();
    let encode_us = Some(start.elapsed().as_micros() as u64);
    // The texts were taken in request order: hand their vectors back in the same order.
    for (q, text) in prepared.iter_mut().zip(is_text) {
        if text {
            q.entries = vectors
                .next()
                .ok_or_else(|| ApiError::internal("the encoder lost a query"))?;
            q.encode_us = encode_us;
        }
    }
    Ok(prepared)
}

/// How long past a request's time budget its work may take before the request is answered 503
/// without it: the time for a query stopped at its deadline to come back, and for the work
/// that does not stop (encoding, reranking) to end.
const BUDGET_GRACE: Duration = Duration::from_millis(100);

/// Runs `work`, a request that arrived at `arrival`, within the configured time budget (and
/// [`BUDGET_GRACE`]; 503 past it). The queries of `work` stop at the budget on their own.
async fn within_budget<T>(
    state: &AppState,
    arrival: Instant,
    work: impl Future<Output = Result<T, ApiError>>,
) -> Result<T, ApiError> {
    let limit = state.config().time_budget.saturating_add(BUDGET_GRACE);
    match arrival.checked_add(limit) {
        Some(at) => tokio::time::timeout_at(at.into(), work)
            .await
            .unwrap_or_else(|_| Err(ApiError::timeout())),
        None => work.await,
    }
}

/// Runs `job` on the blocking pool with what `target` serves now, once a permit is free. A
/// panic in `job` becomes a 500.
async fn blocking<T, F>(state: &AppState, target: &Target, job: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&Arc<ServedIndex>, &Metrics) -> Result<T, ApiError> + Send + 'static,
{
    let served: Arc<ServedIndex> = target.served();
    let permit = state
        .permits()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::internal("the query pool is closed"))?;
    let state = state.clone();
    let handle = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        job(&served, state.metrics())
    });
    match handle.await {
        Ok(result) => result,
        Err(e) if e.is_panic() => Err(ApiError::internal("the query failed unexpectedly")),
        Err(_) => Err(ApiError::internal("the query was cancelled")),
    }
}

fn body_bytes(state: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(state.config().max_body_bytes)
        } else {
            ApiError::new(e.status(), "bad_body", e.body_text())
        }
    })
}

/// `POST /v1/search`.
pub async fn search(
    State(state): State<AppState>,
    Targeted(target): Targeted,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<SearchResponse>, ApiError> {
    let arrival = Instant::now();
    let value = parse_json(&body_bytes(&state, body)?)?;
    let request = SearchRequest::from_json(&value, state.config(), "", &[])?;
    let response = within_budget(&state, arrival, async {
        let mut prepared = prepare(&state, vec![request], arrival, |_| "query".to_string()).await?;
        let query = prepared
            .pop()
            .ok_or_else(|| ApiError::internal("no query"))?;
        let reranker = state.reranker().cloned();
        blocking(&state, &target, move |served, metrics| {
            run_query(served, &query, metrics, reranker.as_deref())
        })
        .await
    })
    .await?;
    Ok(Json(response))
}

/// `POST /v1/search/batch`.
pub async fn search_batch(
    State(state): State<AppState>,
    Targeted(target): Targeted,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<BatchResponse>, ApiError> {
    let arrival = Instant::now();
    let value = parse_json(&body_bytes(&state, body)?)?;
    let queries = parse_batch(&value, state.config())?;
    let results = within_budget(&state, arrival, async {
        let (ids, requests): (Vec<_>, Vec<_>) =
            queries.into_iter().map(|q| (q.id, q.request)).unzip();
        let prepared =
            prepare(&state, requests, arrival, |i| format!("queries[{i}].query")).await?;
        let reranker = state.reranker().cloned();
        blocking(&state, &target, move |served, metrics| {
            prepared
                .iter()
                .zip(ids)
                .enumerate()
                .map(|(i, (q, id))| {
                    let response =
                        run_query(served, q, metrics, reranker.as_deref()).map_err(|mut e| {
                            e.message = format!("queries[{i}]: {}", e.message);
                            e
                        })?;
                    Ok(BatchResult { id, response })
                })
                .collect::<Result<Vec<_>, ApiError>>()
        })
        .await
    })
    .await?;
    Ok(Json(BatchResponse { results }))
}

/// The `?refresh=` of a write route.
fn write_params(
    params: Result<UrlQuery<WriteParams>, QueryRejection>,
) -> Result<WriteParams, ApiError> {
    params
        .map(|UrlQuery(p)| p)
        .map_err(|e| ApiError::invalid(format!("query string: {}", e.body_text())))
}

/// `POST /v1/documents`: adds (or replaces) documents, given as vectors or, on a server with a
/// model, as texts; answers once the write is durable (in the write-ahead log), and with
/// `?refresh=true` once it is visible too.
pub async fn add_documents(
    State(state): State<AppState>,
    Targeted(target): Targeted,
    params: Result<UrlQuery<WriteParams>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<AddResponse>, ApiError> {
    let writer = target.writer().ok_or_else(ApiError::read_only)?;
    let params = write_params(params)?;
    let value = parse_json(&body_bytes(&state, body)?)?;
    let (mut docs, texts) = parse_documents(&value)?;
    if let Some((first, _)) = texts.first() {
        let encoder = state
            .encoder()
            .ok_or_else(|| ApiError::no_model(&format!("documents[{first}].text")))?;
        let (slots, texts): (Vec<usize>, Vec<String>) = texts.into_iter().unzip();
        let vectors = encoder.encode_documents(texts).await?;
        for (slot, vector) in slots.into_iter().zip(vectors) {
            if let Some(doc) = docs.get_mut(slot) {
                doc.1 = vector;
            }
        }
    }
    // Every document is checked on its own first: a commit of several requests fails only on I/O.
    let mut check = Collection::new();
    for (i, (id, entries)) in docs.iter().enumerate() {
        let e: Vec<(u32, f32)> = entries
            .iter()
            .map(|(t, w)| (check.intern_term(t), *w))
            .collect();
        check
            .add_document(id, &e)
            .map_err(|m| ApiError::invalid(format!("documents[{i}]: {m}")))?;
    }
    drop(check);
    let start = Instant::now();
    let outcome = writer.add(docs, params.refresh).await?;
    Ok(Json(AddResponse {
        added: outcome.applied,
        replaced: outcome.other,
        visible: outcome.visible,
        generation: outcome.generation,
        segments: outcome.segments,
        took_ms: start.elapsed().as_millis() as u64,
    }))
}

/// Deletes the live documents `ids` name (each id once); answers once durable.
async fn delete_ids(
    target: &Target,
    mut ids: Vec<String>,
    params: WriteParams,
) -> Result<DeleteResponse, ApiError> {
    let writer = target.writer().ok_or_else(ApiError::read_only)?;
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(id.clone()));
    let outcome = writer.delete(ids, params.refresh).await?;
    Ok(DeleteResponse {
        deleted: outcome.applied,
        missing: outcome.other,
        visible: outcome.visible,
        generation: outcome.generation,
    })
}

/// `POST /v1/documents/delete`: deletes documents by id.
pub async fn delete_documents(
    State(state): State<AppState>,
    Targeted(target): Targeted,
    params: Result<UrlQuery<WriteParams>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<DeleteResponse>, ApiError> {
    if target.writer().is_none() {
        return Err(ApiError::read_only());
    }
    let params = write_params(params)?;
    let ids = parse_delete(&parse_json(&body_bytes(&state, body)?)?)?;
    Ok(Json(delete_ids(&target, ids, params).await?))
}

/// `DELETE /v1/documents/{id}`: deletes one document (404 when no live document has the id).
pub async fn delete_document(
    Targeted(target): Targeted,
    path: RawPathParams,
    params: Result<UrlQuery<WriteParams>, QueryRejection>,
) -> Result<Json<DeleteResponse>, ApiError> {
    let id = required_param(&path, "id")?;
    let params = write_params(params)?;
    let response = delete_ids(&target, vec![id.clone()], params).await?;
    if response.deleted == 0 {
        return Err(ApiError::no_document(&id));
    }
    Ok(Json(response))
}

/// `POST /v1/refresh`: makes every write acknowledged so far visible (with `--writable`), or
/// serves the collection's newest generation on disk (without); answers with what is served.
pub async fn refresh(Targeted(target): Targeted) -> Result<Json<RefreshResponse>, ApiError> {
    if let Some(writer) = target.writer() {
        let served = writer.refresh().await?;
        return Ok(Json(RefreshResponse {
            generation: served.generation,
            segments: served.segments,
            documents: served.documents,
        }));
    }
    target.refresh_async().await?;
    let served = target.served();
    let snapshot = served.snapshot();
    Ok(Json(RefreshResponse {
        generation: snapshot.generation,
        segments: snapshot.segments.len(),
        documents: snapshot.live_docs(),
    }))
}

/// `GET /v1/health`: live documents over everything served.
pub async fn health(State(state): State<AppState>) -> Json<HealthResponse> {
    Json(HealthResponse {
        status: "ok",
        documents: state.targets().iter().map(|t| t.served().num_docs()).sum(),
    })
}

/// `GET /v1/stats` (and `GET /v1/collections/{collection}`).
pub async fn stats(
    State(state): State<AppState>,
    Targeted(target): Targeted,
) -> Json<StatsResponse> {
    let served = target.served();
    let segments = &served.snapshot().segments;
    let sum = |f: &dyn Fn(&bmp_index::Index) -> u64| segments.iter().map(|s| f(&s.index)).sum();
    Json(StatsResponse {
        documents: served.num_docs(),
        terms: sum(&|i| u64::from(i.num_terms())),
        postings: sum(&|i| i.num_postings()),
        block_size: segments.first().map_or(0, |s| s.index.block_size()),
        blocks: sum(&|i| u64::from(i.num_blocks())),
        file_bytes: sum(&|i| i.file_len()),
        segments: served.collection_dir().map(|_| segments.len()),
        generation: served
            .collection_dir()
            .map(|_| served.snapshot().generation),
        model: state.encoder().map(|e| e.describe().to_string()),
        multivec: state.reranker().map(|r| r.describe()),
    })
}

/// `POST /v1/admin/reload`: reopens the index file (or opens the one the body names), verifies
/// it and swaps it in; the old index stays on any error (422).
pub async fn reload(
    State(state): State<AppState>,
    Targeted(target): Targeted,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ReloadResponse>, ApiError> {
    let path = parse_reload(&body_bytes(&state, body)?)?;
    let path = match path {
        Some(path) => Some(under_data_dir(&state, std::path::Path::new(&path))?),
        None => None,
    };
    let start = Instant::now();
    let path = target.reload_async(path).await?;
    Ok(Json(ReloadResponse {
        status: "reloaded",
        path: path.display().to_string(),
        documents: target.served().num_docs(),
        took_ms: start.elapsed().as_millis() as u64,
    }))
}

/// `path` made absolute, when it lies in the configured data directory (403 otherwise).
fn under_data_dir(
    state: &AppState,
    path: &std::path::Path,
) -> Result<std::path::PathBuf, ApiError> {
    let refused = || {
        ApiError::forbidden(format!(
            "{} is not in the server's data directory (serve --data-dir)",
            path.display()
        ))
    };
    let root = state.config().data_dir.as_ref().ok_or_else(refused)?;
    let root = root.canonicalize().map_err(|_| refused())?;
    // The file may not exist yet: its directory must, inside the root.
    let absolute = match path.canonicalize() {
        Ok(p) => p,
        Err(_) => {
            let parent = path.parent().filter(|p| !p.as_os_str().is_empty());
            let parent = parent.unwrap_or(std::path::Path::new("."));
            let name = path.file_name().ok_or_else(refused)?;
            parent.canonicalize().map_err(|_| refused())?.join(name)
        }
    };
    match absolute.starts_with(&root) {
        true => Ok(absolute),
        false => Err(refused()),
    }
}

/// What `GET /v1/collections` says of `target`.
fn collection_info(name: &str, target: &Target) -> CollectionInfo {
    let served = target.served();
    CollectionInfo {
        name: name.to_string(),
        documents: served.num_docs(),
        segments: served.snapshot().segments.len(),
        generation: served.snapshot().generation,
        writable: target.writer().is_some(),
    }
}

/// `GET /v1/collections`: the collections served.
pub async fn list_collections(
    State(state): State<AppState>,
) -> Result<Json<CollectionsResponse>, ApiError> {
    let collections = state.collections().ok_or_else(ApiError::no_collections)?;
    Ok(Json(CollectionsResponse {
        collections: collections
            .all()
            .iter()
            .map(|t| collection_info(t.name().unwrap_or_default(), t))
            .collect(),
    }))
}

/// `PUT /v1/collections/{collection}`: creates an empty collection (201), with the block and
/// superblock sizes the body gives, if any.
pub async fn create_collection(
    State(state): State<AppState>,
    path: RawPathParams,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<CollectionInfo>), ApiError> {
    let collections = state.collections().ok_or_else(ApiError::no_collections)?;
    let name = required_param(&path, "collection")?;
    if !valid_collection_name(&name) {
        return Err(ApiError::invalid(format!(
            "collection name {name:?}: use 1 to 64 ASCII letters, digits, '-' and '_', not \
             starting with '-'"
        )));
    }
    let options = parse_create(&body_bytes(&state, body)?)?;
    let target = collections
        .create(&name, options, state.metrics_arc())
        .await?;
    Ok((StatusCode::CREATED, Json(collection_info(&name, &target))))
}

/// `DELETE /v1/collections/{collection}`: stops serving a collection and removes its files.
pub async fn drop_collection(
    State(state): State<AppState>,
    path: RawPathParams,
) -> Result<Json<DroppedResponse>, ApiError> {
    let collections = state.collections().ok_or_else(ApiError::no_collections)?;
    let name = required_param(&path, "collection")?;
    let documents = collections.drop_collection(&name).await?;
    Ok(Json(DroppedResponse {
        dropped: name,
        documents,
    }))
}

/// `GET /metrics`: Prometheus text exposition format.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics().render(),
    )
        .into_response()
}

/// `GET /openapi.json`.
pub async fn openapi() -> Json<serde_json::Value> {
    Json(crate::openapi::document())
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

    /// A server state over `c`, built at `dir/name` with `block_size`.
    fn state_of(
        dir: &std::path::Path,
        name: &str,
        c: &Collection,
        block_size: u32,
        config: ServerConfig,
    ) -> AppState {
        let path = dir.join(name);
        build_index(
            c,
            &path,
            &BuildOptions::with_block_size(block_size),
            &mut |_, _, _| {},
        )
        .unwrap();
        AppState::open(&path, config).unwrap()
    }

    fn state(dir: &std::path::Path, config: ServerConfig) -> AppState {
        let mut c = Collection::new();
        let t = c.intern_term("t");
        c.add_document("d0", &[(t, 1.0)]).unwrap();
        state_of(dir, "x.bmp", &c, 16, config)
    }

    #[tokio::test]
    async fn a_panicking_job_is_a_500() {
        let dir = tempfile::tempdir().unwrap();
        let state = state(dir.path(), ServerConfig::default());
        let target = state.target(None).unwrap();
        let err = blocking::<(), _>(&state, &target, |_, _| panic!("boom"))
            .await
            .unwrap_err();
        assert_eq!(err.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(err.code, "internal");
        // The state still answers.
        assert_eq!(
            blocking(&state, &target, |s, _| Ok(s.num_docs()))
                .await
                .unwrap(),
            1
        );
    }

    #[tokio::test]
    async fn a_slow_job_exceeds_the_time_budget() {
        let dir = tempfile::tempdir().unwrap();
        let config = ServerConfig {
            time_budget: Duration::from_millis(20),
            ..ServerConfig::default()
        };
        let state = state(dir.path(), config);
        let target = state.target(None).unwrap();
        let err = within_budget(
            &state,
            Instant::now(),
            blocking(&state, &target, |_, _| {
                std::thread::sleep(Duration::from_millis(300));
                Ok(())
            }),
        )
        .await
        .unwrap_err();
        assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.code, "time_budget_exceeded");
    }

    /// An index of 100,000 documents of 1 to 10 of the terms t0..t39.
    fn big_state(dir: &std::path::Path, config: ServerConfig) -> AppState {
        let mut c = Collection::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut next = |m: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % m
        };
        for i in 0..100_000 {
            let mut terms: Vec<u64> = (0..=next(10)).map(|_| next(40)).collect();
            terms.sort_unstable();
            terms.dedup();
            let entries: Vec<(u32, f32)> = terms
                .iter()
                .map(|&t| {
                    (
                        c.intern_term(&format!("t{t}")),
                        0.1 + next(30) as f32 / 10.0,
                    )
                })
                .collect();
            c.add_document(&format!("d{i}"), &entries).unwrap();
        }
        state_of(dir, "big.bmp", &c, 8, config)
    }

    /// A batch of 256 exhaustive queries over every term, each with `extra`'s fields.
    fn expensive_batch(extra: serde_json::Value) -> Bytes {
        let vector: serde_json::Map<String, serde_json::Value> = (0..40)
            .map(|t| (format!("t{t}"), serde_json::json!(1.0 + t as f64 / 10.0)))
            .collect();
        let mut query = serde_json::json!({"vector": vector, "k": 1000, "algorithm": "exhaustive"});
        for (key, value) in extra.as_object().unwrap() {
            query[key] = value.clone();
        }
        let queries = vec![query; 256];
        Bytes::from(serde_json::json!({ "queries": queries }).to_string())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_query_past_its_budget_stops_and_frees_its_thread() {
        let dir = tempfile::tempdir().unwrap();
        // One query thread, and a server budget far longer than the work.
        let config = ServerConfig {
            time_budget: Duration::from_secs(30),
            blocking_threads: 1,
            ..ServerConfig::default()
        };
        let state = big_state(dir.path(), config);
        let target = state.target(None).unwrap();
        let run =
            |body: Bytes| search_batch(State(state.clone()), Targeted(target.clone()), Ok(body));

        // Without a budget of its own the batch is answered whole.
        let Json(full) = run(expensive_batch(serde_json::json!({}))).await.unwrap();
        assert_eq!(full.results.len(), 256);
        assert!(full.results.iter().all(|r| !r.response.partial));
        assert!(full.results.iter().all(|r| r.response.hits.len() == 1000));

        // With 1 ms: 503, and the query thread is free the moment the answer comes (a query
        // running on would hold its permit).
        let err = run(expensive_batch(serde_json::json!({"timeout_ms": 1})))
            .await
            .unwrap_err();
        assert_eq!(err.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(err.code, "time_budget_exceeded");
        assert_eq!(state.permits().available_permits(), 1);

        // With "partial": true, the hits found by then, flagged; the queries after the deadline
        // found none.
        let Json(partial) = run(expensive_batch(
            serde_json::json!({"timeout_ms": 1, "partial": true}),
        ))
        .await
        .unwrap();
        assert_eq!(state.permits().available_permits(), 1);
        assert_eq!(partial.results.len(), 256);
        let last = &partial.results[255].response;
        assert!(last.partial && last.hits.is_empty());
        for (r, f) in partial.results.iter().zip(&full.results) {
            let (r, f) = (&r.response, &f.response);
            assert!(r.hits.len() <= 1000);
            if !r.partial {
                assert_eq!(r.hits, f.hits);
            }
        }
        let text = state.metrics().render();
        let stopped = partial
            .results
            .iter()
            .filter(|r| r.response.partial)
            .count();
        assert!(
            text.contains(&format!(
                "bmp_search_stopped_total{{answer=\"partial\"}} {stopped}"
            )),
            "{text}"
        );
        assert!(
            text.contains("bmp_search_stopped_total{answer=\"unavailable\"} 1"),
            "{text}"
        );
    }
}
