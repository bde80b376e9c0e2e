//! `bmp-index check`: verify an index completely.

use std::path::{Path, PathBuf};
use std::time::Instant;

use bmp_index::check::check;
use bmp_index::segments::Snapshot;
use bmp_index::Index;
use clap::Args;

use super::progress::count_bar;

/// Verify an index: every section checksum and the structural invariants rank safety rests on.
///
/// Checks, after the checksums: the vocabulary is sorted and unique; external document ids are
/// unique; every posting list decodes to increasing doc ids below the document count, with the
/// recorded count, chunk maxima, maximum impact and k-th largest impacts; every block maximum is
/// at least each impact of its term in the block, and every superblock maximum at least each
/// block maximum inside it; the forward index holds exactly the inverted index's postings. Reads
/// the whole file; exits with status 1 and names the first problem found.
///
/// Given a collection directory, checks its manifest (checksum, file names, document and deletion
/// counts against the segments and their deletion bitmaps), then every segment as above.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Index file, or a collection directory (`add`).
    #[arg(long)]
    pub index: PathBuf,
}

/// Runs `check`.
pub fn run(args: &CheckArgs) -> anyhow::Result<()> {
    if args.index.is_dir() {
        let snapshot = Snapshot::open(&args.index)?;
        for segment in &snapshot.segments {
            check_one(&args.index.join(&segment.file), &segment.index)?;
        }
        println!(
            "{}: ok (generation {}, {} segments, {} live documents)",
            args.index.display(),
            snapshot.generation,
            snapshot.segments.len(),
            snapshot.live_docs()
        );
        return Ok(());
    }
    check_one(&args.index, &Index::open(&args.index)?)
}

/// Checks one index file and reports it.
fn check_one(path: &Path, index: &Index) -> anyhow::Result<()> {
    let start = Instant::now();
    let bar = count_bar(u64::from(index.num_terms()), "checking terms");
    let report = check(index, &mut |done| bar.set_position(u64::from(done)))?;
    bar.finish_and_clear();
    println!(
        "{}: ok ({} documents, {} terms, {} postings, {} blocks, {} superblocks checked in {:.1} s)",
        path.display(),
        report.docs,
        report.terms,
        report.postings,
        report.blocks,
        report.superblocks,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
