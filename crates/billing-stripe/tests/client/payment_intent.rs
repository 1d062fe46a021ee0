//! PaymentIntents: creation form, retrieval and status mapping.

use billing_domain::ids::PaymentIntentRef;
use billing_domain::ports::{IntentState, PaymentProvider};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

use crate::support::*;

#[tokio::test]
async fn payment_intent_creation_sends_amount_currency_metadata_and_automatic_methods() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(json(&fixture("payment_intent.json")))
        .mount(&server)
        .await;

    let info = client(&server)
        .create_payment_intent(&intent_request())
        .await
        .unwrap();

    assert_eq!(info.id.as_str(), "pi_1PgafyB7WZ01zgkWSjxsAJo3");
    assert_eq!(
        info.client_secret.expose(),
        "pi_1PgafyB7WZ01zgkWSjxsAJo3_secret_Dm43xiq1k0ywrRRjDoi8y1gkM"
    );
    assert_eq!(info.state, IntentState::AwaitingPayment);
    assert_eq!(info.amount.minor(), 1099);
    assert_eq!(info.amount.currency().as_str(), "usd");
    let r = &server.received_requests().await.unwrap()[0];
    assert_post_headers(r);
    assert_eq!(
        header(r, "idempotency-key"),
        Some(&*format!("pi:{INVOICE}:4900"))
    );
    assert_eq!(
        body(r),
        format!(
            "amount=4900&currency=usd&customer=cus_t9FXeM4pJmfNhL&metadata[invoiceId]={INVOICE}\
             &metadata[tenantId]={TENANT}&automatic_payment_methods[enabled]=true"
        )
    );
}

#[tokio::test]
async fn reading_a_payment_intent_is_a_get_without_body_or_idempotency_key() {
    let server = MockServer::start().await;
    let pi = fixture("payment_intent.json").replace("requires_payment_method", "succeeded");
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_1PgafyB7WZ01zgkWSjxsAJo3"))
        .respond_with(json(&pi))
        .mount(&server)
        .await;

    let info = client(&server)
        .payment_intent(&PaymentIntentRef::parse("pi_1PgafyB7WZ01zgkWSjxsAJo3").unwrap())
        .await
        .unwrap();

    assert_eq!(info.state, IntentState::Succeeded);
    let r = &server.received_requests().await.unwrap()[0];
    assert_common_headers(r);
    assert_eq!(header(r, "idempotency-key"), None);
    assert_eq!(header(r, "content-type"), None);
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn an_unknown_intent_status_is_treated_as_processing() {
    let server = MockServer::start().await;
    let pi = fixture("payment_intent.json").replace("requires_payment_method", "brand_new");
    Mock::given(method("GET"))
        .respond_with(json(&pi))
        .mount(&server)
        .await;

    let info = client(&server)
        .payment_intent(&PaymentIntentRef::parse("pi_1").unwrap())
        .await
        .unwrap();

    assert_eq!(info.state, IntentState::Processing);
}
