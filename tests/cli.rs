//! End-to-end tests of the `bmp-index` command line: the real binary, run in temporary
//! directories, checked by exit code, exact standard output / error substrings and file contents.
//!
//! Expected rankings are computed by hand (or by the small reference scorer below) from the
//! quantization rule: when every document weight is an integer no larger than 255 the impacts are
//! the weights, and integer query weights are kept as they are, so a score is `sum q_t * w_t`;
//! ties are broken by internal doc id, which is the input order.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use proptest::prelude::*;

mod common;

use common::{run as run_argv, run_ok, Run, BIN};

// ---------------------------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------------------------

/// Splits the whitespace-separated arguments `args`.
fn argv(args: &str) -> Vec<&str> {
    args.split_ascii_whitespace().collect()
}

/// Runs the binary with the whitespace-separated arguments `args`.
fn run(dir: &Path, args: &str) -> Run {
    run_argv(dir, &argv(args))
}

/// Runs the binary and checks that it succeeds.
fn ok(dir: &Path, args: &str) -> Run {
    run_ok(dir, &argv(args))
}

/// Checks that `r` failed with exit code 1 and an `error: ` message on standard error that
/// contains every one of `needles`.
fn expect_failure(r: Run, needles: &[&str]) -> Run {
    assert_eq!(
        r.code,
        Some(1),
        "{} should fail with exit code 1:\nstdout:\n{}\nstderr:\n{}",
        r.cmd,
        r.stdout,
        r.stderr
    );
    assert!(
        r.stderr.starts_with("error: "),
        "{}: stderr should be an error message, got:\n{}",
        r.cmd,
        r.stderr
    );
    for needle in needles {
        assert!(
            r.stderr.contains(needle),
            "{}: stderr lacks {needle:?}:\n{}",
            r.cmd,
            r.stderr
        );
    }
    r
}

/// Runs the binary and checks that it fails (see [`expect_failure`]).
fn fails(dir: &Path, args: &str, needles: &[&str]) -> Run {
    expect_failure(run(dir, args), needles)
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("cannot create a temporary directory")
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) {
    fs::write(dir.join(name), contents).expect("cannot write a test file");
}

fn write_gz(dir: &Path, name: &str, contents: impl AsRef<[u8]>) {
    let mut gz = flate2::write::GzEncoder::new(
        fs::File::create(dir.join(name)).expect("cannot create a test file"),
        flate2::Compression::default(),
    );
    gz.write_all(contents.as_ref()).unwrap();
    gz.finish().unwrap();
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    fs::read(dir.join(name)).unwrap_or_else(|e| panic!("cannot read {name}: {e}"))
}

fn read_string(dir: &Path, name: &str) -> String {
    String::from_utf8(read(dir, name)).expect("UTF-8 file")
}

/// The names of the entries of `dir`, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Checks that no temporary file of an atomic write (`.NAME.tmp-PID`) is left in `dir`.
fn assert_no_temp_files(dir: &Path) {
    let names = listing(dir);
    assert!(
        !names.iter().any(|n| n.contains(".tmp-")),
        "temporary files left behind: {names:?}"
    );
}

/// Checks that `name` does not exist in `dir` and that no temporary file is left.
fn assert_not_written(dir: &Path, name: &str) {
    assert!(
        !dir.join(name).exists(),
        "{name} was written: {:?}",
        listing(dir)
    );
    assert_no_temp_files(dir);
}

// ---------------------------------------------------------------------------------------------
// Output parsing
// ---------------------------------------------------------------------------------------------

/// The value of a top-level `key:   value` line of `info`'s output.
fn info_field(stdout: &str, key: &str) -> String {
    let prefix = format!("{key}:");
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .map(str::trim)
        .find(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("info output has no {key:?} line:\n{stdout}"))
        .to_owned()
}

/// `(documents, terms, postings)` as printed by `info`.
fn info_counts(stdout: &str) -> (u64, u64, u64) {
    let num = |key| {
        info_field(stdout, key)
            .parse::<u64>()
            .unwrap_or_else(|e| panic!("{key}: {e}:\n{stdout}"))
    };
    (num("documents"), num("terms"), num("postings"))
}

/// The number following `label` (up to the next space) in `line`.
fn number_after(line: &str, label: &str) -> f64 {
    let at = line
        .find(label)
        .unwrap_or_else(|| panic!("no {label:?} in {line:?}"));
    let token = line[at + label.len()..].split(' ').next().unwrap();
    token
        .parse()
        .unwrap_or_else(|e| panic!("{label:?} in {line:?}: {token:?}: {e}"))
}

/// Checks the summary line of `search` on standard error: the query count, k, and the mean / p50
/// / p99 latencies (non-negative, p50 <= p99); returns the line.
fn check_latency(stderr: &str, queries: usize, k: usize) -> &str {
    let line = stderr
        .lines()
        .find(|l| l.contains(" queries, k="))
        .unwrap_or_else(|| panic!("no search summary on stderr:\n{stderr}"));
    let start = format!("{queries} queries, k={k}, algorithm=bmp: mean ");
    assert!(line.starts_with(&start), "{line}");
    assert!(
        line.contains(" us, p50 ") && line.contains(" us, p99 "),
        "{line}"
    );
    let mean = number_after(line, "mean ");
    let p50 = number_after(line, "p50 ");
    let p99 = number_after(line, "p99 ");
    for (name, v) in [("mean", mean), ("p50", p50), ("p99", p99)] {
        assert!(v.is_finite() && v >= 0.0, "{name} latency {v} in {line}");
    }
    assert!(p50 <= p99, "p50 {p50} > p99 {p99} in {line}");
    line
}

/// Like [`check_latency`], and checks the counts of unknown query terms and of queries with no
/// known term.
fn check_search_summary(stderr: &str, queries: usize, k: usize, unknown: usize, empty: usize) {
    let line = check_latency(stderr, queries, k);
    let end =
        format!(" us; {unknown} unknown query terms ignored, {empty} queries with no known term");
    assert!(line.ends_with(&end), "{line}");
}

/// Checks the shape of a TREC run (six columns, `Q0`, the tag, each query's lines together with
/// ranks 1, 2, ... up to k and non-increasing positive scores); returns the number of lines.
fn check_run_shape(run: &str, tag: &str, k: usize) -> usize {
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let (mut qid, mut rank, mut score) = ("", 0, f64::MAX);
    for line in run.lines() {
        let cols: Vec<&str> = line.split(' ').collect();
        assert_eq!(cols.len(), 6, "{line}");
        assert_eq!((cols[1], cols[5]), ("Q0", tag), "{line}");
        if cols[0] != qid {
            assert!(seen.insert(cols[0]), "{line}: query lines are not together");
            (qid, rank, score) = (cols[0], 0, f64::MAX);
        }
        let (r, s): (usize, f64) = (cols[3].parse().unwrap(), cols[4].parse().unwrap());
        assert_eq!(r, rank + 1, "{line}");
        assert!(r <= k, "{line}: rank beyond k={k}");
        assert!(
            s > 0.0 && s <= score,
            "{line}: scores must be positive, not increasing"
        );
        (rank, score) = (r, s);
    }
    run.lines().count()
}

// ---------------------------------------------------------------------------------------------
// A small collection with hand-computed results
// ---------------------------------------------------------------------------------------------

/// Seven documents (internal ids 0..7 in this order): string and integer ids, a blank line, a
/// `content` field, an empty vector, a CRLF line ending, no final newline and a zero weight (term
/// "e", dropped, so not in the vocabulary). Terms a, b, c, d with 4, 5, 3 and 1 postings: 13 in
/// all (posting lists of several lengths modulo 4, so padding between lists is exercised).
const DOCS: &str = concat!(
    r#"{"id": "d0", "vector": {"a": 3, "b": 1}}"#,
    "\n",
    r#"{"id": 1, "vector": {"a": 1, "c": 5}, "content": "some text"}"#,
    "\n\n",
    r#"{"id": "empty", "vector": {}}"#,
    "\n",
    r#"{"id": "d3", "vector": {"b": 2, "c": 1, "d": 255}}"#,
    "\n",
    r#"{"id": "d4", "vector": {"a": 2, "b": 2}}"#,
    "\r\n",
    r#"{"id": 5, "vector": {"b": 2, "a": 2, "e": 0}}"#,
    "\n",
    r#"{"id": "d6", "vector": {"c": 2, "b": 1}}"#,
);

/// q1 = 2a + 1b (+ unknown zz); 7 = 1c; q3 = 2d (+ e, yy: unknown); q4 has no known term.
const QUERIES_JSONL: &str = concat!(
    r#"{"id": "q1", "vector": {"a": 2, "b": 1, "zz": 3}}"#,
    "\n",
    r#"{"id": 7, "vector": {"c": 1}}"#,
    "\n",
    r#"{"id": "q3", "vector": {"d": 2, "e": 1, "yy": 1}}"#,
    "\n",
    r#"{"id": "q4", "vector": {"zz": 1}}"#,
    "\n",
);

/// The same queries as Anserini TSV: a repeated token is its weight.
const QUERIES_TSV: &str = "q1\ta b a zz\n7\tc\nq3\tyy d e d\nq4\tzz\n";

/// The run of the queries above for k >= 6 with tag `T`, by hand:
/// q1: d0 = 2*3 + 1*1 = 7; d4 = 2*2 + 2*1 = 6; 5 = 6 (tie: d4 is first in input order);
///     1 = 2*1 = 2; d3 = 1*2 = 2 (tie: 1 before d3); d6 = 1*1 = 1; "empty" never matches.
/// 7:  1 = 5; d6 = 2; d3 = 1.   q3: d3 = 2*255 = 510.   q4: nothing.
const EXPECTED_RUN: &str = "\
q1 Q0 d0 1 7 T
q1 Q0 d4 2 6 T
q1 Q0 5 3 6 T
q1 Q0 1 4 2 T
q1 Q0 d3 5 2 T
q1 Q0 d6 6 1 T
7 Q0 1 1 5 T
7 Q0 d6 2 2 T
7 Q0 d3 3 1 T
q3 Q0 d3 1 510 T
";

/// The lines of `EXPECTED_RUN` with rank <= k, tagged `tag`.
fn expected_run(k: usize, tag: &str) -> String {
    EXPECTED_RUN
        .lines()
        .filter(|l| l.split(' ').nth(3).unwrap().parse::<usize>().unwrap() <= k)
        .map(|l| format!("{} {tag}\n", l.strip_suffix(" T").unwrap()))
        .collect()
}

/// Writes `DOCS` to `docs.jsonl` and builds `idx.bmp` in `dir`.
fn build_small(dir: &Path) {
    write(dir, "docs.jsonl", DOCS);
    let r = ok(dir, "build --input docs.jsonl --output idx.bmp");
    assert!(
        r.stderr
            .contains("built idx.bmp: 7 docs, 4 terms, 13 postings, "),
        "{}",
        r.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// 1. Happy path
// ---------------------------------------------------------------------------------------------

#[test]
fn happy_path_build_info_search() {
    let tmp = tempdir();
    let dir = tmp.path();
    build_small(dir);

    let info = ok(dir, "info --index idx.bmp");
    assert_eq!(info_counts(&info.stdout), (7, 4, 13), "{}", info.stdout);
    assert_eq!(info_field(&info.stdout, "index"), "idx.bmp");
    assert_eq!(info_field(&info.stdout, "format version"), "3");
    assert_eq!(info_field(&info.stdout, "block size"), "8");
    assert_eq!(info_field(&info.stdout, "blocks"), "1");
    assert_eq!(info_field(&info.stdout, "superblocks"), "1 of 64 blocks");
    assert!(
        info_field(&info.stdout, "quant scale").starts_with("1 "),
        "integer weights <= 255 are kept exactly:\n{}",
        info.stdout
    );
    assert!(info.stdout.contains("max impact 255"), "{}", info.stdout);
    assert!(!info.stdout.contains("checksums"), "{}", info.stdout);
    let verified = ok(dir, "info --index idx.bmp --verify");
    assert!(
        verified.stdout.starts_with(&info.stdout),
        "{}",
        verified.stdout
    );
    assert!(
        verified
            .stdout
            .ends_with("checksums:        all 13 sections verified\n"),
        "{}",
        verified.stdout
    );

    write(dir, "q.jsonl", QUERIES_JSONL);
    write(dir, "q.tsv", QUERIES_TSV);
    for queries in ["q.jsonl", "q.tsv"] {
        // Without --output the run goes to standard output; k=10 is more than the matching docs.
        let r = ok(
            dir,
            &format!("search --index idx.bmp --queries {queries} --tag T"),
        );
        assert_eq!(r.stdout, EXPECTED_RUN, "{queries}");
        check_search_summary(&r.stderr, 4, 10, 4, 1);

        // The default tag names the algorithm; k cuts inside ties in doc id order.
        for k in [1, 2, 3, 4, 5, 6, 1000] {
            let r = ok(
                dir,
                &format!("search --index idx.bmp --queries {queries} --k {k}"),
            );
            let expected = expected_run(k, "bmp-bmp");
            assert_eq!(r.stdout, expected, "{queries}, k={k}");
            check_search_summary(&r.stderr, 4, k, 4, 1);
        }

        // With --output the run goes to the file and nothing to standard output.
        let r = ok(
            dir,
            &format!("search --index idx.bmp --queries {queries} --k 2 --output run.trec --tag x"),
        );
        assert_eq!(r.stdout, "");
        assert_eq!(read_string(dir, "run.trec"), expected_run(2, "x"));
        check_search_summary(&r.stderr, 4, 2, 4, 1);
        fs::remove_file(dir.join("run.trec")).unwrap();
    }
    assert_eq!(listing(dir), ["docs.jsonl", "idx.bmp", "q.jsonl", "q.tsv"]);
}

#[test]
fn real_valued_query_weights_are_scaled_to_255() {
    let tmp = tempdir();
    let dir = tmp.path();
    build_small(dir);
    // a: 0.5 -> round(0.5 * 255 / 1.5) = 85, b: 1.5 -> 255.
    write(
        dir,
        "q.jsonl",
        r#"{"id": "r", "vector": {"a": 0.5, "b": 1.5}}"#,
    );
    let r = ok(dir, "search --index idx.bmp --queries q.jsonl --tag T");
    // Integer scores d4 = 85*2 + 255*2 = 680; 5 = 680; d0 = 85*3 + 255 = 510; d3 = 255*2 = 510;
    // d6 = 255; 1 = 85; times the query's scale 1.5 / 255 (and the index's, 1): the dot
    // products of the real weights, d4 = 0.5*2 + 1.5*2 = 4.
    assert_eq!(
        r.stdout,
        "r Q0 d4 1 4 T\nr Q0 5 2 4 T\nr Q0 d0 3 3 T\nr Q0 d3 4 3 T\nr Q0 d6 5 1.5 T\n\
         r Q0 1 6 0.5 T\n"
    );
    check_search_summary(&r.stderr, 1, 10, 0, 0);
}

#[test]
fn large_integer_document_weights_are_scaled() {
    let tmp = tempdir();
    let dir = tmp.path();
    // Max weight 510 > 255: scale 2, so 510 -> 255, 255 -> round(127.5) = 128, 3 -> round(1.5) = 2,
    // 1 -> round(0.5), at least 1.
    write(
        dir,
        "docs.jsonl",
        concat!(
            r#"{"id": "x", "vector": {"a": 510, "b": 1}}"#,
            "\n",
            r#"{"id": "y", "vector": {"a": 255, "b": 3}}"#,
            "\n",
        ),
    );
    ok(dir, "build --input docs.jsonl --output idx.bmp");
    let info = ok(dir, "info --index idx.bmp");
    assert!(
        info_field(&info.stdout, "quant scale").starts_with("2 "),
        "{}",
        info.stdout
    );
    write(dir, "q.tsv", "q\ta b b b\n");
    let r = ok(dir, "search --index idx.bmp --queries q.tsv --tag T");
    // Integer scores x = 255 + 3*1 = 258, y = 128 + 3*2 = 134, times the index's scale 2: the
    // dot products of the quantized weights (x's real one is 510 + 3 = 513).
    assert_eq!(r.stdout, "q Q0 x 1 516 T\nq Q0 y 2 268 T\n");
}

#[test]
fn gzip_inputs_and_block_size_bounds() {
    let tmp = tempdir();
    let dir = tmp.path();
    build_small(dir);
    write_gz(dir, "docs.jsonl.gz", DOCS);
    ok(dir, "build --input docs.jsonl.gz --output gz.bmp");
    assert_eq!(
        read(dir, "gz.bmp"),
        read(dir, "idx.bmp"),
        "a gzip corpus gives the same index"
    );
    write_gz(dir, "q.tsv.gz", QUERIES_TSV);
    let r = ok(dir, "search --index gz.bmp --queries q.tsv.gz --tag T");
    assert_eq!(r.stdout, EXPECTED_RUN);

    for block_size in ["8", "256"] {
        ok(
            dir,
            &format!("build --input docs.jsonl --output b.bmp --block-size {block_size}"),
        );
        let info = ok(dir, "info --index b.bmp --verify");
        assert_eq!(info_field(&info.stdout, "block size"), block_size);
        assert_eq!(info_field(&info.stdout, "blocks"), "1");
        let r = ok(dir, "search --index b.bmp --queries q.tsv.gz --tag T");
        assert_eq!(r.stdout, EXPECTED_RUN, "block size {block_size}");
    }
}

#[test]
fn corpus_of_only_empty_vectors_builds_and_never_matches() {
    let tmp = tempdir();
    let dir = tmp.path();
    write(
        dir,
        "docs.jsonl",
        "{\"id\": \"a\", \"vector\": {}}\n{\"id\": \"b\", \"vector\": {\"t\": 0}}\n",
    );
    ok(dir, "build --input docs.jsonl --output idx.bmp");
    let info = ok(dir, "info --index idx.bmp --verify");
    assert_eq!(info_counts(&info.stdout), (2, 0, 0));
    write(dir, "q.tsv", "q\tt\n");
    let r = ok(dir, "search --index idx.bmp --queries q.tsv");
    assert_eq!(r.stdout, "");
    check_search_summary(&r.stderr, 1, 10, 1, 1);
}

// ---------------------------------------------------------------------------------------------
// Reference scorer: larger collections, long posting lists, several blocks
// ---------------------------------------------------------------------------------------------

/// Documents as `(external id, [(term, integer weight 0..=255)])`, queries as
/// `(id, [(term, integer weight)])`.
type Vectors = Vec<(String, Vec<(String, u32)>)>;

/// JSONL with integer ids for numeric ids at even positions, string ids otherwise.
fn to_jsonl(vectors: &Vectors) -> String {
    let mut out = String::new();
    for (i, (id, entries)) in vectors.iter().enumerate() {
        let id_json = if i % 2 == 0 && id.parse::<u64>().is_ok() {
            id.clone()
        } else {
            format!("{id:?}")
        };
        let body: Vec<String> = entries.iter().map(|(t, w)| format!("{t:?}: {w}")).collect();
        out.push_str(&format!(
            "{{\"id\": {id_json}, \"vector\": {{{}}}}}\n",
            body.join(", ")
        ));
    }
    out
}

/// Anserini TSV: each term repeated as many times as its weight.
fn to_tsv(queries: &Vectors) -> String {
    let mut out = String::new();
    for (id, entries) in queries {
        let tokens: Vec<&str> = entries
            .iter()
            .flat_map(|(t, w)| std::iter::repeat_n(t.as_str(), *w as usize))
            .collect();
        out.push_str(&format!("{id}\t{}\n", tokens.join(" ")));
    }
    out
}

/// The expected run: score = sum of query weight x doc weight over shared terms, best first,
/// ties by input position, only scores above zero, at most `k` per query.
fn reference_run(docs: &Vectors, queries: &Vectors, k: usize, tag: &str) -> String {
    let mut out = String::new();
    for (qid, qentries) in queries {
        let mut scored: Vec<(u64, usize)> = docs
            .iter()
            .enumerate()
            .map(|(i, (_, dentries))| {
                let mut score = 0;
                for (qt, qw) in qentries {
                    for (dt, dw) in dentries {
                        if dt == qt {
                            score += u64::from(*qw) * u64::from(*dw);
                        }
                    }
                }
                (score, i)
            })
            .filter(|&(s, _)| s > 0)
            .collect();
        scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        for (rank, (score, i)) in scored.iter().take(k).enumerate() {
            let doc = &docs[*i].0;
            out.push_str(&format!("{qid} Q0 {doc} {} {score} {tag}\n", rank + 1));
        }
    }
    out
}

/// Number of distinct terms with a non-zero weight.
fn distinct_terms(docs: &Vectors) -> usize {
    let terms: BTreeSet<&str> = docs
        .iter()
        .flat_map(|(_, e)| e.iter().filter(|(_, w)| *w > 0).map(|(t, _)| t.as_str()))
        .collect();
    terms.len()
}

/// A deterministic xorshift generator.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// `n` documents over `vocab` terms with integer weights 1..=255: term 0 is in almost every
/// document and low term ids are common, so posting lists span several 128-id chunks and have
/// every length modulo 4; every 97th document is empty.
fn generated_docs(n: usize, vocab: u64, seed: u64) -> Vectors {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let mut terms = BTreeMap::new();
            if i % 97 != 13 {
                terms.insert(0, 1 + rng.below(255));
                for _ in 0..rng.below(12) {
                    let t = rng.below(vocab).min(rng.below(vocab));
                    terms.insert(t, 1 + rng.below(255));
                }
            }
            let id = if i % 3 == 0 {
                i.to_string()
            } else {
                format!("doc-{i}")
            };
            let entries = terms
                .into_iter()
                .map(|(t, w)| (format!("t{t}"), w as u32))
                .collect();
            (id, entries)
        })
        .collect()
}

/// `n` queries with integer weights 1..=4, some with terms beyond the vocabulary.
fn generated_queries(n: usize, vocab: u64, seed: u64) -> Vectors {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let mut terms = BTreeMap::new();
            for _ in 0..1 + rng.below(5) {
                terms.insert(rng.below(vocab + 3), 1 + rng.below(4));
            }
            let entries = terms
                .into_iter()
                .map(|(t, w)| (format!("t{t}"), w as u32))
                .collect();
            (format!("q{i}"), entries)
        })
        .collect()
}

#[test]
fn search_matches_reference_scorer_on_long_posting_lists() {
    let tmp = tempdir();
    let dir = tmp.path();
    let docs = generated_docs(700, 40, 0x9e37_79b9_7f4a_7c15);
    let queries = generated_queries(12, 40, 0x1234_5678);
    write(dir, "docs.jsonl", to_jsonl(&docs));
    write(dir, "q.tsv", to_tsv(&queries));
    let postings: usize = docs.iter().map(|(_, e)| e.len()).sum();
    let terms = distinct_terms(&docs);
    for block_size in [8, 32, 256] {
        ok(
            dir,
            &format!("build --input docs.jsonl --output idx.bmp --block-size {block_size}"),
        );
        let info = ok(dir, "info --index idx.bmp --verify");
        assert_eq!(
            info_counts(&info.stdout),
            (700, terms as u64, postings as u64)
        );
        let blocks = 700usize.div_ceil(block_size);
        assert_eq!(info_field(&info.stdout, "blocks"), blocks.to_string());
        for k in [1, 10, 1000] {
            let r = ok(
                dir,
                &format!("search --index idx.bmp --queries q.tsv --k {k} --tag ref"),
            );
            let expected = reference_run(&docs, &queries, k, "ref");
            assert_eq!(r.stdout, expected, "block size {block_size}, k={k}");
            check_run_shape(&r.stdout, "ref", k);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 24,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random small collections (zero weights included: valid input, dropped): the run of the
    /// command line equals the reference scorer's.
    #[test]
    fn search_matches_reference_scorer_on_random_collections(
        docs in prop::collection::vec(
            prop::collection::btree_map(0u8..10, 0u32..=255, 0..6), 1..200),
        queries in prop::collection::vec(
            prop::collection::btree_map(0u8..12, 1u32..5, 0..5), 1..6),
        block_size in prop::sample::select(vec![8, 16, 32, 256]),
        k in 1usize..25,
    ) {
        let named = |prefix: &str, i: usize, m: BTreeMap<u8, u32>| {
            let id = if prefix.is_empty() { i.to_string() } else { format!("{prefix}{i}") };
            (id, m.into_iter().map(|(t, w)| (format!("t{t}"), w)).collect::<Vec<_>>())
        };
        let docs: Vectors = docs
            .into_iter()
            .enumerate()
            .map(|(i, m)| named(if i % 2 == 0 { "" } else { "d" }, i, m))
            .collect();
        let queries: Vectors = queries
            .into_iter()
            .enumerate()
            .map(|(i, m)| named("q", i, m))
            .collect();
        let tmp = tempdir();
        let dir = tmp.path();
        write(dir, "docs.jsonl", to_jsonl(&docs));
        write(dir, "q.tsv", to_tsv(&queries));
        ok(dir, &format!("build --input docs.jsonl --output idx.bmp --block-size {block_size}"));
        let r = ok(dir, &format!("search --index idx.bmp --queries q.tsv --k {k} --tag p"));
        prop_assert_eq!(r.stdout, reference_run(&docs, &queries, k, "p"));
    }
}

// ---------------------------------------------------------------------------------------------
// 2. Round trip through CIFF
// ---------------------------------------------------------------------------------------------

/// `n` sparse vectors with real-valued weights over terms `w0..` as JSONL; `id(i)` is the JSON
/// text of the id of line `i`, and line 17 has an empty vector.
fn real_valued_jsonl(
    n: u64,
    terms: u64,
    seed: u64,
    id: impl Fn(u64) -> String,
    weights: impl Fn(&mut Rng) -> f64,
) -> String {
    let mut rng = Rng(seed);
    let mut out = String::new();
    for i in 0..n {
        let mut vector = BTreeMap::new();
        for _ in 0..1 + rng.below(10) {
            let t = rng.below(terms).min(rng.below(terms));
            let w = weights(&mut rng);
            vector.insert(t, w);
        }
        if i == 17 {
            vector.clear();
        }
        let body: Vec<String> = vector
            .iter()
            .map(|(t, w)| format!("\"w{t}\": {w}"))
            .collect();
        out.push_str(&format!(
            "{{\"id\": {}, \"vector\": {{{}}}}}\n",
            id(i),
            body.join(", ")
        ));
    }
    out
}

#[test]
fn round_trip_through_ciff_gives_identical_runs() {
    let tmp = tempdir();
    let dir = tmp.path();
    // 400 documents with real weights (so the index scale is not 1), doc 17 empty, integer ids
    // for every fifth; 25 queries with real weights over w0..w63 (w60.. are unknown).
    let docs = real_valued_jsonl(
        400,
        60,
        42,
        |i| {
            if i % 5 == 0 {
                i.to_string()
            } else {
                format!("\"D{i}\"")
            }
        },
        |rng| (1 + rng.below(4000)) as f64 / 1000.0,
    );
    let queries = real_valued_jsonl(
        25,
        64,
        7,
        |i| format!("\"q{i}\""),
        |rng| (1 + rng.below(999)) as f64 / 100.0,
    );
    write(dir, "docs.jsonl", docs);
    write(dir, "q.jsonl", queries);

    ok(dir, "build --input docs.jsonl --output orig.bmp");
    let orig_info = ok(dir, "info --index orig.bmp");
    let (docs, terms, _) = info_counts(&orig_info.stdout);
    assert_eq!(docs, 400);
    assert!(
        !info_field(&orig_info.stdout, "quant scale").starts_with("1 "),
        "real weights are scaled:\n{}",
        orig_info.stdout
    );

    let r = ok(dir, "export-ciff --index orig.bmp --output x.ciff");
    let exported = format!("exported {terms} terms and 400 documents to x.ciff");
    assert!(r.stderr.contains(&exported), "{}", r.stderr);
    ok(dir, "export-ciff --index orig.bmp --output x.ciff.gz");
    let gz = read(dir, "x.ciff.gz");
    assert_eq!(&gz[..2], b"\x1f\x8b", "a .gz export is gzip");
    let mut plain = Vec::new();
    flate2::read::MultiGzDecoder::new(&gz[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, read(dir, "x.ciff"), "gzip and plain exports agree");

    ok(dir, "build --input x.ciff --output c.bmp");
    ok(dir, "build --input x.ciff.gz --output cgz.bmp");
    // --format ciff for a file whose name does not say so.
    fs::copy(dir.join("x.ciff"), dir.join("export.bin")).unwrap();
    ok(
        dir,
        "build --input export.bin --format ciff --output cbin.bmp",
    );
    assert_eq!(read(dir, "c.bmp"), read(dir, "cgz.bmp"));
    assert_eq!(read(dir, "c.bmp"), read(dir, "cbin.bmp"));
    let c_info = ok(dir, "info --index c.bmp --verify");
    assert_eq!(
        info_counts(&c_info.stdout),
        info_counts(&orig_info.stdout),
        "the CIFF index has the same documents (the empty one too), terms and postings"
    );

    // Exporting the re-imported index gives the same CIFF: the round trip is a fixed point.
    ok(dir, "export-ciff --index c.bmp --output y.ciff");
    assert_eq!(read(dir, "y.ciff"), read(dir, "x.ciff"));

    let mut runs = Vec::new();
    for index in ["orig.bmp", "c.bmp", "cgz.bmp"] {
        ok(
            dir,
            &format!(
                "search --index {index} --queries q.jsonl --k 20 --tag rt --output {index}.trec"
            ),
        );
        runs.push(read(dir, &format!("{index}.trec")));
    }
    let lines = check_run_shape(std::str::from_utf8(&runs[0]).unwrap(), "rt", 20);
    assert!(lines > 100, "the run should not be trivial: {lines} lines");
    // The CIFF holds the impacts as integer weights (scale 1), the original index its real
    // weights' scale: the same ranking, scores in other units.
    let ranking = |run: &[u8]| -> Vec<String> {
        std::str::from_utf8(run)
            .unwrap()
            .lines()
            .map(|l| {
                let c: Vec<&str> = l.split(' ').collect();
                format!("{} {} {}", c[0], c[2], c[3])
            })
            .collect()
    };
    assert!(
        ranking(&runs[0]) == ranking(&runs[1]),
        "run from the CIFF index differs"
    );
    assert!(runs[1] == runs[2], "run from the gzip CIFF index differs");
    assert_no_temp_files(dir);
}

#[test]
fn round_trip_of_integer_weights_gives_the_same_index_bytes() {
    let tmp = tempdir();
    let dir = tmp.path();
    build_small(dir);
    ok(dir, "export-ciff --index idx.bmp --output x.ciff.gz");
    ok(dir, "build --input x.ciff.gz --output back.bmp");
    assert_eq!(read(dir, "back.bmp"), read(dir, "idx.bmp"));
}

// ---------------------------------------------------------------------------------------------
// 3. The toy CIFF from Anserini
// ---------------------------------------------------------------------------------------------

#[test]
fn toy_ciff_from_anserini() {
    let toy = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/data/ciff-toy/toy-complete-20200309.ciff.gz"
    ));
    if !toy.exists() {
        eprintln!("skipping: {} is missing", toy.display());
        return;
    }
    let tmp = tempdir();
    let dir = tmp.path();
    fs::copy(toy, dir.join("toy.ciff.gz")).unwrap();
    ok(dir, "build --input toy.ciff.gz --output toy.bmp");
    let info = ok(dir, "info --index toy.bmp --verify");
    // tf: WSJ_1 = {01, 03, 30, content, head, text}; TREC_DOC_1 = {head, simpl, text, veri};
    // DOC222 = {enough, head, simpl, text: 3}: 6 + 4 + 4 = 14 postings.
    assert_eq!(info_counts(&info.stdout), (3, 9, 14));
    assert!(
        info_field(&info.stdout, "quant scale").starts_with("1 "),
        "{}",
        info.stdout
    );
    assert!(info.stdout.contains("max impact 3"), "{}", info.stdout);

    write(
        dir,
        "q.tsv",
        "q1\thead text\nq2\tsimpl veri\nq3\ttext text\nq4\tnothing\n",
    );
    let r = ok(dir, "search --index toy.bmp --queries q.tsv --tag toy");
    // q1: DOC222 = 1 + 3; WSJ_1 = 1 + 1 and TREC_DOC_1 = 1 + 1, WSJ_1 first (CIFF doc id 0).
    // q2: TREC_DOC_1 = 1 + 1; DOC222 = 1.   q3 (text x2): DOC222 = 6; WSJ_1 = 2; TREC_DOC_1 = 2.
    assert_eq!(
        r.stdout,
        "q1 Q0 DOC222 1 4 toy\n\
         q1 Q0 WSJ_1 2 2 toy\n\
         q1 Q0 TREC_DOC_1 3 2 toy\n\
         q2 Q0 TREC_DOC_1 1 2 toy\n\
         q2 Q0 DOC222 2 1 toy\n\
         q3 Q0 DOC222 1 6 toy\n\
         q3 Q0 WSJ_1 2 2 toy\n\
         q3 Q0 TREC_DOC_1 3 2 toy\n"
    );
    check_search_summary(&r.stderr, 4, 10, 1, 1);
}

// ---------------------------------------------------------------------------------------------
// 4. Errors
// ---------------------------------------------------------------------------------------------

/// Writes `corpus` to `bad.jsonl` and checks that `build` (with `extra` arguments) fails with
/// `needles` in the message and writes nothing.
fn assert_build_fails(corpus: &str, extra: &str, needles: &[&str]) {
    let tmp = tempdir();
    let dir = tmp.path();
    write(dir, "bad.jsonl", corpus);
    fails(
        dir,
        &format!("build --input bad.jsonl --output out.bmp {extra}"),
        needles,
    );
    assert_not_written(dir, "out.bmp");
    assert_eq!(listing(dir), ["bad.jsonl"]);
}

const GOOD_LINE: &str = r#"{"id": "ok", "vector": {"a": 1}}"#;

#[test]
fn error_malformed_json_names_file_and_line() {
    let corpus = [
        GOOD_LINE,
        r#"{"id": "ok2", "vector": {"a": 1}}"#,
        r#"{"id": "bad", "vector": {"a": 1}"#,
        r#"{"id": "after", "vector": {"a": 1}}"#,
    ]
    .join("\n");
    assert_build_fails(&corpus, "", &["bad.jsonl:3: invalid JSON"]);
    // A blank line still counts for the line number.
    assert_build_fails(
        &format!("{GOOD_LINE}\n\nnot json\n"),
        "",
        &["bad.jsonl:3: invalid JSON"],
    );
    assert_build_fails("[1, 2]\n", "", &["bad.jsonl:1: expected a JSON object"]);
}

#[test]
fn error_negative_weight() {
    let line = r#"{"id": "x", "vector": {"a": 1, "neg": -1.5}}"#;
    assert_build_fails(
        &format!("{GOOD_LINE}\n{line}\n"),
        "",
        &["bad.jsonl:2: weight of term \"neg\" is negative"],
    );
    assert_build_fails(
        r#"{"id": "x", "vector": {"neg": -3}}"#,
        "",
        &["bad.jsonl:1: weight of term \"neg\" is negative"],
    );
}

#[test]
fn error_weight_overflowing_f32_names_the_term() {
    let line = r#"{"id": "x", "vector": {"a": 1, "huge": 1e39}}"#;
    assert_build_fails(
        &format!("{GOOD_LINE}\n{line}\n"),
        "",
        &["bad.jsonl:2: weight of term \"huge\""],
    );
}

#[test]
fn error_missing_vector_or_id() {
    let corpus = [
        GOOD_LINE,
        r#"{"id": "ok2", "vector": {"b": 2}}"#,
        r#"{"id": "x", "content": "no vector here"}"#,
    ]
    .join("\n");
    assert_build_fails(&corpus, "", &["bad.jsonl:3: missing \"vector\""]);
    assert_build_fails(
        r#"{"vector": {"a": 1}}"#,
        "",
        &["bad.jsonl:1: missing \"id\""],
    );
}

#[test]
fn error_duplicate_document_ids() {
    let corpus = [
        r#"{"id": "x", "vector": {"a": 1}}"#,
        r#"{"id": "y", "vector": {"a": 1}}"#,
        r#"{"id": "x", "vector": {"b": 1}}"#,
    ]
    .join("\n");
    assert_build_fails(&corpus, "", &["bad.jsonl:3: duplicate document id \"x\""]);
    // An integer id is its decimal string.
    let corpus = [
        r#"{"id": "7", "vector": {"a": 1}}"#,
        r#"{"id": 7, "vector": {}}"#,
    ]
    .join("\n");
    assert_build_fails(&corpus, "", &["bad.jsonl:2: duplicate document id \"7\""]);
}

#[test]
fn error_empty_corpus() {
    assert_build_fails("", "", &["bad.jsonl: no documents in the input"]);
}

#[test]
fn error_corpus_of_blank_lines() {
    assert_build_fails(
        "\n\n   \n\t\r\n",
        "",
        &["bad.jsonl: no documents in the input"],
    );
}

#[test]
fn error_block_size_out_of_range() {
    // A good corpus: only the block size is wrong.
    for size in [7, 300, 0] {
        assert_build_fails(
            DOCS,
            &format!("--block-size {size}"),
            &[&format!("block size {size} is out of range 8..=256")],
        );
    }
}

#[test]
fn error_missing_files() {
    let tmp = tempdir();
    let dir = tmp.path();
    build_small(dir);
    write(dir, "q.tsv", QUERIES_TSV);
    for (args, name) in [
        (
            "build --input missing.jsonl --output out.bmp",
            "missing.jsonl",
        ),
        (
            "build --input missing.ciff --output out.bmp",
            "missing.ciff",
        ),
        ("info --index missing.bmp", "missing.bmp"),
        (
            "export-ciff --index missing.bmp --output x.ciff",
            "missing.bmp",
        ),
        ("search --index missing.bmp --queries q.tsv", "missing.bmp"),
        (
            "search --index idx.bmp --queries missing.tsv --output out.trec",
            "missing.tsv",
        ),
    ] {
        let r = fails(dir, args, &[name, "No such file or directory"]);
        // The cause is given once, not repeated after the message that already names it.
        assert_eq!(
            r.stderr.matches("No such file or directory").count(),
            1,
            "{}",
            r.stderr
        );
    }
    assert_not_written(dir, "out.bmp");
    assert_not_written(dir, "out.trec");
    assert_not_written(dir, "x.ciff");
    // An output directory that does not exist.
    let r = fails(
        dir,
        "build --input docs.jsonl --output no/such/out.bmp",
        &["no/such/out.bmp", "directory does not exist"],
    );
    assert_eq!(
        r.stderr.matches("directory does not exist").count(),
        1,
        "{}",
        r.stderr
    );
}

/// The end offsets of the length-delimited messages of a CIFF file.
fn ciff_message_ends(bytes: &[u8]) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let (mut len, mut shift) = (0usize, 0);
        loop {
            let b = bytes[pos];
            pos += 1;
            len |= usize::from(b & 0x7f) << shift;
            shift += 7;
            if b < 0x80 {
                break;
            }
        }
        pos += len;
        ends.push(pos);
    }
    assert_eq!(pos, bytes.len(), "CIFF messages do not end with the file");
    ends
}

#[test]
fn error_truncated_ciff() {
    let tmp = tempdir();
    let dir = tmp.path();
    build_small(dir);
    ok(dir, "export-ciff --index idx.bmp --output good.ciff");
    let good = read(dir, "good.ciff");
    let ends = ciff_message_ends(&good);
    // A header, 4 postings lists (a, b, c, d), 7 doc records.
    assert_eq!(ends.len(), 12);
    let cases: [(usize, &[&str]); 7] = [
        (
            ends[10],
            &["NAME: truncated: header says 7 doc records, file ends after 6"],
        ),
        (
            ends[4],
            &["NAME: truncated: header says 7 doc records, file ends after 0"],
        ),
        (
            ends[0],
            &["NAME: truncated: header says 4 postings lists, file ends after 0"],
        ),
        (
            ends[2],
            &["NAME: truncated: header says 4 postings lists, file ends after 2"],
        ),
        // Inside the last doc record (record 12) and inside the header (record 1).
        (ends[11] - 2, &["NAME:12: file ends after", "(truncated)"]),
        (ends[0] - 3, &["NAME:1: file ends after", "(truncated)"]),
        (0, &["NAME: empty file: no CIFF header"]),
    ];
    for (cut, needles) in cases {
        for name in ["bad.ciff", "bad.ciff.gz"] {
            if name.ends_with(".gz") {
                write_gz(dir, name, &good[..cut]);
            } else {
                write(dir, name, &good[..cut]);
            }
            let needles: Vec<String> = needles.iter().map(|n| n.replace("NAME", name)).collect();
            let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
            fails(
                dir,
                &format!("build --input {name} --output out.bmp"),
                &needles,
            );
            assert_not_written(dir, "out.bmp");
        }
    }
    // Data after the last doc record.
    let mut extended = good.clone();
    extended.push(0);
    write(dir, "bad.ciff", &extended);
    fails(
        dir,
        "build --input bad.ciff --output out.bmp",
        &["bad.ciff: unexpected data after the last of the 7 doc records"],
    );
    // A truncated gzip stream.
    write_gz(dir, "full.ciff.gz", &good);
    let gz = read(dir, "full.ciff.gz");
    write(dir, "cut.ciff.gz", &gz[..gz.len() / 2]);
    fails(
        dir,
        "build --input cut.ciff.gz --output out.bmp",
        &["cut.ciff.gz: "],
    );
    assert_not_written(dir, "out.bmp");
}

/// The section table of an index: `(kind, offset, len)` for each of its 13 entries (the header
/// is 128 bytes, then 32-byte entries `kind: u32, reserved: u32, offset: u64, len: u64, ...`).
fn section_table(index: &[u8]) -> Vec<(u32, usize, usize)> {
    let u32_at = |o: usize| u32::from_le_bytes(index[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(index[o..o + 8].try_into().unwrap()) as usize;
    assert_eq!(&index[..8], b"BMPINDEX");
    assert_eq!(u32_at(8), 3, "format version");
    assert_eq!(u32_at(12), 128, "header size");
    (0..13)
        .map(|i| {
            let e = 128 + 32 * i;
            (u32_at(e), u64_at(e + 8), u64_at(e + 16))
        })
        .collect()
}

/// The byte range of the section of `kind` (2: vocabulary strings, 4: doc id strings).
fn section_range(index: &[u8], kind: u32) -> std::ops::Range<usize> {
    let (_, offset, len) = section_table(index)
        .into_iter()
        .find(|e| e.0 == kind)
        .unwrap_or_else(|| panic!("no section of kind {kind}"));
    offset..offset + len
}

#[test]
fn error_truncated_or_extended_index() {
    let tmp = tempdir();
    let dir = tmp.path();
    build_small(dir);
    write(dir, "q.tsv", QUERIES_TSV);
    let good = read(dir, "idx.bmp");
    let len = good.len();
    for cut in [
        0,
        7,
        8,
        100,
        127,
        128,
        200,
        483,
        500,
        len / 2,
        len - 64,
        len - 1,
    ] {
        write(dir, "bad.bmp", &good[..cut]);
        let mut needles = vec!["bad.bmp: corrupt index"];
        if cut >= 128 {
            needles.push("truncated");
        }
        fails(dir, "info --index bad.bmp", &needles);
        fails(
            dir,
            "search --index bad.bmp --queries q.tsv --output run.trec",
            &needles,
        );
        fails(dir, "export-ciff --index bad.bmp --output x.ciff", &needles);
        assert_not_written(dir, "run.trec");
        assert_not_written(dir, "x.ciff");
    }
    let mut extended = good.clone();
    extended.extend_from_slice(&[0; 64]);
    write(dir, "bad.bmp", &extended);
    fails(
        dir,
        "info --index bad.bmp",
        &["bad.bmp: corrupt index", "truncated or extended"],
    );
}

#[test]
fn error_header_byte_flip_is_refused_at_open() {
    let tmp = tempdir();
    let dir = tmp.path();
    build_small(dir);
    let good = read(dir, "idx.bmp");
    // Every byte of the header and of the section table.
    for i in 0..128 + 11 * 32 {
        let mut bad = good.clone();
        bad[i] ^= if i % 2 == 0 { 0x01 } else { 0x80 };
        write(dir, "bad.bmp", &bad);
        let r = fails(dir, "info --index bad.bmp", &["bad.bmp: "]);
        assert!(
            r.stderr.contains("corrupt index") || r.stderr.contains("index format version"),
            "byte {i}: {}",
            r.stderr
        );
        assert_eq!(r.stdout, "", "byte {i}: refused before printing anything");
    }
    // The checksum field itself and a reserved byte: the header checksum catches them.
    for i in [64, 100] {
        let mut bad = good.clone();
        bad[i] ^= 0x10;
        write(dir, "bad.bmp", &bad);
        fails(
            dir,
            "info --index bad.bmp",
            &["bad.bmp: corrupt index: header checksum mismatch"],
        );
    }
}

#[test]
fn error_section_byte_flip_fails_verification() {
    let tmp = tempdir();
    let dir = tmp.path();
    build_small(dir);
    write(dir, "q.tsv", QUERIES_TSV);
    let good = read(dir, "idx.bmp");

    // A doc id byte: the index opens and `info` works, `info --verify` reports the checksum.
    let ids = section_range(&good, 4);
    assert_eq!(&good[ids.clone()], b"d01emptyd3d45d6");
    let mut bad = good.clone();
    bad[ids.start] = b'X';
    write(dir, "bad.bmp", &bad);
    ok(dir, "info --index bad.bmp");
    let r = fails(
        dir,
        "info --index bad.bmp --verify",
        &["bad.bmp: corrupt index: checksum mismatch in section doc id strings"],
    );
    assert!(!r.stdout.contains("checksums:"), "{}", r.stdout);

    // Any flipped byte inside any section: `info --verify` fails, nothing panics, and search and
    // export either fail cleanly or succeed (they do not verify checksums).
    for (kind, offset, len) in section_table(&good) {
        for i in (offset..offset + len).step_by(3) {
            let mut bad = good.clone();
            bad[i] ^= 0x41;
            write(dir, "bad.bmp", &bad);
            let r = fails(
                dir,
                "info --index bad.bmp --verify",
                &["bad.bmp: corrupt index"],
            );
            assert!(
                !r.stdout.contains("checksums:"),
                "section {kind}, byte {i}: {}",
                r.stdout
            );
            for args in [
                "search --index bad.bmp --queries q.tsv",
                "export-ciff --index bad.bmp --output x.ciff",
            ] {
                let r = run(dir, args);
                assert!(
                    matches!(r.code, Some(0 | 1)),
                    "section {kind}, byte {i}: {args}: {:?}\n{}",
                    r.code,
                    r.stderr
                );
            }
            assert_no_temp_files(dir);
        }
    }
}

#[test]
fn check_passes_a_built_index_and_names_a_corrupt_section() {
    let tmp = tempdir();
    let dir = tmp.path();
    build_small(dir);
    let r = ok(dir, "check --index idx.bmp");
    assert!(
        r.stdout
            .starts_with("idx.bmp: ok (7 documents, 4 terms, 13 postings, 1 blocks, 1 superblocks"),
        "{}",
        r.stdout
    );
    let good = read(dir, "idx.bmp");
    let ids = section_range(&good, 4);
    let mut bad = good.clone();
    bad[ids.start] ^= 0x20;
    write(dir, "bad.bmp", &bad);
    let r = fails(
        dir,
        "check --index bad.bmp",
        &["bad.bmp: corrupt index: checksum mismatch in section doc id strings"],
    );
    assert_eq!(r.stdout, "");
    // Padding between sections is not under a checksum; `check` still wants it zero.
    let (_, first, _) = section_table(&good)[0];
    assert!(first > 128 + 13 * 32, "no padding before the first section");
    let mut bad = good;
    bad[first - 1] = 7;
    write(dir, "bad.bmp", &bad);
    fails(
        dir,
        "check --index bad.bmp",
        &["padding byte", "is not zero"],
    );
    fails(dir, "check --index missing.bmp", &["missing.bmp"]);
}

#[test]
fn error_unknown_version_with_stale_checksum() {
    let tmp = tempdir();
    let dir = tmp.path();
    build_small(dir);
    write(dir, "q.tsv", QUERIES_TSV);
    let mut bad = read(dir, "idx.bmp");
    bad[8..12].copy_from_slice(&99u32.to_le_bytes());
    write(dir, "v99.bmp", &bad);
    for args in [
        "info --index v99.bmp",
        "info --index v99.bmp --verify",
        "search --index v99.bmp --queries q.tsv",
    ] {
        let r = fails(dir, args, &["v99.bmp: "]);
        assert!(
            r.stderr.contains("version 99") || r.stderr.contains("corrupt index"),
            "{}",
            r.stderr
        );
        assert_eq!(r.stdout, "");
    }
}

#[test]
fn error_not_an_index() {
    let tmp = tempdir();
    let dir = tmp.path();
    write(dir, "docs.jsonl", DOCS);
    write(dir, "q.tsv", QUERIES_TSV);
    for args in [
        "info --index docs.jsonl",
        "search --index docs.jsonl --queries q.tsv --output run.trec",
        "export-ciff --index docs.jsonl --output x.ciff",
    ] {
        fails(dir, args, &["docs.jsonl: corrupt index: not a bmp index"]);
    }
    assert_eq!(listing(dir), ["docs.jsonl", "q.tsv"]);
}

#[test]
fn error_malformed_query_files() {
    let tmp = tempdir();
    let dir = tmp.path();
    build_small(dir);
    for (name, text, message) in [
        (
            "bad.tsv",
            "q1\ta b\nq2 a b\n",
            "bad.tsv:2: no TAB between the query id and the tokens",
        ),
        ("bad.tsv", "q1\ta\n\n\tb\n", "bad.tsv:3: empty query id"),
        (
            "bad.tsv",
            "q1\ta\nq2\tb\nq1\tc\n",
            "bad.tsv:3: duplicate query id \"q1\" (first on line 1)",
        ),
        (
            "bad.jsonl",
            "{\"id\": 1, \"vector\": {\"a\": 1}}\n\n{\"id\": 2, \"vector\": {\"a\": 1}\n",
            "bad.jsonl:3: invalid JSON",
        ),
        (
            "bad.jsonl",
            "{\"id\": 1, \"vector\": {\"a\": -2}}\n",
            "bad.jsonl:1: weight of term \"a\" is negative",
        ),
        ("bad.tsv", "\n \n", "bad.tsv: no queries"),
    ] {
        write(dir, name, text);
        fails(
            dir,
            &format!("search --index idx.bmp --queries {name} --output run.trec"),
            &[message],
        );
        assert_not_written(dir, "run.trec");
        fs::remove_file(dir.join(name)).unwrap();
    }
}

#[test]
fn error_bad_arguments_are_rejected_by_clap() {
    let tmp = tempdir();
    let dir = tmp.path();
    build_small(dir);
    write(dir, "q.tsv", QUERIES_TSV);
    for (args, message) in [
        (
            "search --index idx.bmp --queries q.tsv --k 0",
            "invalid value '0' for '--k <K>'",
        ),
        (
            "search --index idx.bmp --queries q.tsv --k=-3",
            "invalid value '-3' for '--k <K>'",
        ),
        (
            "search --index idx.bmp --queries q.tsv --algorithm magic",
            "algorithm must be one of exhaustive, bmp, maxscore, bmw, sp, got \"magic\"",
        ),
        ("search --index idx.bmp", "--queries <QUERIES>"),
        (
            "build --input docs.jsonl --output x.bmp --format xml",
            "invalid value 'xml' for '--format <FORMAT>'",
        ),
    ] {
        let r = run(dir, args);
        assert_eq!(r.code, Some(2), "{args}: {}", r.stderr);
        assert!(r.stderr.contains(message), "{args}: {}", r.stderr);
        assert_eq!(r.stdout, "");
    }
    // A tag with whitespace would break the run's columns.
    let r = run_argv(
        dir,
        &[
            "search",
            "--index",
            "idx.bmp",
            "--queries",
            "q.tsv",
            "--tag",
            "two words",
            "--output",
            "run.trec",
        ],
    );
    expect_failure(r, &["--tag must be one word, got \"two words\""]);
    assert_not_written(dir, "run.trec");
}

#[test]
fn writing_to_a_closed_pipe_does_not_panic() {
    let tmp = tempdir();
    let dir = tmp.path();
    build_small(dir);
    for args in [
        "info --index idx.bmp --verify",
        "search --index idx.bmp --queries docs.jsonl --k 1000",
    ] {
        let mut child = Command::new(BIN)
            .args(args.split(' '))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before the command writes, as `bmp-index info | head -0` would.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args}: {stderr}");
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{args}: {:?}: {stderr}",
            out.status
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Atomicity
// ---------------------------------------------------------------------------------------------

#[test]
fn failed_build_leaves_the_existing_index_untouched() {
    let tmp = tempdir();
    let dir = tmp.path();
    build_small(dir);
    fs::rename(dir.join("idx.bmp"), dir.join("out.bmp")).unwrap();
    let before = read(dir, "out.bmp");
    let bad_line = r#"{"id": "x", "vector": {"a": "heavy"}}"#;
    write(dir, "bad.jsonl", format!("{GOOD_LINE}\n{bad_line}\n"));
    fails(
        dir,
        "build --input bad.jsonl --output out.bmp",
        &["bad.jsonl:2: weight of term \"a\" is not a number"],
    );
    assert_eq!(read(dir, "out.bmp"), before);
    assert_no_temp_files(dir);
    // A bad block size, an empty input, a bad CIFF: still untouched.
    write(dir, "empty.jsonl", "");
    write(dir, "bad.ciff", b"\x05\x08\x01");
    for args in [
        "build --input docs.jsonl --output out.bmp --block-size 7",
        "build --input empty.jsonl --output out.bmp",
        "build --input bad.ciff --output out.bmp",
    ] {
        fails(dir, args, &[]);
        assert_eq!(read(dir, "out.bmp"), before, "{args}");
        assert_no_temp_files(dir);
    }
    ok(dir, "info --index out.bmp --verify");

    // A temporary file left by a process that no longer runs is removed by the next build (pid
    // 4294967 is above Linux's pid limit).
    write(dir, ".out.bmp.tmp-4294967", b"partial");
    ok(dir, "build --input docs.jsonl --output out.bmp");
    assert_eq!(read(dir, "out.bmp"), before, "the build is deterministic");
    assert_no_temp_files(dir);
}

#[test]
fn failed_search_leaves_the_existing_run_untouched() {
    let tmp = tempdir();
    let dir = tmp.path();
    build_small(dir);
    write(dir, "q.tsv", QUERIES_TSV);
    write(dir, "run.trec", "previous run\n");
    // An invalid UTF-8 byte in the first document id ("d0"): naming the first hit of the first
    // query fails after the run file has been started.
    let mut bad = read(dir, "idx.bmp");
    let ids = section_range(&bad, 4);
    assert!(bad[ids.clone()].starts_with(b"d0"));
    bad[ids.start] = 0xff;
    write(dir, "bad.bmp", &bad);
    fails(
        dir,
        "search --index bad.bmp --queries q.tsv --output run.trec",
        &["bad.bmp: corrupt index", "doc id 0 is not valid UTF-8"],
    );
    assert_eq!(read_string(dir, "run.trec"), "previous run\n");
    assert_no_temp_files(dir);
    // A good search replaces it.
    ok(
        dir,
        "search --index idx.bmp --queries q.tsv --output run.trec --tag T",
    );
    assert_eq!(read_string(dir, "run.trec"), EXPECTED_RUN);
    assert_no_temp_files(dir);
}

// ---------------------------------------------------------------------------------------------
// 6. synth
// ---------------------------------------------------------------------------------------------

#[test]
fn synth_is_deterministic_and_searchable() {
    let tmp = tempdir();
    let dir = tmp.path();
    let synth = |seed: u64, docs: &str, queries: &str| {
        ok(
            dir,
            &format!(
                "synth --docs 300 --queries 12 --seed {seed} --vocab 2000 \
                 --output-docs {docs} --output-queries {queries}"
            ),
        )
    };
    let r = synth(7, "a.jsonl", "aq.jsonl");
    assert!(
        r.stderr
            .contains("wrote 300 documents to a.jsonl and 12 queries to aq.jsonl"),
        "{}",
        r.stderr
    );
    synth(7, "b.jsonl", "bq.jsonl");
    synth(8, "c.jsonl", "cq.jsonl");
    assert_eq!(read(dir, "a.jsonl"), read(dir, "b.jsonl"));
    assert_eq!(read(dir, "aq.jsonl"), read(dir, "bq.jsonl"));
    assert_ne!(read(dir, "a.jsonl"), read(dir, "c.jsonl"));
    assert_ne!(read(dir, "aq.jsonl"), read(dir, "cq.jsonl"));

    let docs = read_string(dir, "a.jsonl");
    assert_eq!(docs.lines().count(), 300);
    assert!(docs.starts_with("{\"id\":\"d0\","), "{}", &docs[..40]);
    assert_eq!(read_string(dir, "aq.jsonl").lines().count(), 12);

    ok(dir, "build --input a.jsonl --output a.bmp");
    let info = ok(dir, "info --index a.bmp --verify");
    let (docs, terms, postings) = info_counts(&info.stdout);
    assert_eq!(docs, 300);
    assert!(
        terms > 0 && terms <= 2000 && postings >= terms,
        "{}",
        info.stdout
    );
    let r = ok(dir, "search --index a.bmp --queries aq.jsonl --tag s");
    let lines = check_run_shape(&r.stdout, "s", 10);
    assert!(lines > 0 && lines <= 12 * 10, "{lines} lines");
    let line = check_latency(&r.stderr, 12, 10);
    assert!(line.contains(" unknown query terms ignored, "), "{line}");
    assert_no_temp_files(dir);
}

// ---------------------------------------------------------------------------------------------
// 7. demo
// ---------------------------------------------------------------------------------------------

#[test]
fn demo_runs_the_whole_pipeline() {
    let tmp = tempdir();
    let dir = tmp.path();
    let r = ok(dir, "demo --dir work/demo --docs 2000 --queries 20");
    let work = dir.join("work/demo");
    assert_eq!(
        listing(&work),
        ["docs.jsonl", "index.bmp", "queries.jsonl", "run.trec"]
    );
    assert_eq!(info_field(&r.stdout, "documents"), "2000");
    assert!(
        r.stdout
            .contains("checksums:        all 13 sections verified"),
        "{}",
        r.stdout
    );
    assert!(
        r.stderr.contains("run written to work/demo/run.trec"),
        "{}",
        r.stderr
    );
    let run = read_string(&work, "run.trec");
    let lines = check_run_shape(&run, "bmp-bmp", 10);
    assert!(lines > 0 && lines <= 20 * 10, "{lines} lines");
    assert_eq!(read_string(&work, "docs.jsonl").lines().count(), 2000);
    assert_eq!(read_string(&work, "queries.jsonl").lines().count(), 20);
    // The comparison table: exhaustive and BMP, both exact.
    for name in ["exhaustive", "bmp"] {
        let row = r
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} row in {}", r.stdout));
        assert!(row.ends_with("1.0000"), "{row}");
    }
}

#[test]
fn limits_a_100_mb_line_and_a_query_of_every_term_at_k_one_million() {
    let tmp = tempdir();
    let dir = tmp.path();
    // A 100 MB line that is not JSON: the error names the line; the lines around it are fine.
    let mut big = String::from("{\"id\": \"a\", \"vector\": {\"x\": 1.0}}\n");
    big.push_str(&"x".repeat(100 << 20));
    big.push_str("\n{\"id\": \"b\", \"vector\": {\"y\": 1.0}}\n");
    write(dir, "big.jsonl", &big);
    drop(big);
    fails(
        dir,
        "build --input big.jsonl --output big.bmp",
        &["big.jsonl:2: invalid JSON"],
    );
    assert!(!dir.join("big.bmp").exists());

    // Every vocabulary term in one query, k = 1,000,000: every document that has a term, in the
    // exhaustive order, from every processor.
    ok(
        dir,
        "synth --docs 1500 --queries 1 --seed 4 --output-docs d.jsonl --output-queries q.jsonl",
    );
    ok(dir, "build --input d.jsonl --output x.bmp --block-size 16");
    let terms = common::vocabulary(&dir.join("d.jsonl"), usize::MAX);
    let vector: serde_json::Map<String, serde_json::Value> = terms
        .iter()
        .map(|t| (t.clone(), serde_json::json!(0.5)))
        .collect();
    write(
        dir,
        "all.jsonl",
        serde_json::json!({"id": "all", "vector": vector}).to_string() + "\n",
    );
    let search = |algorithm: &str| {
        ok(
            dir,
            &format!(
                "search --index x.bmp --queries all.jsonl --k 1000000 --tag t --algorithm \
                 {algorithm}"
            ),
        )
        .stdout
    };
    let truth = search("exhaustive");
    assert_eq!(truth.lines().count(), 1500);
    for algorithm in ["bmp", "sp", "maxscore", "bmw"] {
        assert!(
            search(algorithm) == truth,
            "{algorithm} differs from exhaustive"
        );
    }
}

#[test]
fn progress_goes_to_a_log_as_plain_lines() {
    let tmp = tempdir();
    let dir = tmp.path();
    let synth = |every: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_bmp-index"))
            .args([
                "synth",
                "--docs",
                "3000",
                "--queries",
                "2",
                "--output-docs",
                "d.jsonl",
                "--output-queries",
                "q.jsonl",
            ])
            .current_dir(dir)
            .env("BMP_PROGRESS_SECS", every)
            .output()
            .expect("cannot run bmp-index")
    };
    // Standard error is a pipe here: every update is a line of its own, no bar drawing.
    let out = synth("0");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("generating: "))
        .collect();
    assert!(!lines.is_empty(), "{stderr}");
    assert!(lines.iter().all(|l| l.contains("/3000 (")), "{stderr}");
    assert!(
        !stderr.contains('\r') && !stderr.contains('\u{1b}'),
        "{stderr:?}"
    );
    // By default (every 10 s) work this short logs none.
    let out = synth("10");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("generating: "), "{stderr}");
}

#[test]
fn a_missing_model_is_named_with_its_hint_once() {
    let tmp = tempdir();
    let dir = tmp.path();
    write(
        dir,
        "corpus.jsonl",
        "{\"_id\": \"d1\", \"text\": \"some text\"}\n",
    );
    // No models/ directory here: the default model is missing.
    let r = fails(
        dir,
        "encode --input corpus.jsonl --output v.jsonl",
        &["models/splade-tiny", "scripts/setup-models.sh"],
    );
    assert_eq!(r.stderr.matches("setup-models").count(), 1, "{}", r.stderr);
}
