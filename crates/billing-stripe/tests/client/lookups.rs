//! Lookups on the wire: the exact query of an invoice's expanded payments, the older
//! top-level field, the default payment among several (the emulator tests read an event
//! and a subscription back).

use billing_domain::ids::InvoiceRef;
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
