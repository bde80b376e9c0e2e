//! Finding documents by external id.
//!
//! The index stores external ids in internal-id order. [`ExternalIds`] adds the reverse lookup
//! without copying the strings: the internal ids sorted by external id (4 bytes per document),
//! searched by binary search over the memory-mapped ids.

use crate::{Error, Index, Result};

/// Internal doc ids in external-id order, for looking documents up by external id.
#[derive(Debug, Clone)]
pub struct ExternalIds {
    sorted: Vec<u32>,
}

impl ExternalIds {
    /// Sorts the documents of `index` by external id. Fails if an id is unreadable or appears
    /// twice.
    pub fn build(index: &Index) -> Result<ExternalIds> {
        let n = index.num_docs();
        let ids: Vec<&str> = (0..n).map(|d| index.doc_id(d)).collect::<Result<_>>()?;
        let mut sorted: Vec<u32> = (0..n).collect();
        sorted.sort_unstable_by(|&a, &b| ids[a as usize].cmp(ids[b as usize]));
        if let Some(w) = sorted
            .windows(2)
            .find(|w| ids[w[0] as usize] == ids[w[1] as usize])
        {
            return Err(Error::corrupt(
                index.path(),
                format!(
                    "external id {:?} belongs to documents {} and {}",
                    ids[w[0] as usize], w[0], w[1]
                ),
            ));
        }
        Ok(ExternalIds { sorted })
    }

    /// The internal id of the document whose external id is `id`, if any. `index` must be the
    /// index this lookup was built from.
    pub fn find(&self, index: &Index, id: &str) -> Result<Option<u32>> {
        let mut lo = 0usize;
        let mut hi = self.sorted.len();
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let doc = self.sorted[mid];
            match index.doc_id(doc)?.cmp(id) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Ok(Some(doc)),
            }
        }
        Ok(None)
    }

    /// The internal ids of the documents among `ids`, in increasing order, and how many of `ids`
    /// name no document.
    pub fn find_all(&self, index: &Index, ids: &[String]) -> Result<(Vec<u32>, usize)> {
        let mut docs = Vec::with_capacity(ids.len());
        let mut unknown = 0;
        for id in ids {
            match self.find(index, id)? {
                Some(doc) => docs.push(doc),
                None => unknown += 1,
            }
        }
        docs.sort_unstable();
        Ok((docs, unknown))
    }

    /// Number of documents.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }

    /// Whether the index has no document.
    pub fn is_empty(&self) -> bool {
        self.sorted.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::{build_index, BuildOptions};
    use crate::Collection;

    #[test]
    fn finds_every_document_and_nothing_else() {
        let mut c = Collection::new();
        let t = c.intern_term("t");
        let names = ["d10", "a", "d2", "zz", "d1", "é", "B"];
        for name in names {
            c.add_document(name, &[(t, 1.0)]).unwrap();
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.bmp");
        build_index(&c, &path, &BuildOptions::default(), &mut |_, _, _| {}).unwrap();
        let index = Index::open(&path).unwrap();
        let ids = ExternalIds::build(&index).unwrap();
        assert_eq!(ids.len(), names.len());
        for doc in 0..index.num_docs() {
            let name = index.doc_id(doc).unwrap();
            assert_eq!(ids.find(&index, name).unwrap(), Some(doc), "{name}");
        }
        for missing in ["d", "d3", "zzz", "A", "0"] {
            assert_eq!(ids.find(&index, missing).unwrap(), None, "{missing}");
        }
    }
}
