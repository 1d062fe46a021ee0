//! Test controls under `/__emulator/` (not Stripe's API; JSON in, JSON out, no API key):
//! deliveries (list, hold, release, drop), drift (change an object without an event),
//! disputes, Dashboard refunds, Checkout completion without a browser, card changes.

use serde_json::{json, Map, Value};

use crate::api_billing;
use crate::checkout::{self, Authentication};
use crate::error::{ApiError, Reply};
use crate::events::emit;
use crate::objects;
use crate::store::{set, str_of, Card, Delivery, Store};

/// Executes a control request (`path` after `/__emulator`).
pub(crate) fn handle(store: &mut Store, method: &str, path: &str, body: &[u8]) -> Reply {
    let input: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(value @ Value::Object(_)) => value,
            _ => {
                return ApiError::new(
                    400,
                    "invalid_request_error",
                    None,
                    "The control's body must be a JSON object.",
                )
                .into()
            }
        }
    };
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let result = match (method, segments.as_slice()) {
        ("GET", ["deliveries"]) => Ok(deliveries(store)),
        ("POST", ["deliveries", "hold"]) => {
            store.held = true;
            Ok(json!({ "held": true }))
        }
        ("POST", ["deliveries", "release"]) => {
            store.held = false;
            Ok(json!({ "held": false }))
        }
        ("POST", ["deliveries", "drop"]) => Ok(drop_pending(store)),
        ("POST", ["rate_limit"]) => {
            store.rate_limit.per_second = input["perSecond"]
                .as_u64()
                .and_then(|n| u32::try_from(n).ok());
            Ok(
                json!({ "perSecond": store.rate_limit.per_second, "refused": store.rate_limit.refused }),
            )
        }
        ("GET", ["rate_limit"]) => Ok(
            json!({ "perSecond": store.rate_limit.per_second, "refused": store.rate_limit.refused }),
        ),
        ("POST", ["checkout", "sessions", id, "complete"]) => complete(store, id, &input),
        ("POST", ["objects", kind, id]) => drift(store, kind, id, &input),
        ("POST", ["charges", id, "dispute"]) => open_dispute(store, id, &input),
        ("POST", ["disputes", id, "close"]) => close_dispute(store, id, &input),
        ("POST", ["charges", id, "refund"]) => api_billing::refund_charge(
            store,
            id,
            input["amount"].as_i64(),
            input["reason"].as_str(),
            Map::new(),
            input["fail"].as_bool() == Some(true),
        ),
        ("POST", ["customers", id, "payment_method"]) => set_card(store, id, &input),
        ("POST", ["subscriptions", id, "pause"]) => pause(store, id),
        ("POST", ["payment_intents", id, "authenticate"]) => {
            api_billing::authenticate_intent(store, id, input["outcome"].as_str() != Some("fail"))
        }
        _ => Err(ApiError::new(
            404,
            "invalid_request_error",
            None,
            format!("Unknown emulator control: {method} /__emulator{path}"),
        )),
    };
    result.into()
}

fn card_of(input: &Value) -> Result<Card, ApiError> {
    let text = input["card"].as_str().unwrap_or("4242424242424242");
    Card::parse(text).ok_or_else(|| {
        ApiError::invalid(
            "card",
            None,
            format!("Not one of the emulator's test cards: {text}"),
        )
    })
}

fn deliveries(store: &Store) -> Value {
    let events: Vec<Value> = store
        .events
        .iter()
        .filter(|e| e.raw.is_none())
        .map(|e| {
            let (state, attempts) = match &e.delivery {
                Delivery::NoEndpoint => ("no_endpoint", 0),
                Delivery::Pending { attempts, .. } => ("pending", *attempts),
                Delivery::Delivered { attempts } => ("delivered", *attempts),
                Delivery::Failed { attempts } => ("failed", *attempts),
            };
            json!({ "id": e.id, "type": e.event_type, "created": e.created, "state": state, "attempts": attempts })
        })
        .collect();
    let attempts: Vec<Value> = store
        .attempts
        .iter()
        .map(|a| {
            json!({ "event": a.event_id, "type": a.event_type, "attempt": a.attempt,
                         "status": a.status, "error": a.error, "at": a.at })
        })
        .collect();
    json!({ "held": store.held, "events": events, "attempts": attempts })
}

fn drop_pending(store: &mut Store) -> Value {
    let mut dropped = Vec::new();
    for event in &mut store.events {
        if let Delivery::Pending { attempts, .. } = event.delivery {
            event.delivery = Delivery::Failed { attempts };
            dropped.push(event.id.clone());
        }
    }
    json!({ "dropped": dropped })
}

fn complete(store: &mut Store, id: &str, input: &Value) -> Result<Value, ApiError> {
    let card = card_of(input)?;
    let authentication = match input["authentication"].as_str() {
        Some("approve") => Authentication::Approve,
        Some("fail") => Authentication::Fail,
        _ => Authentication::Pending,
    };
    checkout::complete(
        store,
        id,
        card,
        authentication,
        input["test_clock"].as_str(),
    )
    .map_err(|e| e.to_api())
}

/// Merges `input`'s top-level fields into a stored object without any event (drift).
/// For subscriptions, `"price": "price_..."` switches the first item's price.
fn drift(store: &mut Store, kind: &str, id: &str, input: &Value) -> Result<Value, ApiError> {
    let price = match (kind, input["price"].as_str()) {
        ("subscriptions", Some(price)) => Some(objects::known_price(store, price, "price")?),
        _ => None,
    };
    let objects = match kind {
        "subscriptions" => &mut store.subscriptions,
        "invoices" => &mut store.invoices,
        "customers" => &mut store.customers,
        "payment_intents" => &mut store.payment_intents,
        "charges" => &mut store.charges,
        "checkout_sessions" => &mut store.checkout_sessions,
        "refunds" => &mut store.refunds,
        "disputes" => &mut store.disputes,
        _ => {
            return Err(ApiError::new(
                404,
                "invalid_request_error",
                None,
                format!("Unknown object kind: {kind}"),
            ))
        }
    };
    let object = objects
        .get_mut(id)
        .ok_or_else(|| ApiError::no_such(404, kind, id, "id"))?;
    if let Value::Object(fields) = input {
        for (key, value) in fields {
            if key != "price" || price.is_none() {
                set(object, key, value.clone());
            }
        }
    }
    if let (Some(price), Some(item)) = (price, object["items"]["data"].get_mut(0)) {
        set(item, "price", price);
    }
    Ok(object.clone())
}

fn open_dispute(store: &mut Store, charge_id: &str, input: &Value) -> Result<Value, ApiError> {
    let charge = store
        .charges
        .get(charge_id)
        .cloned()
        .ok_or_else(|| ApiError::no_such(404, "charge", charge_id, "charge"))?;
    let amount = input["amount"]
        .as_i64()
        .unwrap_or_else(|| charge["amount"].as_i64().unwrap_or(0));
    let reason = input["reason"].as_str().unwrap_or("fraudulent");
    let at = store.time_for(str_of(&charge, "customer"));
    let dispute = objects::dispute(&charge, amount, reason, at);
    let id = str_of(&dispute, "id").unwrap_or_default().to_owned();
    store.disputes.insert(id, dispute.clone());
    if let Some(charge) = store.charges.get_mut(charge_id) {
        set(charge, "disputed", json!(true));
    }
    emit(store, "charge.dispute.created", &dispute, None, at);
    emit(store, "charge.dispute.funds_withdrawn", &dispute, None, at);
    Ok(dispute)
}

fn close_dispute(store: &mut Store, id: &str, input: &Value) -> Result<Value, ApiError> {
    let outcome = match input["outcome"].as_str() {
        Some("won") => "won",
        Some("lost") => "lost",
        _ => {
            return Err(ApiError::invalid(
                "outcome",
                None,
                "outcome must be \"won\" or \"lost\".",
            ))
        }
    };
    let dispute = store
        .disputes
        .get_mut(id)
        .ok_or_else(|| ApiError::no_such(404, "dispute", id, "dispute"))?;
    let old = dispute.clone();
    set(dispute, "status", json!(outcome));
    let dispute = dispute.clone();
    let at = store.time_for(None);
    let previous = crate::events::changed(&old, &dispute, &["status"]);
    emit(store, "charge.dispute.closed", &dispute, Some(previous), at);
    if outcome == "won" {
        emit(store, "charge.dispute.funds_reinstated", &dispute, None, at);
    }
    Ok(dispute)
}

/// Gives a customer a new default card (e.g. `4000 0000 0000 0341` to make renewals fail).
fn set_card(store: &mut Store, customer: &str, input: &Value) -> Result<Value, ApiError> {
    let card = card_of(input)?;
    if !store.customers.contains_key(customer) {
        return Err(ApiError::no_such(404, "customer", customer, "customer"));
    }
    let at = store.time_for(Some(customer));
    let pm = objects::payment_method(store, card, customer, at);
    let pm_id = str_of(&pm, "id").unwrap_or_default().to_owned();
    if let Some(c) = store.customers.get_mut(customer) {
        set(
            &mut c["invoice_settings"],
            "default_payment_method",
            json!(pm_id),
        );
    }
    emit(store, "payment_method.attached", &pm, None, at);
    Ok(pm)
}

/// Pauses a subscription as a trial ending without a payment method does.
fn pause(store: &mut Store, id: &str) -> Result<Value, ApiError> {
    let sub = store
        .subscriptions
        .get_mut(id)
        .ok_or_else(|| ApiError::no_such(404, "subscription", id, "subscription"))?;
    let old = sub.clone();
    set(sub, "status", json!("paused"));
    let sub = sub.clone();
    let at = store.time_for(str_of(&sub, "customer"));
    let previous = crate::events::changed(&old, &sub, &["status"]);
    emit(
        store,
        "customer.subscription.paused",
        &sub,
        Some(previous),
        at,
    );
    Ok(sub)
}
