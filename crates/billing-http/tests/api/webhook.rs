//! The Stripe webhook route and the event replay: raw body and header handed to the
//! service untouched, each outcome and refusal mapped, oversized bodies refused.

use actix_web::http::header;
use actix_web::test::TestRequest;
use billing_domain::service::{MockBillingApi, WebhookError, WebhookReceipt};
use billing_domain::webhook::SignatureError;
use billing_domain::*;
use serde_json::json;

use crate::helpers::*;

const WEBHOOK: &str = "/api/v1/billing/stripe/webhook";

fn receipt(outcome: EventOutcome) -> WebhookReceipt {
    WebhookReceipt {
        event_id: EventId::parse("evt_test_webhook").unwrap(),
        kind: "invoice.payment_succeeded".into(),
        created: at("2026-01-05T10:00:00Z"),
        api_version: Some("2026-07-29.dahlia".into()),
        outcome,
        detail: None,
    }
}

fn delivery(body: &'static [u8]) -> TestRequest {
    TestRequest::post()
        .uri(WEBHOOK)
        .insert_header((header::CONTENT_TYPE, "application/json; charset=utf-8"))
        .insert_header(("Stripe-Signature", "t=1700000000,v1=0123abcd"))
        .set_payload(body)
}

#[actix_rt::test]
async fn the_raw_body_and_signature_reach_the_service_byte_for_byte() {
    // Odd spacing, a trailing newline and non-ASCII: any re-encoding would change them.
    const BODY: &[u8] = b"{ \"id\":\"evt_test_webhook\" ,\"name\":\"J\xc3\xbcrgen\"}\n";
    let mut api = MockBillingApi::new();
    api.expect_receive_webhook()
        .withf(|payload, signature| {
            payload == BODY && signature.as_deref() == Some("t=1700000000,v1=0123abcd")
        })
        .times(1)
        .returning(|_, _| Ok(receipt(EventOutcome::Processed)));

    let reply = send(api, delivery(BODY)).await;

    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({"received": true, "eventId": "evt_test_webhook", "outcome": "processed"})
    );
}

#[actix_rt::test]
async fn every_recorded_outcome_answers_200_with_its_name() {
    for outcome in EventOutcome::ALL {
        let mut api = MockBillingApi::new();
        api.expect_receive_webhook()
            .times(1)
            .returning(move |_, _| Ok(receipt(outcome)));

        let reply = send(api, delivery(b"{}")).await;

        assert_eq!(reply.status.as_u16(), 200, "{outcome:?}: {}", reply.body);
        assert_eq!(reply.body["outcome"], outcome.as_str());
        assert_eq!(reply.body["received"], true);
    }
}

#[actix_rt::test]
async fn a_missing_signature_header_reaches_the_service_as_none() {
    let mut api = MockBillingApi::new();
    api.expect_receive_webhook()
        .withf(|_, signature| signature.is_none())
        .times(1)
        .returning(|_, _| Err(SignatureError::MissingHeader.into()));

    let reply = send(
        api,
        TestRequest::post().uri(WEBHOOK).set_payload(&b"{}"[..]),
    )
    .await;

    let detail = reply.assert_problem(400, "invalid_signature");
    assert!(detail.contains("missing"), "{detail}");
}

#[actix_rt::test]
async fn a_bad_signature_answers_400_without_echoing_the_header() {
    let reasons = [
        SignatureError::MissingHeader,
        SignatureError::MalformedHeader,
        SignatureError::NoV1Signature,
        SignatureError::Mismatch,
        SignatureError::OutsideTolerance,
    ];
    for reason in reasons {
        let mut api = MockBillingApi::new();
        let returned = reason.clone();
        api.expect_receive_webhook()
            .times(1)
            .returning(move |_, _| Err(WebhookError::Signature(returned.clone())));

        let reply = send(api, delivery(b"{}")).await;

        let detail = reply.assert_problem(400, "invalid_signature");
        assert!(!detail.contains("0123abcd"), "{reason:?}: {detail}");
        assert!(!detail.contains("1700000000"), "{reason:?}: {detail}");
    }
}

#[actix_rt::test]
async fn an_unreadable_event_answers_400_invalid_payload_without_the_parser_message() {
    let mut api = MockBillingApi::new();
    api.expect_receive_webhook().times(1).returning(|_, _| {
        Err(WebhookError::InvalidPayload(
            "expected `id` at line 1".into(),
        ))
    });

    let reply = send(api, delivery(b"[]")).await;

    let detail = reply.assert_problem(400, "invalid_payload");
    assert!(!detail.contains("line 1"), "{detail}");
}

#[actix_rt::test]
async fn an_unavailable_database_answers_503_so_that_stripe_retries() {
    let mut api = MockBillingApi::new();
    api.expect_receive_webhook()
        .times(1)
        .returning(|_, _| Err(WebhookError::Unavailable("pool timed out at db-7".into())));

    let reply = send(api, delivery(b"{}")).await;

    let detail = reply.assert_problem(503, "service_unavailable");
    assert!(!detail.contains("db-7"), "{detail}");
}

#[actix_rt::test]
async fn an_unexpected_failure_answers_an_opaque_500() {
    let mut api = MockBillingApi::new();
    api.expect_receive_webhook()
        .times(1)
        .returning(|_, _| Err(WebhookError::Unexpected("password=hunter2".into())));

    let reply = send(api, delivery(b"{}")).await;

    let detail = reply.assert_problem(500, "internal_error");
    assert!(!detail.contains("hunter2"));
}

#[actix_rt::test]
async fn a_one_mebibyte_body_is_refused_with_413_before_the_service_is_called() {
    let reply = send(
        untouched(),
        TestRequest::post()
            .uri(WEBHOOK)
            .insert_header(("Stripe-Signature", "t=1,v1=00"))
            .set_payload(vec![b'a'; 1024 * 1024]),
    )
    .await;

    reply.assert_problem(413, "payload_too_large");
}

#[actix_rt::test]
async fn a_body_longer_than_its_declared_length_is_cut_off_at_the_limit() {
    let reply = send(
        untouched(),
        TestRequest::post()
            .uri(WEBHOOK)
            .set_payload(vec![b'a'; 300 * 1024])
            .insert_header((header::CONTENT_LENGTH, "10")),
    )
    .await;

    reply.assert_problem(413, "payload_too_large");
}

#[actix_rt::test]
async fn a_body_of_exactly_the_limit_is_accepted() {
    let mut api = MockBillingApi::new();
    api.expect_receive_webhook()
        .withf(|payload, _| payload.len() == 256 * 1024)
        .times(1)
        .returning(|_, _| Ok(receipt(EventOutcome::Ignored)));

    let reply = send(
        api,
        TestRequest::post()
            .uri(WEBHOOK)
            .set_payload(vec![b' '; 256 * 1024]),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
}

#[actix_rt::test]
async fn the_webhook_needs_no_bearer_token_and_ignores_one() {
    let mut api = MockBillingApi::new();
    api.expect_receive_webhook()
        .times(1)
        .returning(|_, _| Ok(receipt(EventOutcome::Duplicate)));

    let reply = send(
        api,
        delivery(b"{}").insert_header((header::AUTHORIZATION, "Bearer not-a-jwt")),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
}

#[actix_rt::test]
async fn get_on_the_webhook_answers_405_with_allow() {
    let reply = send(untouched(), TestRequest::get().uri(WEBHOOK)).await;

    reply.assert_problem(405, "method_not_allowed");
    assert_eq!(reply.header(header::ALLOW), Some("POST"));
}

// ---------------------------------------------------------------------------------------
// Replay

#[actix_rt::test]
async fn an_admin_replay_answers_the_receipt() {
    let mut api = MockBillingApi::new();
    api.expect_replay_event()
        .withf(|actor, id| actor.admin && id.as_str() == "evt_test_webhook")
        .times(1)
        .returning(|_, _| {
            Ok(WebhookReceipt {
                detail: Some("no tenant for customer cus_x".into()),
                ..receipt(EventOutcome::Unmatched)
            })
        });

    let reply = send(
        api,
        TestRequest::post()
            .uri("/api/v1/billing/stripe/events/evt_test_webhook/replay")
            .insert_header(bearer(&admin_token())),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({
            "eventId": "evt_test_webhook",
            "type": "invoice.payment_succeeded",
            "outcome": "unmatched",
            "detail": "no tenant for customer cus_x"
        })
    );
}

#[actix_rt::test]
async fn a_replay_without_a_token_answers_401() {
    let reply = send(
        untouched(),
        TestRequest::post().uri("/api/v1/billing/stripe/events/evt_1/replay"),
    )
    .await;

    reply.assert_problem(401, "unauthorized");
}

#[actix_rt::test]
async fn a_replay_by_a_tenant_answers_403_admin_required() {
    let mut api = MockBillingApi::new();
    api.expect_replay_event()
        .times(1)
        .returning(|_, _| Err(BillingError::AdminOnly));

    let reply = send(
        api,
        TestRequest::post()
            .uri("/api/v1/billing/stripe/events/evt_1/replay")
            .insert_header(bearer(&tenant_token(TenantId::new()))),
    )
    .await;

    reply.assert_problem(403, "admin_required");
}

#[actix_rt::test]
async fn a_malformed_event_id_answers_400_naming_it() {
    let reply = send(
        untouched(),
        TestRequest::post()
            .uri("/api/v1/billing/stripe/events/evt%20x/replay")
            .insert_header(bearer(&admin_token())),
    )
    .await;

    let detail = reply.assert_problem(400, "invalid_parameter");
    assert!(detail.starts_with("eventId"), "{detail}");
}
