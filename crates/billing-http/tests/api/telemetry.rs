//! Request ids on every answer and the metrics at `GET /metrics`.

use std::time::Duration;

use actix_web::test::TestRequest;
use billing_domain::service::{MockBillingApi, WebhookReceipt};
use billing_domain::webhook::SignatureError;
use billing_domain::*;
use billing_http::{Authenticator, Metrics};

use crate::helpers::*;

const X_REQUEST_ID: &str = "x-request-id";

fn request_id(reply: &Reply) -> String {
    reply
        .headers
        .get(X_REQUEST_ID)
        .expect("X-Request-Id on the answer")
        .to_str()
        .unwrap()
        .to_owned()
}

#[actix_rt::test]
async fn a_plain_request_id_from_the_caller_is_echoed() {
    let reply = send(
        untouched(),
        TestRequest::get()
            .uri("/health/live")
            .insert_header((X_REQUEST_ID, "req-42.a_b")),
    )
    .await;

    assert_eq!(request_id(&reply), "req-42.a_b");
}

#[actix_rt::test]
async fn a_request_without_an_id_gets_a_uuid() {
    let reply = send(untouched(), TestRequest::get().uri("/health/live")).await;

    let id = request_id(&reply);
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
}

#[actix_rt::test]
async fn an_unsafe_or_overlong_request_id_is_replaced() {
    for bad in ["has space", "semi;colon", &"x".repeat(129)] {
        let reply = send(
            untouched(),
            TestRequest::get()
                .uri("/health/live")
                .insert_header((X_REQUEST_ID, bad)),
        )
        .await;

        let id = request_id(&reply);
        assert_ne!(id, bad);
        assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    }
}

#[actix_rt::test]
async fn error_answers_carry_the_request_id_too() {
    let requests = [
        TestRequest::get().uri("/no/such/path"),
        TestRequest::get().uri("/api/v1/billing/plans"),
        TestRequest::delete().uri("/api/v1/billing/plans"),
        TestRequest::post()
            .uri("/api/v1/billing/stripe/webhook")
            .set_payload(vec![b'a'; 1024 * 1024]),
    ];
    for (i, req) in requests.into_iter().enumerate() {
        let id = format!("err-{i}");

        let reply = send(untouched(), req.insert_header((X_REQUEST_ID, id.as_str()))).await;

        assert!(reply.status.is_client_error(), "{}", reply.status);
        assert_eq!(request_id(&reply), id);
    }
}

#[actix_rt::test]
async fn metrics_list_every_family_with_route_patterns_not_raw_paths() {
    let mut api = MockBillingApi::new();
    api.expect_get_plan().times(1).returning(|_, _| Ok(plan()));
    api.expect_receive_webhook().times(1).returning(|_, _| {
        Ok(WebhookReceipt {
            event_id: EventId::parse("evt_test_m").unwrap(),
            kind: "invoice.payment_failed".into(),
            created: chrono::Utc::now() - chrono::Duration::seconds(3),
            api_version: Some("2026-07-29.dahlia".into()),
            outcome: EventOutcome::Processed,
            detail: None,
        })
    });
    api.expect_receive_webhook()
        .times(1)
        .returning(|_, _| Err(SignatureError::Mismatch.into()));
    let metrics = Metrics::new();
    metrics.observe_stripe_call(
        "create_checkout_session",
        "ok",
        2,
        Duration::from_millis(80),
    );
    metrics.add_outbox_failures(1);
    metrics.add_outbox_dead(1);
    metrics.on_scrape(|m| {
        m.set_db_pool(2, 3, 10, 0);
        m.set_outbox_backlog(4);
    });
    let webhook = || TestRequest::post().uri("/api/v1/billing/stripe/webhook");

    let replies = send_all(
        Authenticator::hs256(SECRET),
        api,
        metrics,
        vec![
            TestRequest::get()
                .uri("/api/v1/billing/plans/plan-pro")
                .insert_header(bearer(&admin_token())),
            TestRequest::get().uri("/nowhere/at/all"),
            webhook().set_payload(&b"{}"[..]),
            webhook().set_payload(&b"{}"[..]),
            webhook().set_payload(vec![b'a'; 300 * 1024]),
            TestRequest::get().uri("/metrics"),
        ],
    )
    .await;

    let scrape = replies.last().unwrap();
    assert_eq!(scrape.status.as_u16(), 200);
    assert!(scrape
        .header(actix_web::http::header::CONTENT_TYPE)
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = &scrape.text;
    for expected in [
        r#"http_request_duration_seconds_count{method="GET",route="/api/v1/billing/plans/{planId}",status="200"} 1"#,
        r#"http_request_duration_seconds_count{method="GET",route="unmatched",status="404"} 1"#,
        r#"http_request_duration_seconds_count{method="POST",route="/api/v1/billing/stripe/webhook",status="413"} 1"#,
        r#"billing_webhook_events_total{outcome="processed",type="invoice.payment_failed"} 1"#,
        r#"billing_webhook_rejections_total{reason="mismatch"} 1"#,
        r#"billing_webhook_rejections_total{reason="payload_too_large"} 1"#,
        r#"billing_webhook_rejections_total{reason="invalid_payload"} 0"#,
        r#"billing_webhook_event_lag_seconds_count{type="invoice.payment_failed"} 1"#,
        r#"billing_stripe_api_calls_total{operation="create_checkout_session",outcome="ok"} 1"#,
        r#"billing_stripe_api_call_duration_seconds_count{operation="create_checkout_session"} 1"#,
        r#"billing_stripe_api_retries_total{operation="create_checkout_session"} 1"#,
        "billing_outbox_backlog 4",
        "billing_outbox_delivery_failures_total 1",
        "billing_outbox_dead_total 1",
        r#"billing_db_pool_connections{state="idle"} 3"#,
        r#"billing_db_pool_connections{state="in_use"} 2"#,
        r#"billing_db_pool_connections{state="max"} 10"#,
        "billing_db_pool_waiting 0",
    ] {
        assert!(text.contains(expected), "missing {expected} in\n{text}");
    }
    assert!(!text.contains("plan-pro"), "raw path in a label:\n{text}");
    assert!(!text.contains("/nowhere"), "raw path in a label:\n{text}");
}
