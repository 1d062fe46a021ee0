//! `charge.refunded` and `refund.created` / `.updated` / `.failed` (and the older
//! `charge.refund.updated`): one Refund row per Stripe refund, whichever of these events
//! brings it and in whatever order; the payment's refunded amount and status derived from
//! all its refunds and disputes ([`Payment::settle`]).
//!
//! Order per refund: each row keeps the `created` of the newest event applied to it; an
//! older event changes nothing. Events of one second (a Dashboard refund's
//! `charge.refunded` and `refund.created`, a failure's `refund.updated` and
//! `refund.failed`) are settled by the refund's allowed moves: failed and canceled are
//! final, so the later state wins whichever arrives last.

use chrono::{DateTime, Utc};

use super::{applied, flagged, processed_with, quote, stale, unmatched};
use crate::ids::RefundId;
use crate::model::{EventOutcome, Payment, Refund};
use crate::money::{Currency, Money};
use crate::ports::{Applied, RepoError, WebhookTx};
use crate::webhook::{ChargeRefunded, ProviderEvent, RefundSnapshot};
use crate::{ChargeRef, PaymentIntentRef};

/// The collected payment a refund or a dispute is about, locked: by charge, else by
/// PaymentIntent, as payments are recorded; `Err` holds the reason when there is none.
pub(super) fn locate_payment(
    tx: &mut dyn WebhookTx,
    charge: Option<&ChargeRef>,
    payment_intent: Option<&PaymentIntentRef>,
) -> Result<Result<Payment, String>, RepoError> {
    if let Some(c) = charge {
        if let Some(found) = tx.lock_payment_by_charge(c)? {
            return Ok(Ok(found));
        }
    }
    if let Some(pi) = payment_intent {
        if let Some(found) = tx.lock_payment_by_payment_intent(pi)? {
            return Ok(Ok(found));
        }
    }
    let named = match (charge, payment_intent) {
        (Some(c), Some(pi)) => format!("charge {c} or PaymentIntent {pi}"),
        (Some(c), None) => format!("charge {c}"),
        (None, Some(pi)) => format!("PaymentIntent {pi}"),
        (None, None) => return Ok(Err("names neither a charge nor a PaymentIntent".into())),
    };
    Ok(Err(format!("no collected payment for {named}")))
}

/// Derives the payment's refunded amount and status from its rows and stores them when
/// they changed; a currency clash is flagged.
pub(super) fn settle_payment(
    tx: &mut dyn WebhookTx,
    mut payment: Payment,
) -> Result<Result<(), Applied>, RepoError> {
    let refunds = tx.refunds_of(payment.id)?;
    let disputes = tx.disputes_of(payment.id)?;
    let before = (payment.status, payment.amount_refunded);
    if let Err(e) = payment.settle(&refunds, &disputes) {
        return Ok(Err(flagged(format!(
            "the refunds of payment {} do not add up: {e}",
            payment.id
        ))));
    }
    if (payment.status, payment.amount_refunded) != before {
        tx.save_payment_state(&payment)?;
    }
    Ok(Ok(()))
}

/// A refund snapshot checked against its payment: the values a row may take.
struct Checked<'a> {
    snapshot: &'a RefundSnapshot,
    status: crate::model::RefundStatus,
    amount: Money,
}

fn check<'a>(payment: &Payment, r: &'a RefundSnapshot) -> Result<Checked<'a>, String> {
    let Some(status) = r.status else {
        return Err(format!(
            "refund {} has an unknown status '{}'",
            r.refund,
            quote(&r.status_raw)
        ));
    };
    let currency = Currency::parse(&r.currency)
        .map_err(|_| format!("unknown currency '{}'", quote(&r.currency)))?;
    if currency != payment.amount.currency() {
        return Err(format!(
            "refund {} is in {currency}, its payment {} in {}",
            r.refund,
            payment.id,
            payment.amount.currency()
        ));
    }
    let amount = Money::new(r.amount, currency)
        .map_err(|_| format!("refund {} has a negative amount {}", r.refund, r.amount))?;
    Ok(Checked {
        snapshot: r,
        status,
        amount,
    })
}

/// What applying one refund snapshot came to.
enum Step {
    /// Written (or already as the event says).
    Applied,
    /// Older than the newest event applied to the refund.
    Stale(DateTime<Utc>),
    /// A move the refund's status does not allow: kept, with why.
    Kept(String),
}

fn apply_refund(
    tx: &mut dyn WebhookTx,
    event: &ProviderEvent,
    payment: &Payment,
    existing: &[Refund],
    r: &Checked<'_>,
    now: DateTime<Utc>,
) -> Result<Step, RepoError> {
    let found = existing
        .iter()
        .find(|x| x.refund_ref == r.snapshot.refund)
        .cloned();
    let refund = match found {
        Some(mut known) => {
            if event.created < known.last_event_at {
                return Ok(Step::Stale(known.last_event_at));
            }
            if !known.status.can_become(r.status) {
                return Ok(Step::Kept(format!(
                    "refund {} is already {}, not {}",
                    known.refund_ref,
                    known.status.as_str(),
                    r.status.as_str()
                )));
            }
            let reason = r.snapshot.reason.as_deref().map(quote);
            if known.status == r.status
                && known.amount == r.amount
                && known.reason == reason
                && known.last_event_at == event.created
            {
                return Ok(Step::Applied);
            }
            known.status = r.status;
            known.amount = r.amount;
            known.reason = reason;
            known.last_event_at = event.created;
            known.updated_at = now;
            known
        }
        None => Refund {
            id: RefundId::new(),
            payment_id: payment.id,
            amount: r.amount,
            status: r.status,
            reason: r.snapshot.reason.as_deref().map(quote),
            refund_ref: r.snapshot.refund.clone(),
            last_event_at: event.created,
            created_at: now,
            updated_at: now,
        },
    };
    tx.save_refund(&refund)?;
    Ok(Step::Applied)
}

/// Applies refund snapshots to their payment, all or none: each is checked first.
fn apply_refunds(
    tx: &mut dyn WebhookTx,
    event: &ProviderEvent,
    payment: Payment,
    snapshots: &[RefundSnapshot],
    now: DateTime<Utc>,
) -> Result<Applied, RepoError> {
    let checked = match snapshots
        .iter()
        .map(|r| check(&payment, r))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(c) => c,
        Err(reason) => return Ok(flagged(reason)),
    };
    let existing = tx.refunds_of(payment.id)?;
    let mut applied_any = false;
    let mut newest_stale = None;
    let mut notes = Vec::new();
    for r in &checked {
        match apply_refund(tx, event, &payment, &existing, r, now)? {
            Step::Applied => applied_any = true,
            Step::Stale(newest) => newest_stale = Some(newest),
            Step::Kept(note) => notes.push(note),
        }
    }
    if !applied_any {
        if let (Some(newest), true) = (newest_stale, notes.is_empty()) {
            return Ok(stale(event.created, newest));
        }
    }
    if let Err(flag) = settle_payment(tx, payment)? {
        return Ok(flag);
    }
    Ok(processed_with(
        (!notes.is_empty()).then(|| notes.join("; ")),
    ))
}

/// `refund.*`: the refund as it is now.
pub(super) fn refund_changed(
    tx: &mut dyn WebhookTx,
    event: &ProviderEvent,
    r: &RefundSnapshot,
    now: DateTime<Utc>,
) -> Result<Applied, RepoError> {
    let payment = match locate_payment(tx, r.charge.as_ref(), r.payment_intent.as_ref())? {
        Ok(p) => p,
        Err(reason) => return Ok(unmatched(format!("refund {}: {reason}", r.refund))),
    };
    apply_refunds(tx, event, payment, std::slice::from_ref(r), now)
}

/// `charge.refunded`: every refund the charge lists.
pub(super) fn charge_refunded(
    tx: &mut dyn WebhookTx,
    event: &ProviderEvent,
    c: &ChargeRefunded,
    now: DateTime<Utc>,
) -> Result<Applied, RepoError> {
    let payment = match locate_payment(tx, Some(&c.charge), c.payment_intent.as_ref())? {
        Ok(p) => p,
        Err(reason) => return Ok(unmatched(format!("refunded charge: {reason}"))),
    };
    if c.refunds.is_empty() {
        // The list is left out unless expanded in recent API versions: the refunds'
        // own events record them.
        return Ok(applied(
            EventOutcome::Processed,
            Some(format!(
                "charge {} lists no refunds ({} refunded at Stripe); their refund.* events \
                 record them",
                c.charge, c.amount_refunded
            )),
        ));
    }
    apply_refunds(tx, event, payment, &c.refunds, now)
}
