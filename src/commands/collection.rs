//! `bmp-index add`, `delete` and `compact`: writes to a collection directory of segments.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use bmp_index::build::BuildOptions;
use bmp_index::format::{DEFAULT_BLOCK_SIZE, DEFAULT_SUPERBLOCK_SIZE};
use bmp_index::readers::jsonl::read_jsonl_chunks;
use bmp_index::readers::open_maybe_gzip;
use bmp_index::segments::{CollectionDir, MergePolicy};
use bmp_index::Collection;
use clap::Args;

use super::build::{detect_format, read_documents, InputFormat};
use super::encoding::EncoderArgs;
use super::progress::{count_bar, stage_reporter};

/// Add documents to a collection directory (created when missing or empty) as a new segment.
///
/// A collection is a directory of immutable segments (each an index in the single-file format)
/// named by a checksummed MANIFEST that is replaced atomically; `search`, `eval`, `info`, `check` and
/// `serve` take the directory as their --index. The documents are read like `build` reads them (JSONL or
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
    /// Keep the heap within this many bytes (e.g. `2G`, `512M`; at least 128M; JSONL input only):
    /// the input is added as several segments of at most (budget - 96M) / 48 postings each, each
    /// durable once written, and merges that would gather more postings are not made. Measured
    /// peak resident memory adding 30M postings: 198M at a budget of 200M, 258M at 400M, 451M at
    /// 1G. Without it, the whole input becomes one segment (about 21 bytes per posting).
    #[arg(long, value_parser = parse_size)]
    pub memory_budget: Option<u64>,
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

/// Heap bytes per posting that an add may take at its peak (the collection in memory, then the
/// build's two orientations of it and the document order): 42 were measured between segments of
/// 1M and 2M postings, 18 between 9M and 22M.
const BYTES_PER_POSTING: u64 = 48;

/// Heap bytes an add takes besides its segment's postings (the program, the reader, the open
/// segments): about 90M were measured.
const FIXED_BYTES: u64 = 96 << 20;

/// The smallest --memory-budget: the fixed part and a segment of 32M.
const MIN_BUDGET: u64 = FIXED_BYTES + (32 << 20);

/// What an `add` did in all.
struct AddTotals {
    added: u64,
    replaced: u64,
    segment: String,
}

/// Parses a byte size: a number with an optional `K`, `M`, `G` or `T` suffix (powers of 1024).
pub(super) fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (digits, unit) = match t
        .char_indices()
        .find(|(_, c)| !c.is_ascii_digit() && *c != '.')
    {
        Some((i, _)) => (&t[..i], t[i..].trim().to_ascii_uppercase()),
        None => (t, String::new()),
    };
    let shift = match unit.trim_end_matches(['B', 'I']) {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("{s:?}: not a size (e.g. 512M, 2G)")),
    };
    let value: f64 = digits
        .parse()
        .map_err(|_| format!("{s:?}: not a size (e.g. 512M, 2G)"))?;
    let bytes = value * (1u64 << shift) as f64;
    if !(bytes >= 1.0 && bytes < u64::MAX as f64) {
        return Err(format!("{s:?}: not a size (e.g. 512M, 2G)"));
    }
    Ok(bytes as u64)
}

/// Runs `add`.
pub fn run_add(args: &AddArgs) -> anyhow::Result<()> {
    let start = Instant::now();
    let options = BuildOptions {
        block_size: args.block_size,
        superblock_size: args.superblock_size,
        ..BuildOptions::default()
    };
    // Lock first: a busy collection fails before the input is read.
    let mut dir = CollectionDir::open_or_create(&args.collection, &options)?;
    let mut policy = MergePolicy {
        max_segments: args.max_segments,
        merge_factor: args.merge_factor as usize,
        ..MergePolicy::default()
    };
    let (mut added, mut replaced, mut segments) = (0u64, 0u64, Vec::new());
    let mut add = |dir: &mut CollectionDir, docs: Collection| -> anyhow::Result<()> {
        let bar = count_bar(docs.num_docs() as u64, "adding");
        let summary = dir.add(&docs, &mut stage_reporter(&bar))?;
        bar.finish_and_clear();
        added += summary.added;
        replaced += summary.replaced;
        segments.push(summary.segment);
        Ok(())
    };
    match args.memory_budget {
        None => {
            let docs = read_documents(
                &args.input,
                args.format,
                args.model.as_deref(),
                &args.encoder,
            )?;
            add(&mut dir, docs)?;
        }
        Some(budget) => {
            let jsonl = args.format == InputFormat::Jsonl
                || (args.format == InputFormat::Auto
                    && detect_format(&args.input) == InputFormat::Jsonl);
            if args.model.is_some() || !jsonl {
                anyhow::bail!(
                    "--memory-budget reads JSONL vectors; not CIFF, nor text with --model"
                );
            }
            if budget < MIN_BUDGET {
                anyhow::bail!(
                    "--memory-budget {budget} bytes is below the least an add needs ({}M)",
                    MIN_BUDGET >> 20
                );
            }
            let max_postings = (budget - FIXED_BYTES) / BYTES_PER_POSTING;
            policy.max_merge_postings = max_postings;
            let reader = open_maybe_gzip(&args.input)?;
            read_jsonl_chunks(reader, &args.input, max_postings as usize, &mut |docs| {
                add(&mut dir, docs).map_err(|e| bmp_index::Error::Invalid(format!("{e:#}")))
            })?;
        }
    }
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
    let summary = AddTotals {
        added,
        replaced,
        segment: segments.join(", "),
    };
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

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("1.5k"), Ok(1536));
        assert_eq!(parse_size("300MiB"), Ok(300 << 20));
        assert_eq!(parse_size(" 4 MB "), Ok(4 << 20));
        for bad in ["", "G", "2X", "-1G", "0", "1e3"] {
            assert!(parse_size(bad).is_err(), "{bad:?}");
        }
    }
}
