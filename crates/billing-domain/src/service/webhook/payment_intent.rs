//! `payment_intent.succeeded` and `.payment_failed`: each attempt recorded once as a
//! payment; a success pays the invoice it is for. `.canceled`: the invoice it collected
//! never hands it out again.

use chrono::{DateTime, Utc};
use tracing::warn;

use super::invoice::save_invoice_or_flag;
use super::tenant::resolve_tenant;
use super::{applied, flagged, processed, quote, unmatched};
use crate::ids::{InvoiceId, PaymentId};
use crate::model::{EventOutcome, Invoice, InvoiceStatus, Payment, PaymentStatus, Tenant};
use crate::money::{Currency, Money};
use crate::ports::{Applied, RepoError, WebhookTx};
use crate::webhook::{PaymentIntentSnapshot, ProviderEvent};

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

pub(super) fn payment_succeeded(
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
        amount_refunded: Money::zero(currency),
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

pub(super) fn payment_failed(
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
        amount_refunded: Money::zero(amount.currency()),
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

/// `payment_intent.canceled`: Stripe never lets it be paid again. The invoice it collects
/// keeps it (so that the next PaymentIntent's idempotency key names the one it replaces)
/// but marked canceled, and the next payment-intent call makes a new one. A canceled
/// PaymentIntent stays canceled, so the order of events does not matter here.
pub(super) fn payment_intent_canceled(
    tx: &mut dyn WebhookTx,
    p: &PaymentIntentSnapshot,
    now: DateTime<Utc>,
) -> Result<Applied, RepoError> {
    let (_tenant, invoice) = match payment_context(tx, p)? {
        Ok(found) => found,
        Err(reason) => return Ok(unmatched(reason)),
    };
    let Some(mut invoice) =
        invoice.filter(|i| i.payment_intent.as_ref() == Some(&p.payment_intent))
    else {
        return Ok(applied(
            EventOutcome::Processed,
            Some(format!("no invoice is collected by {}", p.payment_intent)),
        ));
    };
    if invoice.payment_intent_canceled {
        return Ok(applied(
            EventOutcome::Processed,
            Some("already recorded as canceled".into()),
        ));
    }
    invoice.payment_intent_canceled = true;
    invoice.updated_at = now;
    save_invoice_or_flag(tx, &invoice)
}
