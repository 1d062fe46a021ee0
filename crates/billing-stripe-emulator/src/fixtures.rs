//! Stripe's published fixture objects (openapi `fixtures3.json`, API `2026-07-29.dahlia`), the
//! templates every response is built from. Public so tests can build seeds
//! (`fake.add_invoice(fixtures::invoice())`) with the real field set.

use serde_json::{Map, Value};

const CHECKOUT_SESSION: &str = include_str!("../fixtures/checkout.session.json");
const BILLING_PORTAL_SESSION: &str = include_str!("../fixtures/billing_portal.session.json");
const PAYMENT_INTENT: &str = include_str!("../fixtures/payment_intent.json");
const INVOICE: &str = include_str!("../fixtures/invoice.json");
const INVOICE_PAYMENT: &str = include_str!("../fixtures/invoice_payment.json");
const SUBSCRIPTION: &str = include_str!("../fixtures/subscription.json");
const CUSTOMER: &str = include_str!("../fixtures/customer.json");

fn parse(text: &str) -> Value {
    // The files are embedded and covered by a test, so a parse failure cannot reach callers.
    serde_json::from_str(text).unwrap_or_else(|_| Value::Object(Map::new()))
}

/// The `checkout.session` fixture.
#[must_use]
pub fn checkout_session() -> Value {
    parse(CHECKOUT_SESSION)
}

/// The `billing_portal.session` fixture.
#[must_use]
pub fn billing_portal_session() -> Value {
    parse(BILLING_PORTAL_SESSION)
}

/// The `payment_intent` fixture.
#[must_use]
pub fn payment_intent() -> Value {
    parse(PAYMENT_INTENT)
}

/// The `invoice` fixture (placeholder values; override `id`, `status`, amounts, `parent`).
#[must_use]
pub fn invoice() -> Value {
    parse(INVOICE)
}

/// The `invoice_payment` fixture.
#[must_use]
pub fn invoice_payment() -> Value {
    parse(INVOICE_PAYMENT)
}

/// The `subscription` fixture.
#[must_use]
pub fn subscription() -> Value {
    parse(SUBSCRIPTION)
}

/// The `customer` fixture.
#[must_use]
pub fn customer() -> Value {
    parse(CUSTOMER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_fixture_parses_as_an_object_with_an_id() {
        for text in [
            CHECKOUT_SESSION,
            BILLING_PORTAL_SESSION,
            PAYMENT_INTENT,
            INVOICE,
            INVOICE_PAYMENT,
            SUBSCRIPTION,
            CUSTOMER,
        ] {
            let value: Value = serde_json::from_str(text).unwrap();
            assert!(value["id"].is_string(), "fixture without id: {text:.60}");
        }
    }
}
