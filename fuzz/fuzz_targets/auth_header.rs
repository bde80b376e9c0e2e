//! `Authorization` header values as the server checks them against its API keys: a scope or a
//! 401 / 403, never a panic; a value that is not exactly `Bearer <a key>` is never accepted.
#![no_main]

use axum::http::{HeaderMap, HeaderValue};
use bmp_server::auth::{bearer_token, ApiKeys, Scope};
use libfuzzer_sys::fuzz_target;

const KEYS: &str = "read read-key-0123456789\nwrite write-key-0123456789\nadmin admin-key-0123456789\n";

fuzz_target!(|data: &[u8]| {
    let keys = ApiKeys::parse(KEYS, "keys").expect("the fuzz keys parse");
    let token = bearer_token(data);
    let scope = token.and_then(|t| keys.scope_of(t));
    if let Some(scope) = scope {
        let key = token.unwrap_or_default();
        assert!(key.ends_with(b"-key-0123456789"), "accepted {data:?} as {scope:?}");
    }
    let Ok(value) = HeaderValue::from_bytes(data) else {
        return;
    };
    let mut headers = HeaderMap::new();
    headers.insert(axum::http::header::AUTHORIZATION, value);
    for needed in [Scope::Read, Scope::Write, Scope::Admin] {
        match keys.check(&headers, needed) {
            Ok(granted) => assert!(granted >= needed && Some(granted) == scope),
            Err(e) => assert!(e.status == 401 || e.status == 403, "{e:?}"),
        }
    }
    // Key files too: a line or a list of lines, parsed or refused, never a panic.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ApiKeys::parse(text, "fuzz");
    }
});
