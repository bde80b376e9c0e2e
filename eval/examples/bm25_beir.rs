//! BM25 on one BEIR-layout folder: prints nDCG@10, MRR@10, Recall@100/1000, MAP and timings.
//!
//! `cargo run --release -p bmp-eval --example bm25_beir -- DIR [SPLIT] [K] [RUN_OUT]`

use std::time::Instant;

use bmp_eval::{evaluate, BeirDataset, Bm25Index, Bm25Storage, EvalOptions, Measure};

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: bm25_beir DIR [SPLIT] [K] [RUN_OUT]");
        std::process::exit(2);
    };
    let split = args.get(1).map_or("test", String::as_str);
    let k: usize = args.get(2).map_or(Ok(1000), |s| s.parse())?;
    let data = BeirDataset::open(dir, split)?;
    let qrels = data.qrels()?;
    let queries = data.judged_queries(&qrels)?;
    let start = Instant::now();
    let index = Bm25Index::build(&Bm25Storage::Ram, data.corpus()?)?;
    let built = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let run = index.search_run(&queries, k)?;
    let searched = start.elapsed().as_secs_f64();
    if let Some(out) = args.get(3) {
        run.save_trec(out, "bm25-tantivy")?;
    }
    let eval = evaluate(&qrels, &run, &Measure::standard(), &EvalOptions::default())?;
    println!("{dir}: {eval}");
    println!(
        "{} docs indexed in {built:.2}s; {} queries at k={k} in {searched:.2}s ({:.2} ms/query)",
        index.num_docs(),
        queries.len(),
        searched * 1e3 / queries.len() as f64
    );
    Ok(())
}
