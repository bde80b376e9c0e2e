//! Builds an index file from a [`Collection`].
//!
//! Terms are renumbered in lexicographic order, weights quantized with one global scale
//! ([`Quantizer::for_weights`]), and the sections of [`crate::format`] written in one pass into an
//! [`crate::atomic::AtomicFile`].

use std::path::Path;
use std::time::Instant;

use crate::collection::Collection;
use crate::error::{Error, Result};
use crate::format::writer::{HeaderFields, SectionWriter};
use crate::format::{
    forward_buckets, num_blocks, num_superblocks, row_pages, validate_block_size,
    validate_superblock_size, BlockMaxEntry, SectionKind, TermStats, DEFAULT_BLOCK_SIZE,
    DEFAULT_SUPERBLOCK_SIZE, FORWARD_BUCKET, FORWARD_WIDE, KTH_IMPACT_KS, RANGE_MAX_GAP,
    RANGE_MIN_MEAN_LEN, ROW_DENSE, ROW_PAGE_BLOCKS, ROW_RANGES, ROW_SPARSE, SB_DENSE, SB_SPARSE,
};
use crate::postings::encode_postings;
use crate::quantize::Quantizer;

/// Parameters of a build.
#[derive(Debug, Clone, Copy)]
pub struct BuildOptions {
    /// Documents per block (8..=256).
    pub block_size: u32,
    /// Blocks per superblock (a power of two, at most 1024).
    pub superblock_size: u32,
    /// The quantizer of the document weights; `None` (the default) chooses it from the
    /// collection ([`Quantizer::for_weights`]). A collection of segments gives every segment its
    /// own.
    pub quantizer: Option<Quantizer>,
    /// The lexical field the collection's `bm25:` terms make up, recorded in the header.
    pub lexical: Option<crate::format::LexicalField>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            block_size: DEFAULT_BLOCK_SIZE,
            superblock_size: DEFAULT_SUPERBLOCK_SIZE,
            quantizer: None,
            lexical: None,
        }
    }
}

impl BuildOptions {
    /// The defaults with `block_size` documents per block.
    pub fn with_block_size(block_size: u32) -> Self {
        BuildOptions {
            block_size,
            ..BuildOptions::default()
        }
    }
}

/// Checks that `order` is a permutation of `0..num_docs`.
fn check_order(order: &[u32], num_docs: usize) -> Result<()> {
    if order.len() != num_docs {
        return Err(Error::Invalid(format!(
            "document order has {} entries for {num_docs} documents",
            order.len()
        )));
    }
    let mut seen = vec![false; num_docs];
    for &d in order {
        match seen.get_mut(d as usize) {
            Some(s) if !*s => *s = true,
            _ => {
                return Err(Error::Invalid(format!(
                    "document order is not a permutation (entry {d})"
                )))
            }
        }
    }
    Ok(())
}

/// What a build produced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BuildSummary {
    /// Number of documents.
    pub num_docs: u64,
    /// Number of terms with at least one posting.
    pub num_terms: u64,
    /// Number of postings.
    pub num_postings: u64,
    /// Size of the index file.
    pub bytes: u64,
    /// Seconds spent writing the index (not reading the input).
    pub seconds: f64,
}

/// Progress callback: `(stage, done, total)`.
pub type Progress<'a> = &'a mut dyn FnMut(&'static str, u64, u64);

/// The collection renumbered and quantized, in both orientations.
struct Postings {
    /// Final term id -> temporary term id.
    terms: Vec<u32>,
    doc_offsets: Vec<u64>,
    doc_terms: Vec<u32>,
    doc_impacts: Vec<u8>,
    term_offsets: Vec<u64>,
    term_docs: Vec<u32>,
    term_impacts: Vec<u8>,
}

/// Renumbers terms (lexicographic) and documents (`order[new] = old`), quantizes, and inverts.
fn invert(
    collection: &Collection,
    order: &[u32],
    quantizer: Quantizer,
    progress: Progress,
) -> Postings {
    let num_tmp = collection.num_terms();
    let mut df = vec![0u64; num_tmp];
    for doc in 0..collection.num_docs() {
        for &t in collection.doc(doc).0 {
            df[t as usize] += 1;
        }
    }
    let mut terms: Vec<u32> = (0..num_tmp as u32)
        .filter(|&t| df[t as usize] > 0)
        .collect();
    terms.sort_unstable_by(|&a, &b| collection.term(a).cmp(collection.term(b)));
    let mut remap = vec![u32::MAX; num_tmp];
    for (new, &old) in terms.iter().enumerate() {
        remap[old as usize] = new as u32;
    }

    let num_docs = collection.num_docs();
    let mut doc_offsets = Vec::with_capacity(num_docs + 1);
    doc_offsets.push(0u64);
    let mut doc_terms = Vec::with_capacity(collection.num_postings());
    let mut doc_impacts = Vec::with_capacity(collection.num_postings());
    let mut scratch: Vec<(u32, u8)> = Vec::new();
    for (doc, &old) in order.iter().enumerate() {
        let (ts, ws) = collection.doc(old as usize);
        scratch.clear();
        scratch.extend(
            ts.iter()
                .zip(ws)
                .map(|(&t, &w)| (remap[t as usize], quantizer.quantize(w))),
        );
        scratch.sort_unstable_by_key(|&(t, _)| t);
        doc_terms.extend(scratch.iter().map(|&(t, _)| t));
        doc_impacts.extend(scratch.iter().map(|&(_, s)| s));
        doc_offsets.push(doc_terms.len() as u64);
        if doc % 65536 == 0 {
            progress("quantizing", doc as u64, num_docs as u64);
        }
    }

    let mut term_offsets = Vec::with_capacity(terms.len() + 1);
    term_offsets.push(0u64);
    for &old in &terms {
        let last = term_offsets[term_offsets.len() - 1];
        term_offsets.push(last + df[old as usize]);
    }
    let mut cursor: Vec<u64> = term_offsets[..terms.len()].to_vec();
    let mut term_docs = vec![0u32; doc_terms.len()];
    let mut term_impacts = vec![0u8; doc_terms.len()];
    for doc in 0..num_docs {
        let (a, b) = (doc_offsets[doc] as usize, doc_offsets[doc + 1] as usize);
        for (&t, &s) in doc_terms[a..b].iter().zip(&doc_impacts[a..b]) {
            let c = &mut cursor[t as usize];
            term_docs[*c as usize] = doc as u32;
            term_impacts[*c as usize] = s;
            *c += 1;
        }
        if doc % 65536 == 0 {
            progress("inverting", doc as u64, num_docs as u64);
        }
    }
    Postings {
        terms,
        doc_offsets,
        doc_terms,
        doc_impacts,
        term_offsets,
        term_docs,
        term_impacts,
    }
}

/// Builds the index of `collection` into `output` (atomically replacing any existing file), with
/// documents in input order.
pub fn build_index(
    collection: &Collection,
    output: &Path,
    options: &BuildOptions,
    progress: Progress,
) -> Result<BuildSummary> {
    let order: Vec<u32> = (0..collection.num_docs() as u32).collect();
    build_index_ordered(collection, &order, output, options, progress)
}

/// Builds the index of `collection` with internal doc id `i` given to input document `order[i]`
/// (a permutation of `0..num_docs`, e.g. from [`crate::reorder`]); external ids follow their
/// documents.
pub fn build_index_ordered(
    collection: &Collection,
    order: &[u32],
    output: &Path,
    options: &BuildOptions,
    progress: Progress,
) -> Result<BuildSummary> {
    check_order(order, collection.num_docs())?;
    validate_block_size(options.block_size)?;
    validate_superblock_size(options.superblock_size)?;
    if collection.num_docs() == 0 {
        return Err(Error::Invalid("no documents to index".into()));
    }
    let start = Instant::now();
    let block_size = options.block_size;
    let nblocks = num_blocks(collection.num_docs() as u64, block_size);
    let nblocks = u32::try_from(nblocks)
        .map_err(|_| Error::Invalid("too many blocks for one index".into()))?;
    let quantizer = options.quantizer.unwrap_or_else(|| {
        Quantizer::for_weights(collection.max_weight(), collection.all_integral())
    });
    let p = invert(collection, order, quantizer, progress);
    let num_docs = collection.num_docs();
    let num_terms = p.terms.len();

    let mut w = SectionWriter::create(output)?;

    // Vocabulary.
    let mut offsets = Vec::with_capacity(num_terms + 1);
    let mut bytes = Vec::new();
    offsets.push(0u64);
    for &old in &p.terms {
        bytes.extend_from_slice(collection.term(old).as_bytes());
        offsets.push(bytes.len() as u64);
    }
    w.section(SectionKind::VocabOffsets, bytemuck::cast_slice(&offsets))?;
    w.section(SectionKind::VocabBytes, &bytes)?;

    // External doc ids.
    offsets.clear();
    bytes.clear();
    offsets.push(0);
    for &old in order {
        bytes.extend_from_slice(collection.doc_id(old as usize).as_bytes());
        offsets.push(bytes.len() as u64);
    }
    w.section(SectionKind::DocIdOffsets, bytemuck::cast_slice(&offsets))?;
    w.section(SectionKind::DocIdBytes, &bytes)?;
    drop(bytes);

    // Term statistics.
    let stats: Vec<TermStats> = (0..num_terms)
        .map(|t| {
            let (a, b) = (p.term_offsets[t] as usize, p.term_offsets[t + 1] as usize);
            let mut histogram = [0usize; 256];
            for &s in &p.term_impacts[a..b] {
                histogram[usize::from(s)] += 1;
            }
            // The k-th largest impact: walk the histogram from the top.
            let kth = |k: usize| {
                let mut seen = 0;
                for v in (1..256).rev() {
                    seen += histogram[v];
                    if seen >= k {
                        return v as u8;
                    }
                }
                0
            };
            TermStats {
                df: (b - a) as u32,
                max_impact: kth(1),
                kth_impact: KTH_IMPACT_KS.map(kth),
            }
        })
        .collect();
    w.section(SectionKind::TermStats, bytemuck::cast_slice(&stats))?;

    // Inverted index.
    w.begin(SectionKind::Postings)?;
    offsets.clear();
    let mut buf = Vec::new();
    for t in 0..num_terms {
        w.align(4)?;
        offsets.push(w.section_pos());
        let (a, b) = (p.term_offsets[t] as usize, p.term_offsets[t + 1] as usize);
        buf.clear();
        encode_postings(&p.term_docs[a..b], &p.term_impacts[a..b], &mut buf);
        w.write(&buf)?;
        if t % 4096 == 0 {
            progress("writing postings", t as u64, num_terms as u64);
        }
    }
    offsets.push(w.section_pos());
    w.end()?;
    w.section(SectionKind::PostingsOffsets, bytemuck::cast_slice(&offsets))?;

    // Block-max rows.
    w.begin(SectionKind::BlockMaxData)?;
    let mut dir = Vec::with_capacity(num_terms);
    let mut dense = vec![0u8; nblocks as usize];
    let mut ids: Vec<u32> = Vec::new();
    let mut maxes: Vec<u8> = Vec::new();
    let (mut range_starts, mut range_lens, mut range_maxes) = (Vec::new(), Vec::new(), Vec::new());
    let (mut page_ends, mut low_ids): (Vec<u32>, Vec<u16>) = (Vec::new(), Vec::new());
    for t in 0..num_terms {
        let (a, b) = (p.term_offsets[t] as usize, p.term_offsets[t + 1] as usize);
        ids.clear();
        maxes.clear();
        for (&d, &s) in p.term_docs[a..b].iter().zip(&p.term_impacts[a..b]) {
            let block = d / block_size;
            if ids.last() == Some(&block) {
                let m = maxes.last_mut().expect("parallel to ids");
                *m = (*m).max(s);
            } else {
                ids.push(block);
                maxes.push(s);
            }
        }
        w.align(4)?;
        let offset = w.section_pos();
        let ranges = block_ranges(&ids);
        let covered: usize = ranges.iter().map(|&(_, l)| usize::from(l)).sum();
        let dense_bytes = nblocks as usize;
        let pages = row_pages(u64::from(nblocks));
        let sparse_bytes = pages * 4 + ids.len() * 3;
        let ranges_bytes = if covered >= ranges.len() * RANGE_MIN_MEAN_LEN {
            ranges.len() * 6 + covered
        } else {
            usize::MAX
        };
        let (nnz, kind) = if dense_bytes <= sparse_bytes.min(ranges_bytes) {
            dense.fill(0);
            for (&i, &m) in ids.iter().zip(&maxes) {
                dense[i as usize] = m;
            }
            w.write(&dense)?;
            (ids.len() as u32, ROW_DENSE)
        } else if ranges_bytes < sparse_bytes {
            range_starts.clear();
            range_lens.clear();
            range_maxes.clear();
            let mut next = 0usize;
            for &(start, len) in &ranges {
                range_starts.push(start);
                range_lens.push(len);
                for b in start..start + u32::from(len) {
                    if ids.get(next) == Some(&b) {
                        range_maxes.push(maxes[next]);
                        next += 1;
                    } else {
                        range_maxes.push(0);
                    }
                }
            }
            w.write(bytemuck::cast_slice(&range_starts))?;
            w.write(bytemuck::cast_slice(&range_lens))?;
            w.write(&range_maxes)?;
            (ranges.len() as u32, ROW_RANGES)
        } else {
            page_ends.clear();
            page_ends.resize(pages, 0);
            low_ids.clear();
            for &b in &ids {
                page_ends[b as usize / ROW_PAGE_BLOCKS] += 1;
                low_ids.push((b as usize % ROW_PAGE_BLOCKS) as u16);
            }
            for p in 1..pages {
                page_ends[p] += page_ends[p - 1];
            }
            w.write(bytemuck::cast_slice(&page_ends))?;
            w.write(bytemuck::cast_slice(&low_ids))?;
            w.write(&maxes)?;
            (ids.len() as u32, ROW_SPARSE)
        };
        dir.push(BlockMaxEntry { offset, nnz, kind });
    }
    w.end()?;
    w.section(SectionKind::BlockMaxDir, bytemuck::cast_slice(&dir))?;
    drop(dir);

    // Forward index grouped by block.
    w.begin(SectionKind::Forward)?;
    offsets.clear();
    let mut entries: Vec<(u32, u8, u8)> = Vec::new();
    let mut block_terms: Vec<u32> = Vec::new();
    let mut ends: Vec<u32> = Vec::new();
    let nbuckets = forward_buckets(num_terms as u64);
    let mut starts: Vec<u32> = Vec::with_capacity(nbuckets + 1);
    let mut lows: Vec<u8> = Vec::new();
    let mut pairs: Vec<u8> = Vec::new();
    for block in 0..nblocks as usize {
        let first = block * block_size as usize;
        let last = (first + block_size as usize).min(num_docs);
        entries.clear();
        for doc in first..last {
            let (a, b) = (p.doc_offsets[doc] as usize, p.doc_offsets[doc + 1] as usize);
            let off = (doc - first) as u8;
            entries.extend(
                p.doc_terms[a..b]
                    .iter()
                    .zip(&p.doc_impacts[a..b])
                    .map(|(&t, &s)| (t, off, s)),
            );
        }
        entries.sort_unstable();
        block_terms.clear();
        ends.clear();
        pairs.clear();
        for (i, &(t, off, s)) in entries.iter().enumerate() {
            if block_terms.last() != Some(&t) {
                if i > 0 {
                    ends.push(i as u32);
                }
                block_terms.push(t);
            }
            pairs.push(off);
            pairs.push(s);
        }
        if !entries.is_empty() {
            ends.push(entries.len() as u32);
        }
        let wide =
            entries.len() > usize::from(u16::MAX) || block_terms.len() > usize::from(u16::MAX);
        let word = block_terms.len() as u32 | if wide { FORWARD_WIDE } else { 0 };
        starts.clear();
        starts.resize(nbuckets + 1, 0);
        for &t in &block_terms {
            starts[(t / FORWARD_BUCKET) as usize + 1] += 1;
        }
        for i in 0..nbuckets {
            starts[i + 1] += starts[i];
        }
        lows.clear();
        lows.extend(block_terms.iter().map(|&t| (t % FORWARD_BUCKET) as u8));
        w.align(4)?;
        offsets.push(w.section_pos());
        w.write(&word.to_le_bytes())?;
        if wide {
            w.write(bytemuck::cast_slice(&starts))?;
            w.write(&lows)?;
            w.align(4)?;
            w.write(bytemuck::cast_slice(&ends))?;
        } else {
            let narrow: Vec<u16> = starts.iter().map(|&e| e as u16).collect();
            w.write(bytemuck::cast_slice(&narrow))?;
            w.write(&lows)?;
            w.align(2)?;
            let narrow: Vec<u16> = ends.iter().map(|&e| e as u16).collect();
            w.write(bytemuck::cast_slice(&narrow))?;
        }
        w.write(&pairs)?;
        if block % 16384 == 0 {
            progress("writing forward index", block as u64, u64::from(nblocks));
        }
    }
    offsets.push(w.section_pos());
    w.end()?;
    w.section(SectionKind::ForwardOffsets, bytemuck::cast_slice(&offsets))?;
    drop(offsets);

    write_superblock_rows(&mut w, &p, block_size, nblocks, options.superblock_size)?;

    let num_postings = p.doc_terms.len() as u64;
    let bytes = w.finish(HeaderFields {
        num_docs: num_docs as u64,
        num_terms: num_terms as u64,
        num_postings,
        block_size,
        num_blocks: nblocks,
        quant_scale: quantizer.scale(),
        superblock_size: options.superblock_size,
        lexical: options.lexical,
    })?;
    Ok(BuildSummary {
        num_docs: num_docs as u64,
        num_terms: num_terms as u64,
        num_postings,
        bytes,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Writes the `SuperblockData` and `SuperblockDir` sections: per term, the largest and the mean
/// (rounded up) block maximum of each superblock of `superblock_size` blocks.
fn write_superblock_rows(
    w: &mut SectionWriter,
    p: &Postings,
    block_size: u32,
    nblocks: u32,
    superblock_size: u32,
) -> Result<()> {
    let nsb = num_superblocks(u64::from(nblocks), superblock_size) as usize;
    let blocks_in = |sb: u32| -> u32 {
        let first = sb * superblock_size;
        superblock_size.min(nblocks - first)
    };
    w.begin(SectionKind::SuperblockData)?;
    let num_terms = p.term_offsets.len() - 1;
    let mut dir = Vec::with_capacity(num_terms);
    // (superblock, max, sum of block maxima) where the term occurs.
    let mut rows: Vec<(u32, u8, u32)> = Vec::new();
    let mut dense_max = vec![0u8; nsb];
    let mut dense_avg = vec![0u8; nsb];
    for t in 0..num_terms {
        let (a, b) = (p.term_offsets[t] as usize, p.term_offsets[t + 1] as usize);
        rows.clear();
        let mut last_block = u32::MAX;
        let mut block_max = 0u8;
        let flush = |rows: &mut Vec<(u32, u8, u32)>, block: u32, m: u8| {
            let sb = block / superblock_size;
            match rows.last_mut() {
                Some(r) if r.0 == sb => {
                    r.1 = r.1.max(m);
                    r.2 += u32::from(m);
                }
                _ => rows.push((sb, m, u32::from(m))),
            }
        };
        for (&d, &s) in p.term_docs[a..b].iter().zip(&p.term_impacts[a..b]) {
            let block = d / block_size;
            if block != last_block {
                if last_block != u32::MAX {
                    flush(&mut rows, last_block, block_max);
                }
                last_block = block;
                block_max = 0;
            }
            block_max = block_max.max(s);
        }
        if last_block != u32::MAX {
            flush(&mut rows, last_block, block_max);
        }
        let mean = |sb: u32, sum: u32| sum.div_ceil(blocks_in(sb)) as u8;
        w.align(4)?;
        let offset = w.section_pos();
        let kind = if 2 * nsb <= 6 * rows.len() {
            dense_max.fill(0);
            dense_avg.fill(0);
            for &(sb, m, sum) in &rows {
                dense_max[sb as usize] = m;
                dense_avg[sb as usize] = mean(sb, sum);
            }
            w.write(&dense_max)?;
            w.write(&dense_avg)?;
            SB_DENSE
        } else {
            let ids: Vec<u32> = rows.iter().map(|r| r.0).collect();
            let maxes: Vec<u8> = rows.iter().map(|r| r.1).collect();
            let avgs: Vec<u8> = rows.iter().map(|r| mean(r.0, r.2)).collect();
            w.write(bytemuck::cast_slice(&ids))?;
            w.write(&maxes)?;
            w.write(&avgs)?;
            SB_SPARSE
        };
        dir.push(BlockMaxEntry {
            offset,
            nnz: rows.len() as u32,
            kind,
        });
    }
    w.end()?;
    w.section(SectionKind::SuperblockDir, bytemuck::cast_slice(&dir))?;
    Ok(())
}

/// Splits increasing block ids into ranges `(start, len)` of consecutive blocks, letting a range
/// run over up to [`RANGE_MAX_GAP`] absent blocks (cheaper than a new range's 6 bytes of header)
/// and capping a range at `u16::MAX` blocks.
fn block_ranges(ids: &[u32]) -> Vec<(u32, u16)> {
    let mut ranges: Vec<(u32, u16)> = Vec::new();
    for &b in ids {
        if let Some((start, len)) = ranges.last_mut() {
            let end = *start + u32::from(*len);
            let new_len = b - *start + 1;
            if b - end <= RANGE_MAX_GAP && new_len <= u32::from(u16::MAX) {
                *len = new_len as u16;
                continue;
            }
        }
        ranges.push((b, 1));
    }
    ranges
}
