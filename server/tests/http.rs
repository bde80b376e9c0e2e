//! The HTTP API end to end: a real index in a temp dir, the real server on an ephemeral port, a
//! real HTTP client. Answers must equal what `bmp_query` returns in-process. (Text queries with
//! the real SPLADE model are tested through the `bmp-index serve` binary in the root crate; here
//! a word-splitting encoder checks their plumbing.)

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bmp_index::build::{build_index, BuildOptions};
use bmp_index::{Collection, Index};
use bmp_query::{DocFilter, Query, SearchSpec};
use bmp_server::{AppState, QueryEncoder, ServerConfig};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

/// A deterministic pseudo-random collection of `n` documents over terms t0..t39, ids
/// `{prefix}{i}`.
fn build(dir: &Path, name: &str, prefix: &str, n: usize, seed: u64) -> PathBuf {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = move |m: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % m
    };
    let mut c = Collection::new();
    for i in 0..n {
        let len = 1 + next(10);
        let mut terms: Vec<u64> = (0..len).map(|_| next(40)).collect();
        terms.sort_unstable();
        terms.dedup();
        let entries: Vec<(u32, f32)> = terms
            .iter()
            .map(|&t| {
                (
                    c.intern_term(&format!("t{t}")),
                    (1 + next(50)) as f32 / 10.0,
                )
            })
            .collect();
        c.add_document(&format!("{prefix}{i}"), &entries).unwrap();
    }
    let path = dir.join(name);
    build_index(
        &c,
        &path,
        &BuildOptions::with_block_size(16),
        &mut |_, _, _| {},
    )
    .unwrap();
    path
}

struct Server {
    base: String,
    state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(index: &Path, config: ServerConfig) -> Server {
        Server::with_state(AppState::open(index, config).unwrap()).await
    }

    async fn with_state(state: AppState) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(bmp_server::serve(listener, state.clone(), async move {
            let _ = rx.await;
        }));
        Server {
            base,
            state,
            stop: Some(tx),
            task,
        }
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server shuts down")
            .unwrap()
            .unwrap();
    }
}

async fn post(client: &reqwest::Client, url: &str, body: String) -> (u16, Value) {
    let r = client
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn get(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = client.get(url).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// The keys of the servers that need some: one of each scope.
const KEYS: &str =
    "read read-key-0123456789\nwrite write-key-0123456789\nadmin admin-key-0123456789\n";
const READ_KEY: &str = "read-key-0123456789";
const WRITE_KEY: &str = "write-key-0123456789";
const ADMIN_KEY: &str = "admin-key-0123456789";

/// The default configuration with [`KEYS`], reloads allowed in `data_dir`.
fn keyed_config(data_dir: &Path) -> ServerConfig {
    ServerConfig {
        keys: Some(bmp_server::ApiKeys::parse(KEYS, "test keys").unwrap()),
        data_dir: Some(data_dir.to_path_buf()),
        ..ServerConfig::default()
    }
}

/// A client that sends `key` with every request.
fn keyed_client(key: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        format!("Bearer {key}").parse().unwrap(),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

/// In-process answer: `[(id, score)]`, and the unknown-term count.
fn expected(index: &Index, vector: &Value, k: usize, spec: &str) -> (Vec<(String, u64)>, usize) {
    expected_filtered(index, vector, k, spec, None)
}

/// In-process answer restricted to the documents named in `filter`.
fn expected_filtered(
    index: &Index,
    vector: &Value,
    k: usize,
    spec: &str,
    filter: Option<&[&str]>,
) -> (Vec<(String, u64)>, usize) {
    let entries: Vec<(String, f32)> = vector
        .as_object()
        .unwrap()
        .iter()
        .map(|(t, w)| (t.clone(), w.as_f64().unwrap() as f32))
        .collect();
    let spec: SearchSpec = spec.parse().unwrap();
    let query = Query::from_entries(index, &entries).unwrap();
    let filter: Option<DocFilter> = filter.map(|ids| {
        (0..index.num_docs())
            .filter(|&d| ids.contains(&index.doc_id(d).unwrap()))
            .collect()
    });
    let hits = spec
        .searcher(index)
        .search_filtered(&query, k, filter.as_ref())
        .unwrap();
    let hits = hits
        .iter()
        .map(|h| (index.doc_id(h.doc).unwrap().to_string(), u64::from(h.score)))
        .collect();
    (hits, query.unknown_terms)
}

fn hits_of(response: &Value) -> Vec<(String, u64)> {
    response["hits"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            assert_eq!(h["rank"].as_u64().unwrap(), i as u64 + 1);
            (
                h["id"].as_str().unwrap().to_string(),
                h["raw_score"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn queries() -> Vec<Value> {
    vec![
        json!({"t1": 1.0}),
        json!({"t3": 0.5, "t7": 2.25, "t11": 1.0}),
        json!({"t0": 0.1, "t5": 0.2, "t9": 0.3, "t20": 3.0, "t39": 1.5, "zzz": 1.0}),
        json!({"t2": 1.0, "t4": 1.0, "t6": 1.0, "t8": 1.0}),
        json!({"nope": 1.0}),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_matches_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), "a.bmp", "a", 700, 1);
    let server = Server::start(&path, ServerConfig::default()).await;
    let index = Index::open(&path).unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}/v1/search", server.base);
    for vector in queries() {
        for (algorithm, extra, spec) in [
            ("exhaustive", json!({}), "exhaustive"),
            ("bmp", json!({}), "bmp"),
            (
                "bmp",
                json!({"alpha": 0.8, "beta": 0.5}),
                "bmp:alpha=0.8:beta=0.5",
            ),
            ("maxscore", json!({}), "maxscore"),
            ("bmw", json!({}), "bmw"),
            ("sp", json!({}), "sp"),
            ("sp", json!({"mu": 0.8, "eta": 0.5}), "sp:mu=0.8:eta=0.5"),
        ] {
            for k in [1usize, 10, 100] {
                let mut body = json!({"vector": vector, "k": k, "algorithm": algorithm});
                for (key, v) in extra.as_object().unwrap() {
                    body[key] = v.clone();
                }
                let (status, r) = post(&client, &url, body.to_string()).await;
                assert_eq!(status, 200, "{r}");
                let (want, unknown) = expected(&index, &vector, k, spec);
                assert_eq!(hits_of(&r), want, "{body}");
                assert_eq!(r["k"], json!(k));
                assert_eq!(r["algorithm"], json!(spec));
                assert_eq!(r["unknown_terms"], json!(unknown));
                assert!(r["took_us"].is_u64());
                assert_eq!(r["partial"], json!(false));
            }
        }
    }
    // Defaults: k = 10, algorithm bmp.
    let (status, r) = post(&client, &url, json!({"vector": {"t1": 1.0}}).to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(r["k"], json!(10));
    assert_eq!(r["algorithm"], json!("bmp"));
    assert_eq!(
        hits_of(&r),
        expected(&index, &json!({"t1": 1.0}), 10, "bmp").0
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_health_stats() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), "a.bmp", "a", 300, 2);
    let server = Server::start(&path, ServerConfig::default()).await;
    let index = Index::open(&path).unwrap();
    let client = reqwest::Client::new();

    let qs = queries();
    let body = json!({"queries": [
        {"id": "q1", "vector": qs[0], "k": 5},
        {"vector": qs[1], "algorithm": "exhaustive"},
        {"id": 7, "vector": qs[2], "k": 3, "algorithm": "bmp", "alpha": 0.9},
    ]});
    let (status, r) = post(
        &client,
        &format!("{}/v1/search/batch", server.base),
        body.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["id"], json!("q1"));
    assert!(results[1].get("id").is_none());
    assert_eq!(results[2]["id"], json!(7));
    assert_eq!(hits_of(&results[0]), expected(&index, &qs[0], 5, "bmp").0);
    assert_eq!(
        hits_of(&results[1]),
        expected(&index, &qs[1], 10, "exhaustive").0
    );
    assert_eq!(
        hits_of(&results[2]),
        expected(&index, &qs[2], 3, "bmp:alpha=0.9").0
    );
    assert_eq!(results[2]["algorithm"], json!("bmp:alpha=0.9"));

    let (status, h) = get(&client, &format!("{}/v1/health", server.base)).await;
    assert_eq!(status, 200);
    assert_eq!(h, json!({"status": "ok", "documents": 300}));

    let (status, s) = get(&client, &format!("{}/v1/stats", server.base)).await;
    assert_eq!(status, 200);
    assert_eq!(s["documents"], json!(index.num_docs()));
    assert_eq!(s["terms"], json!(index.num_terms()));
    assert_eq!(s["postings"], json!(index.num_postings()));
    assert_eq!(s["block_size"], json!(16));
    assert_eq!(s["blocks"], json!(index.num_blocks()));
    assert_eq!(
        s["file_bytes"],
        json!(std::fs::metadata(&path).unwrap().len())
    );
    // No filesystem path outside the admin routes.
    assert!(s.get("path").is_none(), "{s}");
    assert!(
        !s.to_string().contains(&*dir.path().to_string_lossy()),
        "{s}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_json_and_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), "a.bmp", "a", 100, 3);
    let config = ServerConfig {
        max_body_bytes: 4096,
        max_k: 50,
        max_query_terms: 3,
        max_batch: 2,
        max_text_bytes: 500,
        ..ServerConfig::default()
    };
    let server = Server::start(&path, config).await;
    let client = reqwest::Client::new();
    let search = format!("{}/v1/search", server.base);
    let batch = format!("{}/v1/search/batch", server.base);
    let v = r#""vector": {"t1": 1}"#;
    let cases: Vec<(&str, String, u16, &str, &str)> = vec![
        (&search, "{not json".into(), 400, "malformed_json", "JSON"),
        (&search, "".into(), 400, "malformed_json", "JSON"),
        (
            &search,
            "[1]".into(),
            400,
            "invalid_request",
            "request body",
        ),
        (
            &search,
            format!(r#"{{{v}, "kk": 3}}"#),
            400,
            "invalid_request",
            "kk",
        ),
        (
            &search,
            format!(r#"{{{v}, "timeout_ms": 0}}"#),
            400,
            "invalid_request",
            "timeout_ms must be a positive integer",
        ),
        (
            &search,
            format!(r#"{{{v}, "partial": "yes"}}"#),
            400,
            "invalid_request",
            "partial must be true or false",
        ),
        (
            &batch,
            format!(r#"{{"queries": [{{{v}, "timeout_ms": -5}}]}}"#),
            400,
            "invalid_request",
            "queries[0].timeout_ms",
        ),
        (
            &search,
            r#"{"k": 3}"#.into(),
            400,
            "invalid_request",
            "vector",
        ),
        (
            &search,
            r#"{"vector": []}"#.into(),
            400,
            "invalid_request",
            "vector",
        ),
        (
            &search,
            r#"{"vector": {}}"#.into(),
            400,
            "invalid_request",
            "vector",
        ),
        (
            &search,
            r#"{"vector": {"t1": "x"}}"#.into(),
            400,
            "invalid_request",
            "vector[\"t1\"]",
        ),
        (
            &search,
            r#"{"vector": {"t1": -1}}"#.into(),
            400,
            "invalid_request",
            "vector[\"t1\"]",
        ),
        (
            &search,
            r#"{"vector": {"t1": 1e39}}"#.into(),
            400,
            "invalid_request",
            "vector[\"t1\"]",
        ),
        (
            &search,
            r#"{"vector": {"t1": NaN}}"#.into(),
            400,
            "malformed_json",
            "JSON",
        ),
        (
            &search,
            r#"{"vector": {"t1": 1e400}}"#.into(),
            400,
            "malformed_json",
            "JSON",
        ),
        (
            &search,
            r#"{"vector": {"a": 1, "b": 1, "c": 1, "d": 1}}"#.into(),
            400,
            "invalid_request",
            "vector",
        ),
        (
            &search,
            format!(r#"{{{v}, "k": 0}}"#),
            400,
            "invalid_request",
            "k must",
        ),
        (
            &search,
            format!(r#"{{{v}, "k": 51}}"#),
            400,
            "invalid_request",
            "k must",
        ),
        (
            &search,
            format!(r#"{{{v}, "k": -1}}"#),
            400,
            "invalid_request",
            "k must",
        ),
        (
            &search,
            format!(r#"{{{v}, "k": 2.5}}"#),
            400,
            "invalid_request",
            "k must",
        ),
        (
            &search,
            format!(r#"{{{v}, "k": "3"}}"#),
            400,
            "invalid_request",
            "k must",
        ),
        (
            &search,
            format!(r#"{{{v}, "algorithm": "fast"}}"#),
            400,
            "invalid_request",
            "algorithm",
        ),
        (
            &search,
            format!(r#"{{{v}, "algorithm": 1}}"#),
            400,
            "invalid_request",
            "algorithm",
        ),
        (
            &search,
            format!(r#"{{{v}, "alpha": 0}}"#),
            400,
            "invalid_request",
            "alpha",
        ),
        (
            &search,
            format!(r#"{{{v}, "alpha": 1.5}}"#),
            400,
            "invalid_request",
            "alpha",
        ),
        (
            &search,
            format!(r#"{{{v}, "beta": -0.5}}"#),
            400,
            "invalid_request",
            "beta",
        ),
        (
            &search,
            format!(r#"{{{v}, "beta": "x"}}"#),
            400,
            "invalid_request",
            "beta",
        ),
        (
            &search,
            format!(r#"{{{v}, "algorithm": "exhaustive", "alpha": 0.5}}"#),
            400,
            "invalid_request",
            "alpha",
        ),
        (
            &search,
            format!(r#"{{{v}, "mu": 0.5}}"#),
            400,
            "invalid_request",
            "mu applies only to algorithm \"sp\"",
        ),
        (
            &search,
            format!(r#"{{{v}, "algorithm": "sp", "eta": 2}}"#),
            400,
            "invalid_request",
            "eta must be in (0, 1]",
        ),
        (
            &search,
            format!(r#"{{"vector": {{"t{}": 1}}}}"#, "x".repeat(5000)),
            413,
            "payload_too_large",
            "4096",
        ),
        (
            &search,
            r#"{"query": "t1", "vector": {"t1": 1}}"#.into(),
            400,
            "invalid_request",
            "not both",
        ),
        (
            &search,
            r#"{"query": 5}"#.into(),
            400,
            "invalid_request",
            "query must be a string",
        ),
        (
            &search,
            r#"{"query": "  "}"#.into(),
            400,
            "invalid_request",
            "query must not be blank",
        ),
        (
            &search,
            r#"{"query": "t1 t2"}"#.into(),
            400,
            "no_model",
            "--model",
        ),
        (
            &search,
            format!(r#"{{"query": "{}"}}"#, "w ".repeat(300)),
            400,
            "invalid_request",
            "query has 600 bytes",
        ),
        (
            &search,
            format!(r#"{{{v}, "filter": "a1"}}"#),
            400,
            "invalid_request",
            "filter must be an array",
        ),
        (
            &search,
            format!(r#"{{{v}, "filter": ["a1", 2]}}"#),
            400,
            "invalid_request",
            "filter[1]",
        ),
        (
            &batch,
            format!(r#"{{"queries": [{{{v}}}, {{"query": "t1"}}]}}"#),
            400,
            "no_model",
            "queries[1].query",
        ),
        (
            &batch,
            r#"{"queries": []}"#.into(),
            400,
            "invalid_request",
            "queries",
        ),
        (
            &batch,
            r#"{"queries": {}}"#.into(),
            400,
            "invalid_request",
            "queries",
        ),
        (
            &batch,
            r#"{"q": []}"#.into(),
            400,
            "invalid_request",
            "\"q\"",
        ),
        (
            &batch,
            format!(r#"{{"queries": [{{{v}}}, {{{v}}}, {{{v}}}]}}"#),
            400,
            "invalid_request",
            "queries",
        ),
        (
            &batch,
            format!(r#"{{"queries": [{{{v}}}, {{{v}, "k": 0}}]}}"#),
            400,
            "invalid_request",
            "queries[1].k",
        ),
        (
            &batch,
            format!(r#"{{"queries": [{{{v}, "id": [1]}}]}}"#),
            400,
            "invalid_request",
            "queries[0].id",
        ),
        (
            &batch,
            format!(r#"{{"queries": [{{{v}, "zz": 1}}]}}"#),
            400,
            "invalid_request",
            "queries[0].zz",
        ),
    ];
    for (url, body, status, code, field) in cases {
        let (got, r) = post(&client, url, body.clone()).await;
        let shown: String = body.chars().take(80).collect();
        assert_eq!(got, status, "{shown}: {r}");
        assert_eq!(r["error"]["code"], json!(code), "{shown}: {r}");
        let message = r["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(field),
            "{shown}: {message:?} should name {field:?}"
        );
    }

    let (status, r) = get(&client, &format!("{}/v1/nothing", server.base)).await;
    assert_eq!(status, 404);
    assert_eq!(r["error"]["code"], json!("not_found"));
    assert!(r["error"]["message"]
        .as_str()
        .unwrap()
        .contains("/v1/nothing"));
    let (status, r) = get(&client, &search).await;
    assert_eq!(status, 405);
    assert_eq!(r["error"]["code"], json!("method_not_allowed"));
    // The server is still up after all of that.
    let (status, _) = get(&client, &format!("{}/v1/health", server.base)).await;
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_get_correct_answers() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), "a.bmp", "a", 500, 4);
    let config = ServerConfig {
        blocking_threads: 3,
        ..ServerConfig::default()
    };
    let server = Server::start(&path, config).await;
    let index = Index::open(&path).unwrap();
    let qs = queries();
    let want: Vec<_> = qs
        .iter()
        .map(|q| expected(&index, q, 20, "bmp").0)
        .collect();
    let url = format!("{}/v1/search", server.base);
    let mut tasks = Vec::new();
    for t in 0..8 {
        let (url, qs, want) = (url.clone(), qs.clone(), want.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for i in 0..50 {
                let j = (t + i) % qs.len();
                let body = json!({"vector": qs[j], "k": 20}).to_string();
                let (status, r) = post(&client, &url, body).await;
                assert_eq!(status, 200);
                assert_eq!(hits_of(&r), want[j]);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_swaps_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let a = build(dir.path(), "a.bmp", "a", 200, 5);
    let b = build(dir.path(), "b.bmp", "b", 300, 6);
    let server = Server::start(&a, ServerConfig::default()).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/search", server.base);
    let body = json!({"vector": {"t1": 1.0, "t2": 0.5}, "k": 50}).to_string();
    let want_a = expected(
        &Index::open(&a).unwrap(),
        &json!({"t1": 1.0, "t2": 0.5}),
        50,
        "bmp",
    )
    .0;
    let want_b = expected(
        &Index::open(&b).unwrap(),
        &json!({"t1": 1.0, "t2": 0.5}),
        50,
        "bmp",
    )
    .0;
    assert_ne!(want_a, want_b);

    let (_, r) = post(&client, &url, body.clone()).await;
    assert_eq!(hits_of(&r), want_a);

    // A failed reload keeps the old index.
    let missing = dir.path().join("missing.bmp");
    assert!(server.state.target(None).unwrap().reload(&missing).is_err());
    std::fs::write(dir.path().join("junk.bmp"), b"not an index").unwrap();
    assert!(server
        .state
        .target(None)
        .unwrap()
        .reload(dir.path().join("junk.bmp"))
        .is_err());
    let (_, r) = post(&client, &url, body.clone()).await;
    assert_eq!(hits_of(&r), want_a);

    // Reload under load: every answer is wholly one index's, and after the swap only b's.
    let hammer = {
        let (url, body, want_a, want_b) =
            (url.clone(), body.clone(), want_a.clone(), want_b.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            for _ in 0..60 {
                let (status, r) = post(&client, &url, body.clone()).await;
                assert_eq!(status, 200);
                let hits = hits_of(&r);
                assert!(hits == want_a || hits == want_b, "mixed answer {hits:?}");
            }
        })
    };
    let state = server.state.clone();
    let b2 = b.clone();
    tokio::task::spawn_blocking(move || state.target(None).unwrap().reload(b2))
        .await
        .unwrap()
        .unwrap();
    let (_, r) = post(&client, &url, body.clone()).await;
    assert_eq!(hits_of(&r), want_b);
    hammer.await.unwrap();
    let (_, h) = get(&client, &format!("{}/v1/health", server.base)).await;
    assert_eq!(h["documents"], json!(300));
    let (_, s) = get(&client, &format!("{}/v1/stats", server.base)).await;
    assert_eq!(s["documents"], json!(300));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_restrict_to_the_named_documents() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), "a.bmp", "a", 900, 8);
    let server = Server::start(&path, ServerConfig::default()).await;
    let index = Index::open(&path).unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}/v1/search", server.base);
    let every_7th: Vec<String> = (0..900).step_by(7).map(|i| format!("a{i}")).collect();
    let few = ["a5", "a17", "a400", "a899", "a0"];
    let filters: Vec<Vec<&str>> = vec![
        every_7th.iter().map(String::as_str).collect(),
        few.to_vec(),
        vec!["a3", "nobody", "a3", "zz"],
        vec![],
    ];
    for filter in &filters {
        for vector in queries() {
            for spec in ["bmp", "exhaustive", "maxscore", "bmw", "sp"] {
                for k in [1usize, 10, 100] {
                    let body =
                        json!({"vector": vector, "k": k, "algorithm": spec, "filter": filter});
                    let (status, r) = post(&client, &url, body.to_string()).await;
                    assert_eq!(status, 200, "{r}");
                    let (want, _) = expected_filtered(&index, &vector, k, spec, Some(filter));
                    assert_eq!(hits_of(&r), want, "{body}");
                    let unknown = filter.iter().filter(|id| !id.starts_with('a')).count();
                    assert_eq!(r["unknown_filter_ids"], json!(unknown));
                }
            }
        }
    }
    // The filter changes the answer: without it the top hits are others.
    let body = json!({"vector": {"t1": 1.0}, "k": 5, "filter": few});
    let (_, r) = post(&client, &url, body.to_string()).await;
    assert!(hits_of(&r).iter().all(|(id, _)| few.contains(&id.as_str())));
    let (_, r) = post(
        &client,
        &url,
        json!({"vector": {"t1": 1.0}, "k": 5}).to_string(),
    )
    .await;
    assert!(r.get("unknown_filter_ids").is_none());
    assert!(hits_of(&r)
        .iter()
        .any(|(id, _)| !few.contains(&id.as_str())));
    server.stop().await;
}

/// Splits a text on whitespace; each word is a term of weight 1 (repeats add up).
struct Words;

impl QueryEncoder for Words {
    fn encode(&self, texts: &[String]) -> Result<Vec<Vec<(String, f32)>>, String> {
        Ok(texts
            .iter()
            .map(|t| t.split_whitespace().map(|w| (w.to_string(), 1.0)).collect())
            .collect())
    }

    fn describe(&self) -> String {
        "words".into()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_queries_go_through_the_encoder() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), "a.bmp", "a", 400, 9);
    let state = AppState::with_encoder(
        Index::open(&path).unwrap(),
        ServerConfig::default(),
        Some(Arc::new(Words)),
    )
    .unwrap();
    let server = Server::with_state(state).await;
    let index = Index::open(&path).unwrap();
    let client = reqwest::Client::new();
    let url = format!("{}/v1/search", server.base);
    let (status, r) = post(
        &client,
        &url,
        json!({"query": "t1 t3 t3 zz", "k": 7}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let vector = json!({"t1": 1.0, "t3": 2.0, "zz": 1.0});
    assert_eq!(hits_of(&r), expected(&index, &vector, 7, "bmp").0);
    assert_eq!(r["unknown_terms"], json!(1));
    assert!(r["encode_us"].is_u64());
    assert!(r["took_us"].as_u64() >= r["encode_us"].as_u64());

    // A batch mixing text and vectors keeps each query's own answer, in order.
    let body = json!({"queries": [
        {"id": "a", "query": "t2"},
        {"id": "b", "vector": {"t5": 1.0}},
        {"id": "c", "query": "t7 t9", "k": 3},
    ]});
    let (status, r) = post(&client, &format!("{url}/batch"), body.to_string()).await;
    assert_eq!(status, 200, "{r}");
    let results = r["results"].as_array().unwrap();
    assert_eq!(
        hits_of(&results[0]),
        expected(&index, &json!({"t2": 1}), 10, "bmp").0
    );
    assert_eq!(
        hits_of(&results[1]),
        expected(&index, &json!({"t5": 1}), 10, "bmp").0
    );
    assert!(results[1].get("encode_us").is_none());
    assert_eq!(
        hits_of(&results[2]),
        expected(&index, &json!({"t7": 1, "t9": 1}), 3, "bmp").0
    );
    let (_, s) = get(&client, &format!("{}/v1/stats", server.base)).await;
    assert_eq!(s["model"], json!("words"));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_and_latencies() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), "a.bmp", "a", 100, 10);
    let server = Server::start(&path, ServerConfig::default()).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/search", server.base);
    for _ in 0..3 {
        post(&client, &url, json!({"vector": {"t1": 1}}).to_string()).await;
    }
    post(
        &client,
        &url,
        json!({"vector": {"t1": 1}, "algorithm": "exhaustive"}).to_string(),
    )
    .await;
    post(
        &client,
        &url,
        json!({"vector": {"t1": 1}, "alpha": 0.5}).to_string(),
    )
    .await;
    post(&client, &url, "{".into()).await;
    get(&client, &format!("{}/nowhere", server.base)).await;
    let r = client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = r.text().await.unwrap();
    for needle in [
        "bmp_http_requests_total{route=\"/v1/search\",status=\"200\"} 5",
        "bmp_http_requests_total{route=\"/v1/search\",status=\"400\"} 1",
        "bmp_http_requests_total{route=\"unmatched\",status=\"404\"} 1",
        "bmp_http_request_duration_seconds_count{route=\"/v1/search\"} 6",
        "bmp_search_duration_seconds_count{algorithm=\"bmp\",safe=\"true\"} 3",
        "bmp_search_duration_seconds_count{algorithm=\"bmp\",safe=\"false\"} 1",
        "bmp_search_duration_seconds_count{algorithm=\"exhaustive\",safe=\"true\"} 1",
        "bmp_http_requests_in_flight 1",
        "bmp_index_documents 100",
        "# EOF",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from\n{text}");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_is_valid_and_matches_the_routes() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), "a.bmp", "a", 50, 11);
    let server = Server::start(&path, keyed_config(dir.path())).await;
    let client = keyed_client(ADMIN_KEY);
    let (status, doc) = get(&client, &format!("{}/openapi.json", server.base)).await;
    assert_eq!(status, 200);
    let spec: openapiv3::OpenAPI = serde_json::from_value(doc.clone()).expect("valid OpenAPI 3");
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert_eq!(spec.paths.paths.len(), 19);
    assert_eq!(operations, bmp_server::openapi::ROUTES.len());
    // Every documented operation is routed: the right method never gets 405, nor a 404 for want
    // of a route (the collection routes of a server of one index answer 404 no_collection(s)).
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let url = format!("{}{path}", server.base);
            let r = match method.as_str() {
                "get" => client.get(&url).send().await.unwrap(),
                "post" => client
                    .post(&url)
                    .body("{\"index\": \"/nonexistent\"}")
                    .send()
                    .await
                    .unwrap(),
                "delete" => client.delete(&url).send().await.unwrap(),
                "put" => client.put(&url).send().await.unwrap(),
                other => panic!("unexpected method {other}"),
            };
            let status = r.status().as_u16();
            let body: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap_or_default();
            let code = body["error"]["code"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            assert!(
                status != 405 && code != "not_found",
                "{method} {path}: {status} {body}"
            );
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_reload_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let a = build(dir.path(), "a.bmp", "a", 200, 12);
    let b = build(dir.path(), "b.bmp", "b", 250, 13);
    let served = dir.path().join("served.bmp");
    std::fs::copy(&a, &served).unwrap();
    let server = Server::start(&served, keyed_config(dir.path())).await;
    let client = keyed_client(ADMIN_KEY);
    let reload = format!("{}/v1/admin/reload", server.base);
    let health = format!("{}/v1/health", server.base);

    // Bad bodies and bad files: 4xx, and the old index stays.
    let (status, r) = post(&client, &reload, "{\"path\": 1}".into()).await;
    assert_eq!(
        (status, r["error"]["code"].clone()),
        (400, json!("invalid_request"))
    );
    let (status, r) = post(&client, &reload, "{\"index\": 1}".into()).await;
    assert_eq!(status, 400, "{r}");
    let missing = dir.path().join("missing.bmp");
    let (status, r) = post(&client, &reload, json!({"index": missing}).to_string()).await;
    assert_eq!(status, 422, "{r}");
    assert_eq!(r["error"]["code"], json!("reload_failed"));
    assert!(r["error"]["message"]
        .as_str()
        .unwrap()
        .contains("missing.bmp"));
    let (_, h) = get(&client, &health).await;
    assert_eq!(h["documents"], json!(200));

    // A rebuilt file at the served path, swapped in by an empty-bodied reload.
    let tmp = dir.path().join("served.bmp.new");
    std::fs::copy(&b, &tmp).unwrap();
    std::fs::rename(&tmp, &served).unwrap();
    let (status, r) = post(&client, &reload, String::new()).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["status"], json!("reloaded"));
    assert_eq!(r["documents"], json!(250));
    assert_eq!(r["path"], json!(served.display().to_string()));
    let (_, h) = get(&client, &health).await;
    assert_eq!(h["documents"], json!(250));

    // Another file by path.
    let (status, r) = post(&client, &reload, json!({"index": a}).to_string()).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(
        r["path"],
        json!(a.canonicalize().unwrap().display().to_string())
    );
    let (_, h) = get(&client, &health).await;
    assert_eq!(h["documents"], json!(200));
    // Nothing outside the data directory.
    let elsewhere = tempfile::tempdir().unwrap();
    let outside = build(elsewhere.path(), "c.bmp", "c", 20, 1);
    let (status, r) = post(&client, &reload, json!({"index": outside}).to_string()).await;
    assert_eq!(
        (status, r["error"]["code"].as_str()),
        (403, Some("forbidden")),
        "{r}"
    );
    // Both temporary directories have the same parent: `dir/../elsewhere/c.bmp`.
    let sneaky = dir
        .path()
        .join("..")
        .join(elsewhere.path().file_name().unwrap())
        .join("c.bmp");
    let (status, _) = post(&client, &reload, json!({"index": sneaky}).to_string()).await;
    assert_eq!(status, 403);
    let text = client
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("bmp_index_reloads_total{result=\"ok\"} 2"),
        "{text}"
    );
    assert!(
        text.contains("bmp_index_reloads_total{result=\"error\"} 1"),
        "{text}"
    );
    server.stop().await;

    // Without an admin key the route does not exist.
    let server = Server::start(&a, ServerConfig::default()).await;
    let (status, _) = post(
        &client,
        &format!("{}/v1/admin/reload", server.base),
        String::new(),
    )
    .await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_in_flight_requests_finish() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), "a.bmp", "a", 300, 14);
    let mut server = Server::start(&path, ServerConfig::default()).await;
    let index = Index::open(&path).unwrap();
    let addr = server.base.trim_start_matches("http://").to_string();
    let body = json!({"vector": {"t1": 1.0, "t4": 0.5}, "k": 8}).to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/search HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body.as_bytes()[..7]).await.unwrap();
    // The request is in flight (its body still arriving) when shutdown begins.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server.state.metrics().in_flight() < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "request never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.stop.take().unwrap().send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !server.task.is_finished(),
        "the server quit with a request in flight"
    );
    stream.write_all(&body.as_bytes()[7..]).await.unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response))
        .await
        .expect("the response arrives")
        .unwrap();
    let response = String::from_utf8(response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let json_start = response.find("\r\n\r\n").unwrap() + 4;
    let r: Value = serde_json::from_str(&response[json_start..]).unwrap();
    assert_eq!(
        hits_of(&r),
        expected(&index, &json!({"t1": 1.0, "t4": 0.5}), 8, "bmp").0
    );
    tokio::time::timeout(Duration::from_secs(10), &mut server.task)
        .await
        .expect("the server stops once the request is answered")
        .unwrap()
        .unwrap();
    // No longer listening.
    assert!(tokio::net::TcpStream::connect(&addr).await.is_err());
}

/// A deterministic unit vector of dimension 4 for `seed`.
fn unit(seed: f32) -> [f32; 4] {
    let v = [seed.sin(), seed.cos(), (2.0 * seed).sin(), 0.5];
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.map(|x| x / n)
}

/// One vector per word of a query, derived from the word's bytes.
struct WordVectors;

impl bmp_server::QueryVectorizer for WordVectors {
    fn vectors(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        Ok(texts
            .iter()
            .map(|t| {
                t.split_whitespace()
                    .flat_map(|w| unit(w.bytes().map(f32::from).sum::<f32>()))
                    .collect()
            })
            .collect())
    }

    fn describe(&self) -> String {
        "word vectors".into()
    }
}

/// A store with two vectors per document, tied to `index`.
fn multivec_store(dir: &Path, index: &Index) -> bmp_index::multivec::MultiVecStore {
    let path = dir.join("store.mvec");
    let mut w = bmp_index::multivec::MultiVecWriter::create(
        &path,
        4,
        index.num_docs(),
        index.header().checksum,
        "C2x2",
    )
    .unwrap();
    for d in 0..index.num_docs() {
        let mut v = unit(d as f32).to_vec();
        v.extend(unit(d as f32 * 0.37 + 1.0));
        w.add(d, &v).unwrap();
    }
    w.finish().unwrap();
    bmp_index::multivec::MultiVecStore::open(&path).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rerank_reorders_the_head_by_chamfer_and_refuses_what_it_cannot_do() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), "a.bmp", "a", 400, 9);
    let index = Index::open(&path).unwrap();
    let reranker =
        bmp_server::Reranker::new(multivec_store(dir.path(), &index), Arc::new(WordVectors));
    let state = AppState::with_stages(
        Index::open(&path).unwrap(),
        keyed_config(dir.path()),
        Some(Arc::new(Words)),
        Some(reranker),
    )
    .unwrap();
    let server = Server::with_state(state).await;
    let client = keyed_client(ADMIN_KEY);
    let url = format!("{}/v1/search", server.base);
    let (status, r) = post(
        &client,
        &url,
        json!({"query": "t1 t3", "k": 20, "rerank": 6}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    // The same in process: first stage, then Chamfer over the store.
    let first = expected(&index, &json!({"t1": 1, "t3": 1}), 20, "bmp").0;
    let store = bmp_index::multivec::MultiVecStore::open(dir.path().join("store.mvec")).unwrap();
    let ids = bmp_index::ExternalIds::build(&index).unwrap();
    let hits: Vec<bmp_query::Hit> = first
        .iter()
        .map(|(id, score)| bmp_query::Hit {
            doc: ids.find(&index, id).unwrap().unwrap(),
            score: *score as u32,
        })
        .collect();
    let query = WordVectors.vectors_of("t1 t3");
    let mut scorer = bmp_query::chamfer::ChamferScorer::new();
    let want = bmp_query::chamfer::rerank(&mut scorer, &store, &query, &hits, 6);
    let got = r["hits"].as_array().unwrap();
    assert_eq!(got.len(), 20);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g["id"].as_str().unwrap(), index.doc_id(w.doc).unwrap());
        assert_eq!(g["rank"].as_u64().unwrap(), i as u64 + 1);
        match g.get("rerank_score") {
            Some(s) => {
                assert!(i < 6, "hit {i} past the depth has a rerank score");
                assert!((s.as_f64().unwrap() - f64::from(w.score)).abs() < 1e-4);
            }
            None => assert!(i >= 6, "reranked hit {i} has no rerank score"),
        }
    }
    // The head is the first stage's top 6, reordered; the tail keeps its order.
    let mut head: Vec<&str> = got[..6].iter().map(|h| h["id"].as_str().unwrap()).collect();
    let mut first_head: Vec<&str> = first[..6].iter().map(|(id, _)| id.as_str()).collect();
    let tail: Vec<&str> = got[6..].iter().map(|h| h["id"].as_str().unwrap()).collect();
    assert_eq!(
        tail,
        first[6..]
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>()
    );
    head.sort_unstable();
    first_head.sort_unstable();
    assert_eq!(head, first_head);
    assert!(r["rerank_us"].is_u64());

    for (body, code) in [
        (json!({"vector": {"t1": 1}, "rerank": 5}), "invalid_request"),
        (json!({"query": "t1", "rerank": 0}), "invalid_request"),
        (json!({"query": "t1", "rerank": "5"}), "invalid_request"),
    ] {
        let (status, r) = post(&client, &url, body.to_string()).await;
        assert_eq!(status, 400, "{body}: {r}");
        assert_eq!(r["error"]["code"], json!(code), "{body}: {r}");
        assert!(r["error"]["message"].as_str().unwrap().contains("rerank"));
    }
    // After a reload to another index the store no longer matches: refused, not wrong.
    let other = build(dir.path(), "b.bmp", "b", 300, 4);
    let (status, r) = post(
        &client,
        &format!("{}/v1/admin/reload", server.base),
        json!({"index": other}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let (status, r) = post(
        &client,
        &url,
        json!({"query": "t1", "rerank": 3}).to_string(),
    )
    .await;
    assert_eq!(status, 409, "{r}");
    assert_eq!(r["error"]["code"], json!("multivec_stale"));
    server.stop().await;

    // A server without a store refuses a rerank, naming the field.
    let state = AppState::with_encoder(
        Index::open(&path).unwrap(),
        ServerConfig::default(),
        Some(Arc::new(Words)),
    )
    .unwrap();
    let server = Server::with_state(state).await;
    let (status, r) = post(
        &client,
        &format!("{}/v1/search/batch", server.base),
        json!({"queries": [{"query": "t1"}, {"query": "t2", "rerank": 3}]}).to_string(),
    )
    .await;
    assert_eq!(status, 400, "{r}");
    assert_eq!(r["error"]["code"], json!("no_multivec"));
    assert!(r["error"]["message"]
        .as_str()
        .unwrap()
        .contains("queries[1].rerank"));
    server.stop().await;
}

impl WordVectors {
    fn vectors_of(&self, text: &str) -> Vec<f32> {
        use bmp_server::QueryVectorizer;
        self.vectors(&[text.to_string()]).unwrap().remove(0)
    }
}

async fn send(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body.to_string());
    }
    let r = request.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// The ids and scores of a search answer.
fn hits(answer: &Value) -> Vec<(String, u64)> {
    answer["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["id"].as_str().unwrap().to_string(),
                h["raw_score"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn several_collections_are_served_written_created_and_dropped_apart() {
    use bmp_index::segments::{CollectionDir, RefreshPolicy};
    use reqwest::Method;

    let root = tempfile::tempdir().unwrap();
    // One collection exists before the server starts; a hidden directory and a file are passed
    // over.
    let mut first =
        CollectionDir::open_or_create(&root.path().join("news"), &BuildOptions::default()).unwrap();
    let mut docs = Collection::new();
    let t = docs.intern_term("apple");
    docs.add_document("n1", &[(t, 3.0)]).unwrap();
    first.add(&docs, &mut |_, _, _| {}).unwrap();
    drop(first);
    std::fs::create_dir(root.path().join(".trash")).unwrap();
    std::fs::write(root.path().join("notes.txt"), "x").unwrap();

    let policy = RefreshPolicy {
        interval: None,
        ..RefreshPolicy::default()
    };
    let (state, recoveries) =
        AppState::serving_collections(root.path(), Some(policy), keyed_config(root.path()), None)
            .unwrap();
    assert_eq!(recoveries.len(), 1);
    let server = Server::with_state(state).await;
    let client = keyed_client(ADMIN_KEY);
    let base = &server.base;

    let (status, list) = get(&client, &format!("{base}/v1/collections")).await;
    assert_eq!(status, 200);
    assert_eq!(list["collections"][0]["name"], "news");
    assert_eq!(list["collections"][0]["documents"], 1);
    assert_eq!(list["collections"].as_array().unwrap().len(), 1);

    // The unnamed routes name no collection here.
    let query = json!({"vector": {"apple": 1.0}, "k": 10});
    let (status, err) = post(&client, &format!("{base}/v1/search"), query.to_string()).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("no_collection"))
    );

    // Create a second collection; a bad name, a bad body and a taken name are refused.
    let url = |name: &str, tail: &str| format!("{base}/v1/collections/{name}{tail}");
    let (status, made) = send(
        &client,
        Method::PUT,
        &url("blogs", ""),
        Some(json!({"block_size": 16})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    assert_eq!(
        (made["documents"].as_u64(), made["writable"].as_bool()),
        (Some(0), Some(true))
    );
    let (status, err) = send(&client, Method::PUT, &url("blogs", ""), None).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (409, Some("collection_exists"))
    );
    let (status, _) = send(&client, Method::PUT, &url("-x", ""), None).await;
    assert_eq!(status, 400);
    let (status, err) = send(
        &client,
        Method::PUT,
        &url("odd", ""),
        Some(json!({"block_size": 3})),
    )
    .await;
    assert_eq!(status, 400, "{err}");
    assert!(!root.path().join("odd").exists());

    // Writes go to the collection named, and only to it.
    let add = json!({"documents": [{"id": "b1", "vector": {"apple": 5.0}}, {"id": "b2", "vector": {"pear": 2.0}}]});
    let (status, added) = post(
        &client,
        &format!("{}?refresh=true", url("blogs", "/documents")),
        add.to_string(),
    )
    .await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(
        (added["added"].as_u64(), added["visible"].as_bool()),
        (Some(2), Some(true))
    );
    let (_, blogs) = post(&client, &url("blogs", "/search"), query.to_string()).await;
    assert_eq!(hits(&blogs), vec![("b1".to_string(), 5)]);
    let text = json!({"documents": [{"id": "b3", "text": "apple pie"}]});
    let (status, err) = post(&client, &url("blogs", "/documents"), text.to_string()).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (400, Some("no_model")),
        "{err}"
    );
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("documents[0].text"));
    let (_, news) = post(&client, &url("news", "/search"), query.to_string()).await;
    assert_eq!(hits(&news), vec![("n1".to_string(), 3)]);
    let batch = json!({"queries": [query.clone()]});
    let (_, answers) = post(&client, &url("news", "/search/batch"), batch.to_string()).await;
    assert_eq!(hits(&answers["results"][0]), vec![("n1".to_string(), 3)]);
    let (status, err) = send(&client, Method::DELETE, &url("news", "/documents/b1"), None).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("no_document"))
    );
    let (status, gone) = send(
        &client,
        Method::DELETE,
        &url("blogs", "/documents/b1?refresh=true"),
        None,
    )
    .await;
    assert_eq!((status, gone["deleted"].as_u64()), (200, Some(1)));
    let (_, blogs) = post(&client, &url("blogs", "/search"), query.to_string()).await;
    assert!(hits(&blogs).is_empty());
    // Filtered searches and unfiltered ones, in turn, on the threads' kept searchers: a filter
    // holds for its own request only, and the deleted document stays out.
    let add = json!({"documents": [{"id": "b4", "vector": {"pear": 1.0}}]});
    let (status, _) = post(
        &client,
        &format!("{}?refresh=true", url("blogs", "/documents")),
        add.to_string(),
    )
    .await;
    assert_eq!(status, 200);
    let pear = |filter: Option<Vec<&str>>| {
        let mut q = json!({"vector": {"pear": 1.0, "apple": 1.0}});
        if let Some(f) = filter {
            q["filter"] = json!(f);
        }
        q.to_string()
    };
    for _ in 0..3 {
        let (_, r) = post(
            &client,
            &url("blogs", "/search"),
            pear(Some(vec!["b4", "b1"])),
        )
        .await;
        assert_eq!(hits(&r), vec![("b4".to_string(), 1)]);
        assert_eq!(r["unknown_filter_ids"], 1);
        let (_, r) = post(&client, &url("blogs", "/search"), pear(None)).await;
        assert_eq!(hits(&r), vec![("b2".to_string(), 2), ("b4".to_string(), 1)]);
    }
    let (status, stats) = get(&client, &url("blogs", "")).await;
    assert_eq!(
        (
            status,
            stats["documents"].as_u64(),
            stats["block_size"].as_u64()
        ),
        (200, Some(2), Some(16))
    );
    let (_, health) = get(&client, &format!("{base}/v1/health")).await;
    assert_eq!(health["documents"], 3);
    let (status, err) = post(&client, &url("nope", "/search"), query.to_string()).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("no_collection"))
    );

    // Dropping removes the collection and its files; the other stays.
    let (status, dropped) = send(&client, Method::DELETE, &url("blogs", ""), None).await;
    assert_eq!(
        (status, dropped["documents"].as_u64()),
        (200, Some(2)),
        "{dropped}"
    );
    assert!(!root.path().join("blogs").exists());
    let (status, _) = post(&client, &url("blogs", "/search"), query.to_string()).await;
    assert_eq!(status, 404);
    let (status, _) = send(&client, Method::DELETE, &url("blogs", ""), None).await;
    assert_eq!(status, 404);
    let (_, list) = get(&client, &format!("{base}/v1/collections")).await;
    assert_eq!(list["collections"].as_array().unwrap().len(), 1);
    // A dropped name can be taken again, empty.
    let (status, made) = send(&client, Method::PUT, &url("blogs", ""), None).await;
    assert_eq!((status, made["documents"].as_u64()), (201, Some(0)));
    server.stop().await;
}

#[tokio::test]
async fn a_server_of_one_index_has_no_collection_routes() {
    let dir = tempfile::tempdir().unwrap();
    let index = build(dir.path(), "one.bmp", "d", 50, 3);
    let server = Server::start(&index, ServerConfig::default()).await;
    let client = reqwest::Client::new();
    let (status, err) = get(&client, &format!("{}/v1/collections", server.base)).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("no_collections"))
    );
    let query = json!({"vector": {"t1": 1.0}});
    let (status, err) = post(
        &client,
        &format!("{}/v1/collections/x/search", server.base),
        query.to_string(),
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("no_collection"))
    );
    server.stop().await;
}

/// [`Words`] for queries; documents weigh each word 2.
struct DocumentWords;

impl QueryEncoder for DocumentWords {
    fn encode(&self, texts: &[String]) -> Result<Vec<Vec<(String, f32)>>, String> {
        Words.encode(texts)
    }

    fn encode_documents(&self, texts: &[String]) -> Result<Vec<Vec<(String, f32)>>, String> {
        Ok(texts
            .iter()
            .map(|t| {
                let mut weights = std::collections::BTreeMap::<String, f32>::new();
                for w in t.split_whitespace() {
                    *weights.entry(w.to_string()).or_default() += 2.0;
                }
                weights.into_iter().collect()
            })
            .collect())
    }

    fn describe(&self) -> String {
        "document words".into()
    }
}

#[tokio::test]
async fn documents_written_as_text_go_through_the_document_encoder() {
    use bmp_index::segments::RefreshPolicy;

    let root = tempfile::tempdir().unwrap();
    let policy = RefreshPolicy {
        interval: None,
        ..RefreshPolicy::default()
    };
    let (state, _) = AppState::serving_collections(
        root.path(),
        Some(policy),
        keyed_config(root.path()),
        Some(Arc::new(DocumentWords)),
    )
    .unwrap();
    let server = Server::with_state(state).await;
    let client = keyed_client(ADMIN_KEY);
    let base = &server.base;
    let (status, _) = send(
        &client,
        reqwest::Method::PUT,
        &format!("{base}/v1/collections/c"),
        None,
    )
    .await;
    assert_eq!(status, 201);
    // Texts and vectors in one request; a blank text and a document with both are refused.
    let add = format!("{base}/v1/collections/c/documents?refresh=true");
    for (bad, needle) in [
        (
            json!({"documents": [{"id": "x", "text": "  "}]}),
            "documents[0].text",
        ),
        (
            json!({"documents": [{"id": "x", "text": "a", "vector": {"a": 1}}]}),
            "not both",
        ),
    ] {
        let (status, err) = post(&client, &add, bad.to_string()).await;
        assert_eq!(status, 400, "{err}");
        assert!(
            err["error"]["message"].as_str().unwrap().contains(needle),
            "{err}"
        );
    }
    let docs = json!({"documents": [
        {"id": "t1", "text": "apple apple pear"},
        {"id": "v1", "vector": {"apple": 3.0}},
        {"id": "t2", "text": "pear"}
    ]});
    let (status, added) = post(&client, &add, docs.to_string()).await;
    assert_eq!((status, added["added"].as_u64()), (200, Some(3)), "{added}");
    // Document words weigh 2 each (repeats add up), whatever the query encoding.
    let search = format!("{base}/v1/collections/c/search");
    let (_, answer) = post(&client, &search, json!({"query": "apple"}).to_string()).await;
    assert_eq!(
        hits(&answer),
        vec![("t1".to_string(), 4), ("v1".to_string(), 3)]
    );
    let (_, answer) = post(
        &client,
        &search,
        json!({"vector": {"pear": 1.0}}).to_string(),
    )
    .await;
    assert_eq!(
        hits(&answer),
        vec![("t1".to_string(), 2), ("t2".to_string(), 2)]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_needs_a_key_of_its_scope() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), "a.bmp", "a", 50, 11);
    let server = Server::start(&path, keyed_config(dir.path())).await;
    let doc = bmp_server::openapi::document();
    let clients = [
        ("none", reqwest::Client::new()),
        ("wrong", keyed_client("wrong-key-0123456789")),
        ("read", keyed_client(READ_KEY)),
        ("write", keyed_client(WRITE_KEY)),
        ("admin", keyed_client(ADMIN_KEY)),
    ];
    let mut checked = 0;
    for (route, item) in doc["paths"].as_object().unwrap() {
        let url = format!("{}{}", server.base, route)
            .replace("{collection}", "c")
            .replace("{id}", "x");
        for method in item.as_object().unwrap().keys() {
            let needed =
                bmp_server::Scope::required(&method.to_uppercase().parse().unwrap(), route);
            for (who, client) in &clients {
                let r = client
                    .request(method.to_uppercase().parse().unwrap(), &url)
                    .body("{}")
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let challenge = r.headers().get("www-authenticate").cloned();
                let scope = match *who {
                    "read" => Some(bmp_server::Scope::Read),
                    "write" => Some(bmp_server::Scope::Write),
                    "admin" => Some(bmp_server::Scope::Admin),
                    _ => None,
                };
                let want = match (needed, scope) {
                    (None, _) => None,
                    (Some(_), None) => Some(401),
                    (Some(n), Some(s)) if s < n => Some(403),
                    _ => None,
                };
                match want {
                    Some(code) => assert_eq!(status, code, "{method} {route} with {who}"),
                    None => assert!(
                        status != 401 && status != 403,
                        "{method} {route} with {who}: {status}"
                    ),
                }
                if status == 401 {
                    assert_eq!(challenge.unwrap(), "Bearer");
                }
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 5 * bmp_server::openapi::ROUTES.len());
    // The health route needs no key.
    let (status, _) = get(
        &reqwest::Client::new(),
        &format!("{}/v1/health", server.base),
    )
    .await;
    assert_eq!(status, 200);
    // A key in another scheme is no key.
    let r = reqwest::Client::new()
        .post(format!("{}/v1/search", server.base))
        .header("authorization", format!("Basic {READ_KEY}"))
        .body(json!({"vector": {"t1": 1}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    server.stop().await;
}

#[tokio::test]
async fn scores_are_dot_products_in_the_models_units() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = Collection::new();
    let (a, b, t) = (c.intern_term("a"), c.intern_term("b"), c.intern_term("c"));
    c.add_document("d0", &[(a, 0.5), (b, 2.0)]).unwrap();
    c.add_document("d1", &[(a, 1.5)]).unwrap();
    c.add_document("d2", &[(b, 0.25), (t, 3.0)]).unwrap();
    let path = dir.path().join("real.bmp");
    build_index(
        &c,
        &path,
        &BuildOptions::with_block_size(8),
        &mut |_, _, _| {},
    )
    .unwrap();
    let server = Server::start(&path, ServerConfig::default()).await;
    let client = reqwest::Client::new();
    let (status, r) = post(
        &client,
        &format!("{}/v1/search", server.base),
        json!({"vector": {"a": 0.8, "b": 0.3}}).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let exact = [("d1", 1.2), ("d0", 1.0), ("d2", 0.075)];
    let hits = r["hits"].as_array().unwrap();
    assert_eq!(hits.len(), 3);
    for (h, (id, dot)) in hits.iter().zip(exact) {
        assert_eq!(h["id"], id);
        let score = h["score"].as_f64().unwrap();
        // Within the quantization of the weights (1/255 of the largest of each side).
        assert!(
            (score - dot).abs() <= 0.02 * dot + 0.01,
            "{id}: {score} against {dot}"
        );
        assert!(h["raw_score"].as_u64().unwrap() > 0);
    }
    server.stop().await;
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), "a.bmp", "a", 30, 2);
    let server = Server::start(&path, ServerConfig::default()).await;
    let client = reqwest::Client::new();
    let url = format!("{}/v1/search", server.base);
    let body = json!({"vector": {"t1": 1}}).to_string();
    let given = client
        .post(&url)
        .header("x-request-id", "client-chosen-7")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "client-chosen-7");
    let mut ids = std::collections::HashSet::new();
    for path in ["/v1/search", "/v1/health", "/nowhere"] {
        let r = client
            .post(format!("{}{path}", server.base))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
        assert!(!id.is_empty());
        assert!(ids.insert(id), "ids are unique");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_self_signed_certificate() {
    use std::sync::Arc as StdArc;
    use tokio_rustls::rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};
    use tokio_rustls::rustls::{ClientConfig, RootCertStore};

    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), "a.bmp", "a", 100, 5);
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();

    // A key that is not PEM is refused before anything is served.
    std::fs::write(dir.path().join("bad.pem"), "not a key").unwrap();
    assert!(
        bmp_server::Tls::load(&cert_path, &dir.path().join("bad.pem"))
            .await
            .is_err()
    );
    let tls = bmp_server::Tls::load(&cert_path, &key_path).await.unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let state = AppState::open(&path, ServerConfig::default()).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(bmp_server::serve_tls(listener, state, tls, async move {
        let _ = stopped.await;
    }));

    // A client that trusts the certificate gets answers; one that does not, a failed handshake.
    let connect = |roots: RootCertStore| async move {
        let config = ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(StdArc::new(config));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        connector
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
    };
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(cert.cert.pem().as_bytes()).unwrap())
        .unwrap();
    let mut stream = connect(roots).await.expect("the handshake succeeds");
    let body = json!({"vector": {"t1": 1}, "k": 3}).to_string();
    let request = format!(
        "POST /v1/search HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .unwrap_or_default();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"hits\""), "{response}");
    assert!(connect(RootCertStore::empty()).await.is_err());

    // Plain HTTP on the TLS port gets no answer.
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), plain.read_to_end(&mut answer)).await;
    assert!(!String::from_utf8_lossy(&answer).contains("\"hits\""));

    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the TLS server shuts down")
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_key_is_held_to_its_rate_and_concurrency() {
    let dir = tempfile::tempdir().unwrap();
    let path = build(dir.path(), "a.bmp", "a", 50, 3);
    let config = ServerConfig {
        key_rate: std::num::NonZeroU32::new(3),
        key_concurrency: Some(1),
        ..keyed_config(dir.path())
    };
    let server = Server::start(&path, config).await;
    let url = format!("{}/v1/search", server.base);
    let body = json!({"vector": {"t1": 1}}).to_string();

    // One request of the read key in flight (its body not all sent yet): the next is refused.
    let mut slow = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST /v1/search HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {READ_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(&body.as_bytes()[..5]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let reader = keyed_client(READ_KEY);
    let r = reader.post(&url).body(body.clone()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "too_many_requests");
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("1 requests at once"));
    // Another key is not held back.
    let (status, _) = post(&keyed_client(WRITE_KEY), &url, body.clone()).await;
    assert_eq!(status, 200);
    // The slow request finishes; its key may go on.
    slow.write_all(&body.as_bytes()[5..]).await.unwrap();
    let mut answer = String::new();
    slow.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Three a second, in bursts of three: the admin key's first three pass at once; of the
    // next ones, sent within a second, some are refused with a wait.
    let admin = keyed_client(ADMIN_KEY);
    let start = std::time::Instant::now();
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let r = admin.post(&url).body(body.clone()).send().await.unwrap();
        if r.status() == 429 {
            let wait: u64 = r.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!(wait >= 1);
        }
        statuses.push(r.status().as_u16());
    }
    assert_eq!(statuses[..3], [200, 200, 200], "{statuses:?}");
    if start.elapsed() < Duration::from_secs(1) {
        assert!(statuses.contains(&429), "{statuses:?}");
        assert!(
            statuses.iter().filter(|&&s| s == 200).count() <= 6,
            "{statuses:?}"
        );
    }
    server.stop().await;
}
