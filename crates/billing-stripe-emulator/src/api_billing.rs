//! Handlers beyond the service's first calls: PaymentIntent confirmation, subscriptions
//! (list, update, cancel, resume), invoice previews, refunds, charges, disputes, products,
//! prices and test clocks.

use serde_json::{json, Map, Value};

use crate::api::{found, nullable, Call};
use crate::engine::{self, Payment};
use crate::error::ApiError;
use crate::events::emit;
use crate::objects::{self, PriceSpec};
use crate::request::Params;
use crate::store::{int_of, now, set, set_all, str_of, Card, Store};

pub(crate) fn int_param(params: Params<'_>, key: &str) -> Result<Option<i64>, ApiError> {
    params
        .non_empty(key)
        .map(|v| {
            v.parse::<i64>().map_err(|_| {
                ApiError::invalid(
                    key,
                    Some("parameter_invalid_integer"),
                    format!("Invalid integer: {v}"),
                )
            })
        })
        .transpose()
}

pub(crate) fn bool_param(params: Params<'_>, key: &str) -> Result<Option<bool>, ApiError> {
    match params.non_empty(key) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(v) => Err(ApiError::invalid(
            key,
            Some("parameter_invalid_boolean"),
            format!("Invalid boolean: {v}"),
        )),
    }
}

pub(crate) fn one_of<'a>(
    params: Params<'a>,
    key: &str,
    allowed: &[&str],
) -> Result<Option<&'a str>, ApiError> {
    match params.non_empty(key) {
        Some(v) if !allowed.contains(&v) => Err(ApiError::invalid(
            key,
            None,
            format!("Invalid {key}: must be one of {}", allowed.join(", ")),
        )),
        v => Ok(v),
    }
}

/// The invoice a PaymentIntent pays, if any.
pub(crate) fn invoice_of_intent(store: &Store, pi: &str) -> Option<String> {
    store
        .invoice_payments
        .iter()
        .find_map(|(invoice, payments)| {
            payments
                .iter()
                .any(|p| p["payment"]["payment_intent"].as_str() == Some(pi))
                .then(|| invoice.clone())
        })
}

/// After a PaymentIntent of an invoice succeeded: the invoice is paid, its subscription follows.
pub(crate) fn intent_paid(store: &mut Store, pi: &str, at: i64) {
    let Some(invoice) = invoice_of_intent(store, pi) else {
        return;
    };
    if store
        .invoices
        .get(&invoice)
        .and_then(|i| str_of(i, "status"))
        != Some("open")
    {
        return;
    }
    store.add_invoice_payment(&invoice, pi, "paid");
    engine::mark_paid(store, &invoice, false, at);
    let sub = store.invoices[&invoice]["parent"]["subscription_details"]["subscription"]
        .as_str()
        .map(str::to_owned);
    if let Some(sub) = sub {
        engine::after_payment(store, &sub, Payment::Paid, None, at);
    }
}

/// `POST /v1/payment_intents/{intent}/confirm` with a test payment method.
pub(crate) fn confirm_payment_intent(
    store: &mut Store,
    call: &Call<'_>,
) -> Result<Value, ApiError> {
    let id = call.id().to_owned();
    let intent = found(store.payment_intents.get(&id), || {
        ApiError::no_such(404, "payment_intent", &id, "intent")
    })?;
    let status = str_of(&intent, "status").unwrap_or_default().to_owned();
    if !matches!(
        status.as_str(),
        "requires_payment_method" | "requires_confirmation" | "requires_action"
    ) {
        return Err(ApiError::new(
            400,
            "invalid_request_error",
            Some("payment_intent_unexpected_state"),
            format!("You cannot confirm this PaymentIntent because it has a status of {status}. Only a PaymentIntent with one of the following statuses may be confirmed: requires_confirmation, requires_payment_method, requires_action."),
        ));
    }
    let customer = str_of(&intent, "customer").map(str::to_owned);
    let at = store.time_for(customer.as_deref());
    let pm_param = call
        .params
        .non_empty("payment_method")
        .map(str::to_owned)
        .or_else(|| str_of(&intent, "payment_method").map(str::to_owned))
        .ok_or_else(|| {
            ApiError::new(
                400,
                "invalid_request_error",
                Some("payment_intent_unexpected_state"),
                "You cannot confirm this PaymentIntent because it's missing a payment method.",
            )
        })?;
    let (pm, card) = if let Some(card) = store.cards.get(&pm_param) {
        (pm_param.clone(), *card)
    } else {
        let card = Card::parse(&pm_param)
            .ok_or_else(|| ApiError::no_such(400, "PaymentMethod", &pm_param, "payment_method"))?;
        let owner = customer.clone().unwrap_or_default();
        let pm = objects::payment_method(store, card, &owner, at);
        (str_of(&pm, "id").unwrap_or_default().to_owned(), card)
    };
    if card == Card::Authenticate && status != "requires_action" {
        let return_url = call.params.non_empty("return_url");
        let url = format!("{}/pay/authenticate/{id}", store.settings.base_url);
        let Some(stored) = store.payment_intents.get_mut(&id) else {
            return Err(ApiError::no_such(404, "payment_intent", &id, "intent"));
        };
        set_all(
            stored,
            [
                ("status", json!("requires_action")),
                ("payment_method", json!(pm)),
                (
                    "next_action",
                    json!({ "type": "redirect_to_url",
                            "redirect_to_url": { "url": url, "return_url": return_url } }),
                ),
            ],
        );
        let stored = stored.clone();
        emit(store, "payment_intent.requires_action", &stored, None, at);
        if let Some(invoice) = invoice_of_intent(store, &id) {
            if let Some(invoice) = store.invoices.get(&invoice).cloned() {
                emit(store, "invoice.payment_action_required", &invoice, None, at);
            }
        }
        return Ok(stored);
    }
    if status == "requires_action" {
        return Ok(intent);
    }
    match engine::charge_intent(store, &id, &pm, card, at) {
        Ok(()) => {
            intent_paid(store, &id, at);
            found(store.payment_intents.get(&id), || {
                ApiError::no_such(404, "payment_intent", &id, "intent")
            })
        }
        Err(failure) => {
            failure.emit(store, at);
            let (code, decline_code, message) = card.decline().unwrap_or((
                "card_declined",
                "generic_decline",
                "Your card was declined.",
            ));
            let mut extra = Map::new();
            extra.insert("decline_code".into(), json!(decline_code));
            if let Some(charge) = failure.charge.as_ref().and_then(|c| c.get("id")) {
                extra.insert("charge".into(), charge.clone());
            }
            extra.insert(
                "payment_intent".into(),
                failure.intent.clone().unwrap_or(Value::Null),
            );
            let mut error = ApiError::new(402, "card_error", Some(code), message);
            error.extra = Some(Box::new(extra));
            Err(error)
        }
    }
}

/// The buyer's answer to a 3-D Secure challenge on a PaymentIntent in `requires_action`.
pub(crate) fn authenticate_intent(
    store: &mut Store,
    id: &str,
    approve: bool,
) -> Result<Value, ApiError> {
    let intent = found(store.payment_intents.get(id), || {
        ApiError::no_such(404, "payment_intent", id, "intent")
    })?;
    if str_of(&intent, "status") != Some("requires_action") {
        return Err(ApiError::new(
            400,
            "invalid_request_error",
            Some("payment_intent_unexpected_state"),
            "This PaymentIntent does not require an action.",
        ));
    }
    let at = store.time_for(str_of(&intent, "customer"));
    let pm = str_of(&intent, "payment_method")
        .unwrap_or_default()
        .to_owned();
    if approve {
        // Authenticated: the card now pays like 4242.
        let _ = engine::charge_intent(store, id, &pm, Card::Visa, at);
        intent_paid(store, id, at);
    } else if let Some(stored) = store.payment_intents.get_mut(id) {
        set_all(
            stored,
            [
                ("status", json!("requires_payment_method")),
                ("next_action", Value::Null),
                ("payment_method", Value::Null),
                (
                    "last_payment_error",
                    json!({ "type": "invalid_request_error", "code": "payment_intent_authentication_failure",
                            "message": "The provided payment method has failed authentication. Provide a new payment method to attempt to fulfill this PaymentIntent again." }),
                ),
            ],
        );
        let stored = stored.clone();
        emit(store, "payment_intent.payment_failed", &stored, None, at);
    }
    found(store.payment_intents.get(id), || {
        ApiError::no_such(404, "payment_intent", id, "intent")
    })
}

/// A refund of a charge (`payment_intent` resolves to its latest charge). `fail` makes a
/// refund that is `pending` and then `failed` (the amount goes back to the charge).
pub(crate) fn refund_charge(
    store: &mut Store,
    charge_id: &str,
    amount: Option<i64>,
    reason: Option<&str>,
    metadata: Map<String, Value>,
    fail: bool,
) -> Result<Value, ApiError> {
    let charge = store
        .charges
        .get(charge_id)
        .cloned()
        .ok_or_else(|| ApiError::no_such(400, "charge", charge_id, "charge"))?;
    let remaining = int_of(&charge, "amount_captured") - int_of(&charge, "amount_refunded");
    if remaining <= 0 {
        return Err(ApiError::new(
            400,
            "invalid_request_error",
            Some("charge_already_refunded"),
            format!("Charge {charge_id} has already been refunded."),
        )
        .with_param("charge"));
    }
    let amount = amount.unwrap_or(remaining);
    if amount < 1 || amount > remaining {
        return Err(ApiError::invalid("amount", Some("amount_too_large"), format!("Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining}).")));
    }
    let at = store.time_for(str_of(&charge, "customer"));
    let mut refund = objects::refund(
        &charge,
        amount,
        reason,
        if fail { "pending" } else { "succeeded" },
        at,
    );
    set(&mut refund, "metadata", Value::Object(metadata));
    let refund_id = str_of(&refund, "id").unwrap_or_default().to_owned();
    store.refunds.insert(refund_id.clone(), refund.clone());
    let refunded = int_of(&charge, "amount_refunded") + amount;
    let charge = {
        let Some(stored) = store.charges.get_mut(charge_id) else {
            return Err(ApiError::no_such(400, "charge", charge_id, "charge"));
        };
        set_all(
            stored,
            [
                ("amount_refunded", json!(refunded)),
                (
                    "refunded",
                    json!(refunded >= int_of(stored, "amount_captured")),
                ),
            ],
        );
        if let Some(data) = stored["refunds"]["data"].as_array_mut() {
            data.insert(0, refund.clone());
        }
        stored.clone()
    };
    emit(store, "charge.refunded", &charge, None, at);
    emit(store, "refund.created", &refund, None, at);
    if fail {
        let old = refund.clone();
        set_all(
            &mut refund,
            [
                ("status", json!("failed")),
                ("failure_reason", json!("expired_or_canceled_card")),
            ],
        );
        store.refunds.insert(refund_id, refund.clone());
        if let Some(stored) = store.charges.get_mut(charge_id) {
            let back = int_of(stored, "amount_refunded") - amount;
            set_all(
                stored,
                [("amount_refunded", json!(back)), ("refunded", json!(false))],
            );
        }
        let previous = crate::events::changed(&old, &refund, &["status", "failure_reason"]);
        emit(store, "refund.updated", &refund, Some(previous), at);
        emit(store, "refund.failed", &refund, None, at);
    }
    Ok(refund)
}

/// `POST /v1/refunds`.
pub(crate) fn create_refund(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let params = call.params;
    let charge = match (
        params.non_empty("charge"),
        params.non_empty("payment_intent"),
    ) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                400,
                "invalid_request_error",
                None,
                "You may only specify one of these parameters: charge, payment_intent.",
            ))
        }
        (Some(charge), None) => charge.to_owned(),
        (None, Some(pi)) => {
            let intent = store
                .payment_intents
                .get(pi)
                .ok_or_else(|| ApiError::no_such(400, "payment_intent", pi, "payment_intent"))?;
            str_of(intent, "latest_charge")
                .filter(|_| str_of(intent, "status") == Some("succeeded"))
                .map(str::to_owned)
                .ok_or_else(|| ApiError::new(400, "invalid_request_error", None, format!("This PaymentIntent ({pi}) does not have a successful charge to refund.")).with_param("payment_intent"))?
        }
        (None, None) => return Err(ApiError::missing("charge")),
    };
    let amount = int_param(params, "amount")?;
    let reason = one_of(
        params,
        "reason",
        &["duplicate", "fraudulent", "requested_by_customer"],
    )?;
    refund_charge(
        store,
        &charge,
        amount,
        reason,
        params.metadata("metadata"),
        false,
    )
}

macro_rules! retrieve {
    ($name:ident, $field:ident, $kind:literal, $param:literal) => {
        pub(crate) fn $name(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
            let id = call.id();
            found(store.$field.get(id), || {
                ApiError::no_such(404, $kind, id, $param)
            })
        }
    };
}

retrieve!(retrieve_refund, refunds, "refund", "refund");
retrieve!(retrieve_charge, charges, "charge", "charge");
retrieve!(retrieve_dispute, disputes, "dispute", "dispute");
retrieve!(retrieve_product, products, "product", "id");
retrieve!(retrieve_price, prices, "price", "price");
retrieve!(
    retrieve_clock,
    clocks,
    "test_helpers.test_clock",
    "test_clock"
);

/// `POST /v1/products`.
pub(crate) fn create_product(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let params = call.params;
    let name = params
        .non_empty("name")
        .ok_or_else(|| ApiError::missing("name"))?;
    if let Some(id) = params.non_empty("id") {
        if store.products.contains_key(id) {
            return Err(ApiError::invalid(
                "id",
                Some("resource_already_exists"),
                "Product already exists.",
            ));
        }
    }
    let mut product = objects::product(
        store,
        params.non_empty("id"),
        name,
        params.metadata("metadata"),
    );
    set(
        &mut product,
        "description",
        nullable(params.non_empty("description")),
    );
    if let Some(id) = str_of(&product, "id").map(str::to_owned) {
        store.products.insert(id, product.clone());
    }
    emit(store, "product.created", &product, None, now());
    Ok(product)
}

/// `POST /v1/prices`.
pub(crate) fn create_price(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let params = call.params;
    let currency = params
        .non_empty("currency")
        .ok_or_else(|| ApiError::missing("currency"))?;
    let unit_amount =
        int_param(params, "unit_amount")?.ok_or_else(|| ApiError::missing("unit_amount"))?;
    let interval = one_of(
        params,
        "recurring[interval]",
        &["day", "week", "month", "year"],
    )?;
    let interval_count = int_param(params, "recurring[interval_count]")?.unwrap_or(1);
    let product = match (
        params.non_empty("product"),
        params.non_empty("product_data[name]"),
    ) {
        (Some(product), _) => {
            if !store.products.contains_key(product) {
                return Err(ApiError::no_such(400, "product", product, "product"));
            }
            product.to_owned()
        }
        (None, Some(name)) => {
            let product = objects::product(store, None, name, Map::new());
            str_of(&product, "id").unwrap_or_default().to_owned()
        }
        (None, None) => return Err(ApiError::missing("product")),
    };
    let price = objects::price(
        store,
        &PriceSpec {
            id: None,
            product: &product,
            unit_amount,
            currency,
            interval,
            interval_count,
            nickname: params.non_empty("nickname"),
            lookup_key: params.non_empty("lookup_key"),
            metadata: params.metadata("metadata"),
        },
    );
    emit(store, "price.created", &price, None, now());
    Ok(price)
}

/// `POST /v1/test_helpers/test_clocks`.
pub(crate) fn create_clock(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let frozen =
        int_param(call.params, "frozen_time")?.ok_or_else(|| ApiError::missing("frozen_time"))?;
    let clock = objects::test_clock(frozen, call.params.non_empty("name"));
    let id = str_of(&clock, "id").unwrap_or_default().to_owned();
    store.clocks.insert(id, clock.clone());
    emit(
        store,
        "test_helpers.test_clock.created",
        &clock,
        None,
        frozen,
    );
    Ok(clock)
}

/// `POST /v1/test_helpers/test_clocks/{id}/advance`: runs everything due up to
/// `frozen_time`; answers `advancing` as Stripe does (the clock reads `ready` afterwards).
pub(crate) fn advance_clock(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let id = call.id().to_owned();
    let clock = found(store.clocks.get(&id), || {
        ApiError::no_such(404, "test_helpers.test_clock", &id, "test_clock")
    })?;
    let target =
        int_param(call.params, "frozen_time")?.ok_or_else(|| ApiError::missing("frozen_time"))?;
    if target <= int_of(&clock, "frozen_time") {
        return Err(ApiError::invalid(
            "frozen_time",
            None,
            "The frozen_time must be after the test clock's current frozen_time.",
        ));
    }
    crate::clock::advance(store, &id, target);
    let mut answer = store.clocks.get(&id).cloned().unwrap_or(clock);
    set(&mut answer, "status", json!("advancing"));
    Ok(answer)
}
