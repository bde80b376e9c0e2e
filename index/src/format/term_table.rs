//! A hash table from term strings to term ids over an index's vocabulary, so that a query's
//! terms are found in constant time instead of by binary search over the sorted strings.
//!
//! Open addressing with linear probing: a power-of-two array of term ids (at least twice the
//! vocabulary, so probes stay short), each slot holding the id of a term whose xxh3 hash lands
//! there or [`EMPTY`]. A probe compares the stored term's bytes, so the table holds no strings of
//! its own: 4 bytes per slot, 8 to 16 per term.

use xxhash_rust::xxh3::xxh3_64;

/// A slot that holds no term.
const EMPTY: u32 = u32::MAX;

/// Term ids by the hash of their strings.
#[derive(Debug)]
pub(crate) struct TermTable {
    slots: Vec<u32>,
    mask: usize,
}

impl TermTable {
    /// The table of `num_terms` terms whose bytes `term` gives (`None`: unreadable, and then no
    /// table is built).
    pub(crate) fn build<'a>(
        num_terms: u32,
        term: impl Fn(u32) -> Option<&'a [u8]>,
    ) -> Option<TermTable> {
        let len = (num_terms as usize * 2).next_power_of_two().max(8);
        let mut table = TermTable {
            slots: vec![EMPTY; len],
            mask: len - 1,
        };
        for id in 0..num_terms {
            let mut slot = xxh3_64(term(id)?) as usize & table.mask;
            while table.slots[slot] != EMPTY {
                slot = (slot + 1) & table.mask;
            }
            table.slots[slot] = id;
        }
        Some(table)
    }

    /// The id of the term whose bytes are `wanted`, with `term` giving each stored term's bytes.
    pub(crate) fn find<'a>(
        &self,
        wanted: &[u8],
        term: impl Fn(u32) -> Option<&'a [u8]>,
    ) -> Option<u32> {
        let mut slot = xxh3_64(wanted) as usize & self.mask;
        loop {
            let id = self.slots[slot];
            if id == EMPTY {
                return None;
            }
            if term(id) == Some(wanted) {
                return Some(id);
            }
            slot = (slot + 1) & self.mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_term_and_nothing_else() {
        let terms: Vec<String> = (0..5000).map(|i| format!("t{i}")).collect();
        let get = |id: u32| terms.get(id as usize).map(|t| t.as_bytes());
        let table = TermTable::build(terms.len() as u32, get).expect("builds");
        for (id, t) in terms.iter().enumerate() {
            assert_eq!(table.find(t.as_bytes(), get), Some(id as u32));
        }
        for missing in ["", "t", "t5000", "t-1", "x0"] {
            assert_eq!(table.find(missing.as_bytes(), get), None, "{missing}");
        }
        let empty = TermTable::build(0, get).expect("builds");
        assert_eq!(empty.find(b"t0", get), None);
        assert!(TermTable::build(3, |_| None).is_none());
    }
}
