//! `customer.subscription.created`, `.updated`, `.paused`, `.resumed` and `.deleted`: the
//! subscription mirrors Stripe's, in the order Stripe created the events (a same-second
//! tie is settled by `receive`); `.trial_will_end` is notified once per trial end.

use chrono::{DateTime, Utc};

use super::tenant::{resolve_tenant, second_live_subscription, settle_tenant};
use super::{applied, processed_with, quote, stale, unmatched, Delivery};
use crate::ids::{NotificationId, SubscriptionId};
use crate::model::{EventOutcome, PlanKey, Subscription, SubscriptionStatus};
use crate::notification::{NewNotification, NotificationBody};
use crate::ports::{Applied, RepoError, WebhookTx, WorkOutcome};
use crate::webhook::{ProviderEvent, SubscriptionSnapshot};

/// Places the event in the subscription's order: older than the newest applied is stale,
/// the same second (on a first delivery or a replay) is a tie for Stripe to settle, and
/// anything newer is mirrored.
pub(super) fn subscription_changed(
    tx: &mut dyn WebhookTx,
    event: &ProviderEvent,
    s: &SubscriptionSnapshot,
    deleted: bool,
    delivery: Delivery,
    now: DateTime<Utc>,
) -> Result<WorkOutcome, RepoError> {
    let status = if deleted {
        SubscriptionStatus::Canceled
    } else if let Some(status) = s.status {
        status
    } else {
        return Ok(unmatched(format!(
            "unknown subscription status '{}'",
            quote(&s.status_raw)
        ))
        .into());
    };
    let existing = tx.lock_subscription(&s.subscription)?;
    if let Some(newest) = existing.as_ref().and_then(|row| row.last_event_at) {
        if event.created < newest {
            return Ok(stale(event.created, newest).into());
        }
        if event.created == newest && matches!(delivery, Delivery::Webhook | Delivery::Replay) {
            return Ok(WorkOutcome::SameSecondTie(s.subscription.clone()));
        }
    }
    mirror(tx, event, s, status, existing, now).map(WorkOutcome::Applied)
}

/// Mirrors an event's snapshot, newer than anything applied, onto the subscription
/// (`existing`, locked, or a new one) and its tenant.
pub(super) fn mirror(
    tx: &mut dyn WebhookTx,
    event: &ProviderEvent,
    s: &SubscriptionSnapshot,
    status: SubscriptionStatus,
    existing: Option<Subscription>,
    now: DateTime<Utc>,
) -> Result<Applied, RepoError> {
    if let Some(row) = &existing {
        if !row.status.can_become(status) {
            return Ok(applied(
                EventOutcome::Stale,
                Some(format!("subscription is already {}", row.status.as_str())),
            ));
        }
    }
    let plan = match &s.price {
        Some(price) => match tx.plan_by_price(price)? {
            Some(plan) => Some(plan.id),
            None => return Ok(unmatched(format!("no plan has Stripe price {price}"))),
        },
        None => None,
    };
    let was_live = existing.as_ref().is_some_and(|row| row.status.is_live());
    let was_paused = existing
        .as_ref()
        .is_some_and(|row| row.status == SubscriptionStatus::Paused);
    let mut sub = match existing {
        Some(row) => row,
        None => {
            let tenant = match resolve_tenant(tx, &s.tenant)? {
                Ok(t) => t,
                Err(reason) => return Ok(unmatched(reason)),
            };
            let from_metadata = match s.plan.as_deref().map(PlanKey::parse) {
                Some(Ok(key)) => tx.plan(&key)?.map(|p| p.id),
                _ => None,
            };
            let Some(plan_id) = plan.or(from_metadata) else {
                return Ok(unmatched(
                    "plan unresolved: no price and no planId metadata",
                ));
            };
            Subscription {
                id: SubscriptionId::new(),
                tenant_id: tenant.id,
                plan_id,
                status,
                current_period_start: None,
                current_period_end: None,
                cancel_at_period_end: false,
                canceled_at: None,
                past_due_since: None,
                subscription_ref: Some(s.subscription.clone()),
                customer: None,
                last_event_at: None,
                created_at: now,
                updated_at: now,
            }
        }
    };
    // The first failed payment (access grace): when the event moving it into `past_due`
    // was created, kept while it stays there, cleared when it leaves.
    sub.past_due_since = if status == SubscriptionStatus::PastDue {
        sub.past_due_since
            .filter(|_| sub.status == SubscriptionStatus::PastDue)
            .or(Some(event.created))
    } else {
        None
    };
    sub.status = status;
    if let Some(plan_id) = plan {
        sub.plan_id = plan_id;
    }
    sub.current_period_start = s.current_period_start.or(sub.current_period_start);
    sub.current_period_end = s.current_period_end.or(sub.current_period_end);
    sub.cancel_at_period_end = s.cancel_at_period_end;
    if status == SubscriptionStatus::Canceled {
        sub.canceled_at = s.canceled_at.or(s.ended_at).or(Some(event.created));
    } else {
        sub.canceled_at = s.canceled_at;
    }
    if s.customer.is_some() {
        sub.customer.clone_from(&s.customer);
    }
    sub.last_event_at = Some(event.created);
    sub.updated_at = now;
    tx.save_subscription(&sub)?;

    let note = settle_tenant(
        tx,
        sub.tenant_id,
        &sub,
        s.customer.as_ref(),
        false,
        was_paused,
        now,
    )?;
    if status.is_live() && !was_live && tx.has_other_live_subscription(sub.tenant_id, sub.id)? {
        return Ok(second_live_subscription(
            sub.tenant_id,
            &s.subscription,
            note,
        ));
    }
    Ok(processed_with(note))
}

/// `customer.subscription.trial_will_end`: a reminder, notified once per subscription and
/// trial end. It changes no state (the subscription's own events do), so it is never
/// stale; a subscription already past its trial needs no reminder.
pub(super) fn trial_will_end(
    tx: &mut dyn WebhookTx,
    event: &ProviderEvent,
    s: &SubscriptionSnapshot,
) -> Result<Applied, RepoError> {
    let existing = tx.lock_subscription(&s.subscription)?;
    let tenant = match &existing {
        Some(row) => row.tenant_id,
        None => match resolve_tenant(tx, &s.tenant)? {
            Ok(t) => t.id,
            Err(reason) => return Ok(unmatched(reason)),
        },
    };
    if let Some(row) = &existing {
        if row.status != SubscriptionStatus::Trialing {
            return Ok(applied(
                EventOutcome::Processed,
                Some(format!(
                    "subscription is {}: no trial to remind of",
                    row.status.as_str()
                )),
            ));
        }
    }
    let trial_end = s
        .trial_end
        .map_or_else(|| "none".to_owned(), |t| t.timestamp().to_string());
    let fresh = tx.enqueue_notification(&NewNotification {
        id: NotificationId::new(),
        dedupe_key: format!("subscription.trial_will_end:{}:{trial_end}", s.subscription),
        occurred_at: event.created,
        body: NotificationBody::SubscriptionTrialWillEnd {
            tenant,
            subscription: existing.as_ref().map(|row| row.id),
            subscription_ref: s.subscription.clone(),
            trial_end: s.trial_end,
        },
    })?;
    Ok(if fresh {
        processed_with(None)
    } else {
        applied(
            EventOutcome::Processed,
            Some("this trial end was already notified".into()),
        )
    })
}
