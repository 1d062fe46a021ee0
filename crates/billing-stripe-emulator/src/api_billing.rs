//! Handlers beyond the service's first calls: PaymentIntent confirmation, subscriptions
//! (list, update, cancel, resume), invoice previews, refunds, charges, disputes, products,
//! prices and test clocks.

use serde_json::{json, Map, Value};

use crate::api::{found, nullable, Call};
use crate::engine::{self, Payment};
use crate::error::ApiError;
use crate::events::emit;
use crate::objects::{self, add_interval, interval_of, InvoiceSpec, PriceSpec};
use crate::request::Params;
use crate::store::{int_of, now, set, set_all, str_of, Card, Store};

fn int_param(params: Params<'_>, key: &str) -> Result<Option<i64>, ApiError> {
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

fn bool_param(params: Params<'_>, key: &str) -> Result<Option<bool>, ApiError> {
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

fn one_of<'a>(
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

fn subscription_missing(id: &str) -> ApiError {
    ApiError::no_such(404, "subscription", id, "subscription_exposed_id")
}

/// `GET /v1/subscriptions`: newest first; `status` defaults to everything but `canceled`.
pub(crate) fn list_subscriptions(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let params = call.params;
    let limit = int_param(params, "limit")?.unwrap_or(10);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            None,
            "This value must be between 1 and 100.",
        ));
    }
    let status = one_of(
        params,
        "status",
        &[
            "active",
            "all",
            "canceled",
            "ended",
            "incomplete",
            "incomplete_expired",
            "past_due",
            "paused",
            "trialing",
            "unpaid",
        ],
    )?;
    let customer = params.non_empty("customer");
    let matching: Vec<&Value> = store
        .subscription_ids
        .iter()
        .rev()
        .filter_map(|id| store.subscriptions.get(id))
        .filter(|s| customer.is_none_or(|c| str_of(s, "customer") == Some(c)))
        .filter(|s| {
            let st = str_of(s, "status").unwrap_or_default();
            match status {
                None => st != "canceled" && st != "incomplete_expired",
                Some("all") => true,
                Some("ended") => st == "canceled" || st == "incomplete_expired",
                Some(wanted) => st == wanted,
            }
        })
        .collect();
    let start = match params.non_empty("starting_after") {
        Some(after) => matching
            .iter()
            .position(|s| str_of(s, "id") == Some(after))
            .map(|i| i + 1)
            .ok_or_else(|| ApiError::no_such(400, "subscription", after, "starting_after"))?,
        None => 0,
    };
    let limit = usize::try_from(limit).unwrap_or(10);
    let rest = &matching[start..];
    let data: Vec<Value> = rest.iter().take(limit).map(|s| (*s).clone()).collect();
    Ok(
        json!({ "object": "list", "data": data, "has_more": rest.len() > limit, "url": "/v1/subscriptions" }),
    )
}

/// Applies `items[N][...]` to a subscription's item list (price switch, quantity, new item).
fn apply_items(
    store: &mut Store,
    sub: &Value,
    params: Params<'_>,
    prefix: &str,
) -> Result<Option<Vec<Value>>, ApiError> {
    let mut items: Vec<Value> = sub["items"]["data"].as_array().cloned().unwrap_or_default();
    let mut touched = false;
    let period = (
        int_of(
            &items.first().cloned().unwrap_or_default(),
            "current_period_start",
        ),
        int_of(
            &items.first().cloned().unwrap_or_default(),
            "current_period_end",
        ),
    );
    for index in 0..20 {
        let key = |field: &str| format!("{prefix}[{index}][{field}]");
        let (id, price, quantity) = (
            params.non_empty(&key("id")),
            params.non_empty(&key("price")),
            int_param(params, &key("quantity"))?,
        );
        if id.is_none() && price.is_none() && quantity.is_none() {
            break;
        }
        touched = true;
        let price = price
            .map(|p| objects::known_price(store, p, &key("price")))
            .transpose()?;
        match id {
            Some(id) => {
                let item = items
                    .iter_mut()
                    .find(|i| str_of(i, "id") == Some(id))
                    .ok_or_else(|| ApiError::no_such(400, "subscription_item", id, &key("id")))?;
                if let Some(price) = price {
                    let replacement = objects::subscription_item(
                        str_of(sub, "id").unwrap_or_default(),
                        &price,
                        item["quantity"].as_i64().unwrap_or(1),
                        period,
                        int_of(item, "created"),
                    );
                    set(item, "price", replacement["price"].clone());
                    set(item, "plan", replacement["plan"].clone());
                }
                if let Some(quantity) = quantity {
                    set(item, "quantity", json!(quantity));
                }
            }
            None => {
                let price = price.ok_or_else(|| ApiError::missing(&key("price")))?;
                items.push(objects::subscription_item(
                    str_of(sub, "id").unwrap_or_default(),
                    &price,
                    quantity.unwrap_or(1),
                    period,
                    store.time_for(str_of(sub, "customer")),
                ));
            }
        }
    }
    Ok(touched.then_some(items))
}

/// The amount of one item over a period.
fn item_amount(item: &Value) -> i64 {
    int_of(&item["price"], "unit_amount") * item["quantity"].as_i64().unwrap_or(1)
}

/// Proration lines for moving from `old` to `new` items at `at` within the current period.
fn proration_lines(invoice: &str, sub: &str, old: &[Value], new: &[Value], at: i64) -> Vec<Value> {
    let mut lines = Vec::new();
    for (before, after) in old.iter().zip(new) {
        let (start, end) = (
            int_of(before, "current_period_start"),
            int_of(before, "current_period_end"),
        );
        if item_amount(before) == item_amount(after) || end <= start || at >= end {
            continue;
        }
        let share = |amount: i64| amount * (end - at.max(start)) / (end - start);
        lines.push(objects::line_item(
            invoice,
            Some(sub),
            before,
            (at, end),
            -share(item_amount(before)),
            true,
        ));
        lines.push(objects::line_item(
            invoice,
            Some(sub),
            after,
            (at, end),
            share(item_amount(after)),
            true,
        ));
    }
    lines
}

/// `POST /v1/subscriptions/{id}`.
pub(crate) fn update_subscription(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let id = call.id().to_owned();
    let params = call.params;
    let sub = found(store.subscriptions.get(&id), || subscription_missing(&id))?;
    if str_of(&sub, "status") == Some("canceled") {
        return Err(ApiError::new(
            400,
            "invalid_request_error",
            None,
            "A canceled subscription can only update its cancellation_details and metadata.",
        ));
    }
    let proration = one_of(
        params,
        "proration_behavior",
        &["always_invoice", "create_prorations", "none"],
    )?
    .unwrap_or("create_prorations");
    let cancel_at_period_end = bool_param(params, "cancel_at_period_end")?;
    let pause = match params.get("pause_collection") {
        Some("") => Some(Value::Null),
        _ => one_of(params, "pause_collection[behavior]", &["keep_as_draft", "mark_uncollectible", "void"])?
            .map(|behavior| json!({ "behavior": behavior, "resumes_at": int_param(params, "pause_collection[resumes_at]").ok().flatten() })),
    };
    let new_items = apply_items(store, &sub, params, "items")?;
    let at = store.time_for(str_of(&sub, "customer"));
    let old_items = sub["items"]["data"].clone();
    let mut metadata = sub["metadata"].as_object().cloned().unwrap_or_default();
    if params.get("metadata") == Some("") {
        metadata.clear();
    }
    for (key, value) in params.0.iter().filter_map(|(k, v)| {
        k.strip_prefix("metadata[")?
            .strip_suffix(']')
            .map(|k| (k, v))
    }) {
        if value.is_empty() {
            metadata.remove(key);
        } else {
            metadata.insert(key.to_owned(), json!(value));
        }
    }
    let default_pm = params
        .non_empty("default_payment_method")
        .map(str::to_owned);
    let old = engine::update_subscription(store, &id, |s| {
        if let Some(items) = &new_items {
            set(&mut s["items"], "data", json!(items));
        }
        if let Some(flag) = cancel_at_period_end {
            let end = s["items"]["data"][0]["current_period_end"].clone();
            set(s, "cancel_at_period_end", json!(flag));
            set(s, "cancel_at", if flag { end } else { Value::Null });
            set(s, "canceled_at", if flag { json!(at) } else { Value::Null });
        }
        if let Some(pause) = pause {
            set(s, "pause_collection", pause);
        }
        set(s, "metadata", Value::Object(metadata));
        if let Some(pm) = default_pm {
            set(s, "default_payment_method", json!(pm));
        }
    })
    .ok_or_else(|| subscription_missing(&id))?;
    let items_changed = new_items.is_some().then(|| sub["items"].clone());
    engine::subscription_updated(store, &old, items_changed, at);
    if let (Some(items), "always_invoice") = (&new_items, proration) {
        let old_list: Vec<Value> = old_items.as_array().cloned().unwrap_or_default();
        let invoice_id = crate::store::random_id("in_", 24);
        let lines = proration_lines(&invoice_id, &id, &old_list, items, at);
        if !lines.is_empty() {
            let current = store.subscriptions[&id].clone();
            let customer = str_of(&current, "customer").unwrap_or_default().to_owned();
            let invoice = objects::invoice(
                store,
                Some(&invoice_id),
                InvoiceSpec {
                    customer: &customer,
                    subscription: Some(&current),
                    lines,
                    billing_reason: "subscription_update",
                    period: (at, at),
                    at,
                },
            );
            store.invoices.insert(invoice_id.clone(), invoice.clone());
            emit(store, "invoice.created", &invoice, None, at);
            engine::finalize(store, &invoice_id, at);
            if int_of(&store.invoices[&invoice_id], "amount_due") <= 0 {
                engine::mark_paid(store, &invoice_id, false, at);
            } else {
                let outcome = engine::attempt_payment(store, &invoice_id, at);
                if outcome != Payment::Paid {
                    engine::after_payment(store, &id, outcome, None, at);
                }
            }
            if let Some(s) = store.subscriptions.get_mut(&id) {
                set(s, "latest_invoice", json!(invoice_id));
            }
        }
    }
    found(store.subscriptions.get(&id), || subscription_missing(&id))
}

/// `DELETE /v1/subscriptions/{id}`: canceled now.
pub(crate) fn cancel_subscription(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let id = call.id().to_owned();
    let sub = found(store.subscriptions.get(&id), || subscription_missing(&id))?;
    if str_of(&sub, "status") == Some("canceled") {
        return Err(ApiError::new(
            400,
            "invalid_request_error",
            Some("resource_missing"),
            format!("No such subscription: '{id}'"),
        )
        .with_param("subscription_exposed_id"));
    }
    let at = store.time_for(str_of(&sub, "customer"));
    engine::cancel_now(store, &id, "cancellation_requested", at)
        .ok_or_else(|| subscription_missing(&id))
}

/// `POST /v1/subscriptions/{id}/resume`: only a `paused` subscription.
pub(crate) fn resume_subscription(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let id = call.id().to_owned();
    let sub = found(store.subscriptions.get(&id), || subscription_missing(&id))?;
    if str_of(&sub, "status") != Some("paused") {
        return Err(ApiError::new(
            400,
            "invalid_request_error",
            None,
            "Only paused subscriptions can be resumed.",
        ));
    }
    let at = store.time_for(str_of(&sub, "customer"));
    let old = engine::update_subscription(store, &id, |s| {
        set(s, "status", json!("active"));
        set(s, "pause_collection", Value::Null);
    })
    .ok_or_else(|| subscription_missing(&id))?;
    let resumed = store.subscriptions[&id].clone();
    let previous = crate::events::changed(&old, &resumed, &["status"]);
    emit(
        store,
        "customer.subscription.resumed",
        &resumed,
        Some(previous),
        at,
    );
    Ok(resumed)
}

/// `POST /v1/invoices/create_preview`: the next invoice of a subscription (with changes and
/// prorations), as an invoice without an id.
pub(crate) fn preview_invoice(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let params = call.params;
    let sub = match params.non_empty("subscription") {
        Some(id) => Some(
            store
                .subscriptions
                .get(id)
                .cloned()
                .ok_or_else(|| ApiError::no_such(400, "subscription", id, "subscription"))?,
        ),
        None => None,
    };
    let customer = params
        .non_empty("customer")
        .map(str::to_owned)
        .or_else(|| {
            sub.as_ref()
                .and_then(|s| str_of(s, "customer"))
                .map(str::to_owned)
        })
        .ok_or_else(|| ApiError::missing("customer"))?;
    if !store.customer_known(&customer) {
        return Err(ApiError::no_such(400, "customer", &customer, "customer"));
    }
    let at = store.time_for(Some(&customer));
    let base = sub.clone().unwrap_or_else(
        || json!({ "id": null, "customer": customer, "metadata": {}, "items": { "data": [] } }),
    );
    let items = apply_items(store, &base, params, "subscription_details[items]")?;
    let old_items: Vec<Value> = base["items"]["data"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let new_items = items.clone().unwrap_or_else(|| old_items.clone());
    let proration = one_of(
        params,
        "subscription_details[proration_behavior]",
        &["always_invoice", "create_prorations", "none"],
    )?
    .unwrap_or("create_prorations");
    let proration_date = int_param(params, "subscription_details[proration_date]")?.unwrap_or(at);
    let sub_id = str_of(&base, "id").map(str::to_owned);
    let mut lines = Vec::new();
    if items.is_some() && proration != "none" {
        if let Some(sub_id) = &sub_id {
            lines.extend(proration_lines(
                "",
                sub_id,
                &old_items,
                &new_items,
                proration_date,
            ));
        }
    }
    let period_start = new_items
        .first()
        .and_then(|i| i["current_period_end"].as_i64())
        .filter(|_| sub.is_some())
        .unwrap_or(at);
    for item in &new_items {
        let (interval, count) = interval_of(&item["price"]);
        let end = add_interval(period_start, &interval, count);
        lines.push(objects::line_item(
            "",
            sub_id.as_deref(),
            item,
            (period_start, end),
            item_amount(item),
            false,
        ));
    }
    let mut invoice = objects::invoice(
        store,
        None,
        InvoiceSpec {
            customer: &customer,
            subscription: sub.as_ref(),
            lines,
            billing_reason: if sub.is_some() {
                "upcoming"
            } else {
                "subscription_create"
            },
            period: (period_start, period_start),
            at,
        },
    );
    if let Value::Object(map) = &mut invoice {
        map.remove("id");
    }
    Ok(invoice)
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
