//! The Stripe client's door to the domain's metrics port: each finished call is reported
//! as a [`ProviderCall`].

use std::sync::Arc;

use billing_domain::metrics::{BillingMetrics, ProviderCall};

use crate::client::{CallRecord, StripeClient, StripeMetrics};

/// Forwards call records to a [`BillingMetrics`].
struct Reporter(Arc<dyn BillingMetrics>);

impl StripeMetrics for Reporter {
    fn record(&self, call: &CallRecord) {
        self.0.provider_call(&ProviderCall {
            operation: call.operation,
            outcome: call.outcome.as_str(),
            attempts: call.attempts,
            duration: call.duration,
        });
    }
}

impl StripeClient {
    /// Reports every finished call to `metrics`, the service's metrics port.
    #[must_use]
    pub fn reporting_to(self, metrics: Arc<dyn BillingMetrics>) -> Self {
        self.with_metrics(Arc::new(Reporter(metrics)))
    }
}
