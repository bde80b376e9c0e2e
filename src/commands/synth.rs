//! `bmp-index synth`: write a deterministic synthetic collection and queries as JSONL.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use bmp_index::atomic::AtomicFile;
use bmp_index::readers::queries::read_queries;
use bmp_index::readers::SparseRecord;
use bmp_index::synth::{build_vocabulary, write_jsonl_line, SynthGenerator, SynthOptions};
use clap::Args;

use super::progress::count_bar;

/// Write a deterministic synthetic collection and queries as JSONL.
///
/// Documents have the shape of SPLADE vectors: a 30,522-term vocabulary (or the tokens of
/// --vocab-file, e.g. BERT's vocab.txt), Zipf-like term popularity, documents drawn from topic
/// mixtures and written in random topic order, log-normal lengths (about 100 to 200 terms, heavy
/// tail) and long-tailed weights. Queries have 20 to 40 terms, or are real query vectors from
/// --query-source (e.g. SPLADE++ MS MARCO queries), which then also seed topics so that the
/// collection holds documents about them (unless --no-plant). The same seed gives the same files.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Number of documents.
    #[arg(long, default_value_t = 100_000)]
    pub docs: u64,
    /// Number of generated queries (ignored with --query-source, whose queries are all written).
    #[arg(long, default_value_t = 1_000)]
    pub queries: u64,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Vocabulary size (without --vocab-file).
    #[arg(long, default_value_t = 30_522)]
    pub vocab: u32,
    /// Number of generated topics.
    #[arg(long, default_value_t = 1_000)]
    pub topics: u32,
    /// A vocabulary file, one token per line (BERT's vocab.txt); special tokens are skipped.
    #[arg(long)]
    pub vocab_file: Option<PathBuf>,
    /// Real query vectors (JSONL or Anserini TSV, optionally gzip) to use as the queries.
    #[arg(long)]
    pub query_source: Option<PathBuf>,
    /// With --query-source: do not plant the queries as topics. The documents are then drawn
    /// independently of the queries (which share only the vocabulary: give --vocab-file), a
    /// collection that does not flatter pruning.
    #[arg(long, requires = "query_source")]
    pub no_plant: bool,
    /// JSONL file for the documents.
    #[arg(long)]
    pub output_docs: PathBuf,
    /// JSONL file for the queries.
    #[arg(long)]
    pub output_queries: PathBuf,
}

/// Writes the documents and queries of `options` (real queries are written as they are).
pub fn write_synth(
    options: &SynthOptions,
    vocab_file: Option<&Path>,
    real_queries: &[SparseRecord],
    docs: &Path,
    queries: &Path,
) -> anyhow::Result<()> {
    let vocab_text = match vocab_file {
        Some(p) => Some(
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?,
        ),
        None => None,
    };
    let vocabulary = build_vocabulary(options.vocab, vocab_text.as_deref(), real_queries);
    let mut gen = SynthGenerator::new(options, vocabulary, real_queries);
    let bar = count_bar(options.docs, "generating");
    let mut file = AtomicFile::create(docs)?;
    for i in 0..options.docs {
        let v = gen.document();
        write_jsonl_line(&mut file, &format!("d{i}"), &v, |t| gen.term(t))
            .with_context(|| format!("cannot write {}", docs.display()))?;
        if i % 10_000 == 0 {
            bar.set_position(i);
        }
    }
    file.flush()
        .with_context(|| format!("cannot write {}", docs.display()))?;
    file.commit()?;
    bar.finish_and_clear();
    let mut file = AtomicFile::create(queries)?;
    if real_queries.is_empty() {
        for i in 0..options.queries {
            let v = gen.query();
            write_jsonl_line(&mut file, &format!("q{i}"), &v, |t| gen.term(t))
                .with_context(|| format!("cannot write {}", queries.display()))?;
        }
    } else {
        for q in real_queries {
            let names: Vec<&str> = q.entries.iter().map(|e| e.0.as_str()).collect();
            let v: Vec<(u32, f32)> = q
                .entries
                .iter()
                .enumerate()
                .map(|(i, e)| (i as u32, e.1))
                .collect();
            write_jsonl_line(&mut file, &q.id, &v, |i| names[i as usize])
                .with_context(|| format!("cannot write {}", queries.display()))?;
        }
    }
    file.flush()
        .with_context(|| format!("cannot write {}", queries.display()))?;
    file.commit()?;
    Ok(())
}

/// Runs `synth`.
pub fn run(args: &SynthArgs) -> anyhow::Result<()> {
    let options = SynthOptions {
        docs: args.docs,
        queries: args.queries,
        seed: args.seed,
        vocab: args.vocab,
        topics: args.topics,
        plant_queries: !args.no_plant,
        ..SynthOptions::default()
    };
    let real = match &args.query_source {
        Some(p) => read_queries(p)?,
        None => Vec::new(),
    };
    write_synth(
        &options,
        args.vocab_file.as_deref(),
        &real,
        &args.output_docs,
        &args.output_queries,
    )?;
    eprintln!(
        "wrote {} documents to {} and {} queries to {}",
        args.docs,
        args.output_docs.display(),
        if real.is_empty() {
            args.queries
        } else {
            real.len() as u64
        },
        args.output_queries.display()
    );
    Ok(())
}
