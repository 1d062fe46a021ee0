//! Dispatching the notification outbox: at least once, with exponential backoff, until
//! delivered or given up after [`QueuePolicy::max_attempts`] ([`default_policy`]).
//!
//! The domain owns one pass ([`OutboxDispatcher::run_once`]); the binary loops it on a
//! timer and stops it on shutdown, so this crate needs no async runtime. Several replicas
//! may dispatch at once: claiming leases messages, so each is handed to one dispatcher at
//! a time, and a crashed dispatcher's messages come back when their lease ends.

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::{PassReport, QueuePolicy};
use crate::ports::{Clock, Delivered, Notifier, NotifyError, OutboxRepository, RepoError};

/// The outbox's retry rules: 10 per pass under a 120 s lease (longer than 10 deliveries
/// at the notifier's 10 s timeout, so a slow pass never sees its messages claimed again),
/// 2 s doubling to 1 h, 25 attempts (about a day of retries).
#[must_use]
pub fn default_policy() -> QueuePolicy {
    QueuePolicy {
        batch: 10,
        lease: Duration::from_secs(120),
        initial_backoff: Duration::from_secs(2),
        max_backoff: Duration::from_secs(3600),
        max_attempts: 25,
    }
}

/// Delivers the outbox.
pub struct OutboxDispatcher {
    outbox: Arc<dyn OutboxRepository>,
    notifier: Arc<dyn Notifier>,
    clock: Arc<dyn Clock>,
    policy: QueuePolicy,
}

impl OutboxDispatcher {
    /// Builds a dispatcher.
    #[must_use]
    pub fn new(
        outbox: Arc<dyn OutboxRepository>,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
        policy: QueuePolicy,
    ) -> Self {
        Self {
            outbox,
            notifier,
            clock,
            policy,
        }
    }

    /// The retry rules.
    #[must_use]
    pub const fn policy(&self) -> &QueuePolicy {
        &self.policy
    }

    /// Messages waiting.
    ///
    /// # Errors
    /// [`RepoError`] when the database cannot be read.
    pub async fn backlog(&self) -> Result<u64, RepoError> {
        self.outbox.backlog().await
    }

    /// Claims due messages and tries each once.
    ///
    /// # Errors
    /// [`RepoError`] when the outbox cannot be read or updated; messages already claimed
    /// come back after their lease.
    pub async fn run_once(&self) -> Result<PassReport, RepoError> {
        let now = self.clock.now();
        let due = self
            .outbox
            .claim_due(now, self.policy.lease_end(now), self.policy.batch)
            .await?;
        let mut report = PassReport::default();
        for message in due {
            let attempts = message.attempts.saturating_add(1);
            match self.notifier.deliver(&message).await {
                Ok(how) => {
                    self.outbox
                        .mark_done(message.id, how == Delivered::Logged, self.clock.now())
                        .await?;
                    info!(notification.id = %message.id, notification.kind = %message.kind, attempts, "notification delivered");
                    report.done += 1;
                }
                Err(e) => {
                    let retry_at = self.policy.retry_at(
                        self.clock.now(),
                        attempts,
                        matches!(e, NotifyError::Rejected(_)),
                    );
                    let give_up = retry_at.is_none();
                    warn!(notification.id = %message.id, attempts, error = %e, gave_up = give_up, "notification delivery failed");
                    self.outbox
                        .mark_failed(message.id, attempts, retry_at, e.to_string())
                        .await?;
                    if give_up {
                        report.dead += 1;
                    } else {
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
    use crate::ids::NotificationId;
    use crate::ports::{MockClock, MockNotifier, MockOutboxRepository, OutboxMessage};

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).unwrap()
    }

    fn message(attempts: u32) -> OutboxMessage {
        OutboxMessage {
            id: NotificationId::new(),
            kind: "invoice.payment_failed".into(),
            payload: "{}".into(),
            attempts,
        }
    }

    fn dispatcher(outbox: MockOutboxRepository, notifier: MockNotifier) -> OutboxDispatcher {
        let mut clock = MockClock::new();
        clock.expect_now().returning(|| at(1_000));
        OutboxDispatcher::new(
            Arc::new(outbox),
            Arc::new(notifier),
            Arc::new(clock),
            default_policy(),
        )
    }

    #[test]
    fn backoff_doubles_from_two_seconds_up_to_an_hour() {
        let p = default_policy();

        assert_eq!(p.backoff(1), Duration::from_secs(2));
        assert_eq!(p.backoff(2), Duration::from_secs(4));
        assert_eq!(p.backoff(5), Duration::from_secs(32));
        assert_eq!(p.backoff(20), Duration::from_secs(3600));
        assert_eq!(p.backoff(200), Duration::from_secs(3600));
    }

    #[tokio::test]
    async fn a_delivered_message_is_marked_done_and_a_logged_one_as_logged() {
        let mut outbox = MockOutboxRepository::new();
        outbox
            .expect_claim_due()
            .withf(|now, lease, limit| *now == at(1_000) && *lease == at(1_120) && *limit == 10)
            .returning(|_, _, _| Ok(vec![message(0)]));
        outbox
            .expect_mark_done()
            .withf(|_, logged, _| *logged)
            .times(1)
            .returning(|_, _, _| Ok(()));
        let mut notifier = MockNotifier::new();
        notifier
            .expect_deliver()
            .returning(|_| Ok(Delivered::Logged));

        let report = dispatcher(outbox, notifier).run_once().await.unwrap();

        assert_eq!(report.done, 1);
    }

    #[tokio::test]
    async fn a_failed_delivery_is_rescheduled_with_backoff() {
        let mut outbox = MockOutboxRepository::new();
        outbox
            .expect_claim_due()
            .returning(|_, _, _| Ok(vec![message(2)]));
        outbox
            .expect_mark_failed()
            .withf(|_, attempts, retry_at, err| {
                *attempts == 3 && *retry_at == Some(at(1_008)) && err.contains("503")
            })
            .times(1)
            .returning(|_, _, _, _| Ok(()));
        let mut notifier = MockNotifier::new();
        notifier
            .expect_deliver()
            .returning(|_| Err(NotifyError::Retryable("HTTP 503".into())));

        let report = dispatcher(outbox, notifier).run_once().await.unwrap();

        assert_eq!(report.retried, 1);
    }

    #[tokio::test]
    async fn a_rejected_or_exhausted_message_is_given_up() {
        let mut outbox = MockOutboxRepository::new();
        outbox
            .expect_claim_due()
            .returning(|_, _, _| Ok(vec![message(0), message(24)]));
        outbox
            .expect_mark_failed()
            .withf(|_, _, retry_at, _| retry_at.is_none())
            .times(2)
            .returning(|_, _, _, _| Ok(()));
        let mut notifier = MockNotifier::new();
        let mut calls = 0;
        notifier.expect_deliver().returning(move |_| {
            calls += 1;
            if calls == 1 {
                Err(NotifyError::Rejected("HTTP 400".into()))
            } else {
                Err(NotifyError::Retryable("timeout".into()))
            }
        });

        let report = dispatcher(outbox, notifier).run_once().await.unwrap();

        assert_eq!(report.dead, 2);
    }
}
