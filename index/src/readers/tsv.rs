//! Anserini pre-encoded query TSV: `qid<TAB>tok tok tok` (a repeated token is its weight).
