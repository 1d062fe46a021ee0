//! `charge.dispute.created`, `.updated`, `.funds_withdrawn`, `.funds_reinstated` and
//! `.closed`: one Dispute row per Stripe dispute; the payment `disputed` while one is
//! open, back to its refund status when won, `dispute_lost` when lost
//! ([`crate::model::Payment::settle`]); a `dispute.created` notification once per dispute,
//! when the first of its events (whichever it is) records it.
//!
//! Order per dispute: the row keeps the `created` of the newest event applied; an older
//! one changes nothing, and on a same-second tie a decided dispute stays decided.

use chrono::{DateTime, Utc};

use super::refund::{locate_payment, settle_payment};
use super::{applied, flagged, processed, quote, stale, unmatched};
use crate::ids::{DisputeId, NotificationId};
use crate::model::{Dispute, EventOutcome};
use crate::money::{Currency, Money};
use crate::notification::{NewNotification, NotificationBody};
use crate::ports::{Applied, RepoError, WebhookTx};
use crate::webhook::{DisputeSnapshot, ProviderEvent};

pub(super) fn dispute_changed(
    tx: &mut dyn WebhookTx,
    event: &ProviderEvent,
    d: &DisputeSnapshot,
    now: DateTime<Utc>,
) -> Result<Applied, RepoError> {
    let payment = match locate_payment(tx, d.charge.as_ref(), d.payment_intent.as_ref())? {
        Ok(p) => p,
        Err(reason) => return Ok(unmatched(format!("dispute {}: {reason}", d.dispute))),
    };
    let Some(status) = d.status else {
        return Ok(flagged(format!(
            "dispute {} has an unknown status '{}'",
            d.dispute,
            quote(&d.status_raw)
        )));
    };
    let Ok(currency) = Currency::parse(&d.currency) else {
        return Ok(flagged(format!(
            "unknown currency '{}'",
            quote(&d.currency)
        )));
    };
    let Ok(amount) = Money::new(d.amount, currency) else {
        return Ok(flagged(format!(
            "dispute {} has a negative amount {}",
            d.dispute, d.amount
        )));
    };
    let reason = quote(&d.reason);
    let known = tx
        .disputes_of(payment.id)?
        .into_iter()
        .find(|x| x.dispute_ref == d.dispute);
    let (dispute, new) = match known {
        Some(mut known) => {
            if event.created < known.last_event_at {
                return Ok(stale(event.created, known.last_event_at));
            }
            if !known.status.can_become(status) {
                return Ok(applied(
                    EventOutcome::Processed,
                    Some(format!(
                        "dispute {} is already {}, not {}",
                        known.dispute_ref,
                        known.status.as_str(),
                        status.as_str()
                    )),
                ));
            }
            known.status = status;
            known.amount = amount;
            known.reason = reason;
            known.last_event_at = event.created;
            known.updated_at = now;
            (known, false)
        }
        None => (
            Dispute {
                id: DisputeId::new(),
                payment_id: payment.id,
                amount,
                reason,
                status,
                dispute_ref: d.dispute.clone(),
                last_event_at: event.created,
                created_at: now,
                updated_at: now,
            },
            true,
        ),
    };
    tx.save_dispute(&dispute)?;
    if new {
        tx.enqueue_notification(&NewNotification {
            id: NotificationId::new(),
            dedupe_key: format!("dispute.created:{}", dispute.dispute_ref),
            occurred_at: event.created,
            body: NotificationBody::DisputeCreated {
                tenant: payment.tenant_id,
                payment: payment.id,
                dispute: dispute.id,
                dispute_ref: dispute.dispute_ref.clone(),
                amount: dispute.amount,
                reason: dispute.reason.clone(),
                status: dispute.status,
            },
        })?;
    }
    if let Err(flag) = settle_payment(tx, payment)? {
        return Ok(flag);
    }
    Ok(processed())
}
