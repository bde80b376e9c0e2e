//! JSONL sparse vectors: `{"id": <string or int>, "vector": {"term": weight, ...}}` per line.
//!
//! Each line holds one JSON object with an `"id"` (a non-empty string, or an integer that becomes
//! its decimal string) and a `"vector"` object mapping terms to non-negative numeric weights.
//! Other fields (such as `"content"` or `"contents"`) are ignored, blank lines are skipped, and
//! both `\n` and `\r\n` line endings are accepted. Zero weights are dropped; a term that appears
//! twice with a non-zero weight is an error.
//!
//! Lines are read one at a time into a reused buffer and parsed in place with simd-json, so
//! memory does not grow with the size of the file. [`read_jsonl_into`] is the fast path for
//! documents: it interns terms straight into a [`Collection`] without building a `String` per
//! entry. [`JsonlReader`] yields [`SparseRecord`]s (used for queries).

use std::fmt::Write as _;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use simd_json::{Buffers, ErrorType, Node, StaticNode, Tape, INPUT_PADDING};

use crate::collection::Collection;
use crate::error::{Error, Result};
use crate::readers::SparseRecord;

/// The UTF-8 byte order mark, skipped at the start of the first line.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Line reading and in-place JSON parsing with buffers reused from line to line.
struct LineParser {
    /// The current line, followed by `INPUT_PADDING` bytes once it is ready to parse.
    buf: Vec<u8>,
    /// Length of the current line without its line ending (and without padding).
    len: usize,
    /// Number of lines read so far.
    line: u64,
    /// simd-json's scratch buffers.
    buffers: Buffers,
    /// The parse tape, kept empty between lines so its allocation is reused.
    tape: Tape<'static>,
}

impl LineParser {
    fn new() -> Self {
        LineParser {
            buf: Vec::new(),
            len: 0,
            line: 0,
            buffers: Buffers::default(),
            tape: Tape(Vec::new()),
        }
    }

    /// Reads up to the next non-blank line; returns `false` at end of input.
    fn next_line<R: BufRead>(&mut self, reader: &mut R, path: &Path) -> Result<bool> {
        loop {
            self.buf.clear();
            let n = reader
                .read_until(b'\n', &mut self.buf)
                .map_err(|e| Error::io(path, e))?;
            if n == 0 {
                return Ok(false);
            }
            self.line += 1;
            let mut end = self.buf.len();
            if end > 0 && self.buf[end - 1] == b'\n' {
                end -= 1;
                if end > 0 && self.buf[end - 1] == b'\r' {
                    end -= 1;
                }
            }
            self.buf.truncate(end);
            if self.line == 1 && self.buf.starts_with(BOM) {
                self.buf.drain(..BOM.len());
            }
            if self.buf.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            self.len = self.buf.len();
            self.buf.resize(self.len + INPUT_PADDING, b' ');
            return Ok(true);
        }
    }

    /// Parses the current line: writes the id into `id` and calls `on_entry` for every entry with
    /// a positive weight. On error returns the message (without file and line).
    fn parse(
        &mut self,
        id: &mut String,
        on_entry: impl FnMut(&str, f32),
    ) -> std::result::Result<(), String> {
        let mut tape = std::mem::replace(&mut self.tape, Tape(Vec::new())).reset();
        let result = match simd_json::fill_tape_padded(
            &mut self.buf,
            self.len,
            &mut self.buffers,
            &mut tape,
        ) {
            Ok(()) => walk(&tape.0, id, on_entry),
            Err(e) => Err(json_error_message(&e)),
        };
        self.tape = tape.reset();
        result
    }
}

/// A readable message for a simd-json error.
fn json_error_message(e: &simd_json::Error) -> String {
    match e.error() {
        ErrorType::InvalidUtf8 => "invalid UTF-8".to_owned(),
        _ => format!("invalid JSON: {e}"),
    }
}

/// Number of tape nodes taken by the value starting with `node` (itself included).
fn node_count(node: &Node<'_>) -> usize {
    match node {
        Node::Object { count, .. } | Node::Array { count, .. } => count + 1,
        _ => 1,
    }
}

/// Extracts the id and the entries from a parsed line.
fn walk(
    nodes: &[Node<'_>],
    id: &mut String,
    mut on_entry: impl FnMut(&str, f32),
) -> std::result::Result<(), String> {
    let Some(&Node::Object { len, .. }) = nodes.first() else {
        return Err("expected a JSON object".to_owned());
    };
    let malformed = || "invalid JSON: malformed object".to_owned();
    let mut id_at = None;
    let mut vector_at = None;
    let mut idx = 1;
    for _ in 0..len {
        let Some(&Node::String(key)) = nodes.get(idx) else {
            return Err(malformed());
        };
        let value_at = idx + 1;
        let value = nodes.get(value_at).ok_or_else(malformed)?;
        idx = value_at + node_count(value);
        let slot = match key {
            "id" => &mut id_at,
            "vector" => &mut vector_at,
            _ => continue,
        };
        if slot.is_some() {
            return Err(format!("{key:?} appears more than once"));
        }
        *slot = Some(value_at);
    }

    let id_at = id_at.ok_or("missing \"id\"")?;
    id.clear();
    match nodes.get(id_at) {
        Some(Node::String(s)) => {
            if s.is_empty() {
                return Err("empty \"id\"".to_owned());
            }
            id.push_str(s);
        }
        Some(Node::Static(StaticNode::I64(i))) => {
            let _ = write!(id, "{i}");
        }
        Some(Node::Static(StaticNode::U64(u))) => {
            let _ = write!(id, "{u}");
        }
        _ => return Err("\"id\" must be a string or an integer".to_owned()),
    }

    let vector_at = vector_at.ok_or("missing \"vector\"")?;
    let Some(&Node::Object { len, .. }) = nodes.get(vector_at) else {
        return Err("\"vector\" must be an object".to_owned());
    };
    let mut idx = vector_at + 1;
    for _ in 0..len {
        let Some(&Node::String(term)) = nodes.get(idx) else {
            return Err(malformed());
        };
        let value = nodes.get(idx + 1).ok_or_else(malformed)?;
        idx += 1 + node_count(value);
        let weight = weight(term, value)?;
        if weight > 0.0 {
            on_entry(term, weight);
        }
    }
    Ok(())
}

/// The weight of `term` given its JSON value: a finite, non-negative number that fits an `f32`.
fn weight(term: &str, value: &Node<'_>) -> std::result::Result<f32, String> {
    let w = match value {
        Node::Static(StaticNode::I64(i)) => {
            if *i < 0 {
                return Err(format!("weight of term {term:?} is negative ({i})"));
            }
            *i as f32
        }
        Node::Static(StaticNode::U64(u)) => *u as f32,
        Node::Static(StaticNode::F64(f)) => {
            let f = *f;
            if f.is_nan() || f.is_infinite() {
                return Err(format!(
                    "weight of term {term:?} is not finite or too large for a 32-bit float"
                ));
            }
            if f < 0.0 {
                return Err(format!("weight of term {term:?} is negative ({f})"));
            }
            f as f32
        }
        _ => return Err(format!("weight of term {term:?} is not a number")),
    };
    if w.is_finite() {
        Ok(w)
    } else {
        Err(format!(
            "weight of term {term:?} is not finite or too large for a 32-bit float"
        ))
    }
}

/// A streaming reader of JSONL sparse vectors that yields one [`SparseRecord`] per line.
///
/// Errors are [`Error::Parse`] with the file and 1-based line number, or [`Error::Io`].
pub struct JsonlReader<R: BufRead> {
    reader: R,
    path: PathBuf,
    parser: LineParser,
    record_line: u64,
    /// Positions into the record's entries, used to find duplicate terms.
    order: Vec<u32>,
}

impl<R: BufRead> JsonlReader<R> {
    /// A reader of `reader`; `path` names the input in error messages.
    pub fn new(reader: R, path: impl Into<PathBuf>) -> Self {
        JsonlReader {
            reader,
            path: path.into(),
            parser: LineParser::new(),
            record_line: 0,
            order: Vec::new(),
        }
    }

    /// Reads the next record into `record` (reusing its allocations); returns `false` at the end
    /// of the input.
    ///
    /// Entries keep their input order; zero weights are dropped. A term that appears more than
    /// once (with non-zero weights) is an error. On error `record` holds unspecified contents.
    pub fn next_record(&mut self, record: &mut SparseRecord) -> Result<bool> {
        if !self.parser.next_line(&mut self.reader, &self.path)? {
            return Ok(false);
        }
        self.record_line = self.parser.line;
        let entries = &mut record.entries;
        let mut n = 0;
        let parsed = self.parser.parse(&mut record.id, |term, weight| {
            if let Some(entry) = entries.get_mut(n) {
                entry.0.clear();
                entry.0.push_str(term);
                entry.1 = weight;
            } else {
                entries.push((term.to_owned(), weight));
            }
            n += 1;
        });
        entries.truncate(n);
        parsed
            .and_then(|()| check_unique_terms(entries, &mut self.order))
            .map_err(|message| Error::parse(&self.path, self.record_line, message))?;
        Ok(true)
    }

    /// The 1-based line number of the last record read (0 before the first).
    pub fn line(&self) -> u64 {
        self.record_line
    }
}

/// Fails with a message naming a term that appears more than once in `entries`.
fn check_unique_terms(
    entries: &[(String, f32)],
    order: &mut Vec<u32>,
) -> std::result::Result<(), String> {
    if entries.len() < 2 {
        return Ok(());
    }
    order.clear();
    order.extend(0..entries.len() as u32);
    order.sort_unstable_by(|&a, &b| entries[a as usize].0.cmp(&entries[b as usize].0));
    match order
        .windows(2)
        .find(|p| entries[p[0] as usize].0 == entries[p[1] as usize].0)
    {
        Some(p) => Err(format!(
            "term {:?} appears more than once",
            entries[p[0] as usize].0
        )),
        None => Ok(()),
    }
}

/// Reads JSONL documents from `reader` into `collection`; returns the number of documents read.
///
/// Terms are interned directly (no `String` per entry) and zero weights are dropped. Anything the
/// collection rejects (a duplicate document id, a term appearing twice) is reported as a parse
/// error at the document's line. `path` names the input in error messages.
pub fn read_jsonl_into<R: BufRead>(
    mut reader: R,
    path: &Path,
    collection: &mut Collection,
) -> Result<u64> {
    let mut state = DocReader::new();
    while state.read_doc(&mut reader, path, collection)? {}
    Ok(state.count)
}

/// Reads documents one line at a time into a collection, keeping its buffers between documents.
struct DocReader {
    parser: LineParser,
    id: String,
    scratch: Vec<(u32, f32)>,
    count: u64,
}

impl DocReader {
    fn new() -> Self {
        DocReader {
            parser: LineParser::new(),
            id: String::new(),
            scratch: Vec::new(),
            count: 0,
        }
    }

    /// Reads the next document into `collection`; `false` at the end of the input.
    fn read_doc<R: BufRead>(
        &mut self,
        reader: &mut R,
        path: &Path,
        collection: &mut Collection,
    ) -> Result<bool> {
        if !self.parser.next_line(reader, path)? {
            return Ok(false);
        }
        let line = self.parser.line;
        let scratch = &mut self.scratch;
        scratch.clear();
        self.parser
            .parse(&mut self.id, |term, weight| {
                scratch.push((collection.intern_term(term), weight));
            })
            .and_then(|()| collection.add_document(&self.id, scratch).map(|_| ()))
            .map_err(|message| Error::parse(path, line, message))?;
        self.count += 1;
        Ok(true)
    }
}

/// Postings [`read_jsonl_chunks`] reserves beyond its limit, for the document that reaches it.
const CHUNK_SLACK: usize = 1 << 16;

/// Reads JSONL documents from `reader` as [`read_jsonl_into`] does, into collections of at most
/// about `max_postings` postings each (a collection is handed over once it reaches that many,
/// and always holds at least one document): `on_full` receives each one, the last one too.
/// Returns the number of documents read. Duplicate ids are found within a collection only.
pub fn read_jsonl_chunks<R: BufRead>(
    mut reader: R,
    path: &Path,
    max_postings: usize,
    on_full: &mut dyn FnMut(Collection) -> Result<()>,
) -> Result<u64> {
    let mut state = DocReader::new();
    // Room for the postings of a full collection and its last document: the arrays never double.
    let room = max_postings.saturating_add(CHUNK_SLACK);
    let mut collection = Collection::with_posting_capacity(room);
    while state.read_doc(&mut reader, path, &mut collection)? {
        if collection.num_postings() >= max_postings {
            on_full(std::mem::replace(
                &mut collection,
                Collection::with_posting_capacity(room),
            ))?;
        }
    }
    if collection.num_docs() > 0 {
        on_full(collection)?;
    }
    Ok(state.count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::{Cursor, Write};

    fn path() -> &'static Path {
        Path::new("in.jsonl")
    }

    #[test]
    fn chunks_close_at_the_posting_limit_and_keep_line_numbers() {
        let input = "{\"id\": \"a\", \"vector\": {\"x\": 1, \"y\": 2}}\n\
                     {\"id\": \"b\", \"vector\": {\"x\": 1}}\n\
                     {\"id\": \"c\", \"vector\": {\"z\": 1, \"x\": 3}}\n\
                     {\"id\": \"a\", \"vector\": {\"y\": 1}}\n";
        let mut sizes = Vec::new();
        let n = read_jsonl_chunks(Cursor::new(input), path(), 3, &mut |c| {
            sizes.push((c.num_docs(), c.num_postings()));
            Ok(())
        })
        .unwrap();
        // a + b reach 3 postings; c; then "a" again, in a new collection (no duplicate there).
        assert_eq!(n, 4);
        assert_eq!(sizes, [(2, 3), (2, 3)]);
        let bad = format!("{input}{{\"id\": \"d\", \"vector\": \n");
        let err = read_jsonl_chunks(Cursor::new(bad), path(), 3, &mut |_| Ok(()))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("in.jsonl:5:"), "{err}");
    }

    /// All records of `text`, or the first error.
    fn read_all(text: &[u8]) -> Result<Vec<SparseRecord>> {
        let mut reader = JsonlReader::new(Cursor::new(text.to_vec()), path());
        let mut out = Vec::new();
        let mut record = SparseRecord::default();
        while reader.next_record(&mut record)? {
            out.push(record.clone());
        }
        Ok(out)
    }

    fn rec(id: &str, entries: &[(&str, f32)]) -> SparseRecord {
        SparseRecord {
            id: id.to_owned(),
            entries: entries.iter().map(|&(t, w)| (t.to_owned(), w)).collect(),
        }
    }

    /// The error message for `text`, checked to be a parse error at `line`.
    fn error_at(text: &[u8], line: u64) -> String {
        let err = match read_all(text) {
            Ok(records) => panic!("expected an error, read {records:?}"),
            Err(e) => e,
        };
        match &err {
            Error::Parse { line: l, .. } => assert_eq!(*l, line, "{err}"),
            other => panic!("expected a parse error, got {other}"),
        }
        let message = err.to_string();
        assert!(message.contains(&format!("in.jsonl:{line}:")), "{message}");
        message
    }

    /// Checks that the record on line 2 (after a valid line 1) fails with `problem`.
    fn assert_line2_error(bad_line: &str, problem: &str) {
        let text = format!("{{\"id\": \"ok\", \"vector\": {{\"a\": 1}}}}\n{bad_line}\n");
        let message = error_at(text.as_bytes(), 2);
        assert!(message.contains(problem), "{message:?} lacks {problem:?}");
        // The collection path reports the same problem at the same line.
        let mut c = Collection::new();
        let err = read_jsonl_into(Cursor::new(text.into_bytes()), path(), &mut c)
            .expect_err("collection path accepted bad input");
        let message = err.to_string();
        assert!(message.contains("in.jsonl:2:"), "{message}");
        assert!(message.contains(problem), "{message:?} lacks {problem:?}");
    }

    #[test]
    fn reads_records() {
        let text = b"{\"id\": \"d1\", \"vector\": {\"a\": 1.5, \"b\": 2}, \"content\": \"x\"}\n\
            \n   \t\n\
            {\"contents\": \"y\", \"vector\": {}, \"id\": 7, \"other\": [1, {\"z\": 2}]}\n\
            {\"id\": -3, \"vector\": {\"c\": 0, \"d\": 0.0, \"e\": 1e-3}}\n\
            {\"id\": 18446744073709551615, \"vector\": {\"\\u00e9t\\u00e9\": 3}}";
        let records = read_all(text).unwrap();
        assert_eq!(
            records,
            vec![
                rec("d1", &[("a", 1.5), ("b", 2.0)]),
                rec("7", &[]),
                rec("-3", &[("e", 1e-3)]),
                rec("18446744073709551615", &[("été", 3.0)]),
            ]
        );
    }

    #[test]
    fn reports_record_lines() {
        let text = b"\n{\"id\": \"a\", \"vector\": {}}\n\n\n{\"id\": \"b\", \"vector\": {}}\n\n";
        let mut reader = JsonlReader::new(Cursor::new(&text[..]), path());
        let mut record = SparseRecord::default();
        assert_eq!(reader.line(), 0);
        assert!(reader.next_record(&mut record).unwrap());
        assert_eq!((record.id.as_str(), reader.line()), ("a", 2));
        assert!(reader.next_record(&mut record).unwrap());
        assert_eq!((record.id.as_str(), reader.line()), ("b", 5));
        assert!(!reader.next_record(&mut record).unwrap());
        assert!(!reader.next_record(&mut record).unwrap());
    }

    #[test]
    fn windows_line_endings_and_bom() {
        let text = b"\xEF\xBB\xBF{\"id\": \"a\", \"vector\": {\"x\": 1}}\r\n\r\n{\"id\": \"b\", \"vector\": {\"y\": 2}}\r\n";
        assert_eq!(
            read_all(text).unwrap(),
            vec![rec("a", &[("x", 1.0)]), rec("b", &[("y", 2.0)])]
        );
        let mut c = Collection::new();
        assert_eq!(read_jsonl_into(&text[..], path(), &mut c).unwrap(), 2);
        assert_eq!(c.doc_id(1), "b");
    }

    #[test]
    fn record_reuse_does_not_leak_entries() {
        let text = b"{\"id\": \"a\", \"vector\": {\"x\": 1, \"y\": 2, \"z\": 3}}\n{\"id\": \"b\", \"vector\": {\"w\": 4}}\n";
        let mut reader = JsonlReader::new(&text[..], path());
        let mut record = SparseRecord::default();
        assert!(reader.next_record(&mut record).unwrap());
        assert!(reader.next_record(&mut record).unwrap());
        assert_eq!(record, rec("b", &[("w", 4.0)]));
    }

    #[test]
    fn invalid_json() {
        assert_line2_error("{\"id\": \"x\", \"vector\": {\"a\": 1}", "invalid JSON");
        assert_line2_error("{\"id\": \"x\" \"vector\": {}}", "invalid JSON");
        assert_line2_error("{\"id\": \"x\", \"vector\": {}} trailing", "invalid JSON");
        assert_line2_error("not json", "invalid JSON");
    }

    #[test]
    fn invalid_utf8() {
        let mut text =
            b"{\"id\": \"ok\", \"vector\": {}}\n{\"id\": \"x\", \"vector\": {\"a".to_vec();
        text.extend_from_slice(b"\xff\xfe\": 1}}\n");
        let message = error_at(&text, 2);
        assert!(message.contains("invalid UTF-8"), "{message}");
        let mut c = Collection::new();
        let message = read_jsonl_into(&text[..], path(), &mut c)
            .unwrap_err()
            .to_string();
        assert!(message.contains("in.jsonl:2: invalid UTF-8"), "{message}");
    }

    #[test]
    fn not_an_object() {
        for line in ["[1, 2]", "\"text\"", "42", "null", "true"] {
            assert_line2_error(line, "expected a JSON object");
        }
    }

    #[test]
    fn bad_ids() {
        assert_line2_error("{\"vector\": {\"a\": 1}}", "missing \"id\"");
        assert_line2_error("{\"id\": \"\", \"vector\": {}}", "empty \"id\"");
        for id in ["1.5", "null", "true", "[1]", "{\"a\": 1}", "1e3"] {
            let line = format!("{{\"id\": {id}, \"vector\": {{}}}}");
            assert_line2_error(&line, "\"id\" must be a string or an integer");
        }
        assert_line2_error(
            "{\"id\": \"a\", \"id\": \"b\", \"vector\": {}}",
            "\"id\" appears more than once",
        );
    }

    #[test]
    fn bad_vectors() {
        assert_line2_error("{\"id\": \"x\"}", "missing \"vector\"");
        for vector in ["[1, 2]", "\"a\"", "3", "null"] {
            let line = format!("{{\"id\": \"x\", \"vector\": {vector}}}");
            assert_line2_error(&line, "\"vector\" must be an object");
        }
    }

    #[test]
    fn bad_weights() {
        for value in ["\"1\"", "null", "true", "[1]", "{\"v\": 1}"] {
            let line = format!("{{\"id\": \"x\", \"vector\": {{\"t\": {value}}}}}");
            assert_line2_error(&line, "weight of term \"t\" is not a number");
        }
        assert_line2_error(
            "{\"id\": \"x\", \"vector\": {\"t\": -1}}",
            "weight of term \"t\" is negative (-1)",
        );
        assert_line2_error(
            "{\"id\": \"x\", \"vector\": {\"t\": -2.5}}",
            "weight of term \"t\" is negative (-2.5)",
        );
        assert_line2_error(
            "{\"id\": \"x\", \"vector\": {\"t\": 1e39}}",
            "weight of term \"t\" is not finite or too large for a 32-bit float",
        );
        assert_line2_error(
            "{\"id\": \"x\", \"vector\": {\"t\": 1e300}}",
            "weight of term \"t\" is not finite or too large for a 32-bit float",
        );
        // Out of range for f64: either rejected by the JSON parser or reported as not finite.
        let text = "{\"id\": \"x\", \"vector\": {\"t\": 1e400}}\n";
        let message = error_at(text.as_bytes(), 1);
        assert!(
            message.contains("invalid JSON") || message.contains("not finite"),
            "{message}"
        );
    }

    #[test]
    fn duplicate_terms() {
        assert_line2_error(
            "{\"id\": \"x\", \"vector\": {\"t\": 1, \"u\": 2, \"t\": 3}}",
            "term \"t\" appears more than once",
        );
        // A zero weight is dropped before the check, as in the collection.
        assert_eq!(
            read_all(b"{\"id\": \"x\", \"vector\": {\"t\": 0, \"t\": 3}}").unwrap(),
            vec![rec("x", &[("t", 3.0)])]
        );
    }

    #[test]
    fn collection_path() {
        let text = b"{\"id\": \"d1\", \"vector\": {\"a\": 1.5, \"b\": 2, \"z\": 0}}\n\n\
            {\"id\": 2, \"vector\": {\"b\": 3}, \"contents\": \"text\"}\n";
        let mut c = Collection::new();
        assert_eq!(read_jsonl_into(&text[..], path(), &mut c).unwrap(), 2);
        assert_eq!(c.num_docs(), 2);
        assert_eq!(c.num_terms(), 2, "zero-weight terms are not interned");
        assert_eq!(c.doc_id(0), "d1");
        assert_eq!(c.doc_id(1), "2");
        let (a, b) = (c.term_id("a").unwrap(), c.term_id("b").unwrap());
        assert_eq!(c.doc(0), (&[a, b][..], &[1.5, 2.0][..]));
        assert_eq!(c.doc(1), (&[b][..], &[3.0][..]));
    }

    #[test]
    fn duplicate_document_id() {
        let text = b"{\"id\": \"d\", \"vector\": {}}\n{\"id\": \"e\", \"vector\": {}}\n\n{\"id\": \"d\", \"vector\": {}}\n";
        let mut c = Collection::new();
        let message = read_jsonl_into(&text[..], path(), &mut c)
            .unwrap_err()
            .to_string();
        assert!(message.contains("in.jsonl:4:"), "{message}");
        assert!(message.contains("duplicate document id \"d\""), "{message}");
    }

    #[test]
    fn gzip_input() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("docs.jsonl.gz");
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&file).unwrap(),
            flate2::Compression::default(),
        );
        for i in 0..1000 {
            writeln!(
                gz,
                "{{\"id\": \"d{i}\", \"vector\": {{\"t{}\": {i}}}}}",
                i % 7
            )
            .unwrap();
        }
        gz.finish().unwrap();
        let mut c = Collection::new();
        let input = crate::readers::open_maybe_gzip(&file).unwrap();
        assert_eq!(read_jsonl_into(input, &file, &mut c).unwrap(), 1000);
        assert_eq!(c.num_docs(), 1000);
        assert_eq!(c.num_terms(), 7);
        assert_eq!(c.num_postings(), 999);
        let mut reader = JsonlReader::new(crate::readers::open_maybe_gzip(&file).unwrap(), &file);
        let mut record = SparseRecord::default();
        let mut n = 0;
        while reader.next_record(&mut record).unwrap() {
            n += 1;
        }
        assert_eq!((n, reader.line()), (1000, 1000));
    }

    /// `s` as a JSON string literal, escaping what JSON requires (and some more).
    fn json_string(s: &str) -> String {
        let mut out = String::from("\"");
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 || c == '\u{7f}' => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
        out.push('"');
        out
    }

    fn weight_strategy() -> impl Strategy<Value = f32> {
        prop_oneof![
            // Every positive finite f32, subnormals included.
            (1u32..0x7f80_0000).prop_map(f32::from_bits),
            (1u32..1000).prop_map(|w| w as f32),
            (1u32..10_000_000).prop_map(|x| x as f32 * 1e-6),
        ]
    }

    fn records_strategy() -> impl Strategy<Value = Vec<SparseRecord>> {
        let entries = prop::collection::hash_map(".{1,8}", weight_strategy(), 0..20);
        prop::collection::vec(("[^\\s\\p{C}]{1,10}", entries), 0..20).prop_map(|records| {
            let mut seen = std::collections::HashSet::new();
            records
                .into_iter()
                .filter(|(id, _)| seen.insert(id.clone()))
                .map(|(id, entries)| SparseRecord {
                    id,
                    entries: entries.into_iter().collect(),
                })
                .collect()
        })
    }

    fn to_jsonl(records: &[SparseRecord], crlf: bool) -> String {
        let mut text = String::new();
        for r in records {
            let _ = write!(text, "{{\"id\":{},\"vector\":{{", json_string(&r.id));
            for (i, (term, weight)) in r.entries.iter().enumerate() {
                let sep = if i == 0 { "" } else { ", " };
                let _ = write!(text, "{sep}{}: {weight:?}", json_string(term));
            }
            text.push_str("}, \"contents\": \"ignored\"}");
            text.push_str(if crlf { "\r\n" } else { "\n" });
        }
        text
    }

    proptest! {
        #[test]
        fn round_trip(records in records_strategy(), crlf in any::<bool>()) {
            let text = to_jsonl(&records, crlf);
            let read = read_all(text.as_bytes()).unwrap();
            prop_assert_eq!(&read, &records);

            let mut c = Collection::new();
            let n = read_jsonl_into(text.as_bytes(), path(), &mut c).unwrap();
            prop_assert_eq!(n as usize, records.len());
            for (doc, r) in records.iter().enumerate() {
                prop_assert_eq!(c.doc_id(doc), r.id.as_str());
                let mut expected: Vec<(u32, f32)> = r
                    .entries
                    .iter()
                    .map(|(t, w)| (c.term_id(t).unwrap(), *w))
                    .collect();
                expected.sort_by_key(|e| e.0);
                let (terms, weights) = c.doc(doc);
                let got: Vec<(u32, f32)> =
                    terms.iter().copied().zip(weights.iter().copied()).collect();
                prop_assert_eq!(got, expected);
            }
        }

        #[test]
        fn arbitrary_lines_do_not_panic(lines in prop::collection::vec(any::<Vec<u8>>(), 0..8)) {
            let mut text = Vec::new();
            for line in lines {
                text.extend_from_slice(&line);
                text.push(b'\n');
            }
            let _ = read_all(&text);
            let mut c = Collection::new();
            let _ = read_jsonl_into(&text[..], path(), &mut c);
        }
    }
}
