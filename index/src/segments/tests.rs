use super::*;

fn docs(items: &[(&str, &[(&str, f32)])]) -> Collection {
    let mut c = Collection::new();
    for (id, terms) in items {
        let entries: Vec<(u32, f32)> = terms.iter().map(|&(t, w)| (c.intern_term(t), w)).collect();
        c.add_document(id, &entries).unwrap();
    }
    c
}

fn live_ids(s: &Snapshot) -> Vec<String> {
    let mut ids = Vec::new();
    for seg in &s.segments {
        for d in 0..seg.index.num_docs() {
            if !seg.deleted.contains(d) {
                ids.push(seg.index.doc_id(d).unwrap().to_owned());
            }
        }
    }
    ids.sort();
    ids
}

fn options() -> BuildOptions {
    BuildOptions::with_block_size(8)
}

#[test]
fn add_upsert_delete_compact_reopen() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let mut c = CollectionDir::open_or_create(&dir, &options()).unwrap();
    assert_eq!(c.manifest().generation, 0);
    let a = c
        .add(
            &docs(&[("a", &[("x", 2.5), ("y", 1.0)]), ("b", &[("y", 4.0)])]),
            &mut |_, _, _| {},
        )
        .unwrap();
    assert_eq!((a.added, a.replaced, a.generation), (2, 0, 1));
    let scale = c.manifest().scale.unwrap();
    assert_eq!(scale, 4.0 / 255.0);
    // "b" again: an upsert; the new weight 8 is above 255 * scale and gets impact 255.
    let a = c
        .add(
            &docs(&[("b", &[("z", 8.0)]), ("c", &[("x", 1.0)])]),
            &mut |_, _, _| {},
        )
        .unwrap();
    assert_eq!((a.added, a.replaced), (2, 1));
    let snap = c.snapshot();
    assert_eq!(snap.segments.len(), 2);
    assert_eq!(live_ids(&snap), ["a", "b", "c"]);
    assert_eq!(snap.segments[1].index.quantizer().scale(), scale);
    let d = c.delete(["a", "nope", "a"]).unwrap();
    assert_eq!((d.deleted, d.missing), (1, 1));
    assert_eq!(live_ids(&c.snapshot()), ["b", "c"]);
    // The snapshot taken before the delete still sees "a".
    assert_eq!(live_ids(&snap), ["a", "b", "c"]);

    // Another process opens the same state.
    let reader = Snapshot::open(&dir).unwrap();
    assert_eq!(reader.generation, c.manifest().generation);
    assert_eq!(live_ids(&reader), ["b", "c"]);

    let k = c.compact(&mut |_, _, _| {}).unwrap();
    assert_eq!((k.segments_before, k.dropped, k.docs), (2, 2, 2));
    let snap = c.snapshot();
    assert_eq!(snap.segments.len(), 1);
    assert_eq!(live_ids(&snap), ["b", "c"]);
    // Impacts survive the merge.
    let idx = &snap.segments[0].index;
    let z = idx.term_id("z").unwrap().unwrap();
    let mut seen = Vec::new();
    idx.postings(z)
        .unwrap()
        .for_each(|d, s| seen.push((idx.doc_id(d).unwrap().to_owned(), s)))
        .unwrap();
    assert_eq!(seen, [("b".to_owned(), 255)]);
    drop(c);

    // Only the files the manifest names are left (and the lock).
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["LOCK", "MANIFEST", "WAL", "seg-00000003.bmp"]);
    let c = CollectionDir::open(&dir).unwrap();
    assert_eq!(live_ids(&c.snapshot()), ["b", "c"]);
}

#[test]
fn one_writer_at_a_time() {
    let tmp = tempfile::tempdir().unwrap();
    let c = CollectionDir::open_or_create(tmp.path(), &options()).unwrap();
    let err = CollectionDir::open(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("another writer"), "{err}");
    drop(c);
    CollectionDir::open(tmp.path()).unwrap();
}

#[test]
fn leftovers_of_a_crash_are_removed_and_never_seen() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = CollectionDir::open_or_create(tmp.path(), &options()).unwrap();
    c.add(&docs(&[("a", &[("x", 1.0)])]), &mut |_, _, _| {})
        .unwrap();
    drop(c);
    // A segment written by a writer killed before its manifest: not part of the collection.
    fs::copy(
        tmp.path().join("seg-00000001.bmp"),
        tmp.path().join("seg-00000002.bmp"),
    )
    .unwrap();
    fs::write(tmp.path().join(".seg-00000003.bmp.tmp-1"), b"partial").unwrap();
    assert_eq!(live_ids(&Snapshot::open(tmp.path()).unwrap()), ["a"]);
    let c = CollectionDir::open(tmp.path()).unwrap();
    assert!(!tmp.path().join("seg-00000002.bmp").exists());
    assert!(!tmp.path().join(".seg-00000003.bmp.tmp-1").exists());
    assert_eq!(live_ids(&c.snapshot()), ["a"]);
}

#[test]
fn a_single_index_file_is_a_one_segment_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("x.bmp");
    crate::build::build_index(
        &docs(&[("a", &[("x", 1.0)]), ("b", &[("x", 2.0)])]),
        &path,
        &options(),
        &mut |_, _, _| {},
    )
    .unwrap();
    let s = Snapshot::open(&path).unwrap();
    assert_eq!((s.segments.len(), s.live_docs()), (1, 2));
    let err = CollectionDir::open(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("not a collection directory"), "{err}");
}

#[test]
fn damaged_deletions_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = CollectionDir::open_or_create(tmp.path(), &options()).unwrap();
    c.add(
        &docs(&[("a", &[("x", 1.0)]), ("b", &[("x", 1.0)])]),
        &mut |_, _, _| {},
    )
    .unwrap();
    c.delete(["a"]).unwrap();
    let name = c.manifest().segments[0].deletes.clone().unwrap();
    drop(c);
    fs::write(tmp.path().join(&name), b"garbage").unwrap();
    let err = Snapshot::open(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("not a deletions bitmap"), "{err}");
    let mut past = RoaringBitmap::new();
    past.insert(7);
    write_deletes(&tmp.path().join(&name), &past).unwrap();
    let err = Snapshot::open(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("past the segment"), "{err}");
}

#[test]
fn deleting_everything_then_compacting_leaves_no_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = CollectionDir::open_or_create(tmp.path(), &options()).unwrap();
    c.add(&docs(&[("a", &[("x", 1.0)])]), &mut |_, _, _| {})
        .unwrap();
    c.delete(["a"]).unwrap();
    let k = c.compact(&mut |_, _, _| {}).unwrap();
    assert_eq!((k.docs, k.dropped), (0, 1));
    assert!(c.snapshot().segments.is_empty());
    // The scale stays: later segments still compare with what came before.
    assert!(c.manifest().scale.is_some());
}

#[test]
fn the_merge_policy_bounds_the_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = CollectionDir::open_or_create(tmp.path(), &options()).unwrap();
    for i in 0..7 {
        let id = format!("d{i}");
        let other = format!("e{i}");
        c.add(
            &docs(&[
                (id.as_str(), &[("x", 1.0)]),
                (other.as_str(), &[("y", 2.0)]),
            ]),
            &mut |_, _, _| {},
        )
        .unwrap();
    }
    c.delete(["d0", "e6"]).unwrap();
    let policy = MergePolicy {
        max_segments: 3,
        merge_factor: 3,
        ..MergePolicy::default()
    };
    // 7 segments: the three smallest (the two with a deletion first) into one, twice.
    let merges = c.merge_by_policy(&policy, &mut |_, _, _| {}).unwrap();
    assert_eq!(merges, [3, 3]);
    let snap = c.snapshot();
    assert_eq!(snap.segments.len(), 3);
    assert_eq!(snap.live_docs(), 12);
    assert!(snap.segments.iter().all(|s| s.deleted.is_empty()));
    let mut ids = live_ids(&snap);
    ids.sort();
    assert_eq!(ids.len(), 12);
    assert!(!ids.contains(&"d0".to_string()) && !ids.contains(&"e6".to_string()));
    // Within bounds already: nothing to do; 0 never merges.
    assert!(c
        .merge_by_policy(&policy, &mut |_, _, _| {})
        .unwrap()
        .is_empty());
    let never = MergePolicy {
        max_segments: 0,
        merge_factor: 2,
        ..MergePolicy::default()
    };
    assert!(c
        .merge_by_policy(&never, &mut |_, _, _| {})
        .unwrap()
        .is_empty());
    // A merge that would gather more postings than allowed is not made.
    let small = MergePolicy {
        max_segments: 1,
        merge_factor: 2,
        max_merge_postings: 5,
    };
    assert!(c
        .merge_by_policy(&small, &mut |_, _, _| {})
        .unwrap()
        .is_empty());
    assert_eq!(c.snapshot().segments.len(), 3);
    drop(c);
    let c = CollectionDir::open(tmp.path()).unwrap();
    assert_eq!(live_ids(&c.snapshot()), ids);
}

fn add_op(id: &str, terms: &[(&str, f32)]) -> WalOp {
    WalOp::Add {
        id: id.into(),
        vector: terms.iter().map(|&(t, w)| (t.to_string(), w)).collect(),
    }
}

#[test]
fn logged_writes_are_durable_at_once_and_visible_after_a_refresh() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = CollectionDir::open_or_create(tmp.path(), &options()).unwrap();
    c.add(&docs(&[("a", &[("x", 1.0)])]), &mut |_, _, _| {})
        .unwrap();
    let live = c
        .log(vec![
            add_op("b", &[("x", 2.0)]),
            add_op("a", &[("y", 3.0)]),
            WalOp::Delete { id: "b".into() },
            WalOp::Delete { id: "zz".into() },
        ])
        .unwrap();
    // "b" was not live, "a" was; the delete of "b" follows its add; "zz" never was.
    assert_eq!(live, [false, true, true, false]);
    assert_eq!(c.pending().len(), 3);
    assert_eq!(live_ids(&c.snapshot()), ["a"]);
    assert!(c.is_live("a").unwrap() && !c.is_live("b").unwrap());

    // A writer that stops without refreshing (a crash) leaves them logged; the next applies them.
    drop(c);
    let reader = Snapshot::open(tmp.path()).unwrap();
    assert_eq!(reader.generation, 1);
    let mut c = CollectionDir::open(tmp.path()).unwrap();
    assert_eq!(c.recovery().replayed, 4);
    assert!(c.pending().is_empty());
    assert_eq!(live_ids(&c.snapshot()), ["a"]);
    let idx = &c.snapshot().segments.last().unwrap().index.clone();
    assert!(idx.term_id("y").unwrap().is_some());

    // An invalid write logs nothing.
    let err = c
        .log(vec![
            add_op("c", &[("x", 1.0)]),
            add_op("d", &[("x", -1.0)]),
        ])
        .unwrap_err()
        .to_string();
    assert!(err.contains("write 2") && err.contains("\"d\""), "{err}");
    assert!(c.pending().is_empty());

    c.log(vec![add_op("c", &[("x", 1.0)])]).unwrap();
    let r = c.refresh(&mut |_, _, _| {}).unwrap();
    assert_eq!((r.added, r.deleted), (1, 0));
    assert_eq!(live_ids(&c.snapshot()), ["a", "c"]);
    assert_eq!(fs::metadata(tmp.path().join(WAL)).unwrap().len(), 0);
    // Nothing pending: nothing changes.
    let g = c.manifest().generation;
    assert_eq!(c.refresh(&mut |_, _, _| {}).unwrap().generation, g);
}
