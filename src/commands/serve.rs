//! `bmp-index serve`: the HTTP search API over an index.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use bmp_server::{serve, shutdown_signal, AppState, ServerConfig};
use clap::Args;

/// Serve an index over HTTP (JSON).
///
/// Endpoints: `POST /v1/search` with `{"vector": {"term": weight}, "k"?: 10, "algorithm"?:
/// "bmp", "alpha"?: a, "beta"?: b}`; `POST /v1/search/batch` with `{"queries": [...]}`;
/// `GET /v1/health`; `GET /v1/stats`. Bad requests get a 4xx JSON error naming the field. Query
/// work runs on a blocking pool of --threads threads; the index is memory-mapped and shared.
/// Ctrl-C or SIGTERM stops accepting connections and lets in-flight requests finish.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Index file.
    #[arg(long)]
    pub index: PathBuf,
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
    /// Most query terms per query.
    #[arg(long, default_value_t = ServerConfig::default().max_query_terms)]
    pub max_query_terms: usize,
    /// Most queries per batch request.
    #[arg(long, default_value_t = ServerConfig::default().max_batch)]
    pub max_batch: usize,
    /// Time budget per request in milliseconds (503 past it).
    #[arg(long, default_value_t = ServerConfig::default().time_budget.as_millis() as u64)]
    pub time_budget_ms: u64,
}

/// Runs `serve`.
pub fn run(args: &ServeArgs) -> anyhow::Result<()> {
    let defaults = ServerConfig::default();
    let config = ServerConfig {
        max_body_bytes: args.max_body_bytes,
        max_k: args.max_k,
        max_query_terms: args.max_query_terms,
        max_batch: args.max_batch,
        time_budget: Duration::from_millis(args.time_budget_ms),
        blocking_threads: args.threads.unwrap_or(defaults.blocking_threads).max(1),
    };
    let runtime = config
        .build_runtime()
        .context("cannot start the async runtime")?;
    let state = AppState::open(&args.index, config)?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.addr)
            .await
            .with_context(|| format!("cannot listen on {}", args.addr))?;
        let local = listener
            .local_addr()
            .context("cannot read the bound address")?;
        eprintln!("serving {} on http://{local}", args.index.display());
        serve(listener, state, shutdown_signal())
            .await
            .context("server error")?;
        eprintln!("stopped");
        Ok(())
    })
}
