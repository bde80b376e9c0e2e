//! Writes logged but not yet in a segment: the last write of each document id.

use std::collections::HashMap;
use std::time::Instant;

use super::wal::WalOp;
use crate::collection::{check_id, Collection};

/// The writes of the write-ahead log, as they will be applied: for each id its last write (an
/// add replaces an earlier add or delete of the same id, and the other way round), in the order
/// the ids were first written.
#[derive(Debug, Default)]
pub struct Pending {
    writes: Vec<WalOp>,
    slot: HashMap<String, usize>,
    postings: u64,
    since: Option<Instant>,
}

impl Pending {
    /// Records `op`, which replaces any earlier write of its id.
    pub fn record(&mut self, op: WalOp) {
        self.postings += postings(&op);
        self.since.get_or_insert_with(Instant::now);
        match self.slot.get(op.id()) {
            Some(&i) => {
                self.postings -= postings(&self.writes[i]);
                self.writes[i] = op;
            }
            None => {
                self.slot.insert(op.id().to_string(), self.writes.len());
                self.writes.push(op);
            }
        }
    }

    /// Whether the last pending write of `id` adds it (`Some(true)`) or deletes it
    /// (`Some(false)`); `None` when there is none.
    pub fn adds(&self, id: &str) -> Option<bool> {
        self.slot
            .get(id)
            .map(|&i| matches!(self.writes[i], WalOp::Add { .. }))
    }

    /// Document ids with a pending write.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Whether no write is pending.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Postings of the pending adds.
    pub fn postings(&self) -> u64 {
        self.postings
    }

    /// When the oldest pending write was recorded.
    pub fn since(&self) -> Option<Instant> {
        self.since
    }

    /// The pending adds as a collection, and the ids pending deletion.
    pub fn batch(&self) -> (Collection, Vec<&str>) {
        let mut adds = Collection::new();
        let mut deletes = Vec::new();
        let mut entries = Vec::new();
        for op in &self.writes {
            match op {
                WalOp::Add { id, vector } => {
                    entries.clear();
                    entries.extend(vector.iter().map(|(t, w)| (adds.intern_term(t), *w)));
                    // Checked by `validate` before it was logged.
                    let _ = adds.add_document(id, &entries);
                }
                WalOp::Delete { id } => deletes.push(id.as_str()),
            }
        }
        (adds, deletes)
    }

    /// Forgets every pending write (they are in segments now).
    pub fn clear(&mut self) {
        *self = Pending::default();
    }
}

/// Postings an add brings.
fn postings(op: &WalOp) -> u64 {
    match op {
        WalOp::Add { vector, .. } => vector.iter().filter(|(_, w)| *w > 0.0).count() as u64,
        WalOp::Delete { .. } => 0,
    }
}

/// Checks that `op` can be applied: a valid id, and for an add finite weights at least 0, each
/// term once. The message says what is wrong.
pub fn validate(op: &WalOp) -> Result<(), String> {
    check_id("document", op.id())?;
    let WalOp::Add { vector, .. } = op else {
        return Ok(());
    };
    let mut terms: Vec<&str> = Vec::with_capacity(vector.len());
    for (term, w) in vector {
        if !w.is_finite() || *w < 0.0 {
            return Err(format!(
                "term {term:?} has weight {w}: weights must be finite and at least 0"
            ));
        }
        if *w > 0.0 {
            terms.push(term);
        }
    }
    terms.sort_unstable();
    if let Some(pair) = terms.windows(2).find(|p| p[0] == p[1]) {
        return Err(format!("term {:?} appears more than once", pair[0]));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(id: &str, terms: &[&str]) -> WalOp {
        WalOp::Add {
            id: id.into(),
            vector: terms.iter().map(|t| (t.to_string(), 1.0)).collect(),
        }
    }

    #[test]
    fn the_last_write_of_an_id_wins() {
        let mut p = Pending::default();
        p.record(add("a", &["x", "y"]));
        p.record(add("b", &["x"]));
        p.record(WalOp::Delete { id: "a".into() });
        p.record(WalOp::Delete { id: "c".into() });
        p.record(add("c", &["z"]));
        assert_eq!((p.len(), p.postings()), (3, 2));
        assert_eq!(
            (p.adds("a"), p.adds("b"), p.adds("c"), p.adds("d")),
            (Some(false), Some(true), Some(true), None)
        );
        let (adds, deletes) = p.batch();
        assert_eq!(adds.num_docs(), 2);
        assert_eq!((adds.doc_id(0), adds.doc_id(1)), ("b", "c"));
        assert_eq!(deletes, vec!["a"]);
        p.clear();
        assert!(p.is_empty() && p.since().is_none());
    }

    #[test]
    fn invalid_writes_are_named() {
        let bad = WalOp::Add {
            id: "a".into(),
            vector: vec![("x".into(), f32::NAN)],
        };
        assert!(validate(&bad).unwrap_err().contains("\"x\""));
        let twice = WalOp::Add {
            id: "a".into(),
            vector: vec![("x".into(), 1.0), ("x".into(), 2.0)],
        };
        assert!(validate(&twice).unwrap_err().contains("more than once"));
        assert!(validate(&WalOp::Delete { id: String::new() }).is_err());
        assert!(validate(&add("a", &["x", "y"])).is_ok());
    }
}
