//! Billing events out (issue 16), the binary's side: one dispatcher task per
//! `BILLING_EVENTS_URL` (a slow subscriber never holds another), the gauges of each
//! subscriber's backlog, and the families:
//!
//! * `billing_events_out_total{type,outcome}`: delivery attempts (`delivered`, `retried`,
//!   `dead`) per event type;
//! * `billing_events_out_waiting{subscriber}`: deliveries not yet accepted;
//! * `billing_events_out_lag_seconds{subscriber}`: age of the oldest of them (0 when none).
//!
//! `subscriber` is the URL without credentials or query.

use std::sync::Arc;
use std::time::Duration;

use billing_domain::events_out::dispatch::{
    default_policy, DeliveryOutcome, EventsOutDispatcher, EventsOutReporter,
};
use billing_domain::events_out::BillingEventOutbox;
use billing_domain::ports::Clock;
use billing_notifier::events::subscriber_key;
use billing_notifier::HttpEventSender;
use billing_postgres::{EventsOutSetup, PgStore};
use prometheus::{GaugeVec, IntCounterVec, IntGaugeVec, Opts, Registry};
use secrecy::ExposeSecret;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::EventsOutSettings;

/// How long a pass waits after finding nothing.
const IDLE: Duration = Duration::from_millis(500);
/// How long a pass waits after some work (a chain's next head is due at once).
const TRICKLE: Duration = Duration::from_millis(20);
/// How often the gauges are counted.
const GAUGES_EVERY: Duration = Duration::from_secs(2);

/// The metric families.
#[derive(Clone)]
pub struct EventsOutMetrics {
    total: IntCounterVec,
    waiting: IntGaugeVec,
    lag: GaugeVec,
}

impl EventsOutMetrics {
    /// Registers the families in `registry`.
    ///
    /// # Errors
    /// When a family is already registered.
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let total = IntCounterVec::new(
            Opts::new(
                "billing_events_out_total",
                "Billing event delivery attempts, by event type and outcome (delivered, retried, dead).",
            ),
            &["type", "outcome"],
        )?;
        let waiting = IntGaugeVec::new(
            Opts::new(
                "billing_events_out_waiting",
                "Billing event deliveries not yet accepted (pending or dead), per subscriber.",
            ),
            &["subscriber"],
        )?;
        let lag = GaugeVec::new(
            Opts::new(
                "billing_events_out_lag_seconds",
                "Age of the oldest billing event not yet accepted, per subscriber (0 when none).",
            ),
            &["subscriber"],
        )?;
        // Every SPEC §9 type starts at zero dead, so the dead-delivery alert has a series
        // to compare with before the first delivery ever dies.
        for kind in [
            "tenant.activated",
            "tenant.suspended",
            "tenant.cancelled",
            "subscription.created",
            "subscription.updated",
            "subscription.canceled",
            "invoice.paid",
            "invoice.overdue",
            "invoice.voided",
            "payment.succeeded",
            "payment.failed",
            "payment.refunded",
            "dispute.created",
            "dispute.closed",
        ] {
            total.with_label_values(&[kind, DeliveryOutcome::Dead.as_str()]);
        }
        registry.register(Box::new(total.clone()))?;
        registry.register(Box::new(waiting.clone()))?;
        registry.register(Box::new(lag.clone()))?;
        Ok(Self {
            total,
            waiting,
            lag,
        })
    }
}

impl EventsOutReporter for EventsOutMetrics {
    fn attempt(&self, kind: &str, outcome: DeliveryOutcome) {
        // Types are ours (a fixed set), never a caller's: bounded labels.
        self.total
            .with_label_values(&[kind, outcome.as_str()])
            .inc();
    }
}

/// The store's setup for `settings`: the body's format and one subscriber key per URL.
#[must_use]
pub fn setup(settings: &EventsOutSettings) -> EventsOutSetup {
    EventsOutSetup {
        format: billing_notifier::render_billing_event,
        subscribers: settings.urls.iter().map(subscriber_key).collect(),
    }
}

/// Starts one dispatcher per subscriber and the gauges' task; they end on `stop`.
///
/// # Errors
/// When an HTTP client cannot be built.
pub fn start(
    settings: &EventsOutSettings,
    store: &PgStore,
    clock: &Arc<dyn Clock>,
    metrics: &EventsOutMetrics,
    stop: &watch::Receiver<bool>,
) -> Result<Vec<JoinHandle<()>>, String> {
    let outbox: Arc<dyn BillingEventOutbox> = Arc::new(store.clone());
    let secrets: Vec<String> = settings
        .secrets
        .iter()
        .map(|s| s.expose_secret().to_owned())
        .collect();
    let mut tasks = Vec::new();
    for url in &settings.urls {
        let sender = HttpEventSender::new(url.clone(), secrets.clone(), Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        let dispatcher = EventsOutDispatcher::new(
            subscriber_key(url),
            Arc::clone(&outbox),
            Arc::new(sender),
            Arc::clone(clock),
            Arc::new(metrics.clone()),
            default_policy(settings.max_attempts),
        );
        tasks.push(tokio::spawn(dispatch(dispatcher, stop.clone())));
    }
    tasks.push(tokio::spawn(gauges(
        outbox,
        Arc::clone(clock),
        metrics.clone(),
        stop.clone(),
    )));
    Ok(tasks)
}

async fn pause(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        _ = stop.changed() => true,
        () = tokio::time::sleep(d) => *stop.borrow(),
    }
}

async fn dispatch(dispatcher: EventsOutDispatcher, mut stop: watch::Receiver<bool>) {
    loop {
        let wait = match dispatcher.run_once().await {
            Ok(report) if report.handled() >= dispatcher.policy().batch => Duration::ZERO,
            Ok(report) if report.handled() > 0 => TRICKLE,
            Ok(_) => IDLE,
            Err(e) => {
                tracing::warn!(subscriber = %dispatcher.subscriber(), error = %e, "billing events pass failed; retrying");
                IDLE
            }
        };
        if pause(&mut stop, wait).await {
            return;
        }
    }
}

async fn gauges(
    outbox: Arc<dyn BillingEventOutbox>,
    clock: Arc<dyn Clock>,
    metrics: EventsOutMetrics,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        if let Ok(backlogs) = outbox.backlogs().await {
            metrics.waiting.reset();
            metrics.lag.reset();
            let now = clock.now();
            for b in backlogs {
                metrics
                    .waiting
                    .with_label_values(&[b.subscriber.as_str()])
                    .set(i64::try_from(b.waiting).unwrap_or(i64::MAX));
                let lag = b
                    .oldest
                    .map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0);
                metrics
                    .lag
                    .with_label_values(&[b.subscriber.as_str()])
                    .set(lag);
            }
        }
        if pause(&mut stop, GAUGES_EVERY).await {
            return;
        }
    }
}
