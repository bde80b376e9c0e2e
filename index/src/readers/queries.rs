//! Query files in either supported format, detected from their content.
//!
//! A query file is JSONL (one `{"id": ..., "vector": {...}}` object per line, see
//! [`crate::readers::jsonl`]) when its first non-blank line starts with `{`, and Anserini TSV
//! (`qid<TAB>tok tok tok`, see [`crate::readers::tsv`]) otherwise. Either may be gzip-compressed.

use std::collections::HashMap;
use std::io::{BufRead, Cursor, Read};
use std::path::Path;

use crate::error::{Error, Result};
use crate::readers::jsonl::JsonlReader;
use crate::readers::tsv::for_each_tsv_query;
use crate::readers::{open_maybe_gzip, SparseRecord};

/// Reads every query of the file at `path` (JSONL or Anserini TSV, optionally gzip-compressed).
///
/// The format is detected from the first non-blank line. JSONL queries get the same validation
/// as JSONL documents (zero weights are dropped); TSV tokens repeated `n` times get weight `n`.
/// A query id that appears twice is a parse error at its second line; a file without queries is
/// an [`Error::Input`].
pub fn read_queries(path: &Path) -> Result<Vec<SparseRecord>> {
    let mut reader = open_maybe_gzip(path)?;

    // Read up to the first non-blank line to detect the format, then put those lines back in
    // front of the rest of the input so that line numbers stay right.
    let mut head = Vec::new();
    let mut is_jsonl = false;
    loop {
        let start = head.len();
        let n = reader
            .read_until(b'\n', &mut head)
            .map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        let line = &head[start..];
        let line = if start == 0 {
            line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line)
        } else {
            line
        };
        if let Some(&first) = line.iter().find(|b| !b.is_ascii_whitespace()) {
            is_jsonl = first == b'{';
            break;
        }
    }
    let input = Cursor::new(head).chain(reader);

    let mut queries = Vec::new();
    let mut lines: HashMap<String, u64> = HashMap::new();
    let mut add = |record: SparseRecord, line: u64| -> Result<()> {
        crate::collection::check_id("query", &record.id)
            .map_err(|m| Error::parse(path, line, m))?;
        if let Some(first) = lines.get(&record.id) {
            return Err(Error::parse(
                path,
                line,
                format!("duplicate query id {:?} (first on line {first})", record.id),
            ));
        }
        lines.insert(record.id.clone(), line);
        queries.push(record);
        Ok(())
    };
    if is_jsonl {
        let mut reader = JsonlReader::new(input, path);
        let mut record = SparseRecord::default();
        while reader.next_record(&mut record)? {
            add(std::mem::take(&mut record), reader.line())?;
        }
    } else {
        for_each_tsv_query(input, path, add)?;
    }
    if queries.is_empty() {
        return Err(Error::input(path, "no queries"));
    }
    Ok(queries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn rec(id: &str, entries: &[(&str, f32)]) -> SparseRecord {
        SparseRecord {
            id: id.to_owned(),
            entries: entries.iter().map(|&(t, w)| (t.to_owned(), w)).collect(),
        }
    }

    fn write_file(dir: &Path, name: &str, text: &[u8], gzip: bool) -> std::path::PathBuf {
        let file = dir.join(name);
        let out = std::fs::File::create(&file).unwrap();
        if gzip {
            let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
            gz.write_all(text).unwrap();
            gz.finish().unwrap();
        } else {
            let mut out = out;
            out.write_all(text).unwrap();
        }
        file
    }

    fn parse_error(result: Result<Vec<SparseRecord>>, line: u64) -> String {
        let err = result.expect_err("expected an error");
        match &err {
            Error::Parse { line: l, .. } => assert_eq!(*l, line, "{err}"),
            other => panic!("expected a parse error, got {other}"),
        }
        let message = err.to_string();
        assert!(message.contains(&format!(":{line}:")), "{message}");
        message
    }

    #[test]
    fn detects_tsv_and_jsonl() {
        let dir = tempfile::tempdir().unwrap();
        for gzip in [false, true] {
            let tsv = write_file(dir.path(), "q.tsv", b"\n  \n1\ta b a\n2\tc\n", gzip);
            assert_eq!(
                read_queries(&tsv).unwrap(),
                vec![rec("1", &[("a", 2.0), ("b", 1.0)]), rec("2", &[("c", 1.0)])]
            );
            let jsonl = write_file(
                dir.path(),
                "q.jsonl",
                b"\n  {\"id\": 1, \"vector\": {\"a\": 0.5, \"z\": 0}}\r\n{\"id\": \"2\", \"vector\": {}}\n",
                gzip,
            );
            assert_eq!(
                read_queries(&jsonl).unwrap(),
                vec![rec("1", &[("a", 0.5)]), rec("2", &[])]
            );
        }
    }

    #[test]
    fn line_numbers_count_the_detection_lines() {
        let dir = tempfile::tempdir().unwrap();
        let tsv = write_file(dir.path(), "q.tsv", b"\n\n1\ta\nbad\n", false);
        let message = parse_error(read_queries(&tsv), 4);
        assert!(message.contains("no TAB"), "{message}");
        let jsonl = write_file(
            dir.path(),
            "q.jsonl",
            b"\n{\"id\": 1, \"vector\": {}}\n{\"id\": 2, \"vector\": {\"a\": -1}}\n",
            true,
        );
        let message = parse_error(read_queries(&jsonl), 3);
        assert!(message.contains("is negative"), "{message}");
    }

    #[test]
    fn duplicate_query_ids() {
        let dir = tempfile::tempdir().unwrap();
        let tsv = write_file(dir.path(), "q.tsv", b"q1\ta\nq2\tb\n\nq1\tc\n", false);
        let message = parse_error(read_queries(&tsv), 4);
        assert!(message.contains("duplicate query id \"q1\""), "{message}");
        let jsonl = write_file(
            dir.path(),
            "q.jsonl",
            b"{\"id\": 7, \"vector\": {}}\n{\"id\": \"7\", \"vector\": {}}\n",
            false,
        );
        let message = parse_error(read_queries(&jsonl), 2);
        assert!(message.contains("duplicate query id \"7\""), "{message}");
    }

    #[test]
    fn jsonl_duplicate_terms() {
        let dir = tempfile::tempdir().unwrap();
        let jsonl = write_file(
            dir.path(),
            "q.jsonl",
            b"{\"id\": 1, \"vector\": {\"a\": 1, \"a\": 2}}\n",
            false,
        );
        let message = parse_error(read_queries(&jsonl), 1);
        assert!(
            message.contains("term \"a\" appears more than once"),
            "{message}"
        );
    }

    #[test]
    fn empty_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        for text in [&b""[..], b"\n \n"] {
            let file = write_file(dir.path(), "empty.tsv", text, false);
            match read_queries(&file) {
                Err(Error::Input { message, .. }) => assert!(message.contains("no queries")),
                other => panic!("expected an input error, got {other:?}"),
            }
        }
        assert!(matches!(
            read_queries(&dir.path().join("missing.tsv")),
            Err(Error::Io { .. })
        ));
    }

    #[test]
    fn real_splade_queries() {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../shared/data/splade-encoded-queries/"
        );
        // The DL19 passage topics file holds the 43 judged queries, DL20 all 200 topics.
        for (name, expected) in [
            ("topics.dl19-passage.splade-pp-ed.tsv.gz", 43),
            ("topics.dl20.splade-pp-ed.tsv.gz", 200),
        ] {
            let file = Path::new(dir).join(name);
            if !file.exists() {
                eprintln!("skipping: {} is missing", file.display());
                continue;
            }
            let queries = read_queries(&file).unwrap();

            // One query per non-blank line of the decompressed file.
            let mut all = String::new();
            flate2::read::MultiGzDecoder::new(std::fs::File::open(&file).unwrap())
                .read_to_string(&mut all)
                .unwrap();
            let lines = all.lines().filter(|l| !l.trim().is_empty()).count();
            assert_eq!(queries.len(), lines, "{name}");
            assert_eq!(queries.len(), expected, "{name}");
            for q in &queries {
                assert!(
                    !q.entries.is_empty(),
                    "{name}: query {} has no entries",
                    q.id
                );
                for (term, w) in &q.entries {
                    assert!(
                        *w >= 1.0 && w.fract() == 0.0,
                        "{name}: query {} term {term}: weight {w}",
                        q.id
                    );
                }
            }
        }
    }
}
