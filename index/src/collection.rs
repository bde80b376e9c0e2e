//! An in-memory collection of sparse documents: what the readers produce and the builder consumes.
//!
//! Terms are interned to temporary ids in first-seen order; the builder later renumbers them in
//! lexicographic order. Postings are kept in flat arrays (one `u32` term id and one `f32` weight per
//! posting) so memory grows with the number of postings, not with the size of the input file.

use std::collections::HashMap;

use foldhash::fast::FixedState;

use xxhash_rust::xxh3::xxh3_64;

/// Checks that an external `kind` id ("document", "query") can be written in a TREC run: not
/// empty, no whitespace or control characters.
pub fn check_id(kind: &str, id: &str) -> Result<(), String> {
    if id.is_empty() {
        Err(format!("empty {kind} id"))
    } else if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(format!(
            "id {id:?} contains whitespace or a control character, which a TREC run cannot hold"
        ))
    } else {
        Ok(())
    }
}

/// Documents with external ids and sparse vectors over an interned vocabulary.
#[derive(Debug, Default)]
pub struct Collection {
    terms: Vec<String>,
    term_ids: HashMap<String, u32, FixedState>,
    id_bytes: Vec<u8>,
    id_offsets: Vec<u64>,
    id_hashes: HashMap<u64, u32, FixedState>,
    id_collisions: HashMap<String, u32>,
    doc_offsets: Vec<u64>,
    posting_terms: Vec<u32>,
    posting_weights: Vec<f32>,
    max_weight: f32,
    all_integral: bool,
    scratch: Vec<(u32, f32)>,
}

impl Collection {
    /// An empty collection.
    pub fn new() -> Self {
        Collection {
            id_offsets: vec![0],
            doc_offsets: vec![0],
            all_integral: true,
            ..Default::default()
        }
    }

    /// An empty collection with room for `postings` postings (no reallocation, and no doubling
    /// of the posting arrays, until it holds that many).
    pub fn with_posting_capacity(postings: usize) -> Self {
        let mut c = Collection::new();
        c.posting_terms.reserve_exact(postings);
        c.posting_weights.reserve_exact(postings);
        c
    }

    /// The temporary id of `term`, adding it to the vocabulary if it is new.
    pub fn intern_term(&mut self, term: &str) -> u32 {
        if let Some(&id) = self.term_ids.get(term) {
            return id;
        }
        let id = self.terms.len() as u32;
        self.terms.push(term.to_owned());
        self.term_ids.insert(term.to_owned(), id);
        id
    }

    /// The temporary id of `term`, if it was interned.
    pub fn term_id(&self, term: &str) -> Option<u32> {
        self.term_ids.get(term).copied()
    }

    /// Adds a document; returns its position (internal id).
    ///
    /// `entries` are `(term id from intern_term, weight)` pairs in any order. Weights must be finite
    /// and non-negative; zero weights are dropped. A term may appear once, and the id must be new.
    /// On error nothing is added and the message says what is wrong.
    pub fn add_document(&mut self, id: &str, entries: &[(u32, f32)]) -> Result<u32, String> {
        let doc = self.num_docs();
        if doc >= u32::MAX as usize {
            return Err("too many documents (at most 4294967294)".into());
        }
        for &(term, weight) in entries {
            if term as usize >= self.terms.len() {
                return Err(format!("unknown term id {term}"));
            }
            if !weight.is_finite() {
                return Err(format!(
                    "term {:?} has a non-finite weight",
                    self.terms[term as usize]
                ));
            }
            if weight < 0.0 {
                return Err(format!(
                    "term {:?} has a negative weight {weight}",
                    self.terms[term as usize]
                ));
            }
        }
        self.scratch.clear();
        self.scratch
            .extend(entries.iter().copied().filter(|&(_, w)| w > 0.0));
        self.scratch.sort_unstable_by_key(|&(t, _)| t);
        if let Some(pair) = self.scratch.windows(2).find(|p| p[0].0 == p[1].0) {
            return Err(format!(
                "term {:?} appears more than once",
                self.terms[pair[0].0 as usize]
            ));
        }
        check_id("document", id)?;
        self.check_new_id(id, doc as u32)?;
        for &(t, w) in &self.scratch {
            self.posting_terms.push(t);
            self.posting_weights.push(w);
            if w > self.max_weight {
                self.max_weight = w;
            }
            if w.fract() != 0.0 {
                self.all_integral = false;
            }
        }
        self.doc_offsets.push(self.posting_terms.len() as u64);
        self.id_bytes.extend_from_slice(id.as_bytes());
        self.id_offsets.push(self.id_bytes.len() as u64);
        Ok(doc as u32)
    }

    fn check_new_id(&mut self, id: &str, doc: u32) -> Result<(), String> {
        let hash = xxh3_64(id.as_bytes());
        match self.id_hashes.get(&hash) {
            None => {
                self.id_hashes.insert(hash, doc);
                Ok(())
            }
            Some(&other) if self.doc_id(other as usize) == id => {
                Err(format!("duplicate document id {id:?}"))
            }
            Some(_) => {
                if self.id_collisions.contains_key(id) {
                    return Err(format!("duplicate document id {id:?}"));
                }
                self.id_collisions.insert(id.to_owned(), doc);
                Ok(())
            }
        }
    }

    /// Number of documents.
    pub fn num_docs(&self) -> usize {
        self.doc_offsets.len() - 1
    }

    /// Number of distinct terms seen.
    pub fn num_terms(&self) -> usize {
        self.terms.len()
    }

    /// Number of postings (non-zero document entries).
    pub fn num_postings(&self) -> usize {
        self.posting_terms.len()
    }

    /// The string of a temporary term id.
    pub fn term(&self, id: u32) -> &str {
        &self.terms[id as usize]
    }

    /// All terms, indexed by temporary id.
    pub fn terms(&self) -> &[String] {
        &self.terms
    }

    /// The external id of document `doc`.
    pub fn doc_id(&self, doc: usize) -> &str {
        let (a, b) = (
            self.id_offsets[doc] as usize,
            self.id_offsets[doc + 1] as usize,
        );
        // Ids are only ever appended from `&str`, so each range is valid UTF-8.
        std::str::from_utf8(&self.id_bytes[a..b]).unwrap_or_default()
    }

    /// The entries of document `doc`: term ids (ascending) and weights.
    pub fn doc(&self, doc: usize) -> (&[u32], &[f32]) {
        let (a, b) = (
            self.doc_offsets[doc] as usize,
            self.doc_offsets[doc + 1] as usize,
        );
        (&self.posting_terms[a..b], &self.posting_weights[a..b])
    }

    /// All documents as compressed sparse rows: `offsets` (documents + 1 entries) into `terms`
    /// (temporary term ids, ascending within a document).
    pub fn csr(&self) -> (&[u64], &[u32]) {
        (&self.doc_offsets, &self.posting_terms)
    }

    /// The largest weight in the collection (0 when empty).
    pub fn max_weight(&self) -> f32 {
        self.max_weight
    }

    /// Whether every weight is an integer.
    pub fn all_integral(&self) -> bool {
        self.all_integral
    }

    /// The largest weight of the terms `which` selects, and of the others (0 where none).
    pub fn max_weights_split(&self, which: impl Fn(&str) -> bool) -> (f32, f32) {
        let selected: Vec<bool> = self.terms.iter().map(|t| which(t)).collect();
        let (mut inside, mut outside) = (0f32, 0f32);
        for (&t, &w) in self.posting_terms.iter().zip(&self.posting_weights) {
            let m = if selected[t as usize] {
                &mut inside
            } else {
                &mut outside
            };
            *m = m.max(w);
        }
        (inside, outside)
    }

    /// Multiplies the weights of the terms `which` selects by `factor` (finite, positive).
    pub fn scale_weights(&mut self, factor: f32, which: impl Fn(&str) -> bool) {
        debug_assert!(factor.is_finite() && factor > 0.0);
        let selected: Vec<bool> = self.terms.iter().map(|t| which(t)).collect();
        self.max_weight = 0.0;
        self.all_integral = true;
        for (&t, w) in self.posting_terms.iter().zip(&mut self.posting_weights) {
            if selected[t as usize] {
                *w *= factor;
            }
            self.max_weight = self.max_weight.max(*w);
            self.all_integral &= w.fract() == 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_of_selected_terms_scale() {
        let mut c = Collection::new();
        let (a, b) = (c.intern_term("a"), c.intern_term("bm25:b"));
        c.add_document("d1", &[(a, 2.0), (b, 8.0)]).expect("adds");
        c.add_document("d2", &[(b, 4.0)]).expect("adds");
        let lexical = |t: &str| t.starts_with("bm25:");
        assert_eq!(c.max_weights_split(lexical), (8.0, 2.0));
        c.scale_weights(0.25, lexical);
        assert_eq!(c.doc(0).1, &[2.0, 2.0]);
        assert_eq!(c.doc(1).1, &[1.0]);
        assert_eq!(c.max_weight(), 2.0);
        assert!(c.all_integral());
        c.scale_weights(0.5, lexical);
        assert!(!c.all_integral());
    }

    #[test]
    fn add_and_read_back() {
        let mut c = Collection::new();
        let a = c.intern_term("a");
        let b = c.intern_term("b");
        assert_eq!(c.intern_term("a"), a);
        c.add_document("d1", &[(b, 2.0), (a, 1.5)]).unwrap();
        c.add_document("d2", &[]).unwrap();
        assert_eq!(c.num_docs(), 2);
        assert_eq!(c.doc(0), (&[a, b][..], &[1.5, 2.0][..]));
        assert_eq!(c.doc(1).0.len(), 0);
        assert_eq!(c.doc_id(1), "d2");
        assert_eq!(c.max_weight(), 2.0);
        assert!(!c.all_integral());
    }

    #[test]
    fn rejects_bad_documents() {
        let mut c = Collection::new();
        let a = c.intern_term("a");
        assert!(c
            .add_document("x", &[(a, f32::NAN)])
            .unwrap_err()
            .contains("non-finite"));
        assert!(c
            .add_document("x", &[(a, -1.0)])
            .unwrap_err()
            .contains("negative"));
        assert!(c
            .add_document("x", &[(a, 1.0), (a, 2.0)])
            .unwrap_err()
            .contains("more than once"));
        c.add_document("x", &[(a, 1.0)]).unwrap();
        assert!(c
            .add_document("x", &[])
            .unwrap_err()
            .contains("duplicate document id"));
        assert_eq!(c.num_docs(), 1);
    }

    #[test]
    fn zero_weights_are_dropped() {
        let mut c = Collection::new();
        let a = c.intern_term("a");
        let b = c.intern_term("b");
        c.add_document("x", &[(a, 0.0), (b, 1.0)]).unwrap();
        assert_eq!(c.num_postings(), 1);
    }
}
