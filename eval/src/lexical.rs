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
use tantivy::tokenizer::TextAnalyzer;

use crate::bm25::{en_stem, Bm25Params};
use crate::encode::count_documents;
use crate::error::{Error, Result};
use crate::jsonl::{CorpusReader, Document};
use crate::progress::Progress;

/// The lexical weight λ of a hybrid query when none is given, chosen on SciFact (nDCG@10 0.7075
/// against 0.6845 for BM25 alone and 0.6465 for SPLADE alone) and kept unchanged on Cranfield
/// and CACM, where it is also the best of 0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7 and 1.
pub const DEFAULT_LEXICAL_WEIGHT: f32 = 0.5;

/// Words of text as the lexical field and the BM25 baseline analyze them.
#[derive(Clone)]
pub struct LexicalAnalyzer {
    analyzer: TextAnalyzer,
}

impl Default for LexicalAnalyzer {
    fn default() -> Self {
        LexicalAnalyzer {
            analyzer: en_stem(),
        }
    }
}

impl LexicalAnalyzer {
    /// Adds the count of each analyzed word of `text` to `counts`; returns the number of words.
    pub fn count(&mut self, text: &str, counts: &mut HashMap<String, u32>) -> u32 {
        let mut n = 0;
        let mut stream = self.analyzer.token_stream(text);
        stream.process(&mut |token| {
            n += 1;
            match counts.get_mut(token.text.as_str()) {
                Some(c) => *c += 1,
                None => {
                    counts.insert(token.text.clone(), 1);
                }
            }
        });
        n
    }

    /// The words of a document (title and text, as BM25 indexes them) with their counts, and
    /// the document's length in words.
    pub fn document(&mut self, doc: &Document, counts: &mut HashMap<String, u32>) -> u32 {
        counts.clear();
        self.count(&doc.title, counts) + self.count(&doc.text, counts)
    }

    /// The entries of a text query over a lexical field: `bm25:word` terms weighted by their
    /// counts in `text`, in term order.
    pub fn query(&mut self, text: &str) -> Vec<(String, f32)> {
        let mut counts = HashMap::new();
        self.count(text, &mut counts);
        let mut entries: Vec<(String, f32)> = counts
            .into_iter()
            .map(|(word, n)| (format!("{LEXICAL_PREFIX}{word}"), n as f32))
            .collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries
    }

    /// [`Self::query`] over `field`, its weights times the field's scale: a document's score
    /// is then its BM25 even where the field's weights were scaled to share a quantizer.
    pub fn bm25_query(&mut self, text: &str, field: &LexicalField) -> Vec<(String, f32)> {
        let mut entries = self.query(text);
        for (_, w) in &mut entries {
            *w *= field.scale;
        }
        entries
    }
}

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
            let len = analyzer.document(&doc?, &mut counts);
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
        let len = self.analyzer.document(doc, &mut self.counts);
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
    Ok((collection, weigher.field(scale)))
}

/// The entries of a hybrid query over an index with a learned and a lexical field:
/// `(1 − lambda) · learned / L + lambda · bm25 / B`, where `L` and `B` are the query's upper
/// bounds in each field (the sum over its terms of the weight times the term's largest stored
/// weight), so that both parts range over [0, 1] and `lambda` means the same on every
/// collection. `learned` are the encoder's entries, `lexical` [`LexicalAnalyzer::query`]'s.
pub fn hybrid_entries(
    index: &bmp_index::Index,
    learned: &[(String, f32)],
    lexical: &[(String, f32)],
    lambda: f32,
) -> Result<Vec<(String, f32)>> {
    if !(0.0..=1.0).contains(&lambda) {
        return Err(Error::InvalidOption(format!(
            "the lexical weight must lie in [0, 1], not {lambda}"
        )));
    }
    if index.header().lexical().is_none() {
        return Err(Error::Invalid(format!(
            "{}: no lexical field (build it with --lexical)",
            index.path().display()
        )));
    }
    // A part's largest score: its weights times its terms' largest stored weights.
    let unit = index.quantizer().scale();
    let bound = |entries: &[(String, f32)]| -> Result<f32> {
        let mut sum = 0f32;
        for (term, w) in entries {
            if let Some(id) = index.term_id(term)? {
                sum += w * f32::from(index.term_stats(id)?.max_impact) * unit;
            }
        }
        Ok(sum)
    };
    let mut out = Vec::with_capacity(learned.len() + lexical.len());
    for (entries, share) in [(learned, 1.0 - lambda), (lexical, lambda)] {
        let b = bound(entries)?;
        if b > 0.0 && share > 0.0 {
            out.extend(entries.iter().map(|(t, w)| (t.clone(), w * share / b)));
        }
    }
    Ok(out)
}

/// The text queries of a BEIR queries.jsonl (`{"_id", "text"}`) as entries over a lexical field:
/// in BM25 units over `field` ([`LexicalAnalyzer::bm25_query`]), or, without it, weighted by
/// their counts alone ([`LexicalAnalyzer::query`]).
pub fn lexical_query_file(
    path: &Path,
    field: Option<&LexicalField>,
) -> Result<Vec<bmp_index::readers::SparseRecord>> {
    let mut analyzer = LexicalAnalyzer::default();
    crate::jsonl::QueryReader::open(path)?
        .map(|q| {
            let q = q?;
            let entries = match field {
                Some(field) => analyzer.bm25_query(&q.text, field),
                None => analyzer.query(&q.text),
            };
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
