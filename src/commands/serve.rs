//! `bmp-index serve`: the HTTP search API over an index.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use bmp_encoder::{ClusterSpec, DeviceKind, Precision, TokenEncoder};
use bmp_index::build::BuildOptions;
use bmp_index::segments::{CollectionDir, Recovery, RefreshPolicy, Snapshot};
use bmp_index::Index;
use bmp_server::auth::KEYS_VARIABLE;
use bmp_server::{
    refresh_every, reload_on_hangup, serve, serve_tls, shutdown_signal, ApiKeys, AppState,
    QueryEncoder, QueryVectorizer, Reranker, ServedIndex, ServerConfig, Tls,
};
use clap::Args;

use super::encoding::{load_encoder, parse_device, parse_precision, EncoderArgs, TextEncoder};
use super::multivec::{open_rerank_stage, TokenModelArgs};

/// Serve an index, or a collection directory, over HTTP (JSON).
///
/// Endpoints: `POST /v1/search` with `{"vector": {"term": weight}}` or, with --model,
/// `{"query": "text"}`, plus optional `"k": 10, "algorithm": "bmp", "alpha": a, "beta": b` (or
/// `"algorithm": "sp", "mu": m, "eta": e`) and `"filter": ["doc id", ...]`; `POST /v1/search/batch` with `{"queries": [...]}`;
/// `GET /v1/health`; `GET /v1/stats`; `GET /metrics` (Prometheus); `GET /openapi.json`;
/// with an admin key (--api-keys), `POST /v1/admin/reload` (optionally `{"index": "path"}`, a
/// file in --data-dir) to swap in a rebuilt index, which SIGHUP also does. Bad requests get a 4xx JSON error naming the field. Query work runs on a
/// blocking pool of --threads threads; the index is memory-mapped and shared; text queries that
/// arrive together are encoded in one batch. Ctrl-C or SIGTERM stops accepting connections and
/// lets in-flight requests finish. A collection directory (`add`, `delete`, `compact` write it,
/// from another process) is searched across its segments, and its newest generation is served
/// within --refresh-ms of being written. With --collections, every collection in a directory is
/// served under `/v1/collections/{name}/` (`search`, `search/batch`, `documents`,
/// `documents/delete`, `documents/{id}`, `refresh`); `GET /v1/collections` lists them, and with
/// --writable and an admin key `PUT` and `DELETE /v1/collections/{name}` create and drop them.
/// Without --api-keys the server listens on loopback addresses only (unless
/// --insecure-public), and serves no admin route.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Index file, or a collection directory (`add`; an empty directory becomes an empty
    /// collection): its newest generation is served within --refresh-ms of being written.
    #[arg(
        long,
        required_unless_present = "collections",
        conflicts_with = "collections"
    )]
    pub index: Option<PathBuf>,
    /// A directory of collections, one per subdirectory (created if missing): each is served
    /// at `/v1/collections/{name}/...`, named after its subdirectory (1 to 64 letters, digits,
    /// `-`, `_`); `/v1/search` and the other unnamed routes answer 404.
    #[arg(long, conflicts_with = "multivec")]
    pub collections: Option<PathBuf>,
    /// With a collection directory: how often its manifest is read for a newer generation, in
    /// milliseconds; with --writable, the longest a write waits before searches see it (0: only
    /// on SIGHUP, `POST /v1/refresh` or `POST /v1/admin/reload`; with --writable, on
    /// `POST /v1/refresh`, `?refresh=true` or once 2M postings are pending).
    #[arg(long, default_value_t = 1000)]
    pub refresh_ms: u64,
    /// With a collection directory (or --collections): take writes over HTTP (`POST /v1/documents`,
    /// `POST /v1/documents/delete`, `DELETE /v1/documents/{id}`), each answered once durable
    /// in the collection's write-ahead log and visible to searches within --refresh-ms. The
    /// server then holds the collection's writer lock: `add`, `delete` and `compact` from other
    /// processes are refused while it runs; writes a stopped server left logged are applied
    /// when the collection is next opened for writing.
    #[arg(long)]
    pub writable: bool,
    /// SPLADE model directory for text queries (the one the index was built with).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Threads answering queries (default: the number of cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Largest request body in bytes.
    #[arg(long, default_value_t = ServerConfig::default().max_body_bytes)]
    pub max_body_bytes: usize,
    /// Largest k a request may ask for.
    #[arg(long, default_value_t = ServerConfig::default().max_k)]
    pub max_k: usize,
    /// Most query terms per query vector.
    #[arg(long, default_value_t = ServerConfig::default().max_query_terms)]
    pub max_query_terms: usize,
    /// Longest text query in bytes.
    #[arg(long, default_value_t = ServerConfig::default().max_text_bytes)]
    pub max_text_bytes: usize,
    /// Most queries per batch request.
    #[arg(long, default_value_t = ServerConfig::default().max_batch)]
    pub max_batch: usize,
    /// Time budget per request in milliseconds, from its arrival, encoding included: a search
    /// stops there and frees its thread; the request is answered 503, or with the hits found so
    /// far when it asked for `"partial": true`. A query's `timeout_ms` may shorten it.
    #[arg(long, default_value_t = ServerConfig::default().time_budget.as_millis() as u64)]
    pub time_budget_ms: u64,
    /// Most query texts encoded in one forward pass (texts of concurrent requests are batched
    /// together); 1 turns batching off.
    #[arg(long, default_value_t = ServerConfig::default().encoder_batch as u32,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub encoder_batch: u32,
    /// Truncation length of texts (queries, and documents written as text) in tokens
    /// (default: the model's maximum).
    #[arg(long)]
    pub max_length: Option<usize>,
    /// With --writable and --model: keep only the N heaviest terms of each document written as
    /// text, as `add --model --doc-top-k` does (queries are never pruned).
    #[arg(long)]
    pub doc_top_k: Option<usize>,
    /// With --writable and --model: drop the terms of documents written as text whose weight
    /// is below this floor.
    #[arg(long)]
    pub doc_min_weight: Option<f32>,
    /// With --model: text put before every text query before encoding (instruction-tuned
    /// embedders such as Qwen3-Embedding expect one); documents are encoded as they are.
    #[arg(long)]
    pub query_instruction: Option<String>,
    /// Where the model runs: cpu, cuda or cuda:N (cuda needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu", value_parser = parse_device)]
    pub device: DeviceKind,
    /// Precision of the model: f32, or f16 / bf16 on cuda.
    #[arg(long, default_value = "f32", value_parser = parse_precision)]
    pub dtype: Precision,
    /// API keys, one `<scope> <key>` a line (scope `read`, `write` or `admin`; keys of at least
    /// 16 characters; `#` comments): every route but `GET /v1/health` then needs
    /// `Authorization: Bearer <key>` of a scope that covers it (`read`: searches, stats,
    /// listings, metrics; `write`: adds, deletes, refreshes; `admin`: reloads, creating and
    /// dropping collections). The environment variable BMP_API_KEYS may hold the same text
    /// instead. The admin routes are served only when some key has the admin scope.
    #[arg(long)]
    pub api_keys: Option<PathBuf>,
    /// With API keys: the most requests a second each key may make (bursts of as many); past
    /// it, 429 with `Retry-After`.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub key_rate: Option<u32>,
    /// With API keys: the most requests each key may have in flight at once; past it, 429.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub key_concurrency: Option<u32>,
    /// Serve HTTPS with this certificate chain (PEM; with --tls-key). TLS is rustls.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Listen on a non-loopback address without API keys (anyone who can reach it may search
    /// and, with --writable, write).
    #[arg(long)]
    pub insecure_public: bool,
    /// Request logs on standard error (one line per request: its id, method, route, status and
    /// latency; never keys or query texts): `text`, or `json` (one object a line, for log
    /// shippers). Their level comes from RUST_LOG (default `info`; `warn` keeps 5xx answers only).
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// The directory `POST /v1/admin/reload` may open files in (default: the directory holding
    /// --index, or --collections itself).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Multi-vector store (built by `bmp-index multivec` for this index) for reranking text
    /// queries that ask for it (`"rerank": depth`); needs --model.
    #[arg(long, requires = "model")]
    pub multivec: Option<PathBuf>,
    /// The token model of --multivec.
    #[command(flatten)]
    pub token: TokenModelArgs,
}

/// Query texts to multi-vector representations: the token model, then the store's query-side
/// reduction.
struct TokenQueries {
    encoder: TokenEncoder,
    spec: ClusterSpec,
    description: String,
}

impl QueryVectorizer for TokenQueries {
    fn vectors(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, String> {
        let raw = self.encoder.encode(texts).map_err(|e| e.to_string())?;
        Ok(raw.iter().map(|v| self.spec.reduce_query(v).data).collect())
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

/// A SPLADE (or pruned LLM) model as the server's encoder of query and document texts.
struct SpladeQueries {
    encoder: TextEncoder,
    description: String,
}

impl QueryEncoder for SpladeQueries {
    fn encode(&self, texts: &[String]) -> Result<Vec<Vec<(String, f32)>>, String> {
        let vectors = self
            .encoder
            .encode_queries(texts)
            .map_err(|e| format!("{e:#}"))?;
        Ok(vectors.iter().map(|v| self.encoder.entries(v)).collect())
    }

    fn encode_documents(&self, texts: &[String]) -> Result<Vec<Vec<(String, f32)>>, String> {
        let (vectors, _) = self
            .encoder
            .encode_documents(texts, &mut |_| {})
            .map_err(|e| format!("{e:#}"))?;
        Ok(vectors.iter().map(|v| self.encoder.entries(v)).collect())
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

/// The format of the request logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// Sends `tracing` events (the request logs) to standard error, filtered by RUST_LOG.
fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    // A subscriber installed already (by an embedding program) stays.
    let _ = match format {
        LogFormat::Text => logs.try_init(),
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_span_list(false)
            .try_init(),
    };
}

/// Runs `serve`.
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    init_logs(args.log_format);
    let defaults = ServerConfig::default();
    let config = ServerConfig {
        max_body_bytes: args.max_body_bytes,
        max_k: args.max_k,
        max_query_terms: args.max_query_terms,
        max_text_bytes: args.max_text_bytes,
        max_batch: args.max_batch,
        time_budget: Duration::from_millis(args.time_budget_ms),
        blocking_threads: args.threads.unwrap_or(defaults.blocking_threads).max(1),
        encoder_batch: args.encoder_batch as usize,
        keys: api_keys(args)?,
        data_dir: data_dir(args),
        key_rate: args.key_rate.and_then(std::num::NonZeroU32::new),
        key_concurrency: args.key_concurrency.map(|n| n as usize),
    };
    let encoder: Option<Arc<dyn QueryEncoder>> = match &args.model {
        None => None,
        Some(dir) => {
            let options = EncoderArgs {
                batch_size: args.encoder_batch,
                max_length: args.max_length,
                doc_top_k: args.doc_top_k,
                doc_min_weight: args.doc_min_weight,
                device: args.device,
                dtype: args.dtype,
                query_instruction: args.query_instruction.clone(),
                dense_dim: None,
            };
            let encoder = load_encoder(dir, &options)?;
            Some(Arc::new(SpladeQueries {
                encoder,
                description: file_name(dir),
            }))
        }
    };
    let runtime = config
        .build_runtime()
        .context("cannot start the async runtime")?;
    let policy = RefreshPolicy {
        interval: (args.refresh_ms > 0).then(|| Duration::from_millis(args.refresh_ms)),
        ..RefreshPolicy::default()
    };
    let (state, shown, reads_others) = match (&args.index, &args.collections) {
        (_, Some(root)) => {
            std::fs::create_dir_all(root)
                .with_context(|| format!("cannot create {}", root.display()))?;
            let writes = args.writable.then_some(policy);
            let (state, recoveries) = AppState::serving_collections(root, writes, config, encoder)?;
            for (name, r) in recoveries {
                report_recovery(&name, r);
            }
            let names: Vec<String> = state
                .targets()
                .iter()
                .filter_map(|t| t.name().map(str::to_string))
                .collect();
            eprintln!(
                "{} collections in {}: {}",
                names.len(),
                root.display(),
                names.join(", ")
            );
            (state, root.clone(), !args.writable)
        }
        (Some(index), None) => {
            let state = serve_one(args, index, config, encoder, policy)?;
            (state, index.clone(), index.is_dir() && !args.writable)
        }
        (None, None) => anyhow::bail!("give --index or --collections"),
    };
    runtime.block_on(async {
        let listener = std::net::TcpListener::bind(args.addr)
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        let local = listener
            .local_addr()
            .context("cannot read the bound address")?;
        tokio::spawn(reload_on_hangup(state.clone()));
        // A writable server serves what its own writers apply.
        if reads_others && args.refresh_ms > 0 {
            tokio::spawn(refresh_every(
                state.clone(),
                Duration::from_millis(args.refresh_ms),
            ));
        }
        match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                let tls = Tls::load(cert, key).await?;
                eprintln!("serving {} on https://{local}", shown.display());
                serve_tls(listener, state, tls, shutdown_signal())
                    .await
                    .context("server error")?;
            }
            _ => {
                eprintln!("serving {} on http://{local}", shown.display());
                listener
                    .set_nonblocking(true)
                    .context("cannot set up the listener")?;
                let listener = tokio::net::TcpListener::from_std(listener)
                    .context("cannot set up the listener")?;
                serve(listener, state, shutdown_signal())
                    .await
                    .context("server error")?;
            }
        }
        eprintln!("stopped");
        Ok(())
    })
}

/// The last component of `path` (what answers may show of a model's location).
fn file_name(path: &std::path::Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The API keys of --api-keys, or of the environment variable BMP_API_KEYS.
fn api_keys(args: &ServeArgs) -> anyhow::Result<Option<ApiKeys>> {
    let keys = match (&args.api_keys, std::env::var(KEYS_VARIABLE)) {
        (Some(path), _) => Some(ApiKeys::read(path).map_err(anyhow::Error::msg)?),
        (None, Ok(text)) => Some(ApiKeys::parse(&text, KEYS_VARIABLE).map_err(anyhow::Error::msg)?),
        (None, Err(_)) => None,
    };
    if keys.is_none() && (args.key_rate.is_some() || args.key_concurrency.is_some()) {
        anyhow::bail!(
            "--key-rate and --key-concurrency limit API keys: give --api-keys FILE (or \
             {KEYS_VARIABLE})"
        );
    }
    if keys.is_none() && !args.addr.ip().is_loopback() && !args.insecure_public {
        anyhow::bail!(
            "{} is not a loopback address and no API keys are given: give --api-keys FILE (or \
             {KEYS_VARIABLE}), or --insecure-public to serve anyone who can reach it",
            args.addr
        );
    }
    Ok(keys)
}

/// The directory reloads may open files in: --data-dir, or where what is served lies.
fn data_dir(args: &ServeArgs) -> Option<PathBuf> {
    if let Some(dir) = &args.data_dir {
        return Some(dir.clone());
    }
    match (&args.index, &args.collections) {
        (_, Some(root)) => Some(root.clone()),
        (Some(index), None) => {
            let absolute = index.canonicalize().ok()?;
            absolute.parent().map(std::path::Path::to_path_buf)
        }
        (None, None) => None,
    }
}

/// Reports the writes a collection's write-ahead log held when it was opened.
fn report_recovery(name: &str, r: Recovery) {
    if r.replayed > 0 || r.torn_bytes > 0 {
        eprintln!(
            "{name}: applied {} writes left in the write-ahead log ({} bytes of an unacknowledged write cut off)",
            r.replayed, r.torn_bytes
        );
    }
}

/// The state serving the one index file or collection directory `index`.
fn serve_one(
    args: &ServeArgs,
    index: &std::path::Path,
    config: ServerConfig,
    encoder: Option<Arc<dyn QueryEncoder>>,
    policy: RefreshPolicy,
) -> anyhow::Result<AppState> {
    let collection = index.is_dir();
    if collection && args.multivec.is_some() {
        anyhow::bail!(
            "--multivec reranks the results of one index file; {} is a collection directory",
            index.display()
        );
    }
    let empty = collection
        && std::fs::read_dir(index)
            .with_context(|| format!("cannot read {}", index.display()))?
            .next()
            .is_none();
    if empty {
        // An empty directory becomes an empty collection, for `add` to fill while it is served.
        CollectionDir::open_or_create(index, &BuildOptions::default())?;
    }
    let served = if collection {
        ServedIndex::collection(index.to_path_buf(), Snapshot::open(index)?)
    } else {
        ServedIndex::new(Index::open(index)?)
    };
    let reranker = match (&args.multivec, served.single()) {
        (Some(path), Some(index)) => {
            let (store, spec, encoder) = open_rerank_stage(path, index, &args.token)?;
            let description = format!("{} ({spec} queries)", file_name(&args.token.token_model));
            Some(Reranker::new(
                store,
                Arc::new(TokenQueries {
                    encoder,
                    spec,
                    description,
                }),
            ))
        }
        _ => None,
    };
    if args.writable && !collection {
        anyhow::bail!(
            "--writable takes writes into a collection directory; {} is an index file",
            index.display()
        );
    }
    // The writer's lock first, then the generation it holds: no write can slip in between.
    let writer = match args.writable {
        true => {
            let dir = CollectionDir::open(index)?;
            report_recovery(&index.display().to_string(), dir.recovery());
            Some(dir)
        }
        false => None,
    };
    let served = match &writer {
        Some(dir) => ServedIndex::collection(index.to_path_buf(), dir.snapshot()),
        None => served,
    };
    let mut state = AppState::serving(served, config, encoder, reranker)
        .context("cannot start the query encoder")?;
    if let Some(dir) = writer {
        state = state
            .with_writer(dir, policy)
            .context("cannot start the collection's writer")?;
    }
    Ok(state)
}
