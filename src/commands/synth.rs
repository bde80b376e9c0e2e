//! `bmp-index synth`: write a deterministic synthetic collection and queries as JSONL.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use bmp_index::atomic::AtomicFile;
use bmp_index::synth::{write_jsonl_line, SynthGenerator, SynthOptions};
use clap::Args;

use super::progress::count_bar;

/// Write a deterministic synthetic collection and queries as JSONL.
///
/// Documents have a SPLADE-like shape (Zipf term popularity, topical documents, log-normal lengths
/// and weights); queries have 20 to 40 terms. The same seed gives the same files.
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Number of documents.
    #[arg(long, default_value_t = 100_000)]
    pub docs: u64,
    /// Number of queries.
    #[arg(long, default_value_t = 1_000)]
    pub queries: u64,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Vocabulary size.
    #[arg(long, default_value_t = 30_522)]
    pub vocab: u32,
    /// JSONL file for the documents.
    #[arg(long)]
    pub output_docs: PathBuf,
    /// JSONL file for the queries.
    #[arg(long)]
    pub output_queries: PathBuf,
}

/// Writes the documents and queries of `options`.
pub fn write_synth(options: &SynthOptions, docs: &Path, queries: &Path) -> anyhow::Result<()> {
    let mut gen = SynthGenerator::new(options);
    let bar = count_bar(options.docs, "generating");
    let mut file = AtomicFile::create(docs)?;
    for i in 0..options.docs {
        let v = gen.document();
        write_jsonl_line(&mut file, &format!("d{i}"), &v)
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
    for i in 0..options.queries {
        let v = gen.query();
        write_jsonl_line(&mut file, &format!("q{i}"), &v)
            .with_context(|| format!("cannot write {}", queries.display()))?;
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
        ..SynthOptions::default()
    };
    write_synth(&options, &args.output_docs, &args.output_queries)?;
    eprintln!(
        "wrote {} documents to {} and {} queries to {}",
        args.docs,
        args.output_docs.display(),
        args.queries,
        args.output_queries.display()
    );
    Ok(())
}
