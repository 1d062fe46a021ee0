//! The catch-up's metric families (issue 15), registered with the others by
//! [`crate::metrics::Metrics`]:
//!
//! * `billing_catchup_events_recovered_total`: events the ledger lacked that a catch-up
//!   pass recorded — webhooks that never arrived (alert `BillingCatchupRecoveredEvents`);
//! * `billing_catchup_watermark_lag_seconds`: how far the watermark is behind, after the
//!   last pass (grows while passes fail);
//! * `billing_catchup_pass_duration_seconds`: each pass's wall time.

use billing_domain::metrics::CatchupPass;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntGauge, Registry};

/// Buckets of a pass's duration, in seconds.
const PASS_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0, 300.0];

/// The catch-up's families.
pub(crate) struct CatchupMetrics {
    recovered: IntCounter,
    lag: IntGauge,
    duration: Histogram,
}

#[expect(
    clippy::expect_used,
    reason = "constant metric definitions, registered once per registry"
)]
impl CatchupMetrics {
    pub(crate) fn register(registry: &Registry) -> Self {
        let recovered = IntCounter::new(
            "billing_catchup_events_recovered_total",
            "Stripe events missing from the ledger that the catch-up applied (webhooks that never arrived).",
        )
        .expect("valid metric");
        let lag = IntGauge::new(
            "billing_catchup_watermark_lag_seconds",
            "Seconds the catch-up watermark is behind now, after the last pass.",
        )
        .expect("valid metric");
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "billing_catchup_pass_duration_seconds",
                "Wall time of a catch-up pass over Stripe's Events API.",
            )
            .buckets(PASS_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        for c in [
            Box::new(recovered.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(lag.clone()),
            Box::new(duration.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Self {
            recovered,
            lag,
            duration,
        }
    }

    pub(crate) fn record(&self, pass: &CatchupPass) {
        self.recovered.inc_by(pass.recovered);
        if let Some(lag) = pass.watermark_lag {
            self.lag
                .set(i64::try_from(lag.as_secs()).unwrap_or(i64::MAX));
        }
        self.duration.observe(pass.duration.as_secs_f64());
    }
}
