//! `checkout.session.completed`: the subscription a checkout started, and its tenant;
//! `.async_payment_succeeded` activates it as an immediate payment would,
//! `.async_payment_failed` is notified once per session, `.expired` closes the session.

use chrono::{DateTime, Utc};

use super::tenant::{resolve_tenant, second_live_subscription, settle_tenant};
use super::{applied, flagged, processed_with, quote, unmatched};
use crate::ids::{NotificationId, SubscriptionId};
use crate::model::{EventOutcome, PlanKey, Subscription, SubscriptionStatus};
use crate::notification::{NewNotification, NotificationBody};
use crate::ports::{Applied, RepoError, WebhookTx};
use crate::webhook::{CheckoutCompleted, ProviderEvent};

/// The ledger note of a checkout whose payment is still on its way.
const AWAITING_PAYMENT: &str = "payment pending (a delayed payment method): the tenant is \
                                activated when Stripe reports the subscription active";

/// `async_paid`: the event is `checkout.session.async_payment_succeeded`, whose money has
/// arrived, so a subscription still `incomplete` from the completed session turns active.
pub(super) fn checkout_completed(
    tx: &mut dyn WebhookTx,
    event: &ProviderEvent,
    c: &CheckoutCompleted,
    async_paid: bool,
    now: DateTime<Utc>,
) -> Result<Applied, RepoError> {
    let Some(sub_ref) = &c.subscription else {
        return Ok(applied(
            EventOutcome::Ignored,
            Some("not a subscription checkout".into()),
        ));
    };
    let tenant = match resolve_tenant(tx, &c.tenant)? {
        Ok(t) => t,
        Err(reason) => return Ok(unmatched(reason)),
    };
    if let Some(customer) = &c.customer {
        if let Some(owner) = tx.tenant_by_customer(customer)? {
            if owner.id != tenant.id {
                return Ok(flagged(format!(
                    "checkout for tenant {} used customer {customer}, which belongs to tenant {}",
                    tenant.id, owner.id
                )));
            }
        }
    }
    let mut created = false;
    let sub = match tx.lock_subscription(sub_ref)? {
        // A subscription event arrived first and created the row: complete it, but keep
        // its status, which is newer than anything a checkout session says.
        Some(mut existing) => {
            if existing.tenant_id != tenant.id {
                return Ok(flagged(format!(
                    "subscription {sub_ref} belongs to tenant {}, checkout names {}",
                    existing.tenant_id, tenant.id
                )));
            }
            let mut changed = false;
            if existing.customer.is_none() {
                existing.customer.clone_from(&c.customer);
                changed = true;
            }
            if async_paid && existing.status == SubscriptionStatus::Incomplete {
                // Not before a newer subscription event: that one knows better.
                if existing.last_event_at.is_none_or(|at| at <= event.created) {
                    existing.status = SubscriptionStatus::Active;
                    existing.last_event_at = Some(event.created);
                    changed = true;
                }
            }
            if changed {
                existing.updated_at = now;
                tx.save_subscription(&existing)?;
            }
            existing
        }
        None => {
            let plan = match c.plan.as_deref().map(PlanKey::parse) {
                Some(Ok(key)) => tx.plan(&key)?,
                _ => None,
            };
            let Some(plan) = plan else {
                return Ok(unmatched(format!(
                    "plan unresolved: metadata planId {:?} names no plan",
                    c.plan.as_deref().map(quote)
                )));
            };
            let sub = Subscription {
                id: SubscriptionId::new(),
                tenant_id: tenant.id,
                plan_id: plan.id,
                status: if c.awaiting_payment {
                    SubscriptionStatus::Incomplete
                } else if plan.trial_days.is_some() {
                    SubscriptionStatus::Trialing
                } else {
                    SubscriptionStatus::Active
                },
                current_period_start: None,
                current_period_end: None,
                cancel_at_period_end: false,
                canceled_at: None,
                past_due_since: None,
                subscription_ref: Some(sub_ref.clone()),
                customer: c.customer.clone(),
                last_event_at: Some(event.created),
                created_at: now,
                updated_at: now,
            };
            tx.save_subscription(&sub)?;
            created = true;
            sub
        }
    };
    // A later checkout must not mistake this session for one whose webhook is still on
    // its way (see `BillingService::keep_one_open_session`).
    tx.complete_checkout_session(&c.session, now)?;
    let mut note = settle_tenant(tx, tenant.id, &sub, c.customer.as_ref(), true, false, now)?;
    if c.awaiting_payment && !sub.status.is_live() {
        note = Some(note.map_or_else(
            || AWAITING_PAYMENT.to_owned(),
            |n| format!("{AWAITING_PAYMENT}; {n}"),
        ));
    }
    if created && sub.status.is_live() && tx.has_other_live_subscription(tenant.id, sub.id)? {
        return Ok(second_live_subscription(tenant.id, sub_ref, note));
    }
    Ok(processed_with(note))
}

/// `checkout.session.expired`: the recorded session is closed as expired, so that a new
/// checkout no longer waits for it (nothing when the session is unknown or closed).
pub(super) fn checkout_expired(
    tx: &mut dyn WebhookTx,
    c: &CheckoutCompleted,
    now: DateTime<Utc>,
) -> Result<Applied, RepoError> {
    if let Err(reason) = resolve_tenant(tx, &c.tenant)? {
        return Ok(unmatched(reason));
    }
    if tx.expire_checkout_session(&c.session, now)? {
        Ok(processed_with(None))
    } else {
        Ok(applied(
            EventOutcome::Processed,
            Some(format!(
                "no open checkout session {} was recorded",
                c.session
            )),
        ))
    }
}

/// `checkout.session.async_payment_failed`: notified once per session; the subscription
/// follows its own events (Stripe expires it).
pub(super) fn checkout_async_payment_failed(
    tx: &mut dyn WebhookTx,
    event: &ProviderEvent,
    c: &CheckoutCompleted,
) -> Result<Applied, RepoError> {
    let tenant = match resolve_tenant(tx, &c.tenant)? {
        Ok(t) => t,
        Err(reason) => return Ok(unmatched(reason)),
    };
    let fresh = tx.enqueue_notification(&NewNotification {
        id: NotificationId::new(),
        dedupe_key: format!("checkout.async_payment_failed:{}", c.session),
        occurred_at: event.created,
        body: NotificationBody::CheckoutAsyncPaymentFailed {
            tenant: tenant.id,
            session: c.session.clone(),
            subscription_ref: c.subscription.clone(),
        },
    })?;
    Ok(if fresh {
        processed_with(None)
    } else {
        applied(
            EventOutcome::Processed,
            Some("this failure was already notified".into()),
        )
    })
}
