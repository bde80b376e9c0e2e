//! End-to-end: every processor gives the exhaustive run through `search`, and `bench` reports
//! recall 1 for the rank-safe ones.

use std::path::Path;
use std::process::Command;

fn bmp(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_bmp-index"))
        .args(args)
        .output()
        .expect("runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn path(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[test]
fn processors_agree_and_bench_reports_them() {
    let dir = tempfile::tempdir().unwrap();
    let docs = dir.path().join("docs.jsonl");
    let queries = dir.path().join("queries.jsonl");
    let index = dir.path().join("x.bmp");
    let (ok, _, err) = bmp(&[
        "synth",
        "--docs",
        "3000",
        "--queries",
        "30",
        "--seed",
        "5",
        "--topics",
        "20",
        "--output-docs",
        path(&docs),
        "--output-queries",
        path(&queries),
    ]);
    assert!(ok, "{err}");
    let (ok, _, err) = bmp(&[
        "build",
        "--input",
        path(&docs),
        "--output",
        path(&index),
        "--reorder",
        "bp",
        "--block-size",
        "16",
    ]);
    assert!(ok, "{err}");
    for k in ["1", "10", "100"] {
        let run = |algorithm: &str| {
            let (ok, out, err) = bmp(&[
                "search",
                "--index",
                path(&index),
                "--queries",
                path(&queries),
                "--k",
                k,
                "--algorithm",
                algorithm,
                "--tag",
                "t",
            ]);
            assert!(ok, "{err}");
            assert!(!err.contains("panicked"));
            out
        };
        let truth = run("exhaustive");
        assert!(!truth.is_empty());
        for algorithm in ["maxscore", "bmw", "bmp", "bmp:alpha=1:beta=1"] {
            assert_eq!(run(algorithm), truth, "{algorithm} at k={k}");
        }
    }
    let (ok, out, err) = bmp(&[
        "bench",
        "--index",
        path(&index),
        "--queries",
        path(&queries),
        "--k",
        "10,100",
        "--algorithms",
        "exhaustive,maxscore,bmw,bmp,bmp:alpha=0.5",
        "--threads",
        "2",
        "--warmup",
        "0",
        "--json",
    ]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 10, "{out}");
    for line in &lines {
        assert!(line.starts_with('{') && line.ends_with('}'), "{line}");
        assert!(
            line.contains("\"qps\":") && !line.contains("\"qps\":null"),
            "{line}"
        );
        if !line.contains("alpha") {
            assert!(line.contains("\"recall\":1.0000"), "{line}");
        }
    }
    let (ok, _, err) = bmp(&[
        "bench",
        "--index",
        path(&index),
        "--queries",
        path(&queries),
        "--algorithms",
        "bmp:alpha=2",
    ]);
    assert!(!ok);
    assert!(err.contains("alpha must be in (0, 1]"), "{err}");
    let (ok, _, err) = bmp(&[
        "search",
        "--index",
        path(&index),
        "--queries",
        path(&queries),
        "--algorithm",
        "wand",
    ]);
    assert!(!ok);
    assert!(err.contains("algorithm must be one of"), "{err}");
}
