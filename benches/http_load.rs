//! A bounded HTTP load generator for `POST /v1/search`: QPS and p50 / p99 latency at several
//! client counts, next to the same queries answered in-process on one thread, so that the HTTP
//! overhead shows. Loopback only; each client keeps one connection open and sends its next
//! request when the previous answer has arrived.
//!
//! ```text
//! cargo bench --bench http_load                      # 50,000 synthetic documents, in-process server
//! cargo bench --bench http_load -- --index X.bmp --queries Q.tsv [--url http://127.0.0.1:8080]
//!     [--clients 1,2,8] [--requests 4000] [--seconds 60] [--k 10] [--algorithm bmp] [--threads N]
//! cargo bench --bench http_load -- --url http://127.0.0.1:8080 --index X.bmp --queries Q.tsv
//!     --text queries.jsonl          # text queries (BEIR queries.jsonl) to a server with --model
//! ```
//!
//! Without `--url` the server runs in this process (on its own runtime, `--threads` query
//! threads); with it, the load goes to that server (e.g. `bmp-index serve --index X.bmp`), which
//! must serve the index given with `--index` for the in-process baseline to compare like with
//! like. Each client count runs until `--requests` answers or `--seconds` have passed, whichever
//! comes first, after a warm-up pass over the queries. The last column is the CPU this process used
//! (as a share of one core): the load generator's own cost, which on a small machine competes with
//! the server (with the server in this process it includes the server). With `--text`, the requests carry the texts
//! of a BEIR queries file (`{"query": text}`) instead of the vectors of `--queries`, which then only
//! serve the in-process baseline; comparing a server started with `--encoder-batch 1` against one
//! with the default shows what batching concurrent texts does.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bmp_index::readers::queries::read_queries;
use bmp_index::Index;
use bmp_query::{Query, SearchSpec};
use bmp_server::{AppState, ServerConfig};

struct Options {
    index: Option<PathBuf>,
    queries: Option<PathBuf>,
    url: Option<String>,
    clients: Vec<usize>,
    requests: usize,
    seconds: f64,
    k: usize,
    algorithm: String,
    threads: Option<usize>,
    text: Option<PathBuf>,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        index: None,
        queries: None,
        url: None,
        clients: vec![1, 2, 8],
        requests: 4000,
        seconds: 60.0,
        k: 10,
        algorithm: "bmp".into(),
        threads: None,
        text: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--bench" {
            continue; // passed by `cargo bench`
        }
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        let number = |v: String| {
            v.parse::<usize>()
                .map_err(|_| format!("{arg}: not a number: {v}"))
        };
        match arg.as_str() {
            "--index" => o.index = Some(value()?.into()),
            "--queries" => o.queries = Some(value()?.into()),
            "--url" => o.url = Some(value()?.trim_end_matches('/').to_string()),
            "--clients" => {
                o.clients = value()?
                    .split(',')
                    .map(|c| number(c.to_string()))
                    .collect::<Result<_, _>>()?
            }
            "--requests" => o.requests = number(value()?)?,
            "--seconds" => {
                o.seconds = value()?
                    .parse()
                    .map_err(|_| format!("{arg}: not a number"))?
            }
            "--k" => o.k = number(value()?)?,
            "--algorithm" => o.algorithm = value()?,
            "--threads" => o.threads = Some(number(value()?)?),
            "--text" => o.text = Some(value()?.into()),
            other => {
                return Err(format!(
                    "unknown argument {other:?} (see the file's header)"
                ))
            }
        }
    }
    if o.url.is_some() && o.index.is_none() {
        return Err("--url needs --index (the index that server serves)".into());
    }
    if o.text.is_some() && o.url.is_none() {
        return Err("--text needs --url (a server started with --model)".into());
    }
    if o.index.is_some() != o.queries.is_some() {
        return Err("give --index and --queries together".into());
    }
    Ok(o)
}

struct Latencies {
    micros: Vec<f64>,
}

impl Latencies {
    fn mean(&self) -> f64 {
        self.micros.iter().sum::<f64>() / self.micros.len().max(1) as f64
    }

    fn percentile(&self, p: f64) -> f64 {
        let mut v = self.micros.clone();
        v.sort_by(f64::total_cmp);
        if v.is_empty() {
            return 0.0;
        }
        let i = ((p / 100.0) * v.len() as f64).ceil() as usize;
        v[i.clamp(1, v.len()) - 1]
    }
}

/// The queries answered in-process on this thread, as `bmp-index bench` does.
fn in_process(
    index: &Index,
    queries: &[Vec<(String, f32)>],
    spec: &SearchSpec,
    k: usize,
) -> Latencies {
    let mut searcher = spec.searcher(index);
    let parsed: Vec<Query> = queries
        .iter()
        .map(|q| Query::from_entries(index, q).expect("valid query"))
        .collect();
    for q in &parsed {
        std::hint::black_box(searcher.search(q, k).expect("search succeeds"));
    }
    let micros = parsed
        .iter()
        .map(|q| {
            let start = Instant::now();
            std::hint::black_box(searcher.search(q, k).expect("search succeeds"));
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    Latencies { micros }
}

/// Like [`in_process`], with what the server does per request: resolve the query's terms, make a
/// searcher, search, and name the hits.
fn in_process_per_request(
    index: &Index,
    queries: &[Vec<(String, f32)>],
    spec: &SearchSpec,
    k: usize,
) -> Latencies {
    let micros = queries
        .iter()
        .map(|q| {
            let start = Instant::now();
            let query = Query::from_entries(index, q).expect("valid query");
            let hits = spec
                .searcher(index)
                .search(&query, k)
                .expect("search succeeds");
            let ids: Vec<String> = hits
                .iter()
                .map(|h| index.doc_id(h.doc).expect("doc id").to_string())
                .collect();
            std::hint::black_box(ids);
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    Latencies { micros }
}

/// CPU seconds this process has used so far (user + system, from /proc; 0 where unavailable).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which ends with ')'): utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Linux reports clock ticks of 1/100 s on every common configuration.
    (ticks(11) + ticks(12)) / 100.0
}

/// `clients` concurrent clients send `bodies` round-robin until `requests` answers or `limit`.
async fn load(
    url: &str,
    bodies: Arc<Vec<String>>,
    clients: usize,
    requests: usize,
    limit: Duration,
) -> (Latencies, Duration) {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (url, bodies, next) = (url.to_string(), bodies.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .expect("HTTP client");
            let mut micros = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests || start.elapsed() > limit {
                    break;
                }
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(bodies[i % bodies.len()].clone())
                    .send()
                    .await
                    .expect("request sent");
                let status = r.status();
                let body = r.bytes().await.expect("response read");
                assert!(
                    status.is_success(),
                    "{status}: {}",
                    String::from_utf8_lossy(&body)
                );
                micros.push(t.elapsed().as_secs_f64() * 1e6);
            }
            micros
        }));
    }
    let mut micros = Vec::new();
    for t in tasks {
        micros.extend(t.await.expect("client task"));
    }
    (Latencies { micros }, start.elapsed())
}

fn main() {
    let options = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("http_load: {e}");
            std::process::exit(2);
        }
    };
    let spec: SearchSpec = match options.algorithm.parse() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("http_load: --algorithm: {e}");
            std::process::exit(2);
        }
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let (index_path, queries) = match (&options.index, &options.queries) {
        (Some(index), Some(queries)) => {
            let records = read_queries(queries).expect("queries read");
            (
                index.clone(),
                records.into_iter().map(|r| r.entries).collect::<Vec<_>>(),
            )
        }
        _ => {
            eprintln!("building a 50,000-document synthetic index...");
            common::synthetic_index(dir.path(), "load.bmp", 50_000, 200)
        }
    };
    let index = Index::open(&index_path).expect("index opens");
    let baseline = in_process(&index, &queries, &spec, options.k);
    let per_request = in_process_per_request(&index, &queries, &spec, options.k);

    let mut config = ServerConfig::default();
    if let Some(t) = options.threads {
        config.blocking_threads = t.max(1);
    }
    // The in-process server runs on its own runtime, so that clients and server do not share one.
    let server_runtime = config.build_runtime().expect("server runtime");
    let (url, stop) = match &options.url {
        Some(url) => (format!("{url}/v1/search"), None),
        None => {
            let state = AppState::new(
                Index::open(&index_path).expect("index opens"),
                config.clone(),
            );
            let listener = server_runtime
                .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
                .expect("bind");
            let addr = listener.local_addr().expect("address");
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            server_runtime.spawn(bmp_server::serve(listener, state, async move {
                let _ = rx.await;
            }));
            (format!("http://{addr}/v1/search"), Some(tx))
        }
    };
    let texts: Option<Vec<String>> = options.text.as_ref().map(|path| {
        std::fs::read_to_string(path)
            .expect("text queries read")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
                v["text"].as_str().expect("a \"text\" field").to_string()
            })
            .collect()
    });
    let bodies: Arc<Vec<String>> = Arc::new(match &texts {
        Some(texts) => texts
            .iter()
            .map(|t| {
                serde_json::json!({"query": t, "k": options.k, "algorithm": spec.name()})
                    .to_string()
            })
            .collect(),
        None => queries
            .iter()
            .map(|q| {
                let vector: serde_json::Map<String, serde_json::Value> = q
                    .iter()
                    .map(|(t, w)| (t.clone(), serde_json::json!(w)))
                    .collect();
                let mut body = serde_json::json!({"vector": vector, "k": options.k,
                    "algorithm": spec.name()});
                for (param, value) in spec.params() {
                    body[param.name] = serde_json::json!(value);
                }
                body.to_string()
            })
            .collect(),
    });
    let clients_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("client runtime");
    let limit = Duration::from_secs_f64(options.seconds);
    // Warm-up: every query once.
    clients_runtime.block_on(load(&url, bodies.clone(), 1, bodies.len().min(500), limit));

    println!(
        "index {} ({} documents), {} {} queries, algorithm {spec}, k = {}, server: {}",
        index_path.display(),
        index.num_docs(),
        bodies.len(),
        if texts.is_some() { "text" } else { "vector" },
        options.k,
        options.url.as_deref().unwrap_or("in this process"),
    );
    println!(
        "{:<26} {:>8} {:>10} {:>10} {:>10} {:>10} {:>12}",
        "", "answers", "QPS", "mean µs", "p50 µs", "p99 µs", "client CPU"
    );
    println!(
        "{:<26} {:>8} {:>10.0} {:>10.0} {:>10.0} {:>10.0}",
        "in-process, 1 thread",
        baseline.micros.len(),
        1e6 / baseline.mean(),
        baseline.mean(),
        baseline.percentile(50.0),
        baseline.percentile(99.0)
    );
    println!(
        "{:<26} {:>8} {:>10.0} {:>10.0} {:>10.0} {:>10.0}",
        "in-process, as a request",
        per_request.micros.len(),
        1e6 / per_request.mean(),
        per_request.mean(),
        per_request.percentile(50.0),
        per_request.percentile(99.0)
    );
    for &clients in &options.clients {
        let cpu = cpu_seconds();
        let (lat, wall) = clients_runtime.block_on(load(
            &url,
            bodies.clone(),
            clients.max(1),
            options.requests,
            limit,
        ));
        // With the server in this process, the CPU share counts it too.
        let client_cpu = (cpu_seconds() - cpu) / wall.as_secs_f64();
        println!(
            "{:<26} {:>8} {:>10.0} {:>10.0} {:>10.0} {:>10.0} {:>11.0}%",
            format!("HTTP, {clients} client(s)"),
            lat.micros.len(),
            lat.micros.len() as f64 / wall.as_secs_f64(),
            lat.mean(),
            lat.percentile(50.0),
            lat.percentile(99.0),
            client_cpu * 100.0
        );
    }
    if let Some(stop) = stop {
        let _ = stop.send(());
    }
}
