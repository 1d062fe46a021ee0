//! How Stripe's answers map to `ProviderError`: refusals, declines, not found, credentials,
//! unreadable bodies.

use std::sync::Arc;

use billing_domain::ids::{EventId, PaymentIntentRef};
use billing_domain::ports::{PaymentProvider, ProviderError};
use billing_stripe::CallOutcome;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer};

use crate::support::*;

#[tokio::test]
async fn an_invalid_request_is_refused_with_stripes_message_and_param_without_retry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            stripe_error(
                400,
                r#"{"error":{"code":"resource_missing","doc_url":"https://docs.stripe.com/error-codes/resource-missing","message":"No such customer: 'cus_does_not_exist'","param":"customer","type":"invalid_request_error"}}"#,
            )
            .insert_header("Request-Id", "req_Abc123"),
        )
        .mount(&server)
        .await;
    let recorder = Arc::new(Recorder::default());

    let err = client(&server)
        .with_metrics(recorder.clone())
        .create_checkout_session(&checkout_request(Some("cus_does_not_exist"), None))
        .await
        .unwrap_err();

    match err {
        ProviderError::Refused {
            code,
            param,
            message,
            not_found,
        } => {
            assert_eq!(code.as_deref(), Some("resource_missing"));
            assert_eq!(param.as_deref(), Some("customer"));
            assert_eq!(message, "No such customer: 'cus_does_not_exist'");
            assert!(not_found);
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    let records = recorder.0.lock().unwrap();
    assert_eq!(records[0].outcome, CallOutcome::Refused);
    assert_eq!(records[0].status, Some(400));
    assert_eq!(records[0].request_id.as_deref(), Some("req_Abc123"));
}

#[tokio::test]
async fn a_card_decline_is_refused_with_its_code() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(stripe_error(
            402,
            r#"{"error":{"charge":"ch_1","code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds.","type":"card_error"}}"#,
        ))
        .mount(&server)
        .await;

    let err = client(&server)
        .create_payment_intent(&intent_request())
        .await
        .unwrap_err();

    assert!(
        matches!(&err, ProviderError::Refused { code: Some(c), not_found: false, .. } if c == "card_declined"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_404_for_a_missing_object_is_refused_as_not_found() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(stripe_error(
            404,
            r#"{"error":{"code":"resource_missing","message":"No such payment_intent: 'pi_x'","param":"intent","type":"invalid_request_error"}}"#,
        ))
        .mount(&server)
        .await;

    let err = client(&server)
        .payment_intent(&PaymentIntentRef::parse("pi_x").unwrap())
        .await
        .unwrap_err();

    assert!(
        matches!(
            err,
            ProviderError::Refused {
                not_found: true,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_401_is_misconfigured_and_never_shows_the_api_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(stripe_error(
            401,
            &format!(
                r#"{{"error":{{"message":"Invalid API Key provided: {KEY}","type":"invalid_request_error"}}}}"#
            ),
        ))
        .mount(&server)
        .await;

    let err = client(&server)
        .create_payment_intent(&intent_request())
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Misconfigured(_)), "{err:?}");
    let mut shown = format!("{err} {err:?}");
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        shown.push_str(&format!(" {s} {s:?}"));
        source = s.source();
    }
    assert!(!shown.contains(KEY), "{shown}");
    assert!(shown.contains("401"), "{shown}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_403_is_misconfigured() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(stripe_error(
            403,
            r#"{"error":{"type":"invalid_request_error"}}"#,
        ))
        .mount(&server)
        .await;

    let err = client(&server)
        .fetch_event(&EventId::parse("evt_1").unwrap())
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Misconfigured(_)), "{err:?}");
}

#[tokio::test]
async fn a_malformed_200_body_is_unexpected() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json("<html>not json</html>"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/events/evt_1"))
        .respond_with(json("{\"id\":\"evt_1\""))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_1"))
        .respond_with(json(r#"{"id":"pi_1","status":"succeeded"}"#))
        .mount(&server)
        .await;
    let c = client(&server);

    let post = c
        .create_payment_intent(&intent_request())
        .await
        .unwrap_err();
    let get = c
        .payment_intent(&PaymentIntentRef::parse("pi_1").unwrap())
        .await
        .unwrap_err();
    let event = c
        .fetch_event(&EventId::parse("evt_1").unwrap())
        .await
        .unwrap_err();

    assert!(matches!(post, ProviderError::Unexpected(_)), "{post:?}");
    assert!(matches!(get, ProviderError::Unexpected(_)), "{get:?}");
    assert!(matches!(event, ProviderError::Unexpected(_)), "{event:?}");
}

#[tokio::test]
async fn a_checkout_session_without_url_is_unexpected() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json(r#"{"id":"cs_1","url":null}"#))
        .mount(&server)
        .await;

    let err = client(&server)
        .create_checkout_session(&checkout_request(None, None))
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Unexpected(_)), "{err:?}");
}
