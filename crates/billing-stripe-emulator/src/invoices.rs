//! Invoices and their payment: finalization, attempts with the customer's card (charges,
//! PaymentIntents, retries scheduled per `payment_retry_days`), paid / void / uncollectible.

use serde_json::{json, Map, Value};

use crate::events::emit;
use crate::objects;
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
pub(crate) fn invoice_intent(store: &mut Store, invoice_id: &str, at: i64) -> Option<String> {
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
    // docs/stripe.md (Lifecycle) lists the invoice's event first for a failed renewal.
    emit(store, "invoice.payment_failed", &invoice, None, at);
    failure.emit(store, at);
    Payment::Failed {
        final_attempt: next.is_none(),
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
