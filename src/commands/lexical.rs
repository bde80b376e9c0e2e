//! BM25's parameters and hybrid queries as the commands take them: `eval --bm25`,
//! `build --lexical-only` / `--lexical`, `search` and `eval` with `--hybrid` and `--fusion`.

use bmp_eval::Bm25Params;
use bmp_lexical::{Fusion, HybridSpec};
use clap::Args;

/// BM25's `k1` and `b`.
#[derive(Debug, Clone, Default, Args)]
pub struct Bm25Args {
    /// BM25's term-frequency saturation k1 (≥ 0; default 1.2).
    #[arg(long)]
    pub bm25_k1: Option<f32>,
    /// BM25's length normalization b (0 to 1; default 0.75).
    #[arg(long)]
    pub bm25_b: Option<f32>,
}

impl Bm25Args {
    /// Whether either parameter was given.
    pub fn given(&self) -> bool {
        self.bm25_k1.is_some() || self.bm25_b.is_some()
    }

    /// The parameters, checked (the defaults where not given).
    pub fn params(&self) -> anyhow::Result<Bm25Params> {
        let d = Bm25Params::default();
        Ok(Bm25Params::new(
            self.bm25_k1.unwrap_or(d.k1),
            self.bm25_b.unwrap_or(d.b),
        )?)
    }
}

/// `--hybrid` given without a value: [`bmp_lexical::DEFAULT_LEXICAL_WEIGHT`].
pub static DEFAULT_HYBRID: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| bmp_lexical::DEFAULT_LEXICAL_WEIGHT.to_string());

/// Hybrid queries: lexical weights and fusions, one system for each pair.
#[derive(Debug, Clone, Default, Args)]
pub struct HybridArgs {
    /// Hybrid queries (SPLADE + BM25 of the same text; the index needs a lexical field, built
    /// with --lexical; the queries are text, encoded with --model): the lexical weight λ of each
    /// row, comma-separated, each in [0, 1]. With --fusion linear, the score is
    /// `(1 − λ) · learned + λ · bm25`, each part divided by the query's largest possible score in
    /// it, answered exactly in one pass; `--hybrid` alone takes 0.5.
    #[arg(long, value_delimiter = ',', num_args = 0..=1,
          default_missing_value = DEFAULT_HYBRID.as_str())]
    pub hybrid: Vec<f32>,
    /// How --hybrid fuses, comma-separated for one row each: linear (one rank-safe pass over
    /// the weighted sum) or rrf (the top k of each part, fused by weighted reciprocal rank,
    /// `(1 − λ) / (60 + rank) + λ / (60 + rank)`).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "linear",
        requires = "hybrid"
    )]
    pub fusion: Vec<Fusion>,
}

impl HybridArgs {
    /// Each pair of fusion and lexical weight, checked (empty without --hybrid).
    pub fn specs(&self) -> anyhow::Result<Vec<HybridSpec>> {
        let mut specs = Vec::with_capacity(self.hybrid.len() * self.fusion.len());
        for &fusion in &self.fusion {
            for &weight in &self.hybrid {
                specs.push(HybridSpec::new(weight, fusion)?);
            }
        }
        Ok(specs)
    }
}
