//! The tenant an event is about, and its status: shared by every object's rules.

use chrono::{DateTime, Utc};
use tracing::error;

use super::{processed_with, quote};
use crate::ids::{CustomerRef, SubscriptionRef, TenantId};
use crate::model::{Subscription, SubscriptionStatus, Tenant, TenantStatus};
use crate::ports::{Applied, RepoError, WebhookTx};
use crate::webhook::TenantHints;

/// The tenant named by the hints, in the SPEC's order: object metadata, checkout's
/// `client_reference_id`, the subscription's metadata, then the known Stripe customer.
pub(super) fn resolve_tenant(
    tx: &mut dyn WebhookTx,
    hints: &TenantHints,
) -> Result<Result<Tenant, String>, RepoError> {
    let mut notes = Vec::new();
    for raw in [
        &hints.metadata,
        &hints.client_reference,
        &hints.subscription_metadata,
    ]
    .into_iter()
    .flatten()
    {
        match TenantId::parse(raw) {
            Ok(id) => return tx.ensure_tenant(id).map(Ok),
            Err(_) => notes.push(format!("'{}' is not a tenant id", quote(raw))),
        }
    }
    if let Some(customer) = &hints.customer {
        if let Some(tenant) = tx.tenant_by_customer(customer)? {
            return Ok(Ok(tenant));
        }
        notes.push(format!("customer {customer} belongs to no known tenant"));
    }
    if notes.is_empty() {
        notes.push("the event names no tenant and no customer".into());
    }
    Ok(Err(format!("tenant unresolved: {}", notes.join("; "))))
}

/// A tenant becomes `active` with a live subscription, `suspended` while its subscription
/// is paused and nothing else is live, and `cancelled` once nothing live is left. A
/// suspension is lifted by the resumption (or the end) of the paused subscription that
/// caused it (`was_paused`: the subscription was `paused` before this event), or by a
/// checkout (`replace_customer`) whose new subscription is live: the tenant bought access
/// anew. Other events never override a `suspended`.
///
/// Runs under the tenant's row lock, so that two events about one tenant decide its
/// status one after the other: a deletion of an old subscription racing the checkout of
/// a new one must not leave the tenant `cancelled`. The Stripe customer is recorded
/// unless another tenant holds it; only a checkout replaces a known one (an event about
/// an older subscription never flips it back). Returns a note for the ledger when
/// something was left out.
pub(super) fn settle_tenant(
    tx: &mut dyn WebhookTx,
    tenant: TenantId,
    sub: &Subscription,
    customer: Option<&CustomerRef>,
    replace_customer: bool,
    was_paused: bool,
    now: DateTime<Utc>,
) -> Result<Option<String>, RepoError> {
    let Some(mut tenant) = tx.lock_tenant(tenant)? else {
        return Ok(Some(format!("tenant {tenant} vanished")));
    };
    let before = (tenant.status, tenant.customer.clone());
    let mut note = None;
    if let Some(c) = customer {
        if tenant.customer.as_ref() != Some(c) && (replace_customer || tenant.customer.is_none()) {
            if tx.customer_was_deleted(c)? {
                note = Some(format!(
                    "customer {c} was deleted; not recorded on tenant {}",
                    tenant.id
                ));
            } else {
                match tx.tenant_by_customer(c)? {
                    Some(other) if other.id != tenant.id => {
                        note = Some(format!(
                            "customer {c} belongs to tenant {}; not recorded on tenant {}",
                            other.id, tenant.id
                        ));
                    }
                    _ => tenant.customer = Some(c.clone()),
                }
            }
        }
    }
    let checkout_paid = replace_customer && sub.status.is_live();
    if tenant.status != TenantStatus::Suspended || was_paused || checkout_paid {
        if sub.status.is_live() {
            tenant.status = TenantStatus::Active;
        } else if matches!(
            sub.status,
            SubscriptionStatus::Canceled | SubscriptionStatus::Paused
        ) && !tx.has_other_live_subscription(tenant.id, sub.id)?
        {
            tenant.status = if sub.status == SubscriptionStatus::Paused {
                TenantStatus::Suspended
            } else {
                TenantStatus::Cancelled
            };
        }
    }
    if (tenant.status, tenant.customer.clone()) != before {
        tenant.updated_at = now;
        tx.save_tenant(&tenant)?;
    }
    Ok(note)
}

/// A tenant's second live subscription: Stripe bills both, so an operator must cancel
/// one. Applied and called out, not refused, because the subscription exists at Stripe
/// whatever we decide here. Checked under the tenant's lock (taken by `settle_tenant`),
/// so that two subscriptions turning live at once cannot each miss the other.
pub(super) fn second_live_subscription(
    tenant: TenantId,
    subscription: &SubscriptionRef,
    note: Option<String>,
) -> Applied {
    error!(tenant.id = %tenant, stripe.subscription = %subscription, "tenant has two live subscriptions");
    let second =
        format!("tenant {tenant} already had a live subscription; {subscription} is a second one");
    processed_with(Some(match note {
        Some(n) => format!("{second}; {n}"),
        None => second,
    }))
}
