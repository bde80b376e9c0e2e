//! Latency statistics: mean, median and 99th percentile of per-query times.

/// Latency statistics in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latency {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
}

impl Latency {
    /// Mean, p50 and p99 of per-query latencies in microseconds (the nearest-rank percentile:
    /// the smallest value with at least that fraction of the values at or below it). All zero
    /// when there is no value.
    pub fn of(mut micros: Vec<f64>) -> Latency {
        if micros.is_empty() {
            return Latency::default();
        }
        micros.sort_by(f64::total_cmp);
        let pct =
            |p: f64| micros[((micros.len() as f64 * p).ceil() as usize).clamp(1, micros.len()) - 1];
        Latency {
            mean: micros.iter().sum::<f64>() / micros.len() as f64,
            p50: pct(0.5),
            p99: pct(0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(Latency::of(Vec::new()), Latency::default());
        let l = Latency::of((1..=100).rev().map(f64::from).collect());
        assert_eq!((l.mean, l.p50, l.p99), (50.5, 50.0, 99.0));
        let l = Latency::of(vec![3.0]);
        assert_eq!((l.mean, l.p50, l.p99), (3.0, 3.0, 3.0));
    }
}
