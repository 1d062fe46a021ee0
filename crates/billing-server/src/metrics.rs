//! Prometheus metrics of the service: one [`Metrics`] value owns a registry and every
//! metric family; `GET /metrics` renders it in the text exposition format. It is the
//! implementation of the domain's observability port ([`BillingMetrics`]) that every
//! adapter reports through (the HTTP middleware and webhook handler, the Stripe client,
//! the queue scheduler), and the [`MetricsEndpoint`] the HTTP adapter serves.
//!
//! The family and label names are a contract with dashboards and alerts: keep them.
//! Label values are bounded: HTTP routes are the matched *pattern* (`unmatched` for
//! unknown paths), never the raw path; webhook event types come only from signed events
//! and are reduced to `other` when they do not look like a Stripe type.
//!
//! Values sampled rather than reported (the database pool) come from a hook registered with
//! [`Metrics::on_scrape`], run at every scrape.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use billing_domain::metrics::{BillingMetrics, ProviderCall, Queue, WebhookDelivery};
use billing_http::MetricsEndpoint;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// The content type of [`Metrics::render`]'s output.
pub const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The reasons a webhook delivery is refused, as `billing_webhook_rejections_total`
/// labels them (the signature ones are `SignatureError::reason()`).
pub const WEBHOOK_REJECTION_REASONS: [&str; 8] = [
    "missing_header",
    "malformed_header",
    "no_v1",
    "mismatch",
    "outside_tolerance",
    "payload_too_large",
    "invalid_payload",
    "body_timeout",
];

type ScrapeHook = Box<dyn Fn(&Metrics) + Send + Sync>;

struct Inner {
    registry: Registry,
    http_duration: HistogramVec,
    webhook_events: IntCounterVec,
    webhook_rejections: IntCounterVec,
    webhook_lag: HistogramVec,
    api_version_mismatch: IntCounter,
    pinned_api_version: std::sync::OnceLock<String>,
    stripe_calls: IntCounterVec,
    stripe_duration: HistogramVec,
    stripe_retries: IntCounterVec,
    outbox_backlog: IntGauge,
    outbox_failures: IntCounter,
    outbox_dead: IntCounter,
    lookups_pending: IntGauge,
    lookups_abandoned: IntCounter,
    /// Reconciliation corrections by object kind (issue 15).
    reconcile_corrections: IntCounterVec,
    db_pool: IntGaugeVec,
    db_pool_waiting: IntGauge,
    catchup: crate::catchup_metrics::CatchupMetrics,
    hooks: RwLock<Vec<ScrapeHook>>,
}

/// The service's metrics. Cheap to clone: every clone shares one registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Buckets for HTTP and Stripe call durations, in seconds.
const DURATION_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Buckets for the age of a webhook event when it arrives, in seconds: Stripe delivers
/// within seconds normally and retries for up to three days.
const LAG_BUCKETS: [f64; 13] = [
    0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21_600.0, 86_400.0, 259_200.0,
];

/// Registers `c` and returns it.
///
/// # Panics
/// On an invalid or duplicate definition: the definitions are constants, so this is a
/// programming error that every test building a `Metrics` catches.
#[expect(
    clippy::expect_used,
    reason = "constant metric definitions; see # Panics"
)]
fn registered<C: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    c: prometheus::Result<C>,
) -> C {
    let c = c.expect("metric definitions are valid");
    registry
        .register(Box::new(c.clone()))
        .expect("metric names are unique");
    c
}

fn histogram_vec(
    name: &str,
    help: &str,
    buckets: &[f64],
    labels: &[&str],
) -> prometheus::Result<HistogramVec> {
    HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        labels,
    )
}

fn counter_vec(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntCounterVec> {
    IntCounterVec::new(Opts::new(name, help), labels)
}

fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntGaugeVec> {
    IntGaugeVec::new(Opts::new(name, help), labels)
}

fn counter(name: &str, help: &str) -> prometheus::Result<IntCounter> {
    IntCounter::new(name, help)
}

fn gauge(name: &str, help: &str) -> prometheus::Result<IntGauge> {
    IntGauge::new(name, help)
}

/// Reduces an event type from a signed payload to a bounded label value.
fn event_type_label(kind: &str) -> &str {
    let plausible = !kind.is_empty()
        && kind.len() <= 64
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_');
    if plausible {
        kind
    } else {
        "other"
    }
}

/// The standard process families (`process_cpu_seconds_total`,
/// `process_resident_memory_bytes`, `process_virtual_memory_bytes`,
/// `process_open_fds`, `process_max_fds`, `process_start_time_seconds`, `process_threads`),
/// read from `/proc` at each scrape. Linux only: elsewhere there are none.
fn register_process_metrics(registry: &Registry) {
    #[cfg(target_os = "linux")]
    if let Err(e) = registry.register(Box::new(
        prometheus::process_collector::ProcessCollector::for_self(),
    )) {
        tracing::warn!(error = %e, "process metrics not exported");
    }
    #[cfg(not(target_os = "linux"))]
    let _ = registry;
}

impl Metrics {
    /// A fresh registry with every family registered. Families with fixed label sets
    /// (rejection reasons, pool states) start at zero so that they are exported at once.
    ///
    /// # Panics
    /// Never with the constant definitions of this module (see `registered`).
    #[must_use]
    pub fn new() -> Self {
        let registry = Registry::new();
        register_process_metrics(&registry);
        let r = &registry;
        let inner = Inner {
            http_duration: registered(
                r,
                histogram_vec(
                    "http_request_duration_seconds",
                    "HTTP request duration by matched route, method and status.",
                    &DURATION_BUCKETS,
                    &["route", "method", "status"],
                ),
            ),
            webhook_events: registered(
                r,
                counter_vec(
                    "billing_webhook_events_total",
                    "Verified Stripe webhook events by type and outcome.",
                    &["type", "outcome"],
                ),
            ),
            webhook_rejections: registered(
                r,
                counter_vec(
                    "billing_webhook_rejections_total",
                    "Refused webhook deliveries by reason.",
                    &["reason"],
                ),
            ),
            webhook_lag: registered(
                r,
                histogram_vec(
                    "billing_webhook_event_lag_seconds",
                    "Age of a webhook event (now minus its created time) on arrival.",
                    &LAG_BUCKETS,
                    &["type"],
                ),
            ),
            api_version_mismatch: registered(
                r,
                counter(
                    "billing_webhook_api_version_mismatch_total",
                    "Webhook events rendered in another API version than the pinned one.",
                ),
            ),
            pinned_api_version: std::sync::OnceLock::new(),
            stripe_calls: registered(
                r,
                counter_vec(
                    "billing_stripe_api_calls_total",
                    "Stripe API calls by operation and outcome.",
                    &["operation", "outcome"],
                ),
            ),
            stripe_duration: registered(
                r,
                histogram_vec(
                    "billing_stripe_api_call_duration_seconds",
                    "Duration of Stripe API calls, retries included.",
                    &DURATION_BUCKETS,
                    &["operation"],
                ),
            ),
            stripe_retries: registered(
                r,
                counter_vec(
                    "billing_stripe_api_retries_total",
                    "Retried Stripe API attempts by operation.",
                    &["operation"],
                ),
            ),
            outbox_backlog: registered(
                r,
                gauge(
                    "billing_outbox_backlog",
                    "Notifications waiting in the outbox.",
                ),
            ),
            outbox_failures: registered(
                r,
                counter(
                    "billing_outbox_delivery_failures_total",
                    "Failed notification delivery attempts.",
                ),
            ),
            outbox_dead: registered(
                r,
                counter(
                    "billing_outbox_dead_total",
                    "Notifications given up after their last retry.",
                ),
            ),
            lookups_pending: registered(
                r,
                gauge(
                    "billing_payment_intent_lookups_pending",
                    "Paid Stripe invoices whose PaymentIntent is still to be looked up.",
                ),
            ),
            lookups_abandoned: registered(
                r,
                counter(
                    "billing_payment_intent_lookups_abandoned_total",
                    "PaymentIntent lookups given up after a refusal or their last retry.",
                ),
            ),
            db_pool: registered(
                r,
                gauge_vec(
                    "billing_db_pool_connections",
                    "Database pool connections by state (in_use, idle, max).",
                    &["state"],
                ),
            ),
            reconcile_corrections: registered(
                r,
                counter_vec(
                    "billing_reconcile_corrections_total",
                    "Local state corrected from Stripe by reconciliation (a missed or misapplied event), by object kind.",
                    &["kind"],
                ),
            ),
            db_pool_waiting: registered(
                r,
                gauge(
                    "billing_db_pool_waiting",
                    "Callers waiting for a database connection.",
                ),
            ),
            catchup: crate::catchup_metrics::CatchupMetrics::register(r),
            hooks: RwLock::new(Vec::new()),
            registry,
        };
        for reason in WEBHOOK_REJECTION_REASONS {
            inner.webhook_rejections.with_label_values(&[reason]);
        }
        for state in ["in_use", "idle", "max"] {
            inner.db_pool.with_label_values(&[state]);
        }
        for kind in ["subscription", "invoice", "tenant"] {
            inner.reconcile_corrections.with_label_values(&[kind]);
        }
        Self {
            inner: Arc::new(inner),
        }
    }

    /// The registry, for the server to add metrics of its own.
    #[must_use]
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The API version webhook endpoints are registered with (`STRIPE_API_VERSION`);
    /// events rendered in another one are counted. Set once, at start.
    pub fn set_pinned_api_version(&self, version: &str) {
        let _already_set = self.inner.pinned_api_version.set(version.to_owned());
    }

    /// Sets the database pool gauges.
    pub fn set_db_pool(&self, in_use: u32, idle: u32, max: u32, waiting: u32) {
        let pool = &self.inner.db_pool;
        pool.with_label_values(&["in_use"]).set(i64::from(in_use));
        pool.with_label_values(&["idle"]).set(i64::from(idle));
        pool.with_label_values(&["max"]).set(i64::from(max));
        self.inner.db_pool_waiting.set(i64::from(waiting));
    }

    /// Registers `f` to run at every scrape, before rendering: the place to sample
    /// gauges such as the pool state or the outbox backlog.
    pub fn on_scrape(&self, f: impl Fn(&Metrics) + Send + Sync + 'static) {
        match self.inner.hooks.write() {
            Ok(mut hooks) => hooks.push(Box::new(f)),
            Err(poisoned) => poisoned.into_inner().push(Box::new(f)),
        }
    }

    /// Runs the scrape hooks.
    pub fn run_scrape_hooks(&self) {
        let hooks = match self.inner.hooks.read() {
            Ok(hooks) => hooks,
            Err(poisoned) => poisoned.into_inner(),
        };
        for hook in hooks.iter() {
            hook(self);
        }
    }

    /// Every metric in the Prometheus text format (see [`TEXT_FORMAT`]).
    #[must_use]
    pub fn render(&self) -> String {
        let families = self.inner.registry.gather();
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            tracing::error!(error = %e, "could not encode the metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl BillingMetrics for Metrics {
    fn http_request(&self, route: &str, method: &str, status: u16, duration: Duration) {
        self.inner
            .http_duration
            .with_label_values(&[route, method, &status.to_string()])
            .observe(duration.as_secs_f64());
    }

    fn webhook_event(&self, delivery: &WebhookDelivery<'_>) {
        if let (Some(pinned), Some(version)) =
            (self.inner.pinned_api_version.get(), delivery.api_version)
        {
            if pinned != version {
                self.inner.api_version_mismatch.inc();
            }
        }
        let kind = event_type_label(delivery.kind);
        self.inner
            .webhook_events
            .with_label_values(&[kind, delivery.outcome.as_str()])
            .inc();
        self.inner
            .webhook_lag
            .with_label_values(&[kind])
            .observe(delivery.lag.as_secs_f64());
    }

    fn webhook_rejected(&self, reason: &str) {
        self.inner
            .webhook_rejections
            .with_label_values(&[reason])
            .inc();
    }

    fn provider_call(&self, call: &ProviderCall<'_>) {
        let operation = call.operation;
        self.inner
            .stripe_calls
            .with_label_values(&[operation, call.outcome])
            .inc();
        self.inner
            .stripe_duration
            .with_label_values(&[operation])
            .observe(call.duration.as_secs_f64());
        let retries = self.inner.stripe_retries.with_label_values(&[operation]);
        retries.inc_by(u64::from(call.attempts.saturating_sub(1)));
    }

    fn queue_backlog(&self, queue: Queue, waiting: u64) {
        match queue {
            Queue::Outbox => self.inner.outbox_backlog.set(saturating_i64(waiting)),
            Queue::PaymentIntentLookups => {
                self.inner.lookups_pending.set(saturating_i64(waiting));
            }
        }
    }

    fn queue_pass(&self, queue: Queue, failed: u64, given_up: u64) {
        match queue {
            Queue::Outbox => {
                self.inner.outbox_failures.inc_by(failed);
                self.inner.outbox_dead.inc_by(given_up);
            }
            // A lookup that failed is tried again; only the abandoned ones are counted.
            Queue::PaymentIntentLookups => self.inner.lookups_abandoned.inc_by(given_up),
        }
    }

    fn catchup_pass(&self, pass: &billing_domain::metrics::CatchupPass) {
        self.inner.catchup.record(pass);
    }

    fn reconcile_correction(&self, kind: &str) {
        // The kinds are the domain's three words; anything else would be a bug, kept
        // bounded all the same.
        let kind = match kind {
            "subscription" | "invoice" | "tenant" => kind,
            _ => "other",
        };
        self.inner
            .reconcile_corrections
            .with_label_values(&[kind])
            .inc();
    }
}

impl MetricsEndpoint for Metrics {
    fn content_type(&self) -> &'static str {
        TEXT_FORMAT
    }

    fn scrape(&self) -> String {
        self.run_scrape_hooks();
        self.render()
    }
}

#[cfg(test)]
mod tests {
    use billing_domain::EventOutcome;

    use super::*;

    #[test]
    fn a_stripe_call_with_three_attempts_counts_two_retries() {
        let m = Metrics::new();

        m.provider_call(&ProviderCall {
            operation: "create_checkout_session",
            outcome: "ok",
            attempts: 3,
            duration: Duration::from_millis(40),
        });

        let text = m.render();
        assert!(text.contains(
            r#"billing_stripe_api_retries_total{operation="create_checkout_session"} 2"#
        ));
        assert!(text.contains(
            r#"billing_stripe_api_calls_total{operation="create_checkout_session",outcome="ok"} 1"#
        ));
    }

    #[test]
    fn events_in_another_api_version_than_the_pinned_one_are_counted() {
        let m = Metrics::new();
        m.set_pinned_api_version("2026-07-29.dahlia");
        let lag = Duration::from_secs(1);

        for api_version in [Some("2026-07-29.dahlia"), Some("2025-03-31.basil"), None] {
            m.webhook_event(&WebhookDelivery {
                kind: "invoice.paid",
                outcome: EventOutcome::Processed,
                lag,
                api_version,
            });
        }

        assert!(m
            .render()
            .contains("billing_webhook_api_version_mismatch_total 1"));
    }

    #[test]
    fn scrape_hooks_run_before_rendering() {
        let m = Metrics::new();
        m.on_scrape(|m| m.set_db_pool(3, 2, 10, 1));

        m.run_scrape_hooks();
        let text = m.render();

        assert!(text.contains(r#"billing_db_pool_connections{state="in_use"} 3"#));
        assert!(text.contains(r#"billing_db_pool_connections{state="max"} 10"#));
        assert!(text.contains("billing_db_pool_waiting 1"));
    }

    #[test]
    fn an_implausible_event_type_is_labelled_other() {
        assert_eq!(
            event_type_label("invoice.payment_failed"),
            "invoice.payment_failed"
        );
        assert_eq!(event_type_label("<script>"), "other");
        assert_eq!(event_type_label(&"a".repeat(65)), "other");
    }

    #[test]
    fn outbox_counters_add_up() {
        let m = Metrics::new();

        m.queue_pass(Queue::Outbox, 2, 0);
        m.queue_pass(Queue::Outbox, 3, 1);
        m.queue_backlog(Queue::Outbox, 7);

        let text = m.render();
        assert!(text.contains("billing_outbox_delivery_failures_total 5"));
        assert!(text.contains("billing_outbox_dead_total 1"));
        assert!(text.contains("billing_outbox_backlog 7"));
    }

    #[test]
    fn lookup_gauge_and_counter_are_exported() {
        let m = Metrics::new();

        m.queue_backlog(Queue::PaymentIntentLookups, 4);
        m.queue_pass(Queue::PaymentIntentLookups, 1, 1);
        m.queue_pass(Queue::PaymentIntentLookups, 5, 2);

        let text = m.render();
        assert!(text.contains("billing_payment_intent_lookups_pending 4"));
        assert!(text.contains("billing_payment_intent_lookups_abandoned_total 3"));
    }
}
