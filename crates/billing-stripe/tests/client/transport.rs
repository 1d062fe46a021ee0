//! The transport: ids as one path segment, retries with one idempotency key, budgets,
//! deadlines and timeouts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use billing_domain::ids::{CustomerRef, EventId, InvoiceRef};
use billing_domain::ports::{PaymentProvider, ProviderError};
use billing_stripe::{CallOutcome, RetryPolicy, StripeClient};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::*;

#[tokio::test]
async fn ids_with_slashes_or_question_marks_stay_one_path_segment() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(json(&fixture("event.json")))
        .mount(&server)
        .await;

    client(&server)
        .fetch_event(&EventId::parse("evt_1/../../v1/charges?x=1#f").unwrap())
        .await
        .unwrap();

    let r = &server.received_requests().await.unwrap()[0];
    assert_eq!(
        r.url.path(),
        "/v1/events/evt_1%2F..%2F..%2Fv1%2Fcharges%3Fx%3D1%23f"
    );
    assert_eq!(r.url.query(), None);
}

#[tokio::test]
async fn a_dot_dot_id_is_refused_without_a_request() {
    let server = MockServer::start().await;

    let err = client(&server)
        .fetch_event(&EventId::parse("..").unwrap())
        .await
        .unwrap_err();

    assert!(matches!(
        err,
        ProviderError::Refused {
            not_found: true,
            ..
        }
    ));
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_500_then_200_succeeds_and_both_attempts_carry_the_same_idempotency_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(stripe_error(500, r#"{"error":{"type":"api_error"}}"#))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(json(&fixture("billing_portal.session.json")))
        .mount(&server)
        .await;
    let recorder = Arc::new(Recorder::default());
    let client = client(&server).with_metrics(recorder.clone());

    let url = client
        .create_portal_session(&CustomerRef::parse("cus_1").unwrap(), "https://a.example/")
        .await;

    assert!(url.is_ok(), "{url:?}");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    let first = header(&requests[0], "idempotency-key").unwrap();
    assert_eq!(header(&requests[1], "idempotency-key"), Some(first));
    assert_eq!(requests[0].body, requests[1].body);
    let records = recorder.0.lock().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].operation, "create_portal_session");
    assert_eq!(records[0].outcome, CallOutcome::Success);
    assert_eq!(records[0].attempts, 2);
}

#[tokio::test]
async fn the_callers_idempotency_key_is_reused_on_every_retry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;

    let err = client(&server)
        .create_payment_intent(&intent_request())
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3);
    for r in &requests {
        assert_eq!(
            header(r, "idempotency-key"),
            Some(&*format!("pi:{INVOICE}:4900"))
        );
    }
}

#[tokio::test]
async fn a_budget_cuts_a_lookup_short_of_the_clients_deadline() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(10)))
        .mount(&server)
        .await;
    // The client alone would wait 2 s per try, 5 s in all.
    let c = client(&server);
    let started = Instant::now();

    let err = c
        .invoice_payment_intent(
            &InvoiceRef::parse("in_1").unwrap(),
            Some(Duration::from_millis(300)),
        )
        .await
        .unwrap_err();

    let elapsed = started.elapsed();
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    // 300 ms budget plus scheduling slack, well short of the 2 s per-try timeout.
    assert!(elapsed < Duration::from_millis(1_500), "{elapsed:?}");
}

#[tokio::test]
async fn a_persistent_500_gives_up_within_the_deadline_as_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let mut cfg = config(&server);
    cfg.retry = RetryPolicy {
        max_retries: 1_000,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(50),
        per_try_timeout: Duration::from_secs(1),
        deadline: Duration::from_millis(400),
    };
    let started = Instant::now();

    let err = StripeClient::new(cfg)
        .unwrap()
        .fetch_event(&EventId::parse("evt_1").unwrap())
        .await
        .unwrap_err();

    let elapsed = started.elapsed();
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    // 400 ms deadline plus scheduling slack; a run without a deadline would take 20 s+.
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    let attempts = server.received_requests().await.unwrap().len();
    assert!((2..1_000).contains(&attempts), "{attempts}");
}

#[tokio::test]
async fn retries_stop_after_max_retries() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&server)
        .await;

    let err = client(&server)
        .fetch_event(&EventId::parse("evt_1").unwrap())
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(_)));
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_429_with_should_retry_false_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            stripe_error(
                429,
                r#"{"error":{"type":"invalid_request_error","code":"rate_limit"}}"#,
            )
            .insert_header("Stripe-Should-Retry", "false"),
        )
        .mount(&server)
        .await;

    let err = client(&server)
        .create_payment_intent(&intent_request())
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_429_without_header_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(stripe_error(429, ""))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(json(&fixture("payment_intent.json")))
        .mount(&server)
        .await;

    let info = client(&server)
        .create_payment_intent(&intent_request())
        .await;

    assert!(info.is_ok(), "{info:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_409_is_retried_and_maps_to_unavailable_when_it_persists() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(stripe_error(
            409,
            r#"{"error":{"type":"invalid_request_error","code":"idempotency_key_in_use"}}"#,
        ))
        .mount(&server)
        .await;

    let err = client(&server)
        .create_payment_intent(&intent_request())
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn should_retry_true_forces_a_retry_of_a_400() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            stripe_error(
                400,
                r#"{"error":{"type":"invalid_request_error","message":"try again"}}"#,
            )
            .insert_header("Stripe-Should-Retry", "true"),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(json(&fixture("payment_intent.json")))
        .mount(&server)
        .await;

    let info = client(&server)
        .create_payment_intent(&intent_request())
        .await;

    assert!(info.is_ok(), "{info:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn should_retry_false_forbids_retrying_a_503() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).insert_header("Stripe-Should-Retry", "false"))
        .mount(&server)
        .await;

    let err = client(&server)
        .fetch_event(&EventId::parse("evt_1").unwrap())
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(_)));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_hanging_server_hits_the_per_try_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(json(&fixture("event.json")).set_delay(Duration::from_secs(10)))
        .mount(&server)
        .await;
    let mut cfg = config(&server);
    cfg.retry.per_try_timeout = Duration::from_millis(150);
    cfg.retry.max_retries = 1;
    let recorder = Arc::new(Recorder::default());
    let started = Instant::now();

    let err = StripeClient::new(cfg)
        .unwrap()
        .with_metrics(recorder.clone())
        .fetch_event(&EventId::parse("evt_1").unwrap())
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let records = recorder.0.lock().unwrap();
    assert_eq!(records[0].attempts, 2);
    assert_eq!(records[0].outcome, CallOutcome::Unavailable);
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    let server = MockServer::start().await;
    let mut cfg = config(&server);
    // A port that was just free: nothing listens there any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    cfg.api_base = format!("http://{}", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    drop(listener);
    cfg.retry.max_retries = 1;

    let err = StripeClient::new(cfg)
        .unwrap()
        .fetch_event(&EventId::parse("evt_1").unwrap())
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn every_request_names_this_client_and_the_application_in_stripes_app_info_form() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(json(&fixture("event.json")))
        .mount(&server)
        .await;
    let mut named = config(&server);
    named.app_info = billing_stripe::AppInfo {
        name: "AcmeBilling".into(),
        version: Some("3.1.4".into()),
        url: Some("https://billing.example.com".into()),
    };
    let event = EventId::parse("evt_1").unwrap();

    client(&server).fetch_event(&event).await.unwrap();
    StripeClient::new(named)
        .unwrap()
        .fetch_event(&event)
        .await
        .unwrap();

    let requests = server.received_requests().await.unwrap();
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        header(&requests[0], "user-agent"),
        Some(format!("Stripe/v1 BillingStripeRust/{version} BillingService/{version}").as_str())
    );
    assert_eq!(
        header(&requests[1], "user-agent"),
        Some(
            format!("Stripe/v1 BillingStripeRust/{version} AcmeBilling/3.1.4 (https://billing.example.com)")
                .as_str()
        )
    );
    let client_ua: serde_json::Value =
        serde_json::from_str(header(&requests[1], "x-stripe-client-user-agent").unwrap()).unwrap();
    assert_eq!(client_ua["lang"], "rust");
    assert_eq!(client_ua["bindings_version"], version);
    assert_eq!(client_ua["httplib"], "reqwest");
    assert_eq!(
        client_ua["application"],
        serde_json::json!({
            "name": "AcmeBilling", "version": "3.1.4", "url": "https://billing.example.com"
        })
    );
}

#[test]
fn an_application_name_that_cannot_be_a_header_is_refused_when_the_client_is_built() {
    let mut config =
        billing_stripe::StripeConfig::new(None, "https://a.example", "https://b.example");
    config.app_info.name = "Bad\nName".into();

    assert!(StripeClient::new(config).is_err());
}
