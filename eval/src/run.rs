//! Retrieval runs and the TREC run format `qid Q0 docid rank score tag`.
//!
//! The reader keeps each query's documents in file order and ignores the rank column, as
//! trec_eval does: evaluation re-sorts by score (see [`crate::metrics::trec_eval_order`]). A
//! document listed twice for one query is an error, as in trec_eval.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, Write};
use std::path::Path;

use crate::error::{Error, Result};
use crate::io::{create_text, Lines};

/// A retrieved document and its score.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredDoc {
    /// External document id.
    pub doc_id: String,
    /// Retrieval score (higher is better).
    pub score: f64,
}

/// Ranked results of a set of queries, in query id order; each query's documents in the order
/// they were added (for a system's output: best first).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Run {
    queries: BTreeMap<String, Vec<ScoredDoc>>,
}

impl Run {
    /// An empty run.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one document to the results of `query_id`. Duplicates are not checked here;
    /// evaluation refuses them.
    pub fn push(&mut self, query_id: impl Into<String>, doc_id: impl Into<String>, score: f64) {
        self.queries
            .entry(query_id.into())
            .or_default()
            .push(ScoredDoc {
                doc_id: doc_id.into(),
                score,
            });
    }

    /// Sets the results of `query_id` (replacing earlier ones), best first.
    pub fn insert<I, S>(&mut self, query_id: impl Into<String>, hits: I)
    where
        I: IntoIterator<Item = (S, f64)>,
        S: Into<String>,
    {
        let hits = hits
            .into_iter()
            .map(|(d, score)| ScoredDoc {
                doc_id: d.into(),
                score,
            })
            .collect();
        self.queries.insert(query_id.into(), hits);
    }

    /// The results of one query.
    pub fn get(&self, query_id: &str) -> Option<&[ScoredDoc]> {
        self.queries.get(query_id).map(Vec::as_slice)
    }

    /// (query id, results) pairs in ascending query id order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[ScoredDoc])> {
        self.queries.iter().map(|(q, d)| (q.as_str(), d.as_slice()))
    }

    /// Number of queries with results.
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    /// True when the run has no query.
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// Total number of (query, document) lines.
    pub fn num_entries(&self) -> usize {
        self.queries.values().map(Vec::len).sum()
    }

    /// Reads a TREC run file (gzip when the name ends in `.gz`).
    pub fn read_trec(path: impl AsRef<Path>) -> Result<Self> {
        Self::read_lines(Lines::open(path.as_ref())?)
    }

    /// Reads a TREC run from an open stream; `name` appears in error messages.
    pub fn from_trec_reader(
        reader: impl BufRead + Send + 'static,
        name: impl AsRef<Path>,
    ) -> Result<Self> {
        Self::read_lines(Lines::new(Box::new(reader), name.as_ref()))
    }

    fn read_lines(mut lines: Lines) -> Result<Self> {
        let mut run = Run::new();
        let mut seen: HashSet<(String, String)> = HashSet::new();
        while let Some(line) = lines.next_line()? {
            if line.text.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.text.split_whitespace().collect();
            let [qid, _q0, docid, _rank, score, _tag] = fields.as_slice() else {
                return Err(line.error(format!(
                    "expected 6 fields (qid Q0 docid rank score tag), found {}",
                    fields.len()
                )));
            };
            let score: f64 = score
                .parse()
                .map_err(|_| line.error(format!("score {score:?} is not a number")))?;
            if score.is_nan() {
                return Err(line.error("score is NaN"));
            }
            if !seen.insert(((*qid).to_owned(), (*docid).to_owned())) {
                return Err(line.error(format!(
                    "document {docid:?} is listed twice for query {qid:?}"
                )));
            }
            run.push(*qid, *docid, score);
        }
        Ok(run)
    }

    /// Writes the run in TREC format: for each query (ascending id), its documents in stored
    /// order with ranks 1, 2, ... and the shortest decimal score that reads back to the same
    /// `f64`. Ids and `tag` must be non-empty and free of whitespace.
    pub fn write_trec(&self, out: &mut dyn Write, tag: &str) -> Result<()> {
        check_token("run tag", tag)?;
        let name = Path::new("<run output>");
        for (qid, docs) in &self.queries {
            check_token("query id", qid)?;
            for (i, d) in docs.iter().enumerate() {
                check_token("document id", &d.doc_id)?;
                writeln!(out, "{qid} Q0 {} {} {} {tag}", d.doc_id, i + 1, d.score)
                    .map_err(|e| Error::io(name, e))?;
            }
        }
        Ok(())
    }

    /// Writes the run to `path` in TREC format (gzip when the name ends in `.gz`), through a
    /// temporary file beside it that is renamed into place once complete.
    pub fn save_trec(&self, path: impl AsRef<Path>, tag: &str) -> Result<()> {
        let path = path.as_ref();
        let file_name = path
            .file_name()
            .ok_or_else(|| Error::InvalidOption(format!("{}: not a file name", path.display())))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(file_name);
        tmp_name.push(format!(".tmp-{}", std::process::id()));
        // Keep the `.gz` ending so the temporary is compressed the same way.
        if crate::io::is_gzip(path) {
            tmp_name.push(".gz");
        }
        let tmp = path.with_file_name(tmp_name);
        let result = (|| {
            let mut w = create_text(&tmp)?;
            self.write_trec(w.writer(), tag)
                .map_err(|e| retarget(e, path))?;
            w.finish()?;
            std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

/// Names the real output file in an I/O error from [`Run::write_trec`].
fn retarget(e: Error, path: &Path) -> Error {
    match e {
        Error::Io { error, .. } => Error::io(path, error),
        other => other,
    }
}

fn check_token(what: &str, s: &str) -> Result<()> {
    if s.is_empty() || s.chars().any(char::is_whitespace) {
        return Err(Error::Invalid(format!(
            "{what} {s:?} cannot be written in a TREC run (empty or contains whitespace)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn round_trip_keeps_scores_exactly() {
        let mut run = Run::new();
        run.insert("q2", [("d1", 0.1 + 0.2), ("d2", -3.0), ("d3", 1e-7)]);
        run.push("q1", "x", 12.345678901234567);
        let mut out = Vec::new();
        run.write_trec(&mut out, "bm25").expect("writes");
        let text = String::from_utf8(out).expect("utf8");
        assert!(text.starts_with("q1 Q0 x 1 12.345678901234567 bm25\nq2 Q0 d1 1 "));
        let back = Run::from_trec_reader(Cursor::new(text), "r").expect("reads");
        assert_eq!(back, run);
        assert_eq!(back.num_entries(), 4);
    }

    #[test]
    fn reader_errors() {
        let e = Run::from_trec_reader(Cursor::new("q Q0 d 1 1.0 t\nq Q0 d 2 0.5 t\n"), "r.txt")
            .expect_err("duplicate");
        assert_eq!(
            e.to_string(),
            "r.txt:2: document \"d\" is listed twice for query \"q\""
        );
        let e = Run::from_trec_reader(Cursor::new("q Q0 d 1 x t\n"), "r").expect_err("score");
        assert!(e.to_string().contains("r:1: score \"x\""), "{e}");
        let e = Run::from_trec_reader(Cursor::new("q Q0 d 1 0.5\n"), "r").expect_err("fields");
        assert!(e.to_string().contains("expected 6 fields"), "{e}");
        let mut run = Run::new();
        run.push("q 1", "d", 1.0);
        assert!(run.write_trec(&mut Vec::new(), "t").is_err());
    }

    #[test]
    fn save_gz_round_trip() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("run.trec.gz");
        let mut run = Run::new();
        run.insert("1", [("a", 2.0), ("b", 1.0)]);
        run.save_trec(&path, "t").expect("saves");
        assert_eq!(Run::read_trec(&path).expect("reads"), run);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("lists")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary left: {names:?}");
    }
}
