//! API errors and their JSON body `{"error": {"code": "...", "message": "..."}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// An error answered to the client: an HTTP status, a stable machine-readable code and a message
/// that names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable code, e.g. `invalid_request`, `malformed_json`, `payload_too_large`.
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
}

impl ApiError {
    /// An error with the given status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400 `invalid_request`: a well-formed body whose content is not acceptable.
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 401 `unauthorized`: no API key, or not a valid one (answered with
    /// `WWW-Authenticate: Bearer`).
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 429 `too_many_requests`: past a key's limits (answered with `Retry-After`).
    pub fn too_many(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message)
    }

    /// 403 `forbidden`: a valid API key whose scope does not cover the route.
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 400 `malformed_json`: the body is not JSON.
    pub fn malformed(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", message)
    }

    /// 413 `payload_too_large`.
    pub fn too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("request body exceeds the limit of {limit} bytes"),
        )
    }

    /// 404 `not_found`.
    pub fn not_found(path: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no route for {path}"),
        )
    }

    /// 405 `method_not_allowed`.
    pub fn method_not_allowed() -> Self {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed on this route",
        )
    }

    /// 503 `time_budget_exceeded`.
    pub fn timeout() -> Self {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "time_budget_exceeded",
            "the request did not finish within the server's time budget",
        )
    }

    /// 422 `reload_failed`: the index to reload could not be opened or verified; the served
    /// index is unchanged.
    pub fn reload_failed(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "reload_failed", message)
    }

    /// 409 `read_only`: a write to a server that does not take writes.
    pub fn read_only() -> Self {
        ApiError::new(
            StatusCode::CONFLICT,
            "read_only",
            "this server does not take writes: serve a collection directory with --writable",
        )
    }

    /// 404 `no_collection`: the server serves no collection of this name.
    pub fn no_collection(name: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_collection",
            format!("no collection is named {name:?} (GET /v1/collections lists them)"),
        )
    }

    /// 404 `no_collection`: an unnamed route of a server of several collections.
    pub fn name_a_collection() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_collection",
            "this server serves several collections: name one, as in \
             /v1/collections/{name}/search (GET /v1/collections lists them)",
        )
    }

    /// 404 `no_collections`: a collection route of a server of one index or collection.
    pub fn no_collections() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_collections",
            "this server serves one index at /v1/search: serve a directory of collections with \
             --collections to create and name collections",
        )
    }

    /// 409 `collection_exists`: a collection (or a file) of this name exists already.
    pub fn collection_exists(name: &str) -> Self {
        ApiError::new(
            StatusCode::CONFLICT,
            "collection_exists",
            format!("a collection named {name:?} exists already"),
        )
    }

    /// 404 `no_document`: no live document has this id.
    pub fn no_document(id: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "no_document",
            format!("no live document has the id {id:?}"),
        )
    }

    /// 500 `write_failed`: a write that could not be made durable; nothing of it is visible.
    pub fn write_failed(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "write_failed", message)
    }

    /// 400 `no_model`: a text query to a server without an encoder.
    pub fn no_model(field: &str) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "no_model",
            format!(
                "{field} is text, but this server has no model to encode it (start it with --model, or send a \"vector\")"
            ),
        )
    }

    /// 500 `internal`.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Detail<'a>,
}

#[derive(Serialize)]
struct Detail<'a> {
    code: &'a str,
    message: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            error: Detail {
                code: self.code,
                message: &self.message,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// The message of an index error, its file named without the directories it lies in: answers
/// other than the admin routes' name no filesystem path.
pub fn index_message(e: &bmp_index::Error) -> String {
    use bmp_index::Error;
    let name = |p: &std::path::Path| {
        p.file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
    };
    match e {
        Error::Io { path, error } => format!("{}: {error}", name(path)),
        Error::Parse {
            path,
            line,
            message,
        } => format!("{}:{line}: {message}", name(path)),
        Error::Input { path, message } => format!("{}: {message}", name(path)),
        Error::Corrupt { path, message } => format!("{}: corrupt index: {message}", name(path)),
        Error::Version {
            path,
            found,
            expected,
        } => format!(
            "{}: index format version {found}, this build reads version {expected}",
            name(path)
        ),
        Error::Invalid(m) => m.clone(),
    }
}
