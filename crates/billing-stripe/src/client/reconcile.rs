//! Reads for reconciliation and the checkout return (issue 15): the customer's
//! subscriptions and open invoices (Stripe's list calls, every page), one invoice, one
//! Checkout Session. Objects are read as the webhook path reads them.

use billing_domain::ids::{CheckoutSessionRef, CustomerRef, InvoiceRef};
use billing_domain::ports::{CheckoutSessionState, ProviderError};
use billing_domain::webhook::{InvoiceSnapshot, SubscriptionSnapshot};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use super::transport::{json, object_path, ApiRequest};
use super::StripeClient;
use crate::form::Form;
use crate::wire;

/// Stripe's page size ceiling.
const PAGE: &str = "100";
/// Pages read at most per list (10,000 objects of one customer is beyond any real one;
/// the bound keeps a misbehaving answer from looping forever).
const MAX_PAGES: usize = 100;

/// A page of a Stripe list.
#[derive(Debug, Deserialize)]
struct Page<T> {
    #[serde(default = "Vec::new")]
    data: Vec<T>,
    #[serde(default)]
    has_more: bool,
}

/// What paging needs of an item.
#[derive(Debug, Deserialize)]
struct Id {
    id: String,
}

/// Reads every page of `GET path?query&limit=100[&starting_after=…]`, turning each item
/// with `read`.
async fn list_all<W, T>(
    client: &StripeClient,
    operation: &'static str,
    path: &str,
    params: &[(&str, &str)],
    read: fn(W) -> Result<T, String>,
) -> Result<Vec<T>, ProviderError>
where
    W: DeserializeOwned + Send + 'static,
    T: Send + 'static,
{
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut query = Form::new();
        for &(k, v) in params {
            query.push(k, v);
        }
        query.push("limit", PAGE);
        if let Some(a) = &after {
            query.push("starting_after", a.as_str());
        }
        let mut req = ApiRequest::get(operation, path.to_owned());
        req.query = Some(query.encode());
        let (items, last, more) = client
            .call(req, move |body| {
                let ids: Page<Id> = json(body)?;
                let page: Page<W> = json(body)?;
                let items = page
                    .data
                    .into_iter()
                    .map(read)
                    .collect::<Result<Vec<T>, String>>()?;
                Ok((items, ids.data.last().map(|i| i.id.clone()), page.has_more))
            })
            .await?;
        out.extend(items);
        match (more, last) {
            (true, Some(last)) => after = Some(last),
            _ => return Ok(out),
        }
    }
    Ok(out)
}

/// `GET /v1/subscriptions?customer=&status=all`: canceled ones too, so that a deletion we
/// missed is seen.
pub(super) async fn list_subscriptions(
    client: &StripeClient,
    customer: &CustomerRef,
) -> Result<Vec<SubscriptionSnapshot>, ProviderError> {
    list_all(
        client,
        "list_subscriptions",
        "/v1/subscriptions",
        &[("customer", customer.as_str()), ("status", "all")],
        |s: wire::SubscriptionObject| crate::webhook::subscription(s).map_err(|e| e.0),
    )
    .await
}

/// `GET /v1/invoices?customer=&status=open`.
pub(super) async fn list_open_invoices(
    client: &StripeClient,
    customer: &CustomerRef,
) -> Result<Vec<InvoiceSnapshot>, ProviderError> {
    list_all(
        client,
        "list_invoices",
        "/v1/invoices",
        &[("customer", customer.as_str()), ("status", "open")],
        |i: wire::InvoiceObject| crate::webhook::invoice(i).map_err(|e| e.0),
    )
    .await
}

/// `GET /v1/invoices/{id}`.
pub(super) async fn invoice(
    client: &StripeClient,
    id: &InvoiceRef,
) -> Result<InvoiceSnapshot, ProviderError> {
    let path = object_path("invoices", id.as_str()).map_err(ProviderError::from)?;
    client
        .call(ApiRequest::get("retrieve_invoice", path), |body| {
            let object: wire::InvoiceObject = json(body)?;
            crate::webhook::invoice(object).map_err(|e| e.0)
        })
        .await
}

/// A session's state fields (the rest is read as the webhook path reads it).
#[derive(Debug, Deserialize)]
struct SessionState {
    status: Option<String>,
    payment_status: Option<String>,
}

/// `GET /v1/checkout/sessions/{id}`.
pub(super) async fn checkout_session(
    client: &StripeClient,
    id: &CheckoutSessionRef,
) -> Result<CheckoutSessionState, ProviderError> {
    let path = object_path("checkout/sessions", id.as_str()).map_err(ProviderError::from)?;
    client
        .call(ApiRequest::get("retrieve_checkout_session", path), |body| {
            let state: SessionState = json(body)?;
            let object: wire::CheckoutSessionObject = json(body)?;
            let session = crate::webhook::checkout(object).map_err(|e| e.0)?;
            Ok(CheckoutSessionState {
                session,
                status: state.status.unwrap_or_else(|| "open".to_owned()),
                payment_status: state.payment_status,
            })
        })
        .await
}
