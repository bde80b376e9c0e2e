//! End-to-end tests of collection directories through the real binary: `add` (with upserts),
//! `delete`, `compact`, and `search` over the segments, against rankings computed by hand.
//!
//! Document weights are integers no larger than 255, so impacts equal the weights, and integer
//! query weights are kept: a score is `sum q_t * w_t`.

use std::fs;
use std::path::Path;

mod common;

use common::{run, run_ok};

fn write(dir: &Path, name: &str, contents: &str) {
    fs::write(dir.join(name), contents).unwrap();
}

/// `(doc id, score)` of query `q` in a TREC run, in rank order.
fn ranking(run: &str, q: &str) -> Vec<(String, u32)> {
    run.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0] == q).then(|| (f[2].to_owned(), f[4].parse().unwrap()))
        })
        .collect()
}

fn search(dir: &Path, target: &str, algorithm: &str) -> String {
    run_ok(
        dir,
        &[
            "search",
            "--index",
            target,
            "--queries",
            "q.tsv",
            "--k",
            "3",
            "--algorithm",
            algorithm,
        ],
    )
    .stdout
}

#[test]
fn add_upsert_delete_compact_and_search() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "a.jsonl",
        concat!(
            r#"{"id": "a", "vector": {"x": 5, "y": 1}}"#,
            "\n",
            r#"{"id": "b", "vector": {"x": 4}}"#,
            "\n",
            r#"{"id": "c", "vector": {"y": 7}}"#,
            "\n",
            r#"{"id": "d", "vector": {"x": 1, "y": 1}}"#,
            "\n",
        ),
    );
    // "b" again (upsert) and a new "e".
    write(
        dir,
        "b.jsonl",
        concat!(
            r#"{"id": "b", "vector": {"y": 2}}"#,
            "\n",
            r#"{"id": "e", "vector": {"x": 3, "z": 9}}"#,
            "\n",
        ),
    );
    // q1: 2x + y.
    write(dir, "q.tsv", "q1\tx x y\n");
    let r = run_ok(dir, &["add", "--collection", "col", "--input", "a.jsonl"]);
    assert!(
        r.stderr.contains("added 4 documents (0 replaced)"),
        "{}",
        r.stderr
    );
    let r = run_ok(dir, &["add", "--collection", "col", "--input", "b.jsonl"]);
    assert!(
        r.stderr.contains("added 2 documents (1 replaced)")
            && r.stderr.contains("2 segments, 5 live documents"),
        "{}",
        r.stderr
    );
    // a = 11, c = 7, e = 6, d = 3, b = 2.
    let expect = |v: &[(&str, u32)]| -> Vec<(String, u32)> {
        v.iter().map(|&(d, s)| (d.to_owned(), s)).collect()
    };
    for algorithm in ["exhaustive", "bmp", "maxscore", "bmw", "sp"] {
        let run = search(dir, "col", algorithm);
        assert_eq!(
            ranking(&run, "q1"),
            expect(&[("a", 11), ("c", 7), ("e", 6)]),
            "{algorithm}"
        );
    }
    write(dir, "ids.txt", "a\n\n  c  \nnobody\n");
    let r = run_ok(dir, &["delete", "--collection", "col", "--ids", "ids.txt"]);
    assert!(
        r.stderr
            .contains("deleted 2 documents from col (1 ids matched no live document)"),
        "{}",
        r.stderr
    );
    let after_delete = expect(&[("e", 6), ("d", 3), ("b", 2)]);
    for algorithm in ["exhaustive", "bmp"] {
        assert_eq!(ranking(&search(dir, "col", algorithm), "q1"), after_delete);
    }
    let r = run_ok(dir, &["compact", "--collection", "col"]);
    assert!(
        r.stderr
            .contains("2 segments into 1, 3 deleted documents dropped, 3 live documents"),
        "{}",
        r.stderr
    );
    assert_eq!(ranking(&search(dir, "col", "bmp"), "q1"), after_delete);
    let mut files: Vec<String> = fs::read_dir(dir.join("col"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    assert_eq!(files, ["LOCK", "MANIFEST", "WAL", "seg-00000003.bmp"]);
}

#[test]
fn collection_errors_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    fs::create_dir(dir.join("other")).unwrap();
    write(&dir.join("other"), "file.txt", "not a collection");
    write(dir, "ids.txt", "x\n");
    let r = run(
        dir,
        &["delete", "--collection", "other", "--ids", "ids.txt"],
    );
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("not a collection directory"),
        "{}",
        r.stderr
    );
    let r = run(dir, &["compact", "--collection", "missing"]);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("not a collection directory"),
        "{}",
        r.stderr
    );
    // A bad line names its file and line; nothing is written.
    write(
        dir,
        "bad.jsonl",
        "{\"id\": \"a\", \"vector\": {\"x\": 1}}\n{\"id\": \"b\", \"vector\": \n",
    );
    let r = run(dir, &["add", "--collection", "col", "--input", "bad.jsonl"]);
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("bad.jsonl:2"), "{}", r.stderr);
    let manifest = fs::read_to_string(dir.join("col/MANIFEST")).unwrap();
    assert!(manifest.contains("\"segments\": []"), "{manifest}");
    // A damaged manifest is refused, by writers and readers alike.
    fs::write(
        dir.join("col/MANIFEST"),
        manifest.replace("\"generation\": 0", "\"generation\": 7"),
    )
    .unwrap();
    write(dir, "q.tsv", "q1\tx\n");
    let r = run(
        dir,
        &["search", "--index", "col", "--queries", "q.tsv", "--k", "3"],
    );
    assert_eq!(r.code, Some(1));
    assert!(r.stderr.contains("checksum"), "{}", r.stderr);
}

#[test]
fn adds_merge_the_smallest_segments_beyond_the_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "q.tsv", "q1\tx\n");
    for i in 0..4 {
        write(
            dir,
            &format!("{i}.jsonl"),
            &format!("{{\"id\": \"d{i}\", \"vector\": {{\"x\": {}}}}}\n", i + 1),
        );
        let r = run_ok(
            dir,
            &[
                "add",
                "--collection",
                "col",
                "--input",
                &format!("{i}.jsonl"),
                "--max-segments",
                "2",
                "--merge-factor",
                "3",
            ],
        );
        if i == 2 {
            assert!(
                r.stderr
                    .contains("merged segments 1 times (3 segments in all)")
                    && r.stderr.contains("1 segments, 3 live documents"),
                "{}",
                r.stderr
            );
        }
    }
    let manifest = fs::read_to_string(dir.join("col/MANIFEST")).unwrap();
    assert_eq!(manifest.matches("\"file\"").count(), 2, "{manifest}");
    assert_eq!(
        ranking(&search(dir, "col", "bmp"), "q1"),
        [("d3", 4), ("d2", 3), ("d1", 2)]
            .iter()
            .map(|&(d, s)| (d.to_owned(), s))
            .collect::<Vec<_>>()
    );
    let r = run(
        dir,
        &[
            "add",
            "--collection",
            "col",
            "--input",
            "0.jsonl",
            "--merge-factor",
            "1",
        ],
    );
    assert_eq!(r.code, Some(2), "{}", r.stderr);
}

#[test]
fn eval_takes_a_collection() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "a.jsonl",
        concat!(
            r#"{"id": "a", "vector": {"x": 5}}"#,
            "\n",
            r#"{"id": "b", "vector": {"x": 4, "y": 3}}"#,
            "\n",
        ),
    );
    write(dir, "b.jsonl", "{\"id\": \"c\", \"vector\": {\"y\": 9}}\n");
    run_ok(dir, &["add", "--collection", "col", "--input", "a.jsonl"]);
    run_ok(dir, &["add", "--collection", "col", "--input", "b.jsonl"]);
    // q1 finds a then b (the relevant one second); q2 finds c (relevant) first.
    write(dir, "q.tsv", "q1\tx\nq2\ty\n");
    write(dir, "qrels.txt", "q1 0 b 1\nq2 0 c 1\n");
    let r = run_ok(
        dir,
        &[
            "eval",
            "--index",
            "col",
            "--queries",
            "q.tsv",
            "--qrels",
            "qrels.txt",
            "--k",
            "10",
            "--algorithm",
            "bmp",
            "--output",
            "runs",
        ],
    );
    assert!(r.stdout.contains("(2 segments)"), "{}", r.stdout);
    // MRR@10 = (1/2 + 1) / 2.
    assert!(r.stdout.contains("0.7500"), "{}", r.stdout);
    assert_eq!(
        ranking(
            &fs::read_to_string(dir.join("runs/splade-bmp-2-segments.trec")).unwrap(),
            "q2"
        ),
        [("c".to_owned(), 9), ("b".to_owned(), 3)]
    );
}

#[test]
fn build_within_a_memory_budget_writes_a_collection_that_searches_as_one_index() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let docs: String = (0..300)
        .map(|i| {
            format!(
                "{{\"id\": \"d{i}\", \"vector\": {{\"x\": {}, \"y\": {}}}}}\n",
                i % 251 + 1,
                (i * 7) % 13 + 1
            )
        })
        .collect();
    write(dir, "docs.jsonl", &docs);
    write(dir, "q.tsv", "q1\tx x y\n");
    run_ok(
        dir,
        &["build", "--input", "docs.jsonl", "--output", "one.bmp"],
    );
    let r = run_ok(
        dir,
        &[
            "build",
            "--input",
            "docs.jsonl",
            "--output",
            "col",
            "--memory-budget",
            "128M",
        ],
    );
    assert!(r.stderr.contains("added 300 documents"), "{}", r.stderr);
    assert!(dir.join("col/MANIFEST").exists());
    let scores = |run: &str| {
        ranking(run, "q1")
            .into_iter()
            .map(|h| h.1)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        scores(&search(dir, "col", "bmp")),
        scores(&search(dir, "one.bmp", "bmp"))
    );
    // Not over an existing collection or file.
    let r = run(
        dir,
        &[
            "build",
            "--input",
            "docs.jsonl",
            "--output",
            "col",
            "--memory-budget",
            "128M",
        ],
    );
    assert!(
        r.code != Some(0) && r.stderr.contains("not an empty directory"),
        "{}",
        r.stderr
    );
}
