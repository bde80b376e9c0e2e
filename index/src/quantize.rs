//! Quantization of real-valued weights to integers.
//!
//! # Documents
//! Every posting stores a `u8` impact (1..=255). One global scale, recorded in the index header,
//! maps weights to impacts: `impact = clamp(round(weight / scale), 1, 255)` for `weight > 0`.
//! When every weight of the collection is an integer no larger than 255 (a CIFF file, or vectors
//! that are already quantized), the scale is 1 and impacts equal the weights exactly. Otherwise
//! the scale is `max_weight / 255`, so the largest weight maps to 255.
//!
//! # Queries
//! All processors use [`quantize_query_weights`]: integer weights (Anserini's pre-encoded queries,
//! where a repeated token is its weight) are used as they are; real-valued weights are scaled so
//! that the largest becomes 255 and rounded to the nearest integer, at least 1. If the sum of the
//! query weights times 255 would not fit in a `u32`, all weights are scaled down proportionally
//! (rounding down, dropping terms that reach 0). A document score is therefore
//! `sum_t q_t * impact_t`, an integer that never exceeds `u32::MAX`.

/// The largest impact a posting can have.
pub const MAX_IMPACT: u8 = u8::MAX;

/// The largest allowed sum of quantized query weights: `sum(q) * 255` fits in a `u32`.
pub const QUERY_WEIGHT_SUM_LIMIT: u64 = u32::MAX as u64 / MAX_IMPACT as u64;

/// Maps document weights to `u8` impacts with one global scale.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quantizer {
    scale: f32,
}

impl Quantizer {
    /// The quantizer for a collection whose largest weight is `max_weight`; `all_integral` tells
    /// whether every weight is an integer (then weights up to 255 are kept exactly).
    pub fn for_weights(max_weight: f32, all_integral: bool) -> Self {
        let scale = if (all_integral && max_weight <= f32::from(MAX_IMPACT)) || max_weight <= 0.0 {
            1.0
        } else {
            max_weight / f32::from(MAX_IMPACT)
        };
        Quantizer { scale }
    }

    /// A quantizer with an explicit scale (weight units per impact unit), e.g. read from a header.
    /// Returns `None` when the scale is not a positive finite number.
    pub fn from_scale(scale: f32) -> Option<Self> {
        (scale.is_finite() && scale > 0.0).then_some(Quantizer { scale })
    }

    /// Weight units per impact unit.
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// The impact of a weight: 0 for weights that are not positive, otherwise 1..=255.
    pub fn quantize(&self, weight: f32) -> u8 {
        if weight > 0.0 {
            (weight / self.scale)
                .round()
                .clamp(1.0, f32::from(MAX_IMPACT)) as u8
        } else {
            0
        }
    }

    /// The weight an impact stands for.
    pub fn dequantize(&self, impact: u8) -> f32 {
        f32::from(impact) * self.scale
    }
}

/// Quantizes query weights by the rule in the module documentation.
///
/// `weights` must be positive and finite (callers drop the others). The result has one entry per
/// input weight, in the same order; an entry of 0 means the term is dropped. The sum of the result
/// never exceeds [`QUERY_WEIGHT_SUM_LIMIT`].
pub fn quantize_query_weights(weights: &[f32]) -> Vec<u32> {
    quantize_query_weights_scaled(weights).0
}

/// [`quantize_query_weights`], with the query's scale: the weight units of one quantized unit
/// (1 for integral weights, the largest weight over 255 for real ones, more when the sum was
/// capped). A document's score in the model's units is its integer score times this scale times
/// the index's impact scale ([`Quantizer::scale`]).
pub fn quantize_query_weights_scaled(weights: &[f32]) -> (Vec<u32>, f64) {
    let max = weights.iter().copied().fold(0.0f32, f32::max);
    if max <= 0.0 {
        return (vec![0; weights.len()], 1.0);
    }
    let integral = weights.iter().all(|w| w.fract() == 0.0);
    let mut q: Vec<u64> = weights
        .iter()
        .map(|&w| {
            if w <= 0.0 || !w.is_finite() {
                0
            } else if integral {
                w as u64
            } else {
                ((f64::from(w) * 255.0 / f64::from(max)).round() as u64).max(1)
            }
        })
        .collect();
    let mut scale = match integral {
        true => 1.0,
        false => f64::from(max) / 255.0,
    };
    let sum: u64 = q.iter().fold(0u64, |a, &b| a.saturating_add(b));
    if sum > QUERY_WEIGHT_SUM_LIMIT {
        let factor = QUERY_WEIGHT_SUM_LIMIT as f64 / sum as f64;
        for v in &mut q {
            *v = (*v as f64 * factor).floor() as u64;
        }
        scale /= factor;
    }
    let q = q
        .into_iter()
        .map(|v| v.min(u64::from(u32::MAX)) as u32)
        .collect();
    (q, scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn integral_small_weights_are_exact() {
        let q = Quantizer::for_weights(200.0, true);
        assert_eq!(q.scale(), 1.0);
        assert_eq!(q.quantize(17.0), 17);
        assert_eq!(q.quantize(200.0), 200);
    }

    #[test]
    fn real_weights_scale_to_255() {
        let q = Quantizer::for_weights(3.0, false);
        assert_eq!(q.quantize(3.0), 255);
        assert_eq!(q.quantize(1.5), 128);
        assert_eq!(q.quantize(1e-9), 1);
        assert_eq!(q.quantize(0.0), 0);
        assert_eq!(q.quantize(-1.0), 0);
    }

    #[test]
    fn large_integers_are_scaled() {
        let q = Quantizer::for_weights(1000.0, true);
        assert_eq!(q.quantize(1000.0), 255);
    }

    #[test]
    fn query_integral_weights_kept() {
        assert_eq!(
            quantize_query_weights(&[3.0, 3574.0, 1.0]),
            vec![3, 3574, 1]
        );
    }

    #[test]
    fn the_query_scale_maps_quantized_weights_back() {
        let (q, scale) = quantize_query_weights_scaled(&[0.5, 2.0, 1.25]);
        assert_eq!(q[1], 255);
        for (w, q) in [0.5f32, 2.0, 1.25].iter().zip(&q) {
            assert!(
                (f64::from(*q) * scale - f64::from(*w)).abs() <= scale / 2.0,
                "{w} {q}"
            );
        }
        assert_eq!(
            quantize_query_weights_scaled(&[3.0, 7.0]),
            (vec![3, 7], 1.0)
        );
        // Capped sums scale up: the weights still map back within a unit.
        let big = vec![4.0e9f32; 4];
        let (q, scale) = quantize_query_weights_scaled(&big);
        assert!(q.iter().map(|&v| u64::from(v)).sum::<u64>() <= QUERY_WEIGHT_SUM_LIMIT);
        assert!((f64::from(q[0]) * scale - 4.0e9).abs() <= scale);
    }

    #[test]
    fn query_real_weights_scaled() {
        assert_eq!(quantize_query_weights(&[0.5, 2.0, 0.001]), vec![64, 255, 1]);
    }

    #[test]
    fn query_sum_is_bounded() {
        let w = vec![1e9f32; 100];
        let q = quantize_query_weights(&w);
        let sum: u64 = q.iter().map(|&v| u64::from(v)).sum();
        assert!(sum <= QUERY_WEIGHT_SUM_LIMIT);
        assert!(q.iter().all(|&v| v > 0));
    }

    proptest! {
        #[test]
        fn impacts_in_range(max in (1u64..1_000_000_000).prop_map(|x| x as f32 / 1000.0), w in (0u64..1_000_000_000).prop_map(|x| x as f32 / 1000.0), integral: bool) {
            let q = Quantizer::for_weights(max, integral);
            let i = q.quantize(w.min(max));
            prop_assert!(w == 0.0 || i >= 1);
        }

        #[test]
        fn query_sum_never_overflows(w in proptest::collection::vec((1u64..1_000_000_000_000).prop_map(|x| x as f32 / 1000.0), 1..300)) {
            let q = quantize_query_weights(&w);
            let sum: u64 = q.iter().map(|&v| u64::from(v)).sum();
            prop_assert!(sum * 255 <= u64::from(u32::MAX));
        }
    }
}
