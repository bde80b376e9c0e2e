//! The HTTP API end to end: a real index in a temp dir, the real server on an ephemeral port, a
//! real HTTP client. Answers must equal what `bmp_query` returns in-process.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bmp_index::build::{build_index, BuildOptions};
use bmp_index::{Collection, Index};
use bmp_query::{Query, SearchSpec};
use bmp_server::{AppState, ServerConfig};
use serde_json::{json, Value};
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
        &BuildOptions { block_size: 16 },
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
        let state = AppState::open(index, config).unwrap();
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

/// In-process answer: `[(id, score)]`, and the unknown-term count.
fn expected(index: &Index, vector: &Value, k: usize, spec: &str) -> (Vec<(String, u64)>, usize) {
    let entries: Vec<(String, f32)> = vector
        .as_object()
        .unwrap()
        .iter()
        .map(|(t, w)| (t.clone(), w.as_f64().unwrap() as f32))
        .collect();
    let spec: SearchSpec = spec.parse().unwrap();
    let query = Query::from_entries(index, &entries).unwrap();
    let hits = spec.searcher(index).search(&query, k).unwrap();
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
                h["score"].as_u64().unwrap(),
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
    assert_eq!(s["path"], json!(index.path().display().to_string()));
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
            format!(r#"{{"vector": {{"t{}": 1}}}}"#, "x".repeat(5000)),
            413,
            "payload_too_large",
            "4096",
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
    assert!(server.state.reload(&missing).is_err());
    std::fs::write(dir.path().join("junk.bmp"), b"not an index").unwrap();
    assert!(server.state.reload(dir.path().join("junk.bmp")).is_err());
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
    tokio::task::spawn_blocking(move || state.reload(b2))
        .await
        .unwrap()
        .unwrap();
    let (_, r) = post(&client, &url, body.clone()).await;
    assert_eq!(hits_of(&r), want_b);
    hammer.await.unwrap();
    let (_, h) = get(&client, &format!("{}/v1/health", server.base)).await;
    assert_eq!(h["documents"], json!(300));
    let (_, s) = get(&client, &format!("{}/v1/stats", server.base)).await;
    assert_eq!(s["path"], json!(b.display().to_string()));
    server.stop().await;
}
