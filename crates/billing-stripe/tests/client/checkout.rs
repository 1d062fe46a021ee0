//! Checkout Sessions: the creation form and headers, and expiring a session (with the
//! read-back when Stripe refuses).

use billing_domain::ports::{PaymentProvider, ProviderError, SessionEnd};
use billing_stripe::StripeClient;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

#[tokio::test]
async fn checkout_sends_the_exact_form_headers_and_the_callers_idempotency_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(json(&fixture("checkout.session.json")))
        .expect(1)
        .mount(&server)
        .await;

    let session = client(&server)
        .create_checkout_session(&checkout_request(Some("cus_t9FXeM4pJmfNhL"), Some(14)))
        .await
        .unwrap();

    assert_eq!(
        session.id.as_str(),
        "cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY"
    );
    assert_eq!(
        session.url,
        "https://checkout.stripe.com/pay/c/cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY"
    );
    let requests = server.received_requests().await.unwrap();
    let r = &requests[0];
    assert_post_headers(r);
    assert_eq!(header(r, "idempotency-key"), Some("checkout:tenant:plan"));
    assert_eq!(
        pairs(r),
        owned(&[
            ("mode", "subscription"),
            ("line_items[0][price]", "price_1Rq3oaHx4KpL29aTqhCv4Gt4"),
            ("line_items[0][quantity]", "1"),
            ("client_reference_id", TENANT),
            ("customer", "cus_t9FXeM4pJmfNhL"),
            ("metadata[tenantId]", TENANT),
            ("metadata[planId]", PLAN),
            ("subscription_data[metadata][tenantId]", TENANT),
            ("subscription_data[metadata][planId]", PLAN),
            ("subscription_data[trial_period_days]", "14"),
            (
                "success_url",
                "https://app.example.com/billing/success?session_id={CHECKOUT_SESSION_ID}"
            ),
            ("cancel_url", "https://app.example.com/billing/cancel"),
        ])
    );
    assert_eq!(
        body(r),
        format!(
            "mode=subscription&line_items[0][price]=price_1Rq3oaHx4KpL29aTqhCv4Gt4\
             &line_items[0][quantity]=1&client_reference_id={TENANT}&customer=cus_t9FXeM4pJmfNhL\
             &metadata[tenantId]={TENANT}&metadata[planId]={PLAN}\
             &subscription_data[metadata][tenantId]={TENANT}&subscription_data[metadata][planId]={PLAN}\
             &subscription_data[trial_period_days]=14\
             &success_url=https%3A%2F%2Fapp.example.com%2Fbilling%2Fsuccess%3Fsession_id%3D%7BCHECKOUT_SESSION_ID%7D\
             &cancel_url=https%3A%2F%2Fapp.example.com%2Fbilling%2Fcancel"
        )
    );
}

#[tokio::test]
async fn checkout_without_customer_or_trial_omits_them_and_adds_the_session_template() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(json(&fixture("checkout.session.json")))
        .mount(&server)
        .await;
    let mut cfg = config(&server);
    cfg.checkout_success_url = "https://app.example.com/done".to_owned();

    StripeClient::new(cfg)
        .unwrap()
        .create_checkout_session(&checkout_request(None, None))
        .await
        .unwrap();

    let r = &server.received_requests().await.unwrap()[0];
    let p = pairs(r);
    assert!(p.iter().all(|(k, _)| k != "customer"));
    assert!(p
        .iter()
        .all(|(k, _)| k != "subscription_data[trial_period_days]"));
    assert!(p.contains(&(
        "success_url".to_owned(),
        "https://app.example.com/done?session_id={CHECKOUT_SESSION_ID}".to_owned()
    )));
}

/// The checkout session fixture in `status`, with `url` null unless it is open.
fn session_in(status: &str) -> String {
    let session = fixture("checkout.session.json")
        .replace(r#""status": "open""#, &format!(r#""status": "{status}""#));
    assert!(session.contains(&format!(r#""status": "{status}""#)));
    if status == "open" {
        session
    } else {
        session.replace(
            &format!(r#""url": "https://checkout.stripe.com/pay/c/{SESSION}""#),
            r#""url": null"#,
        )
    }
}

const NOT_OPEN: &str = r#"{"error":{"message":"Only Checkout Sessions with a status in [\"open\"] can be expired.","type":"invalid_request_error"}}"#;

/// A server refusing to expire the session (it is not open) and answering its read-back
/// with `read_back`.
async fn refusing_to_expire(read_back: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(stripe_error(400, NOT_OPEN))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(read_back)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn expiring_an_open_session_posts_to_its_expire_path_with_a_key_per_call() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/checkout/sessions/{SESSION}/expire")))
        .respond_with(json(&session_in("expired")))
        .expect(1)
        .mount(&server)
        .await;

    let end = client(&server)
        .expire_checkout_session(&session_ref())
        .await
        .unwrap();

    assert_eq!(end, SessionEnd::Expired);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method.as_str(), "POST");
    assert_eq!(
        r.url.path(),
        format!("/v1/checkout/sessions/{SESSION}/expire")
    );
    assert_post_headers(r);
    // Per call (a stored 500 must not be replayed to later checkouts): not derived from
    // the session.
    let key = header(r, "idempotency-key").unwrap();
    assert!(!key.is_empty() && !key.contains(SESSION), "{key}");
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn expire_answering_complete_is_completed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json(&session_in("complete")))
        .mount(&server)
        .await;

    let end = client(&server)
        .expire_checkout_session(&session_ref())
        .await
        .unwrap();

    assert_eq!(end, SessionEnd::Completed);
}

#[tokio::test]
async fn a_session_that_cannot_be_expired_is_read_back_and_completed_when_complete() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/checkout/sessions/{SESSION}/expire")))
        .respond_with(stripe_error(400, NOT_OPEN))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/checkout/sessions/{SESSION}")))
        .respond_with(json(&session_in("complete")))
        .expect(1)
        .mount(&server)
        .await;

    let end = client(&server)
        .expire_checkout_session(&session_ref())
        .await
        .unwrap();

    assert_eq!(end, SessionEnd::Completed);
    let requests = server.received_requests().await.unwrap();
    let sent: Vec<_> = requests
        .iter()
        .map(|r| (r.method.as_str().to_owned(), r.url.path().to_owned()))
        .collect();
    assert_eq!(
        sent,
        [
            (
                "POST".to_owned(),
                format!("/v1/checkout/sessions/{SESSION}/expire")
            ),
            ("GET".to_owned(), format!("/v1/checkout/sessions/{SESSION}")),
        ]
    );
    assert_eq!(header(&requests[1], "idempotency-key"), None);
}

#[tokio::test]
async fn a_session_that_expired_on_its_own_is_expired() {
    let server = refusing_to_expire(json(&session_in("expired"))).await;

    let end = client(&server)
        .expire_checkout_session(&session_ref())
        .await
        .unwrap();

    assert_eq!(end, SessionEnd::Expired);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_session_still_open_after_a_refused_expire_is_unexpected() {
    let server = refusing_to_expire(json(&session_in("open"))).await;

    let err = client(&server)
        .expire_checkout_session(&session_ref())
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Unexpected(_)), "{err:?}");
}

#[tokio::test]
async fn expiring_a_session_stripe_does_not_know_is_expired() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(stripe_error(
            404,
            &format!(
                r#"{{"error":{{"code":"resource_missing","message":"No such checkout.session: '{SESSION}'","param":"session","type":"invalid_request_error"}}}}"#
            ),
        ))
        .mount(&server)
        .await;

    let end = client(&server)
        .expire_checkout_session(&session_ref())
        .await
        .unwrap();

    assert_eq!(end, SessionEnd::Expired);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_session_gone_when_read_back_is_expired() {
    let server = refusing_to_expire(stripe_error(
        404,
        r#"{"error":{"code":"resource_missing","type":"invalid_request_error"}}"#,
    ))
    .await;

    let end = client(&server)
        .expire_checkout_session(&session_ref())
        .await
        .unwrap();

    assert_eq!(end, SessionEnd::Expired);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_read_back_stripe_refuses_is_unexpected_not_the_callers_fault() {
    let server = refusing_to_expire(stripe_error(
        400,
        r#"{"error":{"code":"parameter_unknown","message":"Received unknown parameter","type":"invalid_request_error"}}"#,
    ))
    .await;

    let err = client(&server)
        .expire_checkout_session(&session_ref())
        .await
        .unwrap_err();

    // Not `Refused`: that would answer our caller 4xx for a read it did not make.
    assert!(matches!(err, ProviderError::Unexpected(_)), "{err:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_persistent_500_on_expire_is_unavailable_after_retries_with_one_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;

    let err = client(&server)
        .expire_checkout_session(&session_ref())
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3);
    let key = header(&requests[0], "idempotency-key").unwrap().to_owned();
    assert!(
        requests
            .iter()
            .all(|r| r.method.as_str() == "POST"
                && header(r, "idempotency-key") == Some(key.as_str()))
    );
}
