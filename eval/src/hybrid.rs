//! Hybrid queries evaluated: text queries with their learned encodings, answered over an index
//! with a learned and a lexical field by each hybrid spec ([`bmp_lexical::HybridSpec`]: lexical
//! weight and fusion) and query processor, one system each.

use std::time::Instant;

use bmp_index::Index;
use bmp_lexical::{FusedHits, HybridQuery, HybridSpec, LexicalAnalyzer};
use bmp_query::SearchSpec;

use crate::error::{Error, Result};
use crate::evaluate::{EvalOptions, Measure};
use crate::latency::Latency;
use crate::pipeline::SystemResult;
use crate::qrels::Qrels;
use crate::run::Run;

/// A text query and its learned (encoder's) entries.
#[derive(Debug, Clone)]
pub struct HybridRecord {
    /// The query's id.
    pub id: String,
    /// Its text (analyzed into BM25 words).
    pub text: String,
    /// The encoder's entries for it.
    pub learned: Vec<(String, f32)>,
}

/// The text queries `queries` with the encoder's entries `learned` (the same queries, in the
/// same order, as [`crate::encode::encode_queries`] returns them).
pub fn hybrid_records(
    queries: &[crate::jsonl::Query],
    learned: Vec<bmp_index::readers::SparseRecord>,
) -> Result<Vec<HybridRecord>> {
    if queries.len() != learned.len() {
        return Err(Error::Invalid(format!(
            "{} query texts for {} encoded queries",
            queries.len(),
            learned.len()
        )));
    }
    Ok(queries
        .iter()
        .zip(learned)
        .map(|(q, l)| HybridRecord {
            id: q.id.clone(),
            text: q.text.clone(),
            learned: l.entries,
        })
        .collect())
}

/// Answers one hybrid query with `spec`'s processor: its hits, and the time its search took in
/// microseconds (both passes and the fusion with rrf; the query's analysis excluded).
pub fn timed_hybrid_search(
    index: &Index,
    searcher: &mut dyn bmp_query::Searcher,
    query: &HybridQuery,
    k: usize,
) -> Result<(FusedHits, f64)> {
    let start = Instant::now();
    let hits = query.search(index, k, &mut |q, k| searcher.search(q, k))?;
    Ok((hits, start.elapsed().as_secs_f64() * 1e6))
}

/// Answers `records` over `index` with each hybrid spec and each processor of `algorithms`
/// (one system each, named `hybrid 0.3 bmp`, `hybrid rrf 0.3 bmp`, ...), and scores each run.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_hybrid(
    index: &Index,
    records: &[HybridRecord],
    specs: &[HybridSpec],
    algorithms: &[SearchSpec],
    k: usize,
    qrels: &Qrels,
    measures: &[Measure],
    options: &EvalOptions,
) -> Result<Vec<SystemResult>> {
    let mut analyzer = LexicalAnalyzer::default();
    let mut systems = Vec::with_capacity(specs.len() * algorithms.len());
    for spec in specs {
        let queries = records
            .iter()
            .map(|r| {
                HybridQuery::new(index, spec, &r.learned, &r.text, &mut analyzer)
                    .map_err(|e| Error::from(e).context(format!("query {:?}", r.id)))
            })
            .collect::<Result<Vec<_>>>()?;
        for algorithm in algorithms {
            let mut searcher = algorithm.searcher(index);
            let mut run = Run::new();
            let mut micros = Vec::with_capacity(records.len());
            for (record, query) in records.iter().zip(&queries) {
                let (fused, took) = timed_hybrid_search(index, searcher.as_mut(), query, k)
                    .map_err(|e| e.context(format!("query {:?}", record.id)))?;
                micros.push(took);
                let mut ranked = Vec::with_capacity(fused.hits.len());
                for hit in &fused.hits {
                    ranked.push((index.doc_id(hit.doc)?.to_owned(), hit.score));
                }
                run.insert(record.id.clone(), ranked);
            }
            systems.push(SystemResult::new(
                format!("{spec} {algorithm}"),
                run,
                Some(Latency::of(micros)),
                qrels,
                measures,
                options,
            )?);
        }
    }
    Ok(systems)
}
