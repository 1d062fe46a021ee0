//! The background queues' scheduler: the outbox dispatcher and the PaymentIntent linker
//! each take their queue in passes, paced by how much the last pass found, with a backlog
//! gauge counted at most once a second; both report through the domain's metrics port.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use billing_domain::jobs::linker::PaymentIntentLinker;
use billing_domain::jobs::outbox::OutboxDispatcher;
use billing_domain::jobs::PassReport;
use billing_domain::metrics::{BillingMetrics, Queue};
use billing_domain::ports::RepoError;
use tokio::sync::watch;

/// How often a background queue (the outbox, the PaymentIntent lookups) is polled when it
/// was empty, or the pass failed.
const QUEUE_POLL: Duration = Duration::from_secs(1);

/// How soon a queue is polled again after a pass that found work but less than a batch.
/// Work arrives with the webhooks, so a queue that had some will soon have more: taking it
/// in small, frequent passes spreads its Stripe calls and writes over the second, where a
/// pass per [`QUEUE_POLL`] would take the whole second's worth at once, in a burst that
/// every request in flight then waits behind (the benchmark's p99).
const QUEUE_TRICKLE: Duration = Duration::from_millis(50);

/// Delivers the outbox until `stop`.
pub async fn dispatch_outbox(
    dispatcher: OutboxDispatcher,
    metrics: Arc<dyn BillingMetrics>,
    stop: watch::Receiver<bool>,
) {
    work_off(
        Queue::Outbox,
        dispatcher.policy().batch,
        || dispatcher.run_once(),
        || dispatcher.backlog(),
        metrics.as_ref(),
        stop,
    )
    .await;
}

/// Looks up the PaymentIntents of paid Stripe invoices until `stop`.
pub async fn link_payment_intents(
    linker: PaymentIntentLinker,
    metrics: Arc<dyn BillingMetrics>,
    stop: watch::Receiver<bool>,
) {
    work_off(
        Queue::PaymentIntentLookups,
        linker.policy().batch,
        || linker.run_once(),
        || linker.backlog(),
        metrics.as_ref(),
        stop,
    )
    .await;
}

/// Whether a pass left work in its queue for later (items retried).
fn left_work(pass: &Result<PassReport, RepoError>) -> bool {
    pass.as_ref().is_ok_and(|report| report.retried > 0)
}

/// When a queue's backlog gauge is counted again: a `count(*)` over the queue's index,
/// cheap for a short queue but not for the long one an outage leaves, while passes then
/// come every [`QUEUE_TRICKLE`]. So at most once per [`QUEUE_POLL`], and at once when a
/// pass left work behind while the gauge shows none, so that a scrape that sees a failure
/// counted also sees a backlog.
struct BacklogGauge {
    started: Instant,
    /// Milliseconds after `started` when the next count is due.
    next_ms: AtomicU64,
    /// The backlog last shown.
    shown: AtomicU64,
}

impl Default for BacklogGauge {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            next_ms: AtomicU64::new(0),
            shown: AtomicU64::new(0),
        }
    }
}

impl BacklogGauge {
    /// Whether to count the backlog now, after a pass that did or did not leave work.
    fn due(&self, now: Instant, left_work: bool) -> bool {
        let at = u64::try_from(now.saturating_duration_since(self.started).as_millis())
            .unwrap_or(u64::MAX);
        let due = at >= self.next_ms.load(Ordering::Relaxed)
            || (left_work && self.shown.load(Ordering::Relaxed) == 0);
        if due {
            let period = u64::try_from(QUEUE_POLL.as_millis()).unwrap_or(u64::MAX);
            self.next_ms
                .store(at.saturating_add(period), Ordering::Relaxed);
        }
        due
    }

    /// Records the backlog the gauge now shows.
    fn shown(&self, n: u64) {
        self.shown.store(n, Ordering::Relaxed);
    }
}

/// How long to wait before the next pass after one that handled `handled` items of a
/// `batch`: not at all after a full batch, [`QUEUE_TRICKLE`] after a partial one,
/// [`QUEUE_POLL`] after an empty one.
const fn next_pass(handled: u32, batch: u32) -> Option<Duration> {
    if handled >= batch {
        None
    } else if handled > 0 {
        Some(QUEUE_TRICKLE)
    } else {
        Some(QUEUE_POLL)
    }
}

/// Runs `pass` until `stop`, paced by [`next_pass`]. After each pass, `backlog` counts the
/// queue for its gauge when [`BacklogGauge`] says so, then the pass is reported to
/// `metrics`: the backlog first, so that a scrape that sees a failure counted also sees the
/// backlog that failure left behind.
async fn work_off<P, F, B, G>(
    queue: Queue,
    batch: u32,
    pass: P,
    backlog: B,
    metrics: &dyn BillingMetrics,
    mut stop: watch::Receiver<bool>,
) where
    P: Fn() -> F,
    F: std::future::Future<Output = Result<PassReport, RepoError>>,
    B: Fn() -> G,
    G: std::future::Future<Output = Result<u64, RepoError>>,
{
    let gauge = BacklogGauge::default();
    loop {
        let passed = pass().await;
        if gauge.due(Instant::now(), left_work(&passed)) {
            if let Ok(n) = backlog().await {
                metrics.queue_backlog(queue, n);
                gauge.shown(n);
            }
        }
        let pause = match passed {
            Ok(report) => {
                metrics.queue_pass(
                    queue,
                    u64::from(report.retried + report.dead),
                    u64::from(report.dead),
                );
                next_pass(report.handled(), batch)
            }
            Err(e) => {
                tracing::warn!(queue = queue.as_str(), error = %e, "pass failed; retrying");
                Some(QUEUE_POLL)
            }
        };
        if *stop.borrow() {
            return;
        }
        let Some(pause) = pause else { continue };
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(pause) => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_is_taken_again_at_once_after_a_full_batch_soon_after_some_work_and_later_when_empty()
    {
        assert_eq!(next_pass(10, 10), None);
        assert_eq!(next_pass(9, 10), Some(QUEUE_TRICKLE));
        assert_eq!(next_pass(1, 10), Some(QUEUE_TRICKLE));
        assert_eq!(next_pass(0, 10), Some(QUEUE_POLL));
        assert!(QUEUE_TRICKLE < QUEUE_POLL);
    }

    #[test]
    fn the_backlog_is_counted_at_most_once_a_second_unless_a_failure_left_work_unshown() {
        let gauge = BacklogGauge::default();
        let t0 = gauge.started;
        assert!(gauge.due(t0, false));
        gauge.shown(0);
        assert!(!gauge.due(t0 + Duration::from_millis(50), false));
        // A retry left work behind and the gauge still shows none: counted at once.
        assert!(gauge.due(t0 + Duration::from_millis(100), true));
        gauge.shown(3);
        // An outage's stream of retries: the gauge shows them; once a second is enough.
        assert!(!gauge.due(t0 + Duration::from_millis(150), true));
        assert!(!gauge.due(t0 + Duration::from_millis(1_050), true));
        assert!(gauge.due(t0 + Duration::from_millis(1_100), true));
        assert!(!gauge.due(t0 + Duration::from_millis(1_200), false));
        assert!(gauge.due(t0 + Duration::from_millis(2_100), false));
    }
}
