//! A BM25 baseline on tantivy: title and text indexed together in one field with tantivy's
//! `en_stem` analyzer (simple tokenizer, tokens over 40 bytes dropped, lower case, Snowball
//! English stemmer). Tantivy stores the postings, term frequencies and document lengths; the
//! scores are computed here, with [`Bm25Params`] (k1 = 1.2, b = 0.75 unless set), the same way
//! tantivy computes them: `idf = ln(1 + (N − n + 0.5) / (n + 0.5))`, document lengths as
//! tantivy's one-byte field norms, and per term
//! `idf · tf · (k1 + 1) / (tf + k1 · (1 − b + b · len / avg_len))`. Every matching document is
//! scored (term at a time), so the top `k` is exact.
//!
//! Queries are never parsed with a query language: the text goes through the same analyzer and
//! becomes a disjunction of its terms, each weighted by its number of occurrences in the query
//! (a bag of words, as Anserini builds it). Quotes, colons, parentheses, `AND`, `-` are just
//! text. Results are ordered by score descending, then external id ascending; the top `k` are
//! cut in that order, so the output does not depend on how tantivy split the index into segments.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::StrColumn;
use tantivy::fieldnorm::FieldNormReader;
use tantivy::postings::Postings;
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions, FAST, STRING,
};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{
    DocId, DocSet, Index, IndexReader, ReloadPolicy, Score, Searcher, SegmentOrdinal,
    SegmentReader, TantivyDocument, TantivyError, Term, TERMINATED,
};

use crate::error::{Error, Result};
use crate::jsonl::{Document, Query};
use crate::run::Run;

/// Name of the field holding the external id (a fast `str` column, not tokenized).
const ID_FIELD: &str = "id";
/// Name of the field holding title and text.
const BODY_FIELD: &str = "body";
/// The analyzer of the body field.
const ANALYZER: &str = "en_stem";
/// Indexing memory budget (all threads together).
const WRITER_MEMORY: usize = 128 << 20;

pub use bmp_lexical::{en_stem, Bm25Params};

/// Where to build a BM25 index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bm25Storage {
    /// In memory, gone when the index is dropped.
    Ram,
    /// In a directory (created if missing; it must not hold an index already).
    Dir(PathBuf),
}

/// A BM25 index over a corpus, ready to search.
pub struct Bm25Index {
    index: Index,
    _reader: IndexReader,
    searcher: Searcher,
    body: Field,
    analyzer: TextAnalyzer,
    params: Bm25Params,
    /// The mean document length in words (the searcher's, fixed: the reader never reloads).
    avg_len: f32,
    /// `params.length_norm` of each of the 256 one-byte field norms.
    norms: [f32; 256],
}

/// The length part of BM25's denominator for each of the 256 one-byte field norms.
fn length_norms(params: &Bm25Params, avg_len: f32) -> [f32; 256] {
    let mut norms = [0f32; 256];
    for (id, norm) in norms.iter_mut().enumerate() {
        let len = FieldNormReader::id_to_fieldnorm(id as u8) as f32;
        *norm = params.length_norm(len, avg_len);
    }
    norms
}

impl Bm25Index {
    /// Indexes `docs` (title and text together, external id kept) and opens the result for
    /// search. The first error from `docs` stops the build and is returned.
    pub fn build<I>(storage: &Bm25Storage, docs: I) -> Result<Self>
    where
        I: IntoIterator<Item = Result<Document>>,
    {
        let mut builder = Schema::builder();
        builder.add_text_field(ID_FIELD, STRING | FAST);
        let indexing = TextFieldIndexing::default()
            .set_tokenizer(ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqs);
        builder.add_text_field(
            BODY_FIELD,
            TextOptions::default().set_indexing_options(indexing),
        );
        let schema = builder.build();
        let index = match storage {
            Bm25Storage::Ram => Index::create_in_ram(schema),
            Bm25Storage::Dir(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                Index::create_in_dir(dir, schema)?
            }
        };
        index.tokenizers().register(ANALYZER, en_stem());
        let (id, body) = fields(&index)?;
        let mut writer = index.writer::<TantivyDocument>(WRITER_MEMORY)?;
        for doc in docs {
            let doc = doc?;
            let mut td = TantivyDocument::new();
            td.add_text(id, &doc.id);
            td.add_text(body, &doc.title);
            td.add_text(body, &doc.text);
            writer.add_document(td)?;
        }
        writer.commit()?;
        writer.wait_merging_threads()?;
        Self::from_index(index)
    }

    /// Opens an index built earlier in `dir` by [`Self::build`].
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        Self::from_index(Index::open_in_dir(dir.as_ref())?)
    }

    fn from_index(index: Index) -> Result<Self> {
        // The analyzer of the lexical field, so that both cut words alike.
        index.tokenizers().register(ANALYZER, en_stem());
        let (_, body) = fields(&index)?;
        let analyzer = index.tokenizer_for_field(body)?;
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let searcher = reader.searcher();
        let mut total_tokens = 0u64;
        for segment in searcher.segment_readers() {
            total_tokens += segment.inverted_index(body)?.total_num_tokens();
        }
        let avg_len = total_tokens as f32 / searcher.num_docs().max(1) as f32;
        let params = Bm25Params::default();
        Ok(Bm25Index {
            index,
            _reader: reader,
            searcher,
            body,
            analyzer,
            params,
            avg_len,
            norms: length_norms(&params, avg_len),
        })
    }

    /// The same index scored with `params`.
    pub fn with_params(mut self, params: Bm25Params) -> Self {
        self.params = params;
        self.norms = length_norms(&params, self.avg_len);
        self
    }

    /// The parameters scores are computed with.
    pub fn params(&self) -> Bm25Params {
        self.params
    }

    /// Number of indexed documents.
    pub fn num_docs(&self) -> u64 {
        self.searcher.num_docs()
    }

    /// The underlying tantivy index.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// The analyzed terms of `text` with their number of occurrences, in term order: what a
    /// query searches for.
    pub fn query_terms(&self, text: &str) -> Vec<(String, u32)> {
        let mut counts: BTreeMap<String, u32> = BTreeMap::new();
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(text);
        stream.process(&mut |token| {
            *counts.entry(token.text.clone()).or_default() += 1;
        });
        counts.into_iter().collect()
    }

    /// The top `k` documents for free text `query`: (external id, BM25 score), score
    /// descending, then id ascending. Any text is accepted; a query without a term (empty, only
    /// punctuation) returns nothing.
    pub fn search(&self, query: &str, k: usize) -> Result<Vec<(String, f32)>> {
        let terms = self.query_terms(query);
        if terms.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let num_docs = self.searcher.num_docs();
        let norms = &self.norms;
        let mut weighted = Vec::with_capacity(terms.len());
        for (text, count) in terms {
            let term = Term::from_field_text(self.body, &text);
            let doc_freq = self.searcher.doc_freq(&term)?;
            if doc_freq > 0 {
                let idf = Bm25Params::idf(doc_freq, num_docs);
                weighted.push((term, self.params.query_weight(idf, count)));
            }
        }
        let collector = TopKById { k };
        let mut fruits = Vec::with_capacity(self.searcher.segment_readers().len());
        for (ord, segment) in self.searcher.segment_readers().iter().enumerate() {
            let mut top = collector.for_segment(ord as SegmentOrdinal, segment)?;
            let lengths = segment.get_fieldnorms_reader(self.body)?;
            let inverted = segment.inverted_index(self.body)?;
            let mut scores = vec![0f32; segment.max_doc() as usize];
            let mut touched: Vec<DocId> = Vec::new();
            for (term, weight) in &weighted {
                let postings = inverted
                    .read_postings(term, IndexRecordOption::WithFreqs)
                    .map_err(|e| Error::io(Path::new("BM25 postings"), e))?;
                let Some(mut postings) = postings else {
                    continue;
                };
                let mut doc = postings.doc();
                while doc != TERMINATED {
                    let tf = postings.term_freq() as f32;
                    let norm = norms[lengths.fieldnorm_id(doc) as usize];
                    let slot = &mut scores[doc as usize];
                    if *slot == 0.0 {
                        touched.push(doc);
                    }
                    *slot += Bm25Params::term_score(*weight, tf, norm);
                    doc = postings.advance();
                }
            }
            let alive = segment.alive_bitset();
            for doc in touched {
                if alive.is_none_or(|a| a.is_alive(doc)) {
                    top.collect(doc, scores[doc as usize]);
                }
            }
            fruits.push(top.harvest());
        }
        Ok(collector.merge_fruits(fruits)?)
    }

    /// Searches every query and collects the results into a run (scores widened to `f64`).
    pub fn search_run<'a, I>(&self, queries: I, k: usize) -> Result<Run>
    where
        I: IntoIterator<Item = &'a Query>,
    {
        let mut run = Run::new();
        for q in queries {
            let hits = self.search(&q.text, k)?;
            run.insert(
                q.id.clone(),
                hits.into_iter().map(|(id, s)| (id, f64::from(s))),
            );
        }
        Ok(run)
    }
}

fn fields(index: &Index) -> Result<(Field, Field)> {
    let schema = index.schema();
    let get = |name: &str| {
        schema.get_field(name).map_err(|_| {
            Error::Invalid(format!(
                "not a BM25 index built by bmp-eval: no field {name:?}"
            ))
        })
    };
    Ok((get(ID_FIELD)?, get(BODY_FIELD)?))
}

/// A candidate within one segment. Within a segment, the ordinals of the id column follow the
/// byte order of the ids, so (score, ordinal) orders candidates as (score, id) does.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    score: Score,
    ord: u64,
}

/// Greater means worse: lower score, or equal score and larger id.
impl Ord for Candidate {
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then(self.ord.cmp(&other.ord))
    }
}
impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Candidate {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Candidate {}

/// Top-k collector with ties broken by external id ascending.
struct TopKById {
    k: usize,
}

/// Candidates are buffered and cut back to the best `k` whenever the buffer holds `2k`
/// (selection, linear time); the worst one kept then bounds what may still enter.
struct TopKSegment {
    k: usize,
    ids: Option<StrColumn>,
    buffer: Vec<Candidate>,
    bound: Option<Candidate>,
}

impl TopKSegment {
    /// Keeps the best `k` candidates (unordered) and records the worst of them as the bound.
    fn cut(&mut self) {
        if self.buffer.len() > self.k {
            self.buffer.select_nth_unstable(self.k - 1);
            self.buffer.truncate(self.k);
            self.bound = self.buffer.last().copied();
        }
    }
}

impl Collector for TopKById {
    type Fruit = Vec<(String, Score)>;
    type Child = TopKSegment;

    fn for_segment(
        &self,
        _ord: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<TopKSegment> {
        Ok(TopKSegment {
            k: self.k,
            ids: reader.fast_fields().str(ID_FIELD)?,
            buffer: Vec::with_capacity(2 * self.k.min(1 << 16)),
            bound: None,
        })
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(
        &self,
        segments: Vec<Result<Vec<(String, Score)>, String>>,
    ) -> tantivy::Result<Vec<(String, Score)>> {
        let mut all = Vec::new();
        for s in segments {
            all.extend(s.map_err(TantivyError::InternalError)?);
        }
        all.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        all.truncate(self.k);
        Ok(all)
    }
}

impl SegmentCollector for TopKSegment {
    type Fruit = Result<Vec<(String, Score)>, String>;

    fn collect(&mut self, doc: DocId, score: Score) {
        if self.bound.is_some_and(|b| score < b.score) {
            return; // cannot enter: skip the id lookup
        }
        let ord = self
            .ids
            .as_ref()
            .and_then(|c| c.term_ords(doc).next())
            .unwrap_or(u64::MAX);
        let candidate = Candidate { score, ord };
        if self.bound.is_some_and(|b| candidate >= b) {
            return;
        }
        self.buffer.push(candidate);
        if self.buffer.len() >= 2 * self.k {
            self.cut();
        }
    }

    fn harvest(mut self) -> Self::Fruit {
        self.cut();
        let mut candidates = std::mem::take(&mut self.buffer);
        candidates.sort_unstable(); // best first
        let Some(col) = &self.ids else {
            return Ok(candidates
                .into_iter()
                .map(|c| (String::new(), c.score))
                .collect());
        };
        // Resolve the ids in one sorted pass over the dictionary (one lookup each is far slower).
        let mut ords: Vec<u64> = candidates
            .iter()
            .map(|c| c.ord)
            .filter(|&o| o != u64::MAX)
            .collect();
        ords.sort_unstable();
        ords.dedup();
        let mut names = Vec::with_capacity(ords.len());
        let found = col
            .dictionary()
            .sorted_ords_to_term_cb(&ords, |bytes| {
                names.push(String::from_utf8_lossy(bytes).into_owned());
            })
            .map_err(|e| format!("reading document ids: {e}"))?;
        if !found || names.len() != ords.len() {
            return Err("reading document ids: ordinal out of range".to_owned());
        }
        Ok(candidates
            .into_iter()
            .map(|c| {
                let id = ords
                    .binary_search(&c.ord)
                    .map_or_else(|_| String::new(), |i| names[i].clone());
                (id, c.score)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs() -> Vec<Result<Document>> {
        [
            ("d3", "Running", "dogs are running in the park"),
            ("d1", "", "a cat sat on the mat"),
            ("d2", "", "a cat sat on the mat"),
            ("d4", "Cats", "cats and dogs: (friends) AND \"enemies\""),
        ]
        .into_iter()
        .map(|(i, t, x)| Ok(Document::new(i, t, x)))
        .collect()
    }

    #[test]
    fn stems_ties_and_hostile_queries() {
        let index = Bm25Index::build(&Bm25Storage::Ram, docs()).expect("builds");
        assert_eq!(index.num_docs(), 4);
        let hits = index.search("run", 10).expect("searches");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].0, "d3");
        // d1 and d2 are identical: ties broken by id ascending, also at the cut.
        let hits = index.search("mat", 1).expect("searches");
        assert_eq!(
            hits.iter().map(|h| h.0.as_str()).collect::<Vec<_>>(),
            ["d1"]
        );
        let hits = index.search("mat", 10).expect("searches");
        assert_eq!(hits[0].1, hits[1].1);
        assert_eq!(hits[1].0, "d2");
        for q in [
            "\"unbalanced quote",
            "title:cat AND (dog OR -mat)",
            "+++ --- ::: ))) ((( [ ] { } ^ ~ * ?",
            "NOT",
            "",
        ] {
            index.search(q, 10).expect("never a parse error");
        }
        assert!(index.search("?!", 10).expect("no terms").is_empty());
        let hits = index.search("cats AND dogs", 10).expect("searches");
        assert_eq!(hits[0].0, "d4");
        assert_eq!(
            index.query_terms("Cats cat, CATS!"),
            vec![("cat".to_owned(), 3)]
        );
    }

    #[test]
    fn top_k_is_a_prefix_of_the_full_ranking() {
        // 300 documents in a few groups of identical text: long runs of tied scores.
        let docs = (0..300).map(|i| {
            let text = match i % 4 {
                0 => "alpha beta",
                1 => "alpha",
                2 => "alpha alpha gamma delta",
                _ => "beta gamma",
            };
            Ok(Document::new(format!("doc{}", (i * 37) % 300), "", text))
        });
        let index = Bm25Index::build(&Bm25Storage::Ram, docs).expect("builds");
        let full = index.search("alpha beta gamma", 1000).expect("searches");
        assert_eq!(full.len(), 300);
        for w in full.windows(2) {
            assert!(
                w[0].1 > w[1].1 || (w[0].1 == w[1].1 && w[0].0 < w[1].0),
                "{w:?}"
            );
        }
        for k in [1, 7, 50, 74, 75, 76, 151, 299] {
            let top = index.search("alpha beta gamma", k).expect("searches");
            assert_eq!(top, full[..k], "k = {k}");
        }
    }

    /// Tantivy's own BM25 scores (a disjunction of term queries, each boosted by its count),
    /// best first.
    fn tantivy_scores(index: &Bm25Index, query: &str) -> Vec<f32> {
        use tantivy::collector::TopDocs;
        use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
        let clauses: Vec<(Occur, Box<dyn Query>)> = index
            .query_terms(query)
            .into_iter()
            .map(|(text, count)| {
                let term = Term::from_field_text(index.body, &text);
                let q: Box<dyn Query> =
                    Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs));
                let q: Box<dyn Query> = Box::new(BoostQuery::new(q, count as Score));
                (Occur::Should, q)
            })
            .collect();
        let hits = index
            .searcher
            .search(
                &BooleanQuery::new(clauses),
                &TopDocs::with_limit(1000).order_by_score(),
            )
            .expect("tantivy searches");
        hits.into_iter().map(|(score, _)| score).collect()
    }

    #[test]
    fn default_parameters_give_tantivys_scores() {
        let texts = [
            "alpha beta gamma",
            "alpha alpha alpha alpha delta epsilon zeta eta theta iota kappa",
            "beta",
            "gamma gamma beta delta",
            "lambda mu nu xi omicron pi rho sigma tau upsilon alpha",
        ];
        let docs = (0..200).map(|i| {
            let text = format!("{} {}", texts[i % 5], texts[(i * 7 + 3) % 5]);
            Ok(Document::new(format!("d{i:03}"), "", text))
        });
        let index = Bm25Index::build(&Bm25Storage::Ram, docs).expect("builds");
        for query in [
            "alpha",
            "alpha beta beta",
            "gamma delta zeta lambda",
            "beta mu",
        ] {
            let ours = index.search(query, 1000).expect("searches");
            let theirs = tantivy_scores(&index, query);
            let mine: Vec<f32> = ours.iter().map(|h| h.1).collect();
            assert_eq!(mine.len(), theirs.len(), "{query}");
            for (a, b) in mine.iter().zip(&theirs) {
                assert!((a - b).abs() <= 1e-5 * b.abs(), "{query}: {a} vs {b}");
            }
        }
        // Other parameters change the scores; k1 = 0 ignores frequencies, b = 0 lengths.
        let flat = Bm25Index::build(
            &Bm25Storage::Ram,
            (0..3).map(|i| {
                Ok(Document::new(
                    format!("d{i}"),
                    "",
                    ["a", "a a", "a b c d e f"][i],
                ))
            }),
        )
        .expect("builds")
        .with_params(Bm25Params::new(0.0, 0.75).expect("valid"));
        let hits = flat.search("a", 10).expect("searches");
        assert!(hits.iter().all(|h| h.1 == hits[0].1), "{hits:?}");
        let flat = flat.with_params(Bm25Params::new(1.2, 0.0).expect("valid"));
        let hits = flat.search("a", 10).expect("searches");
        assert_eq!(hits[0].0, "d1");
        assert_eq!(hits[1].1, hits[2].1, "{hits:?}");
        assert!(Bm25Params::new(-1.0, 0.5).is_err());
        assert!(Bm25Params::new(1.0, 1.5).is_err());
        assert!(Bm25Params::new(f32::NAN, 0.5).is_err());
    }

    #[test]
    fn directory_storage_reopens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bm25");
        let built = Bm25Index::build(&Bm25Storage::Dir(path.clone()), docs()).expect("builds");
        let expected = built.search("cat dogs", 10).expect("searches");
        drop(built);
        let reopened = Bm25Index::open(&path).expect("opens");
        assert_eq!(reopened.search("cat dogs", 10).expect("searches"), expected);
        let bad = Bm25Index::build(&Bm25Storage::Ram, vec![Err(Error::Invalid("boom".into()))]);
        assert!(bad.is_err());
    }
}
