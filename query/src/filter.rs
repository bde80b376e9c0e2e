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

    /// Sets bit `b` of `mask` (one bit per block, `num_blocks` bits) for every block of
    /// `block_size` documents holding an allowed document below `num_blocks * block_size`.
    pub fn block_mask(&self, block_size: u32, num_blocks: u32, mask: &mut Vec<u64>) {
        mask.clear();
        mask.resize((num_blocks as usize).div_ceil(64), 0);
        let block_size = block_size.max(1);
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
}
