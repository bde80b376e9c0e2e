//! Sparse output vectors and their pruning.

use crate::error::{EncoderError, Result};

/// A sparse vector over a model's vocabulary: `(token_id, weight)` pairs sorted by token id, each
/// token id at most once, every weight finite and greater than zero.
pub type SparseVector = Vec<(u32, f32)>;

/// Optional pruning applied to every output vector: first the floor, then the top-k cut.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pruning {
    /// Keep only the `k` heaviest terms (ties broken by the smaller token id). `None` keeps all.
    pub top_k: Option<usize>,
    /// Drop terms whose weight is below this floor. `None` keeps every positive weight.
    pub min_weight: Option<f32>,
}

impl Pruning {
    /// No pruning: every term with a positive weight is kept.
    pub const NONE: Pruning = Pruning {
        top_k: None,
        min_weight: None,
    };

    /// Checks that the values make sense: `top_k` at least 1, `min_weight` finite and not negative.
    pub fn validate(&self) -> Result<()> {
        if self.top_k == Some(0) {
            return Err(EncoderError::InvalidOption {
                option: "top_k",
                message: "must be at least 1 (use no top-k to keep every term)".into(),
            });
        }
        if let Some(floor) = self.min_weight {
            if !floor.is_finite() || floor < 0.0 {
                return Err(EncoderError::InvalidOption {
                    option: "min_weight",
                    message: format!("must be a finite number >= 0, got {floor}"),
                });
            }
        }
        Ok(())
    }
}

/// Applies `pruning` to a sparse vector in place; the result stays sorted by token id.
pub fn prune(vector: &mut SparseVector, pruning: &Pruning) {
    if let Some(floor) = pruning.min_weight {
        vector.retain(|&(_, w)| w >= floor);
    }
    if let Some(k) = pruning.top_k {
        if vector.len() > k {
            // Heaviest first, smaller id first among equal weights: a deterministic cut.
            let heavier = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
            if k == 0 {
                vector.clear();
            } else {
                vector.select_nth_unstable_by(k - 1, heavier);
                vector.truncate(k);
                vector.sort_unstable_by_key(|&(id, _)| id);
            }
        }
    }
}

/// Turns one row of pooled logits (the max over a text's tokens, per vocabulary entry) into a
/// SPLADE vector: `w_j = log(1 + relu(x_j))`, keeping positive weights, then pruning.
pub(crate) fn splade_from_pooled_logits(pooled: &[f32], pruning: &Pruning) -> SparseVector {
    let mut vector: SparseVector = pooled
        .iter()
        .enumerate()
        .filter(|&(_, &x)| x > 0.0)
        .filter_map(|(j, &x)| {
            let w = x.ln_1p();
            // A vocabulary larger than u32::MAX cannot occur (config validation), so this is exact.
            (w > 0.0 && w.is_finite()).then_some((j as u32, w))
        })
        .collect();
    prune(&mut vector, pruning);
    vector
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v() -> SparseVector {
        vec![(1, 0.5), (4, 2.0), (7, 0.1), (9, 2.0), (12, 1.0)]
    }

    #[test]
    fn no_pruning_keeps_everything() {
        let mut x = v();
        prune(&mut x, &Pruning::NONE);
        assert_eq!(x, v());
    }

    #[test]
    fn floor_drops_light_terms() {
        let mut x = v();
        prune(
            &mut x,
            &Pruning {
                top_k: None,
                min_weight: Some(0.5),
            },
        );
        assert_eq!(x, vec![(1, 0.5), (4, 2.0), (9, 2.0), (12, 1.0)]);
    }

    #[test]
    fn top_k_keeps_heaviest_sorted_by_id_with_deterministic_ties() {
        let mut x = v();
        prune(
            &mut x,
            &Pruning {
                top_k: Some(3),
                min_weight: None,
            },
        );
        assert_eq!(x, vec![(4, 2.0), (9, 2.0), (12, 1.0)]);

        let mut x = v();
        prune(
            &mut x,
            &Pruning {
                top_k: Some(1),
                min_weight: None,
            },
        );
        assert_eq!(
            x,
            vec![(4, 2.0)],
            "tie between ids 4 and 9 goes to the smaller id"
        );

        let mut x = v();
        prune(
            &mut x,
            &Pruning {
                top_k: Some(10),
                min_weight: None,
            },
        );
        assert_eq!(x, v());
    }

    #[test]
    fn floor_then_top_k() {
        let mut x = v();
        prune(
            &mut x,
            &Pruning {
                top_k: Some(2),
                min_weight: Some(2.5),
            },
        );
        assert!(x.is_empty());
        let mut x = v();
        prune(
            &mut x,
            &Pruning {
                top_k: Some(4),
                min_weight: Some(0.2),
            },
        );
        assert_eq!(x, vec![(1, 0.5), (4, 2.0), (9, 2.0), (12, 1.0)]);
    }

    #[test]
    fn validate_rejects_bad_values() {
        assert!(Pruning::NONE.validate().is_ok());
        let zero_k = Pruning {
            top_k: Some(0),
            min_weight: None,
        };
        assert!(zero_k.validate().unwrap_err().to_string().contains("top_k"));
        for bad in [f32::NAN, -1.0, f32::INFINITY] {
            let p = Pruning {
                top_k: None,
                min_weight: Some(bad),
            };
            assert!(p.validate().unwrap_err().to_string().contains("min_weight"));
        }
    }

    #[test]
    fn splade_activation_is_log1p_relu() {
        let pooled = [-1.0f32, 0.0, 1.0, f32::NEG_INFINITY, 3.0];
        let x = splade_from_pooled_logits(&pooled, &Pruning::NONE);
        assert_eq!(x.len(), 2);
        assert_eq!(x[0].0, 2);
        assert!((x[0].1 - 2f32.ln()).abs() < 1e-7);
        assert_eq!(x[1].0, 4);
        assert!((x[1].1 - 4f32.ln()).abs() < 1e-6);
    }
}
