//! Webhook events: the envelope, with `data.object` kept raw, and the objects the events we
//! act on carry.

use serde::Deserialize;

use super::{Expandable, InvoicePayment, List, Metadata};

/// The event envelope; `data.object` stays raw until the type says what it is.
#[derive(Debug, Deserialize)]
pub(crate) struct EventEnvelope<'a> {
    pub(crate) id: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) created: i64,
    pub(crate) api_version: Option<String>,
    pub(crate) livemode: Option<bool>,
    #[serde(borrow)]
    pub(crate) data: Option<EventData<'a>>,
}

/// `data`, with the object kept as raw JSON text.
#[derive(Debug, Deserialize)]
pub(crate) struct EventData<'a> {
    #[serde(borrow)]
    pub(crate) object: Option<&'a serde_json::value::RawValue>,
}

/// `checkout.session` inside `checkout.session.completed`.
#[derive(Debug, Deserialize)]
pub(crate) struct CheckoutSessionObject {
    pub(crate) id: String,
    /// Stripe's object type (`invoice`, …), checked against the event type.
    pub(crate) object: Option<String>,
    pub(crate) client_reference_id: Option<String>,
    pub(crate) metadata: Option<Metadata>,
    pub(crate) customer: Option<Expandable>,
    pub(crate) subscription: Option<Expandable>,
    /// `paid`, `unpaid` or `no_payment_required`.
    pub(crate) payment_status: Option<String>,
}

/// `invoice` in either shape: dahlia (`parent.subscription_details`, `payments`) or
/// pre-basil (top-level `subscription`, `payment_intent`, `subscription_details`).
#[derive(Debug, Deserialize)]
pub(crate) struct InvoiceObject {
    pub(crate) id: String,
    /// Stripe's object type (`invoice`, …), checked against the event type.
    pub(crate) object: Option<String>,
    pub(crate) number: Option<String>,
    pub(crate) customer: Option<Expandable>,
    pub(crate) metadata: Option<Metadata>,
    pub(crate) parent: Option<InvoiceParent>,
    pub(crate) subscription: Option<Expandable>,
    pub(crate) subscription_details: Option<SubscriptionDetails>,
    pub(crate) payment_intent: Option<Expandable>,
    pub(crate) payments: Option<List<InvoicePayment>>,
    #[serde(default)]
    pub(crate) amount_due: i64,
    #[serde(default)]
    pub(crate) amount_paid: i64,
    #[serde(default)]
    pub(crate) currency: String,
    pub(crate) status_transitions: Option<StatusTransitions>,
    #[serde(default)]
    pub(crate) attempt_count: i64,
    pub(crate) due_date: Option<i64>,
    pub(crate) created: Option<i64>,
    /// `draft`, `open`, `paid`, `uncollectible` or `void`.
    pub(crate) status: Option<String>,
    pub(crate) hosted_invoice_url: Option<String>,
    pub(crate) invoice_pdf: Option<String>,
    /// Before basil (and from the emulator); later versions record such payments as
    /// payment records, which the event does not carry.
    pub(crate) paid_out_of_band: Option<bool>,
}

/// `invoice.parent`.
#[derive(Debug, Deserialize)]
pub(crate) struct InvoiceParent {
    pub(crate) subscription_details: Option<SubscriptionDetails>,
}

/// `invoice.parent.subscription_details` (or the older top-level `subscription_details`,
/// which carried only `metadata`).
#[derive(Debug, Deserialize)]
pub(crate) struct SubscriptionDetails {
    pub(crate) subscription: Option<Expandable>,
    pub(crate) metadata: Option<Metadata>,
}

/// `invoice.status_transitions`.
#[derive(Debug, Deserialize)]
pub(crate) struct StatusTransitions {
    pub(crate) paid_at: Option<i64>,
}

/// `subscription`.
#[derive(Debug, Deserialize)]
pub(crate) struct SubscriptionObject {
    pub(crate) id: String,
    /// Stripe's object type (`invoice`, …), checked against the event type.
    pub(crate) object: Option<String>,
    pub(crate) customer: Option<Expandable>,
    pub(crate) metadata: Option<Metadata>,
    #[serde(default)]
    pub(crate) status: String,
    pub(crate) items: Option<List<SubscriptionItem>>,
    pub(crate) current_period_start: Option<i64>,
    pub(crate) current_period_end: Option<i64>,
    pub(crate) cancel_at_period_end: Option<bool>,
    pub(crate) canceled_at: Option<i64>,
    pub(crate) ended_at: Option<i64>,
    pub(crate) trial_end: Option<i64>,
}

/// `subscription_item`.
#[derive(Debug, Deserialize)]
pub(crate) struct SubscriptionItem {
    /// `si_...` (issue 16: a plan change replaces this item's price).
    pub(crate) id: Option<String>,
    pub(crate) price: Option<Expandable>,
    pub(crate) current_period_start: Option<i64>,
    pub(crate) current_period_end: Option<i64>,
}

/// `payment_intent` inside `payment_intent.*` events.
#[derive(Debug, Deserialize)]
pub(crate) struct PaymentIntentObject {
    pub(crate) id: String,
    /// Stripe's object type (`invoice`, …), checked against the event type.
    pub(crate) object: Option<String>,
    #[serde(default)]
    pub(crate) amount: i64,
    #[serde(default)]
    pub(crate) amount_received: i64,
    #[serde(default)]
    pub(crate) currency: String,
    pub(crate) customer: Option<Expandable>,
    pub(crate) metadata: Option<Metadata>,
    pub(crate) latest_charge: Option<Expandable>,
    pub(crate) last_payment_error: Option<LastPaymentError>,
}

/// `payment_intent.last_payment_error` (same shape as an API error).
#[derive(Debug, Deserialize)]
pub(crate) struct LastPaymentError {
    pub(crate) code: Option<String>,
    pub(crate) decline_code: Option<String>,
    pub(crate) message: Option<String>,
    pub(crate) charge: Option<Expandable>,
}

/// `customer` inside `customer.deleted` (the deleted customer, with its metadata).
#[derive(Debug, Deserialize)]
pub(crate) struct CustomerObject {
    pub(crate) id: String,
    /// Stripe's object type (`customer`), checked against the event type.
    pub(crate) object: Option<String>,
    pub(crate) metadata: Option<Metadata>,
}

// ---- refunds and disputes (issue 14) ----

/// `charge` inside `charge.refunded`. Its `refunds` list is included in the 2026
/// fixtures; without it, the refunds' own events carry them.
#[derive(Debug, Deserialize)]
pub(crate) struct ChargeObject {
    pub(crate) id: String,
    /// Stripe's object type, checked against the event type.
    pub(crate) object: Option<String>,
    pub(crate) payment_intent: Option<Expandable>,
    #[serde(default)]
    pub(crate) amount_refunded: i64,
    pub(crate) refunds: Option<List<RefundObject>>,
}

/// `refund` inside `refund.*` (and a charge's `refunds` list).
#[derive(Debug, Deserialize)]
pub(crate) struct RefundObject {
    pub(crate) id: String,
    /// Stripe's object type, checked against the event type.
    pub(crate) object: Option<String>,
    pub(crate) charge: Option<Expandable>,
    pub(crate) payment_intent: Option<Expandable>,
    #[serde(default)]
    pub(crate) amount: i64,
    #[serde(default)]
    pub(crate) currency: String,
    #[serde(default)]
    pub(crate) status: String,
    pub(crate) reason: Option<String>,
}

/// `dispute` inside `charge.dispute.*`.
#[derive(Debug, Deserialize)]
pub(crate) struct DisputeObject {
    pub(crate) id: String,
    /// Stripe's object type, checked against the event type.
    pub(crate) object: Option<String>,
    pub(crate) charge: Option<Expandable>,
    pub(crate) payment_intent: Option<Expandable>,
    #[serde(default)]
    pub(crate) amount: i64,
    #[serde(default)]
    pub(crate) currency: String,
    #[serde(default)]
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) reason: String,
}
