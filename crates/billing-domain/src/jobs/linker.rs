//! Linking paid Stripe invoices to their PaymentIntent, after the webhook was answered.
//!
//! Since API version 2025-03-31.basil, `invoice.paid` and `invoice.payment_succeeded` no
//! longer name the PaymentIntent that paid the invoice: it takes a call to Stripe
//! (`GET /v1/invoices/{id}?expand[]=payments`). That call is not made while Stripe waits
//! for the webhook's answer. The webhook's transaction records the paid invoice and asks
//! for a lookup ([`crate::ports::WebhookTx::request_payment_intent_lookup`]); this linker
//! works the lookups off, retrying with backoff while Stripe is unreachable, so
//!
//! * acknowledging an event never depends on Stripe's API being up or fast, and
//! * a lookup that fails is tried again instead of leaving the invoice unlinked for good.
//!
//! A `payment_intent.succeeded` that arrives before the link is known is recorded without
//! an invoice; recording the lookup's result attaches it
//! ([`PaymentIntentLookups::complete`]). Like the outbox ([`super::outbox`]), the domain owns one pass
//! ([`PaymentIntentLinker::run_once`]) and the binary loops it.

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::{PassReport, QueuePolicy};
use crate::ids::PaymentIntentRef;
use crate::ports::{
    Clock, PaymentIntentLookups, PaymentProvider, PendingLookup, ProviderError, RepoError,
};

/// The longest one lookup may take, Stripe's retries included: a pass of a full batch
/// stays well inside its lease.
pub const LOOKUP_BUDGET: Duration = Duration::from_secs(10);

/// The linker's retry rules: 10 lookups per pass under a 150 s lease (longer than 10
/// lookups at [`LOOKUP_BUDGET`]), 5 s doubling to 1 h, 30 attempts (more than a day).
#[must_use]
pub fn default_policy() -> QueuePolicy {
    QueuePolicy {
        batch: 10,
        lease: Duration::from_secs(150),
        initial_backoff: Duration::from_secs(5),
        max_backoff: Duration::from_secs(3600),
        max_attempts: 30,
    }
}

/// Looks up and records the PaymentIntents of paid Stripe invoices.
pub struct PaymentIntentLinker {
    lookups: Arc<dyn PaymentIntentLookups>,
    provider: Arc<dyn PaymentProvider>,
    clock: Arc<dyn Clock>,
    policy: QueuePolicy,
}

impl PaymentIntentLinker {
    /// Builds a linker.
    #[must_use]
    pub fn new(
        lookups: Arc<dyn PaymentIntentLookups>,
        provider: Arc<dyn PaymentProvider>,
        clock: Arc<dyn Clock>,
        policy: QueuePolicy,
    ) -> Self {
        Self {
            lookups,
            provider,
            clock,
            policy,
        }
    }

    /// The retry rules.
    #[must_use]
    pub const fn policy(&self) -> &QueuePolicy {
        &self.policy
    }

    /// Lookups waiting.
    ///
    /// # Errors
    /// [`RepoError`] when the database cannot be read.
    pub async fn backlog(&self) -> Result<u64, RepoError> {
        self.lookups.backlog().await
    }

    /// Claims due lookups and tries each once: the batch's calls to Stripe (each up to
    /// [`LOOKUP_BUDGET`]) at the same time, then their results recorded one after the
    /// other, so that the linker never holds more than one database connection (the
    /// webhooks need the others). In the report, `done` counts lookups recorded (a
    /// PaymentIntent found, or Stripe saying there is none).
    ///
    /// # Errors
    /// [`RepoError`] when the queue cannot be read, or the first error recording a
    /// lookup (the others are recorded); lookups not recorded come back after their lease.
    pub async fn run_once(&self) -> Result<PassReport, RepoError> {
        let now = self.clock.now();
        let due = self
            .lookups
            .claim_due(now, self.policy.lease_end(now), self.policy.batch)
            .await?;
        let answers = futures::future::join_all(due.iter().map(|lookup| {
            self.provider
                .invoice_payment_intent(&lookup.invoice_ref, Some(LOOKUP_BUDGET))
        }))
        .await;
        let mut report = PassReport::default();
        let mut failed = None;
        for (lookup, answer) in due.into_iter().zip(answers) {
            // One that cannot be recorded comes back after its lease; the others'
            // answers are still recorded.
            match self.record(lookup, answer).await {
                Ok(Outcome::Recorded) => report.done += 1,
                Ok(Outcome::Retried) => report.retried += 1,
                Ok(Outcome::GaveUp) => report.dead += 1,
                Err(e) => {
                    warn!(error = %e, "PaymentIntent lookup answered but not recorded");
                    failed.get_or_insert(e);
                }
            }
        }
        failed.map_or(Ok(report), Err)
    }

    async fn record(
        &self,
        lookup: PendingLookup,
        answer: Result<Option<PaymentIntentRef>, ProviderError>,
    ) -> Result<Outcome, RepoError> {
        let attempts = lookup.attempts.saturating_add(1);
        match answer {
            Ok(found) => {
                let linked = self
                    .lookups
                    .complete(lookup.invoice, found.clone(), self.clock.now())
                    .await?;
                info!(
                    invoice.id = %lookup.invoice,
                    stripe.invoice = %lookup.invoice_ref,
                    stripe.payment_intent = found.as_ref().map_or("none", |p| p.as_str()),
                    linked.invoice = linked.invoice_updated,
                    linked.payments = linked.payments_linked,
                    attempts,
                    "invoice PaymentIntent looked up"
                );
                Ok(Outcome::Recorded)
            }
            Err(e) => {
                // Stripe refusing the request (the invoice is unknown to this account,
                // say) will not change by asking again.
                let retry_at = self.policy.retry_at(
                    self.clock.now(),
                    attempts,
                    matches!(e, ProviderError::Refused { .. }),
                );
                let give_up = retry_at.is_none();
                warn!(
                    invoice.id = %lookup.invoice,
                    stripe.invoice = %lookup.invoice_ref,
                    attempts,
                    error = %e,
                    gave_up = give_up,
                    "invoice PaymentIntent lookup failed"
                );
                self.lookups
                    .reschedule(lookup.invoice, attempts, retry_at, e.to_string())
                    .await?;
                Ok(if give_up {
                    Outcome::GaveUp
                } else {
                    Outcome::Retried
                })
            }
        }
    }
}

/// How one lookup ended.
enum Outcome {
    Recorded,
    Retried,
    GaveUp,
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};

    use super::*;
    use crate::ids::{InvoiceId, InvoiceRef, PaymentIntentRef};
    use crate::ports::{Linked, MockClock, MockPaymentIntentLookups, MockPaymentProvider};

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).unwrap()
    }

    fn pending(attempts: u32) -> PendingLookup {
        PendingLookup {
            invoice: InvoiceId::new(),
            invoice_ref: InvoiceRef::parse("in_1").unwrap(),
            attempts,
        }
    }

    fn linker(
        lookups: MockPaymentIntentLookups,
        provider: MockPaymentProvider,
    ) -> PaymentIntentLinker {
        let mut clock = MockClock::new();
        clock.expect_now().returning(|| at(1000));
        PaymentIntentLinker::new(
            Arc::new(lookups),
            Arc::new(provider),
            Arc::new(clock),
            default_policy(),
        )
    }

    fn claiming(found: Vec<PendingLookup>) -> MockPaymentIntentLookups {
        let mut lookups = MockPaymentIntentLookups::new();
        lookups
            .expect_claim_due()
            .withf(|now, lease, limit| *now == at(1000) && *lease == at(1150) && *limit == 10)
            .times(1)
            .return_once(move |_, _, _| Ok(found));
        lookups
    }

    #[tokio::test]
    async fn a_found_payment_intent_is_recorded_on_the_invoice() {
        let lookup = pending(0);
        let id = lookup.invoice;
        let mut lookups = claiming(vec![lookup]);
        lookups
            .expect_complete()
            .withf(move |invoice, found, when| {
                *invoice == id
                    && found.as_ref().map(PaymentIntentRef::as_str) == Some("pi_1")
                    && *when == at(1000)
            })
            .times(1)
            .returning(|_, _, _| {
                Ok(Linked {
                    invoice_updated: true,
                    payments_linked: 1,
                })
            });
        lookups.expect_reschedule().never();
        let mut provider = MockPaymentProvider::new();
        provider
            .expect_invoice_payment_intent()
            .withf(|invoice, budget| invoice.as_str() == "in_1" && *budget == Some(LOOKUP_BUDGET))
            .times(1)
            .returning(|_, _| Ok(Some(PaymentIntentRef::parse("pi_1").unwrap())));

        let report = linker(lookups, provider).run_once().await.unwrap();

        assert_eq!(report.done, 1);
        assert_eq!(report.retried + report.dead, 0);
    }

    #[tokio::test]
    async fn an_invoice_stripe_paid_without_a_payment_intent_ends_its_lookup() {
        let mut lookups = claiming(vec![pending(2)]);
        lookups
            .expect_complete()
            .withf(|_, found, _| found.is_none())
            .times(1)
            .returning(|_, _, _| Ok(Linked::default()));
        let mut provider = MockPaymentProvider::new();
        provider
            .expect_invoice_payment_intent()
            .returning(|_, _| Ok(None));

        let report = linker(lookups, provider).run_once().await.unwrap();

        assert_eq!(report.done, 1);
    }

    #[tokio::test]
    async fn stripe_unavailable_reschedules_with_backoff() {
        let lookup = pending(2);
        let id = lookup.invoice;
        let mut lookups = claiming(vec![lookup]);
        lookups.expect_complete().never();
        lookups
            .expect_reschedule()
            .withf(move |invoice, attempts, retry_at, error| {
                // Third attempt: 5 s doubled twice.
                *invoice == id
                    && *attempts == 3
                    && *retry_at == Some(at(1020))
                    && error == "payment provider unavailable"
            })
            .times(1)
            .returning(|_, _, _, _| Ok(()));
        let mut provider = MockPaymentProvider::new();
        provider
            .expect_invoice_payment_intent()
            .returning(|_, _| Err(ProviderError::Unavailable("timeout".into())));

        let report = linker(lookups, provider).run_once().await.unwrap();

        assert_eq!(report.retried, 1);
        assert_eq!(report.dead, 0);
    }

    #[tokio::test]
    async fn a_refusal_or_the_last_attempt_gives_up() {
        let mut lookups = claiming(vec![pending(0), pending(29)]);
        lookups
            .expect_reschedule()
            .withf(|_, _, retry_at, _| retry_at.is_none())
            .times(2)
            .returning(|_, _, _, _| Ok(()));
        let mut provider = MockPaymentProvider::new();
        let mut calls = 0;
        provider
            .expect_invoice_payment_intent()
            .times(2)
            .returning(move |_, _| {
                calls += 1;
                if calls == 1 {
                    Err(ProviderError::Refused {
                        code: Some("resource_missing".into()),
                        param: None,
                        message: "No such invoice".into(),
                        not_found: true,
                    })
                } else {
                    Err(ProviderError::Unavailable("timeout".into()))
                }
            });

        let report = linker(lookups, provider).run_once().await.unwrap();

        assert_eq!(report.dead, 2);
    }

    #[tokio::test]
    async fn a_database_failure_recording_one_lookup_still_records_the_others() {
        let mut lookups = claiming(vec![pending(0), pending(0)]);
        let mut calls = 0;
        lookups
            .expect_complete()
            .times(2)
            .returning(move |_, _, _| {
                calls += 1;
                if calls == 1 {
                    Err(RepoError::Unavailable("down".into()))
                } else {
                    Ok(Linked::default())
                }
            });
        let mut provider = MockPaymentProvider::new();
        provider
            .expect_invoice_payment_intent()
            .times(2)
            .returning(|_, _| Ok(Some(PaymentIntentRef::parse("pi_1").unwrap())));

        let result = linker(lookups, provider).run_once().await;

        // The pass reports the failure; the unrecorded lookup comes back after its lease.
        assert!(matches!(result, Err(RepoError::Unavailable(_))));
    }
}
