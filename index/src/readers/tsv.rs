//! Anserini pre-encoded query TSV: `qid<TAB>tok tok tok` (a repeated token is its weight).
//!
//! Each non-blank line holds a query id, a TAB, and the query's tokens separated by ASCII
//! whitespace. A token that appears `n` times has weight `n`; entries are in first-seen order.
//! A line with an id and no tokens is a query with no entries. Both `\n` and `\r\n` line endings
//! are accepted.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use crate::error::{Error, Result};
use crate::readers::SparseRecord;

/// The UTF-8 byte order mark, skipped at the start of the first line.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Reads every query of an Anserini query TSV.
///
/// Errors are [`Error::Parse`] with the 1-based line number (a line without a TAB, an empty query
/// id, invalid UTF-8) or [`Error::Io`]. Duplicate query ids are not checked here (see
/// [`crate::readers::queries::read_queries`]). `path` names the input in error messages.
pub fn read_tsv_queries<R: BufRead>(reader: R, path: &Path) -> Result<Vec<SparseRecord>> {
    let mut queries = Vec::new();
    for_each_tsv_query(reader, path, |record, _line| {
        queries.push(record);
        Ok(())
    })?;
    Ok(queries)
}

/// Reads every query of an Anserini query TSV, calling `f` with each query and its line number.
pub(crate) fn for_each_tsv_query<R: BufRead>(
    mut reader: R,
    path: &Path,
    mut f: impl FnMut(SparseRecord, u64) -> Result<()>,
) -> Result<()> {
    let mut buf = Vec::new();
    let mut line = 0u64;
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| Error::io(path, e))?;
        if n == 0 {
            return Ok(());
        }
        line += 1;
        let mut bytes = &buf[..];
        if line == 1 {
            bytes = bytes.strip_prefix(BOM).unwrap_or(bytes);
        }
        let bytes = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let text =
            std::str::from_utf8(bytes).map_err(|_| Error::parse(path, line, "invalid UTF-8"))?;
        let Some((qid, tokens)) = text.split_once('\t') else {
            return Err(Error::parse(
                path,
                line,
                "no TAB between the query id and the tokens",
            ));
        };
        let qid = qid.trim_matches(|c: char| c.is_ascii_whitespace());
        if qid.is_empty() {
            return Err(Error::parse(path, line, "empty query id"));
        }
        let mut entries: Vec<(String, f32)> = Vec::new();
        let mut positions: HashMap<&str, usize> = HashMap::new();
        for token in tokens.split_ascii_whitespace() {
            match positions.get(token) {
                Some(&i) => entries[i].1 += 1.0,
                None => {
                    positions.insert(token, entries.len());
                    entries.push((token.to_owned(), 1.0));
                }
            }
        }
        f(
            SparseRecord {
                id: qid.to_owned(),
                entries,
            },
            line,
        )?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn path() -> &'static Path {
        Path::new("q.tsv")
    }

    fn rec(id: &str, entries: &[(&str, f32)]) -> SparseRecord {
        SparseRecord {
            id: id.to_owned(),
            entries: entries.iter().map(|&(t, w)| (t.to_owned(), w)).collect(),
        }
    }

    fn error_at(text: &[u8], line: u64) -> String {
        let err = read_tsv_queries(text, path()).expect_err("expected an error");
        match &err {
            Error::Parse { line: l, .. } => assert_eq!(*l, line, "{err}"),
            other => panic!("expected a parse error, got {other}"),
        }
        let message = err.to_string();
        assert!(message.contains(&format!("q.tsv:{line}:")), "{message}");
        message
    }

    #[test]
    fn counts_repeated_tokens_in_first_seen_order() {
        let text = b"q1\tb a b  c b a\n\n  \nq2\tx\n";
        assert_eq!(
            read_tsv_queries(&text[..], path()).unwrap(),
            vec![
                rec("q1", &[("b", 3.0), ("a", 2.0), ("c", 1.0)]),
                rec("q2", &[("x", 1.0)])
            ]
        );
    }

    #[test]
    fn windows_line_endings_bom_and_no_final_newline() {
        let text = b"\xEF\xBB\xBF1\ta a\r\n\r\n2\tb\tc\r\n3\td";
        assert_eq!(
            read_tsv_queries(&text[..], path()).unwrap(),
            vec![
                rec("1", &[("a", 2.0)]),
                rec("2", &[("b", 1.0), ("c", 1.0)]),
                rec("3", &[("d", 1.0)]),
            ]
        );
    }

    #[test]
    fn query_without_tokens() {
        let text = b"q1\t\nq2\t   \n";
        assert_eq!(
            read_tsv_queries(&text[..], path()).unwrap(),
            vec![rec("q1", &[]), rec("q2", &[])]
        );
    }

    #[test]
    fn line_without_tab() {
        let message = error_at(b"q1\ta\n\nq2 a b\n", 3);
        assert!(message.contains("no TAB"), "{message}");
        let message = error_at(b"q1: a b\n", 1);
        assert!(message.contains("no TAB"), "{message}");
    }

    #[test]
    fn empty_query_id() {
        let message = error_at(b"q1\ta\n\tb c\n", 2);
        assert!(message.contains("empty query id"), "{message}");
        let message = error_at(b"  \tb c\n", 1);
        assert!(message.contains("empty query id"), "{message}");
    }

    #[test]
    fn invalid_utf8() {
        let message = error_at(b"q1\ta\nq2\t\xff\xfe\n", 2);
        assert!(message.contains("invalid UTF-8"), "{message}");
    }

    #[test]
    fn gzip_input() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("q.tsv.gz");
        let mut gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&file).unwrap(),
            flate2::Compression::default(),
        );
        for i in 0..50 {
            writeln!(gz, "q{i}\tt{i} t{i} u").unwrap();
        }
        gz.finish().unwrap();
        let input = crate::readers::open_maybe_gzip(&file).unwrap();
        let queries = read_tsv_queries(input, &file).unwrap();
        assert_eq!(queries.len(), 50);
        assert_eq!(queries[7], rec("q7", &[("t7", 2.0), ("u", 1.0)]));
    }
}
