//! Relevance judgments ("qrels"), read from a BEIR TSV (`query-id<TAB>corpus-id<TAB>score`, with
//! or without its header line) or a classic TREC qrels file (`qid iter docid rel`, whitespace
//! separated); the format is detected from the first line that is not blank.
//!
//! Relevance is an integer. As in trec_eval, 0 means judged not relevant, and a negative value
//! means "in the pool but not judged": neither counts as relevant or brings gain. A document
//! judged twice for one query keeps its last judgment (the dictionary semantics of BEIR's loader
//! and pytrec_eval; trec_eval itself refuses such a file).

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::Path;

use crate::error::Result;
use crate::io::{Line, Lines};

/// A relevance grade.
pub type Relevance = i32;

/// The judgments of one query: document id to relevance.
pub type Judgments = HashMap<String, Relevance>;

/// The layout of a qrels file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrelsFormat {
    /// BEIR: `query-id<TAB>corpus-id<TAB>score`, usually with a header line.
    BeirTsv,
    /// TREC: `qid iteration docid relevance`, whitespace separated, no header.
    Trec,
}

/// Relevance judgments of a set of queries, in query id order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Qrels {
    queries: BTreeMap<String, Judgments>,
}

impl Qrels {
    /// Empty judgments.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `relevance` for (`query_id`, `doc_id`), replacing an earlier judgment.
    pub fn insert(
        &mut self,
        query_id: impl Into<String>,
        doc_id: impl Into<String>,
        relevance: Relevance,
    ) {
        self.queries
            .entry(query_id.into())
            .or_default()
            .insert(doc_id.into(), relevance);
    }

    /// The judgments of one query.
    pub fn get(&self, query_id: &str) -> Option<&Judgments> {
        self.queries.get(query_id)
    }

    /// True when `query_id` has at least one judgment (of any grade).
    pub fn contains_query(&self, query_id: &str) -> bool {
        self.queries.contains_key(query_id)
    }

    /// Judged query ids, in ascending (byte) order.
    pub fn query_ids(&self) -> impl Iterator<Item = &str> {
        self.queries.keys().map(String::as_str)
    }

    /// (query id, judgments) pairs in ascending query id order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Judgments)> {
        self.queries.iter().map(|(q, j)| (q.as_str(), j))
    }

    /// Number of judged queries.
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    /// True when no query is judged.
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// Total number of (query, document) judgments.
    pub fn num_judgments(&self) -> usize {
        self.queries.values().map(HashMap::len).sum()
    }

    /// Reads a qrels file (BEIR TSV or TREC, detected; gzip when the name ends in `.gz`).
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        Self::read_lines(Lines::open(path.as_ref())?).map(|(q, _)| q)
    }

    /// Reads qrels from an open stream; `name` appears in error messages. Also returns the
    /// detected format (`None` for an empty stream).
    pub fn from_reader(
        reader: impl BufRead + Send + 'static,
        name: impl AsRef<Path>,
    ) -> Result<(Self, Option<QrelsFormat>)> {
        Self::read_lines(Lines::new(Box::new(reader), name.as_ref()))
    }

    fn read_lines(mut lines: Lines) -> Result<(Self, Option<QrelsFormat>)> {
        let mut qrels = Qrels::new();
        let mut format = None;
        while let Some(line) = lines.next_line()? {
            if line.text.trim().is_empty() {
                continue;
            }
            let fields = split_fields(line.text);
            let fmt = match format {
                Some(f) => f,
                None => {
                    let f = detect(&line, &fields)?;
                    format = Some(f);
                    if !fields.last().is_some_and(|f| is_integer(f)) {
                        // A header line ("query-id corpus-id score").
                        continue;
                    }
                    f
                }
            };
            let (qid, docid, rel) = match (fmt, fields.as_slice()) {
                (QrelsFormat::BeirTsv, [q, d, r]) => (q, d, r),
                (QrelsFormat::Trec, [q, _iter, d, r]) => (q, d, r),
                (fmt, _) => {
                    let expected = match fmt {
                        QrelsFormat::BeirTsv => "3 fields (query-id, corpus-id, score)",
                        QrelsFormat::Trec => "4 fields (qid iter docid rel)",
                    };
                    let n = fields.len();
                    return Err(line.error(format!(
                        "expected {expected} as in the first line, found {n}"
                    )));
                }
            };
            let rel: Relevance = rel
                .parse()
                .map_err(|_| line.error(format!("relevance {rel:?} is not an integer")))?;
            qrels.insert(*qid, *docid, rel);
        }
        Ok((qrels, format))
    }
}

/// Splits on tabs when the line has any (ids may then contain spaces), else on whitespace.
fn split_fields(text: &str) -> Vec<&str> {
    if text.contains('\t') {
        text.split('\t').map(str::trim).collect()
    } else {
        text.split_whitespace().collect()
    }
}

fn is_integer(s: &str) -> bool {
    s.parse::<i64>().is_ok()
}

fn detect(line: &Line<'_>, fields: &[&str]) -> Result<QrelsFormat> {
    match fields.len() {
        3 => Ok(QrelsFormat::BeirTsv),
        4 => Ok(QrelsFormat::Trec),
        n => Err(line.error(format!(
            "unrecognised qrels line with {n} fields: expected BEIR TSV \
             (query-id<TAB>corpus-id<TAB>score) or TREC (qid iter docid rel)"
        ))),
    }
}

/// The number of documents judged at least `relevance_level` (which should be ≥ 1).
pub fn num_relevant(judgments: &Judgments, relevance_level: Relevance) -> usize {
    judgments
        .values()
        .filter(|&&r| r >= 0 && r >= relevance_level)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn parse(text: &str) -> Result<(Qrels, Option<QrelsFormat>)> {
        Qrels::from_reader(Cursor::new(text.to_owned()), "q.tsv")
    }

    #[test]
    fn beir_with_header() {
        let (q, f) =
            parse("query-id\tcorpus-id\tscore\n1\td 1\t2\n1\td2\t0\n2\td1\t1\n").expect("valid");
        assert_eq!(f, Some(QrelsFormat::BeirTsv));
        assert_eq!(q.len(), 2);
        assert_eq!(q.get("1").and_then(|j| j.get("d 1")), Some(&2));
        assert_eq!(q.num_judgments(), 3);
        assert_eq!(num_relevant(q.get("1").expect("judged"), 1), 1);
    }

    #[test]
    fn trec_and_headerless_beir() {
        let (q, f) =
            parse("301 0 FBIS3-10082 1\n301 0 FBIS3-10169 -1\n\n302 Q0 X 0\n").expect("valid");
        assert_eq!(f, Some(QrelsFormat::Trec));
        assert_eq!(q.query_ids().collect::<Vec<_>>(), vec!["301", "302"]);
        assert_eq!(q.get("301").and_then(|j| j.get("FBIS3-10169")), Some(&-1));
        let (q, f) = parse("1\td\t3\n").expect("valid");
        assert_eq!(f, Some(QrelsFormat::BeirTsv));
        assert_eq!(q.get("1").and_then(|j| j.get("d")), Some(&3));
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("q\td\tscore\n1\td\t1\n1\td\n").expect_err("short line");
        assert!(
            e.to_string().starts_with("q.tsv:3: expected 3 fields"),
            "{e}"
        );
        // A first line whose last field is not an integer is a header.
        let (q, _) = parse("qid iter docno rel\n").expect("header only");
        assert!(q.is_empty());
        let e = parse("1 0 d 1\n1 0 e 1.5\n").expect_err("float relevance");
        assert_eq!(
            e.to_string(),
            "q.tsv:2: relevance \"1.5\" is not an integer"
        );
        let e = parse("a b\n").expect_err("two fields");
        assert!(
            e.to_string()
                .starts_with("q.tsv:1: unrecognised qrels line"),
            "{e}"
        );
    }
}
