//! Request parsing and validation, and response types.
//!
//! Requests are parsed from a [`serde_json::Value`] by hand rather than derived, so that every
//! rejection names the offending field (`queries[3].vector["foo"]`, `k`, ...), unknown fields
//! included.

use std::sync::LazyLock;
use std::time::Duration;

use bmp_lexical::HybridSpec;
use bmp_query::{spec, SearchSpec};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config::ServerConfig;
use crate::error::ApiError;

/// The default number of hits.
pub const DEFAULT_K: usize = 10;

/// What a query asks for: a sparse vector, or a text for the server's encoder.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryInput {
    /// `(term, weight)` entries; weights finite and >= 0.
    Vector(Vec<(String, f32)>),
    /// A text (non-blank) to encode with the server's model.
    Text(String),
}

/// One validated query: `{"vector": {...}}` or `{"query": "text"}`, with optional `k`,
/// `algorithm` and its parameters (`alpha`, `beta`, ...: see [`bmp_query::ALGORITHMS`]),
/// `filter` and `rerank`.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRequest {
    /// The query.
    pub input: QueryInput,
    /// The number of hits wanted, in `1..=max_k`.
    pub k: usize,
    /// The query processor and its parameters.
    pub spec: SearchSpec,
    /// External ids of the only documents the search may return, if given.
    pub filter: Option<Vec<String>>,
    /// How many of the first-stage hits the multi-vector stage reorders, if asked.
    pub rerank: Option<usize>,
    /// The query's own time budget, when shorter than the server's (`timeout_ms`).
    pub timeout: Option<Duration>,
    /// Whether a query stopped at its time budget answers with the hits found so far, flagged
    /// `partial` (`"partial": true`), rather than 503.
    pub partial: bool,
    /// A hybrid (learned + BM25) text query: its lexical weight and fusion.
    pub hybrid: Option<HybridSpec>,
}

/// One query of a batch: a [`SearchRequest`] and the client's optional `id`.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchQuery {
    /// The client's id (a string or a number), echoed in the result.
    pub id: Option<Value>,
    /// The query.
    pub request: SearchRequest,
}

/// The fields of a query: its own, and every parameter some algorithm takes.
static SEARCH_FIELDS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut fields = vec!["query", "vector", "k", "algorithm"];
    fields.extend(spec::param_names());
    fields.extend(["filter", "rerank", "timeout_ms", "partial", "hybrid"]);
    fields
});

/// Parses a request body as JSON.
pub fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::malformed(format!("request body is not valid JSON: {e}")))
}

fn object<'a>(v: &'a Value, what: &str) -> Result<&'a Map<String, Value>, ApiError> {
    v.as_object()
        .ok_or_else(|| ApiError::invalid(format!("{what} must be a JSON object")))
}

fn field_name(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// The algorithm and its parameters from the fields `algorithm` (a name; the default algorithm
/// when absent) and those named after parameters (numbers). Which parameters an algorithm takes,
/// and in what range, is [`SearchSpec::from_parts`]'s business.
fn search_spec(obj: &Map<String, Value>, prefix: &str) -> Result<SearchSpec, ApiError> {
    let name = match obj.get("algorithm") {
        None => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(v) => {
            return Err(ApiError::invalid(format!(
                "{} must be a string, got {v}",
                field_name(prefix, "algorithm")
            )))
        }
    };
    let mut params = Vec::new();
    for param in spec::param_names() {
        if let Some(v) = obj.get(param) {
            let x = v.as_f64().ok_or_else(|| {
                ApiError::invalid(format!(
                    "{} must be a number, got {v}",
                    field_name(prefix, param)
                ))
            })?;
            params.push((param, x as f32));
        }
    }
    SearchSpec::from_parts(name, &params).map_err(|e| {
        ApiError::invalid(format!("{} {}", field_name(prefix, e.field()), e.problem()))
    })
}

impl SearchRequest {
    /// Validates one query object against `config`; `prefix` locates it in messages (empty for
    /// a top-level request, `queries[i]` in a batch). `extra` lists further accepted fields.
    pub fn from_json(
        v: &Value,
        config: &ServerConfig,
        prefix: &str,
        extra: &[&str],
    ) -> Result<SearchRequest, ApiError> {
        let what = if prefix.is_empty() {
            "request body"
        } else {
            prefix
        };
        let obj = object(v, what)?;
        if let Some(unknown) = obj
            .keys()
            .find(|k| !SEARCH_FIELDS.contains(&k.as_str()) && !extra.contains(&k.as_str()))
        {
            return Err(ApiError::invalid(format!(
                "unknown field {:?} (expected one of: {})",
                field_name(prefix, unknown),
                SEARCH_FIELDS.join(", ")
            )));
        }

        let input = match (obj.get("query"), obj.get("vector")) {
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(format!(
                    "give either {} or {}, not both",
                    field_name(prefix, "query"),
                    field_name(prefix, "vector")
                )))
            }
            (None, None) => {
                return Err(ApiError::invalid(format!(
                    "missing field {} (a text) or {} (an object mapping terms to weights)",
                    field_name(prefix, "query"),
                    field_name(prefix, "vector")
                )))
            }
            (Some(text), None) => QueryInput::Text(text_query(text, config, prefix)?),
            (None, Some(vector)) => QueryInput::Vector(vector_query(vector, config, prefix)?),
        };

        let kfield = field_name(prefix, "k");
        let k = match obj.get("k") {
            None => DEFAULT_K,
            Some(v) => {
                let k = v.as_u64().ok_or_else(|| {
                    ApiError::invalid(format!("{kfield} must be a positive integer, got {v}"))
                })?;
                if k == 0 || k > config.max_k as u64 {
                    return Err(ApiError::invalid(format!(
                        "{kfield} must be in 1..={}, got {k}",
                        config.max_k
                    )));
                }
                k as usize
            }
        };

        let spec = search_spec(obj, prefix)?;
        let filter = match obj.get("filter") {
            None => None,
            Some(v) => Some(filter_ids(v, prefix)?),
        };
        let rfield = field_name(prefix, "rerank");
        let rerank = match obj.get("rerank") {
            None => None,
            Some(v) => {
                let depth = v.as_u64().filter(|&d| d >= 1).ok_or_else(|| {
                    ApiError::invalid(format!("{rfield} must be a positive integer, got {v}"))
                })?;
                if !matches!(input, QueryInput::Text(_)) {
                    return Err(ApiError::invalid(format!(
                        "{rfield} needs a text query ({}): the multi-vector stage embeds the text",
                        field_name(prefix, "query")
                    )));
                }
                Some(usize::try_from(depth).unwrap_or(usize::MAX).min(k))
            }
        };
        let tfield = field_name(prefix, "timeout_ms");
        let timeout = match obj.get("timeout_ms") {
            None => None,
            Some(v) => {
                let ms = v.as_u64().filter(|&ms| ms >= 1).ok_or_else(|| {
                    ApiError::invalid(format!("{tfield} must be a positive integer, got {v}"))
                })?;
                Some(Duration::from_millis(ms))
            }
        };
        let partial = match obj.get("partial") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(v) => {
                return Err(ApiError::invalid(format!(
                    "{} must be true or false, got {v}",
                    field_name(prefix, "partial")
                )))
            }
        };
        let hybrid = match obj.get("hybrid") {
            None => None,
            Some(v) => {
                let field = field_name(prefix, "hybrid");
                if !matches!(input, QueryInput::Text(_)) {
                    return Err(ApiError::invalid(format!(
                        "{field} needs a text query ({}): its words are BM25's",
                        field_name(prefix, "query")
                    )));
                }
                if rerank.is_some() {
                    return Err(ApiError::invalid(format!(
                        "{field} and {rfield} do not go together"
                    )));
                }
                Some(hybrid_spec(v, &field)?)
            }
        };
        Ok(SearchRequest {
            input,
            k,
            spec,
            filter,
            rerank,
            timeout,
            partial,
            hybrid,
        })
    }
}

/// `"hybrid": {"lexical_weight": 0.3, "fusion": "linear"}` (both optional: 0.5, linear).
fn hybrid_spec(v: &Value, field: &str) -> Result<HybridSpec, ApiError> {
    let obj = v.as_object().ok_or_else(|| {
        ApiError::invalid(format!(
            "{field} must be an object such as {{\"lexical_weight\": 0.3, \"fusion\": \"linear\"}}, got {v}"
        ))
    })?;
    if let Some(unknown) = obj
        .keys()
        .find(|k| !["lexical_weight", "fusion"].contains(&k.as_str()))
    {
        return Err(ApiError::invalid(format!(
            "unknown field \"{field}.{unknown}\" (expected lexical_weight, fusion)"
        )));
    }
    let mut spec = HybridSpec::default();
    if let Some(w) = obj.get("lexical_weight") {
        spec.lexical_weight = w.as_f64().map(|w| w as f32).ok_or_else(|| {
            ApiError::invalid(format!(
                "{field}.lexical_weight must be a number in [0, 1], got {w}"
            ))
        })?;
    }
    if let Some(f) = obj.get("fusion") {
        let name = f.as_str().ok_or_else(|| {
            ApiError::invalid(format!(
                "{field}.fusion must be \"linear\" or \"rrf\", got {f}"
            ))
        })?;
        spec.fusion = name
            .parse()
            .map_err(|e: bmp_lexical::Error| ApiError::invalid(format!("{field}.fusion: {e}")))?;
    }
    HybridSpec::new(spec.lexical_weight, spec.fusion)
        .map_err(|e| ApiError::invalid(format!("{field}.lexical_weight: {e}")))
}

fn text_query(v: &Value, config: &ServerConfig, prefix: &str) -> Result<String, ApiError> {
    let field = field_name(prefix, "query");
    let text = v
        .as_str()
        .ok_or_else(|| ApiError::invalid(format!("{field} must be a string, got {v}")))?;
    if text.trim().is_empty() {
        return Err(ApiError::invalid(format!("{field} must not be blank")));
    }
    if text.len() > config.max_text_bytes {
        return Err(ApiError::invalid(format!(
            "{field} has {} bytes, more than the limit of {}",
            text.len(),
            config.max_text_bytes
        )));
    }
    Ok(text.to_string())
}

fn vector_query(
    v: &Value,
    config: &ServerConfig,
    prefix: &str,
) -> Result<Vec<(String, f32)>, ApiError> {
    let vfield = field_name(prefix, "vector");
    let vector = v.as_object().ok_or_else(|| {
        ApiError::invalid(format!(
            "{vfield} must be an object mapping terms to weights"
        ))
    })?;
    if vector.is_empty() {
        return Err(ApiError::invalid(format!("{vfield} must not be empty")));
    }
    if vector.len() > config.max_query_terms {
        return Err(ApiError::invalid(format!(
            "{vfield} has {} terms, more than the limit of {}",
            vector.len(),
            config.max_query_terms
        )));
    }
    let mut entries = Vec::with_capacity(vector.len());
    for (term, w) in vector {
        let x = w.as_f64().ok_or_else(|| {
            ApiError::invalid(format!("{vfield}[{term:?}] must be a number, got {w}"))
        })?;
        let x32 = x as f32;
        if !x32.is_finite() || x32 < 0.0 {
            return Err(ApiError::invalid(format!(
                "{vfield}[{term:?}] must be a finite weight >= 0, got {x}"
            )));
        }
        entries.push((term.clone(), x32));
    }
    Ok(entries)
}

fn filter_ids(v: &Value, prefix: &str) -> Result<Vec<String>, ApiError> {
    let field = field_name(prefix, "filter");
    let ids = v.as_array().ok_or_else(|| {
        ApiError::invalid(format!("{field} must be an array of document ids, got {v}"))
    })?;
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            id.as_str().map(str::to_string).ok_or_else(|| {
                ApiError::invalid(format!("{field}[{i}] must be a string, got {id}"))
            })
        })
        .collect()
}

/// A document to add: its id and its `(term, weight)` entries.
pub type DocumentInput = (String, Vec<(String, f32)>);

/// Validates a write body `{"documents": [{"id": "...", "vector": {"term": weight}}, ...]}`:
/// the documents as `(id, entries)`, weights finite and at least 0, ids unique.
///
/// A document may give its `text` instead of its `vector`: it is returned with no entries, and
/// its index and text in the second list, for the server's model to encode.
pub fn parse_documents(v: &Value) -> Result<ParsedDocuments, ApiError> {
    let obj = object(v, "the body")?;
    if let Some(k) = obj.keys().find(|k| k.as_str() != "documents") {
        return Err(ApiError::invalid(format!("unknown field {k:?}")));
    }
    let docs = obj
        .get("documents")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::invalid("documents must be an array of documents"))?;
    if docs.is_empty() {
        return Err(ApiError::invalid("documents must not be empty"));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(docs.len());
    let mut texts = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        let prefix = format!("documents[{i}]");
        let d = object(d, &prefix)?;
        if let Some(k) = d
            .keys()
            .find(|k| !matches!(k.as_str(), "id" | "vector" | "text"))
        {
            return Err(ApiError::invalid(format!("{prefix}: unknown field {k:?}")));
        }
        let id = d
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid(format!("{prefix}.id must be a string")))?;
        bmp_index::collection::check_id("document", id)
            .map_err(|e| ApiError::invalid(format!("{prefix}.id: {e}")))?;
        if !seen.insert(id) {
            return Err(ApiError::invalid(format!(
                "{prefix}.id: {id:?} appears twice in the request"
            )));
        }
        let vector = match (d.get("vector"), d.get("text")) {
            (Some(vector), None) => vector,
            (None, Some(text)) => {
                let text = text
                    .as_str()
                    .filter(|t| !t.trim().is_empty())
                    .ok_or_else(|| {
                        ApiError::invalid(format!("{prefix}.text must be a non-blank string"))
                    })?;
                texts.push((i, text.to_string()));
                out.push((id.to_string(), Vec::new()));
                continue;
            }
            (Some(_), Some(_)) => {
                return Err(ApiError::invalid(format!(
                    "{prefix}: give vector or text, not both"
                )))
            }
            (None, None) => {
                return Err(ApiError::invalid(format!(
                    "{prefix}.vector is missing (or give its text, to a server with a model)"
                )))
            }
        };
        let map = vector.as_object().ok_or_else(|| {
            ApiError::invalid(format!(
                "{prefix}.vector must be an object mapping terms to weights"
            ))
        })?;
        let mut entries = Vec::with_capacity(map.len());
        for (term, w) in map {
            let x = w
                .as_f64()
                .filter(|x| x.is_finite() && *x >= 0.0 && (*x as f32).is_finite());
            let x = x.ok_or_else(|| {
                ApiError::invalid(format!(
                    "{prefix}.vector[{term:?}] must be a finite weight >= 0, got {w}"
                ))
            })?;
            entries.push((term.clone(), x as f32));
        }
        out.push((id.to_string(), entries));
    }
    Ok((out, texts))
}

/// The documents of an add request, and the `(index, text)` of those given as text.
pub type ParsedDocuments = (Vec<DocumentInput>, Vec<(usize, String)>);

/// The query string of the write routes: `?refresh=true` answers only once the write is visible
/// to searches.
#[derive(Debug, Clone, Copy, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteParams {
    /// Make the write visible before answering.
    #[serde(default)]
    pub refresh: bool,
}

/// `POST /v1/refresh`: what is served once every write acknowledged before is visible.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefreshResponse {
    /// The generation now served (0 for an index file).
    pub generation: u64,
    /// Segments now served.
    pub segments: usize,
    /// Live documents now served.
    pub documents: u64,
}

/// Validates a delete body `{"ids": ["...", ...]}`.
pub fn parse_delete(v: &Value) -> Result<Vec<String>, ApiError> {
    let obj = object(v, "the body")?;
    if let Some(k) = obj.keys().find(|k| k.as_str() != "ids") {
        return Err(ApiError::invalid(format!("unknown field {k:?}")));
    }
    let ids = obj
        .get("ids")
        .and_then(Value::as_array)
        .ok_or_else(|| ApiError::invalid("ids must be an array of document ids"))?;
    ids.iter()
        .enumerate()
        .map(|(i, id)| {
            id.as_str()
                .map(str::to_string)
                .ok_or_else(|| ApiError::invalid(format!("ids[{i}] must be a string, got {id}")))
        })
        .collect()
}

/// `POST /v1/documents`: what the write did, once it is durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddResponse {
    /// Documents added.
    pub added: u64,
    /// Live documents they replaced (same id).
    pub replaced: u64,
    /// Whether searches see the write already (`?refresh=true`, or a refresh that fell due);
    /// otherwise they do within the server's refresh interval.
    pub visible: bool,
    /// The collection's generation now served.
    pub generation: u64,
    /// Segments now.
    pub segments: usize,
    /// Milliseconds the write took.
    pub took_ms: u64,
}

/// `POST /v1/documents/delete` and `DELETE /v1/documents/{id}`: what the delete did, once it is
/// durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeleteResponse {
    /// Live documents deleted.
    pub deleted: u64,
    /// Ids that named no live document.
    pub missing: u64,
    /// Whether searches see the delete already (see [`AddResponse::visible`]).
    pub visible: bool,
    /// The collection's generation now served.
    pub generation: u64,
}

/// Validates a batch body `{"queries": [...]}` against `config`.
pub fn parse_batch(v: &Value, config: &ServerConfig) -> Result<Vec<BatchQuery>, ApiError> {
    let obj = object(v, "request body")?;
    if let Some(unknown) = obj.keys().find(|k| k.as_str() != "queries") {
        return Err(ApiError::invalid(format!(
            "unknown field {unknown:?} (expected: queries)"
        )));
    }
    let queries = obj
        .get("queries")
        .ok_or_else(|| ApiError::invalid("missing field queries"))?
        .as_array()
        .ok_or_else(|| ApiError::invalid("queries must be an array"))?;
    if queries.is_empty() {
        return Err(ApiError::invalid("queries must not be empty"));
    }
    if queries.len() > config.max_batch {
        return Err(ApiError::invalid(format!(
            "queries has {} entries, more than the limit of {}",
            queries.len(),
            config.max_batch
        )));
    }
    queries
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let prefix = format!("queries[{i}]");
            let request = SearchRequest::from_json(q, config, &prefix, &["id"])?;
            let id = match q.get("id") {
                None => None,
                Some(id @ (Value::String(_) | Value::Number(_))) => Some(id.clone()),
                Some(other) => {
                    return Err(ApiError::invalid(format!(
                        "{prefix}.id must be a string or a number, got {other}"
                    )))
                }
            };
            Ok(BatchQuery { id, request })
        })
        .collect()
}

/// One hit of a response.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HitOut {
    /// The document's external id.
    pub id: String,
    /// The first-stage score in the model's units: the dot product of the query's and the
    /// document's weights, as quantized (`raw_score` times the query's and the index's scales);
    /// for a hybrid query, its fused score.
    pub score: f64,
    /// The integer score the index ranks by: the sum of quantized query weight times impact
    /// (absent for a hybrid query fused by reciprocal rank, which ranks by `score`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_score: Option<u32>,
    /// 1-based rank.
    pub rank: usize,
    /// With `rerank`: the Chamfer score of a reranked hit (absent for hits past the depth).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerank_score: Option<f32>,
}

/// The answer to one query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchResponse {
    /// The hits, best first.
    pub hits: Vec<HitOut>,
    /// Microseconds spent resolving and answering the query.
    pub took_us: u64,
    /// The processor that answered, with its parameters (e.g. `bmp`, `bmp:alpha=0.9`).
    pub algorithm: String,
    /// The requested `k`.
    pub k: usize,
    /// Query terms not in the index vocabulary (ignored).
    pub unknown_terms: usize,
    /// With a `filter`: how many of its ids name no document of the index (ignored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unknown_filter_ids: Option<usize>,
    /// For a text query: microseconds spent encoding it (included in `took_us`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encode_us: Option<u64>,
    /// With `rerank`: microseconds spent embedding the query and reranking (included in
    /// `took_us`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerank_us: Option<u64>,
    /// Whether the search stopped at its time budget (only with `"partial": true`): the hits
    /// are then the best of the documents scored so far, not necessarily the top-k.
    pub partial: bool,
}

/// The answer to one query of a batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchResult {
    /// The client's id, if it gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Value>,
    /// The answer.
    #[serde(flatten)]
    pub response: SearchResponse,
}

/// The answer to a batch: one result per query, in request order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BatchResponse {
    /// The results.
    pub results: Vec<BatchResult>,
}

/// `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthResponse {
    /// Always `ok` when the server answers.
    pub status: &'static str,
    /// Live documents served.
    pub documents: u64,
}

/// `GET /v1/stats`: the served index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatsResponse {
    /// Live documents.
    pub documents: u64,
    /// Vocabulary size (summed over the segments of a collection).
    pub terms: u64,
    /// Postings.
    pub postings: u64,
    /// Documents per block.
    pub block_size: u32,
    /// Blocks.
    pub blocks: u64,
    /// Index file size in bytes (of every segment of a collection).
    pub file_bytes: u64,
    /// Segments, when serving a collection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segments: Option<usize>,
    /// The manifest generation served, when serving a collection.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation: Option<u64>,
    /// The text encoder, when the server takes text queries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The multi-vector store and its model, when the server can rerank.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multivec: Option<String>,
}

/// `POST /v1/admin/reload`: the index now served.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReloadResponse {
    /// Always `reloaded`.
    pub status: &'static str,
    /// Index file or collection directory path.
    pub path: String,
    /// Live documents.
    pub documents: u64,
    /// Milliseconds spent opening and verifying the index.
    pub took_ms: u64,
}

/// Validates a reload body: empty, `{}` or `{"index": "path"}`. Returns the path, if given.
pub fn parse_reload(body: &[u8]) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let v = parse_json(body)?;
    let obj = object(&v, "request body")?;
    if let Some(unknown) = obj.keys().find(|k| k.as_str() != "index") {
        return Err(ApiError::invalid(format!(
            "unknown field {unknown:?} (expected: index)"
        )));
    }
    match obj.get("index") {
        None => Ok(None),
        Some(Value::String(p)) if !p.is_empty() => Ok(Some(p.clone())),
        Some(other) => Err(ApiError::invalid(format!(
            "index must be a non-empty path string, got {other}"
        ))),
    }
}

/// `PUT /v1/collections/{name}`: the new collection's block and superblock sizes (an empty body
/// takes the defaults).
pub fn parse_create(body: &[u8]) -> Result<bmp_index::build::BuildOptions, ApiError> {
    let mut options = bmp_index::build::BuildOptions::default();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(options);
    }
    let v = parse_json(body)?;
    let obj = object(&v, "request body")?;
    for (key, value) in obj {
        let slot = match key.as_str() {
            "block_size" => &mut options.block_size,
            "superblock_size" => &mut options.superblock_size,
            _ => {
                return Err(ApiError::invalid(format!(
                    "unknown field {key:?} (expected: block_size, superblock_size)"
                )))
            }
        };
        *slot = value
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| {
                ApiError::invalid(format!("{key} must be a positive integer, got {value}"))
            })?;
    }
    bmp_index::format::validate_block_size(options.block_size)
        .map_err(|e| ApiError::invalid(format!("block_size: {e}")))?;
    bmp_index::format::validate_superblock_size(options.superblock_size)
        .map_err(|e| ApiError::invalid(format!("superblock_size: {e}")))?;
    Ok(options)
}

/// One collection of a server of several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollectionInfo {
    /// Its name, as in `/v1/collections/{name}/search`.
    pub name: String,
    /// Live documents served.
    pub documents: u64,
    /// Segments served.
    pub segments: usize,
    /// The manifest generation served.
    pub generation: u64,
    /// Whether it takes writes.
    pub writable: bool,
}

/// `GET /v1/collections`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CollectionsResponse {
    /// The collections served, by name.
    pub collections: Vec<CollectionInfo>,
}

/// `DELETE /v1/collections/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DroppedResponse {
    /// The collection dropped.
    pub dropped: String,
    /// The live documents it held.
    pub documents: u64,
}
