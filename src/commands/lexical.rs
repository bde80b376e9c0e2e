//! BM25's parameters as the commands that compute BM25 (`eval --bm25`, `build --lexical-only`)
//! take them.

use bmp_eval::Bm25Params;
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

/// `--hybrid` given without a value: [`bmp_eval::lexical::DEFAULT_LEXICAL_WEIGHT`].
pub static DEFAULT_HYBRID: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| bmp_eval::lexical::DEFAULT_LEXICAL_WEIGHT.to_string());
