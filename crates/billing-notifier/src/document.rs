//! The notification document: the JSON body POSTed to `NOTIFICATIONS_URL`, camelCase,
//! one per notification:
//!
//! ```json
//! {"id":"…","type":"invoice.payment_failed","occurredAt":"2026-01-01T00:00:00Z",
//!  "data":{"tenantId":"…","invoiceId":"…","invoiceNumber":"INV-7",
//!          "stripeInvoiceId":"in_…","amountDue":4200,"currency":"usd","attempt":2}}
//! ```
//!
//! `dispute.created` carries `{"tenantId","paymentId","disputeId","stripeDisputeId",
//! "amount","currency","reason","status"}`.
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
struct NotificationDocument<'a> {
    id: &'a Uuid,
    #[serde(rename = "type")]
    kind: &'static str,
    occurred_at: &'a DateTime<Utc>,
    data: NotificationData<'a>,
}

/// The `data` of a notification, by its type.
#[derive(Serialize)]
#[serde(untagged)]
enum NotificationData<'a> {
    /// `invoice.payment_failed`.
    InvoicePaymentFailed(InvoicePaymentFailedData<'a>),
    // ---- refunds and disputes (issue 14) ----
    /// `dispute.created`.
    DisputeCreated(DisputeCreatedData<'a>),
}

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

/// The `data` of an `invoice.payment_failed` notification.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct InvoicePaymentFailedData<'a> {
    tenant_id: &'a Uuid,
    invoice_id: &'a Uuid,
    invoice_number: &'a str,
    stripe_invoice_id: Option<&'a str>,
    amount_due: i64,
    currency: &'a str,
    attempt: i64,
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
        } => {
            let currency = amount_due.currency();
            let document = serde_json::to_string(&NotificationDocument {
                id: n.id.as_uuid(),
                kind: n.body.kind(),
                occurred_at: &n.occurred_at,
                data: NotificationData::InvoicePaymentFailed(InvoicePaymentFailedData {
                    tenant_id: tenant.as_uuid(),
                    invoice_id: invoice.as_uuid(),
                    invoice_number: number,
                    stripe_invoice_id: invoice_ref.as_ref().map(InvoiceRef::as_str),
                    amount_due: amount_due.minor(),
                    currency: currency.as_str(),
                    attempt: *attempt,
                }),
            })?;
            Ok(document)
        }
        // ---- refunds and disputes (issue 14) ----
        NotificationBody::DisputeCreated {
            tenant,
            payment,
            dispute,
            dispute_ref,
            amount,
            reason,
            status,
        } => {
            let currency = amount.currency();
            let document = serde_json::to_string(&NotificationDocument {
                id: n.id.as_uuid(),
                kind: n.body.kind(),
                occurred_at: &n.occurred_at,
                data: NotificationData::DisputeCreated(DisputeCreatedData {
                    tenant_id: tenant.as_uuid(),
                    payment_id: payment.as_uuid(),
                    dispute_id: dispute.as_uuid(),
                    stripe_dispute_id: dispute_ref.as_str(),
                    amount: amount.minor(),
                    currency: currency.as_str(),
                    reason,
                    status: status.as_str(),
                }),
            })?;
            Ok(document)
        }
    }
}
