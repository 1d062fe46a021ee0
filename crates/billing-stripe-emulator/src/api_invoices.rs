//! The invoice actions of Stripe's API beyond reading one: `POST /v1/invoices/{invoice}/void`,
//! `/mark_uncollectible` and `/pay` (with the customer's default card, or
//! `paid_out_of_band=true` for money received outside Stripe). Each acts on an `open`
//! invoice only, as Stripe's does, and emits the invoice's event at the time of its
//! customer's test clock.

use serde_json::{json, Value};

use crate::api::{found, Call};
use crate::api_billing::{bool_param, int_param, one_of};
use crate::engine::Payment;
use crate::error::ApiError;
use crate::invoices;
use crate::store::{str_of, Store};

/// The open invoice the call names, and the time of its customer's clock.
fn open_invoice(store: &Store, call: &Call<'_>, action: &str) -> Result<(String, i64), ApiError> {
    let id = call.id().to_owned();
    let invoice = found(store.invoices.get(&id), || {
        ApiError::no_such(404, "invoice", &id, "invoice")
    })?;
    if str_of(&invoice, "status") != Some("open") {
        return Err(ApiError::new(
            400,
            "invalid_request_error",
            Some("invoice_not_open"),
            format!(
                "You can only {action} an open invoice; this one is {}.",
                str_of(&invoice, "status").unwrap_or("unknown")
            ),
        ));
    }
    let at = store.time_for(str_of(&invoice, "customer"));
    Ok((id, at))
}

/// `POST /v1/invoices/{invoice}/void`: `void`, `invoice.voided`.
pub(crate) fn void_invoice(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let (id, at) = open_invoice(store, call, "void")?;
    invoices::void_invoice(store, &id, at)
        .ok_or_else(|| ApiError::no_such(404, "invoice", &id, "invoice"))
}

/// `POST /v1/invoices/{invoice}/mark_uncollectible`: `uncollectible`,
/// `invoice.marked_uncollectible`.
pub(crate) fn mark_uncollectible(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let (id, at) = open_invoice(store, call, "mark uncollectible")?;
    invoices::mark_uncollectible(store, &id, at)
        .ok_or_else(|| ApiError::no_such(404, "invoice", &id, "invoice"))
}

/// `POST /v1/invoices/{invoice}/pay`: out of band (`invoice.paid` with
/// `paid_out_of_band: true`, no PaymentIntent), or one attempt with the default card, whose
/// decline is Stripe's 402 `card_declined`.
pub(crate) fn pay_invoice(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
    let (id, at) = open_invoice(store, call, "pay")?;
    if bool_param(call.params, "paid_out_of_band")? == Some(true) {
        invoices::mark_paid(store, &id, true, at);
    } else if let Payment::Failed { .. } = invoices::attempt_payment(store, &id, at) {
        return Err(ApiError::new(
            402,
            "card_error",
            Some("card_declined"),
            "Your card was declined.",
        ));
    }
    found(store.invoices.get(&id), || {
        ApiError::no_such(404, "invoice", &id, "invoice")
    })
}

/// `GET /v1/invoices`: newest first (by `created`, then id), filtered by `customer`,
/// `subscription` and `status` (`draft`, `open`, `paid`, `uncollectible`, `void`), paged
/// with `limit` (1–100, default 10) and `starting_after`, as Stripe's list is.
pub(crate) fn list_invoices(store: &mut Store, call: &Call<'_>) -> Result<Value, ApiError> {
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
        &["draft", "open", "paid", "uncollectible", "void"],
    )?;
    let customer = params.non_empty("customer");
    let subscription = params.non_empty("subscription");
    let mut matching: Vec<&Value> = store
        .invoices
        .values()
        .filter(|i| customer.is_none_or(|c| str_of(i, "customer") == Some(c)))
        .filter(|i| subscription.is_none_or(|s| invoice_subscription(i) == Some(s)))
        .filter(|i| status.is_none_or(|s| str_of(i, "status") == Some(s)))
        .collect();
    matching.sort_by(|a, b| {
        let key = |i: &Value| {
            (
                i["created"].as_i64().unwrap_or(0),
                str_of(i, "id").map(str::to_owned),
            )
        };
        key(b).cmp(&key(a))
    });
    let start = match params.non_empty("starting_after") {
        Some(after) => matching
            .iter()
            .position(|i| str_of(i, "id") == Some(after))
            .map(|i| i + 1)
            .ok_or_else(|| ApiError::no_such(400, "invoice", after, "starting_after"))?,
        None => 0,
    };
    let limit = usize::try_from(limit).unwrap_or(10);
    let rest = &matching[start..];
    let data: Vec<Value> = rest.iter().take(limit).map(|i| (*i).clone()).collect();
    Ok(
        json!({ "object": "list", "data": data, "has_more": rest.len() > limit, "url": "/v1/invoices" }),
    )
}

/// The subscription an invoice bills: `parent.subscription_details.subscription` in the
/// pinned version, the older top-level `subscription` otherwise.
fn invoice_subscription(invoice: &Value) -> Option<&str> {
    invoice["parent"]["subscription_details"]["subscription"]
        .as_str()
        .or_else(|| invoice["subscription"].as_str())
}
