//! `bmp-index serve` end to end: the real binary on an ephemeral loopback port, plain HTTP/1.1
//! requests, answers identical to `bmp-index search` (vector queries, and text queries through
//! the real SPLADE model), a JSON error for a bad request, reload on SIGHUP, and a clean exit on
//! SIGTERM.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStderr, Command};
use std::time::{Duration, Instant};

mod common;

use common::ok;

/// A running `bmp-index serve`.
struct Served {
    child: Child,
    stderr: BufReader<ChildStderr>,
    addr: String,
}

impl Served {
    /// Starts `serve` in `dir` on an ephemeral port with `args` added.
    fn start(dir: &Path, args: &[&str]) -> Served {
        let (child, stderr, addr) = common::start_serve(dir, args);
        Served {
            child,
            stderr,
            addr,
        }
    }

    fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args([name, &pid])
            .status()
            .unwrap()
            .success());
    }

    /// SIGTERM; checks the exit is clean and returns what the server wrote to standard error.
    fn stop(mut self) -> String {
        self.signal("-TERM");
        let status = self.child.wait().unwrap();
        let mut rest = String::new();
        self.stderr.read_to_string(&mut rest).unwrap();
        assert!(status.success(), "exit {status:?}: {rest}");
        assert!(rest.contains("stopped"), "{rest}");
        rest
    }
}

/// `(id, score, rank)` of each line of a TREC run file.
fn read_run(path: &Path) -> Vec<(String, String, f64, usize)> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| {
            let c: Vec<&str> = l.split(' ').collect();
            (
                c[0].to_owned(),
                c[2].to_owned(),
                c[4].parse().unwrap(),
                c[3].parse().unwrap(),
            )
        })
        .collect()
}

/// Asserts equal hits (ids and ranks) with equal scores up to float rounding: a text query
/// encoded in another batch has the same integer scores, but its weights, and so its scale,
/// may differ in the last bits.
fn assert_same_hits(got: &[(String, f64, usize)], want: &[(String, f64, usize)], qid: &str) {
    let key = |h: &[(String, f64, usize)]| -> Vec<(String, usize)> {
        h.iter().map(|(id, _, rank)| (id.clone(), *rank)).collect()
    };
    assert_eq!(key(got), key(want), "query {qid}");
    for ((_, a, _), (_, b, _)) in got.iter().zip(want) {
        assert!(
            (a - b).abs() <= 1e-5 * b.abs(),
            "query {qid}: score {a} against {b}"
        );
    }
}

/// `(id, score, rank)` of a response's hits.
fn hits(v: &serde_json::Value) -> Vec<(String, f64, usize)> {
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["id"].as_str().unwrap().to_owned(),
                h["score"].as_f64().unwrap(),
                h["rank"].as_u64().unwrap() as usize,
            )
        })
        .collect()
}

/// Sends one request and returns (status, body).
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    try_http(addr, method, path, body).unwrap_or_else(|| panic!("{method} {path}: no answer"))
}

/// Sends one request and returns (status, body), or `None` when the connection fails or is cut
/// off before a whole answer.
fn try_http(addr: &str, method: &str, path: &str, body: &str) -> Option<(u16, String)> {
    try_http_as(addr, None, method, path, body)
}

/// Sends one request with the API key `key` and returns (status, body).
fn http_as(addr: &str, key: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    try_http_as(addr, Some(key), method, path, body)
        .unwrap_or_else(|| panic!("{method} {path}: no answer"))
}

/// [`try_http`] with an API key, if given.
fn try_http_as(
    addr: &str,
    key: Option<&str>,
    method: &str,
    path: &str,
    body: &str,
) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .ok()?;
    let authorization = key.map_or_else(String::new, |k| format!("Authorization: Bearer {k}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         {authorization}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.get(9..12)?.parse().ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Some((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, rest) = body.split_once("\r\n").unwrap();
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
}

#[test]
fn serve_answers_like_search_and_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut docs = String::new();
    for i in 0..300 {
        docs.push_str(&format!(
            "{{\"id\": \"d{i}\", \"vector\": {{\"a\": {}, \"b\": {}, \"c{}\": 3}}}}\n",
            1 + i % 7,
            1 + i % 5,
            i % 11
        ));
    }
    std::fs::write(dir.join("docs.jsonl"), docs).unwrap();
    let query = r#"{"a": 2, "b": 3, "c4": 5}"#;
    std::fs::write(
        dir.join("q.jsonl"),
        format!("{{\"id\": \"q1\", \"vector\": {query}}}\n"),
    )
    .unwrap();
    ok(
        dir,
        &["build", "--input", "docs.jsonl", "--output", "x.bmp"],
    );
    ok(
        dir,
        &[
            "search",
            "--index",
            "x.bmp",
            "--queries",
            "q.jsonl",
            "--k",
            "7",
            "--algorithm",
            "bmp",
            "--output",
            "run",
        ],
    );
    let want: Vec<(String, f64, usize)> = read_run(&dir.join("run"))
        .into_iter()
        .map(|(_, id, score, rank)| (id, score, rank))
        .collect();
    assert_eq!(want.len(), 7);

    let server = Served::start(dir, &["--index", "x.bmp", "--threads", "2"]);
    let addr = server.addr.clone();
    let (status, body) = http(
        &addr,
        "POST",
        "/v1/search",
        &format!(r#"{{"vector": {query}, "k": 7, "algorithm": "bmp"}}"#),
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(hits(&v), want, "HTTP answers equal `bmp-index search`");

    let (status, body) = http(&addr, "POST", "/v1/search", r#"{"vector": {"a": "x"}}"#);
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("\"error\"") && body.contains("vector"),
        "{body}"
    );
    let (status, body) = http(&addr, "GET", "/v1/health", "");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"documents\":300"), "{body}");

    // SIGHUP reloads a rebuilt index in place.
    let mut docs = String::new();
    for i in 0..120 {
        docs.push_str(&format!("{{\"id\": \"e{i}\", \"vector\": {{\"a\": 1}}}}\n"));
    }
    std::fs::write(dir.join("docs2.jsonl"), docs).unwrap();
    ok(
        dir,
        &["build", "--input", "docs2.jsonl", "--output", "x.bmp"],
    );
    server.signal("-HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, body) = http(&addr, "GET", "/v1/health", "");
        if body.contains("\"documents\":120") {
            break;
        }
        assert!(Instant::now() < deadline, "SIGHUP did not reload: {body}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (status, body) = http(
        &addr,
        "POST",
        "/v1/search",
        r#"{"vector": {"a": 1}, "k": 2}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"e0\""), "{body}");

    // SIGTERM: a graceful stop with exit code 0.
    server.stop();
}

/// Writes the first `docs` documents and `queries` queries of Cranfield to `dir`/corpus.jsonl
/// and `dir`/queries.jsonl; returns the query lines.
fn cranfield_head(cranfield: &Path, dir: &Path, docs: usize, queries: usize) -> Vec<String> {
    let lines = |name: &str, n: usize| -> Vec<String> {
        std::fs::read_to_string(cranfield.join(name))
            .unwrap()
            .lines()
            .take(n)
            .map(str::to_owned)
            .collect()
    };
    std::fs::write(
        dir.join("corpus.jsonl"),
        lines("corpus.jsonl", docs).join("\n"),
    )
    .unwrap();
    let queries = lines("queries.jsonl", queries);
    std::fs::write(dir.join("queries.jsonl"), queries.join("\n")).unwrap();
    queries
}

#[test]
fn text_queries_answer_like_search_with_the_model() {
    let (Some(model), Some(cranfield)) = (common::model(), common::dataset("cranfield")) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let queries = cranfield_head(&cranfield, dir, 150, 8);
    let m = model.to_str().unwrap();
    ok(
        dir,
        &[
            "build",
            "--input",
            "corpus.jsonl",
            "--model",
            m,
            "--output",
            "c.bmp",
        ],
    );
    ok(
        dir,
        &[
            "search",
            "--index",
            "c.bmp",
            "--model",
            m,
            "--queries",
            "queries.jsonl",
            "--k",
            "10",
            "--algorithm",
            "bmp",
            "--output",
            "run",
        ],
    );
    let run = read_run(&dir.join("run"));
    assert!(!run.is_empty());

    let server = Served::start(dir, &["--index", "c.bmp", "--model", m, "--threads", "2"]);
    let texts: Vec<(String, String)> = queries
        .iter()
        .map(|q| {
            let v: serde_json::Value = serde_json::from_str(q).unwrap();
            (
                v["_id"].as_str().unwrap().to_owned(),
                v["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let want = |qid: &str| -> Vec<(String, f64, usize)> {
        run.iter()
            .filter(|(q, ..)| q == qid)
            .map(|(_, id, score, rank)| (id.clone(), *score, *rank))
            .collect()
    };
    // One at a time, and from 4 concurrent clients (their texts batched by the encoder).
    for (qid, text) in &texts {
        let body = serde_json::json!({"query": text, "k": 10, "algorithm": "bmp"}).to_string();
        let (status, r) = http(&server.addr, "POST", "/v1/search", &body);
        assert_eq!(status, 200, "{r}");
        let v: serde_json::Value = serde_json::from_str(&r).unwrap();
        assert_same_hits(&hits(&v), &want(qid), qid);
        assert!(v["encode_us"].is_u64());
    }
    std::thread::scope(|scope| {
        for t in 0..4 {
            let (texts, addr, want) = (&texts, &server.addr, &want);
            scope.spawn(move || {
                for (qid, text) in texts.iter().cycle().skip(t).take(6) {
                    let body = serde_json::json!({"query": text}).to_string();
                    let (status, r) = http(addr, "POST", "/v1/search", &body);
                    assert_eq!(status, 200, "{r}");
                    let v: serde_json::Value = serde_json::from_str(&r).unwrap();
                    assert_same_hits(&hits(&v), &want(qid), qid);
                }
            });
        }
    });
    let batch: Vec<serde_json::Value> = texts
        .iter()
        .map(|(qid, text)| serde_json::json!({"id": qid, "query": text}))
        .collect();
    let (status, r) = http(
        &server.addr,
        "POST",
        "/v1/search/batch",
        &serde_json::json!({"queries": batch}).to_string(),
    );
    assert_eq!(status, 200, "{r}");
    let v: serde_json::Value = serde_json::from_str(&r).unwrap();
    for result in v["results"].as_array().unwrap() {
        let qid = result["id"].as_str().unwrap();
        assert_same_hits(&hits(result), &want(qid), qid);
    }
    let (_, stats) = http(&server.addr, "GET", "/v1/stats", "");
    assert!(stats.contains("splade-tiny"), "{stats}");
    server.stop();
}

#[test]
fn hybrid_text_queries_answer_like_search_hybrid() {
    let (Some(model), Some(cranfield)) = (common::model(), common::dataset("cranfield")) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let queries = cranfield_head(&cranfield, dir, 150, 6);
    let m = model.to_str().unwrap();
    let build = |extra: &[&str], out: &str| {
        let mut args = vec![
            "build",
            "--input",
            "corpus.jsonl",
            "--model",
            m,
            "--output",
            out,
        ];
        args.extend(extra);
        ok(dir, &args);
    };
    build(&["--lexical"], "h.bmp");
    build(&[], "plain.bmp");
    let mut runs = Vec::new();
    for fusion in ["linear", "rrf"] {
        let out = format!("run-{fusion}");
        ok(
            dir,
            &[
                "search",
                "--index",
                "h.bmp",
                "--model",
                m,
                "--queries",
                "queries.jsonl",
                "--k",
                "10",
                "--hybrid",
                "0.3",
                "--fusion",
                fusion,
                "--output",
                &out,
            ],
        );
        runs.push((fusion, read_run(&dir.join(out))));
    }
    let server = Served::start(dir, &["--index", "h.bmp", "--model", m, "--threads", "2"]);
    for q in &queries {
        let v: serde_json::Value = serde_json::from_str(q).unwrap();
        let (qid, text) = (v["_id"].as_str().unwrap(), v["text"].as_str().unwrap());
        for (fusion, run) in &runs {
            let want: Vec<(String, f64, usize)> = run
                .iter()
                .filter(|(q, ..)| q == qid)
                .map(|(_, id, score, rank)| (id.clone(), *score, *rank))
                .collect();
            assert!(!want.is_empty(), "{qid}");
            let body = serde_json::json!({
                "query": text, "k": 10,
                "hybrid": {"lexical_weight": 0.3, "fusion": fusion},
            });
            let (status, r) = http(&server.addr, "POST", "/v1/search", &body.to_string());
            assert_eq!(status, 200, "{r}");
            let v: serde_json::Value = serde_json::from_str(&r).unwrap();
            assert_same_hits(&hits(&v), &want, qid);
            // Linear fusion ranks by an integer score; reciprocal rank fusion has none.
            let raw = v["hits"][0].get("raw_score");
            assert_eq!(raw.is_some(), *fusion == "linear", "{r}");
        }
    }
    for (body, needle) in [
        (
            serde_json::json!({"vector": {"flow": 1.0}, "hybrid": {}}),
            "needs a text query",
        ),
        (
            serde_json::json!({"query": "flow", "hybrid": {"fusion": "sum"}}),
            "unknown fusion",
        ),
        (
            serde_json::json!({"query": "flow", "hybrid": {"lexical_weight": 2}}),
            "[0, 1]",
        ),
        (
            serde_json::json!({"query": "flow", "hybrid": {"weight": 0.3}}),
            "hybrid.weight",
        ),
        (
            serde_json::json!({"query": "flow", "hybrid": 0.3}),
            "must be an object",
        ),
    ] {
        let (status, r) = http(&server.addr, "POST", "/v1/search", &body.to_string());
        assert_eq!(status, 400, "{body}: {r}");
        assert!(r.contains(needle), "{body}: {r}");
    }
    server.stop();
    let plain = Served::start(dir, &["--index", "plain.bmp", "--model", m]);
    let body = serde_json::json!({"query": "flow", "hybrid": {}}).to_string();
    let (status, r) = http(&plain.addr, "POST", "/v1/search", &body);
    assert_eq!(status, 400, "{r}");
    assert!(r.contains("no lexical field"), "{r}");
    plain.stop();
}

/// The resident memory of process `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    common::memory_kib(pid).expect("the server is running").1
}

/// Streams a chunked body of `total` bytes (or until the server stops reading) and returns the
/// response status, if one came back.
fn stream_body(addr: &str, total: usize) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST /v1/search HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let chunk = vec![b' '; 1 << 20];
    let mut sent = 0;
    while sent < total {
        let ok = write!(stream, "{:x}\r\n", chunk.len()).is_ok()
            && stream.write_all(&chunk).is_ok()
            && stream.write_all(b"\r\n").is_ok();
        if !ok {
            break;
        }
        sent += chunk.len();
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.get(9..12).and_then(|s| s.parse().ok())
}

#[test]
fn extreme_requests_get_clear_answers_in_bounded_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    common::synth(dir, "d", 2000, 1, 3);
    ok(dir, &["build", "--input", "d.jsonl", "--output", "x.bmp"]);
    let vocabulary = common::vocabulary(&dir.join("d.jsonl"), usize::MAX);
    let all_terms: serde_json::Map<String, serde_json::Value> = vocabulary
        .iter()
        .map(|t| (t.clone(), serde_json::json!(1.0)))
        .collect();
    assert!(all_terms.len() > 10_000, "{} terms", all_terms.len());

    let served = Served::start(
        dir,
        &[
            "--index",
            "x.bmp",
            "--max-query-terms",
            "100000",
            "--max-k",
            "1000000",
        ],
    );
    let pid = served.child.id();
    let addr = served.addr.clone();
    // Every vocabulary term, k = 1,000,000: every document, in the exhaustive order.
    let query = serde_json::json!({"vector": all_terms, "k": 1_000_000});
    let (status, body) = http(&addr, "POST", "/v1/search", &query.to_string());
    assert_eq!(status, 200, "{}", &body[..body.len().min(300)]);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let got = hits(&v);
    assert_eq!(got.len(), 2000);
    let exhaustive = serde_json::json!({"vector": all_terms, "k": 1_000_000,
        "algorithm": "exhaustive"});
    let (_, body) = http(&addr, "POST", "/v1/search", &exhaustive.to_string());
    assert_eq!(hits(&serde_json::from_str(&body).unwrap()), got);
    let warm = rss_kib(pid);

    // A 1 GB body, announced: refused before it is read.
    let mut stream = TcpStream::connect(&addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST /v1/search HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: 1073741824\r\nConnection: close\r\n\r\n{{\"vector\": {{"
    )
    .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
    // A 1 GB chunked body, unannounced: the server stops reading at its limit.
    let status = stream_body(&addr, 1 << 30);
    assert!(matches!(status, None | Some(413)), "{status:?}");
    let after = rss_kib(pid);
    assert!(
        after < warm + 64 * 1024,
        "resident memory grew from {warm} KiB to {after} KiB"
    );
    // Still serving.
    let (status, _) = http(&addr, "GET", "/v1/health", "");
    assert_eq!(status, 200);
    served.stop();

    // Under the default limits, the same extremes are clear 400s naming the limit.
    let served = Served::start(dir, &["--index", "x.bmp"]);
    let (status, body) = http(&served.addr, "POST", "/v1/search", &query.to_string());
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("more than the limit of 4096"), "{body}");
    let deep = serde_json::json!({"vector": {"t1": 1.0}, "k": 1_000_000});
    let (status, body) = http(&served.addr, "POST", "/v1/search", &deep.to_string());
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("1000"), "{body}");
    served.stop();
}

/// Polls `GET /v1/stats` until the collection's generation is `generation`.
fn wait_for_generation(addr: &str, generation: u64) -> serde_json::Value {
    let start = Instant::now();
    loop {
        let (status, body) = http(addr, "GET", "/v1/stats", "");
        assert_eq!(status, 200, "{body}");
        let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
        if stats["generation"].as_u64() == Some(generation) {
            return stats;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "generation {generation} never served: {stats}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_a_collection_while_another_process_writes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir(dir.join("col")).unwrap();
    std::fs::write(
        dir.join("a.jsonl"),
        "{\"id\": \"a\", \"vector\": {\"x\": 5, \"y\": 1}}\n{\"id\": \"b\", \"vector\": {\"x\": 4}}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("b.jsonl"),
        "{\"id\": \"b\", \"vector\": {\"x\": 2}}\n{\"id\": \"c\", \"vector\": {\"x\": 9}}\n",
    )
    .unwrap();
    std::fs::write(dir.join("ids.txt"), "c\n").unwrap();
    let query = r#"{"vector": {"x": 1}, "k": 5}"#;
    let search = |addr: &str, body: &str| {
        let (status, body) = http(addr, "POST", "/v1/search", body);
        assert_eq!(status, 200, "{body}");
        hits(&serde_json::from_str(&body).unwrap())
    };
    let hit = |id: &str, score: u32, rank: usize| (id.to_owned(), f64::from(score), rank);

    // An empty directory is served as an empty collection.
    let served = Served::start(dir, &["--index", "col", "--refresh-ms", "50"]);
    let stats = wait_for_generation(&served.addr, 0);
    assert_eq!(stats["documents"], 0);
    assert_eq!(search(&served.addr, query), []);

    ok(dir, &["add", "--collection", "col", "--input", "a.jsonl"]);
    wait_for_generation(&served.addr, 1);
    assert_eq!(
        search(&served.addr, query),
        [hit("a", 5, 1), hit("b", 4, 2)]
    );
    // "b" replaced (upsert), "c" new.
    ok(dir, &["add", "--collection", "col", "--input", "b.jsonl"]);
    let stats = wait_for_generation(&served.addr, 2);
    assert_eq!(
        (stats["segments"].as_u64(), stats["documents"].as_u64()),
        (Some(2), Some(3))
    );
    assert_eq!(
        search(&served.addr, query),
        [hit("c", 9, 1), hit("a", 5, 2), hit("b", 2, 3)]
    );
    ok(dir, &["delete", "--collection", "col", "--ids", "ids.txt"]);
    wait_for_generation(&served.addr, 3);
    for algorithm in ["exhaustive", "bmp", "maxscore", "bmw", "sp"] {
        let body = format!(r#"{{"vector": {{"x": 1}}, "k": 5, "algorithm": "{algorithm}"}}"#);
        assert_eq!(
            search(&served.addr, &body),
            [hit("a", 5, 1), hit("b", 2, 2)],
            "{algorithm}"
        );
    }
    let (status, body) = http(
        &served.addr,
        "POST",
        "/v1/search",
        r#"{"vector": {"x": 1}, "k": 5, "filter": ["b", "c", "nobody"]}"#,
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(hits(&v), [hit("b", 2, 1)]);
    assert_eq!(v["unknown_filter_ids"], 2);
    let log = served.stop();
    assert!(
        log.contains("refreshed col: generation 3, 2 documents"),
        "{log}"
    );

    // A restarted server serves what was written.
    let served = Served::start(dir, &["--index", "col"]);
    assert_eq!(
        search(&served.addr, query),
        [hit("a", 5, 1), hit("b", 2, 2)]
    );
    served.stop();
}

#[test]
fn a_writable_server_takes_documents_durably() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir(dir.join("col")).unwrap();
    let query = r#"{"vector": {"x": 1}, "k": 5}"#;
    let post = |addr: &str, path: &str, body: &str| {
        let (status, body) = http(addr, "POST", path, body);
        (
            status,
            serde_json::from_str::<serde_json::Value>(&body).unwrap(),
        )
    };
    let hit = |id: &str, score: u32, rank: usize| (id.to_owned(), f64::from(score), rank);

    // A read-only server refuses writes.
    let served = Served::start(dir, &["--index", "col"]);
    let (status, v) = post(&served.addr, "/v1/documents", r#"{"documents": []}"#);
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("read_only"))
    );
    served.stop();

    // Writes visible only when asked for: on POST /v1/refresh or with ?refresh=true.
    let mut served = Served::start(dir, &["--index", "col", "--writable", "--refresh-ms", "0"]);
    let addr = served.addr.clone();
    let (status, v) = post(
        &addr,
        "/v1/documents",
        r#"{"documents": [{"id": "a", "vector": {"x": 5, "y": 1}}, {"id": "b", "vector": {"x": 4}}]}"#,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (
            v["added"].as_u64(),
            v["replaced"].as_u64(),
            v["visible"].as_bool()
        ),
        (Some(2), Some(0), Some(false))
    );
    let search = |body: &str| {
        let (status, body) = http(&addr, "POST", "/v1/search", body);
        assert_eq!(status, 200, "{body}");
        hits(&serde_json::from_str(&body).unwrap())
    };
    // Durable, not yet visible.
    assert_eq!(search(query), []);
    let (status, v) = post(&addr, "/v1/refresh", "");
    assert_eq!((status, v["documents"].as_u64()), (200, Some(2)), "{v}");
    assert_eq!(search(query), [hit("a", 5, 1), hit("b", 4, 2)]);
    let (status, v) = post(
        &addr,
        "/v1/documents?refresh=true",
        r#"{"documents": [{"id": "b", "vector": {"x": 2}}, {"id": "c", "vector": {"x": 9}}]}"#,
    );
    assert_eq!(
        (status, v["replaced"].as_u64(), v["visible"].as_bool()),
        (200, Some(1), Some(true)),
        "{v}"
    );
    assert_eq!(
        search(query),
        [hit("c", 9, 1), hit("a", 5, 2), hit("b", 2, 3)]
    );
    // Bad writes name the field and change nothing.
    for (body, needle) in [
        (
            r#"{"documents": [{"id": "d", "vector": {"x": -1}}]}"#,
            "documents[0].vector[\"x\"]",
        ),
        (
            r#"{"documents": [{"id": "d e", "vector": {"x": 1}}]}"#,
            "documents[0].id",
        ),
        (
            r#"{"documents": [{"id": "d", "vector": {}}, {"id": "d", "vector": {}}]}"#,
            "appears twice",
        ),
        (r#"{"docs": []}"#, "unknown field"),
    ] {
        let (status, v) = post(&addr, "/v1/documents", body);
        assert_eq!(status, 400, "{body}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{v}"
        );
    }
    for (path, needle) in [
        ("/v1/documents?refresh=maybe", "refresh"),
        ("/v1/documents?flush=true", "flush"),
    ] {
        let (status, v) = post(
            &addr,
            path,
            r#"{"documents": [{"id": "d", "vector": {"x": 1}}]}"#,
        );
        assert_eq!(status, 400, "{path}: {v}");
        assert!(
            v["error"]["message"].as_str().unwrap().contains(needle),
            "{v}"
        );
    }
    // The server holds the writer's lock.
    std::fs::write(dir.join("ids.txt"), "a\n").unwrap();
    let r = common::run(dir, &["delete", "--collection", "col", "--ids", "ids.txt"]);
    assert!(r.stderr.contains("another writer"), "{}", r.stderr);
    let (status, _) = http(&addr, "DELETE", "/v1/documents/c", "");
    assert_eq!(status, 200);
    // Deleted, though searches still see it: a second delete finds nothing.
    let (status, body) = http(&addr, "DELETE", "/v1/documents/c", "");
    assert_eq!(status, 404, "{body}");
    assert_eq!(search(query).len(), 3);
    let (status, v) = post(
        &addr,
        "/v1/documents/delete?refresh=true",
        r#"{"ids": ["a", "nobody", "a"]}"#,
    );
    assert_eq!(
        (
            status,
            v["deleted"].as_u64(),
            v["missing"].as_u64(),
            v["visible"].as_bool()
        ),
        (200, Some(1), Some(1), Some(true))
    );
    assert_eq!(search(query), [hit("b", 2, 1)]);
    // Eight concurrent writers: every request is acknowledged, every document is there (writes
    // that queue together are committed as one segment).
    let writers: Vec<_> = (0..8)
        .map(|t| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                for r in 0..3 {
                    let docs: Vec<String> = (0..10)
                        .map(|i| {
                            format!(r#"{{"id": "t{t}-{r}-{i}", "vector": {{"z": {}}}}}"#, i + 1)
                        })
                        .collect();
                    let body = format!(r#"{{"documents": [{}]}}"#, docs.join(","));
                    let (status, body) = http(&addr, "POST", "/v1/documents", &body);
                    assert_eq!(status, 200, "{body}");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let (status, v) = post(&addr, "/v1/refresh", "");
    assert_eq!((status, v["documents"].as_u64()), (200, Some(241)), "{v}");
    let (_, body) = http(&addr, "GET", "/v1/stats", "");
    let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stats["documents"], 241, "{stats}");
    assert!(stats["segments"].as_u64().unwrap() <= 10, "{stats}");

    // Acknowledged, never made visible, then killed without warning: the write is in the log,
    // and the next writer applies it.
    let (status, v) = post(
        &addr,
        "/v1/documents",
        r#"{"documents": [{"id": "e", "vector": {"x": 1}}]}"#,
    );
    assert_eq!((status, v["visible"].as_bool()), (200, Some(false)), "{v}");
    served.child.kill().unwrap();
    served.child.wait().unwrap();
    common::ok(dir, &["check", "--index", "col"]);
    // With the default refresh interval (a second), writes become visible of themselves.
    let served = Served::start(dir, &["--index", "col", "--writable"]);
    let addr = served.addr.clone();
    let search = |body: &str| {
        let (status, body) = http(&addr, "POST", "/v1/search", body);
        assert_eq!(status, 200, "{body}");
        hits(&serde_json::from_str(&body).unwrap())
    };
    assert_eq!(search(query), [hit("b", 2, 1), hit("e", 1, 2)]);
    let (_, body) = http(&addr, "GET", "/v1/health", "");
    assert!(body.contains("\"documents\":242"), "{body}");
    let (status, v) = post(
        &addr,
        "/v1/documents",
        r#"{"documents": [{"id": "f", "vector": {"x": 3}}]}"#,
    );
    assert_eq!(status, 200, "{v}");
    let start = std::time::Instant::now();
    while search(query).len() < 3 {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "never visible"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    served.stop();
}

#[test]
fn acknowledged_writes_survive_a_kill_in_the_middle_of_an_ingest() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir(dir.join("col")).unwrap();
    // Refreshes now and then, so that the kill may fall in a log append, a segment build, a
    // manifest change or a merge.
    let mut served = Served::start(dir, &["--index", "col", "--writable", "--refresh-ms", "30"]);
    let addr = served.addr.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..4)
        .map(|t| {
            let (addr, stop) = (addr.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut acknowledged = Vec::new();
                for r in 0.. {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        break;
                    }
                    let ids: Vec<String> = (0..5).map(|i| format!("t{t}-{r}-{i}")).collect();
                    let docs: Vec<String> = ids
                        .iter()
                        .map(|id| format!(r#"{{"id": "{id}", "vector": {{"z": 1}}}}"#))
                        .collect();
                    let body = format!(r#"{{"documents": [{}]}}"#, docs.join(","));
                    // A request cut off by the kill fails here and is not acknowledged.
                    match try_http(&addr, "POST", "/v1/documents", &body) {
                        Some((200, _)) => acknowledged.extend(ids),
                        _ => break,
                    }
                }
                acknowledged
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    served.child.kill().unwrap();
    served.child.wait().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let acknowledged: Vec<String> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    assert!(!acknowledged.is_empty());
    common::ok(dir, &["check", "--index", "col"]);
    let served = Served::start(dir, &["--index", "col", "--writable", "--max-k", "1000000"]);
    let (status, body) = http(
        &served.addr,
        "POST",
        "/v1/search",
        r#"{"vector": {"z": 1}, "k": 1000000}"#,
    );
    assert_eq!(status, 200, "{body}");
    let found: std::collections::HashSet<String> = hits(&serde_json::from_str(&body).unwrap())
        .into_iter()
        .map(|h| h.0)
        .collect();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !found.contains(*id))
        .collect();
    assert!(lost.is_empty(), "acknowledged, then lost: {lost:?}");
    served.stop();
}

#[test]
fn a_server_of_several_collections_keeps_each_ones_writes_across_a_kill() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    // No refresh of the writers' own accord: the writes are in the logs only when killed.
    // Creating collections takes an admin key.
    const ADMIN: &str = "admin-key-0123456789";
    std::fs::write(dir.join("keys"), format!("admin {ADMIN}\n")).unwrap();
    let args = [
        "--collections",
        "cols",
        "--writable",
        "--refresh-ms",
        "0",
        "--api-keys",
        "keys",
    ];
    let mut served = Served::start(dir, &args);
    let addr = served.addr.clone();
    let (status, _) = http(&addr, "PUT", "/v1/collections/red", "");
    assert_eq!(status, 401);
    let http =
        |addr: &str, method: &str, path: &str, body: &str| http_as(addr, ADMIN, method, path, body);
    for name in ["red", "blue"] {
        let (status, body) = http(&addr, "PUT", &format!("/v1/collections/{name}"), "");
        assert_eq!(status, 201, "{body}");
        let docs: Vec<String> = (0..3)
            .map(|i| {
                format!(
                    r#"{{"id": "{name}{i}", "vector": {{"{name}": {}}}}}"#,
                    i + 1
                )
            })
            .collect();
        let body = format!(r#"{{"documents": [{}]}}"#, docs.join(","));
        let (status, body) = http(
            &addr,
            "POST",
            &format!("/v1/collections/{name}/documents"),
            &body,
        );
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(r#""visible":false"#), "{body}");
    }
    let (status, body) = http(&addr, "DELETE", "/v1/collections/red/documents/red1", "");
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(&addr, "POST", "/v1/search", r#"{"vector": {"red": 1}}"#);
    assert_eq!(status, 404, "{body}");
    served.child.kill().unwrap();
    served.child.wait().unwrap();

    let served = Served::start(dir, &args);
    let (status, body) = http(&served.addr, "GET", "/v1/collections", "");
    assert_eq!(status, 200, "{body}");
    let list: serde_json::Value = serde_json::from_str(&body).unwrap();
    let names: Vec<&str> = list["collections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["blue", "red"]);
    for (name, want) in [
        ("red", vec!["red2", "red0"]),
        ("blue", vec!["blue2", "blue1", "blue0"]),
    ] {
        let query = r#"{"vector": {"red": 1, "blue": 1}}"#;
        let (status, body) = http(
            &served.addr,
            "POST",
            &format!("/v1/collections/{name}/search"),
            query,
        );
        assert_eq!(status, 200, "{body}");
        let ids: Vec<String> = hits(&serde_json::from_str(&body).unwrap())
            .into_iter()
            .map(|h| h.0)
            .collect();
        assert_eq!(ids, want, "{name}");
    }
    served.stop();
}

#[test]
fn documents_written_as_text_over_http_are_encoded_as_add_encodes_them() {
    let (Some(model), Some(cranfield)) = (common::model(), common::dataset("cranfield")) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let corpus: Vec<String> = std::fs::read_to_string(cranfield.join("corpus.jsonl"))
        .unwrap()
        .lines()
        .take(40)
        .map(str::to_owned)
        .collect();
    std::fs::write(dir.join("corpus.jsonl"), corpus.join("\n")).unwrap();
    let queries: Vec<String> = std::fs::read_to_string(cranfield.join("queries.jsonl"))
        .unwrap()
        .lines()
        .take(6)
        .map(str::to_owned)
        .collect();
    std::fs::write(dir.join("queries.jsonl"), queries.join("\n")).unwrap();
    let m = model.to_str().unwrap();
    ok(
        dir,
        &[
            "add",
            "--collection",
            "cli",
            "--input",
            "corpus.jsonl",
            "--model",
            m,
        ],
    );

    // The same documents as texts (title, a space, text: as a BEIR corpus is read), in one
    // request, through a server encoding 32 texts per pass as `add` does.
    std::fs::create_dir(dir.join("http")).unwrap();
    let args = [
        "--index",
        "http",
        "--writable",
        "--model",
        m,
        "--encoder-batch",
        "32",
    ];
    let served = Served::start(dir, &args);
    let docs: Vec<serde_json::Value> = corpus
        .iter()
        .map(|line| {
            let d: serde_json::Value = serde_json::from_str(line).unwrap();
            let text = format!(
                "{} {}",
                d["title"].as_str().unwrap_or_default(),
                d["text"].as_str().unwrap_or_default()
            );
            serde_json::json!({"id": d["_id"], "text": text.trim()})
        })
        .collect();
    let body = serde_json::json!({ "documents": docs }).to_string();
    let (status, answer) = http(&served.addr, "POST", "/v1/documents?refresh=true", &body);
    assert_eq!(status, 200, "{answer}");
    assert!(answer.contains(r#""added":40"#), "{answer}");
    served.stop();

    let search = |index: &str| {
        let out = format!("run-{index}");
        ok(
            dir,
            &[
                "search",
                "--index",
                index,
                "--model",
                m,
                "--queries",
                "queries.jsonl",
                "--k",
                "10",
                "--output",
                &out,
            ],
        );
        read_run(&dir.join(out))
    };
    let from_cli = search("cli");
    assert!(!from_cli.is_empty());
    assert_eq!(search("http"), from_cli);
}

#[test]
fn request_logs_name_route_status_and_id_but_no_key_and_no_query() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let docs: String = (0..20)
        .map(|i| {
            format!(
                "{{\"id\": \"d{i}\", \"vector\": {{\"secretterm\": {}}}}}\n",
                i + 1
            )
        })
        .collect();
    std::fs::write(dir.join("docs.jsonl"), docs).unwrap();
    ok(
        dir,
        &["build", "--input", "docs.jsonl", "--output", "x.bmp"],
    );
    const KEY: &str = "read-key-never-logged-0123";
    std::fs::write(dir.join("keys"), format!("read {KEY}\n")).unwrap();
    let args = [
        "--index",
        "x.bmp",
        "--api-keys",
        "keys",
        "--log-format",
        "json",
    ];
    let served = Served::start(dir, &args);
    let query = r#"{"vector": {"secretterm": 1}, "k": 3}"#;
    let (status, body) = http_as(&served.addr, KEY, "POST", "/v1/search", query);
    assert_eq!(status, 200, "{body}");
    let (status, _) = http(&served.addr, "POST", "/v1/search", query);
    assert_eq!(status, 401);
    let log = served.stop();
    assert!(!log.contains(KEY), "a key in the log:\n{log}");
    assert!(!log.contains("secretterm"), "a query in the log:\n{log}");
    let answered: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == "answered")
        .collect();
    let statuses: Vec<u64> = answered
        .iter()
        .filter(|v| v["span"]["route"] == "/v1/search" && v["span"]["method"] == "POST")
        .map(|v| v["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [200, 401], "{log}");
    for v in &answered {
        assert!(!v["span"]["id"].as_str().unwrap().is_empty(), "{v}");
        assert!(v["latency_us"].is_u64(), "{v}");
    }
}
