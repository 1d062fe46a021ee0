//! The observability port: what the service's adapters report, through one door.
//!
//! The HTTP adapter reports requests and webhook deliveries, the payment provider its
//! calls, the background queues (the outbox, the PaymentIntent lookups) their passes and
//! backlogs. One implementation (the Prometheus registry of `billing-metrics`) turns
//! them into metric families; the families, their labels and help texts are that
//! adapter's business, not the reporters'.

use std::time::Duration;

use crate::EventOutcome;

/// A background queue whose passes are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Queue {
    /// Notifications waiting to be delivered.
    Outbox,
    /// Paid Stripe invoices whose PaymentIntent is still to be looked up.
    PaymentIntentLookups,
}

impl Queue {
    /// A stable name, for logs.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Outbox => "outbox",
            Self::PaymentIntentLookups => "PaymentIntent lookup",
        }
    }
}

/// One finished call to the payment provider (all its attempts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProviderCall<'a> {
    /// The operation, such as `create_checkout_session`.
    pub operation: &'a str,
    /// How it ended, as a stable label (`success`, `refused`, `unavailable`, …).
    pub outcome: &'a str,
    /// Attempts made (0 when nothing was sent); retries are `attempts - 1`.
    pub attempts: u32,
    /// The whole call's wall time, backoff included.
    pub duration: Duration,
}

/// A verified webhook event as it arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookDelivery<'a> {
    /// Stripe's event type (from a signed payload: bounded by the adapter).
    pub kind: &'a str,
    /// What it came to.
    pub outcome: EventOutcome,
    /// Its age on arrival (now minus its `created`; zero for one "from the future").
    pub lag: Duration,
    /// The API version it was rendered in, if it says.
    pub api_version: Option<&'a str>,
}

/// Where the adapters report. Every method is cheap and infallible: a sink that fails
/// loses a sample, never a request.
pub trait BillingMetrics: Send + Sync {
    /// One HTTP request answered. `route` is the matched route *pattern* (or `unmatched`),
    /// never a raw path.
    fn http_request(&self, route: &str, method: &str, status: u16, duration: Duration);

    /// One verified webhook event.
    fn webhook_event(&self, delivery: &WebhookDelivery<'_>);

    /// One refused webhook delivery, by a stable reason (`mismatch`, `payload_too_large`,
    /// …).
    fn webhook_rejected(&self, reason: &str);

    /// One finished call to the payment provider.
    fn provider_call(&self, call: &ProviderCall<'_>);

    /// How many items `queue` holds now.
    fn queue_backlog(&self, queue: Queue, waiting: u64);

    /// One pass over `queue`: `failed` attempts that did not succeed (retried or given
    /// up), of which `given_up` were the item's last.
    fn queue_pass(&self, queue: Queue, failed: u64, given_up: u64);

    /// One correction a reconciliation made (issue 15), by object kind (`subscription`,
    /// `invoice`, `tenant`). Defaults to nothing, for sinks that do not count them.
    fn reconcile_correction(&self, kind: &str) {
        let _ = kind;
    }

    /// One catch-up pass over Stripe's Events API (`jobs::catchup`). A no-op by default.
    fn catchup_pass(&self, _pass: &CatchupPass) {}
}

/// One finished catch-up pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchupPass {
    /// Events the ledger lacked that the pass recorded (applied, unmatched or failed):
    /// webhooks that never arrived.
    pub recovered: u64,
    /// How far the watermark is behind now, after the pass (`None`: none yet).
    pub watermark_lag: Option<Duration>,
    /// The pass's wall time.
    pub duration: Duration,
}

/// A sink that drops everything: for tests and tools that observe nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoMetrics;

impl BillingMetrics for NoMetrics {
    fn http_request(&self, _: &str, _: &str, _: u16, _: Duration) {}
    fn webhook_event(&self, _: &WebhookDelivery<'_>) {}
    fn webhook_rejected(&self, _: &str) {}
    fn provider_call(&self, _: &ProviderCall<'_>) {}
    fn queue_backlog(&self, _: Queue, _: u64) {}
    fn queue_pass(&self, _: Queue, _: u64, _: u64) {}
}
