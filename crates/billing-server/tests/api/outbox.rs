//! The notification outbox end to end: written by the webhook's transaction, delivered at
//! least once with retries, surviving a restart.

use std::time::{Duration, Instant};

use billing_domain::TenantId;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{sample_event, spawn_app_with};

#[tokio::test]
async fn a_failed_invoice_payment_is_delivered_after_two_failures_and_a_restart() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/billing-events"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .mount(&receiver)
        .await;
    Mock::given(method("POST"))
        .and(path("/billing-events"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&receiver)
        .await;
    let url = format!("{}/billing-events", receiver.uri());
    let mut app = spawn_app_with(|env| {
        env.insert("NOTIFICATIONS_URL", url);
    })
    .await;
    let tenant = TenantId::new();
    let body = sample_event("invoice.payment_failed", |e| {
        e["data"]["object"]["metadata"] = json!({"tenantId": tenant.to_string()});
    });
    assert_eq!(app.webhook(&body).await.status(), 200);
    assert_eq!(
        app.webhook(&body).await.status(),
        200,
        "a redelivery adds no notification"
    );

    // Wait for the first failed attempt, then restart the service.
    wait_for(|| app.count("select attempts from notifications") >= 1).await;
    app.restart().await;
    wait_for(|| app.scalar("select status from notifications") == "delivered").await;

    let received = receiver.received_requests().await.unwrap();
    assert_eq!(received.len(), 3);
    let ids: Vec<_> = received
        .iter()
        .map(|r| {
            r.headers
                .get("x-notification-id")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "the same stable id on every attempt"
    );
    let payload: Value = serde_json::from_slice(&received[2].body).unwrap();
    assert_eq!(payload["type"], "invoice.payment_failed");
    assert_eq!(payload["data"]["tenantId"], tenant.to_string());
    assert_eq!(app.count("select count(*) from notifications"), 1);
}

async fn wait_for(mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(30), "timed out");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
