//! Searchers kept by each query thread, with their buffers, for what is served now.
//!
//! A query processor's buffers grow with the collection (a bound per block, a mask, a top-k), so
//! building one per request allocates and clears them every time. Each thread of the query pool
//! keeps the searchers it built instead, one per index or collection generation and algorithm
//! (at most [`KEPT`]): a searcher holds the [`ServedIndex`] it searches, so a generation stays
//! mapped while a thread keeps a searcher of it, until the thread next searches something else.
//! A searcher is taken out of the thread's cache while it runs, so a panic drops it.

use std::cell::RefCell;
use std::sync::Arc;

use bmp_query::segments::SnapshotSearcher;
use bmp_query::{DocFilter, SearchSpec, Searcher};
use self_cell::self_cell;

use crate::state::ServedIndex;

/// Searchers a thread keeps at most.
pub const KEPT: usize = 4;

type BoxedSearcher<'a> = Box<dyn Searcher + 'a>;

self_cell!(
    /// A searcher of one index file, with the served index it borrows.
    struct IndexSearcher {
        owner: Arc<ServedIndex>,
        #[not_covariant]
        dependent: BoxedSearcher,
    }
);

self_cell!(
    /// A searcher of a collection's segments (live documents only), with the served snapshot it
    /// borrows.
    struct CollectionSearcher {
        owner: Arc<ServedIndex>,
        #[not_covariant]
        dependent: SnapshotSearcher,
    }
);

enum Kept {
    Index(IndexSearcher),
    Collection(CollectionSearcher),
}

impl Kept {
    fn served(&self) -> &Arc<ServedIndex> {
        match self {
            Kept::Index(s) => s.borrow_owner(),
            Kept::Collection(s) => s.borrow_owner(),
        }
    }
}

struct Entry {
    spec: SearchSpec,
    kept: Kept,
}

thread_local! {
    static CACHE: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// Takes this thread's searcher of `served` with `spec` out of its cache, if it has one.
fn take(served: &Arc<ServedIndex>, spec: &SearchSpec, collection: bool) -> Option<Kept> {
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        let at = cache.iter().position(|e| {
            e.spec == *spec
                && Arc::ptr_eq(e.kept.served(), served)
                && matches!(e.kept, Kept::Collection(_)) == collection
        })?;
        Some(cache.remove(at).kept)
    })
}

/// Puts a searcher (back) in this thread's cache, the most recently used last; the least
/// recently used goes when more than [`KEPT`] are kept.
fn keep(spec: SearchSpec, kept: Kept) {
    CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        cache.push(Entry { spec, kept });
        if cache.len() > KEPT {
            cache.remove(0);
        }
    })
}

/// Runs `job` with this thread's searcher of the index file `served` serves (built on first
/// use), and keeps it for the next request; `None` when `served` is a collection.
pub fn with_index_searcher<T>(
    served: &Arc<ServedIndex>,
    spec: &SearchSpec,
    job: impl FnOnce(&mut dyn Searcher) -> T,
) -> Option<T> {
    let mut searcher = match take(served, spec, false) {
        Some(Kept::Index(s)) => s,
        _ => IndexSearcher::try_new(served.clone(), |s| {
            s.single().map(|index| spec.searcher(index)).ok_or(())
        })
        .ok()?,
    };
    let out = searcher.with_dependent_mut(|_, s| job(s.as_mut()));
    keep(*spec, Kept::Index(searcher));
    Some(out)
}

/// Runs `job` with this thread's searcher of the collection `served` serves (built on first
/// use), restricted to `filters` (one per segment) when given and to the live documents
/// otherwise, and keeps it for the next request.
pub fn with_collection_searcher<T>(
    served: &Arc<ServedIndex>,
    spec: &SearchSpec,
    filters: Option<Vec<Option<DocFilter>>>,
    job: impl FnOnce(&mut SnapshotSearcher<'_>) -> T,
) -> T {
    let mut searcher = match take(served, spec, true) {
        Some(Kept::Collection(s)) => s,
        _ => CollectionSearcher::new(served.clone(), |s| {
            SnapshotSearcher::with_filters(s.snapshot(), spec, std::borrow::Cow::Borrowed(s.live()))
        }),
    };
    let out = searcher.with_dependent_mut(|served, s| match filters {
        Some(filters) => {
            s.set_filters(std::borrow::Cow::Owned(filters));
            let out = job(s);
            s.set_filters(std::borrow::Cow::Borrowed(served.live()));
            out
        }
        None => job(s),
    });
    keep(*spec, Kept::Collection(searcher));
    out
}

#[cfg(test)]
mod tests {
    use bmp_index::build::{build_index, BuildOptions};
    use bmp_index::segments::Snapshot;
    use bmp_index::{Collection, Index};
    use bmp_query::Query;

    use super::*;

    fn served(dir: &std::path::Path, name: &str) -> Arc<ServedIndex> {
        let mut c = Collection::new();
        let t = c.intern_term("t");
        for d in 0..20 {
            c.add_document(&format!("d{d}"), &[(t, 1.0 + d as f32)])
                .unwrap();
        }
        let path = dir.join(name);
        build_index(
            &c,
            &path,
            &BuildOptions::with_block_size(8),
            &mut |_, _, _| {},
        )
        .unwrap();
        Arc::new(ServedIndex::new(Index::open(&path).unwrap()))
    }

    #[test]
    fn a_thread_reuses_its_searcher_per_generation_and_algorithm() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (served(dir.path(), "a.bmp"), served(dir.path(), "b.bmp"));
        let bmp = SearchSpec::default();
        let exhaustive: SearchSpec = "exhaustive".parse().unwrap();
        let address = |served: &Arc<ServedIndex>, spec: &SearchSpec| {
            with_index_searcher(served, spec, |s| {
                let index = served.single().unwrap();
                let query = Query::from_entries(index, &[("t".into(), 1.0)]).unwrap();
                assert_eq!(s.search(&query, 3).unwrap().len(), 3);
                s as *const dyn Searcher as *const u8 as usize
            })
            .unwrap()
        };
        let first = address(&a, &bmp);
        assert_eq!(address(&a, &bmp), first, "the same searcher again");
        assert_ne!(address(&a, &exhaustive), first);
        assert_ne!(address(&b, &bmp), first, "another index, another searcher");
        assert_eq!(address(&a, &bmp), first, "kept beside the others");
        // A served collection is no index file.
        let collection = Arc::new(ServedIndex::collection(
            dir.path().to_path_buf(),
            Snapshot::single(Index::open(dir.path().join("a.bmp")).unwrap()),
        ));
        assert!(with_index_searcher(&collection, &bmp, |_| ()).is_none());
        // More than KEPT: the least recently used goes.
        let others: Vec<_> = (0..KEPT)
            .map(|i| served(dir.path(), &format!("o{i}.bmp")))
            .collect();
        for o in &others {
            address(o, &bmp);
        }
        CACHE.with(|c| assert_eq!(c.borrow().len(), KEPT));
        assert!(take(&a, &bmp, false).is_none());
    }
}
