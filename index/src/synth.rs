//! A deterministic synthetic collection with SPLADE-like shape, for benchmarks and demos.
//!
//! Terms follow a Zipf-like popularity over a fixed vocabulary; each document is drawn from one of
//! a number of topics (half its terms from the topic's own terms, half from the global
//! distribution); document lengths are log-normal (a heavy tail); weights are log-normal reals.
//! Documents are written in random topic order. Queries have 20 to 40 terms drawn the same way.

use std::io::Write;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, LogNormal, Zipf};

/// Parameters of a synthetic collection.
#[derive(Debug, Clone, Copy)]
pub struct SynthOptions {
    /// Number of documents.
    pub docs: u64,
    /// Number of queries.
    pub queries: u64,
    /// Random seed; the same seed gives the same files.
    pub seed: u64,
    /// Vocabulary size.
    pub vocab: u32,
    /// Number of topics.
    pub topics: u32,
}

impl Default for SynthOptions {
    fn default() -> Self {
        SynthOptions {
            docs: 100_000,
            queries: 1_000,
            seed: 42,
            vocab: 30_522,
            topics: 256,
        }
    }
}

/// Draws synthetic sparse vectors.
pub struct SynthGenerator {
    rng: StdRng,
    zipf: Zipf<f64>,
    length: LogNormal<f64>,
    weight: LogNormal<f64>,
    topic_terms: Vec<Vec<u32>>,
    /// A random permutation so that popular terms are spread over the vocabulary.
    term_of_rank: Vec<u32>,
    scratch: Vec<(u32, f32)>,
}

impl SynthGenerator {
    /// A generator for `options`.
    pub fn new(options: &SynthOptions) -> Self {
        let mut rng = StdRng::seed_from_u64(options.seed);
        let vocab = options.vocab.max(64);
        let mut term_of_rank: Vec<u32> = (0..vocab).collect();
        for i in (1..term_of_rank.len()).rev() {
            let j = rng.random_range(0..=i);
            term_of_rank.swap(i, j);
        }
        let topic_terms = (0..options.topics.max(1))
            .map(|_| (0..200).map(|_| rng.random_range(0..vocab)).collect())
            .collect();
        SynthGenerator {
            rng,
            zipf: Zipf::new(f64::from(vocab), 1.05).expect("valid Zipf parameters"),
            length: LogNormal::new(4.7, 0.45).expect("valid log-normal"),
            weight: LogNormal::new(-0.6, 0.8).expect("valid log-normal"),
            topic_terms,
            term_of_rank,
            scratch: Vec::new(),
        }
    }

    /// The name of term `id` in the synthetic vocabulary.
    pub fn term_name(id: u32) -> String {
        format!("w{id}")
    }

    fn draw(&mut self, len: usize, topic: usize) -> &[(u32, f32)] {
        self.scratch.clear();
        let mut guard = 0;
        while self.scratch.len() < len && guard < len * 20 {
            guard += 1;
            let term = if self.rng.random_bool(0.5) {
                let terms = &self.topic_terms[topic];
                terms[self.rng.random_range(0..terms.len())]
            } else {
                let rank = self.zipf.sample(&mut self.rng) as usize - 1;
                self.term_of_rank[rank.min(self.term_of_rank.len() - 1)]
            };
            if self.scratch.iter().any(|&(t, _)| t == term) {
                continue;
            }
            let w = self.weight.sample(&mut self.rng).min(5.0) as f32;
            self.scratch
                .push((term, (w * 100.0).round().max(1.0) / 100.0));
        }
        &self.scratch
    }

    /// Draws one document vector.
    pub fn document(&mut self) -> Vec<(u32, f32)> {
        let len = (self.length.sample(&mut self.rng) as usize).clamp(8, 1500);
        let topic = self.rng.random_range(0..self.topic_terms.len());
        self.draw(len, topic).to_vec()
    }

    /// Draws one query vector.
    pub fn query(&mut self) -> Vec<(u32, f32)> {
        let len = self.rng.random_range(20..=40);
        let topic = self.rng.random_range(0..self.topic_terms.len());
        self.draw(len, topic).to_vec()
    }
}

/// Writes one JSONL line `{"id": "...", "vector": {...}}`.
pub fn write_jsonl_line(
    out: &mut impl Write,
    id: &str,
    vector: &[(u32, f32)],
) -> std::io::Result<()> {
    write!(out, "{{\"id\":\"{id}\",\"vector\":{{")?;
    for (i, &(t, w)) in vector.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        write!(out, "\"w{t}\":{w}")?;
    }
    out.write_all(b"}}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_shaped() {
        let opts = SynthOptions::default();
        let mut a = SynthGenerator::new(&opts);
        let mut b = SynthGenerator::new(&opts);
        let mut total = 0;
        for _ in 0..200 {
            let d = a.document();
            assert_eq!(d, b.document());
            assert!(d.iter().all(|&(_, w)| w > 0.0));
            total += d.len();
        }
        let mean = total as f64 / 200.0;
        assert!((60.0..250.0).contains(&mean), "mean length {mean}");
        let q = a.query();
        assert!((15..=40).contains(&q.len()));
    }
}
