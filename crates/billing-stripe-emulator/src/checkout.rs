//! Completing a Checkout Session (what the buyer does on the hosted page, or the control
//! does without a browser): customer, payment method, subscription, first invoice, payment,
//! in the order of `LIFECYCLE.md` §1.

use serde_json::{json, Value};

use crate::engine;
use crate::error::ApiError;
use crate::events::emit;
use crate::objects;
use crate::store::{int_of, set, set_all, str_of, Card, Store};

/// How the buyer answers a 3-D Secure challenge (card `4000 0025 0000 3155`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Authentication {
    /// No answer yet: completion stops and asks for one.
    Pending,
    /// The buyer approved.
    Approve,
    /// The buyer failed the challenge.
    Fail,
}

/// Why a completion did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckoutError {
    /// No such session.
    NotFound,
    /// The session is not `open`.
    NotOpen(String),
    /// The card was declined (the message Stripe shows); the session stays open.
    Declined(String),
    /// The card needs authentication: answer with [`Authentication::Approve`] or `Fail`.
    AuthenticationRequired,
    /// The buyer failed authentication; the session stays open.
    AuthenticationFailed,
    /// The session's line items name a price the emulator does not know.
    UnknownPrice(String),
}

impl CheckoutError {
    pub(crate) fn to_api(&self) -> ApiError {
        let (status, code, message) = match self {
            Self::NotFound => (
                404,
                Some("resource_missing"),
                "No such checkout.session".to_owned(),
            ),
            Self::NotOpen(status) => (400, None, format!("This Checkout Session is {status}.")),
            Self::Declined(message) => (402, Some("card_declined"), message.clone()),
            Self::AuthenticationRequired => (
                402,
                Some("authentication_required"),
                "This payment requires authentication.".to_owned(),
            ),
            Self::AuthenticationFailed => (
                402,
                Some("payment_intent_authentication_failure"),
                "The provided payment method has failed authentication.".to_owned(),
            ),
            Self::UnknownPrice(id) => (
                400,
                Some("resource_missing"),
                format!("No such price: '{id}'"),
            ),
        };
        let kind = if status == 402 {
            "card_error"
        } else {
            "invalid_request_error"
        };
        ApiError::new(status, kind, code, message)
    }
}

/// Completes an open session paying with `card`. Returns the completed session.
pub(crate) fn complete(
    store: &mut Store,
    session_id: &str,
    card: Card,
    authentication: Authentication,
    test_clock: Option<&str>,
) -> Result<Value, CheckoutError> {
    let session = store
        .checkout_sessions
        .get(session_id)
        .cloned()
        .ok_or(CheckoutError::NotFound)?;
    let status = str_of(&session, "status").unwrap_or_default();
    if status != "open" {
        return Err(CheckoutError::NotOpen(status.to_owned()));
    }
    let mode = str_of(&session, "mode").unwrap_or("payment").to_owned();
    if let Some((_, _, message)) = card.decline() {
        if mode != "setup" || card == Card::Declined {
            return Err(CheckoutError::Declined(message.to_owned()));
        }
    }
    if card == Card::Authenticate {
        match authentication {
            Authentication::Pending => return Err(CheckoutError::AuthenticationRequired),
            Authentication::Fail => return Err(CheckoutError::AuthenticationFailed),
            Authentication::Approve => {}
        }
    }
    let lines = store
        .session_lines
        .get(session_id)
        .cloned()
        .unwrap_or_default();
    let mut prices = Vec::new();
    for (price, quantity) in &lines {
        let price = objects::known_price(store, price, "price")
            .map_err(|_| CheckoutError::UnknownPrice(price.clone()))?;
        prices.push((price, *quantity));
    }

    let customer = checkout_customer(store, &session, test_clock);
    let at = store.time_for(Some(&customer));
    let pm = objects::payment_method(store, card, &customer, at);
    let pm_id = str_of(&pm, "id").unwrap_or_default().to_owned();
    if let Some(c) = store.customers.get_mut(&customer) {
        set(
            &mut c["invoice_settings"],
            "default_payment_method",
            json!(pm_id),
        );
    }
    emit(store, "payment_method.attached", &pm, None, at);

    let amount: i64 = prices
        .iter()
        .map(|(price, qty)| int_of(price, "unit_amount") * qty)
        .sum();
    let currency = prices
        .first()
        .and_then(|(p, _)| str_of(p, "currency"))
        .unwrap_or("usd")
        .to_owned();
    let mut fields = vec![
        ("customer", json!(customer)),
        ("status", json!("complete")),
        ("url", Value::Null),
        ("amount_subtotal", json!(amount)),
        ("amount_total", json!(amount)),
        ("currency", json!(currency)),
        (
            "total_details",
            json!({ "amount_discount": 0, "amount_shipping": 0, "amount_tax": 0 }),
        ),
        ("customer_details", customer_details(store, &customer)),
    ];
    match mode.as_str() {
        "subscription" => {
            let trial = store.session_trial_days.get(session_id).copied();
            let metadata = store
                .session_subscription_metadata
                .get(session_id)
                .cloned()
                .unwrap_or_else(|| json!({}));
            let sub = engine::create_subscription(
                store,
                &customer,
                &prices,
                trial,
                metadata,
                Some(&pm_id),
                at,
            );
            let invoice = engine::first_invoice(store, &sub, at);
            let paid_nothing = trial.is_some_and(|d| d > 0);
            fields.extend([
                ("subscription", json!(sub)),
                ("invoice", invoice.map_or(Value::Null, Value::from)),
                (
                    "payment_status",
                    json!(if paid_nothing {
                        "no_payment_required"
                    } else {
                        "paid"
                    }),
                ),
            ]);
            if paid_nothing {
                fields.push(("amount_total", json!(0)));
                fields.push(("amount_subtotal", json!(0)));
            }
        }
        "payment" => {
            let mut intent = objects::payment_intent(
                amount,
                &currency,
                Some(&customer),
                session["metadata"].as_object().cloned().unwrap_or_default(),
                at,
            );
            let pi = str_of(&intent, "id").unwrap_or_default().to_owned();
            set(&mut intent, "payment_method", json!(pm_id));
            store.payment_intents.insert(pi.clone(), intent.clone());
            emit(store, "payment_intent.created", &intent, None, at);
            let _ = engine::charge_intent(store, &pi, &pm_id, card, at);
            fields.extend([
                ("payment_intent", json!(pi)),
                ("payment_status", json!("paid")),
            ]);
        }
        _ => fields.push(("payment_status", json!("no_payment_required"))),
    }
    let completed = {
        let Some(stored) = store.checkout_sessions.get_mut(session_id) else {
            return Err(CheckoutError::NotFound);
        };
        for (key, value) in fields {
            set(stored, key, value);
        }
        stored.clone()
    };
    emit(store, "checkout.session.completed", &completed, None, at);
    Ok(completed)
}

/// The session's customer, created (`customer.created`) when Checkout has to make one.
fn checkout_customer(store: &mut Store, session: &Value, test_clock: Option<&str>) -> String {
    let clock = test_clock.filter(|c| store.clocks.contains_key(*c));
    if let Some(id) = str_of(session, "customer") {
        if !store.customers.contains_key(id) {
            // A customer the lenient emulator accepted without knowing it.
            objects::customer(store, Some(id), fields(None, clock), crate::store::now());
        } else if let Some(clock) = clock {
            if let Some(c) = store.customers.get_mut(id) {
                set(c, "test_clock", json!(clock));
            }
        }
        return id.to_owned();
    }
    let email = str_of(session, "customer_email")
        .unwrap_or("buyer@example.com")
        .to_owned();
    let at = clock
        .and_then(|c| store.clocks.get(c))
        .map_or_else(crate::store::now, |c| int_of(c, "frozen_time"));
    let customer = objects::customer(store, None, fields(Some(&email), clock), at);
    emit(store, "customer.created", &customer, None, at);
    str_of(&customer, "id").unwrap_or_default().to_owned()
}

fn fields(email: Option<&str>, clock: Option<&str>) -> [(&'static str, Value); 5] {
    [
        ("email", email.map_or(Value::Null, Value::from)),
        ("name", email.map_or(Value::Null, |_| json!("Test Buyer"))),
        ("test_clock", clock.map_or(Value::Null, Value::from)),
        ("metadata", json!({})),
        ("description", Value::Null),
    ]
}

fn customer_details(store: &Store, customer: &str) -> Value {
    let c = store.customers.get(customer);
    let field = |key: &str| c.map_or(Value::Null, |c| c[key].clone());
    let mut details = json!({
        "address": { "city": null, "country": "US", "line1": null, "line2": null,
                     "postal_code": "94107", "state": null },
        "tax_exempt": "none", "tax_ids": [], "phone": null,
        "business_name": null, "individual_name": null,
    });
    set_all(
        &mut details,
        [("email", field("email")), ("name", field("name"))],
    );
    details
}
