//! Applying Stripe's events: each exactly once, tolerant of duplicates and disorder, and
//! never half-done.
//!
//! (One file of about 880 lines for now: the rules of the seven event types still stand
//! together here; splitting them by object — subscriptions, invoices, payments — is the
//! re-room's open item, left for when the lifecycle's event types arrive.)
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
//!     final, so a failure event tied with a success can never undo the payment.
//! * **Atomicity.** Effects run in one transaction through [`WebhookTx`]; any error rolls
//!   everything back, the ledger row included, and the delivery answers 5xx so that Stripe
//!   retries. What a redelivery cannot fix (no tenant, an unknown price, an amount that
//!   does not match) commits as `unmatched` or `failed` with the reason, for an operator.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use thiserror::Error;
use tracing::{error, warn};

use crate::ids::{EventId, InvoiceId, PaymentId, SubscriptionId, SubscriptionRef, TenantId};
use crate::model::{
    EventOutcome, Invoice, InvoiceNumber, InvoiceStatus, Payment, PaymentStatus, PlanKey,
    Subscription, SubscriptionStatus, Tenant, TenantStatus,
};
use crate::money::{Currency, Money};
use crate::notification::{NewNotification, NotificationBody};
use crate::ports::{Applied, BoxError, NewLedgerEntry, RepoError, WebhookTx};
use crate::webhook::{
    CheckoutCompleted, InvoiceSnapshot, PaymentEvent, PaymentIntentSnapshot, ProviderEvent,
    SignatureError, SubscriptionSnapshot, TenantHints,
};

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

/// Raised inside the transaction when an event about a subscription has the same
/// `created` as the newest one applied: the transaction is rolled back and the service
/// settles the tie with Stripe's current state.
#[derive(Debug, Error)]
#[error("same-second tie on subscription {0}")]
pub struct SameSecondTie(pub SubscriptionRef);

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

/// Applies one event inside the transaction `tx`. Written to be re-run from the start
/// after a deadlock: it keeps no state outside `tx`.
pub(crate) fn apply_event(
    tx: &mut dyn WebhookTx,
    event: &ProviderEvent,
    entry: &NewLedgerEntry,
    delivery: Delivery,
    now: DateTime<Utc>,
) -> Result<Applied, RepoError> {
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
            return Ok(applied(EventOutcome::Duplicate, None));
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
            effects(tx, event, delivery, now)?
        }
    };
    if rewrite || result.outcome != entry.outcome || result.detail.is_some() {
        tx.set_event_outcome(&event.id, &result, now)?;
    }
    Ok(result)
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
) -> Result<Applied, RepoError> {
    match &event.event {
        PaymentEvent::Ignored => Ok(applied(EventOutcome::Ignored, None)),
        PaymentEvent::CheckoutCompleted(c) => checkout_completed(tx, event, c, now),
        PaymentEvent::SubscriptionUpdated(s) => {
            subscription_changed(tx, event, s, false, delivery, now)
        }
        PaymentEvent::SubscriptionDeleted(s) => {
            subscription_changed(tx, event, s, true, delivery, now)
        }
        PaymentEvent::InvoicePaid(i) => invoice_paid(tx, event, i, now),
        PaymentEvent::InvoicePaymentFailed(i) => invoice_failed(tx, event, i, now),
        PaymentEvent::PaymentSucceeded(p) => payment_succeeded(tx, event, p, now),
        PaymentEvent::PaymentFailed(p) => payment_failed(tx, event, p, now),
    }
}

/// The tenant named by the hints, in the SPEC's order: object metadata, checkout's
/// `client_reference_id`, the subscription's metadata, then the known Stripe customer.
fn resolve_tenant(
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
        match crate::ids::TenantId::parse(raw) {
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

/// A tenant becomes `active` with a live subscription, and `cancelled` once nothing live
/// is left; an operator's `suspended` is never overridden.
///
/// Runs under the tenant's row lock, so that two events about one tenant decide its
/// status one after the other: a deletion of an old subscription racing the checkout of
/// a new one must not leave the tenant `cancelled`. The Stripe customer is recorded
/// unless another tenant holds it; only a checkout replaces a known one (an event about
/// an older subscription never flips it back). Returns a note for the ledger when
/// something was left out.
fn settle_tenant(
    tx: &mut dyn WebhookTx,
    tenant: TenantId,
    sub: &Subscription,
    customer: Option<&crate::ids::CustomerRef>,
    replace_customer: bool,
    now: DateTime<Utc>,
) -> Result<Option<String>, RepoError> {
    let Some(mut tenant) = tx.lock_tenant(tenant)? else {
        return Ok(Some(format!("tenant {tenant} vanished")));
    };
    let before = (tenant.status, tenant.customer.clone());
    let mut note = None;
    if let Some(c) = customer {
        if tenant.customer.as_ref() != Some(c) && (replace_customer || tenant.customer.is_none()) {
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
    if tenant.status != TenantStatus::Suspended {
        if sub.status.is_live() {
            tenant.status = TenantStatus::Active;
        } else if sub.status == SubscriptionStatus::Canceled
            && !tx.has_other_live_subscription(tenant.id, sub.id)?
        {
            tenant.status = TenantStatus::Cancelled;
        }
    }
    if (tenant.status, tenant.customer.clone()) != before {
        tenant.updated_at = now;
        tx.save_tenant(&tenant)?;
    }
    Ok(note)
}

fn processed_with(note: Option<String>) -> Applied {
    applied(EventOutcome::Processed, note)
}

/// A tenant's second live subscription: Stripe bills both, so an operator must cancel
/// one. Applied and called out, not refused, because the subscription exists at Stripe
/// whatever we decide here. Checked under the tenant's lock (taken by `settle_tenant`),
/// so that two subscriptions turning live at once cannot each miss the other.
fn second_live_subscription(
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

/// The ledger note of a checkout whose payment is still on its way.
const AWAITING_PAYMENT: &str = "payment pending (a delayed payment method): the tenant is \
                                activated when Stripe reports the subscription active";

fn checkout_completed(
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

fn subscription_changed(
    tx: &mut dyn WebhookTx,
    event: &ProviderEvent,
    s: &SubscriptionSnapshot,
    deleted: bool,
    delivery: Delivery,
    now: DateTime<Utc>,
) -> Result<Applied, RepoError> {
    let status = if deleted {
        SubscriptionStatus::Canceled
    } else if let Some(status) = s.status {
        status
    } else {
        return Ok(unmatched(format!(
            "unknown subscription status '{}'",
            quote(&s.status_raw)
        )));
    };
    let existing = tx.lock_subscription(&s.subscription)?;
    if let Some(row) = &existing {
        if let Some(newest) = row.last_event_at {
            if event.created < newest {
                return Ok(stale(event.created, newest));
            }
            if event.created == newest && matches!(delivery, Delivery::Webhook | Delivery::Replay) {
                return Err(RepoError::Unexpected(Box::new(SameSecondTie(
                    s.subscription.clone(),
                ))));
            }
        }
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
                subscription_ref: Some(s.subscription.clone()),
                customer: None,
                last_event_at: None,
                created_at: now,
                updated_at: now,
            }
        }
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

    let note = settle_tenant(tx, sub.tenant_id, &sub, s.customer.as_ref(), false, now)?;
    if status.is_live() && !was_live && tx.has_other_live_subscription(sub.tenant_id, sub.id)? {
        return Ok(second_live_subscription(
            sub.tenant_id,
            &s.subscription,
            note,
        ));
    }
    Ok(processed_with(note))
}

/// The local invoice an invoice event is about: by Stripe id, then by our id in its
/// metadata, then by the PaymentIntent collecting it.
fn locate_invoice(
    tx: &mut dyn WebhookTx,
    i: &InvoiceSnapshot,
) -> Result<Option<Invoice>, RepoError> {
    if let Some(found) = tx.lock_invoice_by_ref(&i.invoice)? {
        return Ok(Some(found));
    }
    if let Some(id) = i
        .local_invoice
        .as_deref()
        .and_then(|s| InvoiceId::parse(s).ok())
    {
        if let Some(found) = tx.lock_invoice(id)? {
            return Ok(Some(found));
        }
    }
    if let Some(pi) = &i.payment_intent {
        return tx.lock_invoice_by_payment_intent(pi);
    }
    Ok(None)
}

/// The local invoice, or a new one mirroring Stripe's; `Err` holds why neither works.
fn invoice_for(
    tx: &mut dyn WebhookTx,
    i: &InvoiceSnapshot,
    now: DateTime<Utc>,
) -> Result<Result<Invoice, Applied>, RepoError> {
    if let Some(found) = locate_invoice(tx, i)? {
        return Ok(Ok(found));
    }
    let tenant = match resolve_tenant(tx, &i.tenant)? {
        Ok(t) => t,
        Err(reason) => return Ok(Err(unmatched(reason))),
    };
    let Ok(currency) = Currency::parse(&i.currency) else {
        return Ok(Err(flagged(format!(
            "unknown currency '{}'",
            quote(&i.currency)
        ))));
    };
    let (Ok(amount_due), Ok(zero)) = (Money::new(i.amount_due, currency), Money::new(0, currency))
    else {
        return Ok(Err(flagged(format!("negative amount {}", i.amount_due))));
    };
    let number = i
        .number
        .as_deref()
        .and_then(|n| InvoiceNumber::parse(n).ok())
        .or_else(|| InvoiceNumber::parse(i.invoice.as_str()).ok());
    let Some(number) = number else {
        return Ok(Err(flagged(format!(
            "invoice {} has no usable number",
            i.invoice
        ))));
    };
    let subscription_id = match &i.subscription {
        Some(r) => tx.lock_subscription(r)?.map(|s| s.id),
        None => None,
    };
    Ok(Ok(Invoice {
        id: InvoiceId::new(),
        tenant_id: tenant.id,
        subscription_id,
        number,
        status: InvoiceStatus::Open,
        amount_due,
        amount_paid: zero,
        due_date: i.due_date.map(|d| d.date_naive()),
        description: None,
        paid_at: None,
        invoice_ref: Some(i.invoice.clone()),
        payment_intent: None,
        last_event_at: None,
        created_at: now,
        updated_at: now,
    }))
}

fn save_invoice_or_flag(tx: &mut dyn WebhookTx, invoice: &Invoice) -> Result<Applied, RepoError> {
    match tx.save_invoice(invoice) {
        Ok(()) => Ok(processed()),
        Err(RepoError::Conflict(field)) => Ok(flagged(format!(
            "invoice {} clashes with another invoice on its {field}",
            invoice.number
        ))),
        Err(e) => Err(e),
    }
}

fn invoice_paid(
    tx: &mut dyn WebhookTx,
    event: &ProviderEvent,
    i: &InvoiceSnapshot,
    now: DateTime<Utc>,
) -> Result<Applied, RepoError> {
    let mut invoice = match invoice_for(tx, i, now)? {
        Ok(inv) => inv,
        Err(outcome) => return Ok(outcome),
    };
    if let Some(newest) = invoice.last_event_at {
        if event.created < newest {
            return Ok(stale(event.created, newest));
        }
    }
    let currency = invoice.amount_due.currency();
    if !i.currency.eq_ignore_ascii_case(currency.as_str()) {
        return Ok(flagged(format!(
            "currency mismatch on invoice {}: it is in {currency}, Stripe was paid in {}",
            invoice.number,
            quote(&i.currency)
        )));
    }
    if i.amount_paid < invoice.amount_due.minor() {
        return Ok(flagged(format!(
            "amount mismatch on invoice {}: {} due, Stripe reports {} paid",
            invoice.number,
            invoice.amount_due.minor(),
            i.amount_paid
        )));
    }
    if invoice.status != InvoiceStatus::Paid && !invoice.status.can_become(InvoiceStatus::Paid) {
        return Ok(flagged(format!(
            "invoice {} is {} but Stripe reports it paid",
            invoice.number,
            invoice.status.as_str()
        )));
    }
    if invoice.status != InvoiceStatus::Paid {
        invoice.status = InvoiceStatus::Paid;
        invoice.paid_at = Some(i.paid_at.unwrap_or(event.created));
    }
    invoice.amount_paid = Money::new(i.amount_paid, currency).unwrap_or(invoice.amount_paid);
    if invoice.payment_intent.is_none() {
        invoice.payment_intent.clone_from(&i.payment_intent);
    }
    invoice.invoice_ref = Some(i.invoice.clone());
    invoice.last_event_at = Some(event.created);
    invoice.updated_at = now;
    let saved = save_invoice_or_flag(tx, &invoice)?;
    if saved.outcome == EventOutcome::Processed && invoice.payment_intent.is_none() {
        // The event does not say which PaymentIntent paid it (API 2025-03-31.basil and
        // later): looked up at Stripe once this is committed (`crate::jobs::linker`).
        tx.request_payment_intent_lookup(invoice.id, now)?;
    }
    Ok(saved)
}

fn invoice_failed(
    tx: &mut dyn WebhookTx,
    event: &ProviderEvent,
    i: &InvoiceSnapshot,
    now: DateTime<Utc>,
) -> Result<Applied, RepoError> {
    let mut invoice = match invoice_for(tx, i, now)? {
        Ok(inv) => inv,
        Err(outcome) => return Ok(outcome),
    };
    if let Some(newest) = invoice.last_event_at {
        if event.created < newest {
            return Ok(stale(event.created, newest));
        }
    }
    if invoice.status != InvoiceStatus::Overdue
        && !invoice.status.can_become(InvoiceStatus::Overdue)
    {
        // Paid or void already (possibly by an event of the same second): final.
        return Ok(applied(
            EventOutcome::Processed,
            Some(format!("invoice is already {}", invoice.status.as_str())),
        ));
    }
    invoice.status = InvoiceStatus::Overdue;
    invoice.invoice_ref = Some(i.invoice.clone());
    invoice.last_event_at = Some(event.created);
    invoice.updated_at = now;
    let saved = save_invoice_or_flag(tx, &invoice)?;
    if saved.outcome != EventOutcome::Processed {
        return Ok(saved);
    }
    tx.enqueue_notification(&NewNotification {
        id: crate::ids::NotificationId::new(),
        dedupe_key: format!("invoice.payment_failed:{}:{}", i.invoice, i.attempt_count),
        occurred_at: event.created,
        body: NotificationBody::InvoicePaymentFailed {
            tenant: invoice.tenant_id,
            invoice: invoice.id,
            number: invoice.number.to_string(),
            invoice_ref: invoice.invoice_ref.clone(),
            amount_due: invoice.amount_due,
            attempt: i.attempt_count,
        },
    })?;
    Ok(processed())
}

/// The invoice a PaymentIntent pays (by our id in its metadata, else by the intent) and
/// the tenant it is for.
fn payment_context(
    tx: &mut dyn WebhookTx,
    p: &PaymentIntentSnapshot,
) -> Result<Result<(Tenant, Option<Invoice>), String>, RepoError> {
    let invoice = match p
        .local_invoice
        .as_deref()
        .and_then(|s| InvoiceId::parse(s).ok())
    {
        Some(id) => tx.lock_invoice(id)?,
        None => tx.lock_invoice_by_payment_intent(&p.payment_intent)?,
    };
    let tenant = match (&p.tenant.metadata, &invoice) {
        (None, Some(inv)) => Ok(tx.ensure_tenant(inv.tenant_id)?),
        _ => resolve_tenant(tx, &p.tenant)?,
    };
    Ok(tenant.map(|t| (t, invoice)))
}

fn payment_succeeded(
    tx: &mut dyn WebhookTx,
    event: &ProviderEvent,
    p: &PaymentIntentSnapshot,
    now: DateTime<Utc>,
) -> Result<Applied, RepoError> {
    let (tenant, invoice) = match payment_context(tx, p)? {
        Ok(found) => found,
        Err(reason) => return Ok(unmatched(reason)),
    };
    let Ok(currency) = Currency::parse(&p.currency) else {
        return Ok(flagged(format!(
            "unknown currency '{}'",
            quote(&p.currency)
        )));
    };
    let Ok(received) = Money::new(p.amount_received, currency) else {
        return Ok(flagged(format!("negative amount {}", p.amount_received)));
    };
    let payment = Payment {
        id: PaymentId::new(),
        tenant_id: tenant.id,
        invoice_id: invoice.as_ref().map(|i| i.id),
        amount: received,
        status: PaymentStatus::Succeeded,
        failure_code: None,
        failure_message: None,
        payment_intent: Some(p.payment_intent.clone()),
        charge: p.charge.clone(),
        created_at: now,
    };
    if !tx.insert_payment(&payment, &event.id)? {
        return Ok(applied(
            EventOutcome::Processed,
            Some("payment was already recorded".into()),
        ));
    }
    let Some(mut invoice) = invoice else {
        return Ok(processed());
    };
    if invoice.status == InvoiceStatus::Paid {
        return Ok(processed());
    }
    let Ok(total) = invoice.amount_paid.checked_add(received) else {
        return Ok(flagged(format!(
            "currency mismatch on invoice {}: it is in {}, the payment in {currency}",
            invoice.number,
            invoice.amount_due.currency()
        )));
    };
    if !invoice.status.can_become(InvoiceStatus::Paid) {
        return Ok(flagged(format!(
            "payment received for invoice {} in status {}",
            invoice.number,
            invoice.status.as_str()
        )));
    }
    invoice.amount_paid = total;
    if total.minor() >= invoice.amount_due.minor() {
        invoice.status = InvoiceStatus::Paid;
        invoice.paid_at = Some(event.created);
    }
    if invoice.payment_intent.is_none() {
        invoice.payment_intent = Some(p.payment_intent.clone());
    }
    invoice.updated_at = now;
    save_invoice_or_flag(tx, &invoice)
}

fn payment_failed(
    tx: &mut dyn WebhookTx,
    event: &ProviderEvent,
    p: &PaymentIntentSnapshot,
    now: DateTime<Utc>,
) -> Result<Applied, RepoError> {
    warn!(
        stripe.payment_intent = %p.payment_intent,
        failure.code = p.failure_code.as_deref().unwrap_or("unknown"),
        "payment attempt failed"
    );
    let (tenant, invoice) = match payment_context(tx, p)? {
        Ok(found) => found,
        Err(reason) => return Ok(unmatched(reason)),
    };
    let amount = Currency::parse(&p.currency)
        .ok()
        .and_then(|c| Money::new(p.amount, c).ok());
    let Some(amount) = amount else {
        return Ok(flagged(format!(
            "unreadable amount {} {}",
            p.amount,
            quote(&p.currency)
        )));
    };
    let attempt = Payment {
        id: PaymentId::new(),
        tenant_id: tenant.id,
        invoice_id: invoice.map(|i| i.id),
        amount,
        status: PaymentStatus::Failed,
        failure_code: p.failure_code.clone(),
        failure_message: p.failure_message.clone(),
        payment_intent: Some(p.payment_intent.clone()),
        charge: p.charge.clone(),
        created_at: now,
    };
    tx.insert_payment(&attempt, &event.id)?;
    Ok(processed())
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

mod receive;

#[cfg(test)]
mod tests;
