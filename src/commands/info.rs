//! `bmp-index info`: header, section sizes and statistics of an index.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use bmp_index::format::reader::BlockMaxRow;
use bmp_index::segments::{Manifest, Snapshot};
use bmp_index::Index;
use clap::Args;

/// Print an index's header, bytes per section, block size, and posting and term statistics.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Index file, or a collection directory (`add`): its manifest and segments.
    #[arg(long)]
    pub index: PathBuf,
    /// Also verify the checksum of every section (reads the whole file).
    #[arg(long)]
    pub verify: bool,
}

/// Runs `info`.
pub fn run(args: &InfoArgs) -> anyhow::Result<()> {
    if args.index.is_dir() {
        return run_collection(args);
    }
    let index = Index::open(&args.index)?;
    let h = index.header();
    // Report write errors: `println!` panics when standard output is a closed pipe (`info | head`).
    let mut out = std::io::stdout().lock();
    macro_rules! say {
        ($($arg:tt)*) => {
            writeln!(out, $($arg)*).context("cannot write to standard output")?
        };
    }
    say!("index:            {}", args.index.display());
    say!("format version:   {}", h.version);
    say!("documents:        {}", h.num_docs);
    say!("terms:            {}", h.num_terms);
    say!("postings:         {}", h.num_postings);
    say!("block size:       {}", h.block_size);
    say!("blocks:           {}", h.num_blocks);
    say!(
        "superblocks:      {} of {} blocks",
        index.num_superblocks(),
        h.superblock_size
    );
    say!(
        "quant scale:      {} (weight per impact unit)",
        h.quant_scale
    );
    if let Some(l) = h.lexical() {
        say!(
            "lexical field:    BM25 k1={} b={} (terms {}word, weights x {})",
            l.k1,
            l.b,
            bmp_index::LEXICAL_PREFIX,
            l.scale
        );
    }
    say!("file bytes:       {}", index.file_len());
    say!(
        "bytes/posting:    {:.3}",
        index.file_len() as f64 / (h.num_postings.max(1)) as f64
    );
    say!("sections:");
    for (kind, len) in index.section_sizes() {
        say!(
            "  {:<22} {:>14} bytes  {:>6.2}%",
            kind.name(),
            len,
            100.0 * len as f64 / index.file_len().max(1) as f64
        );
    }
    let mut dfs = Vec::with_capacity(index.num_terms() as usize);
    let mut max_impact = 0u8;
    let (mut dense_rows, mut range_rows) = (0u32, 0u32);
    for t in 0..index.num_terms() {
        let s = index.term_stats(t)?;
        dfs.push(s.df);
        max_impact = max_impact.max(s.max_impact);
        match index.block_max(t)? {
            BlockMaxRow::Dense(_) => dense_rows += 1,
            BlockMaxRow::Ranges { .. } => range_rows += 1,
            BlockMaxRow::Sparse { .. } => {}
        }
    }
    dfs.sort_unstable();
    let n = dfs.len().max(1);
    say!("terms:");
    say!(
        "  df: mean {:.1}, median {}, max {}; {} terms with df = 1",
        h.num_postings as f64 / n as f64,
        dfs.get(dfs.len() / 2).copied().unwrap_or(0),
        dfs.last().copied().unwrap_or(0),
        dfs.iter().take_while(|&&d| d == 1).count()
    );
    say!(
        "  block-max rows: {} dense, {} range-compressed, {} sparse",
        dense_rows,
        range_rows,
        index.num_terms() - dense_rows - range_rows
    );
    say!("documents:");
    say!(
        "  mean terms per document: {:.1}; max impact {}",
        h.num_postings as f64 / h.num_docs.max(1) as f64,
        max_impact
    );
    if args.verify {
        index.verify_checksums()?;
        say!(
            "checksums:        all {} sections verified",
            index.section_sizes().len()
        );
    }
    Ok(())
}

/// `info` of a collection directory: its manifest and a line per segment.
fn run_collection(args: &InfoArgs) -> anyhow::Result<()> {
    let manifest = Manifest::read(&args.index)?;
    let snapshot = Snapshot::open(&args.index)?;
    let mut out = std::io::stdout().lock();
    macro_rules! say {
        ($($arg:tt)*) => {
            writeln!(out, $($arg)*).context("cannot write to standard output")?
        };
    }
    say!("collection:       {}", args.index.display());
    say!("generation:       {}", snapshot.generation);
    say!("segments:         {}", snapshot.segments.len());
    say!(
        "documents:        {} live, {} deleted",
        snapshot.live_docs(),
        snapshot.num_docs() - snapshot.live_docs()
    );
    match manifest.scale {
        Some(scale) => say!("quant scale:      {scale} (weight per impact unit)"),
        None => say!("quant scale:      not fixed yet (no document added)"),
    }
    say!(
        "new segments:     block size {}, superblock size {}",
        manifest.block_size,
        manifest.superblock_size
    );
    for s in &snapshot.segments {
        say!(
            "  {:<20} {:>10} documents {:>10} deleted {:>14} bytes",
            s.file,
            s.index.num_docs(),
            s.deleted.len(),
            s.index.file_len()
        );
    }
    if args.verify {
        for s in &snapshot.segments {
            s.index.verify_checksums()?;
        }
        say!("checksums:        every section of every segment verified");
    }
    Ok(())
}
