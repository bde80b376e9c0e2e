//! `bmp-index serve` end to end: the real binary on an ephemeral loopback port, plain HTTP/1.1
//! requests, answers identical to `bmp-index search`, a JSON error for a bad request, and a clean
//! exit on SIGTERM.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};

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
    let want: Vec<(String, u32, usize)> = std::fs::read_to_string(dir.join("run"))
        .unwrap()
        .lines()
        .map(|l| {
            let c: Vec<&str> = l.split(' ').collect();
            (
                c[2].to_owned(),
                c[4].parse().unwrap(),
                c[3].parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(want.len(), 7);

    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--index",
            "x.bmp",
            "--addr",
            "127.0.0.1:0",
            "--threads",
            "2",
        ])
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

    let (status, body) = http(
        &addr,
        "POST",
        "/v1/search",
        &format!(r#"{{"vector": {query}, "k": 7, "algorithm": "bmp"}}"#),
    );
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let got: Vec<(String, u32, usize)> = v["hits"]
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
        .collect();
    assert_eq!(got, want, "HTTP answers equal `bmp-index search`");

    let (status, body) = http(&addr, "POST", "/v1/search", r#"{"vector": {"a": "x"}}"#);
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("\"error\"") && body.contains("vector"),
        "{body}"
    );
    let (status, body) = http(&addr, "GET", "/v1/health", "");
    assert_eq!(status, 200, "{body}");

    // SIGTERM: a graceful stop with exit code 0.
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    stderr.read_to_string(&mut rest).unwrap();
    assert!(status.success(), "exit {status:?}: {rest}");
    assert!(rest.contains("stopped"), "{rest}");
}
