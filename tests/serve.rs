//! `bmp-index serve` end to end: the real binary on an ephemeral loopback port, plain HTTP/1.1
//! requests, answers identical to `bmp-index search` (vector queries, and text queries through
//! the real SPLADE model), a JSON error for a bad request, reload on SIGHUP, and a clean exit on
//! SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::time::{Duration, Instant};

mod common;

const BIN: &str = env!("CARGO_BIN_EXE_bmp-index");

fn ok(dir: &Path, args: &[&str]) {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running `bmp-index serve`.
struct Served {
    child: Child,
    stderr: BufReader<ChildStderr>,
    addr: String,
}

impl Served {
    /// Starts `serve` in `dir` on an ephemeral port with `args` added.
    fn start(dir: &Path, args: &[&str]) -> Served {
        let mut child = Command::new(BIN)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .rsplit_once("http://")
            .map(|(_, a)| a.to_owned())
            .unwrap_or_else(|| panic!("no address in {line:?}"));
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
fn read_run(path: &Path) -> Vec<(String, String, u32, usize)> {
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

/// `(id, score, rank)` of a response's hits.
fn hits(v: &serde_json::Value) -> Vec<(String, u32, usize)> {
    v["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["id"].as_str().unwrap().to_owned(),
                h["score"].as_u64().unwrap() as u32,
                h["rank"].as_u64().unwrap() as usize,
            )
        })
        .collect()
}

/// Sends one request and returns (status, body).
fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
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
    let want: Vec<(String, u32, usize)> = read_run(&dir.join("run"))
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

#[test]
fn text_queries_answer_like_search_with_the_model() {
    let (Some(model), Some(cranfield)) = (common::model(), common::dataset("cranfield")) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
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
        lines("corpus.jsonl", 150).join("\n"),
    )
    .unwrap();
    let queries = lines("queries.jsonl", 8);
    std::fs::write(dir.join("queries.jsonl"), queries.join("\n")).unwrap();
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
    let want = |qid: &str| -> Vec<(String, u32, usize)> {
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
        assert_eq!(hits(&v), want(qid), "query {qid}");
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
                    assert_eq!(hits(&v), want(qid), "query {qid}");
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
        assert_eq!(hits(result), want(result["id"].as_str().unwrap()));
    }
    let (_, stats) = http(&server.addr, "GET", "/v1/stats", "");
    assert!(stats.contains("splade-tiny"), "{stats}");
    server.stop();
}
