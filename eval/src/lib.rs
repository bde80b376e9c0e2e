//! Evaluation the way papers report it.
//!
//! - Readers for the BEIR layout ([`BeirDataset`], [`CorpusReader`], [`QueryReader`]), qrels in
//!   BEIR TSV or TREC form ([`Qrels`]) and TREC runs ([`Run`], which also writes them); gzip is
//!   read and written when a file name ends in `.gz`.
//! - Measures computed exactly as trec_eval computes them ([`metrics`]), and the evaluation of a
//!   run with pytrec_eval's choice of queries ([`evaluate()`]). The crate's tests compare every
//!   per-query value with pytrec_eval on real qrels.
//! - A BM25 baseline on tantivy ([`Bm25Index`]) with settable k1 and b ([`Bm25Params`]).
//! - The pipeline that evaluates a BEIR dataset from its text ([`pipeline`]): encode the corpus
//!   ([`encode`]), index it, answer the judged queries with each query processor, add BM25, dense
//!   and multi-vector ([`multivec`]) systems, and score every run, reporting through a
//!   [`Progress`].
//! - Hybrid (BM25 + learned-sparse) queries evaluated over an index with both fields
//!   ([`hybrid`], [`lexical`]).
//!
//! ```no_run
//! use bmp_eval::{evaluate, BeirDataset, Bm25Index, Bm25Storage, EvalOptions, Measure};
//! # fn main() -> bmp_eval::Result<()> {
//! let data = BeirDataset::open("data/scifact", "test")?;
//! let qrels = data.qrels()?;
//! let queries = data.judged_queries(&qrels)?;
//! let bm25 = Bm25Index::build(&Bm25Storage::Ram, data.corpus()?)?;
//! let run = bm25.search_run(&queries, 1000)?;
//! let eval = evaluate(&qrels, &run, &Measure::standard(), &EvalOptions::default())?;
//! println!("{eval}");
//! # Ok(())
//! # }
//! ```

pub mod bm25;
pub mod dataset;
pub mod encode;
pub mod error;
pub mod evaluate;
pub mod hybrid;
mod input_key;
mod io;
pub mod jsonl;
pub mod latency;
pub mod lexical;
pub mod metrics;
pub mod multivec;
pub mod pipeline;
pub mod progress;
pub mod qrels;
pub mod run;

pub use bm25::{Bm25Index, Bm25Params, Bm25Storage};
pub use dataset::BeirDataset;
pub use error::{Error, Result};
pub use evaluate::{evaluate, evaluate_query, EvalOptions, Evaluation, Measure, MissingQueries};
pub use io::open_text;
pub use jsonl::{CorpusReader, Document, Query, QueryReader};
pub use latency::Latency;
pub use lexical::lexical_collection;
pub use metrics::ScorePrecision;
pub use pipeline::{evaluate_dataset, DatasetEval, DatasetReport, SystemResult};
pub use progress::{Progress, Silent};
pub use qrels::{Judgments, Qrels, QrelsFormat, Relevance};
pub use run::{Run, ScoredDoc};
