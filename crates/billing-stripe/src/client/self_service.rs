//! Self-service changes and refunds (issue 16): update, cancel and resume a subscription,
//! preview the invoice after a plan change, create a refund.
//!
//! Every parameter sent is one Stripe's API (and the emulator's strict validation) accepts
//! for the operation; subscriptions are read back as the webhook path reads them.

use billing_domain::ids::{ChargeRef, PaymentIntentRef, PriceRef, SubscriptionRef};
use billing_domain::money::{Currency, Money};
use billing_domain::ports::{
    CreatedRefund, InvoicePreview, PlanChangePreview, PreviewLine, ProviderError, RefundRequest,
    SubscriptionState, SubscriptionUpdate,
};
use billing_domain::webhook::SubscriptionSnapshot;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::transport::{json, object_path, ApiRequest};
use super::StripeClient;
use crate::form::{Form, FormValue};
use crate::wire;

fn snapshot(body: &[u8]) -> Result<SubscriptionSnapshot, String> {
    let object: wire::SubscriptionObject = json(body)?;
    crate::webhook::subscription(object).map_err(|e| e.0)
}

/// `GET /v1/subscriptions/{id}` with its first item's id.
pub(super) async fn state(
    client: &StripeClient,
    id: &SubscriptionRef,
) -> Result<SubscriptionState, ProviderError> {
    let path = object_path("subscriptions", id.as_str()).map_err(ProviderError::from)?;
    client
        .call(ApiRequest::get("retrieve_subscription", path), |body| {
            let object: wire::SubscriptionObject = json(body)?;
            let item = object
                .items
                .as_ref()
                .and_then(|l| l.data.first())
                .and_then(|i| i.id.clone());
            let snapshot = crate::webhook::subscription(object).map_err(|e| e.0)?;
            Ok(SubscriptionState { snapshot, item })
        })
        .await
}

/// `POST /v1/subscriptions/{id}`: `cancel_at_period_end`, or `items[0][id]` with
/// `items[0][price]` and `proration_behavior`.
pub(super) async fn update(
    client: &StripeClient,
    update: &SubscriptionUpdate,
) -> Result<SubscriptionSnapshot, ProviderError> {
    let path =
        object_path("subscriptions", update.subscription.as_str()).map_err(ProviderError::from)?;
    let mut form = Form::new();
    if let Some(flag) = update.cancel_at_period_end {
        form.push("cancel_at_period_end", flag);
    }
    if let Some((item, price)) = &update.price {
        form.push("items[0][id]", item.as_str());
        form.push("items[0][price]", price.as_str());
    }
    if let Some(proration) = update.proration {
        form.push("proration_behavior", proration.as_str());
    }
    let req = ApiRequest::post(
        "update_subscription",
        &path,
        form,
        Some(update.idempotency_key.clone()),
    );
    client.call(req, snapshot).await
}

/// `DELETE /v1/subscriptions/{id}`: canceled now.
pub(super) async fn cancel_now(
    client: &StripeClient,
    id: &SubscriptionRef,
) -> Result<SubscriptionSnapshot, ProviderError> {
    let path = object_path("subscriptions", id.as_str()).map_err(ProviderError::from)?;
    client
        .call(ApiRequest::delete("cancel_subscription", path), snapshot)
        .await
}

/// `POST /v1/subscriptions/{id}/resume` (a paused subscription).
pub(super) async fn resume(
    client: &StripeClient,
    id: &SubscriptionRef,
    key: &str,
) -> Result<SubscriptionSnapshot, ProviderError> {
    let path = format!(
        "{}/resume",
        object_path("subscriptions", id.as_str()).map_err(ProviderError::from)?
    );
    let req = ApiRequest::post(
        "resume_subscription",
        &path,
        Form::new(),
        Some(key.to_owned()),
    );
    client.call(req, snapshot).await
}

/// An invoice line, in the pinned version's shape (`parent.subscription_item_details`,
/// `pricing.price_details`) or the older one (`proration`, `price`).
#[derive(Debug, Deserialize)]
struct LineObject {
    #[serde(default)]
    amount: i64,
    description: Option<String>,
    proration: Option<bool>,
    price: Option<wire::Expandable>,
    parent: Option<serde_json::Value>,
    pricing: Option<serde_json::Value>,
    period: Option<Period>,
}

#[derive(Debug, Deserialize)]
struct Period {
    start: Option<i64>,
    end: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct PreviewObject {
    #[serde(default)]
    amount_due: i64,
    #[serde(default)]
    currency: String,
    lines: Option<wire::List<LineObject>>,
}

fn time(t: Option<i64>) -> Option<DateTime<Utc>> {
    t.and_then(|t| DateTime::from_timestamp(t, 0))
}

fn line(l: LineObject) -> PreviewLine {
    let proration = l.proration.unwrap_or_else(|| {
        l.parent
            .as_ref()
            .and_then(|p| p.get("subscription_item_details"))
            .and_then(|d| d.get("proration"))
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false)
    });
    let price = l
        .price
        .as_ref()
        .map(|p| p.id().to_owned())
        .or_else(|| {
            l.pricing
                .as_ref()
                .and_then(|p| p.get("price_details"))
                .and_then(|d| d.get("price"))
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        })
        .and_then(|p| PriceRef::parse(p).ok());
    PreviewLine {
        description: l.description,
        amount: l.amount,
        proration,
        price,
        period_start: time(l.period.as_ref().and_then(|p| p.start)),
        period_end: time(l.period.as_ref().and_then(|p| p.end)),
    }
}

/// `POST /v1/invoices/create_preview` for a subscription's item moved to another price.
pub(super) async fn preview(
    client: &StripeClient,
    preview: &PlanChangePreview,
) -> Result<InvoicePreview, ProviderError> {
    let mut form = Form::new();
    form.push_opt("customer", preview.customer.as_ref().map(|c| c.as_str()));
    form.push("subscription", preview.subscription.as_str());
    form.push("subscription_details[items][0][id]", preview.item.as_str());
    form.push(
        "subscription_details[items][0][price]",
        preview.price.as_str(),
    );
    form.push(
        "subscription_details[proration_behavior]",
        preview.proration.as_str(),
    );
    // A preview changes nothing: a fresh key per call is right.
    let req = ApiRequest::post(
        "create_invoice_preview",
        "/v1/invoices/create_preview",
        form,
        None,
    );
    client
        .call(req, |body| {
            let p: PreviewObject = json(body)?;
            let currency = Currency::parse(&p.currency).map_err(|e| e.to_string())?;
            let amount_due = Money::new(p.amount_due, currency).map_err(|e| e.to_string())?;
            Ok(InvoicePreview {
                amount_due,
                lines: p
                    .lines
                    .map(|l| l.data)
                    .unwrap_or_default()
                    .into_iter()
                    .map(line)
                    .collect(),
            })
        })
        .await
}

#[derive(Debug, Deserialize)]
struct Created {
    created: Option<i64>,
}

/// `POST /v1/refunds` of a PaymentIntent (else a charge), with `metadata[paymentId]`.
pub(super) async fn create_refund(
    client: &StripeClient,
    request: &RefundRequest,
) -> Result<CreatedRefund, ProviderError> {
    let mut form = Form::new();
    match (&request.payment_intent, &request.charge) {
        (Some(pi), _) => form.push("payment_intent", PaymentIntentRef::as_str(pi)),
        (None, Some(charge)) => form.push("charge", ChargeRef::as_str(charge)),
        (None, None) => {
            return Err(ProviderError::Refused {
                code: None,
                param: Some("payment_intent".into()),
                message: "the payment names neither a PaymentIntent nor a charge".into(),
                not_found: false,
            })
        }
    }
    form.push("amount", request.amount.minor());
    form.push_opt("reason", request.reason.map(|r| r.as_str()));
    form.push(
        "metadata",
        FormValue::map([("paymentId", request.payment.to_string())]),
    );
    let req = ApiRequest::post(
        "create_refund",
        "/v1/refunds",
        form,
        Some(request.idempotency_key.clone()),
    );
    client
        .call(req, |body| {
            let object: wire::RefundObject = json(body)?;
            let created: Created = json(body)?;
            let snapshot = crate::webhook::refund(object, None).map_err(|e| e.0)?;
            let created = time(created.created).unwrap_or_else(Utc::now);
            Ok(CreatedRefund { snapshot, created })
        })
        .await
}
