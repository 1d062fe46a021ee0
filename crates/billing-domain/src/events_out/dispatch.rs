//! Delivering billing events: one [`EventsOutDispatcher`] per subscriber, so that a slow
//! or failing subscriber never holds another.
//!
//! A pass claims the heads of the subscriber's (subscriber, tenant) chains that are due
//! ([`BillingEventOutbox::claim_heads`]) and sends them all at once: tenants never wait
//! for each other. A head that fails is rescheduled with backoff and holds its chain (the
//! tenant's later events wait, so that the subscriber sees them in order); a head out of
//! attempts is `dead` and holds its chain until an operator retries it. At least once: a
//! delivery whose answer was lost is sent again, with the same `Billing-Event-Id`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::join_all;
use tracing::{info, warn};

use super::{BillingEventOutbox, ClaimedDelivery};
use crate::jobs::{PassReport, QueuePolicy};
use crate::ports::{Clock, NotifyError, RepoError};

/// The billing events' retry rules: 25 heads per pass under a 120 s lease (longer than a
/// delivery's timeout), 2 s doubling to 1 h, `max_attempts` (default 25, about a day).
#[must_use]
pub fn default_policy(max_attempts: u32) -> QueuePolicy {
    QueuePolicy {
        batch: 25,
        lease: Duration::from_secs(120),
        initial_backoff: Duration::from_secs(2),
        max_backoff: Duration::from_secs(3600),
        max_attempts: max_attempts.max(1),
    }
}

/// Sends one billing event to one subscriber.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait BillingEventSender: Send + Sync {
    /// POSTs the delivery's body, signed.
    ///
    /// # Errors
    /// [`NotifyError::Retryable`] for network errors, timeouts, 429 and 5xx;
    /// [`NotifyError::Rejected`] for other refusals (retried all the same: a receiver's
    /// 4xx is often a deploy away from a 2xx, and its chain must not skip the event).
    async fn send(&self, delivery: &ClaimedDelivery) -> Result<(), NotifyError>;
}

/// What a delivery attempt came to, as `billing_events_out_total{outcome}` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Accepted.
    Delivered,
    /// Failed; tried again later.
    Retried,
    /// Failed for the last time.
    Dead,
}

impl DeliveryOutcome {
    /// The label.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retried => "retried",
            Self::Dead => "dead",
        }
    }
}

/// Where the dispatcher reports its attempts (the metrics adapter).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait EventsOutReporter: Send + Sync {
    /// One attempt at an event of type `kind`.
    fn attempt(&self, kind: &str, outcome: DeliveryOutcome);
}

/// A reporter that reports nowhere.
pub struct NoReporter;

impl EventsOutReporter for NoReporter {
    fn attempt(&self, _kind: &str, _outcome: DeliveryOutcome) {}
}

/// Delivers one subscriber's billing events.
pub struct EventsOutDispatcher {
    subscriber: String,
    outbox: Arc<dyn BillingEventOutbox>,
    sender: Arc<dyn BillingEventSender>,
    clock: Arc<dyn Clock>,
    reporter: Arc<dyn EventsOutReporter>,
    policy: QueuePolicy,
}

impl EventsOutDispatcher {
    /// Builds the dispatcher of `subscriber` (its key in the outbox).
    #[must_use]
    pub fn new(
        subscriber: String,
        outbox: Arc<dyn BillingEventOutbox>,
        sender: Arc<dyn BillingEventSender>,
        clock: Arc<dyn Clock>,
        reporter: Arc<dyn EventsOutReporter>,
        policy: QueuePolicy,
    ) -> Self {
        Self {
            subscriber,
            outbox,
            sender,
            clock,
            reporter,
            policy,
        }
    }

    /// The subscriber.
    #[must_use]
    pub fn subscriber(&self) -> &str {
        &self.subscriber
    }

    /// The retry rules.
    #[must_use]
    pub const fn policy(&self) -> &QueuePolicy {
        &self.policy
    }

    /// Claims the due heads of the subscriber's chains and sends them concurrently.
    ///
    /// # Errors
    /// [`RepoError`] when the outbox cannot be read or updated; claimed heads come back
    /// after their lease.
    pub async fn run_once(&self) -> Result<PassReport, RepoError> {
        let now = self.clock.now();
        let heads = self
            .outbox
            .claim_heads(
                &self.subscriber,
                now,
                self.policy.lease_end(now),
                self.policy.batch,
            )
            .await?;
        let sent = join_all(heads.iter().map(|d| self.sender.send(d))).await;
        let mut report = PassReport::default();
        for (delivery, result) in heads.iter().zip(sent) {
            let attempts = delivery.attempts.saturating_add(1);
            match result {
                Ok(()) => {
                    self.outbox
                        .mark_delivered(delivery.id, self.clock.now())
                        .await?;
                    info!(billing_event.id = %delivery.event_id, billing_event.kind = %delivery.kind,
                        tenant.id = %delivery.tenant, sequence = delivery.sequence, attempts,
                        "billing event delivered");
                    self.reporter
                        .attempt(&delivery.kind, DeliveryOutcome::Delivered);
                    report.done += 1;
                }
                Err(e) => {
                    let retry_at = self.policy.retry_at(self.clock.now(), attempts, false);
                    warn!(billing_event.id = %delivery.event_id, tenant.id = %delivery.tenant,
                        sequence = delivery.sequence, attempts, error = %e,
                        gave_up = retry_at.is_none(), "billing event delivery failed");
                    self.outbox
                        .mark_failed(delivery.id, attempts, retry_at, e.to_string())
                        .await?;
                    if retry_at.is_none() {
                        self.reporter.attempt(&delivery.kind, DeliveryOutcome::Dead);
                        report.dead += 1;
                    } else {
                        self.reporter
                            .attempt(&delivery.kind, DeliveryOutcome::Retried);
                        report.retried += 1;
                    }
                }
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};

    use super::*;
    use crate::events_out::MockBillingEventOutbox;
    use crate::ids::{BillingDeliveryId, BillingEventId, TenantId};
    use crate::ports::MockClock;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).unwrap()
    }

    fn head(attempts: u32) -> ClaimedDelivery {
        ClaimedDelivery {
            id: BillingDeliveryId::new(),
            event_id: BillingEventId::new(),
            kind: "invoice.paid".into(),
            tenant: TenantId::new(),
            sequence: 1,
            body: "{}".into(),
            attempts,
        }
    }

    fn dispatcher(
        outbox: MockBillingEventOutbox,
        sender: MockBillingEventSender,
        reporter: MockEventsOutReporter,
        max_attempts: u32,
    ) -> EventsOutDispatcher {
        let mut clock = MockClock::new();
        clock.expect_now().returning(|| at(1_000));
        EventsOutDispatcher::new(
            "https://a.example/hook".into(),
            Arc::new(outbox),
            Arc::new(sender),
            Arc::new(clock),
            Arc::new(reporter),
            default_policy(max_attempts),
        )
    }

    #[tokio::test]
    async fn only_the_subscribers_own_chains_are_claimed_and_a_delivered_head_is_marked() {
        let mut outbox = MockBillingEventOutbox::new();
        outbox
            .expect_claim_heads()
            .withf(|s, now, lease, limit| {
                s == "https://a.example/hook"
                    && *now == at(1_000)
                    && *lease == at(1_120)
                    && *limit == 25
            })
            .returning(|_, _, _, _| Ok(vec![head(0)]));
        outbox
            .expect_mark_delivered()
            .times(1)
            .returning(|_, _| Ok(()));
        let mut sender = MockBillingEventSender::new();
        sender.expect_send().times(1).returning(|_| Ok(()));
        let mut reporter = MockEventsOutReporter::new();
        reporter
            .expect_attempt()
            .withf(|k, o| k == "invoice.paid" && *o == DeliveryOutcome::Delivered)
            .times(1)
            .return_const(());

        let report = dispatcher(outbox, sender, reporter, 25)
            .run_once()
            .await
            .unwrap();

        assert_eq!(report.done, 1);
    }

    #[tokio::test]
    async fn a_failed_head_is_rescheduled_and_a_last_attempt_makes_it_dead() {
        let mut outbox = MockBillingEventOutbox::new();
        outbox
            .expect_claim_heads()
            .returning(|_, _, _, _| Ok(vec![head(0), head(2)]));
        outbox
            .expect_mark_failed()
            .withf(|_, attempts, retry_at, err| {
                *attempts == 1 && *retry_at == Some(at(1_002)) && err.contains("503")
            })
            .times(1)
            .returning(|_, _, _, _| Ok(()));
        outbox
            .expect_mark_failed()
            .withf(|_, attempts, retry_at, _| *attempts == 3 && retry_at.is_none())
            .times(1)
            .returning(|_, _, _, _| Ok(()));
        let mut sender = MockBillingEventSender::new();
        sender
            .expect_send()
            .returning(|_| Err(NotifyError::Retryable("HTTP 503".into())));
        let mut reporter = MockEventsOutReporter::new();
        reporter.expect_attempt().return_const(());

        let report = dispatcher(outbox, sender, reporter, 3)
            .run_once()
            .await
            .unwrap();

        assert_eq!((report.retried, report.dead), (1, 1));
    }
}
