//! Side by side with the peers, on the same documents and the same queries, in one run.
//!
//! ```text
//! cargo bench --bench peers -- (--index BP.bmp | --ciff BP.ciff) --queries Q.tsv --work DIR
//!     [--k 10,1000] [--algorithms bmp,sp] [--limit N]
//!     [--reference-bmp DIR] [--superblock-fork DIR] [--seismic DIR]
//!     [--seismic-build "BUILD ARGS"] [--seismic-settings CUT:HEAP,CUT:HEAP,...]
//! ```
//!
//! `--index` is a BP-reordered bmp index; its documents are exported to CIFF (`DIR/collection.ciff`,
//! in the index's document order and with its `u8` impacts); or `--ciff` gives such a file (then
//! the default block and superblock sizes apply). Every system builds its index from that file,
//! timed: this project (`bmp-index build` from the CIFF, keeping the order), the
//! reference BMP at block sizes 8 and 16 (`ciff2bmp -b 8`, its fastest setting) and at ours
//! (`--compress-range` when it is above 16), the superblock fork
//! (`ciff2bmp -b 512 8`: superblocks of 64 blocks of 8) and Seismic (from a JSONL copy with
//! integer ids). The queries (Anserini TSV or JSONL vectors) get integer weights of at most 32,
//! as the reference BMP requires, and are written in each system's format, so that every system
//! ranks the same scores.
//!
//! Each peer is given as the directory holding its binaries: `ciff2bmp` and `search` for the two
//! BMP codes, `build_inverted_index` and `perf_inverted_index` for Seismic (crates.io `seismic`
//! 0.2.1, whose binary format takes term ids below 65,536). A peer not given is skipped, and the
//! table says so. The repository holds none of their code: build them by hand outside it.
//! Seismic is approximate: it runs once per `query_cut:heap_factor` setting of
//! `--seismic-settings` (default `5:0.9,10:0.9,20:1.0`), with the build arguments of
//! `--seismic-build` (default: the binary's defaults, k-means approximated on the inverted index),
//! and prints the mean it measures over three passes.
//!
//! The table: mean / p50 / p99 microseconds per query on one thread at each k, recall@k against
//! exhaustive scoring of the same queries on the same collection, index bytes and build seconds.
//! The two BMP codes report only their mean (they time the whole query loop); their p50 / p99
//! show as `-`. The superblock fork runs its query loop five times and prints the mean of each
//! pass; the table gives the mean of the four passes after the first (a warm-up).

use std::collections::HashSet;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use bmp_index::build::{build_index, BuildOptions};
use bmp_index::export::export_ciff;
use bmp_index::readers::ciff::read_ciff_file;
use bmp_index::readers::queries::read_queries;
use bmp_index::{Collection, Index};
use bmp_query::{Query, SearchSpec};

/// The largest query weight the reference BMP takes.
const MAX_QUERY_WEIGHT: f32 = 32.0;

struct Options {
    index: Option<PathBuf>,
    ciff: Option<PathBuf>,
    queries: PathBuf,
    work: PathBuf,
    ks: Vec<usize>,
    algorithms: Vec<SearchSpec>,
    limit: Option<usize>,
    reference_bmp: Option<PathBuf>,
    superblock_fork: Option<PathBuf>,
    seismic: Option<PathBuf>,
    seismic_build: String,
    seismic_settings: String,
}

fn parse_args() -> Result<Options, String> {
    let mut queries = None;
    let mut work = None;
    let mut o = Options {
        index: None,
        ciff: None,
        queries: PathBuf::new(),
        work: PathBuf::new(),
        ks: vec![10, 1000],
        algorithms: vec![
            "bmp".parse().expect("an algorithm"),
            "sp".parse().expect("an algorithm"),
        ],
        limit: None,
        reference_bmp: None,
        superblock_fork: None,
        seismic: None,
        seismic_build: "--clustering-algorithm random-kmeans-inverted-index-approx".into(),
        seismic_settings: "5:0.9,10:0.9,20:1.0".into(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--bench" {
            continue; // passed by `cargo bench`
        }
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--index" => o.index = Some(PathBuf::from(value()?)),
            "--ciff" => o.ciff = Some(PathBuf::from(value()?)),
            "--queries" => queries = Some(PathBuf::from(value()?)),
            "--work" => work = Some(PathBuf::from(value()?)),
            "--k" => {
                o.ks = value()?
                    .split(',')
                    .map(|k| k.parse().map_err(|_| format!("--k: not a number: {k}")))
                    .collect::<Result<_, _>>()?
            }
            "--algorithms" => {
                o.algorithms = value()?
                    .split(',')
                    .map(|a| {
                        a.parse::<SearchSpec>()
                            .map_err(|e| format!("--algorithms: {a}: {e}"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "--limit" => o.limit = Some(value()?.parse().map_err(|_| "--limit: not a number")?),
            "--reference-bmp" => o.reference_bmp = Some(value()?.into()),
            "--superblock-fork" => o.superblock_fork = Some(value()?.into()),
            "--seismic" => o.seismic = Some(value()?.into()),
            "--seismic-build" => o.seismic_build = value()?,
            "--seismic-settings" => o.seismic_settings = value()?,
            other => {
                return Err(format!(
                    "unknown argument {other:?} (see the file's header)"
                ))
            }
        }
    }
    if o.index.is_some() == o.ciff.is_some() {
        return Err("give one of --index and --ciff".into());
    }
    o.queries = queries.ok_or("--queries is required")?;
    o.work = work.ok_or("--work is required")?;
    Ok(o)
}

/// One row of the table.
struct Row {
    system: String,
    k: usize,
    mean_us: Option<f64>,
    p50_us: Option<f64>,
    p99_us: Option<f64>,
    recall: Option<f64>,
    index_bytes: Option<u64>,
    build_seconds: Option<f64>,
    note: String,
}

/// A query with integer weights of at most [`MAX_QUERY_WEIGHT`].
struct IntQuery {
    id: String,
    terms: Vec<(String, u32)>,
}

/// Integer weights: integral weights as they are, real ones scaled so the largest is 32; then,
/// as the reference BMP does, every weight scaled down (rounding up) when the largest exceeds 32.
fn integer_query(id: &str, entries: &[(String, f32)]) -> IntQuery {
    let max = entries.iter().map(|e| e.1).fold(0.0f32, f32::max);
    let integral = entries.iter().all(|e| e.1.fract() == 0.0);
    let mut terms: Vec<(String, u32)> = entries
        .iter()
        .map(|(t, w)| {
            let w = if integral {
                *w
            } else {
                w / max * MAX_QUERY_WEIGHT
            };
            (t.clone(), w.ceil().max(1.0) as u32)
        })
        .collect();
    let top = terms.iter().map(|t| t.1).max().unwrap_or(0);
    if top as f32 > MAX_QUERY_WEIGHT {
        let scale = MAX_QUERY_WEIGHT / top as f32;
        for t in &mut terms {
            t.1 = (t.1 as f32 * scale).ceil() as u32;
        }
    }
    IntQuery {
        id: id.to_string(),
        terms,
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[i.clamp(1, sorted.len()) - 1]
}

/// Recall of `got` (doc ids) against `want` (doc ids, best first, at most k).
fn recall(got: &[String], want: &[String]) -> f64 {
    if want.is_empty() {
        return 1.0;
    }
    let got: HashSet<&String> = got.iter().collect();
    want.iter().filter(|d| got.contains(d)).count() as f64 / want.len() as f64
}

/// Mean recall of a TREC run against the exact answers (`exact[q]` at the run's k).
fn run_recall(run: &str, queries: &[IntQuery], exact: &[Vec<String>], k: usize) -> f64 {
    let mut by_query: std::collections::HashMap<&str, Vec<(usize, String)>> = Default::default();
    for line in run.lines() {
        let c: Vec<&str> = line.split_whitespace().collect();
        if c.len() >= 5 {
            let rank = c[3].parse().unwrap_or(usize::MAX);
            by_query
                .entry(c[0])
                .or_default()
                .push((rank, c[2].to_string()));
        }
    }
    let mut total = 0.0;
    for (q, want) in queries.iter().zip(exact) {
        let mut got = by_query.remove(q.id.as_str()).unwrap_or_default();
        got.sort();
        let got: Vec<String> = got.into_iter().take(k).map(|g| g.1).collect();
        let want: Vec<String> = want.iter().take(k).cloned().collect();
        total += recall(&got, &want);
    }
    total / queries.len().max(1) as f64
}

fn file_bytes(path: &Path) -> Option<u64> {
    if path.is_dir() {
        let mut total = 0;
        for e in std::fs::read_dir(path).ok()?.flatten() {
            total += file_bytes(&e.path())?;
        }
        Some(total)
    } else {
        std::fs::metadata(path).ok().map(|m| m.len())
    }
}

/// Runs `cmd`, returning (stdout, stderr, seconds); `None` (with a note) when it fails.
fn run(cmd: &mut Command, what: &str) -> Option<(String, String, f64)> {
    let start = Instant::now();
    match cmd.output() {
        Ok(out) if out.status.success() => Some((
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            start.elapsed().as_secs_f64(),
        )),
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: String = err.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
            eprintln!("{what} failed ({}): {tail}", out.status);
            None
        }
        Err(e) => {
            eprintln!("{what}: cannot run {cmd:?}: {e}");
            None
        }
    }
}

/// Builds an index with `cmd` unless `output` exists; returns (bytes, build seconds). The build
/// time is kept beside the index, so that reruns reuse both.
fn build_once(cmd: &mut Command, output: &Path, what: &str) -> Option<(u64, f64)> {
    let seconds_file = PathBuf::from(format!("{}.build-seconds", output.display()));
    if output.exists() {
        if let Some(s) = std::fs::read_to_string(&seconds_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
        {
            return Some((file_bytes(output)?, s));
        }
    }
    eprintln!("building {what}...");
    let (_, _, seconds) = run(cmd, what)?;
    std::fs::write(&seconds_file, format!("{seconds}\n")).ok()?;
    Some((file_bytes(output)?, seconds))
}

fn main() {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("peers: {e}");
            std::process::exit(2);
        }
    };
    std::fs::create_dir_all(&o.work).expect("work directory");
    let source = o
        .index
        .as_ref()
        .map(|p| Index::open(p).expect("index opens"));
    let defaults = BuildOptions::default();
    let options = BuildOptions {
        block_size: source
            .as_ref()
            .map_or(defaults.block_size, Index::block_size),
        superblock_size: source
            .as_ref()
            .map_or(defaults.superblock_size, Index::superblock_size),
        ..BuildOptions::default()
    };

    // Queries with integer weights <= 32, in our TSV and in the BMP codes' `qid: tok tok` format.
    let mut records = read_queries(&o.queries).expect("queries read");
    if let Some(n) = o.limit {
        records.truncate(n);
    }
    let queries: Vec<IntQuery> = records
        .iter()
        .map(|r| integer_query(&r.id, &r.entries))
        .collect();
    let (mut tsv, mut pisa) = (String::new(), String::new());
    for q in &queries {
        let toks: Vec<&str> = q
            .terms
            .iter()
            .flat_map(|(t, w)| std::iter::repeat_n(t.as_str(), *w as usize))
            .collect();
        let _ = writeln!(tsv, "{}\t{}", q.id, toks.join(" "));
        let _ = writeln!(pisa, "{}: {}", q.id, toks.join(" "));
    }
    let tsv_path = o.work.join("queries.tsv");
    let pisa_path = o.work.join("queries.pisa");
    std::fs::write(&tsv_path, tsv).expect("queries written");
    std::fs::write(&pisa_path, pisa).expect("queries written");

    // One collection for everyone.
    let ciff = match (&o.ciff, &source) {
        (Some(ciff), _) => ciff.clone(),
        (None, Some(source)) => {
            let ciff = o.work.join("collection.ciff");
            if !ciff.exists() {
                eprintln!(
                    "exporting {} to {}...",
                    source.path().display(),
                    ciff.display()
                );
                export_ciff(source, &ciff, &mut |_, _| {}).expect("CIFF export");
            }
            ciff
        }
        (None, None) => unreachable!("checked by parse_args"),
    };
    drop(source);
    let ours = o.work.join("bmp.idx");
    let (our_bytes, our_seconds) = {
        let seconds_file = o.work.join("bmp.idx.build-seconds");
        let cached = std::fs::read_to_string(&seconds_file)
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|_| ours.exists());
        let seconds = cached.unwrap_or_else(|| {
            eprintln!("building this project's index from the CIFF...");
            let start = Instant::now();
            let mut collection = Collection::new();
            read_ciff_file(&ciff, &mut collection).expect("CIFF read");
            build_index(&collection, &ours, &options, &mut |_, _, _| {}).expect("index builds");
            let s = start.elapsed().as_secs_f64();
            std::fs::write(&seconds_file, format!("{s}\n")).expect("build time written");
            s
        });
        (file_bytes(&ours).unwrap_or(0), seconds)
    };
    let index = Index::open(&ours).expect("index opens");
    let parsed: Vec<Query> = queries
        .iter()
        .map(|q| {
            let entries: Vec<(String, f32)> = q
                .terms
                .iter()
                .map(|(t, w)| (t.clone(), *w as f32))
                .collect();
            Query::from_entries(&index, &entries).expect("valid query")
        })
        .collect();
    let kmax = o.ks.iter().copied().max().unwrap_or(10);
    let mut exhaustive = SearchSpec::Exhaustive.searcher(&index);
    let exact: Vec<Vec<String>> = parsed
        .iter()
        .map(|q| {
            exhaustive
                .search(q, kmax)
                .expect("search")
                .iter()
                .map(|h| index.doc_id(h.doc).expect("doc id").to_string())
                .collect()
        })
        .collect();

    let mut rows = Vec::new();
    for &k in &o.ks {
        for spec in &o.algorithms {
            let mut searcher = spec.searcher(&index);
            for q in &parsed {
                std::hint::black_box(searcher.search(q, k).expect("search"));
            }
            let mut micros = Vec::with_capacity(parsed.len());
            let mut total_recall = 0.0;
            for (q, want) in parsed.iter().zip(&exact) {
                let start = Instant::now();
                let hits = searcher.search(q, k).expect("search");
                micros.push(start.elapsed().as_secs_f64() * 1e6);
                let got: Vec<String> = hits
                    .iter()
                    .map(|h| index.doc_id(h.doc).expect("doc id").to_string())
                    .collect();
                let want: Vec<String> = want.iter().take(k).cloned().collect();
                total_recall += recall(&got, &want);
            }
            let mean = micros.iter().sum::<f64>() / micros.len().max(1) as f64;
            micros.sort_by(f64::total_cmp);
            rows.push(Row {
                system: format!("bmp-index {spec}"),
                k,
                mean_us: Some(mean),
                p50_us: Some(percentile(&micros, 50.0)),
                p99_us: Some(percentile(&micros, 99.0)),
                recall: Some(total_recall / parsed.len().max(1) as f64),
                index_bytes: Some(our_bytes),
                build_seconds: Some(our_seconds),
                note: String::new(),
            });
        }
    }

    let missing = |name: &str, flag: &str, rows: &mut Vec<Row>| {
        rows.push(Row {
            system: name.to_string(),
            k: 0,
            mean_us: None,
            p50_us: None,
            p99_us: None,
            recall: None,
            index_bytes: None,
            build_seconds: None,
            note: format!("skipped: no {flag} given"),
        });
    };

    // The reference BMP at its own best block sizes (8 and 16) and at ours, and the
    // superblock-pruning fork run rank-safe (mu = eta = 1): the same two binaries and query format,
    // different index parameters and timing output.
    // Its dense block-max rows at 8 and 16 (its paper's and its fastest settings); range-compressed
    // at a larger block size of ours.
    let mut reference_sizes = vec![8, 16, options.block_size];
    reference_sizes.sort_unstable();
    reference_sizes.dedup();
    let mut bmp_codes: Vec<BmpCode> = reference_sizes
        .iter()
        .map(|&b| {
            let compress = b > 16;
            let mut build_args = vec!["-b".to_string(), b.to_string()];
            if compress {
                build_args.push("--compress-range".into());
            }
            BmpCode {
                name: format!(
                    "reference BMP b={b}{}",
                    if compress { " compressed" } else { "" }
                ),
                flag: "--reference-bmp",
                dir: o.reference_bmp.as_deref(),
                index: format!("reference-b{b}.bmp"),
                build_args,
                search_args: &[],
                mean: reference_mean,
            }
        })
        .collect();
    bmp_codes.push(BmpCode {
        name: "superblock fork 512/8 (mu = eta = 1)".into(),
        flag: "--superblock-fork",
        dir: o.superblock_fork.as_deref(),
        index: "superblock-512-8.bmp".into(),
        build_args: vec!["-b".into(), "512".into(), "8".into()],
        search_args: &["--mu", "1", "--eta", "1"],
        mean: fork_mean,
    });
    for code in &bmp_codes {
        let Some(dir) = code.dir else {
            missing(&code.name, code.flag, &mut rows);
            continue;
        };
        let idx = o.work.join(&code.index);
        let built = build_once(
            Command::new(dir.join("ciff2bmp"))
                .args(&code.build_args)
                .arg("-c")
                .arg(&ciff)
                .arg("-o")
                .arg(&idx),
            &idx,
            &format!("{} index", code.name),
        );
        for &k in &o.ks {
            let out = built.and_then(|_| {
                run(
                    Command::new(dir.join("search"))
                        .arg("--index")
                        .arg(&idx)
                        .arg("--queries")
                        .arg(&pisa_path)
                        .arg("--k")
                        .arg(k.to_string())
                        .args(code.search_args),
                    &format!("{} search", code.name),
                )
            });
            rows.push(Row {
                system: code.name.clone(),
                k,
                mean_us: out
                    .as_ref()
                    .and_then(|(stdout, stderr, _)| (code.mean)(stdout, stderr)),
                p50_us: None,
                p99_us: None,
                recall: out
                    .as_ref()
                    .map(|(run, _, _)| run_recall(run, &queries, &exact, k)),
                index_bytes: built.map(|b| b.0),
                build_seconds: built.map(|b| b.1),
                note: if out.is_none() {
                    "failed".into()
                } else {
                    String::new()
                },
            });
        }
    }

    match &o.seismic {
        None => missing("Seismic", "--seismic", &mut rows),
        Some(dir) => seismic_rows(dir, &o, &index, &parsed, &exact, &mut rows),
    }

    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{} documents, {} queries (integer weights <= 32), block size {}",
        index.num_docs(),
        queries.len(),
        index.block_size()
    );
    let _ = writeln!(
        out,
        "{:<34} {:>5} {:>9} {:>9} {:>9} {:>8} {:>14} {:>9}  note",
        "system", "k", "mean µs", "p50 µs", "p99 µs", "recall", "index bytes", "build s"
    );
    let show = |v: Option<f64>, digits: usize| {
        v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
    };
    for r in &rows {
        let _ = writeln!(
            out,
            "{:<34} {:>5} {:>9} {:>9} {:>9} {:>8} {:>14} {:>9}  {}",
            r.system,
            if r.k == 0 {
                "-".to_string()
            } else {
                r.k.to_string()
            },
            show(r.mean_us, 0),
            show(r.p50_us, 0),
            show(r.p99_us, 0),
            show(r.recall, 4),
            r.index_bytes.map_or_else(|| "-".into(), |b| b.to_string()),
            show(r.build_seconds, 1),
            r.note
        );
    }
}

/// One of the two BMP codes (`ciff2bmp` and `search` in `dir`).
struct BmpCode<'a> {
    name: String,
    flag: &'static str,
    dir: Option<&'a Path>,
    /// The index file's name in the work directory.
    index: String,
    build_args: Vec<String>,
    search_args: &'static [&'static str],
    /// The mean microseconds per query, from the search's standard output and error.
    mean: fn(&str, &str) -> Option<f64>,
}

/// The reference BMP prints `search_elapsed = N` (mean microseconds) on standard error.
fn reference_mean(_stdout: &str, stderr: &str) -> Option<f64> {
    stderr
        .lines()
        .filter_map(|l| l.trim().strip_prefix("search_elapsed = "))
        .next_back()
        .and_then(|v| v.trim().parse().ok())
}

/// The fork prints five lines first, each the mean microseconds per query of one pass over the
/// queries; the mean of passes 2 to 5 (the first is a warm-up).
fn fork_mean(stdout: &str, _stderr: &str) -> Option<f64> {
    let runs: Vec<f64> = stdout
        .lines()
        .map_while(|l| l.trim().parse::<f64>().ok())
        .collect();
    (runs.len() > 1).then(|| runs[1..].iter().sum::<f64>() / (runs.len() - 1) as f64)
}

/// Writes Seismic's binary dataset format: the vector count (`u32`), then per vector its length
/// (`u32`), its components (`u32`) and its values (`f32`).
fn write_seismic_vectors(path: &Path, vectors: &[Vec<(u32, f32)>]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    out.write_all(&(vectors.len() as u32).to_le_bytes())?;
    for v in vectors {
        out.write_all(&(v.len() as u32).to_le_bytes())?;
        for &(c, _) in v {
            out.write_all(&c.to_le_bytes())?;
        }
        for &(_, x) in v {
            out.write_all(&x.to_le_bytes())?;
        }
    }
    out.flush()
}

/// Seismic (approximate): its index built from the same documents (term ids as components, the
/// `u8` impacts as values), searched with each `query_cut:heap_factor` setting of
/// `--seismic-settings`.
fn seismic_rows(
    dir: &Path,
    o: &Options,
    index: &Index,
    queries: &[Query],
    exact: &[Vec<String>],
    rows: &mut Vec<Row>,
) {
    let fail = |note: String, rows: &mut Vec<Row>| {
        rows.push(Row {
            system: "Seismic".into(),
            k: 0,
            mean_us: None,
            p50_us: None,
            p99_us: None,
            recall: None,
            index_bytes: None,
            build_seconds: None,
            note,
        })
    };
    if index.num_terms() > u32::from(u16::MAX) + 1 {
        // Seismic 0.2.1 reads components as u16.
        return fail(
            format!(
                "skipped: {} terms, Seismic takes at most 65,536",
                index.num_terms()
            ),
            rows,
        );
    }
    let docs_path = o.work.join("seismic-docs.bin");
    if !docs_path.exists() {
        eprintln!("writing the documents for Seismic...");
        let mut vectors: Vec<Vec<(u32, f32)>> = vec![Vec::new(); index.num_docs() as usize];
        let bs = index.block_size();
        for block in 0..index.num_blocks() {
            let fb = index.forward_block(block).expect("forward block");
            for (term, pairs) in fb.iter() {
                for &[off, impact] in pairs {
                    vectors[(block * bs + u32::from(off)) as usize].push((term, f32::from(impact)));
                }
            }
        }
        write_seismic_vectors(&docs_path, &vectors).expect("Seismic documents written");
    }
    let queries_path = o.work.join("seismic-queries.bin");
    let qvectors: Vec<Vec<(u32, f32)>> = queries
        .iter()
        .map(|q| {
            let mut v: Vec<(u32, f32)> =
                q.terms.iter().map(|t| (t.term, t.weight as f32)).collect();
            v.sort_by_key(|e| e.0);
            v
        })
        .collect();
    write_seismic_vectors(&queries_path, &qvectors).expect("Seismic queries written");

    let prefix = o.work.join("seismic");
    let idx = PathBuf::from(format!("{}.index.seismic", prefix.display()));
    let Some((bytes, seconds)) = build_once(
        Command::new(dir.join("build_inverted_index"))
            .arg("--input-file")
            .arg(&docs_path)
            .arg("--output-file")
            .arg(&prefix)
            .args(o.seismic_build.split_whitespace()),
        &idx,
        "Seismic index",
    ) else {
        return fail("failed to build".into(), rows);
    };
    for &k in &o.ks {
        for setting in o.seismic_settings.split(',') {
            let (cut, heap) = setting.split_once(':').unwrap_or((setting, "0.7"));
            let results = o.work.join(format!("seismic-k{k}-{cut}-{heap}.tsv"));
            let out = run(
                Command::new(dir.join("perf_inverted_index"))
                    .arg("--index-file")
                    .arg(&idx)
                    .arg("--query-file")
                    .arg(&queries_path)
                    .arg("--output-path")
                    .arg(&results)
                    .args([
                        "-k",
                        &k.to_string(),
                        "--query-cut",
                        cut,
                        "--heap-factor",
                        heap,
                    ])
                    .args(["--n-runs", "3"]),
                "Seismic search",
            );
            let mean = out.as_ref().and_then(|(_, err, _)| {
                err.lines()
                    .filter_map(|l| l.trim().parse::<f64>().ok())
                    .next_back()
            });
            // Results: query position, doc position, rank, score.
            let recall = out.as_ref().and_then(|_| {
                let text = std::fs::read_to_string(&results).ok()?;
                let mut got: Vec<Vec<String>> = vec![Vec::new(); queries.len()];
                for line in text.lines() {
                    let c: Vec<&str> = line.split('\t').collect();
                    if let (Some(q), Some(d)) = (
                        c.first().and_then(|v| v.parse::<usize>().ok()),
                        c.get(1).and_then(|v| v.parse::<u32>().ok()),
                    ) {
                        if let (Some(g), Ok(id)) = (got.get_mut(q), index.doc_id(d)) {
                            g.push(id.to_string());
                        }
                    }
                }
                let total: f64 = got
                    .iter()
                    .zip(exact)
                    .map(|(g, want)| {
                        let want: Vec<String> = want.iter().take(k).cloned().collect();
                        recall(&g[..g.len().min(k)], &want)
                    })
                    .sum();
                Some(total / queries.len().max(1) as f64)
            });
            rows.push(Row {
                system: format!("Seismic cut={cut} heap={heap}"),
                k,
                mean_us: mean,
                p50_us: None,
                p99_us: None,
                recall,
                index_bytes: Some(bytes),
                build_seconds: Some(seconds),
                note: if out.is_none() {
                    "failed".into()
                } else {
                    String::new()
                },
            });
        }
    }
}
