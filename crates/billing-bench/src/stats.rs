//! Latency percentiles over recorded samples.

use std::time::Duration;

/// Latency samples in microseconds.
#[derive(Debug, Default, Clone)]
pub struct Latencies {
    micros: Vec<u64>,
    sorted: bool,
}

impl Latencies {
    /// Records one sample.
    pub fn record(&mut self, d: Duration) {
        self.micros
            .push(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        self.sorted = false;
    }

    /// Adds another set of samples.
    pub fn merge(&mut self, other: Self) {
        self.micros.extend(other.micros);
        self.sorted = false;
    }

    /// The number of samples.
    #[must_use]
    pub fn len(&self) -> usize {
        self.micros.len()
    }

    /// Whether there is no sample.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.micros.is_empty()
    }

    /// The `q` quantile (0.0..=1.0) in milliseconds (nearest rank), 0 without samples.
    pub fn quantile_ms(&mut self, q: f64) -> f64 {
        if self.micros.is_empty() {
            return 0.0;
        }
        if !self.sorted {
            self.micros.sort_unstable();
            self.sorted = true;
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "a rank within the sample count"
        )]
        let rank = ((q * self.micros.len() as f64).ceil() as usize).clamp(1, self.micros.len());
        #[expect(clippy::cast_precision_loss, reason = "microseconds fit in f64")]
        let ms = self.micros[rank - 1] as f64 / 1000.0;
        ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_the_nearest_rank() {
        let mut l = Latencies::default();
        for ms in 1..=100 {
            l.record(Duration::from_millis(ms));
        }

        assert!((l.quantile_ms(0.5) - 50.0).abs() < f64::EPSILON);
        assert!((l.quantile_ms(0.99) - 99.0).abs() < f64::EPSILON);
        assert!((l.quantile_ms(1.0) - 100.0).abs() < f64::EPSILON);
    }

    #[test]
    fn no_samples_give_zero() {
        assert!(Latencies::default().quantile_ms(0.5).abs() < f64::EPSILON);
    }
}
