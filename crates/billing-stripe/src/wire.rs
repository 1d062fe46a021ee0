//! Stripe's JSON, as far as we read it: lenient serde types for API responses, error
//! bodies and webhook objects.
//!
//! Leniency rules (FACTS §1, SPEC §5): unknown fields are ignored (serde's default), enums
//! that Stripe may extend are kept as `String`, almost everything is an `Option` (serde
//! reads a missing `Option` field as `None`, so those need no `#[serde(default)]`; the
//! attribute stays on the few required-looking fields a payload may still omit), and
//! expandable fields accept both an id and an expanded object. These types never leave the
//! crate.

use serde::Deserialize;

/// An expandable reference: an id string, or the expanded object carrying an `id`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub(crate) enum Expandable {
    /// Not expanded.
    Id(String),
    /// Expanded (or a deleted customer stub).
    Object {
        /// The object's id.
        id: String,
    },
}

impl Expandable {
    pub(crate) fn id(&self) -> &str {
        match self {
            Self::Id(id) | Self::Object { id } => id,
        }
    }
}

/// The metadata keys this service writes; every other key is ignored.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Metadata {
    #[serde(rename = "tenantId")]
    pub(crate) tenant_id: Option<String>,
    #[serde(rename = "planId")]
    pub(crate) plan_id: Option<String>,
    #[serde(rename = "invoiceId")]
    pub(crate) invoice_id: Option<String>,
}

/// A Stripe list (`{"object":"list","data":[…]}`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct List<T> {
    #[serde(default = "Vec::new")]
    pub(crate) data: Vec<T>,
}

impl<T> Default for List<T> {
    fn default() -> Self {
        Self { data: Vec::new() }
    }
}

// ---------------------------------------------------------------------------------------
// Errors

/// `{"error": {…}}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ErrorEnvelope {
    pub(crate) error: ErrorBody,
}

/// The error object; only `type` is required by the spec, and we do not even insist.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ErrorBody {
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
    pub(crate) code: Option<String>,
    pub(crate) decline_code: Option<String>,
    pub(crate) message: Option<String>,
    pub(crate) param: Option<String>,
}

// ---------------------------------------------------------------------------------------
// API responses

/// `checkout.session` as created.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CheckoutSessionResponse {
    pub(crate) id: String,
    pub(crate) url: Option<String>,
}

/// `checkout.session`, as far as its lifecycle goes (expired or retrieved).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct CheckoutSessionStatus {
    /// `open`, `complete` or `expired` (null in rare cases).
    pub(crate) status: Option<String>,
}

/// `billing_portal.session` as created.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PortalSessionResponse {
    pub(crate) url: Option<String>,
}

/// `payment_intent`, the fields the domain's `PaymentIntentInfo` needs.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PaymentIntentResponse {
    pub(crate) id: String,
    pub(crate) client_secret: Option<String>,
    #[serde(default)]
    pub(crate) status: String,
    pub(crate) amount: i64,
    pub(crate) currency: String,
}

/// `invoice` retrieved with `expand[]=payments`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct InvoicePaymentsResponse {
    pub(crate) payments: Option<List<InvoicePayment>>,
    /// Pre-basil shape.
    pub(crate) payment_intent: Option<Expandable>,
}

impl InvoicePaymentsResponse {
    /// The first PaymentIntent named by an (expanded) invoice payment, else the older
    /// top-level field.
    pub(crate) fn first_payment_intent(&self) -> Option<&str> {
        first_payment_intent(self.payments.as_ref(), self.payment_intent.as_ref())
    }
}

/// An `invoice_payment` inside `invoice.payments`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct InvoicePayment {
    pub(crate) payment: Option<InvoicePaymentTarget>,
    /// The invoice's current payment (Stripe keeps earlier, canceled attempts listed).
    pub(crate) is_default: Option<bool>,
}

/// `invoice_payment.payment`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct InvoicePaymentTarget {
    pub(crate) payment_intent: Option<Expandable>,
}

pub(crate) fn first_payment_intent<'a>(
    payments: Option<&'a List<InvoicePayment>>,
    top_level: Option<&'a Expandable>,
) -> Option<&'a str> {
    let intents = || payments.into_iter().flat_map(|l| l.data.iter());
    let intent = |p: &'a InvoicePayment| p.payment.as_ref()?.payment_intent.as_ref();
    intents()
        .filter(|p| p.is_default == Some(true))
        .find_map(intent)
        .or_else(|| intents().find_map(intent))
        .or(top_level)
        .map(Expandable::id)
}

// ---------------------------------------------------------------------------------------
// Webhook events

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
}

/// `subscription_item`.
#[derive(Debug, Deserialize)]
pub(crate) struct SubscriptionItem {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expandable_field_accepts_an_id_or_an_object() {
        let id: Expandable = serde_json::from_str(r#""pi_1""#).unwrap();
        let obj: Expandable =
            serde_json::from_str(r#"{"id":"pi_2","object":"payment_intent","x":[1]}"#).unwrap();

        assert_eq!(id.id(), "pi_1");
        assert_eq!(obj.id(), "pi_2");
    }

    #[test]
    fn invoice_payments_prefer_the_expanded_list_over_the_old_top_level_field() {
        let inv: InvoicePaymentsResponse = serde_json::from_str(
            r#"{"payment_intent":"pi_old","payments":{"data":[
                {"payment":{"type":"charge","charge":"ch_1"}},
                {"payment":{"type":"payment_intent","payment_intent":{"id":"pi_new"}}}]}}"#,
        )
        .unwrap();

        assert_eq!(inv.first_payment_intent(), Some("pi_new"));
    }

    #[test]
    fn an_invoice_without_payments_falls_back_to_the_old_field_or_none() {
        let old: InvoicePaymentsResponse =
            serde_json::from_str(r#"{"payment_intent":"pi_old"}"#).unwrap();
        let none: InvoicePaymentsResponse =
            serde_json::from_str(r#"{"payments":{"data":[]},"payment_intent":null}"#).unwrap();

        assert_eq!(old.first_payment_intent(), Some("pi_old"));
        assert_eq!(none.first_payment_intent(), None);
    }

    #[test]
    fn metadata_ignores_other_keys_and_null() {
        let m: Option<Metadata> = serde_json::from_str("null").unwrap();
        let m2: Metadata = serde_json::from_str(r#"{"tenantId":"t","other":"x"}"#).unwrap();

        assert!(m.is_none());
        assert_eq!(m2.tenant_id.as_deref(), Some("t"));
        assert_eq!(m2.plan_id, None);
    }
}
