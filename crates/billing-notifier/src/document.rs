//! The notification document: the JSON body POSTed to `NOTIFICATIONS_URL`, camelCase,
//! one per notification:
//!
//! ```json
//! {"id":"…","type":"invoice.payment_failed","occurredAt":"2026-01-01T00:00:00Z",
//!  "data":{"tenantId":"…","invoiceId":"…","invoiceNumber":"INV-7",
//!          "stripeInvoiceId":"in_…","amountDue":4200,"currency":"usd","attempt":2}}
//! ```
//!
//! The lifecycle's notifications have the same envelope: `invoice.payment_action_required`
//! (the invoice's fields as above plus `hostedInvoiceUrl`), `subscription.trial_will_end`
//! (`tenantId`, `subscriptionId`, `stripeSubscriptionId`, `trialEnd`) and
//! `checkout.async_payment_failed` (`tenantId`, `stripeCheckoutSessionId`,
//! `stripeSubscriptionId`). `dispute.created` carries `{"tenantId","paymentId",
//! "disputeId","stripeDisputeId","amount","currency","reason","status"}`.
//!
//! This wire format is the receivers' contract, so it lives with the adapter that talks to
//! them. It is rendered once, when the notification is enqueued: the outbox stores the
//! rendered document and [`HttpNotifier`](crate::HttpNotifier) sends it verbatim (see
//! `billing_postgres`'s `outbox` module for why the store keeps the bytes rather than
//! the facts). The composition root hands [`render`] to the store.

use billing_domain::notification::{NewNotification, NotificationBody};
use billing_domain::InvoiceRef;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// The JSON document a notification delivers.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NotificationDocument<'a, D: Serialize> {
    id: &'a Uuid,
    #[serde(rename = "type")]
    kind: &'static str,
    occurred_at: &'a DateTime<Utc>,
    data: D,
}

/// The `data` of an `invoice.payment_failed` notification.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NotificationData<'a> {
    tenant_id: &'a Uuid,
    invoice_id: &'a Uuid,
    invoice_number: &'a str,
    stripe_invoice_id: Option<&'a str>,
    amount_due: i64,
    currency: &'a str,
    attempt: i64,
}

// ---- refunds and disputes (issue 14) ----

/// The `data` of a `dispute.created` notification.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DisputeCreatedData<'a> {
    tenant_id: &'a Uuid,
    payment_id: &'a Uuid,
    dispute_id: &'a Uuid,
    stripe_dispute_id: &'a str,
    amount: i64,
    currency: &'a str,
    reason: &'a str,
    status: &'static str,
}

// ---- the lifecycle beyond the seven (issue 14) ----

/// The `data` of an `invoice.payment_action_required` notification: the invoice's fields
/// as for a failure, plus where the customer completes the payment.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ActionRequiredData<'a> {
    #[serde(flatten)]
    invoice: NotificationData<'a>,
    hosted_invoice_url: Option<&'a str>,
}

/// The `data` of a `subscription.trial_will_end` notification.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TrialWillEndData<'a> {
    tenant_id: &'a Uuid,
    subscription_id: Option<&'a Uuid>,
    stripe_subscription_id: &'a str,
    trial_end: Option<&'a DateTime<Utc>>,
}

/// The `data` of a `checkout.async_payment_failed` notification.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AsyncPaymentFailedData<'a> {
    tenant_id: &'a Uuid,
    stripe_checkout_session_id: &'a str,
    stripe_subscription_id: Option<&'a str>,
}

// ---- end of the lifecycle block ----

fn document<D: Serialize>(
    n: &NewNotification,
    data: D,
) -> Result<String, Box<dyn std::error::Error + Send + Sync + 'static>> {
    Ok(serde_json::to_string(&NotificationDocument {
        id: n.id.as_uuid(),
        kind: n.body.kind(),
        occurred_at: &n.occurred_at,
        data,
    })?)
}

/// The document receivers get for `n`, as JSON text.
///
/// # Errors
/// When serialization fails (it cannot for these types; the error is kept so that a
/// future field that can fail does not need a panic).
pub fn render(
    n: &NewNotification,
) -> Result<String, Box<dyn std::error::Error + Send + Sync + 'static>> {
    match &n.body {
        NotificationBody::InvoicePaymentFailed {
            tenant,
            invoice,
            number,
            invoice_ref,
            amount_due,
            attempt,
        } => document(
            n,
            NotificationData {
                tenant_id: tenant.as_uuid(),
                invoice_id: invoice.as_uuid(),
                invoice_number: number,
                stripe_invoice_id: invoice_ref.as_ref().map(InvoiceRef::as_str),
                amount_due: amount_due.minor(),
                currency: amount_due.currency().as_str(),
                attempt: *attempt,
            },
        ),
        // ---- the lifecycle beyond the seven (issue 14) ----
        NotificationBody::InvoicePaymentActionRequired {
            tenant,
            invoice,
            number,
            invoice_ref,
            hosted_invoice_url,
            amount_due,
            attempt,
        } => document(
            n,
            ActionRequiredData {
                invoice: NotificationData {
                    tenant_id: tenant.as_uuid(),
                    invoice_id: invoice.as_uuid(),
                    invoice_number: number,
                    stripe_invoice_id: invoice_ref.as_ref().map(InvoiceRef::as_str),
                    amount_due: amount_due.minor(),
                    currency: amount_due.currency().as_str(),
                    attempt: *attempt,
                },
                hosted_invoice_url: hosted_invoice_url.as_deref(),
            },
        ),
        NotificationBody::SubscriptionTrialWillEnd {
            tenant,
            subscription,
            subscription_ref,
            trial_end,
        } => document(
            n,
            TrialWillEndData {
                tenant_id: tenant.as_uuid(),
                subscription_id: subscription.as_ref().map(|s| s.as_uuid()),
                stripe_subscription_id: subscription_ref.as_str(),
                trial_end: trial_end.as_ref(),
            },
        ),
        NotificationBody::CheckoutAsyncPaymentFailed {
            tenant,
            session,
            subscription_ref,
        } => document(
            n,
            AsyncPaymentFailedData {
                tenant_id: tenant.as_uuid(),
                stripe_checkout_session_id: session.as_str(),
                stripe_subscription_id: subscription_ref.as_ref().map(|s| s.as_str()),
            },
        ),
        // ---- end of the lifecycle block ----
        // ---- refunds and disputes (issue 14) ----
        NotificationBody::DisputeCreated {
            tenant,
            payment,
            dispute,
            dispute_ref,
            amount,
            reason,
            status,
        } => document(
            n,
            DisputeCreatedData {
                tenant_id: tenant.as_uuid(),
                payment_id: payment.as_uuid(),
                dispute_id: dispute.as_uuid(),
                stripe_dispute_id: dispute_ref.as_str(),
                amount: amount.minor(),
                currency: amount.currency().as_str(),
                reason,
                status: status.as_str(),
            },
        ),
    }
}
