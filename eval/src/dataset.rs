//! A BEIR dataset folder: `corpus.jsonl`, `queries.jsonl`, `qrels/{split}.tsv` (each may also be
//! gzip-compressed, with `.gz` appended). The corpus is optional: the MS MARCO and TREC DL folders
//! ship queries and qrels only.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::jsonl::{CorpusReader, Query, QueryReader};
use crate::qrels::Qrels;

/// The files of one split of a BEIR dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeirDataset {
    dir: PathBuf,
    split: String,
    corpus: Option<PathBuf>,
    queries: PathBuf,
    qrels: PathBuf,
}

/// The first existing file among `name` and `name.gz` in `dir`.
fn find(dir: &Path, name: &str) -> Option<PathBuf> {
    [name.to_owned(), format!("{name}.gz")]
        .into_iter()
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

impl BeirDataset {
    /// Finds the files of `split` ("test", "dev", "train") in `dir`. Errors name the missing
    /// file; a missing corpus is not an error (see [`Self::corpus_path`]).
    pub fn open(dir: impl AsRef<Path>, split: &str) -> Result<Self> {
        let dir = dir.as_ref();
        if !dir.is_dir() {
            return Err(Error::MissingFile {
                what: "dataset folder".into(),
                path: dir.to_path_buf(),
            });
        }
        let queries = find(dir, "queries.jsonl").ok_or_else(|| Error::MissingFile {
            what: "queries".into(),
            path: dir.join("queries.jsonl"),
        })?;
        let qrels_dir = dir.join("qrels");
        let qrels_name = format!("{split}.tsv");
        let qrels = find(&qrels_dir, &qrels_name).ok_or_else(|| Error::MissingFile {
            what: format!("qrels for split {split:?}"),
            path: qrels_dir.join(&qrels_name),
        })?;
        Ok(BeirDataset {
            dir: dir.to_path_buf(),
            split: split.to_owned(),
            corpus: find(dir, "corpus.jsonl"),
            queries,
            qrels,
        })
    }

    /// The dataset folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The split.
    pub fn split(&self) -> &str {
        &self.split
    }

    /// The corpus file, or `None` when the dataset has no corpus.
    pub fn corpus_path(&self) -> Option<&Path> {
        self.corpus.as_deref()
    }

    /// The queries file.
    pub fn queries_path(&self) -> &Path {
        &self.queries
    }

    /// The qrels file of the split.
    pub fn qrels_path(&self) -> &Path {
        &self.qrels
    }

    /// Streams the corpus; [`Error::NoCorpus`] when the dataset has none.
    pub fn corpus(&self) -> Result<CorpusReader> {
        match &self.corpus {
            Some(p) => CorpusReader::open(p),
            None => Err(Error::NoCorpus {
                dir: self.dir.clone(),
            }),
        }
    }

    /// Reads the qrels of the split.
    pub fn qrels(&self) -> Result<Qrels> {
        Qrels::read(&self.qrels)
    }

    /// Streams every query of the queries file, judged or not.
    pub fn all_queries(&self) -> Result<QueryReader> {
        QueryReader::open(&self.queries)
    }

    /// The queries that have judgments in `qrels` (as BEIR evaluates), in file order. A judged
    /// query missing from the queries file is an error naming it.
    pub fn judged_queries(&self, qrels: &Qrels) -> Result<Vec<Query>> {
        let mut found = HashSet::new();
        let mut out = Vec::with_capacity(qrels.len());
        for q in self.all_queries()? {
            let q = q?;
            if qrels.contains_query(&q.id) && found.insert(q.id.clone()) {
                out.push(q);
            }
        }
        if let Some(missing) = qrels.query_ids().find(|id| !found.contains(*id)) {
            let count = qrels.len() - found.len();
            return Err(Error::Invalid(format!(
                "{}: {count} of {} judged queries missing from {} (first: {missing:?})",
                self.qrels.display(),
                qrels.len(),
                self.queries.display(),
            )));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn layout_and_missing_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        let e = BeirDataset::open(d, "test").expect_err("no queries");
        assert!(e.to_string().contains("missing queries"), "{e}");
        fs::write(
            d.join("queries.jsonl"),
            "{\"_id\": \"1\", \"text\": \"a\"}\n{\"_id\": 2, \"text\": \"b\"}\n",
        )
        .expect("write");
        let e = BeirDataset::open(d, "dev").expect_err("no qrels");
        assert!(
            e.to_string().contains("qrels for split \"dev\"")
                && e.to_string().contains("qrels/dev.tsv"),
            "{e}"
        );
        fs::create_dir(d.join("qrels")).expect("mkdir");
        fs::write(
            d.join("qrels/dev.tsv"),
            "query-id\tcorpus-id\tscore\n2\tx\t1\n",
        )
        .expect("w");
        let ds = BeirDataset::open(d, "dev").expect("opens");
        assert_eq!(ds.corpus_path(), None);
        assert!(matches!(ds.corpus(), Err(Error::NoCorpus { .. })));
        let qrels = ds.qrels().expect("qrels");
        let judged = ds.judged_queries(&qrels).expect("queries");
        assert_eq!(judged.len(), 1);
        assert_eq!(judged[0].id, "2");
        fs::write(d.join("qrels/dev.tsv"), "3\tx\t1\n2\tx\t1\n").expect("w");
        let e = ds
            .judged_queries(&ds.qrels().expect("qrels"))
            .expect_err("missing query");
        assert!(
            e.to_string().contains("1 of 2 judged queries missing"),
            "{e}"
        );
        fs::write(
            d.join("corpus.jsonl"),
            "{\"_id\": \"x\", \"text\": \"t\"}\n",
        )
        .expect("w");
        let ds = BeirDataset::open(d, "dev").expect("opens");
        assert_eq!(ds.corpus().expect("corpus").count(), 1);
    }
}
