//! Index integrity, as `bmp-index check` runs it: every section checksum and the zero padding
//! between sections, then the structural invariants the query processors rely on for rank safety.
//!
//! - The vocabulary is sorted and unique; the external document ids are unique.
//! - Every posting list decodes, its doc ids increase and stay below the document count, and it
//!   holds `df` postings; the postings add up to the header's count.
//! - Each chunk header's maximum, the term's maximum impact and its k-th largest impacts equal
//!   what the postings say.
//! - Every block maximum is at least every impact of the term in that block; every superblock
//!   maximum at least every block maximum inside it (and its mean not above its maximum).
//! - The forward index holds exactly the inverted index's postings: for each (term, block), the
//!   same (document, impact) pairs, and no other entry.

use crate::format::reader::SuperblockRow;
use crate::format::{CHUNK_LEN, KTH_IMPACT_KS};
use crate::{Error, ExternalIds, Index, Result};

/// What a successful check covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CheckReport {
    /// Terms checked.
    pub terms: u32,
    /// Documents.
    pub docs: u32,
    /// Postings decoded and matched against the forward index.
    pub postings: u64,
    /// Blocks.
    pub blocks: u32,
    /// Superblocks.
    pub superblocks: u32,
}

/// The maximum of superblock `sb` in a term's superblock row, and its mean.
fn superblock_entry(row: &SuperblockRow<'_>, sb: u32) -> (u8, u8) {
    match row {
        SuperblockRow::Dense { max, avg } => (
            max.get(sb as usize).copied().unwrap_or(0),
            avg.get(sb as usize).copied().unwrap_or(0),
        ),
        SuperblockRow::Sparse { ids, max, avg } => match ids.binary_search(&sb) {
            Ok(i) => (
                max.get(i).copied().unwrap_or(0),
                avg.get(i).copied().unwrap_or(0),
            ),
            Err(_) => (0, 0),
        },
    }
}

/// Checks `index` completely; `progress(terms_done)` is called as terms are checked. The first
/// violation found is returned as [`Error::Corrupt`], naming what is wrong and where.
pub fn check(index: &Index, progress: &mut dyn FnMut(u32)) -> Result<CheckReport> {
    let corrupt = |m: String| Error::corrupt(index.path(), m);
    index.verify_checksums()?;
    index.verify_padding()?;

    let num_terms = index.num_terms();
    let mut previous: Option<&str> = None;
    for t in 0..num_terms {
        let term = index.term(t)?;
        if previous.is_some_and(|p| p >= term) {
            return Err(corrupt(format!(
                "vocabulary not sorted or not unique at term {t} ({term:?})"
            )));
        }
        previous = Some(term);
    }
    ExternalIds::build(index)?;

    let block_size = index.block_size();
    let num_blocks = index.num_blocks();
    let sb_size = index.superblock_size().max(1);
    let num_superblocks = index.num_superblocks();
    let mut total = 0u64;
    let mut entries = 0u64;
    let mut docs = Vec::new();
    let mut impacts = Vec::new();
    let mut buf = [0u32; CHUNK_LEN];
    for t in 0..num_terms {
        let stats = index.term_stats(t)?;
        let list = index.postings(t)?;
        docs.clear();
        impacts.clear();
        for (c, header) in list.chunk_headers().iter().enumerate() {
            let (d, s) = list
                .decode_chunk(c, &mut buf)
                .map_err(|e| corrupt(format!("term {t}: {}", e.0)))?;
            if s.iter().copied().max() != Some(header.max_impact) {
                return Err(corrupt(format!(
                    "term {t}: chunk {c} header says maximum {}, its impacts {:?}",
                    header.max_impact,
                    s.iter().copied().max()
                )));
            }
            if docs
                .last()
                .is_some_and(|&last| d.first().is_some_and(|&f| f <= last))
            {
                return Err(corrupt(format!(
                    "term {t}: doc ids not increasing at chunk {c}"
                )));
            }
            if d.windows(2).any(|w| w[0] >= w[1]) {
                return Err(corrupt(format!(
                    "term {t}: doc ids not increasing in chunk {c}"
                )));
            }
            docs.extend_from_slice(d);
            impacts.extend_from_slice(s);
        }
        if docs.len() != stats.df as usize {
            return Err(corrupt(format!(
                "term {t}: {} postings decoded, df {}",
                docs.len(),
                stats.df
            )));
        }
        total += docs.len() as u64;
        let mut sorted = impacts.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        if sorted.first().copied().unwrap_or(0) != stats.max_impact {
            return Err(corrupt(format!(
                "term {t}: maximum impact {} recorded, {} in its postings",
                stats.max_impact,
                sorted.first().copied().unwrap_or(0)
            )));
        }
        for (i, &k) in KTH_IMPACT_KS.iter().enumerate() {
            let kth = sorted.get(k - 1).copied().unwrap_or(0);
            if stats.kth_impact[i] != kth {
                return Err(corrupt(format!(
                    "term {t}: {k}-th largest impact {} recorded, {kth} in its postings",
                    stats.kth_impact[i]
                )));
            }
        }

        // Block and superblock maxima, and the forward index, one block of postings at a time.
        let row = index.block_max(t)?;
        let sb_row = index.superblock_row(t)?;
        let mut i = 0;
        let mut sb_max: Option<(u32, u8)> = None;
        while i < docs.len() {
            let block = docs[i] / block_size;
            let mut j = i;
            while j < docs.len() && docs[j] / block_size == block {
                j += 1;
            }
            let here = impacts[i..j].iter().copied().max().unwrap_or(0);
            let recorded = row.get(block);
            if recorded < here {
                return Err(corrupt(format!(
                    "term {t}: block {block} maximum {recorded} is below its impact {here}"
                )));
            }
            let sb = block / sb_size;
            if let Some((s, m)) = sb_max {
                if s != sb {
                    check_superblock(index, &sb_row, t, s, m)?;
                }
            }
            sb_max = Some(match sb_max {
                Some((s, m)) if s == sb => (sb, m.max(recorded)),
                _ => (sb, recorded),
            });
            let pairs = index.forward_block(block)?.find(t).ok_or_else(|| {
                corrupt(format!(
                    "term {t}: block {block} lacks it in the forward index"
                ))
            })?;
            let expected = docs[i..j]
                .iter()
                .zip(&impacts[i..j])
                .map(|(&d, &s)| [(d - block * block_size) as u8, s]);
            if pairs.len() != j - i || !pairs.iter().copied().eq(expected) {
                return Err(corrupt(format!(
                    "term {t}: the forward index of block {block} disagrees with its postings"
                )));
            }
            entries += 1;
            i = j;
        }
        if let Some((s, m)) = sb_max {
            check_superblock(index, &sb_row, t, s, m)?;
        }
        progress(t + 1);
    }
    if total != index.num_postings() {
        return Err(corrupt(format!(
            "{total} postings in the posting lists, the header says {}",
            index.num_postings()
        )));
    }
    // Every (term, block) entry of the forward index was matched above; any other is extra.
    let mut forward_entries = 0u64;
    let mut forward_pairs = 0u64;
    for block in 0..num_blocks {
        let fb = index.forward_block(block)?;
        let mut last = None;
        for (term, pairs) in fb.iter() {
            if last.is_some_and(|l| l >= term) || term >= num_terms {
                return Err(corrupt(format!(
                    "forward block {block}: term {term} out of order or out of range"
                )));
            }
            last = Some(term);
            forward_entries += 1;
            forward_pairs += pairs.len() as u64;
        }
    }
    if forward_entries != entries || forward_pairs != total {
        return Err(corrupt(format!(
            "the forward index has {forward_entries} entries of {forward_pairs} postings, the \
             inverted index {entries} of {total}"
        )));
    }
    Ok(CheckReport {
        terms: num_terms,
        docs: index.num_docs(),
        postings: total,
        blocks: num_blocks,
        superblocks: num_superblocks,
    })
}

/// Superblock `sb` of term `t` must bound `block_max`, the largest block maximum inside it.
fn check_superblock(
    index: &Index,
    row: &SuperblockRow<'_>,
    t: u32,
    sb: u32,
    block_max: u8,
) -> Result<()> {
    let (max, avg) = superblock_entry(row, sb);
    if max < block_max || avg > max {
        return Err(Error::corrupt(
            index.path(),
            format!(
                "term {t}: superblock {sb} maximum {max} (mean {avg}) does not bound its block \
                 maximum {block_max}"
            ),
        ));
    }
    Ok(())
}
