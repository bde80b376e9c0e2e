//! CIFF v1 (Common Index File Format, <https://github.com/osirrc/ciff>) import and export.
//!
//! A CIFF file is a stream of varint-length-delimited protobuf messages: one [`Header`], then
//! `num_postings_lists` [`PostingsList`] messages, then `num_docs` [`DocRecord`] messages. Doc ids in
//! a postings list are d-gap encoded (the first is absolute, each later one is the difference to the
//! previous one) and run over `0..num_docs`; the doc records list those ids in order with the
//! collection's own document ids. Term frequencies are read as weights (learned-sparse exporters
//! store quantized impacts there).
//!
//! [`read_ciff_into`] streams a file into a [`Collection`]: CIFF is term-major and the collection is
//! document-major, so postings are kept in flat arrays while reading and transposed into documents
//! at the end. Any inconsistency in the file is an error naming the record (1-based message index:
//! the header is record 1). [`CiffWriter`] writes a file from any source of postings lists.

use std::collections::HashSet;
use std::io::{BufRead, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use prost::Message;

use crate::collection::Collection;
use crate::error::{Error, Result};
use crate::readers::open_maybe_gzip;

/// The largest single message accepted or written (2 GiB).
const MAX_MESSAGE_BYTES: u64 = 1 << 31;

/// The only CIFF version this module reads and writes.
const CIFF_VERSION: i32 = 1;

/// The CIFF header: the first message of a file.
#[derive(Clone, PartialEq, Message)]
pub struct Header {
    /// Format version; always 1.
    #[prost(int32, tag = "1")]
    pub version: i32,
    /// Number of postings lists that follow the header.
    #[prost(int32, tag = "2")]
    pub num_postings_lists: i32,
    /// Number of doc records that follow the postings lists.
    #[prost(int32, tag = "3")]
    pub num_docs: i32,
    /// Number of postings lists in the original index (informational).
    #[prost(int32, tag = "4")]
    pub total_postings_lists: i32,
    /// Number of documents in the original index (informational).
    #[prost(int32, tag = "5")]
    pub total_docs: i32,
    /// Number of term occurrences in the collection (informational).
    #[prost(int64, tag = "6")]
    pub total_terms_in_collection: i64,
    /// Average document length (informational).
    #[prost(double, tag = "7")]
    pub average_doclength: f64,
    /// Free-text description of the export.
    #[prost(string, tag = "8")]
    pub description: String,
}

/// One posting: a d-gap encoded doc id and a term frequency (or quantized impact).
#[derive(Clone, PartialEq, Message)]
pub struct Posting {
    /// The doc id for the first posting of a list, the gap to the previous doc id after that.
    #[prost(int32, tag = "1")]
    pub docid: i32,
    /// The term frequency or impact; positive.
    #[prost(int32, tag = "2")]
    pub tf: i32,
}

/// The postings of one term.
#[derive(Clone, PartialEq, Message)]
pub struct PostingsList {
    /// The term.
    #[prost(string, tag = "1")]
    pub term: String,
    /// Document frequency: the number of postings.
    #[prost(int64, tag = "2")]
    pub df: i64,
    /// Collection frequency: the sum of the term frequencies (not checked on import).
    #[prost(int64, tag = "3")]
    pub cf: i64,
    /// The postings, in increasing doc id order, d-gap encoded.
    #[prost(message, repeated, tag = "4")]
    pub postings: Vec<Posting>,
}

/// One document: its CIFF doc id, its id in the collection, and its length.
#[derive(Clone, PartialEq, Message)]
pub struct DocRecord {
    /// The CIFF doc id (the record's position among the doc records).
    #[prost(int32, tag = "1")]
    pub docid: i32,
    /// The document's external id.
    #[prost(string, tag = "2")]
    pub collection_docid: String,
    /// The document length (informational).
    #[prost(int32, tag = "3")]
    pub doclength: i32,
}

/// What [`read_ciff_into`] read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CiffSummary {
    /// Number of documents (doc records) read.
    pub num_docs: u64,
    /// Number of postings lists read.
    pub num_postings_lists: u64,
    /// Total number of postings read.
    pub num_postings: u64,
    /// The header's description.
    pub description: String,
}

/// Reads one byte, or `None` at end of input.
fn read_byte<R: BufRead>(reader: &mut R, path: &Path) -> Result<Option<u8>> {
    loop {
        let byte = match reader.fill_buf() {
            Ok(buf) => buf.first().copied(),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::io(path, e)),
        };
        if byte.is_some() {
            reader.consume(1);
        }
        return Ok(byte);
    }
}

/// Reads a varint length prefix; `None` at a clean end of input (before its first byte).
fn read_varint<R: BufRead>(reader: &mut R, path: &Path, record: u64) -> Result<Option<u64>> {
    let mut value = 0u64;
    for i in 0..10 {
        let Some(byte) = read_byte(reader, path)? else {
            if i == 0 {
                return Ok(None);
            }
            return Err(Error::parse(
                path,
                record,
                "file ends inside the length prefix of this message (truncated varint)",
            ));
        };
        if i == 9 && byte > 1 {
            return Err(Error::parse(
                path,
                record,
                "the length prefix of this message overflows 64 bits (invalid varint)",
            ));
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return Ok(Some(value));
        }
    }
    Err(Error::parse(path, record, "invalid varint length prefix"))
}

/// Reads the next length-delimited message into `buf`; `false` at a clean end of input.
///
/// The length is never trusted for an allocation: the buffer grows as bytes actually arrive.
fn read_message<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    path: &Path,
    record: u64,
) -> Result<bool> {
    let Some(len) = read_varint(reader, path, record)? else {
        return Ok(false);
    };
    if len > MAX_MESSAGE_BYTES {
        return Err(Error::parse(
            path,
            record,
            format!(
                "message length {len} bytes exceeds the limit of {MAX_MESSAGE_BYTES} bytes (2 GiB)"
            ),
        ));
    }
    buf.clear();
    let got = reader
        .by_ref()
        .take(len)
        .read_to_end(buf)
        .map_err(|e| Error::io(path, e))?;
    if (got as u64) < len {
        return Err(Error::parse(
            path,
            record,
            format!("file ends after {got} of the {len} bytes of this message (truncated)"),
        ));
    }
    Ok(true)
}

/// Decodes a message of type `M`, naming `what` in the error.
fn decode<M: Message + Default>(buf: &[u8], path: &Path, record: u64, what: &str) -> Result<M> {
    M::decode(buf).map_err(|e| Error::parse(path, record, format!("invalid {what} message: {e}")))
}

/// Checks that a header count is not negative and returns it.
fn count(value: i64, name: &str, path: &Path) -> Result<u64> {
    u64::try_from(value)
        .map_err(|_| Error::parse(path, 1, format!("header: {name} is negative ({value})")))
}

/// Reads a CIFF v1 stream into `collection` and returns what was read.
///
/// `reader` must already be decompressed (see [`crate::readers::wrap_maybe_gzip`], or use
/// [`read_ciff_file`]); `path` names the input in error messages. Documents are added in CIFF doc id
/// order with their `collection_docid` as external id and each term frequency as the weight. Memory
/// grows with the postings and ids actually read, never with counts claimed by the file.
///
/// Every inconsistency is an error: a version other than 1, negative counts, fewer postings lists
/// or doc records than the header announces, data after the last doc record, a `df` that differs
/// from the number of postings, doc ids that are negative, not increasing or not below `num_docs`,
/// a tf below 1, doc records out of order, a term with two postings lists, truncated or invalid
/// messages, invalid UTF-8, and documents the collection refuses (such as a duplicate
/// `collection_docid`). A `cf` that differs from the sum of the tfs is ignored. After an error the
/// collection may hold some of the file's terms and documents.
pub fn read_ciff_into<R: BufRead>(
    mut reader: R,
    path: &Path,
    collection: &mut Collection,
) -> Result<CiffSummary> {
    let mut buf = Vec::new();
    if !read_message(&mut reader, &mut buf, path, 1)? {
        return Err(Error::input(path, "empty file: no CIFF header"));
    }
    let header: Header = decode(&buf, path, 1, "header")?;
    if header.version != CIFF_VERSION {
        return Err(Error::parse(
            path,
            1,
            format!(
                "CIFF version {}: only version {CIFF_VERSION} is supported",
                header.version
            ),
        ));
    }
    let num_lists = count(header.num_postings_lists.into(), "num_postings_lists", path)?;
    let num_docs = count(header.num_docs.into(), "num_docs", path)?;
    count(
        header.total_postings_lists.into(),
        "total_postings_lists",
        path,
    )?;
    count(header.total_docs.into(), "total_docs", path)?;
    count(
        header.total_terms_in_collection,
        "total_terms_in_collection",
        path,
    )?;

    // Term-major postings, in file order: CIFF doc id, term id, weight.
    let mut post_docs: Vec<u32> = Vec::new();
    let mut post_entries: Vec<(u32, f32)> = Vec::new();
    // For each term id of the collection, the record of its postings list in this file (0: none).
    let mut term_record: Vec<u64> = Vec::new();
    for i in 0..num_lists {
        let record = 2 + i;
        if !read_message(&mut reader, &mut buf, path, record)? {
            return Err(Error::input(
                path,
                format!("truncated: header says {num_lists} postings lists, file ends after {i}"),
            ));
        }
        let list: PostingsList = decode(&buf, path, record, "postings list")?;
        let term = list.term.as_str();
        if usize::try_from(list.df).ok() != Some(list.postings.len()) {
            return Err(Error::parse(
                path,
                record,
                format!(
                    "term {term:?}: df is {} but the list has {} postings",
                    list.df,
                    list.postings.len()
                ),
            ));
        }
        let term_id = collection.intern_term(term);
        let slot = term_id as usize;
        if term_record.len() <= slot {
            term_record.resize(slot + 1, 0);
        }
        if term_record[slot] != 0 {
            return Err(Error::parse(
                path,
                record,
                format!(
                    "term {term:?} has a second postings list (the first is record {})",
                    term_record[slot]
                ),
            ));
        }
        term_record[slot] = record;
        let mut prev: i64 = -1;
        for (k, posting) in list.postings.iter().enumerate() {
            let n = k + 1;
            let gap = i64::from(posting.docid);
            let doc = if k == 0 { gap } else { prev + gap };
            if doc < 0 {
                return Err(Error::parse(
                    path,
                    record,
                    format!("term {term:?}, posting {n}: doc id {doc} is negative"),
                ));
            }
            if k > 0 && gap <= 0 {
                return Err(Error::parse(
                    path,
                    record,
                    format!(
                        "term {term:?}, posting {n}: doc id gap {gap} after doc id {prev} \
                         (doc ids must be strictly increasing)"
                    ),
                ));
            }
            if doc as u64 >= num_docs {
                return Err(Error::parse(
                    path,
                    record,
                    format!(
                        "term {term:?}, posting {n}: doc id {doc} out of range \
                         (the header says {num_docs} docs)"
                    ),
                ));
            }
            if posting.tf <= 0 {
                return Err(Error::parse(
                    path,
                    record,
                    format!(
                        "term {term:?}, posting {n} (doc id {doc}): tf {} (must be at least 1)",
                        posting.tf
                    ),
                ));
            }
            prev = doc;
            // `doc < num_docs <= i32::MAX`, so it fits.
            post_docs.push(doc as u32);
            post_entries.push((term_id, posting.tf as f32));
        }
    }

    // Doc records: external ids, kept in a flat buffer until the postings are transposed.
    let mut id_bytes: Vec<u8> = Vec::new();
    let mut id_ends: Vec<usize> = Vec::new();
    for j in 0..num_docs {
        let record = 2 + num_lists + j;
        if !read_message(&mut reader, &mut buf, path, record)? {
            return Err(Error::input(
                path,
                format!("truncated: header says {num_docs} doc records, file ends after {j}"),
            ));
        }
        let doc: DocRecord = decode(&buf, path, record, "doc record")?;
        if i64::from(doc.docid) != j as i64 {
            return Err(Error::parse(
                path,
                record,
                format!(
                    "doc record {:?} has doc id {}, expected {j} (doc records must list doc ids \
                     0..{num_docs} in order)",
                    doc.collection_docid, doc.docid
                ),
            ));
        }
        if doc.doclength < 0 {
            return Err(Error::parse(
                path,
                record,
                format!(
                    "doc record {:?}: doclength is negative ({})",
                    doc.collection_docid, doc.doclength
                ),
            ));
        }
        id_bytes.extend_from_slice(doc.collection_docid.as_bytes());
        id_ends.push(id_bytes.len());
    }
    if read_byte(&mut reader, path)?.is_some() {
        return Err(Error::input(
            path,
            format!(
                "unexpected data after the last of the {num_docs} doc records the header announces \
                 (where record {} would start)",
                2 + num_lists + num_docs
            ),
        ));
    }

    // Transpose: counting sort of the postings by doc id. `ends[d]` ends up as the end of doc d.
    let mut ends = vec![0usize; id_ends.len()];
    for &d in &post_docs {
        ends[d as usize] += 1;
    }
    let mut start = 0usize;
    for slot in ends.iter_mut() {
        let c = *slot;
        *slot = start;
        start += c;
    }
    let mut by_doc = vec![(0u32, 0f32); post_entries.len()];
    for (&d, &entry) in post_docs.iter().zip(&post_entries) {
        let at = &mut ends[d as usize];
        by_doc[*at] = entry;
        *at += 1;
    }
    drop(post_docs);
    drop(post_entries);

    let mut doc_start = 0usize;
    let mut id_start = 0usize;
    for (j, (&doc_end, &id_end)) in ends.iter().zip(&id_ends).enumerate() {
        // Each id was appended whole from a `String`, so the range is valid UTF-8.
        let id = std::str::from_utf8(&id_bytes[id_start..id_end]).unwrap_or_default();
        collection
            .add_document(id, &by_doc[doc_start..doc_end])
            .map_err(|m| Error::parse(path, 2 + num_lists + j as u64, m))?;
        doc_start = doc_end;
        id_start = id_end;
    }

    Ok(CiffSummary {
        num_docs,
        num_postings_lists: num_lists,
        num_postings: by_doc.len() as u64,
        description: header.description,
    })
}

/// Opens `path` (gzip or not) and reads it with [`read_ciff_into`].
pub fn read_ciff_file(path: &Path, collection: &mut Collection) -> Result<CiffSummary> {
    let reader = open_maybe_gzip(path)?;
    read_ciff_into(reader, path, collection)
}

/// Converts a count to the `i32` CIFF stores, or says which count is too large.
fn to_i32(value: u64, what: &str) -> Result<i32> {
    i32::try_from(value).map_err(|_| {
        Error::Invalid(format!(
            "CIFF export: {what} is {value}, more than CIFF's limit of {}",
            i32::MAX
        ))
    })
}

/// Writes a CIFF v1 stream: the header on creation, then postings lists, then doc records.
///
/// Independent of any index type: the caller announces the counts, then writes exactly that many
/// postings lists (any term order, each term once) and then that many doc records (doc ids
/// `0..num_docs` in order). Misuse is an [`Error::Invalid`]; write failures are [`Error::Io`] on the
/// path given to [`CiffWriter::new`]. Wrap the output in a gzip encoder for a `.ciff.gz` file.
pub struct CiffWriter<W: Write> {
    out: W,
    path: PathBuf,
    num_postings_lists: u64,
    num_docs: u64,
    lists_written: u64,
    docs_written: u64,
    terms: HashSet<String>,
    postings: Vec<Posting>,
    buf: Vec<u8>,
}

impl<W: Write> CiffWriter<W> {
    /// Writes the header and returns a writer for the announced numbers of lists and docs.
    ///
    /// `path` names the output in error messages. `total_postings_lists` and `total_docs` are set
    /// to the announced counts and `average_doclength` to `total_terms_in_collection / num_docs`
    /// (0 without docs). Counts must fit CIFF's `i32` fields.
    pub fn new(
        out: W,
        path: &Path,
        num_postings_lists: u64,
        num_docs: u64,
        total_terms_in_collection: u64,
        description: &str,
    ) -> Result<Self> {
        let lists = to_i32(num_postings_lists, "the number of postings lists")?;
        let docs = to_i32(num_docs, "the number of documents")?;
        let total_terms = i64::try_from(total_terms_in_collection).map_err(|_| {
            Error::Invalid(format!(
                "CIFF export: total_terms_in_collection {total_terms_in_collection} does not fit \
                 in 64 signed bits"
            ))
        })?;
        let average_doclength = if num_docs == 0 {
            0.0
        } else {
            total_terms_in_collection as f64 / num_docs as f64
        };
        let header = Header {
            version: CIFF_VERSION,
            num_postings_lists: lists,
            num_docs: docs,
            total_postings_lists: lists,
            total_docs: docs,
            total_terms_in_collection: total_terms,
            average_doclength,
            description: description.to_owned(),
        };
        let mut writer = CiffWriter {
            out,
            path: path.to_owned(),
            num_postings_lists,
            num_docs,
            lists_written: 0,
            docs_written: 0,
            terms: HashSet::new(),
            postings: Vec::new(),
            buf: Vec::new(),
        };
        writer.write_message(&header, "header")?;
        Ok(writer)
    }

    /// Encodes `message` with its length prefix and writes it.
    fn write_message<M: Message>(&mut self, message: &M, what: &str) -> Result<()> {
        let len = message.encoded_len() as u64;
        if len > MAX_MESSAGE_BYTES {
            return Err(Error::Invalid(format!(
                "CIFF export: the {what} would take {len} bytes, more than the 2 GiB limit"
            )));
        }
        self.buf.clear();
        message
            .encode_length_delimited(&mut self.buf)
            .map_err(|e| Error::Invalid(format!("CIFF export: cannot encode the {what}: {e}")))?;
        self.out
            .write_all(&self.buf)
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Writes the postings list of `term`: doc ids `docs` (strictly increasing, below `num_docs`)
    /// with term frequencies `tfs` (each at least 1, at most `i32::MAX`).
    ///
    /// Lists come before all doc records, each term once, at most the announced number of them.
    pub fn write_postings_list(&mut self, term: &str, docs: &[u32], tfs: &[u32]) -> Result<()> {
        if self.lists_written >= self.num_postings_lists {
            return Err(Error::Invalid(format!(
                "CIFF export: more postings lists than the {} announced",
                self.num_postings_lists
            )));
        }
        if self.docs_written > 0 {
            return Err(Error::Invalid(
                "CIFF export: postings lists must come before the doc records".into(),
            ));
        }
        if docs.len() != tfs.len() {
            return Err(Error::Invalid(format!(
                "CIFF export: term {term:?} has {} doc ids but {} tfs",
                docs.len(),
                tfs.len()
            )));
        }
        if self.terms.contains(term) {
            return Err(Error::Invalid(format!(
                "CIFF export: term {term:?} was already written"
            )));
        }
        let mut postings = std::mem::take(&mut self.postings);
        postings.clear();
        let mut cf: i64 = 0;
        let mut prev: Option<u32> = None;
        for (&doc, &tf) in docs.iter().zip(tfs) {
            if u64::from(doc) >= self.num_docs {
                self.postings = postings;
                return Err(Error::Invalid(format!(
                    "CIFF export: term {term:?}: doc id {doc} out of range ({} docs announced)",
                    self.num_docs
                )));
            }
            let gap = match prev {
                Some(p) if doc <= p => {
                    self.postings = postings;
                    return Err(Error::Invalid(format!(
                        "CIFF export: term {term:?}: doc id {doc} after {p} \
                         (doc ids must be strictly increasing)"
                    )));
                }
                Some(p) => doc - p,
                None => doc,
            };
            let tf_i32 = match i32::try_from(tf) {
                Ok(t) if t >= 1 => t,
                _ => {
                    self.postings = postings;
                    return Err(Error::Invalid(format!(
                        "CIFF export: term {term:?}, doc id {doc}: tf {tf} (must be 1..={})",
                        i32::MAX
                    )));
                }
            };
            cf = cf.saturating_add(i64::from(tf));
            prev = Some(doc);
            // `doc < num_docs <= i32::MAX`, so the gap fits.
            postings.push(Posting {
                docid: gap as i32,
                tf: tf_i32,
            });
        }
        let list = PostingsList {
            term: term.to_owned(),
            df: postings.len() as i64,
            cf,
            postings,
        };
        let result = self.write_message(&list, "postings list");
        self.postings = list.postings;
        result?;
        self.terms.insert(list.term);
        self.lists_written += 1;
        Ok(())
    }

    /// Writes the doc record of CIFF doc id `docid` (which must be the next one, `0..num_docs`),
    /// with its external id and length. All postings lists must have been written before.
    pub fn write_doc_record(
        &mut self,
        docid: u32,
        collection_docid: &str,
        doclength: u32,
    ) -> Result<()> {
        if self.lists_written != self.num_postings_lists {
            return Err(Error::Invalid(format!(
                "CIFF export: doc record before all postings lists ({} of {} written)",
                self.lists_written, self.num_postings_lists
            )));
        }
        if self.docs_written >= self.num_docs {
            return Err(Error::Invalid(format!(
                "CIFF export: more doc records than the {} announced",
                self.num_docs
            )));
        }
        if u64::from(docid) != self.docs_written {
            return Err(Error::Invalid(format!(
                "CIFF export: doc record with doc id {docid}, expected {} (doc ids in order)",
                self.docs_written
            )));
        }
        let record = DocRecord {
            docid: to_i32(u64::from(docid), "the doc id")?,
            collection_docid: collection_docid.to_owned(),
            doclength: to_i32(u64::from(doclength), "the doc length")?,
        };
        self.write_message(&record, "doc record")?;
        self.docs_written += 1;
        Ok(())
    }

    /// Checks that exactly the announced numbers of postings lists and doc records were written,
    /// flushes, and returns the output.
    pub fn finish(mut self) -> Result<W> {
        if self.lists_written != self.num_postings_lists || self.docs_written != self.num_docs {
            return Err(Error::Invalid(format!(
                "CIFF export: wrote {} of {} postings lists and {} of {} doc records",
                self.lists_written, self.num_postings_lists, self.docs_written, self.num_docs
            )));
        }
        self.out.flush().map_err(|e| Error::io(&self.path, e))?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readers::wrap_maybe_gzip;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::io::Cursor;

    const TOY: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/ciff-toy/toy-complete-20200309.ciff.gz"
    );

    fn path() -> &'static Path {
        Path::new("test.ciff")
    }

    fn header(num_postings_lists: i32, num_docs: i32) -> Header {
        Header {
            version: 1,
            num_postings_lists,
            num_docs,
            total_postings_lists: num_postings_lists,
            total_docs: num_docs,
            total_terms_in_collection: 0,
            average_doclength: 0.0,
            description: "test".into(),
        }
    }

    fn list(term: &str, df: i64, postings: &[(i32, i32)]) -> PostingsList {
        PostingsList {
            term: term.into(),
            df,
            cf: 0,
            postings: postings
                .iter()
                .map(|&(docid, tf)| Posting { docid, tf })
                .collect(),
        }
    }

    fn doc(docid: i32, id: &str) -> DocRecord {
        DocRecord {
            docid,
            collection_docid: id.into(),
            doclength: 1,
        }
    }

    fn push<M: Message>(out: &mut Vec<u8>, m: &M) {
        m.encode_length_delimited(out).unwrap();
    }

    /// A valid file: 2 lists, 3 docs.
    fn good_parts() -> (Header, Vec<PostingsList>, Vec<DocRecord>) {
        (
            header(2, 3),
            vec![list("a", 2, &[(0, 1), (2, 3)]), list("b", 1, &[(1, 2)])],
            vec![doc(0, "x"), doc(1, "y"), doc(2, "z")],
        )
    }

    fn encode(h: &Header, lists: &[PostingsList], docs: &[DocRecord]) -> Vec<u8> {
        let mut out = Vec::new();
        push(&mut out, h);
        for l in lists {
            push(&mut out, l);
        }
        for d in docs {
            push(&mut out, d);
        }
        out
    }

    fn read(bytes: &[u8]) -> Result<(Collection, CiffSummary)> {
        let mut c = Collection::new();
        let s = read_ciff_into(Cursor::new(bytes), path(), &mut c)?;
        Ok((c, s))
    }

    /// Reads `bytes`, expects a parse error at `record` whose message contains `needle`.
    fn parse_err(bytes: &[u8], record: u64, needle: &str) {
        match read(bytes) {
            Err(Error::Parse { line, message, .. }) => {
                assert_eq!(line, record, "{message}");
                assert!(message.contains(needle), "{message:?} lacks {needle:?}");
            }
            Err(e) => panic!("expected a parse error, got {e}"),
            Ok(_) => panic!("expected a parse error, got success"),
        }
    }

    fn input_err(bytes: &[u8], needle: &str) {
        match read(bytes) {
            Err(Error::Input { message, .. }) => {
                assert!(message.contains(needle), "{message:?} lacks {needle:?}")
            }
            Err(e) => panic!("expected an input error, got {e}"),
            Ok(_) => panic!("expected an input error, got success"),
        }
    }

    /// Documents as (external id, sorted (term, weight)).
    fn docs_of(c: &Collection) -> Vec<(String, Vec<(String, f32)>)> {
        (0..c.num_docs())
            .map(|i| {
                let (terms, weights) = c.doc(i);
                let mut e: Vec<(String, f32)> = terms
                    .iter()
                    .zip(weights)
                    .map(|(&t, &w)| (c.term(t).to_owned(), w))
                    .collect();
                e.sort_by(|a, b| a.0.cmp(&b.0));
                (c.doc_id(i).to_owned(), e)
            })
            .collect()
    }

    #[test]
    fn reads_a_valid_file() {
        let (h, l, d) = good_parts();
        let (c, s) = read(&encode(&h, &l, &d)).unwrap();
        assert_eq!(
            s,
            CiffSummary {
                num_docs: 3,
                num_postings_lists: 2,
                num_postings: 3,
                description: "test".into()
            }
        );
        assert_eq!(
            docs_of(&c),
            vec![
                ("x".into(), vec![("a".into(), 1.0)]),
                ("y".into(), vec![("b".into(), 2.0)]),
                ("z".into(), vec![("a".into(), 3.0)]),
            ]
        );
    }

    #[test]
    fn toy_file() {
        let p = Path::new(TOY);
        if !p.exists() {
            eprintln!("skipping: {TOY} is missing");
            return;
        }
        let mut c = Collection::new();
        let s = read_ciff_file(p, &mut c).unwrap();
        eprintln!("{s:?}");
        let docs = docs_of(&c);
        for d in &docs {
            eprintln!("{d:?}");
        }
        assert_eq!(s.num_docs, 3);
        assert_eq!(s.num_postings_lists, 9);
        assert_eq!(s.num_postings, 14);
        assert_eq!(
            s.description,
            "Export of toy 3-document collection from Anserini's \
             io.anserini.integration.TrecEndToEndTest test case"
        );
        assert_eq!(c.num_terms(), 9);
        let e = |v: &[(&str, f32)]| -> Vec<(String, f32)> {
            v.iter().map(|&(t, w)| (t.to_owned(), w)).collect()
        };
        assert_eq!(
            docs,
            vec![
                (
                    "WSJ_1".to_owned(),
                    e(&[
                        ("01", 1.0),
                        ("03", 1.0),
                        ("30", 1.0),
                        ("content", 1.0),
                        ("head", 1.0),
                        ("text", 1.0)
                    ])
                ),
                (
                    "TREC_DOC_1".to_owned(),
                    e(&[("head", 1.0), ("simpl", 1.0), ("text", 1.0), ("veri", 1.0)])
                ),
                (
                    "DOC222".to_owned(),
                    e(&[
                        ("enough", 1.0),
                        ("head", 1.0),
                        ("simpl", 1.0),
                        ("text", 3.0)
                    ])
                ),
            ]
        );
    }

    #[test]
    fn gzip_input() {
        let (h, l, d) = good_parts();
        let plain = encode(&h, &l, &d);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let reader = wrap_maybe_gzip(Box::new(Cursor::new(gz.clone())), path()).unwrap();
        let mut c = Collection::new();
        let s = read_ciff_into(reader, path(), &mut c).unwrap();
        assert_eq!(s.num_postings, 3);
        let (expected, _) = read(&plain).unwrap();
        assert_eq!(docs_of(&c), docs_of(&expected));
        // From a file too.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("x.ciff.gz");
        std::fs::write(&file, &gz).unwrap();
        let mut c = Collection::new();
        read_ciff_file(&file, &mut c).unwrap();
        assert_eq!(docs_of(&c), docs_of(&expected));
    }

    #[test]
    fn cf_mismatch_is_ignored() {
        let (h, mut l, d) = good_parts();
        l[0].cf = 12345;
        l[1].cf = 0;
        read(&encode(&h, &l, &d)).unwrap();
    }

    #[test]
    fn empty_file() {
        input_err(&[], "empty file");
    }

    #[test]
    fn wrong_version() {
        let (mut h, l, d) = good_parts();
        h.version = 2;
        parse_err(&encode(&h, &l, &d), 1, "CIFF version 2");
    }

    #[test]
    fn negative_counts() {
        let (h, l, d) = good_parts();
        let mut h1 = h.clone();
        h1.num_docs = -1;
        parse_err(&encode(&h1, &l, &d), 1, "num_docs is negative");
        let mut h2 = h.clone();
        h2.num_postings_lists = -3;
        parse_err(&encode(&h2, &l, &d), 1, "num_postings_lists is negative");
        let mut h3 = h;
        h3.total_terms_in_collection = -3;
        parse_err(&encode(&h3, &l, &d), 1, "total_terms_in_collection");
        let mut bad = d.clone();
        bad[1].doclength = -1;
        let (h, l, _) = good_parts();
        parse_err(&encode(&h, &l, &bad), 5, "doclength is negative");
    }

    #[test]
    fn fewer_postings_lists_than_announced() {
        let (_, l, _) = good_parts();
        input_err(
            &encode(&header(3, 0), &l[..0], &[]),
            "header says 3 postings lists, file ends after 0",
        );
        let h = header(3, 3);
        input_err(
            &encode(&h, &l, &[]),
            "header says 3 postings lists, file ends after 2",
        );
    }

    #[test]
    fn fewer_doc_records_than_announced() {
        let (_, l, d) = good_parts();
        input_err(
            &encode(&header(2, 5), &l, &d),
            "header says 5 doc records, file ends after 3",
        );
    }

    #[test]
    fn trailing_data() {
        let (h, l, mut d) = good_parts();
        d.push(doc(3, "w"));
        input_err(
            &encode(&h, &l, &d),
            "unexpected data after the last of the 3",
        );
        let (h, l, d) = good_parts();
        let mut bytes = encode(&h, &l, &d);
        bytes.push(0);
        input_err(&bytes, "record 7 would start");
    }

    #[test]
    fn df_mismatch() {
        let (h, mut l, d) = good_parts();
        l[0].df = 3;
        parse_err(
            &encode(&h, &l, &d),
            2,
            "df is 3 but the list has 2 postings",
        );
        l[0].df = -2;
        parse_err(&encode(&h, &l, &d), 2, "df is -2");
    }

    #[test]
    fn negative_doc_ids() {
        let (h, mut l, d) = good_parts();
        l[1] = list("b", 1, &[(-1, 2)]);
        parse_err(&encode(&h, &l, &d), 3, "doc id -1 is negative");
        l[1] = list("b", 2, &[(1, 2), (-2, 2)]);
        parse_err(&encode(&h, &l, &d), 3, "doc id -1 is negative");
    }

    #[test]
    fn non_increasing_doc_ids() {
        let (h, mut l, d) = good_parts();
        l[0] = list("a", 2, &[(1, 1), (0, 3)]);
        parse_err(&encode(&h, &l, &d), 2, "strictly increasing");
        l[0] = list("a", 3, &[(1, 1), (1, 3), (-1, 1)]);
        parse_err(&encode(&h, &l, &d), 2, "posting 3: doc id gap -1");
    }

    #[test]
    fn doc_id_out_of_range() {
        let (h, mut l, d) = good_parts();
        l[0] = list("a", 2, &[(0, 1), (3, 3)]);
        parse_err(&encode(&h, &l, &d), 2, "doc id 3 out of range");
        l[0] = list("a", 2, &[(0, 1), (i32::MAX, 3)]);
        parse_err(&encode(&h, &l, &d), 2, "out of range");
    }

    #[test]
    fn non_positive_tf() {
        let (h, mut l, d) = good_parts();
        l[1] = list("b", 1, &[(1, 0)]);
        parse_err(&encode(&h, &l, &d), 3, "tf 0");
        l[1] = list("b", 1, &[(1, -4)]);
        parse_err(&encode(&h, &l, &d), 3, "tf -4");
    }

    #[test]
    fn doc_records_out_of_order() {
        let (h, l, _) = good_parts();
        let d = vec![doc(0, "x"), doc(2, "z"), doc(1, "y")];
        parse_err(&encode(&h, &l, &d), 5, "has doc id 2, expected 1");
    }

    #[test]
    fn term_with_two_lists() {
        let (_, mut l, d) = good_parts();
        l.push(list("a", 1, &[(1, 1)]));
        parse_err(
            &encode(&header(3, 3), &l, &d),
            4,
            "\"a\" has a second postings list (the first is record 2)",
        );
    }

    #[test]
    fn duplicate_collection_docid() {
        let (h, l, _) = good_parts();
        let d = vec![doc(0, "x"), doc(1, "y"), doc(2, "x")];
        parse_err(&encode(&h, &l, &d), 6, "duplicate document id");
    }

    #[test]
    fn truncated_message() {
        let (h, l, d) = good_parts();
        let bytes = encode(&h, &l, &d);
        // Cut in the middle of the second postings list (record 3).
        let mut start = Vec::new();
        push(&mut start, &h);
        push(&mut start, &l[0]);
        let cut = start.len() + 3;
        parse_err(&bytes[..cut], 3, "(truncated)");
        // Cut in the middle of the header.
        parse_err(&bytes[..5], 1, "file ends after 4 of the");
    }

    #[test]
    fn truncated_or_invalid_varint() {
        let (h, l, d) = good_parts();
        let mut b2 = encode(&h, &l, &d[..2]);
        b2.push(0x80);
        parse_err(&b2, 6, "truncated varint");
        parse_err(&[0xff; 11], 1, "overflows");
        parse_err(&[0x80; 5], 1, "truncated varint");
        let mut over = vec![0xff; 9];
        over.push(0x7f);
        parse_err(&over, 1, "overflows");
    }

    #[test]
    fn oversized_length_is_refused_without_allocating() {
        let mut bytes = Vec::new();
        prost::encoding::encode_varint(3 << 30, &mut bytes);
        bytes.extend_from_slice(&[1, 2, 3]);
        parse_err(&bytes, 1, "exceeds the limit");
        // A large but allowed length with few bytes behind it is simply truncated.
        let mut bytes = Vec::new();
        prost::encoding::encode_varint(1 << 31, &mut bytes);
        bytes.extend_from_slice(&[1, 2, 3]);
        parse_err(&bytes, 1, "file ends after 3 of the 2147483648 bytes");
    }

    #[test]
    fn invalid_protobuf() {
        // Wire type 7 does not exist.
        let mut bytes = Vec::new();
        prost::encoding::encode_varint(2, &mut bytes);
        bytes.extend_from_slice(&[0x0f, 0x01]);
        parse_err(&bytes, 1, "invalid header message");
        // A postings list whose postings field claims more bytes than the message has.
        let (h, _, _) = good_parts();
        let mut bytes = Vec::new();
        push(&mut bytes, &h);
        let body = [0x0a, 0x01, b'a', 0x22, 0x09, 0x08];
        prost::encoding::encode_varint(body.len() as u64, &mut bytes);
        bytes.extend_from_slice(&body);
        parse_err(&bytes, 2, "invalid postings list message");
    }

    #[test]
    fn invalid_utf8() {
        let (h, _, _) = good_parts();
        let mut bytes = Vec::new();
        push(&mut bytes, &h);
        // term = "\xff\xfe"
        let body = [0x0a, 0x02, 0xff, 0xfe];
        prost::encoding::encode_varint(body.len() as u64, &mut bytes);
        bytes.extend_from_slice(&body);
        parse_err(&bytes, 2, "invalid postings list message");
        // The same in a doc record's collection_docid.
        let mut bytes = encode(&header(0, 1), &[], &[]);
        let body = [0x12, 0x01, 0xc3];
        prost::encoding::encode_varint(body.len() as u64, &mut bytes);
        bytes.extend_from_slice(&body);
        parse_err(&bytes, 2, "invalid doc record message");
    }

    #[test]
    fn empty_lists_and_docs_are_fine() {
        let bytes = encode(
            &header(1, 2),
            &[list("lonely", 0, &[])],
            &[doc(0, "a"), doc(1, "b")],
        );
        let (c, s) = read(&bytes).unwrap();
        assert_eq!(s.num_postings, 0);
        assert_eq!(c.num_docs(), 2);
        assert_eq!(c.doc(1).0.len(), 0);
        let (c, s) = read(&encode(&header(0, 0), &[], &[])).unwrap();
        assert_eq!((s.num_docs, c.num_docs()), (0, 0));
    }

    fn writer(lists: u64, docs: u64) -> CiffWriter<Vec<u8>> {
        CiffWriter::new(Vec::new(), path(), lists, docs, 10, "w").unwrap()
    }

    fn invalid<T>(r: Result<T>, needle: &str) {
        match r {
            Err(Error::Invalid(m)) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
            Err(e) => panic!("expected Invalid, got {e}"),
            Ok(_) => panic!("expected Invalid, got success"),
        }
    }

    #[test]
    fn writer_header() {
        let w = writer(0, 4);
        let bytes = w.finish();
        invalid(bytes, "0 of 4 doc records");
        let mut w = writer(0, 4);
        for i in 0..4 {
            w.write_doc_record(i, &format!("d{i}"), 3).unwrap();
        }
        let bytes = w.finish().unwrap();
        let h = Header::decode_length_delimited(&bytes[..]).unwrap();
        assert_eq!(h.version, 1);
        assert_eq!((h.num_postings_lists, h.num_docs), (0, 4));
        assert_eq!((h.total_postings_lists, h.total_docs), (0, 4));
        assert_eq!(h.total_terms_in_collection, 10);
        assert_eq!(h.average_doclength, 2.5);
        assert_eq!(h.description, "w");
        let h0 = CiffWriter::new(Vec::new(), path(), 0, 0, 0, "").unwrap();
        let bytes = h0.finish().unwrap();
        let h = Header::decode_length_delimited(&bytes[..]).unwrap();
        assert_eq!(h.average_doclength, 0.0);
        invalid(
            CiffWriter::new(Vec::new(), path(), 1 << 31, 0, 0, ""),
            "postings lists",
        );
        invalid(
            CiffWriter::new(Vec::new(), path(), 0, 1 << 31, 0, ""),
            "documents",
        );
        invalid(
            CiffWriter::new(Vec::new(), path(), 0, 0, u64::MAX, ""),
            "total_terms",
        );
    }

    #[test]
    fn writer_misuse() {
        let mut w = writer(2, 3);
        invalid(w.write_doc_record(0, "x", 1), "before all postings lists");
        invalid(
            w.write_postings_list("a", &[0, 1], &[1]),
            "2 doc ids but 1 tfs",
        );
        invalid(
            w.write_postings_list("a", &[1, 1], &[1, 1]),
            "strictly increasing",
        );
        invalid(
            w.write_postings_list("a", &[2, 1], &[1, 1]),
            "strictly increasing",
        );
        invalid(w.write_postings_list("a", &[3], &[1]), "out of range");
        invalid(w.write_postings_list("a", &[0], &[0]), "tf 0");
        invalid(
            w.write_postings_list("a", &[0], &[u32::MAX]),
            "tf 4294967295",
        );
        w.write_postings_list("a", &[0, 2], &[1, 2]).unwrap();
        invalid(w.write_postings_list("a", &[1], &[1]), "already written");
        w.write_postings_list("b", &[1], &[7]).unwrap();
        invalid(
            w.write_postings_list("c", &[1], &[7]),
            "more postings lists",
        );
        invalid(w.write_doc_record(1, "x", 1), "expected 0");
        w.write_doc_record(0, "x", 1).unwrap();
        invalid(
            w.write_doc_record(1, "y", u32::MAX),
            "the doc length is 4294967295",
        );
        w.write_doc_record(1, "y", 7).unwrap();
        w.write_doc_record(2, "z", 2).unwrap();
        invalid(w.write_doc_record(3, "w", 1), "more doc records");
        let bytes = w.finish().unwrap();
        let (c, s) = read(&bytes).unwrap();
        assert_eq!(s.num_postings, 3);
        assert_eq!(
            docs_of(&c),
            vec![
                ("x".into(), vec![("a".into(), 1.0)]),
                ("y".into(), vec![("b".into(), 7.0)]),
                ("z".into(), vec![("a".into(), 2.0)]),
            ]
        );
        // The written list is d-gap encoded with df and cf.
        let mut rest = &bytes[..];
        Header::decode_length_delimited(&mut rest).unwrap();
        let a = PostingsList::decode_length_delimited(&mut rest).unwrap();
        assert_eq!(a, list("a", 2, &[(0, 1), (2, 2)]).with_cf(3));
    }

    impl PostingsList {
        fn with_cf(mut self, cf: i64) -> Self {
            self.cf = cf;
            self
        }
    }

    #[test]
    fn writer_io_error() {
        struct Failing;
        impl Write for Failing {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("disk full"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        match CiffWriter::new(Failing, Path::new("out.ciff"), 0, 0, 0, "") {
            Err(Error::Io { path, .. }) => assert_eq!(path, Path::new("out.ciff")),
            Err(e) => panic!("expected Io, got {e}"),
            Ok(_) => panic!("expected Io, got success"),
        }
    }

    /// A random small collection: external ids, and per doc a map term -> tf.
    fn collection_strategy() -> impl Strategy<Value = Vec<(String, BTreeMap<String, u32>)>> {
        let term = prop::sample::select(vec![
            "a", "b", "c", "dd", "ée", "##x", "1", "zzz", "", "日本",
        ]);
        let doc = (
            "[a-zA-Z0-9_é-]{0,6}",
            prop::collection::btree_map(term.prop_map(str::to_owned), 1u32..=255, 0..8),
        );
        prop::collection::vec(doc, 0..20).prop_map(|docs| {
            docs.into_iter()
                .enumerate()
                .map(|(i, (prefix, entries))| (format!("{prefix}#{i}"), entries))
                .collect()
        })
    }

    fn write_collection(docs: &[(String, BTreeMap<String, u32>)], gzip: bool) -> Vec<u8> {
        let mut lists: BTreeMap<&str, (Vec<u32>, Vec<u32>)> = BTreeMap::new();
        let mut total = 0u64;
        for (i, (_, entries)) in docs.iter().enumerate() {
            for (t, &tf) in entries {
                let l = lists.entry(t).or_default();
                l.0.push(i as u32);
                l.1.push(tf);
                total += u64::from(tf);
            }
        }
        let mut w = CiffWriter::new(
            Vec::new(),
            path(),
            lists.len() as u64,
            docs.len() as u64,
            total,
            "roundtrip",
        )
        .unwrap();
        for (t, (d, tf)) in &lists {
            w.write_postings_list(t, d, tf).unwrap();
        }
        for (i, (id, entries)) in docs.iter().enumerate() {
            w.write_doc_record(i as u32, id, entries.values().sum())
                .unwrap();
        }
        let bytes = w.finish().unwrap();
        if gzip {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&bytes).unwrap();
            gz.finish().unwrap()
        } else {
            bytes
        }
    }

    proptest! {
        #[test]
        fn write_read_round_trip(docs in collection_strategy(), gzip in any::<bool>()) {
            let bytes = write_collection(&docs, gzip);
            let reader = wrap_maybe_gzip(Box::new(Cursor::new(bytes)), path()).unwrap();
            let mut c = Collection::new();
            let s = read_ciff_into(reader, path(), &mut c).unwrap();
            prop_assert_eq!(s.num_docs, docs.len() as u64);
            prop_assert_eq!(
                s.num_postings,
                docs.iter().map(|d| d.1.len() as u64).sum::<u64>()
            );
            prop_assert_eq!(&s.description, "roundtrip");
            let expected: Vec<(String, Vec<(String, f32)>)> = docs
                .iter()
                .map(|(id, e)| {
                    (id.clone(), e.iter().map(|(t, &tf)| (t.clone(), tf as f32)).collect())
                })
                .collect();
            prop_assert_eq!(docs_of(&c), expected);
        }
    }
}
