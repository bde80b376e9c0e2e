//! Lexical (BM25) fields for the sparse index: each document's BM25 term weights, computed from
//! its text as [`crate::Bm25Index`] scores it (tantivy's `en_stem` analyzer over title and text,
//! the same idf, `k1`, `b` and one-byte length norms), so that a query of analyzed words weighted
//! by their counts scores every document's BM25 as a dot product, and Block-Max Pruning answers
//! BM25 top-k queries.
//!
//! A document's weight for word `t` is `idf(t) · (k1 + 1) · tf / (tf + k1 · (1 − b + b · len /
//! avg_len))`; its term in the index is `bm25:t` ([`LEXICAL_PREFIX`]).

use std::collections::HashMap;
use std::path::Path;

use bmp_index::{Collection, LexicalField, LEXICAL_PREFIX};
use tantivy::fieldnorm::FieldNormReader;

use crate::bm25::Bm25Params;
use crate::encode::count_documents;
use crate::error::{Error, Result};
use crate::jsonl::{CorpusReader, Document};
use crate::progress::Progress;
use bmp_lexical::LexicalAnalyzer;

/// What a first pass over a corpus learns: each word's document frequency, each document's
/// length, and the number of words in all.
#[derive(Debug, Default)]
pub struct CorpusStats {
    doc_freq: HashMap<String, u32>,
    lengths: Vec<u32>,
    words: u64,
}

impl CorpusStats {
    /// Reads the BEIR corpus at `corpus` once (progress as the stage "counting words").
    pub fn gather(corpus: &Path, progress: &dyn Progress) -> Result<CorpusStats> {
        let total = count_documents(corpus)?;
        if total == 0 {
            return Err(Error::Invalid(format!(
                "{}: no documents in the corpus",
                corpus.display()
            )));
        }
        let mut analyzer = LexicalAnalyzer::default();
        let mut counts = HashMap::new();
        let mut stats = CorpusStats::default();
        for (i, doc) in CorpusReader::open(corpus)?.enumerate() {
            let len = {
                let doc = doc?;
                analyzer.document(&doc.title, &doc.text, &mut counts)
            };
            stats.lengths.push(len);
            stats.words += u64::from(len);
            for word in counts.keys() {
                match stats.doc_freq.get_mut(word.as_str()) {
                    Some(df) => *df += 1,
                    None => {
                        stats.doc_freq.insert(word.clone(), 1);
                    }
                }
            }
            if i % 1024 == 0 {
                progress.update("counting words", i as u64, total);
            }
        }
        progress.finish();
        Ok(stats)
    }

    /// Documents read.
    pub fn num_docs(&self) -> usize {
        self.lengths.len()
    }
}

/// The BM25 entries of the documents of a corpus, in corpus order, as collection terms.
pub struct LexicalWeigher {
    stats: CorpusStats,
    params: Bm25Params,
    avg_len: f32,
    analyzer: LexicalAnalyzer,
    counts: HashMap<String, u32>,
    /// Each word's term in the collection and its query weight (idf · (k1 + 1)).
    terms: HashMap<String, (u32, f32)>,
    next: usize,
}

impl LexicalWeigher {
    /// Weighs the documents `stats` counted, with `params`.
    pub fn new(stats: CorpusStats, params: Bm25Params) -> Self {
        let avg_len = stats.words as f32 / stats.lengths.len().max(1) as f32;
        LexicalWeigher {
            terms: HashMap::with_capacity(stats.doc_freq.len()),
            stats,
            params,
            avg_len,
            analyzer: LexicalAnalyzer::default(),
            counts: HashMap::new(),
            next: 0,
        }
    }

    /// Appends to `entries` the BM25 weights of `doc`, the next document of the corpus, with
    /// its words interned in `collection`.
    pub fn weigh(
        &mut self,
        doc: &Document,
        collection: &mut Collection,
        entries: &mut Vec<(u32, f32)>,
    ) -> Result<()> {
        let len = self
            .analyzer
            .document(&doc.title, &doc.text, &mut self.counts);
        if self.stats.lengths.get(self.next) != Some(&len) {
            return Err(Error::Invalid(format!(
                "document {:?} is not the one counted at its place: the corpus changed while \
                 it was read",
                doc.id
            )));
        }
        self.next += 1;
        // Lengths as tantivy stores them: one byte each, lossy above 40 words.
        let stored = FieldNormReader::id_to_fieldnorm(FieldNormReader::fieldnorm_to_id(len));
        let norm = self.params.length_norm(stored as f32, self.avg_len);
        let num_docs = self.stats.lengths.len() as u64;
        for (word, &tf) in &self.counts {
            let (term, weight) = match self.terms.get(word.as_str()) {
                Some(&t) => t,
                None => {
                    let df = self.stats.doc_freq.get(word.as_str()).copied().unwrap_or(1);
                    let idf = Bm25Params::idf(u64::from(df), num_docs);
                    let t = (
                        collection.intern_term(&format!("{LEXICAL_PREFIX}{word}")),
                        self.params.query_weight(idf, 1),
                    );
                    self.terms.insert(word.clone(), t);
                    t
                }
            };
            entries.push((term, Bm25Params::term_score(weight, tf as f32, norm)));
        }
        Ok(())
    }

    /// The lexical field these weights make, stored times `1 / scale`.
    pub fn field(&self, scale: f32) -> LexicalField {
        LexicalField {
            k1: self.params.k1,
            b: self.params.b,
            scale,
        }
    }
}

/// The collection of the BM25 weights of every document of the BEIR corpus at `corpus` (two
/// passes: statistics, then weights), with the lexical field it makes. Progress is reported as
/// the stages "counting words" and "weighing words".
pub fn lexical_collection(
    corpus: &Path,
    params: Bm25Params,
    progress: &dyn Progress,
) -> Result<(Collection, LexicalField)> {
    let stats = CorpusStats::gather(corpus, progress)?;
    let total = stats.num_docs() as u64;
    let mut weigher = LexicalWeigher::new(stats, params);
    let mut collection = Collection::new();
    let mut entries: Vec<(u32, f32)> = Vec::new();
    for (i, doc) in CorpusReader::open(corpus)?.enumerate() {
        let doc = doc?;
        entries.clear();
        weigher
            .weigh(&doc, &mut collection, &mut entries)
            .map_err(|e| e.context(corpus.display().to_string()))?;
        collection.add_document(&doc.id, &entries).map_err(|e| {
            Error::Invalid(format!("{}: document {:?}: {e}", corpus.display(), doc.id))
        })?;
        if i % 1024 == 0 {
            progress.update("weighing words", i as u64, total);
        }
    }
    progress.finish();
    Ok((collection, weigher.field(1.0)))
}

/// The collection of a BEIR corpus with two fields: the sparse vectors of `encoder` and the BM25
/// weights of the text (see [`lexical_collection`]). The BM25 weights are scaled into the range
/// of the encoder's, so that one quantizer serves both; the field's scale undoes it.
pub fn hybrid_collection(
    encoder: &bmp_encoder::TextEncoder,
    corpus: &Path,
    params: Bm25Params,
    progress: &dyn Progress,
) -> Result<(Collection, LexicalField)> {
    let stats = CorpusStats::gather(corpus, progress)?;
    let mut weigher = LexicalWeigher::new(stats, params);
    let mut collection = Collection::new();
    crate::encode::encode_corpus_into_with(
        encoder,
        corpus,
        progress,
        &mut collection,
        &mut |doc, collection, entries| weigher.weigh(doc, collection, entries),
    )?;
    let scale = share_quantizer(&mut collection);
    Ok((collection, weigher.field(scale)))
}

/// [`hybrid_collection`] from vectors encoded earlier: the documents of `learned` (sparse
/// vectors, by id) joined with the BM25 weights of the BEIR corpus at `corpus`, in corpus order.
/// Every document must be in both, once.
pub fn hybrid_from_vectors(
    learned: &Collection,
    corpus: &Path,
    params: Bm25Params,
    progress: &dyn Progress,
) -> Result<(Collection, LexicalField)> {
    let stats = CorpusStats::gather(corpus, progress)?;
    if stats.num_docs() != learned.num_docs() {
        return Err(Error::Invalid(format!(
            "{}: {} documents, but {} document vectors: the vectors must be those of this corpus",
            corpus.display(),
            stats.num_docs(),
            learned.num_docs()
        )));
    }
    let total = stats.num_docs() as u64;
    let mut weigher = LexicalWeigher::new(stats, params);
    let by_id: HashMap<&str, usize> = (0..learned.num_docs())
        .map(|d| (learned.doc_id(d), d))
        .collect();
    let mut collection = Collection::new();
    // The learned terms keep their ids.
    for term in learned.terms() {
        collection.intern_term(term);
    }
    let mut entries: Vec<(u32, f32)> = Vec::new();
    for (i, doc) in CorpusReader::open(corpus)?.enumerate() {
        let doc = doc?;
        let Some(&d) = by_id.get(doc.id.as_str()) else {
            return Err(Error::Invalid(format!(
                "{}: document {:?} has no vector",
                corpus.display(),
                doc.id
            )));
        };
        let (terms, weights) = learned.doc(d);
        entries.clear();
        entries.extend(terms.iter().copied().zip(weights.iter().copied()));
        weigher
            .weigh(&doc, &mut collection, &mut entries)
            .map_err(|e| e.context(corpus.display().to_string()))?;
        collection.add_document(&doc.id, &entries).map_err(|e| {
            Error::Invalid(format!("{}: document {:?}: {e}", corpus.display(), doc.id))
        })?;
        if i % 1024 == 0 {
            progress.update("joining words and vectors", i as u64, total);
        }
    }
    progress.finish();
    let scale = share_quantizer(&mut collection);
    Ok((collection, weigher.field(scale)))
}

/// Scales the lexical weights of a two-field collection into the range of the learned ones, so
/// that one quantizer serves both; returns the factor that gives BM25 units back (the field's
/// scale).
fn share_quantizer(collection: &mut Collection) -> f32 {
    let lexical = |t: &str| t.starts_with(LEXICAL_PREFIX);
    let (max_lexical, max_learned) = collection.max_weights_split(lexical);
    let scale = if max_lexical > 0.0 && max_learned > 0.0 {
        max_lexical / max_learned
    } else {
        1.0
    };
    if scale != 1.0 {
        collection.scale_weights(1.0 / scale, lexical);
    }
    scale
}

/// The text queries of a BEIR queries.jsonl (`{"_id", "text"}`) as entries over a lexical field,
/// in BM25 units over `field` ([`LexicalAnalyzer::bm25_query`]).
pub fn lexical_query_file(
    path: &Path,
    field: &LexicalField,
) -> Result<Vec<bmp_index::readers::SparseRecord>> {
    let mut analyzer = LexicalAnalyzer::default();
    crate::jsonl::QueryReader::open(path)?
        .map(|q| {
            let q = q?;
            let entries = analyzer.bm25_query(&q.text, field);
            Ok(bmp_index::readers::SparseRecord { entries, id: q.id })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::bm25::{Bm25Index, Bm25Storage};
    use crate::progress::Silent;

    #[test]
    fn dot_products_are_the_bm25_scores() {
        let texts = [
            ("d1", "Flow", "laminar flow over a flat plate"),
            (
                "d2",
                "",
                "turbulent flow, flows and flowing: heat transfer in flows",
            ),
            (
                "d3",
                "Shells",
                "buckling of thin cylindrical shells under axial compression",
            ),
            ("d4", "", "heat heat heat"),
            ("d5", "", ""),
        ];
        let dir = tempfile::tempdir().expect("tempdir");
        let corpus = dir.path().join("corpus.jsonl");
        let mut f = std::fs::File::create(&corpus).expect("create");
        for (id, title, text) in texts {
            let line = format!(r#"{{"_id": "{id}", "title": "{title}", "text": "{text}"}}"#);
            writeln!(f, "{line}").expect("write");
        }
        drop(f);
        for params in [
            Bm25Params::default(),
            Bm25Params::new(0.9, 0.4).expect("valid"),
        ] {
            let (collection, field) = lexical_collection(&corpus, params, &Silent).expect("weighs");
            assert_eq!((field.k1, field.b, field.scale), (params.k1, params.b, 1.0));
            assert_eq!(collection.num_docs(), 5, "the empty document keeps its id");
            let bm25 = Bm25Index::build(
                &Bm25Storage::Ram,
                texts.iter().map(|(i, t, x)| Ok(Document::new(*i, *t, *x))),
            )
            .expect("builds")
            .with_params(params);
            for query in [
                "flow",
                "heat flows",
                "flat shells heat",
                "compression axial axial",
            ] {
                let entries = LexicalAnalyzer::default().query(query);
                assert!(entries.iter().all(|(t, _)| t.starts_with(LEXICAL_PREFIX)));
                let want = bm25.search(query, 10).expect("searches");
                let mut got: Vec<(String, f32)> = (0..collection.num_docs())
                    .map(|d| {
                        let (terms, weights) = collection.doc(d);
                        let score: f32 = terms
                            .iter()
                            .zip(weights)
                            .map(|(&t, &w)| {
                                let count = entries
                                    .iter()
                                    .find(|(e, _)| e == collection.term(t))
                                    .map_or(0.0, |e| e.1);
                                count * w
                            })
                            .sum();
                        (collection.doc_id(d).to_owned(), score)
                    })
                    .filter(|(_, s)| *s > 0.0)
                    .collect();
                got.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                assert_eq!(got.len(), want.len(), "{query}");
                for ((gd, gs), (wd, ws)) in got.iter().zip(&want) {
                    assert_eq!(gd, wd, "{query}");
                    assert!((gs - ws).abs() <= 1e-5 * ws, "{query}: {gs} vs {ws}");
                }
            }
        }
        assert!(lexical_collection(
            &dir.path().join("missing.jsonl"),
            Bm25Params::default(),
            &Silent
        )
        .is_err());
    }
}
