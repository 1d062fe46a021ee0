//! Lookups: an invoice's PaymentIntent (expanded payments or the older field), an event
//! re-fetched, a subscription read back.

use billing_domain::ids::{EventId, InvoiceRef};
use billing_domain::ports::PaymentProvider;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

use crate::support::*;

#[tokio::test]
async fn the_invoice_payment_intent_is_read_from_expanded_payments() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/invoices/in_1"))
        .respond_with(json(
            r#"{"id":"in_1","object":"invoice","payments":{"object":"list","data":[
                {"object":"invoice_payment","payment":{"type":"payment_intent",
                 "payment_intent":{"id":"pi_expanded","object":"payment_intent"}}}]}}"#,
        ))
        .mount(&server)
        .await;

    let pi = client(&server)
        .invoice_payment_intent(&InvoiceRef::parse("in_1").unwrap(), None)
        .await
        .unwrap();

    assert_eq!(pi.as_ref().map(|p| p.as_str()), Some("pi_expanded"));
    let r = &server.received_requests().await.unwrap()[0];
    assert_eq!(r.url.query(), Some("expand[]=payments"));
    let query: Vec<(String, String)> = r.url.query_pairs().into_owned().collect();
    assert_eq!(query, owned(&[("expand[]", "payments")]));
}

#[tokio::test]
async fn an_invoice_without_payments_has_no_payment_intent() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/invoices/in_1"))
        .respond_with(json(&fixture("invoice.json")))
        .mount(&server)
        .await;

    let pi = client(&server)
        .invoice_payment_intent(&InvoiceRef::parse("in_1").unwrap(), None)
        .await
        .unwrap();

    assert_eq!(pi, None);
}

#[tokio::test]
async fn an_invoice_in_the_older_shape_yields_its_top_level_payment_intent() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(json(r#"{"id":"in_1","payment_intent":"pi_legacy"}"#))
        .mount(&server)
        .await;

    let pi = client(&server)
        .invoice_payment_intent(&InvoiceRef::parse("in_1").unwrap(), None)
        .await
        .unwrap();

    assert_eq!(pi.as_ref().map(|p| p.as_str()), Some("pi_legacy"));
}

#[tokio::test]
async fn fetching_an_event_returns_its_raw_bytes() {
    let server = MockServer::start().await;
    let raw = fixture("event.json");
    Mock::given(method("GET"))
        .and(path("/v1/events/evt_1Pgc76B7WZ01zgkWwyRHS12y"))
        .respond_with(json(&raw))
        .mount(&server)
        .await;

    let bytes = client(&server)
        .fetch_event(&EventId::parse("evt_1Pgc76B7WZ01zgkWwyRHS12y").unwrap())
        .await
        .unwrap();

    assert_eq!(bytes, raw.as_bytes());
}

#[tokio::test]
async fn reading_a_subscription_gives_its_current_state() {
    let server = MockServer::start().await;
    let sub =
        fixture("subscription.json").replace("\"status\": \"active\"", "\"status\": \"past_due\"");
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions/sub_1"))
        .respond_with(json(&sub))
        .mount(&server)
        .await;

    let snapshot = client(&server)
        .subscription(&billing_domain::ids::SubscriptionRef::parse("sub_1").unwrap())
        .await
        .unwrap();

    let original: serde_json::Value = serde_json::from_str(&fixture("subscription.json")).unwrap();
    assert_eq!(
        snapshot.subscription.as_str(),
        original["id"].as_str().unwrap()
    );
    assert_eq!(
        snapshot.status,
        Some(billing_domain::model::SubscriptionStatus::PastDue)
    );
    assert_eq!(
        snapshot.price.unwrap().as_str(),
        original["items"]["data"][0]["price"]["id"]
            .as_str()
            .unwrap()
    );
    let r = &server.received_requests().await.unwrap()[0];
    assert_eq!(r.method.as_str(), "GET");
    assert_common_headers(r);
}

#[tokio::test]
async fn the_invoices_default_payment_wins_over_an_earlier_canceled_attempt() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/invoices/in_1"))
        .respond_with(json(
            r#"{"id":"in_1","object":"invoice","payments":{"object":"list","data":[
                {"object":"invoice_payment","is_default":false,"status":"canceled",
                 "payment":{"type":"payment_intent","payment_intent":"pi_old"}},
                {"object":"invoice_payment","is_default":true,"status":"open",
                 "payment":{"type":"payment_intent","payment_intent":"pi_current"}}]}}"#,
        ))
        .mount(&server)
        .await;

    let pi = client(&server)
        .invoice_payment_intent(&InvoiceRef::parse("in_1").unwrap(), None)
        .await
        .unwrap();

    assert_eq!(pi.as_ref().map(|p| p.as_str()), Some("pi_current"));
}
