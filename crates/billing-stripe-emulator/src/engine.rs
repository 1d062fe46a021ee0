//! The billing engine: subscriptions and their invoices, payments with test cards, and the
//! events each step emits, in the order of `LIFECYCLE.md` §1.

use serde_json::{json, Map, Value};

use crate::config::AfterRetries;
use crate::events::{changed, emit};
use crate::objects::{self, add_interval, interval_of, InvoiceSpec};
use crate::store::{int_of, random_id, set, set_all, str_of, Card, Store};

/// How an attempt to pay an invoice ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Payment {
    Paid,
    /// Failed; `final_attempt` when no retry is scheduled.
    Failed {
        final_attempt: bool,
    },
}

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

/// Finalizes a draft invoice: `open`, numbered, with its hosted page and PDF. Emits
/// `invoice.finalized`.
pub(crate) fn finalize(store: &mut Store, id: &str, at: i64) -> Option<Value> {
    store.invoice_number += 1;
    let number = store.invoice_number;
    let base = store.settings.base_url.clone();
    let hosted = store.settings.hosted_pages;
    let invoice = store.invoices.get_mut(id)?;
    let prefix = random_id("", 8).to_ascii_uppercase();
    let (page, pdf) = if hosted {
        (format!("{base}/i/{id}"), format!("{base}/i/{id}/pdf"))
    } else {
        let token = random_id("test_", 40);
        (
            format!("https://invoice.stripe.com/i/acct_emulator/{token}"),
            format!("https://pay.stripe.com/invoice/acct_emulator/{token}/pdf"),
        )
    };
    set_all(
        invoice,
        [
            ("status", json!("open")),
            ("number", json!(format!("{prefix}-{number:04}"))),
            ("hosted_invoice_url", json!(page)),
            ("invoice_pdf", json!(pdf)),
            ("effective_at", json!(at)),
            ("automatically_finalizes_at", Value::Null),
        ],
    );
    set(
        &mut invoice["status_transitions"],
        "finalized_at",
        json!(at),
    );
    let invoice = invoice.clone();
    emit(store, "invoice.finalized", &invoice, None, at);
    Some(invoice)
}

/// Marks an open invoice paid (`paid_out_of_band` when no payment was involved). Emits
/// `invoice.paid` and, unless out of band, `invoice.payment_succeeded`.
pub(crate) fn mark_paid(store: &mut Store, id: &str, out_of_band: bool, at: i64) {
    let Some(invoice) = store.invoices.get_mut(id) else {
        return;
    };
    let due = int_of(invoice, "amount_due");
    set_all(
        invoice,
        [
            ("status", json!("paid")),
            ("amount_paid", json!(due)),
            ("amount_remaining", json!(0)),
            ("next_payment_attempt", Value::Null),
            ("paid_out_of_band", json!(out_of_band)),
        ],
    );
    if due > 0 && !out_of_band {
        set(invoice, "attempted", json!(true));
    }
    set(&mut invoice["status_transitions"], "paid_at", json!(at));
    let invoice = invoice.clone();
    emit(store, "invoice.paid", &invoice, None, at);
    if !out_of_band {
        emit(store, "invoice.payment_succeeded", &invoice, None, at);
    }
}

/// The customer's default card: its `pm_...` id and what it does.
pub(crate) fn default_card(store: &Store, customer: &str) -> Option<(String, Card)> {
    let pm = store
        .customers
        .get(customer)
        .and_then(|c| str_of(&c["invoice_settings"], "default_payment_method"))?;
    let card = store.cards.get(pm).copied().unwrap_or(Card::Visa);
    Some((pm.to_owned(), card))
}

/// Charges `card` for a PaymentIntent: stores the charge, moves the intent to `succeeded` or
/// back to `requires_payment_method` with `last_payment_error`. Emits `charge.*` and
/// `payment_intent.*` in Stripe's order (the caller emits invoice events around them).
pub(crate) fn charge_intent(
    store: &mut Store,
    pi: &str,
    pm: &str,
    card: Card,
    at: i64,
) -> Result<(), Failure> {
    let Some(intent) = store.payment_intents.get(pi).cloned() else {
        return Err(Failure::default());
    };
    let charge = objects::charge(&intent, pm, card, at);
    let charge_id = str_of(&charge, "id").unwrap_or_default().to_owned();
    store.charges.insert(charge_id.clone(), charge.clone());
    let decline = card.decline();
    let intent = {
        let Some(intent) = store.payment_intents.get_mut(pi) else {
            return Err(Failure::default());
        };
        set_all(
            intent,
            [
                ("latest_charge", json!(charge_id)),
                ("next_action", Value::Null),
            ],
        );
        match decline {
            None => {
                let amount = intent["amount"].clone();
                set_all(
                    intent,
                    [
                        ("status", json!("succeeded")),
                        ("amount_received", amount),
                        ("payment_method", json!(pm)),
                        ("last_payment_error", Value::Null),
                    ],
                );
            }
            Some((code, decline_code, message)) => {
                let method = store
                    .payment_methods
                    .get(pm)
                    .cloned()
                    .unwrap_or(Value::Null);
                set_all(
                    intent,
                    [
                        ("status", json!("requires_payment_method")),
                        ("payment_method", Value::Null),
                        (
                            "last_payment_error",
                            json!({ "type": "card_error", "code": code, "decline_code": decline_code,
                                    "message": message, "charge": charge_id, "payment_method": method,
                                    "doc_url": "https://docs.stripe.com/error-codes/card-declined" }),
                        ),
                    ],
                );
            }
        }
        intent.clone()
    };
    if decline.is_none() {
        emit(store, "charge.succeeded", &charge, None, at);
        emit(store, "payment_intent.succeeded", &intent, None, at);
        Ok(())
    } else {
        Err(Failure {
            charge: Some(charge),
            intent: Some(intent),
        })
    }
}

/// A declined charge: the objects whose events the caller emits in its flow's order.
#[derive(Debug, Default)]
pub(crate) struct Failure {
    pub charge: Option<Value>,
    pub intent: Option<Value>,
}

impl Failure {
    /// Emits `payment_intent.payment_failed` and `charge.failed`.
    pub fn emit(&self, store: &mut Store, at: i64) {
        if let Some(intent) = &self.intent {
            emit(store, "payment_intent.payment_failed", intent, None, at);
        }
        if let Some(charge) = &self.charge {
            emit(store, "charge.failed", charge, None, at);
        }
    }
}

/// The invoice's PaymentIntent, made (`payment_intent.created`) on the first attempt.
fn invoice_intent(store: &mut Store, invoice_id: &str, at: i64) -> Option<String> {
    if let Some(pi) = store
        .invoice_payments
        .get(invoice_id)
        .and_then(|p| p.first())
        .and_then(|p| p["payment"]["payment_intent"].as_str())
    {
        return Some(pi.to_owned());
    }
    let invoice = store.invoices.get(invoice_id)?.clone();
    let mut intent = objects::payment_intent(
        int_of(&invoice, "amount_due"),
        str_of(&invoice, "currency").unwrap_or("usd"),
        str_of(&invoice, "customer"),
        Map::new(),
        at,
    );
    let description = match str_of(&invoice, "billing_reason") {
        Some("subscription_create") => "Subscription creation",
        Some("subscription_update") => "Subscription update",
        _ => "Subscription cycle",
    };
    set(&mut intent, "description", json!(description));
    let pi = str_of(&intent, "id").unwrap_or_default().to_owned();
    store.payment_intents.insert(pi.clone(), intent.clone());
    store.add_invoice_payment(invoice_id, &pi, "open");
    emit(store, "payment_intent.created", &intent, None, at);
    Some(pi)
}

/// One attempt to pay an open invoice with the customer's default card (a $0 invoice is
/// simply paid). Failed attempts schedule the next retry per `payment_retry_days`.
pub(crate) fn attempt_payment(store: &mut Store, invoice_id: &str, at: i64) -> Payment {
    let Some(invoice) = store.invoices.get(invoice_id).cloned() else {
        return Payment::Failed {
            final_attempt: true,
        };
    };
    if int_of(&invoice, "amount_due") == 0 {
        mark_paid(store, invoice_id, false, at);
        return Payment::Paid;
    }
    let customer = str_of(&invoice, "customer").unwrap_or_default().to_owned();
    let Some(pi) = invoice_intent(store, invoice_id, at) else {
        return Payment::Failed {
            final_attempt: true,
        };
    };
    let (pm, card) =
        default_card(store, &customer).unwrap_or_else(|| (String::new(), Card::Declined));
    // Off-session renewals with a card set up for 3-D Secure pay without a challenge.
    let charged = charge_intent(store, &pi, &pm, card, at);
    let attempts = int_of(&invoice, "attempt_count") + 1;
    let Err(failure) = charged else {
        store.add_invoice_payment(invoice_id, &pi, "paid");
        if let Some(invoice) = store.invoices.get_mut(invoice_id) {
            set(invoice, "attempt_count", json!(attempts));
        }
        mark_paid(store, invoice_id, false, at);
        return Payment::Paid;
    };
    let next = usize::try_from(attempts - 1)
        .ok()
        .and_then(|i| store.settings.payment_retry_days.get(i))
        .map(|days| at + days * 86_400);
    let Some(invoice) = store.invoices.get_mut(invoice_id) else {
        return Payment::Failed {
            final_attempt: true,
        };
    };
    set_all(
        invoice,
        [
            ("attempt_count", json!(attempts)),
            ("attempted", json!(true)),
            (
                "next_payment_attempt",
                next.map_or(Value::Null, Value::from),
            ),
        ],
    );
    let invoice = invoice.clone();
    // LIFECYCLE §1 lists the invoice's event first for a failed renewal.
    emit(store, "invoice.payment_failed", &invoice, None, at);
    failure.emit(store, at);
    Payment::Failed {
        final_attempt: next.is_none(),
    }
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
            // Status and period in one update, as the table of LIFECYCLE §1 shows it.
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

/// Voids an open invoice. Emits `invoice.voided`.
pub(crate) fn void_invoice(store: &mut Store, id: &str, at: i64) -> Option<Value> {
    close_invoice(store, id, "void", "voided_at", "invoice.voided", at)
}

/// Marks an open invoice uncollectible. Emits `invoice.marked_uncollectible`.
pub(crate) fn mark_uncollectible(store: &mut Store, id: &str, at: i64) -> Option<Value> {
    close_invoice(
        store,
        id,
        "uncollectible",
        "marked_uncollectible_at",
        "invoice.marked_uncollectible",
        at,
    )
}

fn close_invoice(
    store: &mut Store,
    id: &str,
    status: &str,
    transition: &str,
    event: &str,
    at: i64,
) -> Option<Value> {
    let invoice = store.invoices.get_mut(id)?;
    set_all(
        invoice,
        [
            ("status", json!(status)),
            ("next_payment_attempt", Value::Null),
        ],
    );
    set(&mut invoice["status_transitions"], transition, json!(at));
    let invoice = invoice.clone();
    emit(store, event, &invoice, None, at);
    Some(invoice)
}
