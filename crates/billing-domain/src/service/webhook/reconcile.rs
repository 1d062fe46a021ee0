//! Reconciliation and the checkout return (issue 15): Stripe's current state of an object,
//! read through the API rather than delivered as an event, applied through the same rules
//! as the object's events, inside the same kind of transaction.
//!
//! * **The read's version.** A read has no `created` of its own; it stands for Stripe's
//!   state at the moment the read was sent. The caller passes that moment minus a margin
//!   for clock skew ([`READ_SKEW`]) as `read_at`, and the read is treated as an event
//!   created then: an object whose newest applied event is as new or newer (`>=`, so a
//!   same-second tie also loses) is left alone — an older read never overwrites newer
//!   local state. When the read wins, the object remembers `read_at` as its newest
//!   event, so that an event older than the read, delivered late, is stale.
//! * **Only differences are written.** An object whose local state already agrees with
//!   the read is not touched (its newest event time included: a late event may still carry
//!   something the read cannot show, such as a failed payment on an `open` invoice).
//! * **Corrections** are what the rules actually changed, compared field by field before
//!   and after, within the transaction.

use chrono::{DateTime, Utc};

use super::checkout::checkout_completed;
use super::invoice::{invoice_changed, InvoiceChange};
use super::subscription::subscription_changed;
use super::Delivery;
use crate::ids::EventId;
use crate::model::{Invoice, InvoiceStatus, Subscription};
use crate::ports::{Applied, RepoError, WebhookTx, WorkOutcome};
use crate::webhook::{
    CheckoutCompleted, InvoiceSnapshot, PaymentEvent, ProviderEvent, SubscriptionSnapshot,
};

/// How much earlier than our clock a read is dated: Stripe's `created` comes from
/// Stripe's clock, a read's time from ours. Dating a read too late could let it overwrite
/// an event that happened after it; too early only skips a correction the next sweep
/// makes.
pub const READ_SKEW: chrono::TimeDelta = chrono::TimeDelta::seconds(1);

/// The object kinds a correction is about (the `kind` of
/// `billing_reconcile_corrections_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CorrectionKind {
    /// A subscription.
    Subscription,
    /// An invoice.
    Invoice,
    /// A tenant's status, following its subscriptions.
    Tenant,
}

impl CorrectionKind {
    /// The stable name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Subscription => "subscription",
            Self::Invoice => "invoice",
            Self::Tenant => "tenant",
        }
    }
}

/// One field a reconciliation changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correction {
    /// What kind of object.
    pub kind: CorrectionKind,
    /// The object: a Stripe id (`sub_…`, `in_…`), or the tenant's id.
    pub object: String,
    /// The field, as the API names it (`status`, `planId`, `amountPaid`, …).
    pub field: &'static str,
    /// The local value before.
    pub from: Option<String>,
    /// The value after.
    pub to: Option<String>,
}

/// The event a read stands for. Never stored: reconciliation writes no ledger row.
fn synthetic(
    kind: &str,
    object: &str,
    created: DateTime<Utc>,
    event: PaymentEvent,
) -> Result<ProviderEvent, RepoError> {
    // Stripe ids are ASCII: cutting at a byte index is safe, and keeps the id short.
    let object = object.get(..object.len().min(200)).unwrap_or("object");
    let id = EventId::parse(format!("reconcile_{object}"))
        .map_err(|e| RepoError::Unexpected(format!("synthetic event id: {e:?}").into()))?;
    Ok(ProviderEvent {
        id,
        kind: kind.to_owned(),
        created,
        api_version: None,
        livemode: false,
        event,
    })
}

fn push(
    out: &mut Vec<Correction>,
    kind: CorrectionKind,
    object: &str,
    field: &'static str,
    from: Option<String>,
    to: Option<String>,
) {
    if from != to {
        out.push(Correction {
            kind,
            object: object.to_owned(),
            field,
            from,
            to,
        });
    }
}

fn ts(t: Option<DateTime<Utc>>) -> Option<String> {
    t.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// The fields of a subscription a reconciliation compares.
fn subscription_diff(
    object: &str,
    before: Option<&Subscription>,
    after: &Subscription,
) -> Vec<Correction> {
    let mut out = Vec::new();
    let k = CorrectionKind::Subscription;
    push(
        &mut out,
        k,
        object,
        "status",
        before.map(|b| b.status.as_str().to_owned()),
        Some(after.status.as_str().to_owned()),
    );
    push(
        &mut out,
        k,
        object,
        "planId",
        before.map(|b| b.plan_id.to_string()),
        Some(after.plan_id.to_string()),
    );
    push(
        &mut out,
        k,
        object,
        "cancelAtPeriodEnd",
        before.map(|b| b.cancel_at_period_end.to_string()),
        Some(after.cancel_at_period_end.to_string()),
    );
    push(
        &mut out,
        k,
        object,
        "currentPeriodEnd",
        before.and_then(|b| ts(b.current_period_end)),
        ts(after.current_period_end),
    );
    push(
        &mut out,
        k,
        object,
        "canceledAt",
        before.and_then(|b| ts(b.canceled_at)),
        ts(after.canceled_at),
    );
    out
}

/// Whether Stripe's subscription differs from ours in what the rules would change.
fn subscription_differs(
    tx: &mut dyn WebhookTx,
    row: &Subscription,
    s: &SubscriptionSnapshot,
) -> Result<bool, RepoError> {
    if s.status.is_some_and(|st| st != row.status)
        || s.cancel_at_period_end != row.cancel_at_period_end
    {
        return Ok(true);
    }
    if s.current_period_end.is_some() && s.current_period_end != row.current_period_end {
        return Ok(true);
    }
    if let Some(price) = &s.price {
        if let Some(plan) = tx.plan_by_price(price)? {
            return Ok(plan.id != row.plan_id);
        }
    }
    Ok(false)
}

fn tenant_status(tx: &mut dyn WebhookTx, sub: &Subscription) -> Result<Option<String>, RepoError> {
    Ok(tx
        .lock_tenant(sub.tenant_id)?
        .map(|t| t.status.as_str().to_owned()))
}

/// Reconciles one subscription with Stripe's state of it, read at `read_at` (see the
/// module docs). A subscription we do not know is taken in only while it is live at
/// Stripe (a missed creation); a canceled one we never knew stays unknown.
pub(crate) fn reconcile_subscription(
    tx: &mut dyn WebhookTx,
    s: &SubscriptionSnapshot,
    read_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<Correction>, RepoError> {
    let Some(status) = s.status else {
        return Ok(Vec::new());
    };
    let before = tx.lock_subscription(&s.subscription)?;
    match &before {
        None if !status.is_live() => return Ok(Vec::new()),
        None => {}
        Some(row) => {
            if row.last_event_at.is_some_and(|newest| newest >= read_at) {
                return Ok(Vec::new());
            }
            if !subscription_differs(tx, row, s)? {
                return Ok(Vec::new());
            }
        }
    }
    let tenant_before = match &before {
        Some(row) => tenant_status(tx, row)?,
        None => None,
    };
    let deleted = status == crate::model::SubscriptionStatus::Canceled;
    let event = synthetic(
        "reconcile.subscription",
        s.subscription.as_str(),
        read_at,
        if deleted {
            PaymentEvent::SubscriptionDeleted(s.clone())
        } else {
            PaymentEvent::SubscriptionUpdated(s.clone())
        },
    )?;
    // `Refetched`: the read is Stripe's current state, applied as a settled tie would be
    // (the order guard above already refused anything not strictly newer).
    let outcome = subscription_changed(tx, &event, s, deleted, Delivery::Refetched, now)?;
    if !matches!(
        outcome,
        WorkOutcome::Applied(Applied {
            outcome: crate::model::EventOutcome::Processed,
            ..
        })
    ) {
        return Ok(Vec::new());
    }
    let Some(after) = tx.lock_subscription(&s.subscription)? else {
        return Ok(Vec::new());
    };
    let mut out = subscription_diff(s.subscription.as_str(), before.as_ref(), &after);
    let tenant_after = tenant_status(tx, &after)?;
    push(
        &mut out,
        CorrectionKind::Tenant,
        &after.tenant_id.to_string(),
        "status",
        tenant_before
            .or_else(|| before.is_none().then(String::new))
            .filter(|s| !s.is_empty()),
        tenant_after,
    );
    Ok(out)
}

/// Whether Stripe's invoice status is the local one (`overdue` is our word for an `open`
/// invoice whose payment failed).
fn same_status(local: InvoiceStatus, stripe: Option<&str>) -> bool {
    match stripe {
        Some("open") => matches!(local, InvoiceStatus::Open | InvoiceStatus::Overdue),
        Some(other) => local.as_str() == other,
        None => true,
    }
}

fn invoice_diff(object: &str, before: Option<&Invoice>, after: &Invoice) -> Vec<Correction> {
    let mut out = Vec::new();
    let k = CorrectionKind::Invoice;
    push(
        &mut out,
        k,
        object,
        "status",
        before.map(|b| b.status.as_str().to_owned()),
        Some(after.status.as_str().to_owned()),
    );
    push(
        &mut out,
        k,
        object,
        "amountDue",
        before.map(|b| b.amount_due.minor().to_string()),
        Some(after.amount_due.minor().to_string()),
    );
    push(
        &mut out,
        k,
        object,
        "amountPaid",
        before.map(|b| b.amount_paid.minor().to_string()),
        Some(after.amount_paid.minor().to_string()),
    );
    push(
        &mut out,
        k,
        object,
        "paidAt",
        before.and_then(|b| ts(b.paid_at)),
        ts(after.paid_at),
    );
    out
}

/// Reconciles one invoice with Stripe's state of it, read at `read_at`, through the
/// invoice's state machine (so that a paid or void invoice is never reopened). An
/// invoice we do not know is mirrored only while it is open at Stripe.
pub(crate) fn reconcile_invoice(
    tx: &mut dyn WebhookTx,
    i: &InvoiceSnapshot,
    read_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Vec<Correction>, RepoError> {
    let stripe_status = i.status.as_deref();
    let before = tx.lock_invoice_by_ref(&i.invoice)?;
    match &before {
        None if stripe_status != Some("open") => return Ok(Vec::new()),
        None => {}
        Some(row) => {
            if row.last_event_at.is_some_and(|newest| newest >= read_at) {
                return Ok(Vec::new());
            }
            let same = same_status(row.status, stripe_status)
                && row.amount_due.minor() == i.amount_due
                && row.amount_paid.minor() == i.amount_paid;
            if same {
                return Ok(Vec::new());
            }
        }
    }
    let (change, event) = match stripe_status {
        Some("paid") => (InvoiceChange::Paid, PaymentEvent::InvoicePaid(i.clone())),
        Some("void") => (
            InvoiceChange::Voided,
            PaymentEvent::InvoiceVoided(i.clone()),
        ),
        Some("uncollectible") => (
            InvoiceChange::MarkedUncollectible,
            PaymentEvent::InvoiceMarkedUncollectible(i.clone()),
        ),
        _ => (
            InvoiceChange::Mirrored,
            PaymentEvent::InvoiceUpdated(i.clone()),
        ),
    };
    let event = synthetic("reconcile.invoice", i.invoice.as_str(), read_at, event)?;
    let applied = invoice_changed(tx, &event, i, change, now)?;
    if applied.outcome != crate::model::EventOutcome::Processed {
        return Ok(Vec::new());
    }
    let Some(after) = tx.lock_invoice_by_ref(&i.invoice)? else {
        return Ok(Vec::new());
    };
    Ok(invoice_diff(i.invoice.as_str(), before.as_ref(), &after))
}

/// The checkout return: a completed session read from Stripe, applied exactly as its
/// `checkout.session.completed` is. Whichever of the two comes first makes the change;
/// the rules make the second a no-op (the subscription row exists, the tenant is
/// settled). `read_at` dates a subscription row it creates.
pub(crate) fn checkout_return(
    tx: &mut dyn WebhookTx,
    c: &CheckoutCompleted,
    read_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Applied, RepoError> {
    let event = synthetic(
        "reconcile.checkout_session",
        c.session.as_str(),
        read_at,
        PaymentEvent::CheckoutCompleted(c.clone()),
    )?;
    checkout_completed(tx, &event, c, false, now)
}
