//! `bmp-index add`, `delete` and `compact`: writes to a collection directory of segments.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use bmp_index::build::BuildOptions;
use bmp_index::format::{DEFAULT_BLOCK_SIZE, DEFAULT_SUPERBLOCK_SIZE};
use bmp_index::segments::{CollectionDir, MergePolicy};
use clap::Args;

use super::build::{read_documents, InputFormat};
use super::encoding::EncoderArgs;
use super::progress::{count_bar, stage_reporter};

/// Add documents to a collection directory (created when missing or empty) as a new segment.
///
/// A collection is a directory of immutable segments (each an index in the single-file format)
/// named by a checksummed MANIFEST that is replaced atomically; `search`, `eval` and `info` take the
/// directory wherever they take an index. The documents are read like `build` reads them (JSONL or
/// CIFF vectors, or a BEIR corpus with --model), BP-reordered and quantized with the collection's
/// scale, which its first documents fix (later weights above 255 times it get the largest impact).
/// A document whose id is already live replaces it (upsert). Then, while there are more than
/// --max-segments segments, the --merge-factor smallest are merged into one (BP-reordered,
/// deleted documents dropped). The change is durable when the command returns; one writer at a
/// time (the directory's LOCK).
#[derive(Debug, Args)]
pub struct AddArgs {
    /// Collection directory.
    #[arg(long)]
    pub collection: PathBuf,
    /// Input file: document vectors (JSONL or CIFF), or a BEIR corpus with --model; optionally
    /// gzip.
    #[arg(long)]
    pub input: PathBuf,
    /// Input format.
    #[arg(long, value_enum, default_value_t = InputFormat::Auto)]
    pub format: InputFormat,
    /// Encode the input as text with this SPLADE model directory (Hugging Face layout).
    #[arg(long)]
    pub model: Option<PathBuf>,
    /// Encoder options (with --model).
    #[command(flatten)]
    pub encoder: EncoderArgs,
    /// Documents per block of a new collection's segments (8..=256).
    #[arg(long, default_value_t = DEFAULT_BLOCK_SIZE)]
    pub block_size: u32,
    /// Blocks per superblock of a new collection's segments (a power of two up to 1024).
    #[arg(long, default_value_t = DEFAULT_SUPERBLOCK_SIZE)]
    pub superblock_size: u32,
    /// After adding, merge the smallest segments while there are more than this many (0: never).
    #[arg(long, default_value_t = MergePolicy::default().max_segments)]
    pub max_segments: usize,
    /// How many of the smallest segments one merge takes.
    #[arg(long, default_value_t = MergePolicy::default().merge_factor as u64,
          value_parser = clap::value_parser!(u64).range(2..1024))]
    pub merge_factor: u64,
}

/// Delete documents from a collection directory by external id.
///
/// The ids are read one per line (surrounding whitespace and empty lines ignored). Ids that match
/// no live document are counted and reported, not an error. The change is durable when the command
/// returns; the space is reclaimed by `compact`.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Collection directory.
    #[arg(long)]
    pub collection: PathBuf,
    /// File of document ids, one per line (`-` for standard input).
    #[arg(long)]
    pub ids: PathBuf,
}

/// Merge every live document of a collection directory into one segment.
///
/// The merged documents are BP-reordered and the deleted ones dropped; searches that started
/// before keep the segments they opened. Nothing is done when there is already one segment
/// without deletions.
#[derive(Debug, Args)]
pub struct CompactArgs {
    /// Collection directory.
    #[arg(long)]
    pub collection: PathBuf,
}

/// Runs `add`.
pub fn run_add(args: &AddArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let options = BuildOptions {
        block_size: args.block_size,
        superblock_size: args.superblock_size,
        quantizer: None,
    };
    // Lock first: a busy collection fails before the input is read.
    let mut dir = CollectionDir::open_or_create(&args.collection, &options)?;
    let docs = read_documents(
        &args.input,
        args.format,
        args.model.as_deref(),
        &args.encoder,
    )?;
    let bar = count_bar(docs.num_docs() as u64, "adding");
    let summary = dir.add(&docs, &mut stage_reporter(&bar))?;
    bar.finish_and_clear();
    let policy = MergePolicy {
        max_segments: args.max_segments,
        merge_factor: args.merge_factor as usize,
    };
    let bar = count_bar(dir.manifest().live_docs(), "merging");
    let merges = dir.merge_by_policy(&policy, &mut stage_reporter(&bar))?;
    bar.finish_and_clear();
    if !merges.is_empty() {
        eprintln!(
            "merged segments {} times ({} segments in all)",
            merges.len(),
            merges.iter().sum::<usize>()
        );
    }
    let m = dir.manifest();
    eprintln!(
        "added {} documents ({} replaced) to {} as {} in {:.2} s: {} segments, {} live documents, generation {}",
        summary.added,
        summary.replaced,
        args.collection.display(),
        summary.segment,
        start.elapsed().as_secs_f64(),
        m.segments.len(),
        m.live_docs(),
        m.generation
    );
    Ok(())
}

/// Runs `delete`.
pub fn run_delete(args: &DeleteArgs) -> anyhow::Result<()> {
    let reader: Box<dyn BufRead> = if args.ids.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(&args.ids)
            .with_context(|| format!("cannot open {}", args.ids.display()))?;
        Box::new(std::io::BufReader::new(file))
    };
    let mut ids = Vec::new();
    for (n, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("{}:{}", args.ids.display(), n + 1))?;
        let id = line.trim();
        if !id.is_empty() {
            ids.push(id.to_owned());
        }
    }
    let mut dir = CollectionDir::open(&args.collection)?;
    let summary = dir.delete(ids.iter().map(String::as_str))?;
    let m = dir.manifest();
    eprintln!(
        "deleted {} documents from {} ({} ids matched no live document): {} live documents, generation {}",
        summary.deleted,
        args.collection.display(),
        summary.missing,
        m.live_docs(),
        m.generation
    );
    Ok(())
}

/// Runs `compact`.
pub fn run_compact(args: &CompactArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut dir = CollectionDir::open(&args.collection)?;
    let bar = count_bar(dir.manifest().live_docs(), "compacting");
    let summary = dir.compact(&mut stage_reporter(&bar))?;
    bar.finish_and_clear();
    eprintln!(
        "compacted {}: {} segments into {}, {} deleted documents dropped, {} live documents, generation {}, {:.2} s",
        args.collection.display(),
        summary.segments_before,
        dir.manifest().segments.len(),
        summary.dropped,
        summary.docs,
        summary.generation,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
