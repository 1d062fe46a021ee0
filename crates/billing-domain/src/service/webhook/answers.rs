//! Stripe's answers to the service's own calls (issue 16: self-service changes and admin
//! refunds), applied at once through the rules the webhook path applies events with, under
//! the same row locks, so that an answer and the change's own webhook are applied one after
//! the other and agree.
//!
//! * **A subscription answer** is mirrored by [`mirror`](super::subscription) like an event
//!   about the subscription, except that it moves no order guard: an answer has no event
//!   `created`, and a `created` of our clock's could make every later event of a test
//!   clock's subscription (whose events carry the clock's time) look stale. The row keeps
//!   the `created` of the newest event applied, so the change's own webhook — newer than
//!   anything applied before — is applied over the answer, and changes nothing more.
//! * **A created refund** is recorded as its `refund.created` event would record it (its
//!   order guard at Stripe's `created` of the refund, so that the refund's events are all
//!   applied after it), and the payment's refunded amount and status derived again.

use chrono::{DateTime, Utc};

use super::refund::{locate_payment, settle_payment};
use super::subscription::mirror;
use crate::ids::{EventId, RefundId};
use crate::model::{Payment, Refund, Subscription};
use crate::money::{Currency, Money};
use crate::ports::{CreatedRefund, RepoError, WebhookTx};
use crate::webhook::{PaymentEvent, ProviderEvent, SubscriptionSnapshot};

/// Mirrors Stripe's answer onto the subscription it names; the row as it is afterwards,
/// or `None` when the subscription is not known here (nothing is created from an answer).
/// A status this version does not know, an unknown price or a final status that would be
/// left keep the row as it was (the webhook path records why when the event comes).
pub(in crate::service) fn subscription_answer(
    tx: &mut dyn WebhookTx,
    s: &SubscriptionSnapshot,
    now: DateTime<Utc>,
) -> Result<Option<Subscription>, RepoError> {
    let Some(existing) = tx.lock_subscription(&s.subscription)? else {
        return Ok(None);
    };
    let Some(status) = s.status else {
        return Ok(Some(existing));
    };
    let guard = existing.last_event_at;
    let event = ProviderEvent {
        // Never stored: an answer has no ledger row.
        id: EventId::parse("api_answer").map_err(|e| RepoError::Unexpected(Box::new(e)))?,
        kind: "api_answer".into(),
        created: guard.unwrap_or(now),
        api_version: None,
        livemode: false,
        event: PaymentEvent::SubscriptionUpdated(s.clone()),
    };
    mirror(tx, &event, s, status, Some(existing), now)?;
    let Some(mut row) = tx.lock_subscription(&s.subscription)? else {
        return Ok(None);
    };
    if row.last_event_at != guard {
        row.last_event_at = guard;
        tx.save_subscription(&row)?;
    }
    Ok(Some(row))
}

/// What recording a created refund came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::service) enum Recorded {
    /// The refund's row (new, or already there: a concurrent identical request, or the
    /// refund's webhook, recorded it first).
    Refund(Refund),
    /// It cannot be recorded (why): the payment is gone or the amounts do not agree.
    Unrecorded(String),
}

/// Records a refund Stripe created for `payment` (locked first, as the refund events do).
pub(in crate::service) fn record_refund(
    tx: &mut dyn WebhookTx,
    payment: &Payment,
    created: &CreatedRefund,
    now: DateTime<Utc>,
) -> Result<Recorded, RepoError> {
    let r = &created.snapshot;
    let locked = match locate_payment(
        tx,
        payment.charge.as_ref().or(r.charge.as_ref()),
        payment
            .payment_intent
            .as_ref()
            .or(r.payment_intent.as_ref()),
    )? {
        Ok(p) => p,
        Err(reason) => return Ok(Recorded::Unrecorded(reason)),
    };
    let existing = tx.refunds_of(locked.id)?;
    if let Some(known) = existing.into_iter().find(|x| x.refund_ref == r.refund) {
        return Ok(Recorded::Refund(known));
    }
    let Some(status) = r.status else {
        return Ok(Recorded::Unrecorded(format!(
            "refund {} has an unknown status",
            r.refund
        )));
    };
    let amount = match Currency::parse(&r.currency)
        .ok()
        .filter(|c| *c == locked.amount.currency())
        .and_then(|c| Money::new(r.amount, c).ok())
    {
        Some(amount) => amount,
        None => {
            return Ok(Recorded::Unrecorded(format!(
                "refund {} is not in the payment's currency",
                r.refund
            )))
        }
    };
    let refund = Refund {
        id: RefundId::new(),
        payment_id: locked.id,
        amount,
        status,
        reason: r.reason.as_deref().map(super::quote),
        refund_ref: r.refund.clone(),
        last_event_at: created.created,
        created_at: now,
        updated_at: now,
    };
    tx.save_refund(&refund)?;
    if let Err(flag) = settle_payment(tx, locked)? {
        // The refund is Stripe's fact and stays recorded; its events flag the payment.
        tracing::warn!(detail = ?flag.detail, refund = %refund.refund_ref, "refunds of a payment do not add up");
    }
    Ok(Recorded::Refund(refund))
}
