//! Handlers of the calls the service makes (Checkout, Customer Portal, PaymentIntents,
//! customers, invoices, subscriptions, events).

use bytes::Bytes;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::events::{self, emit};
use crate::fixtures;
use crate::objects;
use crate::request::Params;
use crate::store::{list, now, random_id, set, set_all, str_of, Store};

/// One API call: its parameters (bracket keys as sent) and the path's `{...}` values.
pub(crate) struct Call<'a> {
    pub params: Params<'a>,
    pub args: &'a [String],
}

impl Call<'_> {
    /// The first path argument.
    pub fn id(&self) -> &str {
        self.args.first().map_or("", String::as_str)
    }
}

pub(crate) fn nullable(value: Option<&str>) -> Value {
    value.map_or(Value::Null, Value::from)
}

pub(crate) fn found(
    object: Option<&Value>,
    missing: impl FnOnce() -> ApiError,
) -> Result<Value, ApiError> {
    object.cloned().ok_or_else(missing)
}

/// `customer` must be known (see [`Store::customer_known`]).
fn checked_customer<'a>(store: &Store, params: Params<'a>) -> Result<Option<&'a str>, ApiError> {
    match params.non_empty("customer") {
        Some(id) if !store.customer_known(id) => {
            Err(ApiError::no_such(400, "customer", id, "customer"))
        }
        customer => Ok(customer),
    }
}

/// `line_items[N][price]` / `[quantity]` in index order.
fn line_items(params: Params<'_>) -> Result<Vec<(String, i64)>, ApiError> {
    let mut lines = Vec::new();
    for index in 0.. {
        let key = format!("line_items[{index}][price]");
        let Some(price) = params.non_empty(&key) else {
            break;
        };
        let quantity_key = format!("line_items[{index}][quantity]");
        let quantity = match params.non_empty(&quantity_key) {
            None => 1,
            Some(q) => q.parse::<i64>().ok().filter(|q| *q > 0).ok_or_else(|| {
                ApiError::invalid(
                    &quantity_key,
                    Some("parameter_invalid_integer"),
                    format!("Invalid integer: {q}"),
                )
            })?,
        };
        lines.push((price.to_owned(), quantity));
    }
    Ok(lines)
}

pub(crate) fn create_checkout_session(
    store: &mut Store,
    call: &Call<'_>,
) -> Result<Value, ApiError> {
    let params = call.params;
    let mode = params
        .non_empty("mode")
        .ok_or_else(|| ApiError::missing("mode"))?;
    if !matches!(mode, "payment" | "setup" | "subscription") {
        return Err(ApiError::invalid(
            "mode",
            None,
            format!("Invalid mode: must be one of payment, setup, or subscription (got '{mode}')."),
        ));
    }
    let lines = line_items(params)?;
    if mode != "setup" && lines.is_empty() {
        return Err(ApiError::missing("line_items[0][price]"));
    }
    let success_url = params
        .non_empty("success_url")
        .ok_or_else(|| ApiError::missing("success_url"))?;
    let customer = checked_customer(store, params)?;
    if customer.is_some() && params.non_empty("customer_email").is_some() {
        return Err(ApiError::new(
            400,
            "invalid_request_error",
            None,
            "You may only specify one of these parameters: customer, customer_email.",
        ));
    }
    for (index, (price, _)) in lines.iter().enumerate() {
        if !store.prices.contains_key(price) && !store.settings.accept_unknown_prices {
            return Err(ApiError::no_such(
                400,
                "price",
                price,
                &format!("line_items[{index}][price]"),
            ));
        }
    }
    let trial_days = match params.non_empty("subscription_data[trial_period_days]") {
        None => None,
        Some(days) => Some(
            days.parse::<i64>()
                .ok()
                .filter(|d| *d >= 1)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "subscription_data[trial_period_days]",
                        Some("parameter_invalid_integer"),
                        format!("Invalid integer: {days}"),
                    )
                })?,
        ),
    };

    let id = random_id("cs_test_", 58);
    let created = store.time_for(customer);
    let url = if store.settings.hosted_pages {
        format!("{}/c/pay/{id}", store.settings.base_url)
    } else {
        format!("https://checkout.stripe.com/c/pay/{id}")
    };
    let mut session = fixtures::checkout_session();
    set_all(
        &mut session,
        [
            ("id", json!(id)),
            ("url", json!(url)),
            ("mode", json!(mode)),
            ("status", json!("open")),
            ("payment_status", json!("unpaid")),
            (
                "client_reference_id",
                nullable(params.non_empty("client_reference_id")),
            ),
            ("customer", nullable(customer)),
            (
                "customer_email",
                nullable(params.non_empty("customer_email")),
            ),
            ("metadata", Value::Object(params.metadata("metadata"))),
            ("success_url", json!(success_url)),
            ("cancel_url", nullable(params.non_empty("cancel_url"))),
            (
                "allow_promotion_codes",
                params
                    .get("allow_promotion_codes")
                    .map_or(Value::Null, |v| json!(v == "true")),
            ),
            (
                "ui_mode",
                json!(params.non_empty("ui_mode").unwrap_or("hosted_page")),
            ),
            ("created", json!(created)),
            ("expires_at", json!(created + 24 * 3600)),
            ("livemode", json!(false)),
            // Nothing is paid or collected until the buyer completes the page.
            ("payment_intent", Value::Null),
            ("setup_intent", Value::Null),
            ("subscription", Value::Null),
            ("invoice", Value::Null),
            ("customer_details", Value::Null),
            ("collected_information", Value::Null),
            ("amount_subtotal", Value::Null),
            ("amount_total", Value::Null),
            ("currency", Value::Null),
            ("currency_conversion", Value::Null),
            ("shipping_cost", Value::Null),
            ("total_details", Value::Null),
            ("client_secret", Value::Null),
            ("recovered_from", Value::Null),
            ("payment_link", Value::Null),
        ],
    );
    store.session_lines.insert(id.clone(), lines);
    if let Some(days) = trial_days {
        store.session_trial_days.insert(id.clone(), days);
    }
    store.session_subscription_metadata.insert(
        id.clone(),
        Value::Object(params.metadata("subscription_data[metadata]")),
    );
    store.add_checkout_session(id, session.clone());
    Ok(session)
}

pub(crate) fn retrieve_checkout_session(
    store: &mut Store,
    call: &Call<'_>,
) -> Result<Value, ApiError> {
    let id = call.id();
    found(store.checkout_sessions.get(id), || {
        ApiError::no_such(404, "checkout.session", id, "session")
    })
}

/// Like Stripe, only an `open` session can be expired; it then loses its `url`. Emits
/// `checkout.session.expired`.
pub(crate) fn expire_checkout_session(
    store: &mut Store,
    call: &Call<'_>,
) -> Result<Value, ApiError> {
    let id = call.id();
    let session = store
        .checkout_sessions
        .get_mut(id)
        .ok_or_else(|| ApiError::no_such(404, "checkout.session", id, "session"))?;
    if session.get("status").and_then(Value::as_str) != Some("open") {
        return Err(ApiError::new(
            400,
            "invalid_request_error",
            None,
            r#"Only Checkout Sessions with a status in ["open"] can be expired."#,
        ));
    }
    set_all(
        session,
        [("status", json!("expired")), ("url", Value::Null)],
    );
    let session = session.clone();
    let at = store.time_for(str_of(&session, "customer"));
    emit(store, "checkout.session.expired", &session, None, at);
    Ok(session)
}

pub(crate) fn create_portal_session(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let params = call.params;
    let customer = checked_customer(store, params)?.ok_or_else(|| ApiError::missing("customer"))?;
    let token = random_id("test_", 40);
    let url = if store.settings.hosted_pages {
        format!("{}/p/session/{token}", store.settings.base_url)
    } else {
        format!("https://billing.stripe.com/p/session/{token}")
    };
    let mut session = fixtures::billing_portal_session();
    set_all(
        &mut session,
        [
            ("id", json!(random_id("bps_", 24))),
            ("url", json!(url)),
            ("customer", json!(customer)),
            ("return_url", nullable(params.non_empty("return_url"))),
            (
                "configuration",
                json!(params
                    .non_empty("configuration")
                    .unwrap_or(&store.portal_configuration)),
            ),
            ("locale", nullable(params.non_empty("locale"))),
            ("flow", Value::Null),
            ("on_behalf_of", Value::Null),
            ("created", json!(now())),
            ("livemode", json!(false)),
        ],
    );
    store.portal_sessions_created += 1;
    store.portal_sessions.insert(token, session.clone());
    Ok(session)
}

pub(crate) fn create_payment_intent(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let params = call.params;
    let amount = params
        .non_empty("amount")
        .ok_or_else(|| ApiError::missing("amount"))?;
    let amount: i64 = amount.parse().map_err(|_| {
        ApiError::invalid(
            "amount",
            Some("parameter_invalid_integer"),
            format!("Invalid integer: {amount}"),
        )
    })?;
    if amount < 1 {
        return Err(ApiError::invalid(
            "amount",
            Some("parameter_invalid_integer"),
            "This value must be greater than or equal to 1.",
        ));
    }
    let currency = params
        .non_empty("currency")
        .ok_or_else(|| ApiError::missing("currency"))?;
    if currency.len() != 3 || !currency.chars().all(|c| c.is_ascii_alphabetic()) {
        return Err(ApiError::invalid(
            "currency",
            None,
            format!("Invalid currency: {currency}"),
        ));
    }
    let customer = checked_customer(store, params)?;
    let at = store.time_for(customer);
    let mut intent =
        objects::payment_intent(amount, currency, customer, params.metadata("metadata"), at);
    let automatic = params
        .get("automatic_payment_methods[enabled]")
        .map_or_else(
            || json!({ "enabled": true }),
            |v| json!({ "enabled": v == "true" }),
        );
    set_all(
        &mut intent,
        [
            ("description", nullable(params.non_empty("description"))),
            ("automatic_payment_methods", automatic),
            (
                "capture_method",
                json!(params.non_empty("capture_method").unwrap_or("automatic")),
            ),
            (
                "payment_method",
                nullable(params.non_empty("payment_method")),
            ),
            ("receipt_email", nullable(params.non_empty("receipt_email"))),
            (
                "setup_future_usage",
                nullable(params.non_empty("setup_future_usage")),
            ),
        ],
    );
    let id = str_of(&intent, "id").unwrap_or_default().to_owned();
    store.payment_intents.insert(id, intent.clone());
    emit(store, "payment_intent.created", &intent, None, at);
    Ok(intent)
}

pub(crate) fn retrieve_payment_intent(
    store: &mut Store,
    call: &Call<'_>,
) -> Result<Value, ApiError> {
    let id = call.id();
    found(store.payment_intents.get(id), || {
        ApiError::no_such(404, "payment_intent", id, "intent")
    })
}

pub(crate) fn create_customer(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let params = call.params;
    let clock = params.non_empty("test_clock");
    let at = match clock {
        Some(clock) => store
            .clocks
            .get(clock)
            .and_then(|c| c["frozen_time"].as_i64())
            .ok_or_else(|| ApiError::no_such(400, "test_clock", clock, "test_clock"))?,
        None => now(),
    };
    let customer = objects::customer(
        store,
        None,
        [
            ("email", nullable(params.non_empty("email"))),
            ("name", nullable(params.non_empty("name"))),
            ("description", nullable(params.non_empty("description"))),
            ("metadata", Value::Object(params.metadata("metadata"))),
            ("test_clock", nullable(clock)),
        ],
        at,
    );
    let mut customer = customer;
    set(&mut customer, "phone", nullable(params.non_empty("phone")));
    if let Some(id) = str_of(&customer, "id").map(str::to_owned) {
        store.customers.insert(id, customer.clone());
    }
    emit(store, "customer.created", &customer, None, at);
    Ok(customer)
}

pub(crate) fn retrieve_customer(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let id = call.id();
    if let Some(customer) = store.customers.get(id) {
        return Ok(customer.clone());
    }
    if !store.customer_known(id) {
        return Err(ApiError::no_such(404, "customer", id, "customer"));
    }
    let mut customer = fixtures::customer();
    set_all(
        &mut customer,
        [("id", json!(id)), ("livemode", json!(false))],
    );
    Ok(customer)
}

pub(crate) fn retrieve_invoice(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let id = call.id();
    let mut invoice = found(store.invoices.get(id), || {
        ApiError::no_such(404, "invoice", id, "invoice")
    })?;
    if call.params.expand().contains(&"payments") {
        let payments = store.invoice_payments.get(id).cloned().unwrap_or_default();
        set(
            &mut invoice,
            "payments",
            list(payments, &format!("/v1/invoice_payments?invoice={id}")),
        );
    }
    Ok(invoice)
}

pub(crate) fn retrieve_subscription(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let id = call.id();
    found(store.subscriptions.get(id), || {
        ApiError::no_such(404, "subscription", id, "subscription_exposed_id")
    })
}

pub(crate) fn list_events(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    events::list(store, call.params)
}

pub(crate) fn retrieve_event(store: &mut Store, call: &Call<'_>) -> Result<Bytes, ApiError> {
    events::retrieve(store, call.id())
}
