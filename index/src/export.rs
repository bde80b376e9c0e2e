//! Exports an index as CIFF v1 (gzip when the output name ends in `.gz`), atomically.

use std::io::Write;
use std::path::Path;

use crate::atomic::AtomicFile;
use crate::error::{Error, Result};
use crate::format::reader::Index;
use crate::readers::ciff::CiffWriter;

/// Writes `index` to `output` as CIFF: one postings list per term (tf = impact) and one doc
/// record per document (doc length = number of terms). `progress(done, total)` is called per term.
pub fn export_ciff(index: &Index, output: &Path, progress: &mut dyn FnMut(u64, u64)) -> Result<()> {
    let mut file = AtomicFile::create(output)?;
    let temp = file.temp_path().to_path_buf();
    if output.extension().is_some_and(|e| e == "gz") {
        let encoder = flate2::write::GzEncoder::new(&mut file, flate2::Compression::fast());
        let encoder = write_ciff(index, encoder, &temp, progress)?;
        encoder.finish().map_err(|e| Error::io(&temp, e))?;
    } else {
        let sink = write_ciff(index, &mut file, &temp, progress)?;
        sink.flush().map_err(|e| Error::io(&temp, e))?;
    }
    file.commit()
}

fn write_ciff<W: Write>(
    index: &Index,
    sink: W,
    temp: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<W> {
    let num_docs = index.num_docs();
    let mut lengths = vec![0u32; num_docs as usize];
    let mut writer = CiffWriter::new(
        sink,
        temp,
        u64::from(index.num_terms()),
        u64::from(num_docs),
        index.num_postings(),
        "exported by bmp-index",
    )?;
    let mut docs = Vec::new();
    let mut tfs = Vec::new();
    for t in 0..index.num_terms() {
        let postings = index.postings(t)?;
        docs.clear();
        tfs.clear();
        postings
            .for_each(|d, s| {
                docs.push(d);
                tfs.push(u32::from(s));
            })
            .map_err(|e| Error::corrupt(index.path(), format!("term {t}: {}", e.0)))?;
        for &d in &docs {
            if let Some(l) = lengths.get_mut(d as usize) {
                *l += 1;
            }
        }
        writer.write_postings_list(index.term(t)?, &docs, &tfs)?;
        if t % 1024 == 0 {
            progress(u64::from(t), u64::from(index.num_terms()));
        }
    }
    for (d, &len) in lengths.iter().enumerate() {
        writer.write_doc_record(d as u32, index.doc_id(d as u32)?, len)?;
    }
    writer.finish()
}
