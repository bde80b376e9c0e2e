//! HTTP request bodies as the server parses them: a search, a batch, a reload. Each gives a
//! request or a 4xx error, never a panic.
#![no_main]

use bmp_server::api::{parse_batch, parse_json, parse_reload, SearchRequest};
use bmp_server::ServerConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let config = ServerConfig::default();
    let _ = parse_reload(data);
    let Ok(value) = parse_json(data) else {
        return;
    };
    if let Err(e) = SearchRequest::from_json(&value, &config, "", &[]) {
        assert!(e.status.is_client_error());
    }
    if let Err(e) = parse_batch(&value, &config) {
        assert!(e.status.is_client_error());
    }
});
