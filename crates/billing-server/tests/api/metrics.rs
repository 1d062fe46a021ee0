//! The Prometheus registry behind the app, without a database: every family with route
//! patterns, not raw paths, whoever reported it (the HTTP adapter, the Stripe client, the
//! queues, the pool sampled at scrape).

use std::sync::Arc;
use std::time::Duration;

use actix_web::test::{self, TestRequest};
use billing_domain::metrics::{BillingMetrics, ProviderCall, Queue};
use billing_domain::service::{MockBillingApi, WebhookReceipt};
use billing_domain::webhook::SignatureError;
use billing_domain::{
    BillingApi, BillingInterval, Currency, EventId, EventOutcome, Money, Plan, PlanCode, PlanId,
    PriceRef, TrialDays,
};
use billing_http::{mint_hs256, AppState, Authenticator};
use billing_server::metrics::Metrics;

const SECRET: &[u8] = b"test-only-jwt-secret-0123456789abcdef";

fn plan() -> Plan {
    let now = chrono::Utc::now();
    Plan {
        id: PlanId::new(),
        code: PlanCode::parse("plan-pro").unwrap(),
        name: "Pro".into(),
        price: PriceRef::parse("price_pro_test").unwrap(),
        amount: Money::new(2900, Currency::parse("usd").unwrap()).unwrap(),
        interval: BillingInterval::Month,
        trial_days: Some(TrialDays::new(14).unwrap()),
        features: billing_domain::Features::default(),
        active: true,
        created_at: now,
        updated_at: now,
    }
}

#[actix_web::test]
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
    let metrics = Arc::new(Metrics::new());
    metrics.provider_call(&ProviderCall {
        operation: "create_checkout_session",
        outcome: "ok",
        attempts: 2,
        duration: Duration::from_millis(80),
    });
    metrics.queue_pass(Queue::Outbox, 1, 1);
    metrics.on_scrape(|m| {
        m.set_db_pool(2, 3, 10, 0);
        m.queue_backlog(Queue::Outbox, 4);
    });
    let api: Arc<dyn BillingApi> = Arc::new(api);
    let app = test::init_service(billing_http::app(AppState {
        api,
        auth: Authenticator::hs256(SECRET).unwrap(),
        metrics,
    }))
    .await;
    let admin = mint_hs256(
        SECRET,
        "ops@example.test",
        None,
        true,
        Duration::from_secs(300),
    )
    .unwrap();
    let webhook = || TestRequest::post().uri("/api/v1/billing/stripe/webhook");
    for req in [
        TestRequest::get()
            .uri("/api/v1/billing/plans/plan-pro")
            .insert_header(("Authorization", format!("Bearer {admin}"))),
        TestRequest::get().uri("/nowhere/at/all"),
        webhook().set_payload(&b"{}"[..]),
        webhook().set_payload(&b"{}"[..]),
        webhook().set_payload(vec![b'a'; 300 * 1024]),
    ] {
        test::call_service(&app, req.to_request()).await;
    }

    let scrape = test::call_service(&app, TestRequest::get().uri("/metrics").to_request()).await;

    assert_eq!(scrape.status().as_u16(), 200);
    assert!(scrape
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = String::from_utf8(test::read_body(scrape).await.to_vec()).unwrap();
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

/// Process metrics (prometheus' `process` feature) are in `/metrics` next to the
/// service's own families, with plausible values for this very process.
#[cfg(target_os = "linux")]
#[actix_web::test]
async fn metrics_include_the_process_families() {
    let api: Arc<dyn BillingApi> = Arc::new(MockBillingApi::new());
    let app = test::init_service(billing_http::app(AppState {
        api,
        auth: Authenticator::hs256(SECRET).unwrap(),
        metrics: Arc::new(Metrics::new()),
    }))
    .await;

    let scrape = test::call_service(&app, TestRequest::get().uri("/metrics").to_request()).await;

    let text = String::from_utf8(test::read_body(scrape).await.to_vec()).unwrap();
    let value = |family: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{family} ")))
            .unwrap_or_else(|| panic!("{family} missing from /metrics:\n{text}"))
            .parse()
            .unwrap()
    };
    assert!(value("process_resident_memory_bytes") > 1_000_000.0);
    assert!(value("process_virtual_memory_bytes") > 0.0);
    assert!(value("process_cpu_seconds_total") >= 0.0);
    assert!(value("process_open_fds") >= 3.0);
    assert!(value("process_max_fds") > 0.0);
    assert!(value("process_threads") >= 1.0);
    assert!(value("process_start_time_seconds") > 1.7e9);
    assert!(text.contains("billing_outbox_backlog "), "{text}");
}
