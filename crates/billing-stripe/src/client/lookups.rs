//! Lookups: reading back what Stripe holds (an invoice's PaymentIntent, a subscription as
//! it is now, an event for replay).

use std::time::Duration;

use billing_domain::ids::{EventId, InvoiceRef, PaymentIntentRef, SubscriptionRef};
use billing_domain::ports::ProviderError;
use billing_domain::webhook::SubscriptionSnapshot;

use super::transport::{json, object_path, ApiRequest};
use super::StripeClient;
use crate::form::Form;
use crate::wire;

/// `GET /v1/invoices/{id}?expand[]=payments`: the PaymentIntent paying the invoice, if any.
pub(super) async fn invoice_payment_intent(
    client: &StripeClient,
    invoice: &InvoiceRef,
    budget: Option<Duration>,
) -> Result<Option<PaymentIntentRef>, ProviderError> {
    let path = object_path("invoices", invoice.as_str()).map_err(ProviderError::from)?;
    let mut req = ApiRequest::get("retrieve_invoice_payments", path);
    req.budget = budget;
    let mut query = Form::new();
    query.push("expand[]", "payments");
    req.query = Some(query.encode());
    client
        .call(req, |body| {
            let inv: wire::InvoicePaymentsResponse = json(body)?;
            inv.first_payment_intent()
                .map(|id| PaymentIntentRef::parse(id).map_err(|e| e.to_string()))
                .transpose()
        })
        .await
}

/// `GET /v1/subscriptions/{id}`, read as the webhook path reads a subscription.
pub(super) async fn subscription(
    client: &StripeClient,
    id: &SubscriptionRef,
) -> Result<SubscriptionSnapshot, ProviderError> {
    let path = object_path("subscriptions", id.as_str()).map_err(ProviderError::from)?;
    client
        .call(ApiRequest::get("retrieve_subscription", path), |body| {
            let object: wire::SubscriptionObject = json(body)?;
            crate::webhook::subscription(object).map_err(|e| e.0)
        })
        .await
}

/// `GET /v1/events/{id}`: the event's body as Stripe sends it (checked to be JSON).
pub(super) async fn event(client: &StripeClient, id: &EventId) -> Result<Vec<u8>, ProviderError> {
    let path = object_path("events", id.as_str()).map_err(ProviderError::from)?;
    client
        .call(ApiRequest::get("retrieve_event", path), |body| {
            json::<serde::de::IgnoredAny>(body)?;
            Ok(body.to_vec())
        })
        .await
}

/// The head of a listed event: what the catch-up orders and dedupes on.
#[derive(serde::Deserialize)]
struct ListedHead {
    id: String,
    created: i64,
}

/// `GET /v1/events` page: each event kept as the JSON Stripe sent (a webhook's body).
#[derive(serde::Deserialize)]
struct EventList<'a> {
    #[serde(borrow)]
    data: Vec<&'a serde_json::value::RawValue>,
    has_more: bool,
}

/// `GET /v1/events?created[gte]=…&limit=100[&starting_after=…]`: one page, newest first.
pub(super) async fn list_events(
    client: &StripeClient,
    created_gte: chrono::DateTime<chrono::Utc>,
    starting_after: Option<EventId>,
) -> Result<billing_domain::ports::EventPage, ProviderError> {
    let mut req = ApiRequest::get("list_events", "/v1/events".to_owned());
    let mut query = Form::new();
    query.push("created[gte]", created_gte.timestamp().to_string());
    query.push("limit", "100");
    if let Some(after) = &starting_after {
        query.push("starting_after", after.as_str().to_owned());
    }
    req.query = Some(query.encode());
    client
        .call(req, |body| {
            let list: EventList<'_> = serde_json::from_slice(body).map_err(|e| {
                format!(
                    "event list unreadable at line {} column {}",
                    e.line(),
                    e.column()
                )
            })?;
            let events = list
                .data
                .into_iter()
                .map(|raw| {
                    let head: ListedHead = json(raw.get().as_bytes())?;
                    Ok(billing_domain::ports::ListedEvent {
                        id: EventId::parse(head.id).map_err(|e| e.to_string())?,
                        created: chrono::DateTime::from_timestamp(head.created, 0)
                            .ok_or_else(|| "event created out of range".to_owned())?,
                        raw: raw.get().as_bytes().to_vec(),
                    })
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(billing_domain::ports::EventPage {
                events,
                has_more: list.has_more,
            })
        })
        .await
}
