//! API keys: who may call which route.
//!
//! Each key has a scope: `read` (search, stats, listings, metrics, the OpenAPI document),
//! `write` (adds, deletes, refreshes; and what `read` may) or `admin` (reloads, creating and
//! dropping collections; and everything else). A request names its key as
//! `Authorization: Bearer <key>`; keys are compared in constant time, and never logged or shown.
//! `GET /v1/health` needs no key (for liveness probes). Without keys every route but the admin
//! routes is open, and the admin routes are not served at all.

use std::fmt;
use std::path::Path;

use axum::http::{HeaderMap, Method};

use crate::error::ApiError;

/// What a key may do; each scope includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// Search and read what is served.
    Read,
    /// Read, and add, delete and refresh documents.
    Write,
    /// Everything: reloads, creating and dropping collections.
    Admin,
}

impl Scope {
    /// The scope's name in a keys file.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }

    fn parse(name: &str) -> Option<Scope> {
        match name {
            "read" => Some(Scope::Read),
            "write" => Some(Scope::Write),
            "admin" => Some(Scope::Admin),
            _ => None,
        }
    }

    /// The scope a request needs: `None` for a route anyone may call.
    pub fn required(method: &Method, route: &str) -> Option<Scope> {
        let tail = route
            .strip_prefix("/v1/collections/{collection}")
            .map(|t| format!("/v1{t}"));
        let route = tail.as_deref().unwrap_or(route);
        match (method.as_str(), route) {
            (_, "/v1/health") => None,
            // The collection itself: `GET` is its stats, `PUT` / `DELETE` create and drop it.
            ("PUT" | "DELETE", "/v1") => Some(Scope::Admin),
            (_, "/v1/admin/reload") => Some(Scope::Admin),
            (
                _,
                "/v1/documents" | "/v1/documents/delete" | "/v1/documents/{id}" | "/v1/refresh",
            ) => Some(Scope::Write),
            _ => Some(Scope::Read),
        }
    }
}

/// The shortest key accepted.
pub const MIN_KEY_LEN: usize = 16;

/// The environment variable that may hold the keys, in the keys file's format.
pub const KEYS_VARIABLE: &str = "BMP_API_KEYS";

/// The keys a server accepts, with their scopes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ApiKeys {
    keys: Vec<(Scope, Vec<u8>)>,
}

impl fmt::Debug for ApiKeys {
    /// Counts the keys of each scope; never shows a key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = |s: Scope| self.keys.iter().filter(|(k, _)| *k == s).count();
        f.debug_struct("ApiKeys")
            .field("read", &count(Scope::Read))
            .field("write", &count(Scope::Write))
            .field("admin", &count(Scope::Admin))
            .finish()
    }
}

impl ApiKeys {
    /// Parses keys: one `<scope> <key>` a line (`read`, `write` or `admin`; keys of at least
    /// [`MIN_KEY_LEN`] printable ASCII characters without spaces), blank lines and `#` comments
    /// ignored. `source` names the text in errors, which give the line but never the key.
    pub fn parse(text: &str, source: &str) -> Result<ApiKeys, String> {
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = format!("{source}:{}", i + 1);
            let mut fields = line.split_whitespace();
            let (Some(scope), Some(key), None) = (fields.next(), fields.next(), fields.next())
            else {
                return Err(format!(
                    "{at}: expected `<scope> <key>` (scope read, write or admin)"
                ));
            };
            let scope = Scope::parse(scope).ok_or_else(|| {
                format!("{at}: unknown scope {scope:?} (expected read, write or admin)")
            })?;
            if key.len() < MIN_KEY_LEN || !key.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(format!(
                    "{at}: a key must be at least {MIN_KEY_LEN} printable ASCII characters"
                ));
            }
            if keys
                .iter()
                .any(|(_, k): &(Scope, Vec<u8>)| k == key.as_bytes())
            {
                return Err(format!("{at}: this key is given twice"));
            }
            keys.push((scope, key.as_bytes().to_vec()));
        }
        if keys.is_empty() {
            return Err(format!("{source}: no keys"));
        }
        Ok(ApiKeys { keys })
    }

    /// Reads keys from the file `path` (see [`ApiKeys::parse`]).
    pub fn read(path: &Path) -> Result<ApiKeys, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        ApiKeys::parse(&text, &path.display().to_string())
    }

    /// Whether some key has the admin scope (the admin routes are served only then).
    pub fn has_admin(&self) -> bool {
        self.keys.iter().any(|(s, _)| *s == Scope::Admin)
    }

    /// The scope of `key`, if it is one of the keys. Every key is compared, each in constant
    /// time, so the time taken says nothing of how much of a key matched.
    pub fn scope_of(&self, key: &[u8]) -> Option<Scope> {
        self.find(key).map(|(_, scope)| scope)
    }

    /// How many keys there are.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys (never, for parsed ones).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The position and scope of `key` among the keys, compared as [`ApiKeys::scope_of`] does.
    fn find(&self, key: &[u8]) -> Option<(usize, Scope)> {
        let mut found = None;
        for (i, (scope, known)) in self.keys.iter().enumerate() {
            if constant_time_eq(known, key) {
                found = Some((i, *scope));
            }
        }
        found
    }

    /// Checks a request's `Authorization` header against `needed`: 401 without a valid key,
    /// 403 when its scope is too small. Returns the key's scope.
    pub fn check(&self, headers: &HeaderMap, needed: Scope) -> Result<Scope, ApiError> {
        self.identify(headers, needed).map(|(_, scope)| scope)
    }

    /// [`ApiKeys::check`], returning the key's position among the keys too (for its limits).
    pub fn identify(&self, headers: &HeaderMap, needed: Scope) -> Result<(usize, Scope), ApiError> {
        let header = headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::unauthorized(
                    "this server needs an API key: send `Authorization: Bearer <key>`",
                )
            })?;
        let key = bearer_token(header.as_bytes()).ok_or_else(|| {
            ApiError::unauthorized("the Authorization header must be `Bearer <key>`")
        })?;
        let (at, scope) = self
            .find(key)
            .ok_or_else(|| ApiError::unauthorized("the API key is not valid"))?;
        if scope < needed {
            return Err(ApiError::forbidden(format!(
                "this route needs a key of scope {}; this key's scope is {}",
                needed.name(),
                scope.name()
            )));
        }
        Ok((at, scope))
    }
}

/// The token of an `Authorization: Bearer <token>` header value (scheme case-insensitive).
pub fn bearer_token(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// Whether `a` equals `b`, in a time that depends on their lengths only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str =
        "# keys\nread  rrrrrrrrrrrrrrrr\n\nwrite wwwwwwwwwwwwwwww\nadmin aaaaaaaaaaaaaaaa\n";

    #[test]
    fn keys_have_their_scopes() {
        let keys = ApiKeys::parse(FILE, "keys").unwrap();
        assert_eq!(keys.scope_of(b"rrrrrrrrrrrrrrrr"), Some(Scope::Read));
        assert_eq!(keys.scope_of(b"wwwwwwwwwwwwwwww"), Some(Scope::Write));
        assert_eq!(keys.scope_of(b"aaaaaaaaaaaaaaaa"), Some(Scope::Admin));
        assert_eq!(keys.scope_of(b"aaaaaaaaaaaaaaab"), None);
        assert_eq!(keys.scope_of(b"aaaaaaaaaaaaaaa"), None);
        assert_eq!(keys.scope_of(b""), None);
        assert!(keys.has_admin());
        let shown = format!("{keys:?}");
        assert!(
            !shown.contains("rrrr") && shown.contains("read: 1"),
            "{shown}"
        );
    }

    #[test]
    fn bad_key_files_name_the_line_not_the_key() {
        for (text, needle) in [
            ("read short\n", "keys:1: a key must be"),
            ("\nowner xxxxxxxxxxxxxxxxx\n", "keys:2: unknown scope"),
            ("read xxxxxxxxxxxxxxxxx extra\n", "keys:1: expected"),
            (
                "read xxxxxxxxxxxxxxxxx\nadmin xxxxxxxxxxxxxxxxx\n",
                "keys:2: this key is given twice",
            ),
            ("# nothing\n", "keys: no keys"),
        ] {
            let e = ApiKeys::parse(text, "keys").unwrap_err();
            assert!(e.contains(needle), "{text:?}: {e}");
            assert!(!e.contains("xxxx"), "{e}");
        }
    }

    #[test]
    fn routes_need_their_scopes() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(Scope::required(&get, "/v1/health"), None);
        assert_eq!(Scope::required(&post, "/v1/search"), Some(Scope::Read));
        assert_eq!(Scope::required(&get, "/metrics"), Some(Scope::Read));
        assert_eq!(Scope::required(&post, "/v1/documents"), Some(Scope::Write));
        assert_eq!(
            Scope::required(
                &Method::DELETE,
                "/v1/collections/{collection}/documents/{id}"
            ),
            Some(Scope::Write)
        );
        assert_eq!(
            Scope::required(&post, "/v1/collections/{collection}/search"),
            Some(Scope::Read)
        );
        assert_eq!(
            Scope::required(&get, "/v1/collections/{collection}"),
            Some(Scope::Read)
        );
        assert_eq!(
            Scope::required(&Method::PUT, "/v1/collections/{collection}"),
            Some(Scope::Admin)
        );
        assert_eq!(
            Scope::required(&Method::DELETE, "/v1/collections/{collection}"),
            Some(Scope::Admin)
        );
        assert_eq!(
            Scope::required(&post, "/v1/admin/reload"),
            Some(Scope::Admin)
        );
        assert_eq!(Scope::required(&get, "/v1/collections"), Some(Scope::Read));
    }

    #[test]
    fn bearer_tokens_are_read_strictly() {
        assert_eq!(bearer_token(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer_token(b"Basic abc"), None);
        assert_eq!(bearer_token(b"Bearer "), None);
        assert_eq!(bearer_token(b"Bear"), None);
    }
}
