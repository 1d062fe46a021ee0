//! Request execution: API-key check, routing, idempotency and the endpoint handlers. Runs
//! synchronously with the [`Store`] locked, so concurrent requests are serialised.

use serde_json::{json, Value};

use crate::error::{ApiError, Reply};
use crate::failure::Failure;
use crate::fixtures;
use crate::request::{Params, RecordedRequest};
use crate::store::{list, now, random_id, set, set_all, IdempotentEntry, Store};

/// Executes one request against the store.
pub(crate) fn dispatch(store: &mut Store, req: &RecordedRequest) -> Reply {
    if let Err(error) = authenticate(req) {
        return Reply::from(error).with_header("www-authenticate", "Basic realm=\"Stripe\"");
    }
    let query = req.query_pairs();
    let query = Params(&query);
    let segments: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    let result = match (req.method.as_str(), segments.as_slice()) {
        ("POST", ["v1", "checkout", "sessions"]) => {
            return idempotent(store, req, create_checkout_session)
        }
        ("POST", ["v1", "billing_portal", "sessions"]) => {
            return idempotent(store, req, create_portal_session)
        }
        ("POST", ["v1", "payment_intents"]) => {
            return idempotent(store, req, create_payment_intent)
        }
        ("POST", ["v1", "customers"]) => return idempotent(store, req, create_customer),
        ("POST", ["v1", "checkout", "sessions", id, "expire"]) => {
            return idempotent(store, req, |store, _| expire_checkout_session(store, id))
        }
        ("GET", ["v1", "checkout", "sessions", id]) => {
            found(store.checkout_sessions.get(*id), || {
                ApiError::no_such(404, "checkout.session", id, "session")
            })
        }
        ("GET", ["v1", "payment_intents", id]) => found(store.payment_intents.get(*id), || {
            ApiError::no_such(404, "payment_intent", id, "intent")
        }),
        ("GET", ["v1", "invoices", id]) => retrieve_invoice(store, id, query),
        ("GET", ["v1", "subscriptions", id]) => found(store.subscriptions.get(*id), || {
            ApiError::no_such(404, "subscription", id, "subscription_exposed_id")
        }),
        ("GET", ["v1", "customers", id]) => retrieve_customer(store, id),
        ("GET", ["v1", "events", id]) => {
            return match store.events.get(*id) {
                Some(body) => Reply::raw(200, body.clone()),
                None => ApiError::no_such(404, "event", id, "id").into(),
            }
        }
        (method, _) => Err(ApiError::unrecognized_url(method, &req.path)),
    };
    result.into()
}

/// `Authorization: Bearer sk_test_...` is required; the 401 never repeats the key back.
fn authenticate(req: &RecordedRequest) -> Result<(), ApiError> {
    let Some(header) = req.header("authorization") else {
        return Err(ApiError::new(
            401,
            "invalid_request_error",
            None,
            "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
        ));
    };
    let valid = header
        .strip_prefix("Bearer ")
        .and_then(|key| key.strip_prefix("sk_test_"))
        .is_some_and(|rest| !rest.is_empty() && !rest.contains(char::is_whitespace));
    if valid {
        Ok(())
    } else {
        Err(ApiError::new(
            401,
            "invalid_request_error",
            None,
            "Invalid API Key provided. This fake accepts only test secret keys (sk_test_...).",
        ))
    }
}

/// Runs a POST handler under Stripe's idempotency rules (FACTS §4.5): a key seen before with
/// the same path and parameters replays the stored answer; with different ones it is a 400
/// `idempotency_error`. Only successful executions are stored: validation failures are not.
fn idempotent(
    store: &mut Store,
    req: &RecordedRequest,
    handler: impl FnOnce(&mut Store, Params<'_>) -> Result<Value, ApiError>,
) -> Reply {
    let params = Params(&req.form);
    let Some(key) = req.header("idempotency-key").map(str::to_owned) else {
        return handler(store, params).into();
    };
    let fingerprint = params.fingerprint();
    if let Some(entry) = store.idempotency.get(&key) {
        if entry.path != req.path || entry.params != fingerprint {
            return ApiError::new(
                400,
                "idempotency_error",
                None,
                format!(
                    "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{key}' if you meant to execute a different request."
                ),
            )
            .into();
        }
        return entry
            .reply
            .clone()
            .with_header("idempotent-replayed", "true");
    }
    let reply: Reply = handler(store, params).into();
    if reply.is_success() {
        store.idempotency.insert(
            key,
            IdempotentEntry {
                path: req.path.clone(),
                params: fingerprint,
                reply: reply.clone(),
            },
        );
    }
    reply
}

fn found(object: Option<&Value>, missing: impl FnOnce() -> ApiError) -> Result<Value, ApiError> {
    object.cloned().ok_or_else(missing)
}

fn nullable(value: Option<&str>) -> Value {
    value.map_or(Value::Null, Value::from)
}

/// `customer` must be known to the fake (see [`Store::customer_known`]).
fn checked_customer<'a>(store: &Store, params: Params<'a>) -> Result<Option<&'a str>, ApiError> {
    match params.non_empty("customer") {
        Some(id) if !store.customer_known(id) => {
            Err(ApiError::no_such(400, "customer", id, "customer"))
        }
        customer => Ok(customer),
    }
}

fn create_checkout_session(store: &mut Store, params: Params<'_>) -> Result<Value, ApiError> {
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
    if mode != "setup" && params.non_empty("line_items[0][price]").is_none() {
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

    let id = random_id("cs_test_", 58);
    let created = now();
    let mut session = fixtures::checkout_session();
    set_all(
        &mut session,
        [
            ("id", json!(id)),
            (
                "url",
                json!(format!("https://checkout.stripe.com/c/pay/{id}")),
            ),
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
        ],
    );
    store.add_checkout_session(id, session.clone());
    Ok(session)
}

/// Like Stripe, only an `open` session can be expired; it then loses its `url`.
fn expire_checkout_session(store: &mut Store, id: &str) -> Result<Value, ApiError> {
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
    Ok(session.clone())
}

fn create_portal_session(store: &mut Store, params: Params<'_>) -> Result<Value, ApiError> {
    let customer = checked_customer(store, params)?.ok_or_else(|| ApiError::missing("customer"))?;
    let mut session = fixtures::billing_portal_session();
    set_all(
        &mut session,
        [
            ("id", json!(random_id("bps_", 24))),
            (
                "url",
                json!(format!(
                    "https://billing.stripe.com/p/session/{}",
                    random_id("test_", 40)
                )),
            ),
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
            ("created", json!(now())),
            ("livemode", json!(false)),
        ],
    );
    store.portal_sessions += 1;
    Ok(session)
}

fn create_payment_intent(store: &mut Store, params: Params<'_>) -> Result<Value, ApiError> {
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

    let id = random_id("pi_", 24);
    let mut intent = fixtures::payment_intent();
    let automatic = params
        .get("automatic_payment_methods[enabled]")
        .map_or_else(
            || json!({ "enabled": true }),
            |v| json!({ "enabled": v == "true" }),
        );
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
            ("description", nullable(params.non_empty("description"))),
            ("metadata", Value::Object(params.metadata("metadata"))),
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
            ("status", json!("requires_payment_method")),
            ("created", json!(now())),
            ("livemode", json!(false)),
            // Fixture placeholders that a fresh PaymentIntent does not have.
            ("canceled_at", Value::Null),
            ("last_payment_error", Value::Null),
            ("next_action", Value::Null),
            ("processing", Value::Null),
            ("transfer_data", Value::Null),
            ("latest_charge", Value::Null),
        ],
    );
    store.payment_intents.insert(id, intent.clone());
    Ok(intent)
}

fn create_customer(store: &mut Store, params: Params<'_>) -> Result<Value, ApiError> {
    let id = random_id("cus_", 14);
    let mut customer = fixtures::customer();
    set_all(
        &mut customer,
        [
            ("id", json!(id)),
            ("email", nullable(params.non_empty("email"))),
            ("name", nullable(params.non_empty("name"))),
            ("description", nullable(params.non_empty("description"))),
            ("phone", nullable(params.non_empty("phone"))),
            ("metadata", Value::Object(params.metadata("metadata"))),
            ("created", json!(now())),
            ("livemode", json!(false)),
        ],
    );
    store.customers.insert(id.clone());
    store.customer_objects.insert(id, customer.clone());
    Ok(customer)
}

fn retrieve_customer(store: &Store, id: &str) -> Result<Value, ApiError> {
    if let Some(customer) = store.customer_objects.get(id) {
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

fn retrieve_invoice(store: &Store, id: &str, query: Params<'_>) -> Result<Value, ApiError> {
    let mut invoice = found(store.invoices.get(id), || {
        ApiError::no_such(404, "invoice", id, "invoice")
    })?;
    if query.expand().contains(&"payments") {
        let payments = store.invoice_payments.get(id).cloned().unwrap_or_default();
        set(
            &mut invoice,
            "payments",
            list(payments, &format!("/v1/invoice_payments?invoice={id}")),
        );
    }
    Ok(invoice)
}

/// The answer for an injected [`Failure`] that produces a response.
pub(crate) fn injected(failure: &Failure) -> Option<Reply> {
    let status_error = |status: u16| {
        if status == 429 {
            ApiError::new(
                429,
                "invalid_request_error",
                Some("rate_limit"),
                "Too many requests hit the API too quickly. We recommend an exponential backoff of your requests.",
            )
        } else {
            ApiError::new(
                status,
                "api_error",
                None,
                "An unknown error occurred (injected by the Stripe fake).",
            )
        }
    };
    match failure {
        Failure::Status(status) => Some(status_error(*status).into()),
        Failure::StatusWithShouldRetry(status, retry) => Some(
            Reply::from(status_error(*status))
                .with_header("stripe-should-retry", retry.to_string()),
        ),
        Failure::StripeError {
            status,
            error_type,
            code,
            message,
            param,
        } => Some(
            ApiError {
                status: *status,
                error_type: error_type.clone(),
                code: code.clone(),
                message: message.clone(),
                param: param.clone(),
            }
            .into(),
        ),
        Failure::Hang(_) | Failure::Reset => None,
    }
}
