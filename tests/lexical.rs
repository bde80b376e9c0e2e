//! BM25 in the block-max index: `build --lexical-only` on real BEIR text, searched with text
//! queries by every processor, scores BM25 as the baseline does (up to 8-bit impacts).

use std::path::Path;

mod common;

use common::{dataset, ok, run};

/// nDCG@10 of a system in `eval`'s table.
fn ndcg(stdout: &str, system: &str) -> f64 {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(system))
        .unwrap_or_else(|| panic!("no row {system:?} in\n{stdout}"));
    let words: Vec<&str> = line[system.len()..].split_whitespace().collect();
    words[0].parse().unwrap()
}

/// nDCG@10 of the BM25 baseline (tantivy's postings, scored in `bmp_eval`) with `params`.
fn baseline(data: &Path, params: bmp_eval::Bm25Params) -> f64 {
    let data = bmp_eval::BeirDataset::open(data, "test").unwrap();
    let qrels = data.qrels().unwrap();
    let queries = data.judged_queries(&qrels).unwrap();
    let bm25 = bmp_eval::Bm25Index::build(&bmp_eval::Bm25Storage::Ram, data.corpus().unwrap())
        .unwrap()
        .with_params(params);
    let run = bm25.search_run(&queries, 1000).unwrap();
    let eval = bmp_eval::evaluate(
        &qrels,
        &run,
        &[bmp_eval::Measure::Ndcg(10)],
        &bmp_eval::EvalOptions::default(),
    )
    .unwrap();
    eval.mean(bmp_eval::Measure::Ndcg(10)).unwrap()
}

#[test]
fn a_lexical_index_answers_text_queries_with_bm25() {
    let Some(cranfield) = dataset("cranfield") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let corpus = cranfield.join("corpus.jsonl");
    let queries = cranfield.join("queries.jsonl");
    let qrels = cranfield.join("qrels/test.tsv");
    let (corpus, queries, qrels) = (
        corpus.to_str().unwrap(),
        queries.to_str().unwrap(),
        qrels.to_str().unwrap(),
    );
    for (params, args) in [
        (bmp_eval::Bm25Params::default(), vec![]),
        (
            bmp_eval::Bm25Params::new(0.9, 0.4).unwrap(),
            vec!["--bm25-k1", "0.9", "--bm25-b", "0.4"],
        ),
    ] {
        let mut build = vec![
            "build",
            "--lexical-only",
            "--input",
            corpus,
            "--output",
            "lex.bmp",
        ];
        build.extend(&args);
        ok(d, &build);
        let info = ok(d, &["info", "--index", "lex.bmp"]);
        assert!(
            info.contains(&format!("BM25 k1={} b={}", params.k1, params.b)),
            "{info}"
        );
        let table = ok(
            d,
            &[
                "eval",
                "--index",
                "lex.bmp",
                "--queries",
                queries,
                "--qrels",
                qrels,
                "--algorithm",
                "bmp,exhaustive,maxscore,sp",
            ],
        );
        let bmp = ndcg(&table, "bm25 bmp");
        for other in ["bm25 exhaustive", "bm25 maxscore", "bm25 sp"] {
            assert_eq!(ndcg(&table, other), bmp, "{other}:\n{table}");
        }
        let want = baseline(&cranfield, params);
        assert!(
            (bmp - want).abs() < 0.003,
            "BM25 in the index {bmp} against the baseline {want} ({params:?})"
        );
    }
    // A run from `search` with text queries.
    let written = ok(
        d,
        &[
            "search",
            "--index",
            "lex.bmp",
            "--queries",
            queries,
            "--k",
            "5",
        ],
    );
    assert_eq!(written.lines().count(), 225 * 5, "{written}");

    // Errors.
    let r = run(
        d,
        &[
            "build",
            "--input",
            corpus,
            "--output",
            "x.bmp",
            "--bm25-k1",
            "1",
        ],
    );
    assert!(
        r.code == Some(1) && r.stderr.contains("--lexical-only"),
        "{}",
        r.stderr
    );
    let r = run(
        d,
        &[
            "build",
            "--lexical-only",
            "--input",
            corpus,
            "--output",
            "x.bmp",
            "--bm25-b",
            "2",
        ],
    );
    assert!(
        r.code == Some(1) && r.stderr.contains("b must lie in [0, 1]"),
        "{}",
        r.stderr
    );
    let r = run(
        d,
        &[
            "build",
            "--lexical-only",
            "--model",
            "m",
            "--input",
            corpus,
            "--output",
            "x.bmp",
        ],
    );
    assert_eq!(r.code, Some(2), "{}", r.stderr);
}
