//! The billing engine: subscriptions and their invoices, payments with test cards, and the
//! events each step emits, in the order of `docs/stripe.md` (Lifecycle).

use serde_json::{json, Value};

use crate::config::AfterRetries;
use crate::events::{changed, emit};
use crate::objects::{self, add_interval, interval_of, InvoiceSpec};
use crate::store::{int_of, random_id, set, set_all, str_of, Store};

pub(crate) use crate::invoices::{
    attempt_payment, charge_intent, finalize, mark_paid, mark_uncollectible, void_invoice, Payment,
};

/// Keys of a subscription worth a `previous_attributes` entry.
const SUBSCRIPTION_KEYS: &[&str] = &[
    "status",
    "cancel_at_period_end",
    "cancel_at",
    "canceled_at",
    "ended_at",
    "pause_collection",
    "latest_invoice",
    "trial_end",
    "metadata",
    "default_payment_method",
    "cancellation_details",
];

/// Emits `customer.subscription.updated` for `old` → the stored subscription, with
/// `previous_items` (the whole old list) when the items changed.
pub(crate) fn subscription_updated(
    store: &mut Store,
    old: &Value,
    previous_items: Option<Value>,
    at: i64,
) {
    let id = str_of(old, "id").unwrap_or_default().to_owned();
    let Some(new) = store.subscriptions.get(&id).cloned() else {
        return;
    };
    let mut previous = changed(old, &new, SUBSCRIPTION_KEYS);
    if let Some(items) = previous_items {
        previous.insert("items".into(), items);
    }
    if !previous.is_empty() {
        emit(
            store,
            "customer.subscription.updated",
            &new,
            Some(previous),
            at,
        );
    }
}

/// Applies `change` to a stored subscription and returns the old version.
pub(crate) fn update_subscription(
    store: &mut Store,
    id: &str,
    change: impl FnOnce(&mut Value),
) -> Option<Value> {
    let sub = store.subscriptions.get_mut(id)?;
    let old = sub.clone();
    change(sub);
    Some(old)
}

/// Creates a subscription for `customer` on `lines` (`(price, quantity)`), `trialing` with a
/// trial, else `incomplete` until its first invoice is paid. Emits
/// `customer.subscription.created`.
pub(crate) fn create_subscription(
    store: &mut Store,
    customer: &str,
    lines: &[(Value, i64)],
    trial_days: Option<i64>,
    metadata: Value,
    payment_method: Option<&str>,
    at: i64,
) -> String {
    let id = random_id("sub_", 24);
    let (interval, count) = lines
        .first()
        .map_or(("month".to_owned(), 1), |(price, _)| interval_of(price));
    let trial_end = trial_days.filter(|d| *d > 0).map(|days| at + days * 86_400);
    let period_end = trial_end.unwrap_or_else(|| add_interval(at, &interval, count));
    let items: Vec<Value> = lines
        .iter()
        .map(|(price, qty)| objects::subscription_item(&id, price, *qty, (at, period_end), at))
        .collect();
    let currency = lines
        .first()
        .map_or(json!("usd"), |(price, _)| price["currency"].clone());
    let test_clock = store
        .customers
        .get(customer)
        .map_or(Value::Null, |c| c["test_clock"].clone());
    let mut sub = crate::fixtures::subscription();
    set_all(
        &mut sub,
        [
            ("id", json!(id)),
            ("customer", json!(customer)),
            (
                "items",
                json!({ "object": "list", "data": items, "has_more": false,
                        "url": format!("/v1/subscription_items?subscription={id}") }),
            ),
            (
                "status",
                json!(if trial_end.is_some() {
                    "trialing"
                } else {
                    "incomplete"
                }),
            ),
            ("created", json!(at)),
            ("start_date", json!(at)),
            ("billing_cycle_anchor", json!(trial_end.unwrap_or(at))),
            ("billing_cycle_anchor_config", Value::Null),
            ("currency", currency),
            ("metadata", metadata),
            (
                "default_payment_method",
                payment_method.map_or(Value::Null, Value::from),
            ),
            ("latest_invoice", Value::Null),
            ("trial_start", trial_end.map_or(Value::Null, |_| json!(at))),
            ("trial_end", trial_end.map_or(Value::Null, Value::from)),
            ("cancel_at", Value::Null),
            ("canceled_at", Value::Null),
            ("ended_at", Value::Null),
            ("cancel_at_period_end", json!(false)),
            (
                "cancellation_details",
                json!({ "comment": null, "feedback": null, "reason": null }),
            ),
            ("pause_collection", Value::Null),
            ("pending_update", Value::Null),
            ("pending_setup_intent", Value::Null),
            ("pending_invoice_item_interval", Value::Null),
            ("next_pending_invoice_item_invoice", Value::Null),
            ("transfer_data", Value::Null),
            ("billing_thresholds", Value::Null),
            ("billing_schedules", json!([])),
            ("test_clock", test_clock),
            ("livemode", json!(false)),
        ],
    );
    store.put_subscription(&id, sub.clone());
    emit(store, "customer.subscription.created", &sub, None, at);
    id
}

/// Creates (and stores) a draft invoice for a subscription's items over `period`, amounts
/// zero when `zero`. Emits `invoice.created`.
pub(crate) fn subscription_invoice(
    store: &mut Store,
    sub_id: &str,
    reason: &str,
    period: (i64, i64),
    zero: bool,
    at: i64,
) -> Option<String> {
    let sub = store.subscriptions.get(sub_id)?.clone();
    let customer = str_of(&sub, "customer")?.to_owned();
    let id = random_id("in_", 24);
    let lines: Vec<Value> = sub["items"]["data"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|item| {
            let amount = if zero {
                0
            } else {
                int_of(&item["price"], "unit_amount") * item["quantity"].as_i64().unwrap_or(1)
            };
            let line_period = (
                int_of(item, "current_period_start"),
                int_of(item, "current_period_end"),
            );
            objects::line_item(&id, Some(sub_id), item, line_period, amount, false)
        })
        .collect();
    let invoice = objects::invoice(
        store,
        Some(&id),
        InvoiceSpec {
            customer: &customer,
            subscription: Some(&sub),
            lines,
            billing_reason: reason,
            period,
            at,
        },
    );
    store.invoices.insert(id.clone(), invoice.clone());
    if let Some(sub) = store.subscriptions.get_mut(sub_id) {
        set(sub, "latest_invoice", json!(id));
    }
    emit(store, "invoice.created", &invoice, None, at);
    Some(id)
}

/// The subscription's state after an invoice payment attempt (and the cancellation or
/// `unpaid` status when a final retry failed). Emits `customer.subscription.updated` /
/// `.deleted`.
pub(crate) fn after_payment(
    store: &mut Store,
    sub_id: &str,
    outcome: Payment,
    previous_items: Option<Value>,
    at: i64,
) {
    if let Some(old) = store.subscriptions.get(sub_id).cloned() {
        after_payment_from(store, sub_id, outcome, &old, previous_items, at);
    }
}

/// Ends a subscription now. Emits `customer.subscription.deleted`.
pub(crate) fn cancel_now(store: &mut Store, sub_id: &str, reason: &str, at: i64) -> Option<Value> {
    let sub = store.subscriptions.get_mut(sub_id)?;
    if str_of(sub, "status") == Some("canceled") {
        return Some(sub.clone());
    }
    if sub["canceled_at"].is_null() {
        set(sub, "canceled_at", json!(at));
    }
    set_all(
        sub,
        [
            ("status", json!("canceled")),
            ("ended_at", json!(at)),
            (
                "cancellation_details",
                json!({ "comment": null, "feedback": null, "reason": reason }),
            ),
        ],
    );
    let sub = sub.clone();
    emit(store, "customer.subscription.deleted", &sub, None, at);
    Some(sub)
}

/// Pays the first invoice of a new subscription (created by Checkout): finalize, charge,
/// then the subscription becomes `active` (or stays `trialing`).
pub(crate) fn first_invoice(store: &mut Store, sub_id: &str, at: i64) -> Option<String> {
    let trialing = store
        .subscriptions
        .get(sub_id)
        .is_some_and(|s| str_of(s, "status") == Some("trialing"));
    let invoice =
        subscription_invoice(store, sub_id, "subscription_create", (at, at), trialing, at)?;
    finalize(store, &invoice, at);
    let outcome = attempt_payment(store, &invoice, at);
    if !trialing {
        after_payment(store, sub_id, outcome, None, at);
    }
    Some(invoice)
}

/// The renewal at the end of a period (or trial): a cancellation when one is due, else the
/// items move to the next period and a `subscription_cycle` draft is made, finalized an
/// hour later (see [`crate::clock`]).
pub(crate) fn renew(store: &mut Store, sub_id: &str, at: i64) {
    let Some(sub) = store.subscriptions.get(sub_id).cloned() else {
        return;
    };
    let cancel_due = sub["cancel_at_period_end"].as_bool() == Some(true)
        || sub["cancel_at"].as_i64().is_some_and(|t| t <= at);
    if cancel_due {
        cancel_now(store, sub_id, "cancellation_requested", at);
        return;
    }
    let old_items = sub["items"].clone();
    let old_start = old_items["data"][0]["current_period_start"]
        .as_i64()
        .unwrap_or(at);
    let Some(_) = update_subscription(store, sub_id, |sub| {
        if let Some(items) = sub["items"]["data"].as_array_mut() {
            for item in items {
                let (interval, count) = interval_of(&item["price"]);
                let end = add_interval(at, &interval, count);
                set(item, "current_period_start", json!(at));
                set(item, "current_period_end", json!(end));
            }
        }
    }) else {
        return;
    };
    let Some(invoice) = subscription_invoice(
        store,
        sub_id,
        "subscription_cycle",
        (old_start, at),
        false,
        at,
    ) else {
        return;
    };
    store
        .renewal_previous
        .insert(invoice.clone(), (sub, old_items));
    let keep_as_draft = str_of(&store.subscriptions[sub_id]["pause_collection"], "behavior")
        == Some("keep_as_draft");
    if let Some(inv) = store.invoices.get_mut(&invoice) {
        if keep_as_draft {
            set(inv, "auto_advance", json!(false));
        } else {
            set(inv, "automatically_finalizes_at", json!(at + 3600));
        }
    }
    if keep_as_draft {
        if let Some((old, items)) = store.renewal_previous.remove(&invoice) {
            subscription_updated(store, &old, Some(items), at);
        }
    }
}

/// Finalizes a renewal draft and collects it (or voids / marks it uncollectible while
/// collection is paused), then the subscription follows.
pub(crate) fn finalize_renewal(store: &mut Store, invoice_id: &str, at: i64) {
    let Some(invoice) = finalize(store, invoice_id, at) else {
        return;
    };
    let sub_id = invoice["parent"]["subscription_details"]["subscription"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let previous = store.renewal_previous.remove(invoice_id);
    let pause = store
        .subscriptions
        .get(&sub_id)
        .and_then(|s| str_of(&s["pause_collection"], "behavior"))
        .map(str::to_owned);
    match pause.as_deref() {
        Some("void") => {
            void_invoice(store, invoice_id, at);
        }
        Some("mark_uncollectible") => {
            mark_uncollectible(store, invoice_id, at);
        }
        _ => {
            let outcome = attempt_payment(store, invoice_id, at);
            // Status and period in one update, as the table of docs/stripe.md (Lifecycle) shows it.
            match previous {
                Some((old, items)) => {
                    after_payment_from(store, &sub_id, outcome, &old, Some(items), at);
                }
                None => after_payment(store, &sub_id, outcome, None, at),
            }
            return;
        }
    }
    if let Some((old, items)) = previous {
        subscription_updated(store, &old, Some(items), at);
    }
}

/// [`after_payment`] comparing against `old` (the subscription before its renewal).
fn after_payment_from(
    store: &mut Store,
    sub_id: &str,
    outcome: Payment,
    old: &Value,
    items: Option<Value>,
    at: i64,
) {
    let after = store.settings.after_retries;
    let Some(_) = update_subscription(store, sub_id, |sub| {
        let status = str_of(sub, "status").unwrap_or_default().to_owned();
        let next = match outcome {
            _ if matches!(status.as_str(), "canceled" | "incomplete_expired") => status.clone(),
            Payment::Failed { .. } if status == "incomplete" => status.clone(),
            Payment::Paid => "active".to_owned(),
            Payment::Failed {
                final_attempt: true,
            } if after == AfterRetries::Unpaid => "unpaid".to_owned(),
            Payment::Failed { .. } => "past_due".to_owned(),
        };
        set(sub, "status", json!(next));
    }) else {
        return;
    };
    subscription_updated(store, old, items, at);
    if outcome
        == (Payment::Failed {
            final_attempt: true,
        })
        && after == AfterRetries::Cancel
    {
        cancel_now(store, sub_id, "payment_failed", at);
    }
}

/// A retry of a failed renewal (`next_payment_attempt` reached).
pub(crate) fn retry(store: &mut Store, invoice_id: &str, at: i64) {
    let outcome = attempt_payment(store, invoice_id, at);
    let sub_id = store
        .invoices
        .get(invoice_id)
        .and_then(|i| i["parent"]["subscription_details"]["subscription"].as_str())
        .map(str::to_owned);
    let Some(sub_id) = sub_id else {
        return;
    };
    match outcome {
        Payment::Paid
        | Payment::Failed {
            final_attempt: true,
        } => {
            after_payment(store, &sub_id, outcome, None, at);
        }
        Payment::Failed {
            final_attempt: false,
        } => {}
    }
}
