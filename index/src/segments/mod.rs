//! A collection that takes writes: a directory of immutable segments.
//!
//! A collection directory holds:
//! - `MANIFEST`: which segments are live, with which deletions ([`Manifest`]): JSON with a
//!   generation number and a checksum, replaced atomically.
//! - `seg-NNNNNNNN.bmp`: a segment, an index in the single-file format, written once and never
//!   changed.
//! - `seg-NNNNNNNN.del-G`: the internal doc ids of a segment deleted as of generation `G`, a
//!   portable roaring bitmap. A change writes a new file, so the previous manifest stays whole
//!   until the new one replaces it.
//! - `WAL`: the write-ahead log ([`wal`]): writes durable but not yet in a segment. The writer
//!   logs writes there ([`CollectionDir::log`]) and applies them as a segment and deletions on
//!   [`CollectionDir::refresh`] (near-real-time: a logged write is durable at once and visible to
//!   searches after the next refresh); a writer that opens the collection applies what a crashed
//!   one left logged.
//! - `LOCK`: locked (an exclusive advisory lock) by the one writer, [`CollectionDir`].
//!
//! A write puts its new files down (each atomically, fsynced) before the manifest that names
//! them, and removes the files the new manifest no longer names only after it is in place: a
//! crash at any point leaves the old collection or the new one, never a mix, and files no manifest
//! names (left by a crash) are removed by the next writer. Readers ([`Snapshot::open`]) take no
//! lock: they read the manifest and map its files, and the files they mapped stay readable after
//! a writer removes them.
//!
//! Every segment is quantized with the collection's scale, fixed by the first documents added
//! (a later weight above 255 times the scale gets the largest impact), so that a document's
//! score is the same in any segment, and search across segments is rank-safe. A document added
//! with the external id of a live one replaces it (upsert): the old one is deleted in the same
//! manifest change.

pub mod manifest;
pub mod pending;
pub mod wal;

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use roaring::RoaringBitmap;

use crate::atomic::AtomicFile;
use crate::build::{build_index_ordered, BuildOptions, BuildSummary, Progress};
use crate::collection::Collection;
use crate::docids::ExternalIds;
use crate::error::{Error, Result};
use crate::format::reader::Index;
use crate::quantize::Quantizer;
use crate::reorder::{bp_order_collection, BpOptions};

pub use manifest::{Manifest, SegmentEntry, MANIFEST};
pub use pending::Pending;
pub use wal::{Wal, WalOp, WAL};

/// The writer's lock file in a collection directory.
pub const LOCK: &str = "LOCK";

/// How many times [`Snapshot::open`] reads the manifest again when a file it names was removed
/// by a writer in the meantime.
const OPEN_RETRIES: usize = 16;

/// One segment as of one manifest: its index and its deleted documents.
#[derive(Debug)]
pub struct Segment {
    /// The segment's file name in the collection directory (or the index path of a single-file
    /// index).
    pub file: String,
    /// The segment's index.
    pub index: Arc<Index>,
    /// Internal doc ids deleted.
    pub deleted: RoaringBitmap,
    /// The reverse id lookup, built when a writer first needs it.
    ids: OnceLock<Arc<ExternalIds>>,
}

impl Segment {
    fn new(file: String, index: Index, deleted: RoaringBitmap) -> Self {
        Segment {
            file,
            index: Arc::new(index),
            deleted,
            ids: OnceLock::new(),
        }
    }

    /// Documents not deleted.
    pub fn live_docs(&self) -> u64 {
        u64::from(self.index.num_docs()).saturating_sub(self.deleted.len())
    }

    /// The live document whose external id is `id`, if any.
    pub fn find_live(&self, id: &str) -> Result<Option<u32>> {
        let ids = match self.ids.get() {
            Some(ids) => ids,
            None => {
                let built = Arc::new(ExternalIds::build(&self.index)?);
                self.ids.get_or_init(|| built)
            }
        };
        Ok(ids
            .find(&self.index, id)?
            .filter(|&d| !self.deleted.contains(d)))
    }

    /// The same segment with `deleted` as its deletions.
    fn with_deleted(&self, deleted: RoaringBitmap) -> Segment {
        let ids = OnceLock::new();
        if let Some(v) = self.ids.get() {
            let _ = ids.set(Arc::clone(v));
        }
        Segment {
            file: self.file.clone(),
            index: Arc::clone(&self.index),
            deleted,
            ids,
        }
    }
}

/// The segments of a collection as of one generation: what one search runs against. Cloning it
/// is cheap; the files it maps stay readable while it lives, whatever writers do.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The manifest generation (0 for a single-file index).
    pub generation: u64,
    /// The live segments, oldest first.
    pub segments: Vec<Arc<Segment>>,
}

impl Snapshot {
    /// Opens what `path` holds for searching: a collection directory (as of its current manifest)
    /// or a single-file index (one segment, nothing deleted).
    pub fn open(path: &Path) -> Result<Snapshot> {
        if !path.is_dir() {
            return Ok(Snapshot::single(Index::open(path)?));
        }
        let mut attempt = 0;
        loop {
            let manifest = Manifest::read(path)?;
            match open_segments(path, &manifest) {
                Ok(segments) => {
                    return Ok(Snapshot {
                        generation: manifest.generation,
                        segments,
                    })
                }
                // A writer replaced the manifest and removed a file it named: read it again.
                Err(Error::Io { error, .. })
                    if error.kind() == std::io::ErrorKind::NotFound && attempt < OPEN_RETRIES =>
                {
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A single-file index as a snapshot of one segment, nothing deleted.
    pub fn single(index: Index) -> Snapshot {
        let file = index.path().display().to_string();
        Snapshot {
            generation: 0,
            segments: vec![Arc::new(Segment::new(file, index, RoaringBitmap::new()))],
        }
    }

    /// Documents in the segments, deleted ones included.
    pub fn num_docs(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| u64::from(s.index.num_docs()))
            .sum()
    }

    /// Documents not deleted.
    pub fn live_docs(&self) -> u64 {
        self.segments.iter().map(|s| s.live_docs()).sum()
    }
}

/// Opens the segments `manifest` names in `dir`, with their deletions.
fn open_segments(dir: &Path, manifest: &Manifest) -> Result<Vec<Arc<Segment>>> {
    let mut segments = Vec::with_capacity(manifest.segments.len());
    for entry in &manifest.segments {
        let index = Index::open(dir.join(&entry.file))?;
        if index.num_docs() != entry.docs {
            return Err(Error::corrupt(
                dir.join(&entry.file),
                format!(
                    "{} documents, the manifest says {}",
                    index.num_docs(),
                    entry.docs
                ),
            ));
        }
        let deleted = match &entry.deletes {
            None => RoaringBitmap::new(),
            Some(name) => read_deletes(&dir.join(name), entry.docs)?,
        };
        if deleted.len() != entry.deleted {
            return Err(Error::corrupt(
                dir.join(&entry.file),
                format!(
                    "{} deleted documents, the manifest says {}",
                    deleted.len(),
                    entry.deleted
                ),
            ));
        }
        segments.push(Arc::new(Segment::new(entry.file.clone(), index, deleted)));
    }
    Ok(segments)
}

/// Reads a deletions file of a segment of `docs` documents.
fn read_deletes(path: &Path, docs: u32) -> Result<RoaringBitmap> {
    let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
    let deleted = RoaringBitmap::deserialize_from(&bytes[..])
        .map_err(|e| Error::corrupt(path, format!("not a deletions bitmap: {e}")))?;
    if let Some(max) = deleted.max() {
        if max >= docs {
            return Err(Error::corrupt(
                path,
                format!("deleted document {max} is past the segment's {docs} documents"),
            ));
        }
    }
    Ok(deleted)
}

/// Writes a deletions file atomically.
fn write_deletes(path: &Path, deleted: &RoaringBitmap) -> Result<()> {
    let mut file = AtomicFile::create(path)?;
    let temp = file.temp_path().to_path_buf();
    deleted
        .serialize_into(file.writer())
        .map_err(|e| Error::io(&temp, e))?;
    file.commit()
}

/// What [`CollectionDir::add`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct AddSummary {
    /// Documents added.
    pub added: u64,
    /// Live documents they replaced (same external id).
    pub replaced: u64,
    /// The new segment's file name.
    pub segment: String,
    /// The build of the new segment.
    pub build: BuildSummary,
    /// The manifest generation now.
    pub generation: u64,
}

/// What [`CollectionDir::delete`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeleteSummary {
    /// Live documents deleted.
    pub deleted: u64,
    /// Ids that matched no live document.
    pub missing: u64,
    /// The manifest generation now.
    pub generation: u64,
}

/// What [`CollectionDir::refresh`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RefreshSummary {
    /// Documents added (or replaced) from the log.
    pub added: u64,
    /// Live documents the log's deletes removed.
    pub deleted: u64,
    /// The manifest generation now.
    pub generation: u64,
}

/// What opening a collection for writing found in its write-ahead log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Recovery {
    /// Logged writes applied (a crashed writer had not applied them yet).
    pub replayed: usize,
    /// Bytes of a torn last write cut off the log (it was never acknowledged).
    pub torn_bytes: u64,
}

/// What [`CollectionDir::compact`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct CompactSummary {
    /// Segments before.
    pub segments_before: usize,
    /// Deleted documents dropped.
    pub dropped: u64,
    /// Live documents, now in one segment (none when 0).
    pub docs: u64,
    /// The manifest generation now.
    pub generation: u64,
}

/// When [`CollectionDir::merge_by_policy`] merges segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergePolicy {
    /// The most segments left after an add (0: never merge).
    pub max_segments: usize,
    /// How many of the smallest segments one merge takes (at least 2).
    pub merge_factor: usize,
    /// The most postings one merge may gather (it holds them in memory): a merge that would
    /// gather more is not made, and more segments than `max_segments` stay.
    pub max_merge_postings: u64,
}

impl Default for MergePolicy {
    /// Ten segments at most, the four smallest merged at a time: search over ten segments costs
    /// about 1.5 times one at k = 10 (docs/BENCHMARKS.md), and a merge rewrites the smallest
    /// segments only.
    fn default() -> Self {
        MergePolicy {
            max_segments: 10,
            merge_factor: 4,
            max_merge_postings: u64::MAX,
        }
    }
}

/// When a writer applies its logged writes ([`CollectionDir::refresh`]) of its own accord.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshPolicy {
    /// The longest a logged write waits before it is applied (`None`: until asked, or until
    /// the size limit).
    pub interval: Option<std::time::Duration>,
    /// Apply the logged writes once their adds hold this many postings: what is pending is held
    /// in memory (about 40 bytes a posting).
    pub max_pending_postings: u64,
}

impl Default for RefreshPolicy {
    /// Writes visible within a second, as Lucene's near-real-time search; at most 2M postings
    /// (about 80 MB) pending.
    fn default() -> Self {
        RefreshPolicy {
            interval: Some(std::time::Duration::from_secs(1)),
            max_pending_postings: 2_000_000,
        }
    }
}

impl RefreshPolicy {
    /// How long until the writes of `pending` are due (zero when they are); `None` when
    /// nothing is pending, or nothing falls due with time.
    pub fn due_in(&self, pending: &Pending) -> Option<std::time::Duration> {
        let since = pending.since()?;
        if pending.postings() >= self.max_pending_postings {
            return Some(std::time::Duration::ZERO);
        }
        Some(self.interval?.saturating_sub(since.elapsed()))
    }
}

/// A collection directory opened for writing: holds its lock until dropped. Searches go through
/// [`CollectionDir::snapshot`] (or [`Snapshot::open`] from another process).
#[derive(Debug)]
pub struct CollectionDir {
    dir: PathBuf,
    manifest: Manifest,
    segments: Vec<Arc<Segment>>,
    wal: Wal,
    pending: Pending,
    recovery: Recovery,
    /// The number of the next segment file (at least the manifest's `next_segment`): merges
    /// being built elsewhere have taken the numbers below it.
    next_file: u64,
    /// Segment files of merges being built elsewhere ([`PlannedMerge`]): not garbage.
    building: HashSet<String>,
    /// The merges planned and not committed: each one's file, and the files it merges.
    plans: Vec<(String, Vec<String>)>,
    _lock: File,
}

impl CollectionDir {
    /// Opens the collection in `dir` for writing, creating it (with `options`' block and
    /// superblock sizes) when `dir` does not exist or is an empty directory. Fails when another
    /// writer holds it.
    pub fn open_or_create(dir: &Path, options: &BuildOptions) -> Result<CollectionDir> {
        let empty = match fs::read_dir(dir) {
            Ok(mut entries) => entries.next().is_none(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                true
            }
            Err(e) => return Err(Error::io(dir, e)),
        };
        if empty {
            crate::format::validate_block_size(options.block_size)?;
            crate::format::validate_superblock_size(options.superblock_size)?;
            let lock = lock(dir)?;
            let mut manifest = Manifest::empty(options.block_size, options.superblock_size);
            manifest.write(dir)?;
            let (wal, _) = Wal::open(dir)?;
            let next_file = manifest.next_segment;
            return Ok(CollectionDir {
                dir: dir.to_path_buf(),
                manifest,
                segments: Vec::new(),
                wal,
                pending: Pending::default(),
                recovery: Recovery::default(),
                next_file,
                building: HashSet::new(),
                plans: Vec::new(),
                _lock: lock,
            });
        }
        Self::open(dir)
    }

    /// Opens the existing collection in `dir` for writing. Fails when another writer holds it.
    /// Files no manifest names (left by a crashed writer) are removed, and writes a crashed
    /// writer left in the log are applied.
    pub fn open(dir: &Path) -> Result<CollectionDir> {
        if !dir.join(MANIFEST).exists() {
            return Err(Error::input(
                dir,
                "not a collection directory (no MANIFEST); an empty or new directory becomes one",
            ));
        }
        let lock = lock(dir)?;
        let manifest = Manifest::read(dir)?;
        let segments = open_segments(dir, &manifest)?;
        let (wal, logged) = Wal::open(dir)?;
        let torn_bytes = wal.torn_bytes();
        let next_file = manifest.next_segment;
        let mut c = CollectionDir {
            dir: dir.to_path_buf(),
            manifest,
            segments,
            wal,
            pending: Pending::default(),
            recovery: Recovery {
                replayed: logged.len(),
                torn_bytes,
            },
            next_file,
            building: HashSet::new(),
            plans: Vec::new(),
            _lock: lock,
        };
        c.remove_unnamed_files()?;
        for (i, op) in logged.into_iter().enumerate() {
            pending::validate(&op).map_err(|m| {
                Error::corrupt(dir.join(WAL), format!("logged write {}: {m}", i + 1))
            })?;
            c.pending.record(op);
        }
        c.refresh(&mut |_, _, _| {})?;
        Ok(c)
    }

    /// What opening found in the write-ahead log.
    pub fn recovery(&self) -> Recovery {
        self.recovery
    }

    /// The writes logged and not yet applied.
    pub fn pending(&self) -> &Pending {
        &self.pending
    }

    /// Whether the document `id` is live: in a segment and not deleted, with the pending writes
    /// applied.
    pub fn is_live(&self, id: &str) -> Result<bool> {
        if let Some(adds) = self.pending.adds(id) {
            return Ok(adds);
        }
        for seg in &self.segments {
            if seg.find_live(id)?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Logs `ops` in the write-ahead log, in order: they are durable when this returns, and
    /// applied to the segments by the next [`CollectionDir::refresh`]. Returns, for each write,
    /// whether its id was live just before it (an add that replaces, a delete that deletes).
    /// Nothing is logged when a write is invalid (the error names it) or the log fails.
    pub fn log(&mut self, ops: Vec<WalOp>) -> Result<Vec<bool>> {
        for (i, op) in ops.iter().enumerate() {
            pending::validate(op)
                .map_err(|m| Error::Invalid(format!("write {} ({:?}): {m}", i + 1, op.id())))?;
        }
        let mut overlay: std::collections::HashMap<&str, bool> = Default::default();
        let mut live = Vec::with_capacity(ops.len());
        for op in &ops {
            let was = match overlay.get(op.id()) {
                Some(&adds) => adds,
                None => self.is_live(op.id())?,
            };
            live.push(was);
            overlay.insert(op.id(), matches!(op, WalOp::Add { .. }));
        }
        drop(overlay);
        self.wal.append(&ops)?;
        for op in ops {
            self.pending.record(op);
        }
        Ok(live)
    }

    /// Applies the logged writes: the pending adds as one new segment (replacing live documents
    /// with the same ids), then the pending deletes; then empties the log. Nothing happens when
    /// no write is pending. On failure the writes stay logged and pending, and a later refresh
    /// applies them (applying some twice gives the same collection).
    pub fn refresh(&mut self, progress: Progress) -> Result<RefreshSummary> {
        let mut summary = RefreshSummary {
            generation: self.manifest.generation,
            ..RefreshSummary::default()
        };
        if self.pending.is_empty() {
            if !self.wal.is_empty() {
                self.wal.clear()?;
            }
            return Ok(summary);
        }
        let pending = std::mem::take(&mut self.pending);
        let result = (|| {
            let (adds, deletes) = pending.batch();
            if adds.num_docs() > 0 {
                summary.added = self.add_segment(&adds, progress)?.added;
            }
            if !deletes.is_empty() {
                summary.deleted = self.delete_ids(deletes)?.deleted;
            }
            self.wal.clear()
        })();
        if let Err(e) = result {
            self.pending = pending;
            return Err(e);
        }
        summary.generation = self.manifest.generation;
        Ok(summary)
    }

    /// The collection directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The current manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The segments as of now, for searching.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            generation: self.manifest.generation,
            segments: self.segments.clone(),
        }
    }

    /// Adds `docs` as a new segment (documents BP-reordered, quantized with the collection's
    /// scale); a document whose external id is live already replaces it. Pending logged writes
    /// are applied first.
    pub fn add(&mut self, docs: &Collection, progress: Progress) -> Result<AddSummary> {
        self.refresh(&mut *progress)?;
        self.add_segment(docs, progress)
    }

    /// [`CollectionDir::add`] without applying the log first.
    fn add_segment(&mut self, docs: &Collection, progress: Progress) -> Result<AddSummary> {
        if docs.num_docs() == 0 {
            return Err(Error::Invalid("no documents to add".into()));
        }
        let quantizer = match self.manifest.scale.and_then(Quantizer::from_scale) {
            Some(q) => q,
            None => Quantizer::for_weights(docs.max_weight(), docs.all_integral()),
        };
        // Upserts: the live documents these ids name now.
        let mut deleted: Vec<Option<RoaringBitmap>> = vec![None; self.segments.len()];
        let mut replaced = 0u64;
        for d in 0..docs.num_docs() {
            let id = docs.doc_id(d);
            for (s, seg) in self.segments.iter().enumerate() {
                if let Some(doc) = seg.find_live(id)? {
                    deleted[s]
                        .get_or_insert_with(|| seg.deleted.clone())
                        .insert(doc);
                    replaced += 1;
                }
            }
        }
        let file = self.allocate_file();
        let new = write_segment(&self.dir, file, docs, &self.manifest, quantizer, progress)?;
        let mut manifest = self.manifest.clone();
        manifest.scale = Some(quantizer.scale());
        manifest.next_segment = self.next_file;
        manifest.segments.push(new.entry);
        let mut new_segments = self.segments.clone();
        new_segments.push(new.segment);
        let result = self
            .stage_deletes(&mut manifest, &mut new_segments, deleted)
            .and_then(|()| self.commit(manifest, new_segments));
        if let Err(e) = result {
            let _ = fs::remove_file(&new.path);
            return Err(e);
        }
        Ok(AddSummary {
            added: docs.num_docs() as u64,
            replaced,
            segment: new.file,
            build: new.build,
            generation: self.manifest.generation,
        })
    }

    /// Deletes the live documents with these external ids. Pending logged writes are applied
    /// first.
    pub fn delete<'a>(&mut self, ids: impl IntoIterator<Item = &'a str>) -> Result<DeleteSummary> {
        self.refresh(&mut |_, _, _| {})?;
        self.delete_ids(ids)
    }

    /// [`CollectionDir::delete`] without applying the log first.
    fn delete_ids<'a>(&mut self, ids: impl IntoIterator<Item = &'a str>) -> Result<DeleteSummary> {
        let mut deleted: Vec<Option<RoaringBitmap>> = vec![None; self.segments.len()];
        let (mut count, mut missing) = (0u64, 0u64);
        let mut seen = HashSet::new();
        for id in ids {
            if !seen.insert(id) {
                continue;
            }
            let mut found = false;
            for (s, seg) in self.segments.iter().enumerate() {
                if let Some(doc) = seg.find_live(id)? {
                    let set = deleted[s].get_or_insert_with(|| seg.deleted.clone());
                    if set.insert(doc) {
                        count += 1;
                        found = true;
                    }
                }
            }
            missing += u64::from(!found);
        }
        if count > 0 {
            let mut manifest = self.manifest.clone();
            let mut new_segments = self.segments.clone();
            self.stage_deletes(&mut manifest, &mut new_segments, deleted)?;
            self.commit(manifest, new_segments)?;
        }
        Ok(DeleteSummary {
            deleted: count,
            missing,
            generation: self.manifest.generation,
        })
    }

    /// Merges every live document into one segment (BP-reordered), dropping the deleted ones;
    /// an empty collection keeps no segment. Nothing happens when there is one segment without
    /// deletions already. Pending logged writes are applied first.
    pub fn compact(&mut self, progress: Progress) -> Result<CompactSummary> {
        self.refresh(&mut *progress)?;
        let before = self.segments.len();
        let dropped: u64 = self.segments.iter().map(|s| s.deleted.len()).sum();
        if before == 0 || (before == 1 && dropped == 0) {
            return Ok(CompactSummary {
                segments_before: before,
                dropped: 0,
                docs: self.snapshot().live_docs(),
                generation: self.manifest.generation,
            });
        }
        let all: Vec<usize> = (0..before).collect();
        let plan = self.plan_merge_of(&all)?;
        let docs = self.commit_merge(plan.build(progress))?;
        Ok(CompactSummary {
            segments_before: before,
            dropped,
            docs,
            generation: self.manifest.generation,
        })
    }

    /// Applies `policy`: while there are more than `policy.max_segments` segments, merges the
    /// `policy.merge_factor` smallest (by live documents) into one, unless they hold more than
    /// `policy.max_merge_postings` postings. Returns the merges done, as the number of segments
    /// each merged. [`CollectionDir::plan_merge`] does the same one merge at a time, built
    /// elsewhere.
    pub fn merge_by_policy(
        &mut self,
        policy: &MergePolicy,
        progress: Progress,
    ) -> Result<Vec<usize>> {
        let mut merges = Vec::new();
        while let Some(plan) = self.plan_merge(policy)? {
            let n = plan.len();
            self.commit_merge(plan.build(&mut *progress))?;
            merges.push(n);
        }
        Ok(merges)
    }

    /// The next merge `policy` calls for, if any: the `policy.merge_factor` smallest segments
    /// (by live documents) not in a merge being built already, when there are more than
    /// `policy.max_segments` and they hold at most `policy.max_merge_postings` postings.
    ///
    /// The merge is built apart from the writer ([`PlannedMerge::build`], which needs no lock:
    /// writes may go on meanwhile) and made current by [`CollectionDir::commit_merge`].
    pub fn plan_merge(&mut self, policy: &MergePolicy) -> Result<Option<PlannedMerge>> {
        if policy.max_segments == 0 || self.segments.len() <= policy.max_segments {
            return Ok(None);
        }
        let merging: HashSet<&str> = self
            .plans
            .iter()
            .flat_map(|(_, taken)| taken.iter().map(String::as_str))
            .collect();
        let mut by_size: Vec<usize> = (0..self.segments.len())
            .filter(|&i| !merging.contains(self.segments[i].file.as_str()))
            .collect();
        by_size.sort_by_key(|&i| (self.segments[i].live_docs(), i));
        let n = policy.merge_factor.max(2).min(by_size.len());
        if n < 2 {
            return Ok(None);
        }
        let mut chosen = by_size[..n].to_vec();
        chosen.sort_unstable();
        let postings: u64 = chosen
            .iter()
            .map(|&i| self.segments[i].index.num_postings())
            .sum();
        if postings > policy.max_merge_postings {
            return Ok(None);
        }
        self.plan_merge_of(&chosen).map(Some)
    }

    /// A merge of the segments at positions `which` (increasing).
    fn plan_merge_of(&mut self, which: &[usize]) -> Result<PlannedMerge> {
        let quantizer = self
            .manifest
            .scale
            .and_then(Quantizer::from_scale)
            .ok_or_else(|| Error::corrupt(&self.dir, "segments without a scale"))?;
        let segments: Vec<Arc<Segment>> = which
            .iter()
            .map(|&i| Arc::clone(&self.segments[i]))
            .collect();
        let file = self.allocate_file();
        self.building.insert(file.clone());
        self.plans.push((
            file.clone(),
            segments.iter().map(|s| s.file.clone()).collect(),
        ));
        Ok(PlannedMerge {
            dir: self.dir.clone(),
            file,
            segments,
            manifest: self.manifest.clone(),
            quantizer,
        })
    }

    /// Makes a built merge current: its segment replaces the segments it merged (at the
    /// position of the first), with the documents deleted since it was planned (deletes and
    /// upserts that came meanwhile) deleted in it too. Returns the documents of the new segment.
    /// On failure (of the build or of this) nothing changes and the merge's file is removed.
    pub fn commit_merge(
        &mut self,
        built: std::result::Result<BuiltMerge, MergeError>,
    ) -> Result<u64> {
        let (file, result) = match built {
            Ok(built) => (built.plan.file.clone(), self.install_merge(&built)),
            Err(e) => (e.file, Err(e.error)),
        };
        self.building.remove(&file);
        self.plans.retain(|(f, _)| *f != file);
        if result.is_err() {
            let _ = fs::remove_file(self.dir.join(&file));
        }
        result
    }

    fn install_merge(&mut self, built: &BuiltMerge) -> Result<u64> {
        let plan = &built.plan;
        let mut positions = Vec::with_capacity(plan.segments.len());
        for planned in &plan.segments {
            let pos = self
                .segments
                .iter()
                .position(|s| s.file == planned.file)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "segment {} is no longer live: the merge is dropped",
                        planned.file
                    ))
                })?;
            positions.push(pos);
        }
        // Documents deleted since the plan are deleted in the new segment too.
        let mut since = RoaringBitmap::new();
        if let Some(new) = &built.new {
            for (planned, &pos) in plan.segments.iter().zip(&positions) {
                let now = &self.segments[pos];
                for doc in &now.deleted - &planned.deleted {
                    if let Some(d) = new.segment.find_live(now.index.doc_id(doc)?)? {
                        since.insert(d);
                    }
                }
            }
        }
        let mut manifest = self.manifest.clone();
        let mut new_segments = self.segments.clone();
        positions.sort_unstable();
        for &i in positions.iter().rev() {
            manifest.segments.remove(i);
            new_segments.remove(i);
        }
        manifest.next_segment = self.next_file;
        let first = positions[0];
        if let Some(new) = &built.new {
            manifest.segments.insert(first, new.entry.clone());
            new_segments.insert(first, Arc::clone(&new.segment));
            if !since.is_empty() {
                let mut deleted = vec![None; new_segments.len()];
                deleted[first] = Some(since);
                self.stage_deletes(&mut manifest, &mut new_segments, deleted)?;
            }
        }
        self.commit(manifest, new_segments)?;
        Ok(built.new.as_ref().map_or(0, |n| u64::from(n.entry.docs)))
    }

    /// The name of a new segment file, never given before.
    fn allocate_file(&mut self) -> String {
        let n = self.next_file.max(self.manifest.next_segment);
        self.next_file = n + 1;
        format!("seg-{n:08}.bmp")
    }

    /// Writes the new deletions files of the segments whose deletions changed (`deleted[s]` is
    /// `Some`) for the next generation, and records them in `manifest` and `segments`.
    fn stage_deletes(
        &self,
        manifest: &mut Manifest,
        segments: &mut [Arc<Segment>],
        deleted: Vec<Option<RoaringBitmap>>,
    ) -> Result<()> {
        let generation = manifest.generation + 1;
        for (s, set) in deleted.into_iter().enumerate() {
            let Some(set) = set else { continue };
            let entry = &mut manifest.segments[s];
            let name = format!("{}.del-{generation}", entry.file);
            write_deletes(&self.dir.join(&name), &set)?;
            entry.deleted = set.len();
            entry.deletes = Some(name);
            segments[s] = Arc::new(segments[s].with_deleted(set));
        }
        Ok(())
    }

    /// Makes `manifest` (the next generation) current, with `segments` as its open segments,
    /// then removes the files it no longer names.
    fn commit(&mut self, mut manifest: Manifest, segments: Vec<Arc<Segment>>) -> Result<()> {
        manifest.generation = self.manifest.generation + 1;
        manifest.write(&self.dir)?;
        self.manifest = manifest;
        self.segments = segments;
        // The new manifest is durable: what it does not name is garbage. A failure to remove it
        // is left to the next writer.
        let _ = self.remove_unnamed_files();
        Ok(())
    }

    /// Removes the segment and deletions files the manifest does not name, and stale temporary
    /// files.
    fn remove_unnamed_files(&self) -> Result<()> {
        let named: HashSet<&str> = self
            .manifest
            .segments
            .iter()
            .flat_map(|s| std::iter::once(s.file.as_str()).chain(s.deletes.as_deref()))
            .collect();
        let entries = fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            let ours = name.starts_with("seg-") || name.starts_with(".seg-");
            let building = self
                .building
                .iter()
                .any(|f| name == f || name.starts_with(&format!(".{f}.")));
            if ours && !named.contains(name) && !building {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(())
    }
}

/// A merge planned by [`CollectionDir::plan_merge`], to be built anywhere (no lock needed).
#[derive(Debug)]
pub struct PlannedMerge {
    dir: PathBuf,
    file: String,
    /// The segments merged, with their deletions as of the plan.
    segments: Vec<Arc<Segment>>,
    manifest: Manifest,
    quantizer: Quantizer,
}

impl PlannedMerge {
    /// Segments merged.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    /// Whether the merge takes no segment (never, for a planned one).
    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// Writes the merged segment: the live documents (as of the plan) of the segments merged,
    /// BP-reordered. Hand the result to [`CollectionDir::commit_merge`], failed or not.
    pub fn build(self, progress: Progress) -> std::result::Result<BuiltMerge, MergeError> {
        let new = live_documents(&self.segments).and_then(|live| match live.num_docs() {
            0 => Ok(None),
            _ => write_segment(
                &self.dir,
                self.file.clone(),
                &live,
                &self.manifest,
                self.quantizer,
                progress,
            )
            .map(Some),
        });
        match new {
            Ok(new) => Ok(BuiltMerge { plan: self, new }),
            Err(error) => Err(MergeError {
                file: self.file,
                error,
            }),
        }
    }
}

/// A merge written, not yet current.
#[derive(Debug)]
pub struct BuiltMerge {
    plan: PlannedMerge,
    new: Option<NewSegment>,
}

/// A merge whose build failed.
#[derive(Debug)]
pub struct MergeError {
    file: String,
    /// What failed.
    pub error: Error,
}

/// A segment written and opened, not yet in the manifest.
#[derive(Debug)]
struct NewSegment {
    file: String,
    path: PathBuf,
    entry: SegmentEntry,
    segment: Arc<Segment>,
    build: BuildSummary,
}

/// Builds `docs` (BP-reordered, with `quantizer` and the block sizes of `manifest`) into the
/// segment file `file` of `dir` and opens it; nothing is left on disk when either fails. The
/// manifest does not name it yet.
fn write_segment(
    dir: &Path,
    file: String,
    docs: &Collection,
    manifest: &Manifest,
    quantizer: Quantizer,
    progress: Progress,
) -> Result<NewSegment> {
    let path = dir.join(&file);
    let build = build_segment(docs, &path, manifest, quantizer, progress)?;
    let index = match Index::open(&path) {
        Ok(index) => index,
        Err(e) => {
            let _ = fs::remove_file(&path);
            return Err(e);
        }
    };
    Ok(NewSegment {
        entry: SegmentEntry {
            file: file.clone(),
            docs: docs.num_docs() as u32,
            deleted: 0,
            deletes: None,
        },
        segment: Arc::new(Segment::new(file.clone(), index, RoaringBitmap::new())),
        file,
        path,
        build,
    })
}

/// Takes the writer's lock of `dir`.
fn lock(dir: &Path) -> Result<File> {
    let path = dir.join(LOCK);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::io(&path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(Error::input(
            dir,
            "another writer has this collection open (its LOCK is held)",
        )),
        Err(fs::TryLockError::Error(e)) => Err(Error::io(&path, e)),
    }
}

/// Builds `docs` (BP-reordered) into the segment file `path` with `quantizer` and the block
/// sizes of `manifest`.
fn build_segment(
    docs: &Collection,
    path: &Path,
    manifest: &Manifest,
    quantizer: Quantizer,
    progress: Progress,
) -> Result<BuildSummary> {
    let order = bp_order_collection(docs, &BpOptions::default(), &|_, _| {});
    let options = BuildOptions {
        block_size: manifest.block_size,
        superblock_size: manifest.superblock_size,
        quantizer: Some(quantizer),
        // Collections of segments have no lexical field yet.
        lexical: None,
    };
    build_index_ordered(docs, &order, path, &options, progress)
}

/// The live documents of `segments`, in segment order then internal doc id order, with their
/// weights as stored (impact times scale, which quantize back to the same impacts).
fn live_documents(segments: &[Arc<Segment>]) -> Result<Collection> {
    let mut out = Collection::new();
    let mut entries: Vec<Vec<(u32, f32)>> = Vec::new();
    for seg in segments {
        let index = &seg.index;
        let quantizer = index.quantizer();
        let bs = index.block_size();
        entries.resize_with(bs as usize, Vec::new);
        // Segment term id to collection term id, interned when first met.
        let mut terms = vec![u32::MAX; index.num_terms() as usize];
        for block in 0..index.num_blocks() {
            for e in &mut entries {
                e.clear();
            }
            let fb = index.forward_block(block)?;
            for (term, pairs) in fb.iter() {
                let slot = terms
                    .get_mut(term as usize)
                    .ok_or_else(|| Error::corrupt(index.path(), format!("term {term}")))?;
                if *slot == u32::MAX {
                    *slot = out.intern_term(index.term(term)?);
                }
                for &[off, impact] in pairs {
                    if let Some(e) = entries.get_mut(usize::from(off)) {
                        e.push((*slot, quantizer.dequantize(impact)));
                    }
                }
            }
            let first = block * bs;
            let len = bs.min(index.num_docs() - first);
            for off in 0..len {
                let doc = first + off;
                if seg.deleted.contains(doc) {
                    continue;
                }
                out.add_document(index.doc_id(doc)?, &entries[off as usize])
                    .map_err(|e| Error::corrupt(index.path(), e))?;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
