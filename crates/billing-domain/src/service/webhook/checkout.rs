//! `checkout.session.completed`: the subscription a checkout started, and its tenant.

use chrono::{DateTime, Utc};

use super::tenant::{resolve_tenant, second_live_subscription, settle_tenant};
use super::{applied, flagged, processed_with, quote, unmatched};
use crate::ids::SubscriptionId;
use crate::model::{EventOutcome, PlanKey, Subscription, SubscriptionStatus};
use crate::ports::{Applied, RepoError, WebhookTx};
use crate::webhook::{CheckoutCompleted, ProviderEvent};

/// The ledger note of a checkout whose payment is still on its way.
const AWAITING_PAYMENT: &str = "payment pending (a delayed payment method): the tenant is \
                                activated when Stripe reports the subscription active";

pub(super) fn checkout_completed(
    tx: &mut dyn WebhookTx,
    event: &ProviderEvent,
    c: &CheckoutCompleted,
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
            if existing.customer.is_none() {
                existing.customer.clone_from(&c.customer);
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
    let mut note = settle_tenant(tx, tenant.id, &sub, c.customer.as_ref(), true, now)?;
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
