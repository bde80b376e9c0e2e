//! BEIR JSONL readers: `corpus.jsonl` (`{"_id", "title", "text", ...}`) and `queries.jsonl`
//! (`{"_id", "text", ...}`), streamed one line at a time.
//!
//! `_id` may be a JSON string or an integer (both occur in the wild); an integer is kept as its
//! decimal text, so `7` and `"7"` name the same document. `title` may be absent or `null` (read
//! as empty); `text` is required (`null` reads as empty). Other fields (`metadata`, ...) are
//! ignored. Blank lines are skipped.

use std::fmt;
use std::io::BufRead;
use std::path::Path;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::error::Result;
use crate::io::Lines;

/// One corpus document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// External document id (`_id`).
    pub id: String,
    /// Title; empty when the corpus has none.
    pub title: String,
    /// Body text.
    pub text: String,
}

impl Document {
    /// A document from its parts.
    pub fn new(id: impl Into<String>, title: impl Into<String>, text: impl Into<String>) -> Self {
        Document {
            id: id.into(),
            title: title.into(),
            text: text.into(),
        }
    }
}

/// One query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Query id (`_id`).
    pub id: String,
    /// Query text.
    pub text: String,
}

/// A JSON string or integer read as text.
fn deserialize_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    struct IdVisitor;
    impl Visitor<'_> for IdVisitor {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or an integer")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_owned())
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
            Ok(v)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    deserializer.deserialize_any(IdVisitor)
}

/// A JSON string, or `null` read as empty.
fn deserialize_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

#[derive(Deserialize)]
struct RawDocument {
    #[serde(rename = "_id", deserialize_with = "deserialize_id")]
    id: String,
    #[serde(default, deserialize_with = "deserialize_text")]
    title: String,
    #[serde(deserialize_with = "deserialize_text")]
    text: String,
}

#[derive(Deserialize)]
struct RawQuery {
    #[serde(rename = "_id", deserialize_with = "deserialize_id")]
    id: String,
    #[serde(deserialize_with = "deserialize_text")]
    text: String,
}

/// Streams the records of a JSONL file, parsed as `R` and converted to `T`.
struct JsonlReader<R, T> {
    lines: Lines,
    convert: fn(R) -> T,
}

impl<R: for<'de> Deserialize<'de>, T> JsonlReader<R, T> {
    fn next_record(&mut self) -> Result<Option<T>> {
        loop {
            let Some(line) = self.lines.next_line()? else {
                return Ok(None);
            };
            if line.text.trim().is_empty() {
                continue;
            }
            return match serde_json::from_str::<R>(line.text) {
                Ok(raw) => Ok(Some((self.convert)(raw))),
                Err(e) => Err(line.error(format!("bad JSON record: {e}"))),
            };
        }
    }
}

/// A streaming reader of a BEIR `corpus.jsonl` (or `.jsonl.gz`): an iterator of documents.
pub struct CorpusReader {
    inner: JsonlReader<RawDocument, Document>,
}

impl CorpusReader {
    /// Opens a corpus file; gzip when the name ends in `.gz`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Self::from_lines(Lines::open(path.as_ref())?))
    }

    /// Reads a corpus from an open stream; `name` appears in error messages.
    pub fn from_reader(reader: impl BufRead + Send + 'static, name: impl AsRef<Path>) -> Self {
        Self::from_lines(Lines::new(Box::new(reader), name.as_ref()))
    }

    fn from_lines(lines: Lines) -> Self {
        CorpusReader {
            inner: JsonlReader {
                lines,
                convert: |r: RawDocument| Document {
                    id: r.id,
                    title: r.title,
                    text: r.text,
                },
            },
        }
    }
}

impl Iterator for CorpusReader {
    type Item = Result<Document>;
    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next_record().transpose()
    }
}

/// A streaming reader of a BEIR `queries.jsonl` (or `.jsonl.gz`): an iterator of queries.
pub struct QueryReader {
    inner: JsonlReader<RawQuery, Query>,
}

impl QueryReader {
    /// Opens a queries file; gzip when the name ends in `.gz`.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        Ok(Self::from_lines(Lines::open(path.as_ref())?))
    }

    /// Reads queries from an open stream; `name` appears in error messages.
    pub fn from_reader(reader: impl BufRead + Send + 'static, name: impl AsRef<Path>) -> Self {
        Self::from_lines(Lines::new(Box::new(reader), name.as_ref()))
    }

    fn from_lines(lines: Lines) -> Self {
        QueryReader {
            inner: JsonlReader {
                lines,
                convert: |r: RawQuery| Query {
                    id: r.id,
                    text: r.text,
                },
            },
        }
    }
}

impl Iterator for QueryReader {
    type Item = Result<Query>;
    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next_record().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn corpus(text: &str) -> Vec<Result<Document>> {
        CorpusReader::from_reader(std::io::Cursor::new(text.to_owned()), "c.jsonl").collect()
    }

    #[test]
    fn string_and_integer_ids_optional_title() {
        let docs = corpus(
            "{\"_id\": \"d1\", \"title\": \"T\", \"text\": \"x\", \"metadata\": {}}\n\n\
             {\"_id\": 42, \"text\": \"y\"}\r\n{\"_id\": \"3\", \"title\": null, \"text\": null}\n",
        );
        let docs: Vec<Document> = docs.into_iter().map(|d| d.expect("valid")).collect();
        assert_eq!(
            docs,
            vec![
                Document::new("d1", "T", "x"),
                Document::new("42", "", "y"),
                Document::new("3", "", "")
            ]
        );
    }

    #[test]
    fn errors_name_file_and_line() {
        let docs = corpus("{\"_id\": \"a\", \"text\": \"x\"}\n{\"_id\": 1.5, \"text\": \"y\"}\n");
        assert!(docs[0].is_ok());
        match &docs[1] {
            Err(Error::Parse {
                path,
                line,
                message,
            }) => {
                assert_eq!(path, Path::new("c.jsonl"));
                assert_eq!(*line, 2);
                assert!(message.contains("string or an integer"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
        let docs = corpus("{\"_id\": \"a\"}\n");
        let err = docs[0].as_ref().expect_err("missing text").to_string();
        assert!(
            err.starts_with("c.jsonl:1: ") && err.contains("text"),
            "{err}"
        );
        let docs = corpus("not json\n");
        assert!(docs[0].is_err());
    }

    #[test]
    fn queries() {
        let q: Vec<Query> = QueryReader::from_reader(
            std::io::Cursor::new("{\"_id\": 7, \"text\": \"what?\", \"metadata\": {}}\n"),
            "q",
        )
        .map(|q| q.expect("valid"))
        .collect();
        assert_eq!(
            q,
            vec![Query {
                id: "7".into(),
                text: "what?".into()
            }]
        );
    }
}
