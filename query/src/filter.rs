//! Restricting a search to a set of documents.
//!
//! A [`DocFilter`] holds internal doc ids in a roaring bitmap. Every processor applies it where it
//! offers documents to the top-k collector, so a filtered search returns exactly the unfiltered
//! ranking restricted to the allowed documents (the first `k` of them). BMP also skips whole
//! blocks that hold no allowed document.

use roaring::RoaringBitmap;

/// A set of internal doc ids a search is restricted to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DocFilter {
    docs: RoaringBitmap,
}

impl DocFilter {
    /// A filter allowing exactly `docs`.
    pub fn new(docs: RoaringBitmap) -> Self {
        DocFilter { docs }
    }

    /// Whether `doc` is allowed.
    #[inline]
    pub fn contains(&self, doc: u32) -> bool {
        self.docs.contains(doc)
    }

    /// Number of allowed documents.
    pub fn len(&self) -> u64 {
        self.docs.len()
    }

    /// Whether no document is allowed.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// The allowed doc ids.
    pub fn docs(&self) -> &RoaringBitmap {
        &self.docs
    }

    /// Number of documents of `0..num_docs` the filter does not allow.
    pub fn excluded_below(&self, num_docs: u32) -> u64 {
        u64::from(num_docs) - self.docs.range_cardinality(0..num_docs)
    }

    /// Sets bit `b` of `mask` (one bit per block, `num_blocks` bits) for every block of
    /// `block_size` documents holding an allowed document below `num_blocks * block_size`.
    ///
    /// A filter that allows most documents (one that leaves out deleted documents) is walked
    /// through the documents it excludes instead: every block starts allowed, and a block is
    /// cleared once all its documents are found excluded.
    pub fn block_mask(&self, block_size: u32, num_blocks: u32, mask: &mut Vec<u64>) {
        mask.clear();
        mask.resize((num_blocks as usize).div_ceil(64), 0);
        let block_size = block_size.max(1);
        let end = u64::from(num_blocks) * u64::from(block_size);
        let end = u32::try_from(end).unwrap_or(u32::MAX);
        if self.excluded_below(end) < u64::from(end) / 2 {
            mask.fill(u64::MAX);
            if !num_blocks.is_multiple_of(64) {
                if let Some(last) = mask.last_mut() {
                    *last = (1u64 << (num_blocks % 64)) - 1;
                }
            }
            let mut excluded = RoaringBitmap::new();
            excluded.insert_range(0..end);
            excluded -= &self.docs;
            let (mut block, mut count) = (u32::MAX, 0u32);
            for doc in &excluded {
                let b = doc / block_size;
                if b != block {
                    (block, count) = (b, 0);
                }
                count += 1;
                if count == block_size {
                    mask[(b / 64) as usize] &= !(1 << (b % 64));
                }
            }
            return;
        }
        let mut last = u32::MAX;
        for doc in &self.docs {
            let block = doc / block_size;
            if block >= num_blocks {
                break;
            }
            if block != last {
                mask[(block / 64) as usize] |= 1 << (block % 64);
                last = block;
            }
        }
    }
}

impl FromIterator<u32> for DocFilter {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        DocFilter::new(iter.into_iter().collect())
    }
}

/// Whether `doc` passes `filter` (every document passes no filter).
#[inline]
pub(crate) fn allows(filter: Option<&DocFilter>, doc: u32) -> bool {
    filter.is_none_or(|f| f.contains(doc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_mask_marks_blocks_with_allowed_documents() {
        let f: DocFilter = [0u32, 3, 64 * 8, 64 * 8 + 1, 700, 10_000]
            .into_iter()
            .collect();
        let mut mask = Vec::new();
        f.block_mask(8, 100, &mut mask);
        let set: Vec<u32> = (0..100)
            .filter(|b| mask[(b / 64) as usize] >> (b % 64) & 1 == 1)
            .collect();
        assert_eq!(set, vec![0, 64, 87]);
        assert!(f.contains(700) && !f.contains(701));
        assert_eq!(f.len(), 6);
    }

    #[test]
    fn block_mask_through_excluded_documents() {
        // 5 blocks of 8, 37 documents: block 1 wholly excluded, block 2 partly, the last block
        // (5 real documents, 3 past the end) wholly excluded.
        let f: DocFilter = (0u32..37)
            .filter(|d| !(8..16).contains(d) && *d != 17 && *d < 32)
            .collect();
        assert_eq!(f.excluded_below(37), 37 - f.len());
        let mut mask = Vec::new();
        f.block_mask(8, 5, &mut mask);
        assert_eq!(mask, vec![0b01101]);
        // The same blocks through the allowed documents.
        let sparse: DocFilter = [0u32, 20, 27].into_iter().collect();
        sparse.block_mask(8, 5, &mut mask);
        assert_eq!(mask, vec![0b01101]);
        // A mask over more than 64 blocks, everything allowed.
        let all: DocFilter = (0u32..700).collect();
        all.block_mask(8, 88, &mut mask);
        assert_eq!(mask, vec![u64::MAX, (1 << 24) - 1]);
    }
}
