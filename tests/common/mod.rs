//! What the end-to-end tests share: running the binary, finding the real model and datasets they
//! need, skipping with a note when one is missing, and failing instead under CI.
// Each test crate uses its own part of this module.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};

/// The `bmp-index` binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_bmp-index");

/// What one run of the binary gave.
pub struct Run {
    /// The command line, for messages.
    pub cmd: String,
    /// The exit code (`None` when killed by a signal).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs the binary with `args` in `dir` (so paths in messages are the relative names given), with
/// standard input closed, and checks that it did not panic.
pub fn run(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("cannot run bmp-index");
    let run = Run {
        cmd: format!("bmp-index {}", args.join(" ")),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked") && run.code != Some(101),
        "{} panicked:\n{}",
        run.cmd,
        run.stderr
    );
    run
}

/// Runs the binary, checks that it succeeded, and returns the whole run.
pub fn run_ok(dir: &Path, args: &[&str]) -> Run {
    let r = run(dir, args);
    assert_eq!(
        r.code,
        Some(0),
        "{} failed:\nstdout:\n{}\nstderr:\n{}",
        r.cmd,
        r.stdout,
        r.stderr
    );
    r
}

/// Runs the binary, checks that it succeeded, and returns its standard output.
pub fn ok(dir: &Path, args: &[&str]) -> String {
    run_ok(dir, args).stdout
}

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether a missing prerequisite must fail the test (under CI) rather than skip it.
pub fn required() -> bool {
    std::env::var_os("CI").is_some()
}

/// `path` if it exists; otherwise `None` after a note (or a panic under CI).
pub fn need(path: PathBuf, what: &str) -> Option<PathBuf> {
    if path.exists() {
        return Some(path);
    }
    let msg = format!("{what} not found at {}", path.display());
    assert!(!required(), "{msg}");
    eprintln!("note: skipping: {msg}");
    None
}

/// Generates `docs` synthetic documents into `{name}.jsonl` and `queries` queries into
/// `{name}-q.jsonl` in `dir`, from `seed`.
pub fn synth(dir: &Path, name: &str, docs: usize, queries: usize, seed: u64) {
    ok(
        dir,
        &[
            "synth",
            "--docs",
            &docs.to_string(),
            "--queries",
            &queries.to_string(),
            "--seed",
            &seed.to_string(),
            "--output-docs",
            &format!("{name}.jsonl"),
            "--output-queries",
            &format!("{name}-q.jsonl"),
        ],
    );
}

/// The terms of the first `max_lines` documents of a JSONL corpus, sorted.
pub fn vocabulary(path: &Path, max_lines: usize) -> BTreeSet<String> {
    let text = std::fs::read_to_string(path).expect("cannot read the corpus");
    let mut terms = BTreeSet::new();
    for line in text.lines().take(max_lines) {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON document");
        let vector = v["vector"].as_object().expect("a vector object");
        terms.extend(vector.keys().cloned());
    }
    terms
}

/// Resident memory of process `pid` in KiB (Linux): (anonymous, total); `None` once it is gone.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    Some((field("RssAnon:")?, field("VmRSS:")?))
}

/// Starts `bmp-index serve` in `dir` on an ephemeral loopback port with `args` added; returns the
/// child, its standard error after the line announcing the address, and that address.
pub fn start_serve(dir: &Path, args: &[&str]) -> (Child, BufReader<ChildStderr>, String) {
    let mut child = Command::new(BIN)
        .args(["serve", "--addr", "127.0.0.1:0"])
        .args(args)
        // The request logs at their default level, whatever the environment says.
        .env_remove("RUST_LOG")
        .env_remove("BMP_API_KEYS")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run bmp-index serve");
    let mut stderr = BufReader::new(child.stderr.take().expect("piped standard error"));
    let mut log = String::new();
    match announced_address(&mut stderr, &mut log) {
        Some(addr) => (child, stderr, addr),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server stopped without an address: {log:?}");
        }
    }
}

/// Reads the server's log up to the line announcing its address and returns the address;
/// `None` when the log ends (or fails) first. The lines before go to `log`.
fn announced_address(stderr: &mut BufReader<ChildStderr>, log: &mut String) -> Option<String> {
    loop {
        let mut line = String::new();
        if stderr.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some((_, a)) = line.trim().rsplit_once("http://") {
            return Some(a.to_owned());
        }
        log.push_str(&line);
    }
}

/// The SPLADE model of `scripts/setup-models.sh`.
pub fn model() -> Option<PathBuf> {
    need(
        repo().join("models/splade-tiny"),
        "SPLADE model (run scripts/setup-models.sh)",
    )
}

/// The token-embedding model (all-MiniLM-L6-v2) of `scripts/setup-models.sh`.
pub fn token_model() -> Option<PathBuf> {
    need(
        repo().join("models/minilm-l6"),
        "token model (run scripts/setup-models.sh)",
    )
}

/// The SmolLM2 GGUF of `scripts/setup-models.sh`.
pub fn smollm2() -> Option<PathBuf> {
    need(
        repo().join("models/smollm2-135m/SmolLM2-135M-Instruct.Q4_1.gguf"),
        "SmolLM2 GGUF (run scripts/setup-models.sh)",
    )
}

/// A BEIR dataset from `../shared/data`.
pub fn dataset(name: &str) -> Option<PathBuf> {
    need(repo().join("../shared/data").join(name), "dataset")
}
