//! `HttpNotifier` against a local HTTP server.
#![allow(clippy::unwrap_used, reason = "test helpers fail loudly by design")]

use std::time::Duration;

use billing_domain::ids::NotificationId;
use billing_domain::ports::{Delivered, Notifier, NotifyError, OutboxMessage};
use billing_notifier::{HttpNotifier, LogNotifier};
use url::Url;
use wiremock::matchers::{body_string, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn message() -> OutboxMessage {
    OutboxMessage {
        id: NotificationId::new(),
        kind: "invoice.payment_failed".into(),
        payload: r#"{"type":"invoice.payment_failed"}"#.into(),
        attempts: 0,
    }
}

fn notifier(server: &MockServer, timeout_ms: u64) -> HttpNotifier {
    let url = Url::parse(&format!("{}/hooks/billing", server.uri())).unwrap();
    HttpNotifier::new(url, Duration::from_millis(timeout_ms)).unwrap()
}

#[tokio::test]
async fn a_notification_is_posted_with_its_id_type_and_body() {
    let server = MockServer::start().await;
    let msg = message();
    Mock::given(method("POST"))
        .and(path("/hooks/billing"))
        .and(header("x-notification-id", msg.id.to_string().as_str()))
        .and(header("idempotency-key", msg.id.to_string().as_str()))
        .and(header("x-notification-type", "invoice.payment_failed"))
        .and(header("content-type", "application/json"))
        .and(body_string(msg.payload.clone()))
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&server)
        .await;

    let outcome = notifier(&server, 2_000).deliver(&msg).await.unwrap();

    assert_eq!(outcome, Delivered::Sent);
}

#[tokio::test]
async fn server_errors_and_rate_limits_are_retryable_and_client_errors_are_not() {
    for (status, retryable) in [
        (500, true),
        (503, true),
        (429, true),
        (408, true),
        (400, false),
        (404, false),
    ] {
        let server = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(status))
            .mount(&server)
            .await;

        let err = notifier(&server, 2_000)
            .deliver(&message())
            .await
            .unwrap_err();

        assert_eq!(
            matches!(err, NotifyError::Retryable(_)),
            retryable,
            "{status}"
        );
        assert!(err.to_string().contains(&status.to_string()), "{err}");
    }
}

#[tokio::test]
async fn a_receiver_that_hangs_times_out_as_retryable() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;

    let err = notifier(&server, 200)
        .deliver(&message())
        .await
        .unwrap_err();

    assert!(matches!(err, NotifyError::Retryable(_)));
}

#[tokio::test]
async fn without_a_receiver_notifications_are_logged() {
    assert_eq!(
        LogNotifier.deliver(&message()).await.unwrap(),
        Delivered::Logged
    );
}
