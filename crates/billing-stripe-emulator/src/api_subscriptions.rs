//! Subscription calls: list, update (items, prorations, cancel at period end, pause,
//! metadata), cancel, resume, and the invoice preview.

use serde_json::{json, Value};

use crate::api::{found, Call};
use crate::api_billing::{bool_param, int_param, one_of};
use crate::engine::{self, Payment};
use crate::error::ApiError;
use crate::events::emit;
use crate::objects::{self, add_interval, interval_of, InvoiceSpec};
use crate::request::Params;
use crate::store::{int_of, set, str_of, Store};

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
