//! `bmp-index build`: read sparse vectors, write an index.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use bmp_index::build::{build_index_ordered, BuildOptions, BuildSummary};
use bmp_index::format::{DEFAULT_BLOCK_SIZE, DEFAULT_SUPERBLOCK_SIZE};
use bmp_index::readers::{self, DocumentFormat};
use bmp_index::reorder::{bp_order_collection, BpOptions};
use bmp_index::Collection;
use clap::{Args, ValueEnum};

use super::encoding::{load_encoder, EncoderArgs};
use super::lexical::Bm25Args;
use super::progress::{bytes_bar, count_bar, stage_reporter};

/// Input formats of `build`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InputFormat {
    /// From the file name: `.ciff` or `.ciff.gz` is CIFF, anything else JSONL.
    Auto,
    /// One JSON object per line: {"id": ..., "vector": {"term": weight, ...}}.
    Jsonl,
    /// CIFF v1 protobuf (plain or gzip).
    Ciff,
}

/// Build an index from sparse document vectors, or from text with a SPLADE model or BM25.
///
/// Reads JSONL ({"id": <string or int>, "vector": {"term": weight}}, optional "content") or CIFF v1,
/// plain or gzip; quantizes weights to u8 impacts with one global scale; writes one memory-mapped
/// index file atomically (an existing index is replaced only when the new one is complete). With
/// --model, the input is a BEIR corpus ({"_id", "title", "text"}) encoded on the fly. With
/// --lexical-only, the input is a BEIR corpus whose BM25 term weights make the index (title and
/// text analyzed as `eval --bm25` analyzes them: English stemming; terms `bm25:word`): `search`
/// and `eval` then take text queries, and a query's score is the document's BM25.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Input file: document vectors (JSONL or CIFF), or a BEIR corpus with --model; optionally
    /// gzip.
    #[arg(long)]
    pub input: PathBuf,
    /// Encode the input as text with this SPLADE model directory (Hugging Face layout).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Encoder options (with --model).
    #[command(flatten)]
    pub encoder: EncoderArgs,
    /// Index the BM25 weights of a BEIR corpus's text, with no model.
    #[arg(long, conflicts_with_all = ["model", "memory_budget", "lexical"])]
    pub lexical_only: bool,
    /// Index the BM25 weights of the text too, as a second (lexical) field, for hybrid queries
    /// (`search --hybrid`, `eval --hybrid`): of the input corpus with --model, or of --corpus
    /// when the input is its documents' vectors, encoded earlier.
    #[arg(long, conflicts_with = "memory_budget")]
    pub lexical: bool,
    /// With --lexical and an input of document vectors: the BEIR corpus they encode (every
    /// document in both, matched by id; the index keeps the corpus's order).
    #[arg(long, requires = "lexical", conflicts_with = "model")]
    pub corpus: Option<PathBuf>,
    /// BM25's parameters (with --lexical-only or --lexical).
    #[command(flatten)]
    pub bm25: Bm25Args,
    /// Input format.
    #[arg(long, value_enum, default_value_t = InputFormat::Auto)]
    pub format: InputFormat,
    /// Index file to write.
    #[arg(long)]
    pub output: PathBuf,
    /// Documents per block for the block-max table and forward index (8..=256).
    #[arg(long, default_value_t = DEFAULT_BLOCK_SIZE)]
    pub block_size: u32,
    /// Blocks per superblock, for superblock pruning (`--algorithm sp`): a power of two up to
    /// 1024.
    #[arg(long, default_value_t = DEFAULT_SUPERBLOCK_SIZE)]
    pub superblock_size: u32,
    /// Document reordering.
    #[command(flatten)]
    pub reorder: ReorderArgs,
    /// Keep the heap within this many bytes (e.g. `2G`; at least 128M; JSONL input only): writes
    /// a collection directory at --output instead of one index file, its documents added as
    /// segments that fit the budget (each BP-reordered), as `add --collection OUTPUT
    /// --memory-budget` does. `search`, `eval`, `serve`, `info` and `check` take the directory;
    /// `compact` merges it into one segment.
    #[arg(long, value_parser = super::collection::parse_size)]
    pub memory_budget: Option<u64>,
}

/// Document orders of `build`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum Reorder {
    /// Input order.
    #[default]
    None,
    /// Recursive graph bisection: documents sharing terms get nearby ids (tighter block maxima).
    Bp,
}

/// Reordering options of `build`.
#[derive(Debug, Clone, Copy, Args)]
pub struct ReorderArgs {
    /// Document order of the index.
    #[arg(long, value_enum, default_value_t = Reorder::None)]
    pub reorder: Reorder,
    /// Maximum swap rounds per partition of `--reorder bp`.
    #[arg(long, default_value_t = BpOptions::default().iterations)]
    pub bp_iterations: u32,
}

impl Default for ReorderArgs {
    fn default() -> Self {
        ReorderArgs {
            reorder: Reorder::None,
            bp_iterations: BpOptions::default().iterations,
        }
    }
}

impl ReorderArgs {
    /// The options of the graph-bisection reordering asked for, or `None` for none.
    pub fn bp_options(&self) -> Option<BpOptions> {
        match self.reorder {
            Reorder::None => None,
            Reorder::Bp => Some(BpOptions {
                iterations: self.bp_iterations,
                ..BpOptions::default()
            }),
        }
    }
}

/// The document order `args` asks for (`order[new] = old`), with a progress bar.
pub fn document_order(collection: &Collection, args: &ReorderArgs) -> Vec<u32> {
    match args.bp_options() {
        None => (0..collection.num_docs() as u32).collect(),
        Some(options) => {
            let bar = count_bar(collection.num_docs() as u64, "reordering");
            let order = bp_order_collection(collection, &options, &|done, _| {
                bar.set_position(done.max(bar.position()))
            });
            bar.finish_and_clear();
            order
        }
    }
}

/// The format a file name suggests: `.ciff` or `.ciff.gz` is CIFF, anything else JSONL.
pub fn detect_format(path: &Path) -> InputFormat {
    match DocumentFormat::detect(path) {
        DocumentFormat::Ciff => InputFormat::Ciff,
        DocumentFormat::Jsonl => InputFormat::Jsonl,
    }
}

/// Reads a collection from a JSONL or CIFF file with a progress bar on the bytes read.
pub fn read_collection(input: &Path, format: InputFormat) -> anyhow::Result<Collection> {
    let file = File::open(input).with_context(|| format!("cannot open {}", input.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = bytes_bar(len, "reading");
    let format = match format {
        InputFormat::Auto => DocumentFormat::detect(input),
        InputFormat::Ciff => DocumentFormat::Ciff,
        InputFormat::Jsonl => DocumentFormat::Jsonl,
    };
    let collection = readers::read_collection(Box::new(bar.wrap_read(file)), input, format)?;
    bar.finish_and_clear();
    Ok(collection)
}

pub fn write_index(
    collection: &Collection,
    order: &[u32],
    output: &Path,
    options: &BuildOptions,
) -> anyhow::Result<BuildSummary> {
    let bar = count_bar(collection.num_docs() as u64, "building");
    let summary = build_index_ordered(
        collection,
        order,
        output,
        options,
        &mut stage_reporter(&bar),
    )?;
    bar.finish_and_clear();
    Ok(summary)
}

/// Reads the documents of `input`: sparse vectors in `format`, or with `model` a BEIR corpus
/// encoded with that SPLADE model.
pub fn read_documents(
    input: &Path,
    format: InputFormat,
    model: Option<&Path>,
    encoder: &EncoderArgs,
) -> anyhow::Result<Collection> {
    let Some(model) = model else {
        return read_collection(input, format);
    };
    if format != InputFormat::Auto && format != InputFormat::Jsonl {
        anyhow::bail!("--model reads a BEIR corpus (JSONL); --format {format:?} does not apply");
    }
    let encoder = load_encoder(model, encoder)?;
    let mut collection = Collection::new();
    let encoded = bmp_eval::encode::encode_corpus_into(
        &encoder,
        input,
        &super::progress::StageBars::default(),
        &mut collection,
    )?;
    eprintln!(
        "encoded {} documents with {}: {:.1} docs/s",
        encoded.docs,
        model.display(),
        encoded.docs_per_second()
    );
    Ok(collection)
}

/// `build --memory-budget`: a new collection directory at `--output`, added within the budget.
fn build_collection(args: &BuildArgs, budget: u64) -> anyhow::Result<()> {
    let fresh = match std::fs::read_dir(&args.output) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    };
    if !fresh {
        anyhow::bail!(
            "--memory-budget writes a new collection directory at --output; {} exists and is not \
             an empty directory (use `add --collection` to add to a collection)",
            args.output.display()
        );
    }
    super::collection::run_add(&super::collection::AddArgs {
        collection: args.output.clone(),
        input: args.input.clone(),
        format: args.format,
        model: args.model.clone(),
        encoder: args.encoder.clone(),
        block_size: args.block_size,
        superblock_size: args.superblock_size,
        max_segments: bmp_index::segments::MergePolicy::default().max_segments,
        memory_budget: Some(budget),
        merge_factor: bmp_index::segments::MergePolicy::default().merge_factor as u64,
    })
}

/// Runs `build`.
pub fn run(args: &BuildArgs) -> anyhow::Result<()> {
    bmp_index::format::validate_block_size(args.block_size)?;
    bmp_index::format::validate_superblock_size(args.superblock_size)?;
    if let Some(budget) = args.memory_budget {
        return build_collection(args, budget);
    }
    if args.bm25.given() && !args.lexical_only && !args.lexical {
        anyhow::bail!("--bm25-k1 and --bm25-b go with --lexical-only or --lexical");
    }
    let start = Instant::now();
    let (collection, lexical) = if args.lexical_only {
        if args.format == InputFormat::Ciff {
            anyhow::bail!("--lexical-only reads a BEIR corpus (JSONL), not CIFF");
        }
        let (collection, field) = bmp_eval::lexical_collection(
            &args.input,
            args.bm25.params()?,
            &super::progress::StageBars::default(),
        )?;
        (collection, Some(field))
    } else if let (true, Some(model)) = (args.lexical, &args.model) {
        let encoder = load_encoder(model, &args.encoder)?;
        let (collection, field) = bmp_eval::lexical::hybrid_collection(
            &encoder,
            &args.input,
            args.bm25.params()?,
            &super::progress::StageBars::default(),
        )?;
        (collection, Some(field))
    } else if args.lexical {
        let corpus = args.corpus.as_deref().context(
            "--lexical needs the text: --model (the input is a corpus) or --corpus (the input is \
             its vectors)",
        )?;
        let learned = read_collection(&args.input, args.format)?;
        let (collection, field) = bmp_eval::lexical::hybrid_from_vectors(
            &learned,
            corpus,
            args.bm25.params()?,
            &super::progress::StageBars::default(),
        )?;
        (collection, Some(field))
    } else {
        let collection = read_documents(
            &args.input,
            args.format,
            args.model.as_deref(),
            &args.encoder,
        )?;
        (collection, None)
    };
    let read_seconds = start.elapsed().as_secs_f64();
    let order = document_order(&collection, &args.reorder);
    let reorder_seconds = start.elapsed().as_secs_f64() - read_seconds;
    let options = BuildOptions {
        block_size: args.block_size,
        superblock_size: args.superblock_size,
        lexical,
        ..BuildOptions::default()
    };
    let summary = write_index(&collection, &order, &args.output, &options)?;
    let seconds = start.elapsed().as_secs_f64();
    eprintln!(
        "built {}: {} docs, {} terms, {} postings, {} bytes ({:.2} bytes/posting) in {:.2} s \
         (read {:.2} s, reorder {:.2} s, write {:.2} s), {:.0} docs/s",
        args.output.display(),
        summary.num_docs,
        summary.num_terms,
        summary.num_postings,
        summary.bytes,
        summary.bytes as f64 / summary.num_postings.max(1) as f64,
        seconds,
        read_seconds,
        reorder_seconds,
        summary.seconds,
        summary.num_docs as f64 / seconds.max(1e-9),
    );
    Ok(())
}
