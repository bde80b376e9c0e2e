//! `bmp-index bench`: latency, recall and throughput of query processors on one index.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bmp_index::readers::queries::read_queries;
use bmp_index::Index;
use bmp_query::{Deadline, Hit, Query, SearchSpec, SearchStats};
use clap::Args;

use bmp_eval::Latency;

/// Measure query processors side by side on one index.
///
/// For each algorithm and each k: mean / p50 / p99 microseconds per query on one thread, recall@k
/// against exhaustive scoring (1.000 for every rank-safe processor), and with --threads N > 1 the
/// throughput of N threads sharing the index. Algorithms are written `name[:key=value]*`, e.g.
/// `bmp:alpha=0.9:beta=0.5`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Index file.
    #[arg(long)]
    pub index: PathBuf,
    /// Query file (JSONL or Anserini TSV, optionally gzip).
    #[arg(long)]
    pub queries: PathBuf,
    /// Values of k, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "10,1000")]
    pub k: Vec<usize>,
    /// Algorithms, comma separated, each `name[:key=value]*`.
    #[arg(long, value_delimiter = ',', default_value = "exhaustive,maxscore,bmw,bmp", value_parser = parse_spec, long_help = bmp_query::spec::help())]
    pub algorithms: Vec<SearchSpec>,
    /// Threads for the throughput measurement (1 skips it).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Workers per query, for the algorithms that can split one query (bmp); the latency columns
    /// then measure one query on that many cores.
    #[arg(long, default_value_t = 1)]
    pub threads_per_query: usize,
    /// Passes over the queries before measuring (warms caches and the page cache).
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Print one JSON object per measurement instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also print where the block-at-a-time processors (bmp, sp) spend their time: blocks scored
    /// per query, how close the initial threshold comes to the final k-th score, and the same for
    /// the slowest 1% of queries.
    #[arg(long)]
    pub profile: bool,
    /// Give each measured query a deadline this many milliseconds after its start, as
    /// `bmp-index serve --time-budget-ms` does (its checks are then timed with the query); the
    /// queries stopped there are counted (`stopped`), and their recall is what they found.
    #[arg(long, value_name = "MS")]
    pub time_budget_ms: Option<u64>,
}

fn parse_spec(s: &str) -> Result<SearchSpec, String> {
    s.parse().map_err(|e: bmp_query::SpecError| e.to_string())
}

/// One row of the report.
struct Row {
    spec: SearchSpec,
    k: usize,
    mean: f64,
    p50: f64,
    p99: f64,
    recall: f64,
    qps: Option<f64>,
    /// Queries stopped at the deadline of `--time-budget-ms`.
    stopped: usize,
}

fn recall(hits: &[Hit], truth: &[Hit]) -> Option<f64> {
    if truth.is_empty() {
        return None;
    }
    let want: HashSet<u32> = truth.iter().map(|h| h.doc).collect();
    Some(hits.iter().filter(|h| want.contains(&h.doc)).count() as f64 / truth.len() as f64)
}

fn throughput(
    index: &Index,
    spec: SearchSpec,
    queries: &[Query],
    k: usize,
    threads: usize,
) -> anyhow::Result<f64> {
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> bmp_index::Result<()> {
                    let mut searcher = spec.searcher(index);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(q) = queries.get(i) else {
                            return Ok(());
                        };
                        searcher.search(q, k)?;
                    }
                })
            })
            .collect();
        for w in workers {
            w.join()
                .map_err(|_| anyhow::anyhow!("a benchmark thread panicked"))??;
        }
        Ok(())
    })?;
    Ok(queries.len() as f64 / start.elapsed().as_secs_f64())
}

/// Runs `bench`.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if args.k.contains(&0) {
        anyhow::bail!("--k values must be at least 1");
    }
    if args.threads == 0 {
        anyhow::bail!("--threads must be at least 1");
    }
    let index = Index::open(&args.index)?;
    let records = read_queries(&args.queries)?;
    let queries: Vec<Query> = records
        .iter()
        .map(|r| {
            Query::from_entries(&index, &r.entries).with_context(|| format!("query {:?}", r.id))
        })
        .collect::<anyhow::Result<_>>()?;
    if queries.is_empty() {
        anyhow::bail!("{}: no queries", args.queries.display());
    }
    let mut rows = Vec::new();
    let mut profiles = Vec::new();
    for &k in &args.k {
        let mut exhaustive = SearchSpec::Exhaustive.searcher(&index);
        let truth: Vec<Vec<Hit>> = queries
            .iter()
            .map(|q| exhaustive.search(q, k))
            .collect::<bmp_index::Result<_>>()?;
        for &spec in &args.algorithms {
            let mut searcher = spec.searcher_with_threads(&index, args.threads_per_query);
            for _ in 0..args.warmup {
                for q in &queries {
                    searcher.search(q, k)?;
                }
            }
            let mut micros = Vec::with_capacity(queries.len());
            let mut recalls = Vec::new();
            let mut stats = Vec::new();
            let budget = args.time_budget_ms.map(Duration::from_millis);
            let mut stopped = 0;
            for (q, t) in queries.iter().zip(&truth) {
                let start = Instant::now();
                if let Some(budget) = budget {
                    searcher.set_deadline(Deadline::after(budget));
                }
                let hits = searcher.search(q, k)?;
                micros.push(start.elapsed().as_secs_f64() * 1e6);
                stopped += usize::from(searcher.stopped());
                recalls.extend(recall(&hits, t));
                stats.extend(searcher.stats());
            }
            if args.profile && stats.len() == micros.len() {
                profiles.push(profile_line(spec, k, index.num_blocks(), &micros, &stats));
            }
            let lat = Latency::of(micros);
            let qps = if args.threads > 1 {
                Some(throughput(&index, spec, &queries, k, args.threads)?)
            } else {
                None
            };
            let row = Row {
                spec,
                k,
                mean: lat.mean,
                p50: lat.p50,
                p99: lat.p99,
                recall: if recalls.is_empty() {
                    1.0
                } else {
                    recalls.iter().sum::<f64>() / recalls.len() as f64
                },
                qps,
                stopped,
            };
            if args.json {
                println!(
                    "{{\"algorithm\":\"{}\",\"k\":{},\"queries\":{},\"mean_us\":{:.2},\"p50_us\":{:.2},\"p99_us\":{:.2},\"recall\":{:.4},\"threads\":{},\"qps\":{},\"stopped\":{}}}",
                    row.spec,
                    row.k,
                    queries.len(),
                    row.mean,
                    row.p50,
                    row.p99,
                    row.recall,
                    args.threads,
                    row.qps.map_or("null".to_owned(), |q| format!("{q:.1}")),
                    row.stopped
                );
            }
            rows.push(row);
        }
    }
    if !args.json {
        println!(
            "{} queries, {} documents, index {} bytes",
            queries.len(),
            index.num_docs(),
            index.file_len()
        );
        let qps_header = if args.threads > 1 {
            format!("  qps@{}t", args.threads)
        } else {
            String::new()
        };
        let stopped_header = if args.time_budget_ms.is_some() {
            format!("  {:>7}", "stopped")
        } else {
            String::new()
        };
        println!(
            "{:<28} {:>6} {:>10} {:>10} {:>10} {:>8}{}{}",
            "algorithm", "k", "mean_us", "p50_us", "p99_us", "recall", qps_header, stopped_header
        );
        for r in &rows {
            println!(
                "{:<28} {:>6} {:>10.1} {:>10.1} {:>10.1} {:>8.4}{}{}",
                r.spec.to_string(),
                r.k,
                r.mean,
                r.p50,
                r.p99,
                r.recall,
                r.qps.map_or(String::new(), |q| format!("  {q:>8.1}")),
                if args.time_budget_ms.is_some() {
                    format!("  {:>7}", r.stopped)
                } else {
                    String::new()
                }
            );
        }
    }
    if !profiles.is_empty() {
        println!(
            "\nprofile: blocks scored per query (mean / p50 / p99, and % of the {} blocks), \
             superblocks expanded (mean), initial threshold / final k-th score (mean), and the \
             same for the slowest 1% of queries",
            index.num_blocks()
        );
        println!(
            "{:<28} {:>6} {:>8} {:>8} {:>8} {:>7} {:>8} {:>8}  {:>10} {:>8} {:>8}",
            "algorithm",
            "k",
            "blocks",
            "p50",
            "p99",
            "% all",
            "superbl.",
            "θ0/θk",
            "slow1% µs",
            "blocks",
            "θ0/θk"
        );
        for line in &profiles {
            println!("{line}");
        }
    }
    Ok(())
}

/// One line of the `--profile` table for one algorithm at one k.
fn profile_line(
    spec: SearchSpec,
    k: usize,
    num_blocks: u32,
    micros: &[f64],
    stats: &[SearchStats],
) -> String {
    let ratio = |s: &SearchStats| {
        if s.final_threshold == 0 {
            1.0
        } else {
            f64::from(s.initial_threshold) / f64::from(s.final_threshold)
        }
    };
    let mean = |v: &mut dyn Iterator<Item = f64>| {
        let (sum, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
        sum / n.max(1) as f64
    };
    let mut blocks: Vec<u32> = stats.iter().map(|s| s.scored_blocks).collect();
    blocks.sort_unstable();
    let pct =
        |p: f64| blocks[((blocks.len() as f64 * p).ceil() as usize).clamp(1, blocks.len()) - 1];
    let mean_blocks = mean(&mut blocks.iter().map(|&b| f64::from(b)));
    let mut by_time: Vec<usize> = (0..micros.len()).collect();
    by_time.sort_by(|&a, &b| micros[b].total_cmp(&micros[a]));
    let slow = &by_time[..micros.len().div_ceil(100)];
    format!(
        "{:<28} {:>6} {:>8.0} {:>8} {:>8} {:>6.1}% {:>8.0} {:>8.3}  {:>10.0} {:>8.0} {:>8.3}",
        spec.to_string(),
        k,
        mean_blocks,
        pct(0.5),
        pct(0.99),
        100.0 * mean_blocks / f64::from(num_blocks.max(1)),
        mean(&mut stats.iter().map(|s| f64::from(s.expanded_superblocks))),
        mean(&mut stats.iter().map(ratio)),
        mean(&mut slow.iter().map(|&i| micros[i])),
        mean(&mut slow.iter().map(|&i| f64::from(stats[i].scored_blocks))),
        mean(&mut slow.iter().map(|&i| ratio(&stats[i]))),
    )
}
