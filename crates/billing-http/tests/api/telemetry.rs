//! Request ids on every answer and the metrics at `GET /metrics`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::test::TestRequest;
use billing_domain::metrics::{BillingMetrics, ProviderCall, Queue, WebhookDelivery};
use billing_domain::service::{MockBillingApi, WebhookReceipt};
use billing_domain::webhook::SignatureError;
use billing_domain::*;
use billing_http::{Authenticator, MetricsEndpoint};

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

/// Remembers every report, and renders them one per line at `GET /metrics`.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Recorder {
    fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }
}

impl BillingMetrics for Recorder {
    fn http_request(&self, route: &str, method: &str, status: u16, _: Duration) {
        self.push(format!("http {method} {route} {status}"));
    }
    fn webhook_event(&self, d: &WebhookDelivery<'_>) {
        self.push(format!(
            "event {} {} lag>={} {:?}",
            d.kind,
            d.outcome.as_str(),
            d.lag.as_secs(),
            d.api_version
        ));
    }
    fn webhook_rejected(&self, reason: &str) {
        self.push(format!("rejected {reason}"));
    }
    fn provider_call(&self, call: &ProviderCall<'_>) {
        self.push(format!("provider {}", call.operation));
    }
    fn queue_backlog(&self, queue: Queue, waiting: u64) {
        self.push(format!("backlog {queue:?} {waiting}"));
    }
    fn queue_pass(&self, queue: Queue, failed: u64, given_up: u64) {
        self.push(format!("pass {queue:?} {failed} {given_up}"));
    }
}

impl MetricsEndpoint for Recorder {
    fn content_type(&self) -> &'static str {
        "text/plain; version=0.0.4; charset=utf-8"
    }
    fn scrape(&self) -> String {
        self.0.lock().unwrap().join("\n")
    }
}

/// What the HTTP adapter reports (the Prometheus rendering of it is the server's test,
/// `billing_server::metrics`): every request with its route pattern, never the raw path,
/// each verified webhook event, each refused delivery with its reason.
#[actix_rt::test]
async fn requests_and_webhook_deliveries_are_reported_with_route_patterns_not_raw_paths() {
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
    let recorder = Arc::new(Recorder::default());
    let webhook = || TestRequest::post().uri("/api/v1/billing/stripe/webhook");

    let replies = send_all(
        Authenticator::hs256(SECRET).unwrap(),
        api,
        recorder.clone(),
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
    let reports = recorder.0.lock().unwrap().clone();
    assert_eq!(
        reports,
        [
            "http GET /api/v1/billing/plans/{planId} 200",
            "http GET unmatched 404",
            "event invoice.payment_failed processed lag>=3 Some(\"2026-07-29.dahlia\")",
            "http POST /api/v1/billing/stripe/webhook 200",
            "rejected mismatch",
            "http POST /api/v1/billing/stripe/webhook 400",
            "rejected payload_too_large",
            "http POST /api/v1/billing/stripe/webhook 413",
            "http GET /metrics 200",
        ]
    );
    // The scrape renders what was reported before it.
    assert_eq!(scrape.text, reports[..reports.len() - 1].join("\n"));
}
