//! `invoice.*`: the local invoice (found, or mirrored from Stripe's) follows the invoice
//! state machine. `created` / `finalized` / `updated` mirror it before payment, `paid` and
//! `payment_succeeded` pay it (the second changes nothing more), `voided` and
//! `marked_uncollectible` close it; a failure and a payment needing authentication are
//! notified once per attempt.
//!
//! On a same-second tie the state machine decides: statuses only move forward, and a
//! mirror never clears what an earlier event of that second set (number, URLs), so the
//! order of two events of one second cannot undo anything.

use chrono::{DateTime, Utc};

use super::tenant::resolve_tenant;
use super::{applied, flagged, processed, quote, stale, unmatched};
use crate::ids::{InvoiceId, NotificationId};
use crate::model::{EventOutcome, Invoice, InvoiceNumber, InvoiceStatus};
use crate::money::{Currency, Money};
use crate::notification::{NewNotification, NotificationBody};
use crate::ports::{Applied, RepoError, WebhookTx};
use crate::webhook::{InvoiceSnapshot, ProviderEvent};

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
    // A draft stays a draft until `invoice.finalized`; anything else starts open and moves
    // on through the state machine.
    let status = if i.status.as_deref() == Some("draft") {
        InvoiceStatus::Draft
    } else {
        InvoiceStatus::Open
    };
    Ok(Ok(Invoice {
        id: InvoiceId::new(),
        tenant_id: tenant.id,
        subscription_id,
        number,
        status,
        amount_due,
        amount_paid: zero,
        due_date: i.due_date.map(|d| d.date_naive()),
        description: None,
        paid_at: None,
        invoice_ref: Some(i.invoice.clone()),
        payment_intent: None,
        last_event_at: None,
        hosted_invoice_url: None,
        invoice_pdf_url: None,
        payment_intent_canceled: false,
        created_at: now,
        updated_at: now,
    }))
}

/// What an invoice event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum InvoiceChange {
    /// `invoice.paid` (or `invoice.payment_succeeded`).
    Paid,
    /// `invoice.payment_failed`.
    PaymentFailed,
    // ---- the lifecycle beyond the seven (issue 14) ----
    /// `invoice.created`, `invoice.finalized`, `invoice.updated`: mirrored before payment.
    Mirrored,
    /// `invoice.voided`.
    Voided,
    /// `invoice.marked_uncollectible`.
    MarkedUncollectible,
    /// `invoice.payment_action_required`.
    ActionRequired,
}

/// Applies an invoice event to the invoice it is about ([`invoice_for`]), unless the
/// event is older than the newest one applied to it.
pub(super) fn invoice_changed(
    tx: &mut dyn WebhookTx,
    event: &ProviderEvent,
    i: &InvoiceSnapshot,
    change: InvoiceChange,
    now: DateTime<Utc>,
) -> Result<Applied, RepoError> {
    let invoice = match invoice_for(tx, i, now)? {
        Ok(inv) => inv,
        Err(outcome) => return Ok(outcome),
    };
    if let Some(newest) = invoice.last_event_at {
        if event.created < newest {
            return Ok(stale(event.created, newest));
        }
    }
    match change {
        InvoiceChange::Paid => paid(tx, event, i, invoice, now),
        InvoiceChange::PaymentFailed => payment_failed(tx, event, i, invoice, now),
        InvoiceChange::Mirrored => mirrored(tx, event, i, invoice, now),
        InvoiceChange::Voided => closed(tx, event, i, invoice, InvoiceStatus::Void, now),
        InvoiceChange::MarkedUncollectible => {
            closed(tx, event, i, invoice, InvoiceStatus::Uncollectible, now)
        }
        InvoiceChange::ActionRequired => action_required(tx, event, i, invoice, now),
    }
}

pub(super) fn save_invoice_or_flag(
    tx: &mut dyn WebhookTx,
    invoice: &Invoice,
) -> Result<Applied, RepoError> {
    match tx.save_invoice(invoice) {
        Ok(()) => Ok(processed()),
        Err(RepoError::Conflict(field)) => Ok(flagged(format!(
            "invoice {} clashes with another invoice on its {field}",
            invoice.number
        ))),
        Err(e) => Err(e),
    }
}

fn paid(
    tx: &mut dyn WebhookTx,
    event: &ProviderEvent,
    i: &InvoiceSnapshot,
    mut invoice: Invoice,
    now: DateTime<Utc>,
) -> Result<Applied, RepoError> {
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
    let before = invoice.clone();
    if invoice.status != InvoiceStatus::Paid {
        invoice.status = InvoiceStatus::Paid;
        invoice.paid_at = Some(i.paid_at.unwrap_or(event.created));
        invoice.amount_paid = Money::new(i.amount_paid, currency).unwrap_or(invoice.amount_paid);
    }
    if invoice.payment_intent.is_none() && !i.paid_out_of_band {
        invoice.payment_intent.clone_from(&i.payment_intent);
    }
    invoice.invoice_ref = Some(i.invoice.clone());
    merge_links(&mut invoice, i);
    if invoice == before {
        // `invoice.paid` and `invoice.payment_succeeded` both come for one payment (and
        // `payment_intent.succeeded` may have paid it first): the second changes nothing.
        return Ok(applied(
            EventOutcome::Processed,
            Some("invoice is already paid".into()),
        ));
    }
    invoice.last_event_at = Some(
        event
            .created
            .max(before.last_event_at.unwrap_or(event.created)),
    );
    invoice.updated_at = now;
    let saved = save_invoice_or_flag(tx, &invoice)?;
    // Paid outside Stripe: there is no PaymentIntent to look up, and no payment row.
    if saved.outcome == EventOutcome::Processed
        && invoice.payment_intent.is_none()
        && !i.paid_out_of_band
    {
        // The event does not say which PaymentIntent paid it (API 2025-03-31.basil and
        // later): looked up at Stripe once this is committed (`crate::jobs::linker`).
        tx.request_payment_intent_lookup(invoice.id, now)?;
    }
    Ok(saved)
}

fn payment_failed(
    tx: &mut dyn WebhookTx,
    event: &ProviderEvent,
    i: &InvoiceSnapshot,
    mut invoice: Invoice,
    now: DateTime<Utc>,
) -> Result<Applied, RepoError> {
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
        id: NotificationId::new(),
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

/// Copies the hosted page and PDF links when the event has them; never clears them (a
/// draft's event of the same second as the finalisation has none).
fn merge_links(invoice: &mut Invoice, i: &InvoiceSnapshot) {
    if i.hosted_invoice_url.is_some() {
        invoice.hosted_invoice_url.clone_from(&i.hosted_invoice_url);
    }
    if i.invoice_pdf_url.is_some() {
        invoice.invoice_pdf_url.clone_from(&i.invoice_pdf_url);
    }
}

/// `invoice.created` / `finalized` / `updated`: number, amount due, due date and links
/// mirrored, `draft` → `open` once Stripe finalised it. Statuses past `open` come with
/// their own events (`paid`, `voided`, …) and are not taken from here.
fn mirrored(
    tx: &mut dyn WebhookTx,
    event: &ProviderEvent,
    i: &InvoiceSnapshot,
    mut invoice: Invoice,
    now: DateTime<Utc>,
) -> Result<Applied, RepoError> {
    let before = invoice.clone();
    let stripe_status = i.status.as_deref().and_then(InvoiceStatus::parse);
    if invoice.status == InvoiceStatus::Draft
        && stripe_status.is_some_and(|s| s != InvoiceStatus::Draft)
    {
        invoice.status = InvoiceStatus::Open;
    }
    if let Some(number) = i.number.as_deref() {
        match InvoiceNumber::parse(number) {
            Ok(n) => invoice.number = n,
            Err(_) => {
                return Ok(flagged(format!(
                    "invoice {} has an unusable number '{}'",
                    i.invoice,
                    quote(number)
                )))
            }
        }
    }
    // What is owed may change until something is paid; never after.
    if matches!(invoice.status, InvoiceStatus::Draft | InvoiceStatus::Open)
        && invoice.amount_paid.is_zero()
    {
        let currency = invoice.amount_due.currency();
        if !i.currency.eq_ignore_ascii_case(currency.as_str()) {
            return Ok(flagged(format!(
                "currency mismatch on invoice {}: it is in {currency}, Stripe says {}",
                invoice.number,
                quote(&i.currency)
            )));
        }
        match Money::new(i.amount_due, currency) {
            Ok(due) => invoice.amount_due = due,
            Err(_) => return Ok(flagged(format!("negative amount {}", i.amount_due))),
        }
    }
    if i.due_date.is_some() {
        invoice.due_date = i.due_date.map(|d| d.date_naive());
    }
    invoice.invoice_ref = Some(i.invoice.clone());
    merge_links(&mut invoice, i);
    invoice.last_event_at = Some(event.created);
    if invoice == before {
        return Ok(processed());
    }
    invoice.updated_at = now;
    save_invoice_or_flag(tx, &invoice)
}

/// `invoice.voided` / `invoice.marked_uncollectible`: nothing more is collected (an
/// uncollectible invoice may still be paid later, as at Stripe).
fn closed(
    tx: &mut dyn WebhookTx,
    event: &ProviderEvent,
    i: &InvoiceSnapshot,
    mut invoice: Invoice,
    to: InvoiceStatus,
    now: DateTime<Utc>,
) -> Result<Applied, RepoError> {
    if invoice.status == to {
        return Ok(applied(
            EventOutcome::Processed,
            Some(format!("invoice is already {}", to.as_str())),
        ));
    }
    if !invoice.status.can_become(to) {
        if invoice.status == InvoiceStatus::Void {
            return Ok(applied(
                EventOutcome::Processed,
                Some("invoice is already void".into()),
            ));
        }
        return Ok(flagged(format!(
            "invoice {} is {} but Stripe reports it {}",
            invoice.number,
            invoice.status.as_str(),
            to.as_str()
        )));
    }
    invoice.status = to;
    invoice.invoice_ref = Some(i.invoice.clone());
    merge_links(&mut invoice, i);
    invoice.last_event_at = Some(event.created);
    invoice.updated_at = now;
    save_invoice_or_flag(tx, &invoice)
}

/// `invoice.payment_action_required`: the customer must authenticate on the hosted
/// invoice page; notified once per invoice and attempt.
fn action_required(
    tx: &mut dyn WebhookTx,
    event: &ProviderEvent,
    i: &InvoiceSnapshot,
    mut invoice: Invoice,
    now: DateTime<Utc>,
) -> Result<Applied, RepoError> {
    if !invoice.status.is_payable() {
        return Ok(applied(
            EventOutcome::Processed,
            Some(format!("invoice is already {}", invoice.status.as_str())),
        ));
    }
    let before = invoice.clone();
    invoice.invoice_ref = Some(i.invoice.clone());
    merge_links(&mut invoice, i);
    if invoice != before || invoice.last_event_at.is_none_or(|at| at < event.created) {
        invoice.last_event_at = Some(event.created);
        invoice.updated_at = now;
        let saved = save_invoice_or_flag(tx, &invoice)?;
        if saved.outcome != EventOutcome::Processed {
            return Ok(saved);
        }
    }
    tx.enqueue_notification(&NewNotification {
        id: NotificationId::new(),
        dedupe_key: format!(
            "invoice.payment_action_required:{}:{}",
            i.invoice, i.attempt_count
        ),
        occurred_at: event.created,
        body: NotificationBody::InvoicePaymentActionRequired {
            tenant: invoice.tenant_id,
            invoice: invoice.id,
            number: invoice.number.to_string(),
            invoice_ref: invoice.invoice_ref.clone(),
            hosted_invoice_url: invoice.hosted_invoice_url.clone(),
            amount_due: invoice.amount_due,
            attempt: i.attempt_count,
        },
    })?;
    Ok(processed())
}
