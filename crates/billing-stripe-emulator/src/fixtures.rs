//! Stripe's published fixture objects (openapi `fixtures3.json`, API `2026-07-29.dahlia`), the
//! templates every response is built from, and the one fixture set of the workspace (the Stripe
//! adapter's tests read these files too). Public so tests can build seeds
//! (`fake.add_invoice(fixtures::invoice())`) with the real field set.

use serde_json::{Map, Value};

macro_rules! fixtures {
    ($($(#[$doc:meta])* $name:ident => $file:literal,)*) => {
        $(
            $(#[$doc])*
            #[must_use]
            pub fn $name() -> Value {
                parse(include_str!(concat!("../fixtures/", $file)))
            }
        )*

        #[cfg(test)]
        const ALL: &[&str] = &[$(include_str!(concat!("../fixtures/", $file))),*];
    };
}

fn parse(text: &str) -> Value {
    // The files are embedded and covered by a test, so a parse failure cannot reach callers.
    serde_json::from_str(text).unwrap_or_else(|_| Value::Object(Map::new()))
}

fixtures! {
    /// The `event` fixture (an envelope; the Stripe adapter's tests read it as a file).
    event => "event.json",
    /// The `checkout.session` fixture.
    checkout_session => "checkout.session.json",
    /// The `billing_portal.session` fixture.
    billing_portal_session => "billing_portal.session.json",
    /// The `payment_intent` fixture.
    payment_intent => "payment_intent.json",
    /// The `invoice` fixture (placeholder values; override `id`, `status`, amounts, `parent`).
    invoice => "invoice.json",
    /// The `invoice_payment` fixture.
    invoice_payment => "invoice_payment.json",
    /// The `subscription` fixture.
    subscription => "subscription.json",
    /// The `subscription_item` fixture.
    subscription_item => "subscription_item.json",
    /// The `customer` fixture.
    customer => "customer.json",
    /// The `charge` fixture.
    charge => "charge.json",
    /// The `refund` fixture.
    refund => "refund.json",
    /// The `dispute` fixture.
    dispute => "dispute.json",
    /// The `product` fixture.
    product => "product.json",
    /// The `price` fixture.
    price => "price.json",
    /// The invoice `line_item` fixture.
    line_item => "line_item.json",
    /// The `payment_method` fixture.
    payment_method => "payment_method.json",
    /// The `test_helpers.test_clock` fixture.
    test_clock => "test_helpers.test_clock.json",
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_fixture_parses_as_an_object_with_an_id() {
        for text in ALL {
            let value: Value = serde_json::from_str(text).unwrap();
            assert!(value["id"].is_string(), "fixture without id: {text:.60}");
        }
    }
}
