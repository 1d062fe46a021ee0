//! Builders of Stripe objects in the pinned version's shapes: each starts from the 2026
//! fixture (all fields present) and sets what the emulator knows.

use chrono::{DateTime, Months, TimeDelta};
use serde_json::{json, Map, Value};

use crate::config::PriceSeed;
use crate::error::ApiError;
use crate::fixtures;
use crate::store::{int_of, random_id, set, set_all, str_of, Card, Store};

fn nullable(value: Option<&str>) -> Value {
    value.map_or(Value::Null, Value::from)
}

/// `t` moved forward by `count` `interval`s (calendar months and years, as Stripe bills).
pub(crate) fn add_interval(t: i64, interval: &str, count: i64) -> i64 {
    let Some(start) = DateTime::from_timestamp(t, 0) else {
        return t;
    };
    let count32 = u32::try_from(count.max(1)).unwrap_or(1);
    let moved = match interval {
        "day" => start.checked_add_signed(TimeDelta::days(count)),
        "week" => start.checked_add_signed(TimeDelta::weeks(count)),
        "year" => start.checked_add_months(Months::new(12 * count32)),
        _ => start.checked_add_months(Months::new(count32)),
    };
    moved.map_or(t, |d| d.timestamp())
}

/// A product.
pub(crate) fn product(
    store: &mut Store,
    id: Option<&str>,
    name: &str,
    metadata: Map<String, Value>,
) -> Value {
    let id = id.map_or_else(|| random_id("prod_", 14), str::to_owned);
    let created = crate::store::now();
    let mut product = fixtures::product();
    set_all(
        &mut product,
        [
            ("id", json!(id)),
            ("name", json!(name)),
            ("description", Value::Null),
            ("default_price", Value::Null),
            ("metadata", Value::Object(metadata)),
            ("created", json!(created)),
            ("updated", json!(created)),
            ("livemode", json!(false)),
            ("package_dimensions", Value::Null),
            ("type", json!("service")),
        ],
    );
    store.products.insert(id, product.clone());
    product
}

/// What a new price is made of.
pub(crate) struct PriceSpec<'a> {
    pub id: Option<&'a str>,
    pub product: &'a str,
    pub unit_amount: i64,
    pub currency: &'a str,
    pub interval: Option<&'a str>,
    pub interval_count: i64,
    pub nickname: Option<&'a str>,
    pub lookup_key: Option<&'a str>,
    pub metadata: Map<String, Value>,
}

/// A price.
pub(crate) fn price(store: &mut Store, spec: &PriceSpec<'_>) -> Value {
    let id = spec
        .id
        .map_or_else(|| random_id("price_", 24), str::to_owned);
    let mut price = fixtures::price();
    let recurring = spec.interval.map_or(Value::Null, |interval| {
        json!({ "interval": interval, "interval_count": spec.interval_count, "meter": null,
                "usage_type": "licensed", "trial_period_days": null })
    });
    set_all(
        &mut price,
        [
            ("id", json!(id)),
            ("product", json!(spec.product)),
            ("unit_amount", json!(spec.unit_amount)),
            ("unit_amount_decimal", json!(spec.unit_amount.to_string())),
            ("currency", json!(spec.currency.to_ascii_lowercase())),
            ("recurring", recurring),
            (
                "type",
                json!(if spec.interval.is_some() {
                    "recurring"
                } else {
                    "one_time"
                }),
            ),
            ("nickname", nullable(spec.nickname)),
            ("lookup_key", nullable(spec.lookup_key)),
            ("metadata", Value::Object(spec.metadata.clone())),
            ("transform_quantity", Value::Null),
            ("created", json!(crate::store::now())),
            ("livemode", json!(false)),
        ],
    );
    if let Some(product) = store.products.get_mut(spec.product) {
        if product["default_price"].is_null() {
            set(product, "default_price", json!(id));
        }
    }
    store.prices.insert(id, price.clone());
    price
}

pub(crate) fn seed_price(store: &mut Store, seed: &PriceSeed) {
    let tail = seed.id.strip_prefix("price_").unwrap_or(&seed.id);
    let product_id = format!("prod_{tail}");
    product(store, Some(&product_id), &seed.product_name, Map::new());
    price(
        store,
        &PriceSpec {
            id: Some(&seed.id),
            product: &product_id,
            unit_amount: seed.unit_amount,
            currency: &seed.currency,
            interval: seed.interval.as_deref(),
            interval_count: 1,
            nickname: Some(&seed.product_name),
            lookup_key: None,
            metadata: Map::new(),
        },
    );
}

/// A known price, or (when unknown prices are accepted) one made up on the spot.
pub(crate) fn known_price(store: &mut Store, id: &str, param: &str) -> Result<Value, ApiError> {
    if let Some(price) = store.prices.get(id) {
        return Ok(price.clone());
    }
    if !store.settings.accept_unknown_prices {
        return Err(ApiError::no_such(400, "price", id, param));
    }
    let tail = id.strip_prefix("price_").unwrap_or(id);
    let product_id = format!("prod_{tail}");
    if !store.products.contains_key(&product_id) {
        product(store, Some(&product_id), tail, Map::new());
    }
    Ok(price(
        store,
        &PriceSpec {
            id: Some(id),
            product: &product_id,
            unit_amount: 1000,
            currency: "usd",
            interval: Some("month"),
            interval_count: 1,
            nickname: None,
            lookup_key: None,
            metadata: Map::new(),
        },
    ))
}

/// A customer (stored).
pub(crate) fn customer(
    store: &mut Store,
    id: Option<&str>,
    fields: [(&str, Value); 5],
    created: i64,
) -> Value {
    let id = id.map_or_else(|| random_id("cus_", 14), str::to_owned);
    let mut customer = fixtures::customer();
    set_all(
        &mut customer,
        [
            ("id", json!(id)),
            ("created", json!(created)),
            ("livemode", json!(false)),
            ("discount", Value::Null),
            ("shipping", Value::Null),
            (
                "invoice_prefix",
                json!(random_id("", 8).to_ascii_uppercase()),
            ),
        ],
    );
    for (key, value) in fields {
        set(&mut customer, key, value);
    }
    store.customers.insert(id, customer.clone());
    customer
}

/// A card `payment_method` attached to `customer`.
pub(crate) fn payment_method(store: &mut Store, card: Card, customer: &str, at: i64) -> Value {
    let id = random_id("pm_", 24);
    let mut pm = fixtures::payment_method();
    let mut details = pm["card"].clone();
    set_all(
        &mut details,
        [
            ("last4", json!(card.last4())),
            ("fingerprint", json!(random_id("", 16))),
            ("wallet", Value::Null),
            ("generated_from", Value::Null),
        ],
    );
    set_all(
        &mut pm,
        [
            ("id", json!(id)),
            ("card", details),
            ("customer", json!(customer)),
            ("created", json!(at)),
            ("metadata", json!({})),
            (
                "billing_details",
                json!({ "address": { "city": null, "country": "US", "line1": null, "line2": null,
                        "postal_code": "94107", "state": null }, "email": null, "name": null,
                        "phone": null, "tax_id": null }),
            ),
        ],
    );
    store.cards.insert(id.clone(), card);
    store.payment_methods.insert(id, pm.clone());
    pm
}

/// A subscription item for `price` over `[start, end)`.
pub(crate) fn subscription_item(
    subscription: &str,
    price: &Value,
    quantity: i64,
    (start, end): (i64, i64),
    at: i64,
) -> Value {
    let mut item = fixtures::subscription_item();
    set_all(
        &mut item,
        [
            ("id", json!(random_id("si_", 14))),
            ("created", json!(at)),
            ("price", price.clone()),
            ("plan", plan_of(price)),
            ("quantity", json!(quantity)),
            ("subscription", json!(subscription)),
            ("current_period_start", json!(start)),
            ("current_period_end", json!(end)),
            ("billing_thresholds", Value::Null),
        ],
    );
    item
}

/// The legacy `plan` view of a recurring price.
fn plan_of(price: &Value) -> Value {
    let mut plan = json!({
        "active": true, "amount": price["unit_amount"], "amount_decimal": price["unit_amount_decimal"],
        "billing_scheme": "per_unit", "created": price["created"], "currency": price["currency"],
        "id": price["id"], "interval": price["recurring"]["interval"],
        "interval_count": price["recurring"]["interval_count"], "livemode": false,
        "metadata": price["metadata"], "meter": null, "nickname": price["nickname"], "object": "plan",
        "product": price["product"], "tiers_mode": null, "transform_usage": null,
        "trial_period_days": null, "usage_type": "licensed"
    });
    if price["recurring"].is_null() {
        plan = Value::Null;
    }
    plan
}

/// The price's billing interval (`month` when it has none).
pub(crate) fn interval_of(price: &Value) -> (String, i64) {
    let recurring = &price["recurring"];
    (
        str_of(recurring, "interval").unwrap_or("month").to_owned(),
        recurring
            .get("interval_count")
            .and_then(Value::as_i64)
            .unwrap_or(1),
    )
}

/// An invoice line for a subscription item's period.
pub(crate) fn line_item(
    invoice: &str,
    subscription: Option<&str>,
    item: &Value,
    (start, end): (i64, i64),
    amount: i64,
    proration: bool,
) -> Value {
    let price = &item["price"];
    let quantity = item.get("quantity").and_then(Value::as_i64).unwrap_or(1);
    let product_name = str_of(price, "nickname").unwrap_or("Subscription");
    let mut line = fixtures::line_item();
    set_all(
        &mut line,
        [
            ("id", json!(random_id("il_", 24))),
            ("invoice", json!(invoice)),
            ("amount", json!(amount)),
            ("subtotal", json!(amount)),
            ("currency", price["currency"].clone()),
            ("description", json!(format!("{quantity} × {product_name}"))),
            ("period", json!({ "start": start, "end": end })),
            ("quantity", json!(quantity)),
            ("quantity_decimal", json!(quantity.to_string())),
            ("subscription", nullable(subscription)),
            ("metadata", json!({})),
            ("pretax_credit_amounts", json!([])),
            ("taxes", json!([])),
            (
                "parent",
                json!({ "invoice_item_details": null, "type": "subscription_item_details",
                        "subscription_item_details": { "invoice_item": null, "proration": proration,
                            "proration_details": { "credited_items": null },
                            "subscription": subscription, "subscription_item": item["id"] } }),
            ),
            (
                "pricing",
                json!({ "type": "price_details", "unit_amount_decimal": price["unit_amount_decimal"],
                        "price_details": { "price": price["id"], "product": price["product"] } }),
            ),
        ],
    );
    line
}

/// What an invoice is made of.
pub(crate) struct InvoiceSpec<'a> {
    pub customer: &'a str,
    pub subscription: Option<&'a Value>,
    pub lines: Vec<Value>,
    pub billing_reason: &'a str,
    pub period: (i64, i64),
    pub at: i64,
}

/// A draft invoice (not stored). `id` None makes a preview (no id, as `create_preview`).
pub(crate) fn invoice(store: &Store, id: Option<&str>, spec: InvoiceSpec<'_>) -> Value {
    let total: i64 = spec.lines.iter().map(|line| int_of(line, "amount")).sum();
    let currency = spec
        .lines
        .first()
        .and_then(|l| l.get("currency"))
        .cloned()
        .unwrap_or_else(|| json!("usd"));
    let customer = store.customers.get(spec.customer);
    let customer_field = |key: &str| customer.map_or(Value::Null, |c| c[key].clone());
    let sub_id = spec.subscription.map(|s| s["id"].clone());
    let parent = spec.subscription.map_or(Value::Null, |s| {
        json!({ "quote_details": null, "type": "subscription_details",
                "subscription_details": { "metadata": s["metadata"], "subscription": s["id"] } })
    });
    let url = id.map_or("/v1/invoices/upcoming/lines".to_owned(), |id| {
        format!("/v1/invoices/{id}/lines")
    });
    let mut invoice = fixtures::invoice();
    set_all(
        &mut invoice,
        [
            ("id", nullable(id)),
            ("customer", json!(spec.customer)),
            ("customer_email", customer_field("email")),
            ("customer_name", customer_field("name")),
            ("amount_due", json!(total)),
            ("amount_paid", json!(0)),
            ("amount_remaining", json!(total)),
            ("amount_overpaid", json!(0)),
            ("subtotal", json!(total)),
            ("subtotal_excluding_tax", json!(total)),
            ("total", json!(total)),
            ("total_excluding_tax", json!(total)),
            ("currency", currency),
            ("billing_reason", json!(spec.billing_reason)),
            ("auto_advance", json!(true)),
            ("attempt_count", json!(0)),
            ("attempted", json!(false)),
            ("created", json!(spec.at)),
            ("effective_at", Value::Null),
            ("due_date", Value::Null),
            ("next_payment_attempt", Value::Null),
            ("period_start", json!(spec.period.0)),
            ("period_end", json!(spec.period.1)),
            ("status", json!("draft")),
            (
                "status_transitions",
                json!({ "finalized_at": null, "marked_uncollectible_at": null, "paid_at": null, "voided_at": null }),
            ),
            ("subscription", sub_id.unwrap_or(Value::Null)),
            ("parent", parent),
            (
                "lines",
                json!({ "object": "list", "data": spec.lines, "has_more": false, "url": url }),
            ),
            ("hosted_invoice_url", Value::Null),
            ("invoice_pdf", Value::Null),
            ("number", Value::Null),
            ("livemode", json!(false)),
            ("last_finalization_error", Value::Null),
            ("from_invoice", Value::Null),
            ("shipping_cost", Value::Null),
            ("shipping_details", Value::Null),
            ("webhooks_delivered_at", Value::Null),
            ("automatically_finalizes_at", Value::Null),
            ("metadata", json!({})),
            ("test_clock", customer_field("test_clock")),
        ],
    );
    invoice
}

/// A PaymentIntent (not stored).
pub(crate) fn payment_intent(
    amount: i64,
    currency: &str,
    customer: Option<&str>,
    metadata: Map<String, Value>,
    at: i64,
) -> Value {
    let id = random_id("pi_", 24);
    let mut intent = fixtures::payment_intent();
    set_all(
        &mut intent,
        [
            (
                "client_secret",
                json!(format!("{id}_secret_{}", random_id("", 25))),
            ),
            ("id", json!(id)),
            ("amount", json!(amount)),
            ("amount_received", json!(0)),
            ("amount_capturable", json!(0)),
            ("currency", json!(currency.to_ascii_lowercase())),
            ("customer", nullable(customer)),
            ("metadata", Value::Object(metadata)),
            ("status", json!("requires_payment_method")),
            ("created", json!(at)),
            ("livemode", json!(false)),
            ("canceled_at", Value::Null),
            ("last_payment_error", Value::Null),
            ("next_action", Value::Null),
            ("processing", Value::Null),
            ("transfer_data", Value::Null),
            ("latest_charge", Value::Null),
            ("payment_method", Value::Null),
            ("payment_method_configuration_details", Value::Null),
            ("shipping", Value::Null),
        ],
    );
    intent
}

/// A charge of a PaymentIntent with a card, succeeded or failed (not stored).
pub(crate) fn charge(intent: &Value, pm: &str, card: Card, at: i64) -> Value {
    let id = random_id("ch_", 24);
    let amount = int_of(intent, "amount");
    let decline = card.decline();
    let mut charge = fixtures::charge();
    let mut method = charge["payment_method_details"].clone();
    set(&mut method["card"], "last4", json!(card.last4()));
    set(&mut method["card"], "wallet", Value::Null);
    let outcome = match decline {
        None => {
            json!({ "network_status": "approved_by_network", "reason": null, "risk_level": "normal",
                        "seller_message": "Payment complete.", "type": "authorized",
                        "advice_code": null, "network_advice_code": null, "network_decline_code": null })
        }
        Some((_, decline_code, _)) => {
            json!({ "network_status": "declined_by_network", "reason": decline_code,
                        "risk_level": "normal", "seller_message": "The bank did not return any further details with this decline.",
                        "type": "issuer_declined", "advice_code": null, "network_advice_code": null,
                        "network_decline_code": null })
        }
    };
    set_all(
        &mut charge,
        [
            ("id", json!(id)),
            ("amount", json!(amount)),
            (
                "amount_captured",
                json!(if decline.is_none() { amount } else { 0 }),
            ),
            ("amount_refunded", json!(0)),
            ("captured", json!(decline.is_none())),
            ("paid", json!(decline.is_none())),
            (
                "status",
                json!(if decline.is_none() {
                    "succeeded"
                } else {
                    "failed"
                }),
            ),
            ("failure_code", nullable(decline.map(|d| d.0))),
            ("failure_message", nullable(decline.map(|d| d.2))),
            ("outcome", outcome),
            ("currency", intent["currency"].clone()),
            ("customer", intent["customer"].clone()),
            ("description", intent["description"].clone()),
            ("metadata", intent["metadata"].clone()),
            ("payment_intent", intent["id"].clone()),
            ("payment_method", json!(pm)),
            ("payment_method_details", method),
            ("balance_transaction", json!(random_id("txn_", 24))),
            ("created", json!(at)),
            ("livemode", json!(false)),
            ("disputed", json!(false)),
            ("refunded", json!(false)),
            ("source", Value::Null),
            ("transfer_data", Value::Null),
            ("shipping", Value::Null),
            (
                "receipt_url",
                json!(format!(
                    "https://pay.stripe.com/receipts/payment/{}",
                    random_id("", 40)
                )),
            ),
            (
                "refunds",
                json!({ "object": "list", "data": [], "has_more": false, "url": format!("/v1/charges/{id}/refunds") }),
            ),
        ],
    );
    charge
}

/// A refund of a charge (not stored).
pub(crate) fn refund(
    charge: &Value,
    amount: i64,
    reason: Option<&str>,
    status: &str,
    at: i64,
) -> Value {
    let mut refund = fixtures::refund();
    set_all(
        &mut refund,
        [
            ("id", json!(random_id("re_", 24))),
            ("amount", json!(amount)),
            ("charge", charge["id"].clone()),
            ("currency", charge["currency"].clone()),
            ("customer", charge["customer"].clone()),
            ("payment_intent", charge["payment_intent"].clone()),
            ("payment_method", charge["payment_method"].clone()),
            ("reason", nullable(reason)),
            ("status", json!(status)),
            ("balance_transaction", json!(random_id("txn_", 24))),
            ("metadata", json!({})),
            ("created", json!(at)),
        ],
    );
    refund
}

/// A dispute on a charge (not stored).
pub(crate) fn dispute(charge: &Value, amount: i64, reason: &str, at: i64) -> Value {
    let mut dispute = fixtures::dispute();
    set_all(
        &mut dispute,
        [
            ("id", json!(random_id("dp_", 24))),
            ("amount", json!(amount)),
            ("charge", charge["id"].clone()),
            ("currency", charge["currency"].clone()),
            ("payment_intent", charge["payment_intent"].clone()),
            ("reason", json!(reason)),
            ("status", json!("needs_response")),
            ("created", json!(at)),
            ("is_charge_refundable", json!(false)),
            ("livemode", json!(false)),
        ],
    );
    set(
        &mut dispute["evidence_details"],
        "due_by",
        json!(at + 7 * 86_400),
    );
    dispute
}

/// A test clock (not stored).
pub(crate) fn test_clock(frozen_time: i64, name: Option<&str>) -> Value {
    let created = crate::store::now();
    let mut clock = fixtures::test_clock();
    set_all(
        &mut clock,
        [
            ("id", json!(random_id("clock_", 24))),
            ("created", json!(created)),
            ("deletes_after", json!(created + 30 * 86_400)),
            ("frozen_time", json!(frozen_time)),
            ("name", nullable(name)),
            ("status", json!("ready")),
            ("status_details", json!({})),
        ],
    );
    clock
}
