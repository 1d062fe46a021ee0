//! Applying Stripe's events: each exactly once, tolerant of duplicates and disorder, and
//! never half-done.
//!
//! This file dispatches each event to the rules of the Stripe object it is about, one file
//! per object: [`checkout`] (`checkout.session.*`), [`subscription`]
//! (`customer.subscription.*`), [`invoice`] (`invoice.*`), [`payment_intent`]
//! (`payment_intent.*`), [`customer`] (`customer.deleted`), [`refund`] (`charge.refunded`,
//! `refund.*`) and [`dispute`] (`charge.dispute.*`); a new event type goes into the file of
//! its object, and a new
//! object into a file of its own. What every object's rules share stays here (the ledger
//! row, the outcomes and their details) or in [`tenant`] (the tenant an event is about,
//! and its status). [`receive`] is the service's side: the delivery, the replay, the
//! same-second tie's second transaction.
//!
//! * **Exactly once.** The event's ledger row is inserted first, in the same transaction as
//!   its effects. A redelivery finds the row and changes nothing; a concurrent delivery of
//!   the same event blocks on the row's unique key until the first commits, then sees a
//!   duplicate (or applies it, if the first rolled back).
//! * **Order.** Every subscription and invoice remembers the `created` of the newest event
//!   applied to it; an older event is recorded as `stale` and changes nothing.
//!   - *Subscriptions* on a same-second tie: Stripe's `created` has one-second resolution,
//!     so the order of two events created in one second is unknown. Rather than guess, the
//!     service re-reads the subscription from Stripe and applies *that* state, which is
//!     by definition the newest. If Stripe cannot be reached the delivery fails (5xx) and
//!     Stripe redelivers later.
//!   - *Invoices* on a tie are settled by the invoice state machine: `paid` and `void` are
//!     final, so a failure event tied with a success can never undo the payment; statuses
//!     only move forward (`draft` → `open` → …), and a mirror (`invoice.created`,
//!     `.finalized`, `.updated`) never clears a number or a link an event of the same
//!     second set.
//! * **Atomicity.** Effects run in one transaction through [`WebhookTx`]; any error rolls
//!   everything back, the ledger row included, and the delivery answers 5xx so that Stripe
//!   retries. What a redelivery cannot fix (no tenant, an unknown price, an amount that
//!   does not match) commits as `unmatched` or `failed` with the reason, for an operator.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use thiserror::Error;
use tracing::error;

use crate::ids::EventId;
use crate::model::EventOutcome;
use crate::ports::{Applied, BoxError, NewLedgerEntry, RepoError, WebhookTx, WorkOutcome};
use crate::webhook::{PaymentEvent, ProviderEvent, SignatureError};
use invoice::InvoiceChange;

mod checkout;
mod customer;
mod invoice;
mod payment_intent;
mod receive;
pub(crate) mod reconcile;
mod subscription;
mod tenant;
// ---- refunds and disputes (issue 14) ----
mod dispute;
mod refund;
// ---- self-service changes and refunds (issue 16) ----
pub(in crate::service) mod answers;

/// What a delivery came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookReceipt {
    /// Stripe's event id.
    pub event_id: EventId,
    /// Stripe's type.
    pub kind: String,
    /// Stripe's `created`.
    pub created: DateTime<Utc>,
    /// The API version Stripe rendered it in.
    pub api_version: Option<String>,
    /// What it did.
    pub outcome: EventOutcome,
    /// Why, when not simply processed.
    pub detail: Option<String>,
}

/// Why a delivery was not accepted.
#[derive(Debug, Error)]
pub enum WebhookError {
    /// The signature does not prove the body came from Stripe.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// A correctly signed body that is not an event we can read.
    #[error("invalid event payload: {0}")]
    InvalidPayload(String),
    /// The database (or, for a tie, Stripe) is unavailable: Stripe should redeliver.
    #[error("temporarily unable to process the event")]
    Unavailable(#[source] BoxError),
    /// Anything else: Stripe should redeliver.
    #[error("unexpected error while processing the event")]
    Unexpected(#[source] BoxError),
}

/// How an event reaches the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// From Stripe's webhook.
    Webhook,
    /// An operator's replay: an `unmatched` or `failed` event may be applied again.
    Replay,
    /// The event's subscription snapshot was replaced by Stripe's current state after a
    /// same-second tie: it may be applied over an event of the same second.
    Refetched,
    /// A same-second tie Stripe could not settle (it no longer knows the subscription):
    /// the event is recorded as `failed` for an operator, without effects.
    Unsettled,
    /// An event of the other mode (live or test) than the service's: recorded as
    /// `failed` for an operator, without effects. `failed`, not `ignored`: if the key was
    /// the wrong one, the event is genuine and must stay replayable once it is fixed.
    OtherMode,
}

fn applied(outcome: EventOutcome, detail: Option<String>) -> Applied {
    Applied { outcome, detail }
}

fn processed() -> Applied {
    applied(EventOutcome::Processed, None)
}

fn unmatched(reason: impl Into<String>) -> Applied {
    applied(EventOutcome::Unmatched, Some(reason.into()))
}

fn flagged(reason: String) -> Applied {
    error!(reason = %reason, "webhook event flagged for an operator");
    applied(EventOutcome::Failed, Some(reason))
}

fn stale(created: DateTime<Utc>, newest: DateTime<Utc>) -> Applied {
    applied(
        EventOutcome::Stale,
        Some(format!(
            "created {} is older than the newest applied event ({})",
            created.timestamp(),
            newest.timestamp()
        )),
    )
}

/// Keeps at most 64 characters of an untrusted value for a ledger detail.
/// Control characters are dropped: PostgreSQL refuses NUL in text, and none belongs in a
/// ledger detail.
fn quote(raw: &str) -> String {
    raw.chars().filter(|c| !c.is_control()).take(64).collect()
}

/// The outcome a ledger row is inserted with, before the rules run.
pub(crate) fn expected_outcome(event: &PaymentEvent, delivery: Delivery) -> EventOutcome {
    if delivery == Delivery::OtherMode {
        EventOutcome::Failed
    } else if matches!(event, PaymentEvent::Ignored) {
        EventOutcome::Ignored
    } else {
        EventOutcome::Processed
    }
}

fn processed_with(note: Option<String>) -> Applied {
    applied(EventOutcome::Processed, note)
}

/// Applies one event inside the transaction `tx`. Written to be re-run from the start
/// after a deadlock: it keeps no state outside `tx`. A same-second tie comes back as
/// [`WorkOutcome::SameSecondTie`], with the ledger row's outcome left alone: the store
/// rolls the transaction back.
pub(crate) fn apply_event(
    tx: &mut dyn WebhookTx,
    event: &ProviderEvent,
    entry: &NewLedgerEntry,
    delivery: Delivery,
    now: DateTime<Utc>,
) -> Result<WorkOutcome, RepoError> {
    let mut rewrite = false;
    if !tx.insert_event(entry)? {
        let reopened = match delivery {
            Delivery::Webhook | Delivery::OtherMode => false,
            Delivery::Replay | Delivery::Refetched | Delivery::Unsettled => matches!(
                tx.lock_event(&event.id)?,
                Some(EventOutcome::Unmatched | EventOutcome::Failed)
            ),
        };
        if !reopened {
            return Ok(applied(EventOutcome::Duplicate, None).into());
        }
        rewrite = true;
    }
    let result = match delivery {
        Delivery::Unsettled => flagged(
            "two events about this subscription share a second and Stripe no longer knows it; \
             nothing applied"
                .to_owned(),
        ),
        Delivery::OtherMode => flagged(format!(
            "a {} event reached a {} service; nothing applied (do STRIPE_API_KEY and \
             STRIPE_WEBHOOK_SECRET belong to the same mode?)",
            mode(event.livemode),
            mode(!event.livemode)
        )),
        Delivery::Webhook | Delivery::Replay | Delivery::Refetched => {
            match effects(tx, event, delivery, now)? {
                WorkOutcome::Applied(result) => result,
                tie @ WorkOutcome::SameSecondTie(_) => return Ok(tie),
            }
        }
    };
    if rewrite || result.outcome != entry.outcome || result.detail.is_some() {
        tx.set_event_outcome(&event.id, &result, now)?;
    }
    Ok(result.into())
}

fn mode(live: bool) -> &'static str {
    if live {
        "live-mode"
    } else {
        "test-mode"
    }
}

fn effects(
    tx: &mut dyn WebhookTx,
    event: &ProviderEvent,
    delivery: Delivery,
    now: DateTime<Utc>,
) -> Result<WorkOutcome, RepoError> {
    let decided = match &event.event {
        PaymentEvent::Ignored => applied(EventOutcome::Ignored, None),
        PaymentEvent::CheckoutCompleted(c) => {
            checkout::checkout_completed(tx, event, c, false, now)?
        }
        PaymentEvent::SubscriptionUpdated(s) => {
            return subscription::subscription_changed(tx, event, s, false, delivery, now)
        }
        PaymentEvent::SubscriptionDeleted(s) => {
            return subscription::subscription_changed(tx, event, s, true, delivery, now)
        }
        PaymentEvent::InvoicePaid(i) => {
            invoice::invoice_changed(tx, event, i, InvoiceChange::Paid, now)?
        }
        PaymentEvent::InvoicePaymentFailed(i) => {
            invoice::invoice_changed(tx, event, i, InvoiceChange::PaymentFailed, now)?
        }
        PaymentEvent::PaymentSucceeded(p) => payment_intent::payment_succeeded(tx, event, p, now)?,
        PaymentEvent::PaymentFailed(p) => payment_intent::payment_failed(tx, event, p, now)?,
        // ---- the lifecycle beyond the seven (issue 14) ----
        PaymentEvent::InvoiceCreated(i)
        | PaymentEvent::InvoiceFinalized(i)
        | PaymentEvent::InvoiceUpdated(i) => {
            invoice::invoice_changed(tx, event, i, InvoiceChange::Mirrored, now)?
        }
        PaymentEvent::InvoiceVoided(i) => {
            invoice::invoice_changed(tx, event, i, InvoiceChange::Voided, now)?
        }
        PaymentEvent::InvoiceMarkedUncollectible(i) => {
            invoice::invoice_changed(tx, event, i, InvoiceChange::MarkedUncollectible, now)?
        }
        PaymentEvent::InvoicePaymentActionRequired(i) => {
            invoice::invoice_changed(tx, event, i, InvoiceChange::ActionRequired, now)?
        }
        PaymentEvent::SubscriptionCreated(s)
        | PaymentEvent::SubscriptionPaused(s)
        | PaymentEvent::SubscriptionResumed(s) => {
            return subscription::subscription_changed(tx, event, s, false, delivery, now)
        }
        PaymentEvent::SubscriptionTrialWillEnd(s) => subscription::trial_will_end(tx, event, s)?,
        PaymentEvent::CheckoutExpired(c) => checkout::checkout_expired(tx, c, now)?,
        PaymentEvent::CheckoutAsyncPaymentSucceeded(c) => {
            checkout::checkout_completed(tx, event, c, true, now)?
        }
        PaymentEvent::CheckoutAsyncPaymentFailed(c) => {
            checkout::checkout_async_payment_failed(tx, event, c)?
        }
        PaymentEvent::PaymentIntentCanceled(p) => {
            payment_intent::payment_intent_canceled(tx, p, now)?
        }
        PaymentEvent::CustomerDeleted(c) => customer::customer_deleted(tx, c, now)?,
        // ---- end of the lifecycle block ----
        // ---- refunds and disputes (issue 14) ----
        PaymentEvent::ChargeRefunded(c) => refund::charge_refunded(tx, event, c, now)?,
        PaymentEvent::RefundChanged(r) => refund::refund_changed(tx, event, r, now)?,
        PaymentEvent::DisputeChanged(d) => dispute::dispute_changed(tx, event, d, now)?,
    };
    Ok(decided.into())
}

/// Builds the transaction work for one event.
pub(crate) fn work(
    event: Arc<ProviderEvent>,
    entry: NewLedgerEntry,
    delivery: Delivery,
    now: DateTime<Utc>,
) -> crate::ports::WebhookWork {
    Box::new(move |tx| apply_event(tx, &event, &entry, delivery, now))
}

#[cfg(test)]
mod tests;
