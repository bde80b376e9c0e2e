//! Words of text as BM25 indexes and queries them.

use std::collections::HashMap;

use bmp_index::{LexicalField, LEXICAL_PREFIX};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, TextAnalyzer,
};

/// Tantivy's `en_stem` analyzer: simple tokenizer, tokens over 40 bytes dropped, lower case,
/// Snowball English stemmer.
pub fn en_stem() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(Stemmer::new(Language::English))
        .build()
}

/// Words of text as the lexical field and the BM25 baseline analyze them ([`en_stem`]).
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

    /// The words of a document's title and text (as BM25 indexes them, together) with their
    /// counts, in `counts` (cleared first); returns the document's length in words.
    pub fn document(&mut self, title: &str, text: &str, counts: &mut HashMap<String, u32>) -> u32 {
        counts.clear();
        self.count(title, counts) + self.count(text, counts)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_stemmed_lower_case_and_counted() {
        let mut analyzer = LexicalAnalyzer::default();
        assert_eq!(
            analyzer.query("Flows, flowing and FLOW; heat"),
            vec![
                ("bm25:and".to_owned(), 1.0),
                ("bm25:flow".to_owned(), 3.0),
                ("bm25:heat".to_owned(), 1.0),
            ]
        );
        let long = "x".repeat(41);
        assert!(
            analyzer.query(&long).is_empty(),
            "tokens over 40 bytes are dropped"
        );
        let mut counts = HashMap::new();
        assert_eq!(analyzer.document("Heat", "heat transfer", &mut counts), 3);
        assert_eq!(counts["heat"], 2);
        let field = LexicalField {
            k1: 1.2,
            b: 0.75,
            scale: 2.0,
        };
        assert_eq!(
            analyzer.bm25_query("heat heat", &field),
            vec![("bm25:heat".to_owned(), 4.0)]
        );
    }
}
