//! A deterministic synthetic collection with the shape of SPLADE document vectors.
//!
//! The model, and the statistics it produces at its defaults (checked in the tests below):
//!
//! - **Vocabulary**: 30,522 terms (the size of BERT's WordPiece vocabulary), named `w<id>`, or the
//!   entries of a given vocabulary file (e.g. BERT's `vocab.txt`, special tokens skipped), plus
//!   every token of the real queries when queries come from a file. Each term has a popularity
//!   rank (a random permutation of the vocabulary).
//! - **Term popularity**: background terms are drawn from a Zipf law over the ranks (exponent 1.0),
//!   so document frequencies fall roughly as a power of the rank.
//! - **Topics**: 1,000 topics of 300 drawn terms each, drawn with a milder Zipf law (exponent 0.8, so
//!   topics live in mid-frequency terms), each term with a log-normal affinity. With real queries,
//!   every query is also a topic made of its own terms (affinity = its weights) plus 100 related
//!   terms, so that the collection holds documents about each real query, unless planting is
//!   turned off ([`SynthOptions::plant_queries`]): the documents are then drawn independently of
//!   the queries.
//! - **Documents**: a primary topic and, half of the time, a secondary one; a log-normal length
//!   (mean 140 drawn terms, sigma 0.5: a heavy tail, clamped to 16..=2000); 65% of the terms are
//!   topical (weight = affinity times a log-normal factor), 35% background (a low log-normal weight,
//!   lower for popular terms, as SPLADE gives frequent pieces small weights). Repeated draws of a
//!   term keep the larger weight, so the mean number of distinct terms is a little under the
//!   drawn length. Weights are in [0.01, 4] with three decimals. Documents are written in random
//!   topic order, so reordering has work to do.
//! - **Queries**: a topic, 20 to 40 distinct terms (85% topical), weights log-normal around 1.

use std::collections::HashMap;
use std::io::Write;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, Zipf};

use crate::readers::SparseRecord;

/// Terms drawn for each generated topic.
const TOPIC_TERMS: usize = 300;

/// Parameters of a synthetic collection.
#[derive(Debug, Clone, Copy)]
pub struct SynthOptions {
    /// Number of documents.
    pub docs: u64,
    /// Number of generated queries (ignored when real queries are given).
    pub queries: u64,
    /// Random seed; the same seed gives the same files.
    pub seed: u64,
    /// Vocabulary size when no vocabulary file is given.
    pub vocab: u32,
    /// Number of generated topics.
    pub topics: u32,
    /// Mean number of drawn terms per document.
    pub mean_doc_terms: f64,
    /// Whether real queries also become topics (documents are then written about them). Without
    /// it the documents are drawn independently of the queries, which only share the vocabulary.
    pub plant_queries: bool,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            docs: 100_000,
            queries: 1_000,
            seed: 42,
            vocab: 30_522,
            topics: 1_000,
            mean_doc_terms: 140.0,
            plant_queries: true,
        }
    }
}

/// Tokens of a WordPiece vocabulary file that never appear in SPLADE vectors.
fn is_special_token(token: &str) -> bool {
    matches!(token, "[PAD]" | "[UNK]" | "[CLS]" | "[SEP]" | "[MASK]")
        || token.starts_with("[unused")
}

/// Builds the vocabulary: the tokens of `vocab_file` (one per line, special tokens skipped) or
/// `w0..w{size-1}`, then every query token not yet present.
pub fn build_vocabulary(
    size: u32,
    vocab_file: Option<&str>,
    queries: &[SparseRecord],
) -> Vec<String> {
    let mut terms: Vec<String> = match vocab_file {
        Some(text) => text
            .lines()
            .map(str::trim)
            .filter(|t| !t.is_empty() && !is_special_token(t))
            .map(str::to_owned)
            .collect(),
        None => (0..size.max(1)).map(|i| format!("w{i}")).collect(),
    };
    let mut seen: HashMap<String, ()> = terms.iter().map(|t| (t.clone(), ())).collect();
    for q in queries {
        for (t, _) in &q.entries {
            if seen.insert(t.clone(), ()).is_none() {
                terms.push(t.clone());
            }
        }
    }
    terms
}

/// A topic: terms with cumulative affinities for weighted sampling.
struct Topic {
    terms: Vec<u32>,
    affinity: Vec<f32>,
    cumulative: Vec<f64>,
}

impl Topic {
    fn new(mut pairs: Vec<(u32, f32)>) -> Topic {
        pairs.sort_by_key(|p| p.0);
        pairs.dedup_by(|b, a| {
            if a.0 == b.0 {
                a.1 = a.1.max(b.1);
                true
            } else {
                false
            }
        });
        let mut total = 0.0f64;
        let cumulative = pairs
            .iter()
            .map(|&(_, a)| {
                total += f64::from(a);
                total
            })
            .collect();
        Topic {
            terms: pairs.iter().map(|p| p.0).collect(),
            affinity: pairs.iter().map(|p| p.1).collect(),
            cumulative,
        }
    }

    fn sample(&self, rng: &mut StdRng) -> (u32, f32) {
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let x = rng.random_range(0.0..total.max(f64::MIN_POSITIVE));
        let i = self
            .cumulative
            .partition_point(|&c| c <= x)
            .min(self.terms.len() - 1);
        (self.terms[i], self.affinity[i])
    }
}

/// Draws synthetic sparse vectors over a vocabulary.
pub struct SynthGenerator {
    rng: StdRng,
    terms: Vec<String>,
    /// Term id of each popularity rank.
    term_of_rank: Vec<u32>,
    /// Rank of each term id.
    rank_of_term: Vec<u32>,
    background: Zipf<f64>,
    length: LogNormal<f64>,
    topical_weight: LogNormal<f64>,
    background_weight: LogNormal<f64>,
    query_weight: LogNormal<f64>,
    topics: Vec<Topic>,
    scratch: HashMap<u32, f32>,
}

fn round_weight(w: f64) -> f32 {
    ((w.clamp(0.01, 4.0) * 1000.0).round() / 1000.0) as f32
}

impl SynthGenerator {
    /// A generator over `terms` (see [`build_vocabulary`]); `real_queries` become topics too.
    pub fn new(options: &SynthOptions, terms: Vec<String>, real_queries: &[SparseRecord]) -> Self {
        let mut rng = StdRng::seed_from_u64(options.seed);
        let terms = if terms.is_empty() {
            vec!["w0".to_owned()]
        } else {
            terms
        };
        let n = terms.len() as u32;
        let mut term_of_rank: Vec<u32> = (0..n).collect();
        for i in (1..term_of_rank.len()).rev() {
            let j = rng.random_range(0..=i);
            term_of_rank.swap(i, j);
        }
        let mut rank_of_term = vec![0u32; n as usize];
        for (rank, &t) in term_of_rank.iter().enumerate() {
            rank_of_term[t as usize] = rank as u32;
        }
        let topic_zipf = Zipf::new(f64::from(n), 0.8).expect("valid Zipf parameters");
        let affinity = LogNormal::new(0.0, 0.7).expect("valid log-normal");
        let draw_topic_terms = |rng: &mut StdRng, count: usize| -> Vec<(u32, f32)> {
            (0..count)
                .map(|_| {
                    let rank = (topic_zipf.sample(rng) as usize).clamp(1, n as usize) - 1;
                    (term_of_rank[rank], affinity.sample(rng) as f32)
                })
                .collect()
        };
        let mut topics: Vec<Topic> = (0..options.topics.max(1))
            .map(|_| Topic::new(draw_topic_terms(&mut rng, TOPIC_TERMS)))
            .collect();
        let index: HashMap<&str, u32> = terms
            .iter()
            .enumerate()
            .map(|(i, t)| (t.as_str(), i as u32))
            .collect();
        let planted = if options.plant_queries {
            real_queries
        } else {
            &[]
        };
        for q in planted {
            let max = q
                .entries
                .iter()
                .map(|e| e.1)
                .fold(0.0f32, f32::max)
                .max(1e-6);
            let mut pairs: Vec<(u32, f32)> = q
                .entries
                .iter()
                .filter_map(|(t, w)| index.get(t.as_str()).map(|&id| (id, 2.0 * w / max)))
                .collect();
            if pairs.is_empty() {
                continue;
            }
            pairs.extend(draw_topic_terms(&mut rng, 100));
            topics.push(Topic::new(pairs));
        }
        let mean = options.mean_doc_terms.max(1.0);
        let sigma = 0.5f64;
        SynthGenerator {
            rng,
            terms,
            term_of_rank,
            rank_of_term,
            background: Zipf::new(f64::from(n), 1.0).expect("valid Zipf parameters"),
            length: LogNormal::new(mean.ln() - sigma * sigma / 2.0, sigma)
                .expect("valid log-normal"),
            topical_weight: LogNormal::new(-0.3, 0.5).expect("valid log-normal"),
            background_weight: LogNormal::new(-1.6, 0.6).expect("valid log-normal"),
            query_weight: LogNormal::new(0.0, 0.5).expect("valid log-normal"),
            topics,
            scratch: HashMap::new(),
        }
    }

    /// The string of term `id`.
    pub fn term(&self, id: u32) -> &str {
        &self.terms[id as usize]
    }

    /// The vocabulary size.
    pub fn num_terms(&self) -> usize {
        self.terms.len()
    }

    fn background_term(&mut self) -> (u32, f64) {
        let n = self.term_of_rank.len();
        let rank = (self.background.sample(&mut self.rng) as usize).clamp(1, n) - 1;
        // Popular pieces get small weights (an IDF-like factor).
        let idf = ((rank + 2) as f64).ln() / ((n + 1) as f64).ln();
        let w = self.background_weight.sample(&mut self.rng) * (0.3 + 0.7 * idf);
        (self.term_of_rank[rank], w)
    }

    fn add(&mut self, term: u32, weight: f64) {
        let w = round_weight(weight);
        let e = self.scratch.entry(term).or_insert(0.0);
        *e = e.max(w);
    }

    fn take(&mut self) -> Vec<(u32, f32)> {
        let mut v: Vec<(u32, f32)> = self.scratch.drain().collect();
        v.sort_unstable_by_key(|e| e.0);
        v
    }

    /// Draws one document vector (term ids ascending).
    pub fn document(&mut self) -> Vec<(u32, f32)> {
        let len = (self.length.sample(&mut self.rng) as usize).clamp(16, 2000);
        let primary = self.rng.random_range(0..self.topics.len());
        let secondary = self
            .rng
            .random_bool(0.5)
            .then(|| self.rng.random_range(0..self.topics.len()));
        self.scratch.clear();
        for _ in 0..len {
            if self.rng.random_bool(0.65) {
                let topic = match secondary {
                    Some(s) if self.rng.random_bool(0.3) => s,
                    _ => primary,
                };
                let (t, a) = self.topics[topic].sample(&mut self.rng);
                let w = f64::from(a) * self.topical_weight.sample(&mut self.rng);
                self.add(t, w);
            } else {
                let (t, w) = self.background_term();
                self.add(t, w);
            }
        }
        self.take()
    }

    /// Draws one query vector (term ids ascending) of 20 to 40 distinct terms.
    pub fn query(&mut self) -> Vec<(u32, f32)> {
        let want = self.rng.random_range(20..=40usize).min(self.terms.len());
        let topic = self.rng.random_range(0..self.topics.len());
        self.scratch.clear();
        let mut guard = 0;
        while self.scratch.len() < want && guard < want * 50 {
            guard += 1;
            if self.rng.random_bool(0.85) {
                let (t, a) = self.topics[topic].sample(&mut self.rng);
                let w = f64::from(a).sqrt() * self.query_weight.sample(&mut self.rng);
                self.add(t, w);
            } else {
                let (t, w) = self.background_term();
                self.add(t, w * 2.0);
            }
        }
        self.take()
    }

    /// The popularity rank of a term (0 = most popular).
    pub fn rank(&self, term: u32) -> u32 {
        self.rank_of_term[term as usize]
    }
}

/// Writes one JSONL line `{"id": "...", "vector": {...}}` with terms named by `name`.
pub fn write_jsonl_line<'a>(
    out: &mut impl Write,
    id: &str,
    vector: &[(u32, f32)],
    name: impl Fn(u32) -> &'a str,
) -> std::io::Result<()> {
    out.write_all(b"{\"id\":\"")?;
    write_json_str(out, id)?;
    out.write_all(b"\",\"vector\":{")?;
    for (i, &(t, w)) in vector.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        out.write_all(b"\"")?;
        write_json_str(out, name(t))?;
        write!(out, "\":{w}")?;
    }
    out.write_all(b"}}\n")
}

fn write_json_str(out: &mut impl Write, s: &str) -> std::io::Result<()> {
    for c in s.chars() {
        match c {
            '"' => out.write_all(b"\\\"")?,
            '\\' => out.write_all(b"\\\\")?,
            c if (c as u32) < 0x20 => write!(out, "\\u{:04x}", c as u32)?,
            c => write!(out, "{c}")?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generator(options: &SynthOptions) -> SynthGenerator {
        SynthGenerator::new(options, build_vocabulary(options.vocab, None, &[]), &[])
    }

    #[test]
    fn deterministic() {
        let opts = SynthOptions::default();
        let (mut a, mut b) = (generator(&opts), generator(&opts));
        for _ in 0..50 {
            assert_eq!(a.document(), b.document());
        }
        assert_eq!(a.query(), b.query());
        let mut c = generator(&SynthOptions { seed: 1, ..opts });
        assert_ne!(a.document(), c.document());
    }

    /// The statistics documented at the top of this module.
    #[test]
    fn splade_like_statistics() {
        let opts = SynthOptions::default();
        let mut g = generator(&opts);
        let n = 20_000;
        let mut lengths = Vec::with_capacity(n);
        let mut df = vec![0u32; g.num_terms()];
        let mut weights = Vec::new();
        for _ in 0..n {
            let d = g.document();
            assert!(d.windows(2).all(|w| w[0].0 < w[1].0));
            lengths.push(d.len());
            for &(t, w) in &d {
                df[t as usize] += 1;
                assert!((0.01..=4.0).contains(&w));
                weights.push(w);
            }
        }
        lengths.sort_unstable();
        let mean = lengths.iter().sum::<usize>() as f64 / n as f64;
        let median = lengths[n / 2] as f64;
        let p99 = lengths[n * 99 / 100] as f64;
        assert!(
            (100.0..=200.0).contains(&mean),
            "mean document length {mean}"
        );
        assert!(
            p99 / median > 2.0,
            "heavy tail: p99 {p99} / median {median}"
        );
        // Zipf-like: document frequency falls with popularity rank as a power law.
        let mut by_rank: Vec<(u32, u32)> = (0..g.num_terms() as u32)
            .map(|t| (g.rank(t), df[t as usize]))
            .collect();
        by_rank.sort_unstable();
        let df_at = |r: usize| f64::from(by_rank[r].1.max(1));
        let slope = (df_at(1000).ln() - df_at(10).ln()) / (1000f64.ln() - 10f64.ln());
        assert!(
            (-1.5..=-0.3).contains(&slope),
            "log-log slope of df by rank {slope}"
        );
        // Long-tailed weights: the largest weights are far above the median.
        weights.sort_by(f32::total_cmp);
        let wmed = weights[weights.len() / 2];
        let w999 = weights[weights.len() * 999 / 1000];
        assert!(w999 / wmed > 5.0, "weight tail {w999} / {wmed}");
        // Queries: 20 to 40 distinct terms.
        for _ in 0..200 {
            let q = g.query();
            assert!((20..=40).contains(&q.len()), "query of {} terms", q.len());
        }
    }

    #[test]
    fn documents_of_one_topic_share_terms() {
        let opts = SynthOptions {
            topics: 2,
            ..SynthOptions::default()
        };
        let mut same = generator(&opts);
        let mut many = generator(&SynthOptions {
            topics: 1000,
            ..opts
        });
        let overlap = |g: &mut SynthGenerator| {
            let mut total = 0usize;
            for _ in 0..200 {
                let a: std::collections::HashSet<u32> = g.document().iter().map(|e| e.0).collect();
                total += g.document().iter().filter(|e| a.contains(&e.0)).count();
            }
            total
        };
        let (a, b) = (overlap(&mut same), overlap(&mut many));
        assert!(2 * a > 3 * b, "overlap {a} vs {b}");
    }

    #[test]
    fn real_queries_become_topics_and_vocabulary() {
        let q = SparseRecord {
            id: "q".into(),
            entries: vec![("alpha".into(), 3.0), ("##beta".into(), 1.0)],
        };
        let vocab = build_vocabulary(
            100,
            Some("[PAD]\n[unused0]\nthe\nalpha\n"),
            std::slice::from_ref(&q),
        );
        assert_eq!(vocab, vec!["the", "alpha", "##beta"]);
        let opts = SynthOptions {
            topics: 1,
            ..SynthOptions::default()
        };
        let mut g = SynthGenerator::new(&opts, vocab, &[q]);
        let mut seen_beta = false;
        for _ in 0..100 {
            seen_beta |= g.document().iter().any(|e| g.term(e.0) == "##beta");
        }
        assert!(seen_beta);
        let mut out = Vec::new();
        write_jsonl_line(&mut out, "d", &[(2, 1.5)], |t| g.term(t)).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"id\":\"d\",\"vector\":{\"##beta\":1.5}}\n"
        );
    }

    #[test]
    fn unplanted_documents_ignore_the_queries() {
        let q = SparseRecord {
            id: "q".into(),
            entries: vec![("w3".into(), 3.0), ("w7".into(), 1.0)],
        };
        let opts = SynthOptions {
            plant_queries: false,
            ..SynthOptions::default()
        };
        let vocab = || build_vocabulary(opts.vocab, None, &[]);
        let mut with = SynthGenerator::new(&opts, vocab(), std::slice::from_ref(&q));
        let mut without = SynthGenerator::new(&opts, vocab(), &[]);
        for _ in 0..200 {
            assert_eq!(with.document(), without.document());
        }
        let mut planted = SynthGenerator::new(
            &SynthOptions {
                plant_queries: true,
                ..opts
            },
            vocab(),
            &[q],
        );
        let mut differs = false;
        for _ in 0..200 {
            differs |= planted.document() != without.document();
        }
        assert!(differs);
    }
}
