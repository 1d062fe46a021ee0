//! Configuration: no key means not configured, secrets never shown, the SDKs' defaults.

use std::time::Duration;

use billing_domain::ids::{CustomerRef, EventId, InvoiceRef, PaymentIntentRef};
use billing_domain::ports::{PaymentProvider, ProviderError};
use billing_stripe::{StripeClient, StripeConfig};
use secrecy::SecretString;
use wiremock::MockServer;

use crate::support::*;

#[tokio::test]
async fn without_an_api_key_every_call_is_not_configured_and_nothing_is_sent() {
    let server = MockServer::start().await;
    let mut cfg = config(&server);
    cfg.api_key = None;
    let c = StripeClient::new(cfg).unwrap();
    let blank = {
        let mut cfg = config(&server);
        cfg.api_key = Some(SecretString::from("  ".to_owned()));
        StripeClient::new(cfg).unwrap()
    };

    let results = [
        c.create_checkout_session(&checkout_request(None, None))
            .await
            .map(|_| ()),
        c.create_portal_session(&CustomerRef::parse("cus_1").unwrap(), "https://a.example")
            .await
            .map(|_| ()),
        c.create_payment_intent(&intent_request()).await.map(|_| ()),
        c.payment_intent(&PaymentIntentRef::parse("pi_1").unwrap())
            .await
            .map(|_| ()),
        c.invoice_payment_intent(&InvoiceRef::parse("in_1").unwrap(), None)
            .await
            .map(|_| ()),
        c.fetch_event(&EventId::parse("evt_1").unwrap())
            .await
            .map(|_| ()),
        c.expire_checkout_session(&session_ref()).await.map(|_| ()),
        blank
            .fetch_event(&EventId::parse("evt_1").unwrap())
            .await
            .map(|_| ()),
    ];

    for r in results {
        assert!(matches!(r, Err(ProviderError::NotConfigured)), "{r:?}");
    }
    assert!(!c.is_configured());
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn debug_of_the_config_and_client_never_shows_the_api_key() {
    let server = MockServer::start().await;
    let cfg = config(&server);
    let c = StripeClient::new(cfg.clone()).unwrap();

    let shown = format!("{cfg:?} {c:?} {cfg:#?} {c:#?}");

    assert!(!shown.contains(KEY), "{shown}");
    assert!(!shown.contains("sk_test"), "{shown}");
    assert!(shown.contains("2026-07-29.dahlia"));
}

#[test]
fn an_api_key_with_control_characters_is_refused_at_build_without_echoing_it() {
    let mut cfg = StripeConfig::new(
        Some(SecretString::from("sk_test_fake\nX".to_owned())),
        "https://a.example/ok",
        "https://a.example/cancel",
    );
    cfg.api_base = "http://127.0.0.1:9".parse().unwrap();

    let err = StripeClient::new(cfg).unwrap_err();

    assert!(!format!("{err} {err:?}").contains("sk_test_fake"));
}

#[test]
fn defaults_follow_the_sdks() {
    let cfg = StripeConfig::new(None, "s", "c");

    assert_eq!(cfg.api_base.as_str(), "https://api.stripe.com/");
    assert_eq!(cfg.api_version, "2026-07-29.dahlia");
    assert_eq!(cfg.retry.max_retries, 2);
    assert_eq!(cfg.retry.initial_backoff, Duration::from_millis(500));
    assert_eq!(cfg.retry.max_backoff, Duration::from_secs(5));
    assert_eq!(cfg.retry.per_try_timeout, Duration::from_secs(30));
    assert_eq!(cfg.retry.deadline, Duration::from_secs(60));
}
