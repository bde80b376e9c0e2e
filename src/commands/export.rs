//! `bmp-index export-ciff`: write an index as CIFF v1.

use std::path::PathBuf;

use bmp_index::export::export_ciff;
use bmp_index::Index;
use clap::Args;

use super::progress::count_bar;

/// Export an index as CIFF v1 (gzip when the output ends in .gz).
///
/// For PISA, Anserini and the reference BMP. Term frequencies are the u8 impacts; doc lengths are
/// the numbers of terms per document. Internal doc ids (positions) become CIFF doc ids.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Index file.
    #[arg(long)]
    pub index: PathBuf,
    /// CIFF file to write.
    #[arg(long)]
    pub output: PathBuf,
}

/// Runs `export-ciff`.
pub fn run(args: &ExportArgs) -> anyhow::Result<()> {
    let index = Index::open(&args.index)?;
    let bar = count_bar(u64::from(index.num_terms()), "exporting");
    export_ciff(&index, &args.output, &mut |done, _| bar.set_position(done))?;
    bar.finish_and_clear();
    eprintln!(
        "exported {} terms and {} documents to {}",
        index.num_terms(),
        index.num_docs(),
        args.output.display()
    );
    Ok(())
}
