//! API answers as far as we read them, and Stripe's error bodies.

use serde::Deserialize;

use super::{Expandable, List};

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
