//! Receiving an event (a signed delivery, or an admin's replay fetched from Stripe) and
//! applying it in one unit of work; the event ledger's listing.

use std::sync::Arc;

use tracing::instrument;

use super::{expected_outcome, work, Delivery, WebhookError, WebhookReceipt};
use crate::auth::Actor;
use crate::error::BillingError;
use crate::ids::{CustomerRef, EventId, SubscriptionRef};
use crate::model::{EventOutcome, EventSource, LedgerEntry, LedgerQuery};
use crate::page::{Page, PageRequest};
use crate::ports::{NewLedgerEntry, ProviderError, RepoError, WorkOutcome};
use crate::service::BillingService;
use crate::webhook::{PaymentEvent, ProviderEvent};

/// How many `unmatched` events of a newly linked customer are applied again at most (a
/// checkout's own are three or four; more would mean something else is wrong).
const REAPPLIED_AT_MOST: u32 = 20;

impl BillingService {
    #[instrument(skip_all, fields(stripe.event_id, stripe.event_type))]
    pub(in crate::service) async fn receive_webhook(
        &self,
        payload: &[u8],
        signature: Option<String>,
    ) -> Result<WebhookReceipt, WebhookError> {
        let now = self.ports.clock.now();
        self.ports
            .verifier
            .verify(payload, signature.as_deref(), now)?;
        let event = self
            .ports
            .verifier
            .parse(payload)
            .map_err(|e| WebhookError::InvalidPayload(e.0))?;
        let span = tracing::Span::current();
        span.record("stripe.event_id", event.id.as_str());
        span.record("stripe.event_type", event.kind.as_str());
        // `parse` accepted it as JSON, so it is UTF-8.
        let text = std::str::from_utf8(payload)
            .map_err(|_| WebhookError::InvalidPayload("body is not UTF-8".into()))?;
        self.apply(
            event,
            Arc::from(text),
            Delivery::Webhook,
            EventSource::Webhook,
        )
        .await
    }

    /// Applies an event the catch-up read from Stripe's Events API
    /// ([`crate::jobs::catchup`]): exactly as a delivery of it would be (no signature: it
    /// came from Stripe's API under our key), recorded with source `catchup`.
    #[instrument(skip_all, fields(stripe.event_id, stripe.event_type))]
    pub(crate) async fn apply_caught_up(
        &self,
        payload: &[u8],
    ) -> Result<WebhookReceipt, WebhookError> {
        let event = self
            .ports
            .verifier
            .parse(payload)
            .map_err(|e| WebhookError::InvalidPayload(e.0))?;
        let span = tracing::Span::current();
        span.record("stripe.event_id", event.id.as_str());
        span.record("stripe.event_type", event.kind.as_str());
        let text = std::str::from_utf8(payload)
            .map_err(|_| WebhookError::InvalidPayload("body is not UTF-8".into()))?;
        self.apply(
            event,
            Arc::from(text),
            Delivery::Webhook,
            EventSource::Catchup,
        )
        .await
    }

    #[instrument(skip_all, fields(stripe.event_id = %id))]
    pub(in crate::service) async fn replay_event(
        &self,
        actor: &Actor,
        id: &EventId,
    ) -> Result<WebhookReceipt, BillingError> {
        Self::require_admin(actor)?;
        let raw = match self.ports.provider.fetch_event(id).await {
            Err(ProviderError::Refused {
                not_found: true, ..
            }) => return Err(BillingError::EventNotFound(id.to_string())),
            other => other?,
        };
        let event = self.ports.verifier.parse(&raw).map_err(|e| {
            BillingError::ProviderUnavailable(
                format!("Stripe sent an unreadable event: {e}").into(),
            )
        })?;
        if event.id != *id {
            return Err(BillingError::ProviderUnavailable(
                "Stripe answered with another event".into(),
            ));
        }
        let text = String::from_utf8(raw).map_err(|e| BillingError::Unexpected(Box::new(e)))?;
        self.apply(
            event,
            Arc::from(text),
            Delivery::Replay,
            EventSource::Replay,
        )
        .await
        .map_err(|e| match e {
            WebhookError::Unavailable(src) => BillingError::Unavailable(src),
            other => BillingError::Unexpected(Box::new(other)),
        })
    }

    #[instrument(skip_all)]
    pub(in crate::service) async fn list_events(
        &self,
        actor: &Actor,
        query: LedgerQuery,
        page: PageRequest,
    ) -> Result<Page<LedgerEntry>, BillingError> {
        Self::require_admin(actor)?;
        Ok(self.ports.ledger.list(query, page).await?)
    }

    /// Whether the event comes from the other mode (live or test) than the service's.
    fn other_mode(&self, event: &ProviderEvent) -> bool {
        self.settings
            .livemode
            .is_some_and(|live| live != event.livemode)
    }

    /// Applies a parsed event ([`BillingService::apply_one`]); when it was a completed
    /// checkout that made a Stripe customer a tenant's, the events that came before it
    /// about that customer and were recorded `unmatched` are applied again.
    async fn apply(
        &self,
        event: ProviderEvent,
        payload: Arc<str>,
        delivery: Delivery,
        source: EventSource,
    ) -> Result<WebhookReceipt, WebhookError> {
        let linked = match &event.event {
            PaymentEvent::CheckoutCompleted(checkout)
            | PaymentEvent::CheckoutAsyncPaymentSucceeded(checkout) => checkout.customer.clone(),
            _ => None,
        };
        let receipt = self.apply_one(event, payload, delivery, source).await?;
        if let Some(customer) = linked {
            if receipt.outcome == EventOutcome::Processed {
                self.reapply_unmatched(&customer).await;
            }
        }
        Ok(receipt)
    }

    /// Applies again, as a replay, the `unmatched` events about `customer`: Stripe sends
    /// the first invoice's PaymentIntent events before `checkout.session.completed`, when
    /// nothing yet tells whose customer it is. The checkout is already committed, so a
    /// failure here is logged and the event stays `unmatched` for an operator's replay.
    pub(in crate::service) async fn reapply_unmatched(&self, customer: &CustomerRef) {
        let waiting = match self
            .ports
            .ledger
            .unmatched_for_customer(customer, REAPPLIED_AT_MOST)
            .await
        {
            Ok(waiting) => waiting,
            Err(e) => {
                tracing::warn!(error = %e, customer = %customer, "unmatched events of a newly linked customer not read");
                return;
            }
        };
        for entry in waiting {
            let event = match self.ports.verifier.parse(entry.payload.as_bytes()) {
                Ok(event) => event,
                Err(e) => {
                    tracing::warn!(error = %e.0, stripe.event_id = %entry.event_id, "unmatched event unreadable");
                    continue;
                }
            };
            match self
                .apply_one(
                    event,
                    Arc::from(entry.payload),
                    Delivery::Replay,
                    EventSource::Replay,
                )
                .await
            {
                Ok(receipt) => tracing::info!(
                    stripe.event_id = %receipt.event_id,
                    outcome = receipt.outcome.as_str(),
                    "unmatched event applied again once its customer was linked"
                ),
                Err(e) => tracing::warn!(
                    error = %e,
                    stripe.event_id = %entry.event_id,
                    "unmatched event of a newly linked customer not applied"
                ),
            }
        }
    }

    /// Applies a parsed event: one transaction, and on a same-second tie about a
    /// subscription, a second one with Stripe's current state of it.
    async fn apply_one(
        &self,
        event: ProviderEvent,
        payload: Arc<str>,
        delivery: Delivery,
        source: EventSource,
    ) -> Result<WebhookReceipt, WebhookError> {
        let delivery = if self.other_mode(&event) {
            Delivery::OtherMode
        } else {
            delivery
        };
        let now = self.ports.clock.now();
        let entry = NewLedgerEntry {
            event_id: event.id.clone(),
            kind: event.kind.clone(),
            created: event.created,
            api_version: event.api_version.clone(),
            livemode: event.livemode,
            received_at: now,
            outcome: expected_outcome(&event.event, delivery),
            payload,
            source,
        };
        let event = Arc::new(event);
        let first = self
            .ports
            .webhooks
            .apply(work(Arc::clone(&event), entry.clone(), delivery, now))
            .await
            .map_err(store_failed)?;
        let applied = match first {
            WorkOutcome::Applied(applied) => applied,
            WorkOutcome::SameSecondTie(subscription) => {
                let (fresh, delivery) = match self.refetched(&event, &subscription).await? {
                    Some(fresh) => (Arc::new(fresh), Delivery::Refetched),
                    None => (Arc::clone(&event), Delivery::Unsettled),
                };
                match self
                    .ports
                    .webhooks
                    .apply(work(fresh, entry, delivery, now))
                    .await
                    .map_err(store_failed)?
                {
                    WorkOutcome::Applied(applied) => applied,
                    // Refetched and unsettled events are applied over a tie by definition.
                    WorkOutcome::SameSecondTie(_) => {
                        return Err(WebhookError::Unexpected("a settled tie tied again".into()))
                    }
                }
            }
        };
        Ok(WebhookReceipt {
            event_id: event.id.clone(),
            kind: event.kind.clone(),
            created: event.created,
            api_version: event.api_version.clone(),
            outcome: applied.outcome,
            detail: applied.detail,
        })
    }

    /// The event with its subscription snapshot replaced by Stripe's current state;
    /// `None` when Stripe no longer knows the subscription (a redelivery cannot change
    /// that, so the event is recorded as failed rather than answered 5xx forever).
    async fn refetched(
        &self,
        event: &ProviderEvent,
        subscription: &SubscriptionRef,
    ) -> Result<Option<ProviderEvent>, WebhookError> {
        let current = match self.ports.provider.subscription(subscription).await {
            Ok(current) => current,
            Err(ProviderError::Refused { .. }) => return Ok(None),
            Err(e) => return Err(WebhookError::Unavailable(Box::new(e))),
        };
        let mut fresh = event.clone();
        fresh.event = match &event.event {
            PaymentEvent::SubscriptionDeleted(_) => PaymentEvent::SubscriptionDeleted(current),
            PaymentEvent::SubscriptionCreated(_) => PaymentEvent::SubscriptionCreated(current),
            PaymentEvent::SubscriptionPaused(_) => PaymentEvent::SubscriptionPaused(current),
            PaymentEvent::SubscriptionResumed(_) => PaymentEvent::SubscriptionResumed(current),
            _ => PaymentEvent::SubscriptionUpdated(current),
        };
        Ok(Some(fresh))
    }
}

/// A store failure as the delivery's answer: unavailable is worth a redelivery.
fn store_failed(e: RepoError) -> WebhookError {
    match e {
        RepoError::Unavailable(src) => WebhookError::Unavailable(src),
        other => WebhookError::Unexpected(Box::new(other)),
    }
}
