//! Adversarial inputs for the webhook surface, kept as plain tests next to the fuzz targets
//! in `fuzz/` (`scripts/fuzz.sh`). Every input a fuzz run finds crashing lands here, inline
//! as bytes; the cases below were written by hand (no crash has been found so far) and pin
//! that hostile headers and bodies end in a typed error, never a panic or a stack overflow.

#![allow(
    clippy::unwrap_used,
    reason = "helpers outside #[test] functions unwrap values that are valid by construction"
)]

use std::path::PathBuf;
use std::time::Duration;

use billing_domain::ports::WebhookVerifier;
use billing_domain::webhook::{InvalidPayload, PaymentEvent, SignatureError};
use billing_stripe::{sign, StripeWebhookVerifier};
use chrono::{DateTime, Utc};
use secrecy::SecretString;

const SECRET: &str = "whsec_test_secret";
const BODY: &[u8] = br#"{"id":"evt_test_fuzz","object":"event"}"#;
const T: i64 = 1_700_000_000;

fn verifier() -> StripeWebhookVerifier {
    StripeWebhookVerifier::new(
        vec![SecretString::from(SECRET.to_owned())],
        Duration::from_secs(300),
    )
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

fn verify(header: &str, now: i64) -> Result<(), SignatureError> {
    verifier().verify(BODY, Some(header), at(now))
}

fn parse(body: &[u8]) -> Result<PaymentEvent, InvalidPayload> {
    verifier().parse(body).map(|e| e.event)
}

fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/events")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

/// A minimal event of `kind` around `object` (raw JSON text).
fn event(kind: &str, object: &str) -> Vec<u8> {
    format!(
        r#"{{"id":"evt_fuzz","type":"{kind}","created":1700000000,"data":{{"object":{object}}}}}"#
    )
    .into_bytes()
}

/// The error message must describe the problem without echoing the (possibly huge,
/// possibly personal) body.
fn assert_short_message(err: &InvalidPayload) {
    assert!(err.0.len() < 200, "message too long: {} bytes", err.0.len());
}

// ---------------------------------------------------------------------------------------
// Stripe-Signature

#[test]
fn a_genuine_signature_at_the_largest_timestamp_is_outside_tolerance_not_an_overflow() {
    let header = sign(SECRET, i64::MAX, BODY);

    assert_eq!(verify(&header, T), Err(SignatureError::OutsideTolerance));
}

#[test]
fn a_genuine_signature_at_the_smallest_timestamp_is_outside_tolerance_not_an_overflow() {
    let header = sign(SECRET, i64::MIN, BODY);

    assert_eq!(verify(&header, T), Err(SignatureError::OutsideTolerance));
}

#[test]
fn a_timestamp_beyond_i64_is_a_malformed_header() {
    let header = format!("t=99999999999999999999999,v1={}", "0".repeat(64));

    assert_eq!(verify(&header, T), Err(SignatureError::MalformedHeader));
}

#[test]
fn non_decimal_timestamps_are_malformed_headers() {
    for t in ["", "+", "-", "1e9", "0x10", "1.5", "１２３", "1_000"] {
        let header = format!("t={t},v1={}", "0".repeat(64));

        assert_eq!(
            verify(&header, T),
            Err(SignatureError::MalformedHeader),
            "t={t:?}"
        );
    }
}

#[test]
fn the_same_timestamp_repeated_still_verifies() {
    let signed = sign(SECRET, T, BODY);
    let header = format!("t={T},{signed},t={T}");

    assert_eq!(verify(&header, T), Ok(()));
}

#[test]
fn a_second_different_timestamp_is_malformed_even_with_a_genuine_signature() {
    let signed = sign(SECRET, T, BODY);

    assert_eq!(
        verify(&format!("{signed},t={}", T + 1), T),
        Err(SignatureError::MalformedHeader)
    );
    assert_eq!(
        verify(&format!("t={},{signed}", T - 1), T),
        Err(SignatureError::MalformedHeader)
    );
}

#[test]
fn thousands_of_repeated_elements_end_in_a_typed_error() {
    let many_t = format!("t={T},").repeat(10_000);
    let many_v1 = format!("t={T},{}", "v1=00,".repeat(10_000));
    let many_commas = ",".repeat(100_000);

    assert_eq!(
        verify(&many_t, T),
        Err(SignatureError::NoV1Signature),
        "only t"
    );
    assert_eq!(verify(&many_v1, T), Err(SignatureError::Mismatch));
    assert_eq!(
        verify(&many_commas, T),
        Err(SignatureError::MalformedHeader)
    );
}

#[test]
fn a_lossily_converted_non_utf8_header_is_malformed() {
    let raw: &[u8] = &[
        0xff, 0xfe, b't', b'=', 0xc3, 0x28, b',', b'v', b'1', b'=', 0x80,
    ];
    let header = String::from_utf8_lossy(raw);

    assert_eq!(verify(&header, T), Err(SignatureError::MalformedHeader));
}

#[test]
fn non_utf8_junk_next_to_a_genuine_signature_is_ignored() {
    let mut raw = sign(SECRET, T, BODY).into_bytes();
    raw.extend_from_slice(&[b',', 0xff, 0xfe, 0xfd]);
    let header = String::from_utf8_lossy(&raw);

    assert_eq!(verify(&header, T), Ok(()));
}

#[test]
fn non_hex_and_odd_length_signatures_are_mismatches() {
    for v1 in [
        "zz",
        "abc",
        "é",
        &"g".repeat(64),
        &"a".repeat(63),
        &"a".repeat(100_000),
    ] {
        let header = format!("t={T},v1={v1}");

        assert_eq!(
            verify(&header, T),
            Err(SignatureError::Mismatch),
            "v1 of {} bytes",
            v1.len()
        );
    }
}

#[test]
fn a_genuine_signature_with_extra_leading_zero_bytes_is_a_mismatch() {
    let signed = sign(SECRET, T, BODY);
    let padded = signed.replace("v1=", "v1=00");

    assert_eq!(verify(&padded, T), Err(SignatureError::Mismatch));
}

#[test]
fn a_clock_near_chronos_limits_does_not_overflow() {
    let signed = sign(SECRET, T, BODY);
    let far_future = DateTime::<Utc>::MAX_UTC;
    let far_past = DateTime::<Utc>::MIN_UTC;

    assert_eq!(
        verifier().verify(BODY, Some(&signed), far_future),
        Err(SignatureError::OutsideTolerance)
    );
    assert_eq!(
        verifier().verify(BODY, Some(&signed), far_past),
        Err(SignatureError::OutsideTolerance)
    );
}

// ---------------------------------------------------------------------------------------
// Event parsing

#[test]
fn ten_thousand_open_brackets_are_an_invalid_payload_not_a_stack_overflow() {
    let body = "[".repeat(10_000);

    let err = parse(body.as_bytes()).unwrap_err();

    assert_short_message(&err);
}

#[test]
fn ten_thousand_balanced_brackets_are_an_invalid_payload() {
    let body = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));

    let err = parse(body.as_bytes()).unwrap_err();

    assert_short_message(&err);
}

#[test]
fn deep_nesting_in_a_field_the_parser_reads_is_an_invalid_payload() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let object = format!(r#"{{"id":"cs_test_fuzz","customer":{deep}}}"#);

    let err = parse(&event("checkout.session.completed", &object)).unwrap_err();

    assert_short_message(&err);
}

#[test]
fn deep_nesting_in_fields_the_parser_skips_is_accepted_without_overflowing_the_stack() {
    // serde_json skips unknown fields iteratively, with no recursion limit: 100 000 levels
    // would overflow a test thread's 2 MiB stack if skipping recursed.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let object = format!(r#"{{"id":"cs_test_fuzz","metadata":{{"x":{deep}}},"y":{deep}}}"#);
    let mut body = event("checkout.session.completed", &object);
    body.pop();
    body.extend_from_slice(format!(r#","request":{deep}}}"#).as_bytes());

    let event = parse(&body).unwrap();

    let PaymentEvent::CheckoutCompleted(c) = event else {
        panic!("expected CheckoutCompleted, got {event:?}")
    };
    assert_eq!(c.session.as_str(), "cs_test_fuzz");
}

#[test]
fn a_200_kib_event_id_is_an_invalid_payload() {
    let id = "e".repeat(200 * 1024);
    let body = format!(r#"{{"id":"{id}","type":"charge.refunded","created":1700000000}}"#);

    let err = parse(body.as_bytes()).unwrap_err();

    assert_short_message(&err);
}

#[test]
fn a_200_kib_metadata_value_is_carried_through_unchanged() {
    let tenant = "t".repeat(200 * 1024);
    let object = format!(r#"{{"id":"cs_test_fuzz","metadata":{{"tenantId":"{tenant}"}}}}"#);

    let event = parse(&event("checkout.session.completed", &object)).unwrap();

    let PaymentEvent::CheckoutCompleted(c) = event else {
        panic!("expected CheckoutCompleted, got {event:?}")
    };
    assert_eq!(c.tenant.metadata.map(|m| m.len()), Some(200 * 1024));
}

#[test]
fn a_200_kib_object_id_is_an_invalid_payload() {
    let id = "s".repeat(200 * 1024);
    let object = format!(r#"{{"id":"{id}","status":"active"}}"#);

    let err = parse(&event("customer.subscription.updated", &object)).unwrap_err();

    assert_short_message(&err);
}

#[test]
fn created_outside_i64_or_chronos_range_is_an_invalid_payload() {
    for created in [
        "9223372036854775808",
        "-9223372036854775809",
        "99999999999999999999999999999999",
        "9223372036854775807",
        "-9223372036854775808",
        "1e400",
        "1.5",
        "-0.0",
        "\"1700000000\"",
        "null",
    ] {
        let body = format!(r#"{{"id":"evt_fuzz","type":"charge.refunded","created":{created}}}"#);

        let err = parse(body.as_bytes()).unwrap_err();

        assert_short_message(&err);
    }
}

#[test]
fn amounts_and_dates_outside_i64_inside_a_real_sample_are_invalid_payloads() {
    let sample = fixture("invoice.payment_succeeded.json");
    for (field, value) in [
        (
            "\"amount_due\": 2000",
            "\"amount_due\": 18446744073709551616",
        ),
        ("\"amount_due\": 2000", "\"amount_due\": -1e400"),
        (
            "\"created\": 1785765903",
            "\"created\": 9223372036854775807",
        ),
    ] {
        assert!(sample.contains(field), "the sample no longer has {field}");
        let body = sample.replacen(field, value, 1);

        let err = parse(body.as_bytes()).unwrap_err();

        assert_short_message(&err);
    }
}

#[test]
fn a_body_that_is_not_utf8_is_an_invalid_payload() {
    let mut body = event("checkout.session.completed", r#"{"id":"cs_test_fuzz"}"#);
    body.insert(8, 0xff);

    let err = parse(&body).unwrap_err();

    assert_short_message(&err);
}

#[test]
fn a_known_type_around_another_types_object_is_invalid() {
    // A payment intent delivered as a subscription update must not read as a
    // subscription: `data.object.object` is checked against `type`.
    let sample = fixture("payment_intent.succeeded.json");
    let retyped = sample.replacen(
        "\"type\": \"payment_intent.succeeded\"",
        "\"type\": \"customer.subscription.updated\"",
        1,
    );
    assert_ne!(sample, retyped, "the sample's type line changed");

    let err = parse(retyped.as_bytes()).unwrap_err();

    assert!(err.0.contains("not a subscription"), "{err:?}");
}
