//! A loopback soak of `bmp-index serve`: 8 concurrent clients send a mix of valid, malformed and
//! oversized requests while the index is rebuilt and reloaded (SIGHUP and the admin endpoint)
//! every few seconds. Every valid request must get a 2xx, every bad one a 4xx, the server must
//! not crash, and its heap (anonymous resident memory) must not grow after warm-up: its lowest
//! level late in the soak at most 10% above its highest early on. p99 latency of the valid
//! requests and the heap are printed per window.
//!
//! The server requires API keys: the clients search with a read key, reloads use an admin key.
//!
//! It runs for `BMP_SOAK_SECS` seconds (30 by default, as in CI; 600 for the full soak).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use common::ok as bmp;

const CLIENTS: usize = 8;
const BODY_LIMIT: usize = 64 << 10;

/// One request over a fresh connection: the status, or `None` when the connection failed.
fn request(addr: &str, key: &str, method: &str, path: &str, body: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .ok()?;
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Authorization: Bearer {key}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).ok()?;
    // An oversized body may be refused before it is all sent.
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    std::str::from_utf8(response.get(9..12)?).ok()?.parse().ok()
}

/// The key the clients search with, and the one reloads are asked with.
const READ_KEY: &str = "soak-read-key-0123456789";
const ADMIN_KEY: &str = "soak-admin-key-0123456789";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Valid,
    Bad,
}

/// The request of client `c`'s `n`-th turn: (kind, method, path, body).
fn pick(c: usize, n: u64, terms: &[String]) -> (Kind, &'static str, &'static str, Vec<u8>) {
    let r = (n.wrapping_mul(2654435761).wrapping_add(c as u64 * 97)) % 100;
    let term = |i: u64| terms[((i * 7919 + c as u64) % terms.len() as u64) as usize].clone();
    let vector = |len: u64| -> serde_json::Value {
        (0..len)
            .map(|i| (term(n + i), serde_json::json!(0.5 + (i % 5) as f64)))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    match r {
        0..=59 => {
            let body = serde_json::json!({"vector": vector(1 + n % 12), "k": 1 + n % 50});
            (
                Kind::Valid,
                "POST",
                "/v1/search",
                body.to_string().into_bytes(),
            )
        }
        60..=69 => {
            let queries: Vec<_> = (0..4)
                .map(|i| serde_json::json!({"id": i, "vector": vector(3 + i), "k": 10}))
                .collect();
            let body = serde_json::json!({"queries": queries});
            (
                Kind::Valid,
                "POST",
                "/v1/search/batch",
                body.to_string().into_bytes(),
            )
        }
        70..=74 => (Kind::Valid, "GET", "/v1/health", Vec::new()),
        75..=79 => (
            Kind::Bad,
            "POST",
            "/v1/search",
            b"{\"vector\": {\"a\": ".to_vec(),
        ),
        80..=83 => (
            Kind::Bad,
            "POST",
            "/v1/search",
            br#"{"vector": {"a": "heavy"}, "k": -3}"#.to_vec(),
        ),
        84..=86 => (
            Kind::Bad,
            "POST",
            "/v1/search",
            serde_json::json!({"vector": vector(2), "k": 100000000})
                .to_string()
                .into_bytes(),
        ),
        87..=91 => {
            let mut body = b"{\"vector\": {".to_vec();
            body.resize(BODY_LIMIT * 2, b' ');
            (Kind::Bad, "POST", "/v1/search", body)
        }
        92..=95 => (Kind::Bad, "GET", "/v1/search", Vec::new()),
        _ => (Kind::Bad, "POST", "/v1/nowhere", b"{}".to_vec()),
    }
}

#[derive(Default)]
struct Tally {
    /// Latencies (µs) of valid requests, per window.
    windows: Vec<Vec<u64>>,
    valid: u64,
    bad: u64,
    /// Problems: a valid request without a 2xx, a bad one without a 4xx, a failed connection.
    failures: Vec<String>,
}

fn p99(mut v: Vec<u64>) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    v[(v.len() * 99 / 100).min(v.len() - 1)]
}

#[test]
fn serve_survives_a_loopback_soak_with_reloads() {
    let secs: u64 = std::env::var("BMP_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let window = Duration::from_secs(if secs >= 300 { 60 } else { 10 });
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for (name, seed) in [("a", 1), ("b", 2)] {
        common::synth(dir, name, 30000, 1, seed);
        bmp(
            dir,
            &[
                "build",
                "--input",
                &format!("{name}.jsonl"),
                "--output",
                &format!("{name}.bmp"),
            ],
        );
    }
    std::fs::copy(dir.join("a.bmp"), dir.join("live.bmp")).unwrap();
    let terms: Vec<String> = common::vocabulary(&dir.join("a.jsonl"), 500)
        .into_iter()
        .collect();

    let limit = BODY_LIMIT.to_string();
    std::fs::write(
        dir.join("keys"),
        format!("read {READ_KEY}\nadmin {ADMIN_KEY}\n"),
    )
    .unwrap();
    let (mut server, mut stderr, addr) = common::start_serve(
        dir,
        &[
            "--api-keys",
            "keys",
            "--index",
            "live.bmp",
            "--threads",
            "2",
            "--max-body-bytes",
            &limit,
        ],
    );
    // Keep draining the server's log so it never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let pid = server.id();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let nwindows = secs.div_ceil(window.as_secs()) as usize;
    let tally = Arc::new(Mutex::new(Tally {
        windows: vec![Vec::new(); nwindows + 1],
        ..Tally::default()
    }));
    let stop = Arc::new(AtomicBool::new(false));

    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (addr, terms, tally) = (addr.clone(), terms.clone(), tally.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    let (kind, method, path, body) = pick(c, n, &terms);
                    let sent = Instant::now();
                    let status = request(&addr, READ_KEY, method, path, &body);
                    let micros = sent.elapsed().as_micros() as u64;
                    let w = (sent.duration_since(start).as_secs() / window.as_secs()) as usize;
                    let mut t = tally.lock().unwrap();
                    match (kind, status) {
                        (Kind::Valid, Some(200..=299)) => {
                            t.valid += 1;
                            if let Some(v) = t.windows.get_mut(w) {
                                v.push(micros);
                            }
                        }
                        (Kind::Bad, Some(400..=499)) => t.bad += 1,
                        (kind, status) => t.failures.push(format!(
                            "{kind:?} {method} {path} ({} bytes): {status:?}",
                            body.len()
                        )),
                    }
                    n += 1;
                }
            })
        })
        .collect();

    // Reloads: every 3 s the live index is replaced (rename) by the other one and reloaded,
    // by SIGHUP and by the admin endpoint in turn.
    let reloader = {
        let (addr, stop, dir) = (addr.clone(), stop.clone(), dir.to_path_buf());
        std::thread::spawn(move || {
            let mut reloads = 0u32;
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(3));
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let source = if reloads.is_multiple_of(2) {
                    "b.bmp"
                } else {
                    "a.bmp"
                };
                std::fs::copy(dir.join(source), dir.join("next.bmp")).unwrap();
                std::fs::rename(dir.join("next.bmp"), dir.join("live.bmp")).unwrap();
                if reloads % 4 < 2 {
                    let ok = Command::new("kill")
                        .args(["-HUP", &pid.to_string()])
                        .status()
                        .is_ok_and(|s| s.success());
                    if !ok {
                        failures.push("SIGHUP failed".to_owned());
                    }
                } else {
                    let status = request(&addr, ADMIN_KEY, "POST", "/v1/admin/reload", b"");
                    if status != Some(200) {
                        failures.push(format!("admin reload: {status:?}"));
                    }
                }
                reloads += 1;
            }
            (reloads, failures)
        })
    };

    // Memory, once a second; the first fifth of the run is warm-up.
    let mut samples = Vec::new();
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        match common::memory_kib(pid) {
            Some(s) => samples.push((start.elapsed(), s)),
            None => panic!("the server is gone after {:?}", start.elapsed()),
        }
    }
    for client in clients {
        client.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let (reloads, reload_failures) = reloader.join().unwrap();
    assert!(server.try_wait().unwrap().is_none(), "the server exited");
    assert_eq!(request(&addr, "", "GET", "/v1/health", b""), Some(200));
    // Keys are checked to the end: none is refused, a read key cannot reload.
    assert_eq!(request(&addr, "", "POST", "/v1/search", b"{}"), Some(401));
    assert_eq!(
        request(&addr, READ_KEY, "POST", "/v1/admin/reload", b""),
        Some(403)
    );
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let status = server.wait().unwrap();

    let tally = tally.lock().unwrap();
    eprintln!(
        "soak of {secs} s, {CLIENTS} clients: {} valid requests, {} bad ones, {reloads} reloads",
        tally.valid, tally.bad
    );
    eprintln!("window   valid  p99_us  heap_KiB");
    for (w, lat) in tally
        .windows
        .iter()
        .enumerate()
        .filter(|(_, l)| !l.is_empty())
    {
        let heap: Vec<u64> = samples
            .iter()
            .filter(|(t, _)| (t.as_secs() / window.as_secs()) as usize == w)
            .map(|(_, (anon, _))| *anon)
            .collect();
        let (lo, hi) = (
            heap.iter().min().unwrap_or(&0),
            heap.iter().max().unwrap_or(&0),
        );
        eprintln!(
            "{:>6}  {:>6}  {:>6}  {lo}..{hi}",
            w,
            lat.len(),
            p99(lat.clone())
        );
    }
    let warm = samples
        .iter()
        .filter(|(t, _)| t.as_secs() >= (secs / 5).max(5))
        .map(|(_, (anon, _))| *anon)
        .collect::<Vec<_>>();
    let (low, high) = (
        warm.iter().copied().min().unwrap_or(0),
        warm.iter().copied().max().unwrap_or(0),
    );
    let total = samples.iter().map(|(_, (_, t))| *t).max().unwrap_or(0);
    eprintln!(
        "heap after warm-up: {} KiB at first, then {low}..{high} KiB; largest resident set {total} KiB",
        warm.first().copied().unwrap_or(0)
    );
    assert!(
        status.success(),
        "the server did not stop cleanly: {status:?}"
    );
    assert!(
        tally.failures.is_empty(),
        "{} requests without the expected status, e.g. {:?}",
        tally.failures.len(),
        &tally.failures[..tally.failures.len().min(5)]
    );
    assert!(reload_failures.is_empty(), "{reload_failures:?}");
    assert!(reloads >= 2, "{reloads} reloads");
    assert!(tally.valid > 100 && tally.bad > 20);
    // A leak raises the heap's floor: the lowest sample of the last third after warm-up may not
    // stand 10% above the highest of the first third. (The heap swings by several percent with
    // the requests in flight, so one sample is no level; the table above shows the swings.) No
    // sample may stand 50% above that level either.
    let third = (warm.len() / 3).max(1);
    let level = warm.iter().take(third).copied().max().unwrap_or(0);
    let late_floor = warm.iter().rev().take(third).copied().min().unwrap_or(0);
    assert!(
        late_floor as f64 <= level as f64 * 1.10,
        "the heap grew after warm-up: from at most {level} KiB to at least {late_floor} KiB"
    );
    assert!(
        high as f64 <= level as f64 * 1.5,
        "the heap reached {high} KiB after warm-up, from at most {level} KiB"
    );
}
