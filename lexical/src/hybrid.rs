//! Hybrid queries: a learned-sparse query and a BM25 query of the same text, over an index with
//! both fields (built with `--lexical`), fused.
//!
//! - [`Fusion::Linear`], one pass: the query `(1 − λ) · learned / L + λ · bm25 / B`
//!   ([`linear_entries`]), where `L` and `B` are the query's largest possible scores in each
//!   field, so that both parts range over [0, 1] and the lexical weight λ means the same on
//!   every collection. It is one sparse query: every safe processor returns the exact top k of
//!   the fused score.
//! - [`Fusion::Rrf`], two passes: the top k of the learned query and the top k of the BM25 query,
//!   fused by weighted reciprocal rank, `(1 − λ) / (60 + rank_learned) + λ / (60 + rank_bm25)`
//!   ([`reciprocal_rank_fusion`]; a document missing from a list gets nothing from it). At
//!   λ = 0.5 this ranks as the usual reciprocal rank fusion with k = 60.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::str::FromStr;

use bmp_index::Index;
use bmp_query::{Hit, Query};

use crate::analyzer::LexicalAnalyzer;
use crate::error::{Error, Result};

/// The lexical weight λ of a hybrid query when none is given, chosen on SciFact (nDCG@10 0.7075
/// against 0.6845 for BM25 alone and 0.6465 for SPLADE alone) and kept unchanged on Cranfield
/// and CACM, where it is also the best of 0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7 and 1.
pub const DEFAULT_LEXICAL_WEIGHT: f32 = 0.5;

/// The constant added to every rank in reciprocal rank fusion (the usual 60).
pub const RRF_RANK_CONSTANT: f64 = 60.0;

/// How the learned and the lexical scores of a hybrid query are fused.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Fusion {
    /// One pass over the weighted sum of both normalized scores (rank-safe).
    #[default]
    Linear,
    /// Two passes, fused by weighted reciprocal rank.
    Rrf,
}

impl Fusion {
    /// Every fusion, as named on the command line and in HTTP requests.
    pub const ALL: [Fusion; 2] = [Fusion::Linear, Fusion::Rrf];

    /// Its name: `linear` or `rrf`.
    pub fn name(self) -> &'static str {
        match self {
            Fusion::Linear => "linear",
            Fusion::Rrf => "rrf",
        }
    }
}

impl fmt::Display for Fusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Fusion {
    type Err = Error;

    fn from_str(s: &str) -> Result<Fusion> {
        Fusion::ALL
            .into_iter()
            .find(|f| f.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error::InvalidOption(format!("unknown fusion {s:?}: use linear or rrf")))
    }
}

/// A hybrid query's lexical weight λ and fusion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HybridSpec {
    /// λ, in [0, 1]: 0 is the learned query alone, 1 BM25 alone.
    pub lexical_weight: f32,
    /// How the two parts are fused.
    pub fusion: Fusion,
}

impl Default for HybridSpec {
    /// λ = [`DEFAULT_LEXICAL_WEIGHT`], linear fusion.
    fn default() -> Self {
        HybridSpec {
            lexical_weight: DEFAULT_LEXICAL_WEIGHT,
            fusion: Fusion::Linear,
        }
    }
}

impl HybridSpec {
    /// A checked spec: `lexical_weight` in [0, 1].
    pub fn new(lexical_weight: f32, fusion: Fusion) -> Result<HybridSpec> {
        if !(0.0..=1.0).contains(&lexical_weight) {
            return Err(Error::InvalidOption(format!(
                "the lexical weight must lie in [0, 1], not {lexical_weight}"
            )));
        }
        Ok(HybridSpec {
            lexical_weight,
            fusion,
        })
    }
}

impl fmt::Display for HybridSpec {
    /// `hybrid 0.3` (linear) or `hybrid rrf 0.3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.fusion {
            Fusion::Linear => write!(f, "hybrid {}", self.lexical_weight),
            Fusion::Rrf => write!(f, "hybrid rrf {}", self.lexical_weight),
        }
    }
}

/// The entries of a linear hybrid query over an index with a learned and a lexical field:
/// `(1 − lambda) · learned / L + lambda · lexical / B`, where `L` and `B` are the query's upper
/// bounds in each field (the sum over its terms of the weight times the term's largest stored
/// weight), so that both parts range over [0, 1]. `learned` are the encoder's entries,
/// `lexical` [`LexicalAnalyzer::query`]'s (any positive multiple gives the same entries).
pub fn linear_entries(
    index: &Index,
    learned: &[(String, f32)],
    lexical: &[(String, f32)],
    lambda: f32,
) -> Result<Vec<(String, f32)>> {
    HybridSpec::new(lambda, Fusion::Linear)?;
    require_lexical_field(index)?;
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

fn require_lexical_field(index: &Index) -> Result<()> {
    match index.header().lexical() {
        Some(_) => Ok(()),
        None => Err(Error::NoLexicalField(index.path().display().to_string())),
    }
}

/// Weighted reciprocal rank fusion of two ranked lists (best first): each document scores
/// `(1 − lexical_weight) / (60 + its rank in learned) + lexical_weight / (60 + its rank in
/// lexical)`, ranks from 1, nothing from a list it is missing from. The top `k` with a positive
/// score, best first, ties broken by document.
pub fn reciprocal_rank_fusion<D: Copy + Ord + Hash>(
    learned: &[D],
    lexical: &[D],
    lexical_weight: f32,
    k: usize,
) -> Vec<(D, f64)> {
    let mut scores: HashMap<D, f64> = HashMap::with_capacity(learned.len() + lexical.len());
    let weight = f64::from(lexical_weight);
    for (list, share) in [(learned, 1.0 - weight), (lexical, weight)] {
        if share <= 0.0 {
            continue;
        }
        for (rank, &doc) in list.iter().enumerate() {
            *scores.entry(doc).or_default() += share / (RRF_RANK_CONSTANT + rank as f64 + 1.0);
        }
    }
    let mut fused: Vec<(D, f64)> = scores.into_iter().collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    fused.truncate(k);
    fused
}

/// A hit of a hybrid query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FusedHit {
    /// The internal document id.
    pub doc: u32,
    /// Its fused score: the weighted sum of the normalized scores (linear), or its reciprocal
    /// rank score (rrf).
    pub score: f64,
    /// Linear fusion: the quantized score the processor ranked by (`score` is it over the
    /// quantized query's largest possible one). None with rrf.
    pub raw_score: Option<u32>,
}

/// The hits of a hybrid query, and the query terms the index does not know.
#[derive(Debug, Clone, Default)]
pub struct FusedHits {
    /// Best first.
    pub hits: Vec<FusedHit>,
    /// Query terms (learned or lexical) missing from the index.
    pub unknown_terms: usize,
}

/// A hybrid query over one index, ready to search.
#[derive(Debug, Clone)]
pub enum HybridQuery {
    /// One query over both fields.
    Linear(Vec<(String, f32)>),
    /// Two queries, fused by reciprocal rank.
    Rrf {
        /// The learned query.
        learned: Vec<(String, f32)>,
        /// The BM25 query.
        lexical: Vec<(String, f32)>,
        /// λ.
        lexical_weight: f32,
    },
}

impl HybridQuery {
    /// The hybrid query of the text `text`, whose learned encoding is `learned`, over `index`
    /// (which must have a lexical field).
    pub fn new(
        index: &Index,
        spec: &HybridSpec,
        learned: &[(String, f32)],
        text: &str,
        analyzer: &mut LexicalAnalyzer,
    ) -> Result<HybridQuery> {
        HybridSpec::new(spec.lexical_weight, spec.fusion)?;
        require_lexical_field(index)?;
        let lexical = analyzer.query(text);
        Ok(match spec.fusion {
            Fusion::Linear => HybridQuery::Linear(linear_entries(
                index,
                learned,
                &lexical,
                spec.lexical_weight,
            )?),
            Fusion::Rrf => HybridQuery::Rrf {
                learned: learned.to_vec(),
                lexical,
                lexical_weight: spec.lexical_weight,
            },
        })
    }

    /// Its top `k` over `index`, each pass answered by `search` (a processor's search, with
    /// whatever filter or deadline the caller sets): one pass for linear fusion, two of depth
    /// `k` for rrf (one where λ is 0 or 1).
    pub fn search(
        &self,
        index: &Index,
        k: usize,
        search: &mut dyn FnMut(&Query, usize) -> bmp_index::Result<Vec<Hit>>,
    ) -> Result<FusedHits> {
        match self {
            HybridQuery::Linear(entries) => {
                let query = Query::from_entries(index, entries)?;
                // The fused score is the raw score over the query's largest possible one (each
                // quantized weight times its term's largest impact): in exact arithmetic that
                // largest score is 1, and dividing by it keeps every score within [0, 1] once
                // the weights are rounded to the query's 255 levels.
                let top = query.max_score(index)?;
                let hits = search(&query, k)?
                    .into_iter()
                    .map(|h| FusedHit {
                        doc: h.doc,
                        score: match top {
                            0 => 0.0,
                            top => f64::from(h.score) / top as f64,
                        },
                        raw_score: Some(h.score),
                    })
                    .collect();
                Ok(FusedHits {
                    hits,
                    unknown_terms: query.unknown_terms,
                })
            }
            HybridQuery::Rrf {
                learned,
                lexical,
                lexical_weight,
            } => {
                let mut unknown_terms = 0;
                let mut pass = |entries: &[(String, f32)], share: f32| -> Result<Vec<u32>> {
                    let query = Query::from_entries(index, entries)?;
                    unknown_terms += query.unknown_terms;
                    if share <= 0.0 {
                        return Ok(Vec::new());
                    }
                    Ok(search(&query, k)?.into_iter().map(|h| h.doc).collect())
                };
                let learned = pass(learned, 1.0 - lexical_weight)?;
                let lexical = pass(lexical, *lexical_weight)?;
                let hits = reciprocal_rank_fusion(&learned, &lexical, *lexical_weight, k)
                    .into_iter()
                    .map(|(doc, score)| FusedHit {
                        doc,
                        score,
                        raw_score: None,
                    })
                    .collect();
                Ok(FusedHits {
                    hits,
                    unknown_terms,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fusions_parse_and_print() {
        assert_eq!("RRF".parse::<Fusion>().expect("parses"), Fusion::Rrf);
        assert_eq!(" linear".parse::<Fusion>().expect("parses"), Fusion::Linear);
        let e = "sum".parse::<Fusion>().expect_err("unknown");
        assert!(e.to_string().contains("\"sum\""), "{e}");
        assert_eq!(HybridSpec::default().to_string(), "hybrid 0.5");
        let rrf = HybridSpec::new(0.3, Fusion::Rrf).expect("valid");
        assert_eq!(rrf.to_string(), "hybrid rrf 0.3");
        for bad in [-0.1, 1.5, f32::NAN] {
            assert!(HybridSpec::new(bad, Fusion::Linear).is_err(), "{bad}");
        }
    }

    #[test]
    fn reciprocal_ranks_add_up_by_weight() {
        let learned = [1u32, 2, 3];
        let lexical = [3u32, 4];
        let fused = reciprocal_rank_fusion(&learned, &lexical, 0.5, 10);
        let docs: Vec<u32> = fused.iter().map(|f| f.0).collect();
        // 3: 0.5/63 + 0.5/61 beats 1: 0.5/61; 2 (0.5/62) and 4 (0.5/62) tie, by document.
        assert_eq!(docs, vec![3, 1, 2, 4]);
        assert!((fused[0].1 - (0.5 / 63.0 + 0.5 / 61.0)).abs() < 1e-12);
        // λ = 0: the learned ranking alone; λ = 1: the lexical one.
        let only_learned: Vec<u32> = reciprocal_rank_fusion(&learned, &lexical, 0.0, 10)
            .iter()
            .map(|f| f.0)
            .collect();
        assert_eq!(only_learned, learned);
        let only_lexical: Vec<u32> = reciprocal_rank_fusion(&learned, &lexical, 1.0, 1)
            .iter()
            .map(|f| f.0)
            .collect();
        assert_eq!(only_lexical, vec![3]);
    }
}
