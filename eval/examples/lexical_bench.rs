//! Tantivy's own BM25 top-k latency on a BEIR corpus and text queries, one thread, beside the
//! queries written for `bmp-index bench` over a `build --lexical-only` index of the same corpus.
//!
//! `cargo run --release -p bmp-eval --example lexical_bench -- CORPUS QUERIES N OUT.jsonl`
//!
//! Tantivy answers each query as a disjunction of term queries boosted by their counts, top k
//! by score (block-max WAND), k = 10 and 1000; a warm-up pass, then a timed one. OUT.jsonl gets
//! the first N queries as `bm25:word` vectors, which `bmp-index bench --queries OUT.jsonl` reads.

use std::io::Write;
use std::time::Instant;

use bmp_eval::{Bm25Index, Bm25Storage, CorpusReader, Latency, QueryReader};
use bmp_lexical::LexicalAnalyzer;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::Term;

fn main() {
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() != 4 {
        eprintln!("usage: lexical_bench CORPUS QUERIES N OUT.jsonl");
        std::process::exit(2);
    }
    let n: usize = args[2].parse()?;
    let start = Instant::now();
    let bm25 = Bm25Index::build(&Bm25Storage::Ram, CorpusReader::open(&args[0])?)?;
    eprintln!(
        "tantivy indexed {} documents in {:.1} s",
        bm25.num_docs(),
        start.elapsed().as_secs_f64()
    );
    let texts: Vec<(String, String)> = QueryReader::open(&args[1])?
        .take(n)
        .map(|q| q.map(|q| (q.id, q.text)))
        .collect::<Result<_, _>>()?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(&args[3])?);
    let mut analyzer = LexicalAnalyzer::default();
    for (id, text) in &texts {
        let vector: serde_json::Map<String, serde_json::Value> = analyzer
            .query(text)
            .into_iter()
            .map(|(t, w)| (t, serde_json::Value::from(w)))
            .collect();
        writeln!(out, "{}", serde_json::json!({"id": id, "vector": vector}))?;
    }
    out.flush()?;
    let field = bm25
        .index()
        .schema()
        .get_field("body")
        .map_err(|e| format!("no body field: {e}"))?;
    let reader = bm25.index().reader()?;
    let searcher = reader.searcher();
    let queries: Vec<BooleanQuery> = texts
        .iter()
        .map(|(_, text)| {
            BooleanQuery::new(
                bm25.query_terms(text)
                    .into_iter()
                    .map(|(word, count)| {
                        let term = Term::from_field_text(field, &word);
                        let q: Box<dyn Query> = Box::new(BoostQuery::new(
                            Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)),
                            count as f32,
                        ));
                        (Occur::Should, q)
                    })
                    .collect(),
            )
        })
        .collect();
    println!(
        "{:<24} {:>6} {:>10} {:>10} {:>10}",
        "system", "k", "mean_us", "p50_us", "p99_us"
    );
    for k in [10usize, 1000] {
        let collector = TopDocs::with_limit(k).order_by_score();
        for q in &queries {
            searcher.search(q, &collector)?;
        }
        let mut micros = Vec::with_capacity(queries.len());
        for q in &queries {
            let start = Instant::now();
            let hits = searcher.search(q, &collector)?;
            micros.push(start.elapsed().as_secs_f64() * 1e6);
            std::hint::black_box(hits);
        }
        let l = Latency::of(micros);
        println!(
            "{:<24} {:>6} {:>10.1} {:>10.1} {:>10.1}",
            "tantivy bm25", k, l.mean, l.p50, l.p99
        );
    }
    Ok(())
}
