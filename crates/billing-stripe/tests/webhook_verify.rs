//! `Stripe-Signature` verification: the worked example of docs/stripe.md, Signatures, the vectors in
//! `fixtures/events/signatures.json`, each failure kind, and a no-panic sweep.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap fixtures"
)]

use std::path::PathBuf;
use std::time::Duration;

use billing_domain::ports::WebhookVerifier;
use billing_domain::webhook::SignatureError;
use billing_stripe::{sign, StripeWebhookVerifier};
use chrono::{DateTime, Utc};
use secrecy::SecretString;

const SECRET: &str = "whsec_test_secret";
const OLD_SECRET: &str = "whsec_old_secret";
const BODY: &[u8] = br#"{"id":"evt_test_webhook","object":"event"}"#;
const T: i64 = 1_700_000_000;
const V1: &str = "d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990";
const V1_OLD: &str = "e016b64cc4263f90e0336f3975e8d4ac9cc185935edc3ebdd405db64ad0bb1c5";

fn verifier(secrets: &[&str]) -> StripeWebhookVerifier {
    StripeWebhookVerifier::new(
        secrets
            .iter()
            .map(|s| SecretString::from((*s).to_owned()))
            .collect(),
        Duration::from_secs(300),
    )
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

fn header(t: i64, v1: &str) -> String {
    format!("t={t},v1={v1}")
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events")
}

#[test]
fn the_worked_example_verifies() {
    let v = verifier(&[SECRET]);

    assert_eq!(v.verify(BODY, Some(&header(T, V1)), at(T)), Ok(()));
}

#[test]
fn sign_reproduces_the_worked_example_header() {
    assert_eq!(sign(SECRET, T, BODY), header(T, V1));
    assert_eq!(sign(OLD_SECRET, T, BODY), header(T, V1_OLD));
}

#[test]
fn a_body_with_one_added_space_is_a_mismatch() {
    let v = verifier(&[SECRET]);
    let tampered = br#"{"id": "evt_test_webhook","object":"event"}"#;

    assert_eq!(
        v.verify(tampered, Some(&header(T, V1)), at(T)),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_changed_timestamp_with_the_same_signature_is_a_mismatch() {
    let v = verifier(&[SECRET]);

    assert_eq!(
        v.verify(BODY, Some(&header(T + 1, V1)), at(T)),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_signature_made_with_another_secret_is_a_mismatch() {
    let v = verifier(&[SECRET]);

    assert_eq!(
        v.verify(BODY, Some(&header(T, V1_OLD)), at(T)),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_header_with_both_v1_values_verifies_with_either_secret() {
    let both = format!("t={T},v1={V1_OLD},v1={V1}");

    assert_eq!(verifier(&[SECRET]).verify(BODY, Some(&both), at(T)), Ok(()));
    assert_eq!(
        verifier(&[OLD_SECRET]).verify(BODY, Some(&both), at(T)),
        Ok(())
    );
}

#[test]
fn two_configured_secrets_accept_a_signature_by_either() {
    let v = verifier(&[OLD_SECRET, SECRET]);

    assert_eq!(v.verify(BODY, Some(&header(T, V1)), at(T)), Ok(()));
    assert_eq!(v.verify(BODY, Some(&header(T, V1_OLD)), at(T)), Ok(()));
}

#[test]
fn a_comma_separated_secret_list_configures_rotation() {
    let v = StripeWebhookVerifier::from_secret_list(
        " whsec_old_secret , ,whsec_test_secret",
        Duration::from_secs(300),
    );

    assert_eq!(v.secrets.len(), 2);
    assert_eq!(v.verify(BODY, Some(&header(T, V1)), at(T)), Ok(()));
    assert_eq!(v.verify(BODY, Some(&header(T, V1_OLD)), at(T)), Ok(()));
}

#[test]
fn a_timestamp_older_than_the_tolerance_is_refused_and_exactly_the_tolerance_passes() {
    let v = verifier(&[SECRET]);
    let h = header(T, V1);

    assert_eq!(
        v.verify(BODY, Some(&h), at(T + 301)),
        Err(SignatureError::OutsideTolerance)
    );
    assert_eq!(v.verify(BODY, Some(&h), at(T + 300)), Ok(()));
}

#[test]
fn a_timestamp_further_in_the_future_than_the_tolerance_is_refused() {
    let v = verifier(&[SECRET]);
    let h = header(T, V1);

    assert_eq!(
        v.verify(BODY, Some(&h), at(T - 301)),
        Err(SignatureError::OutsideTolerance)
    );
    assert_eq!(v.verify(BODY, Some(&h), at(T - 300)), Ok(()));
}

#[test]
fn a_header_with_only_v0_has_no_v1_signature() {
    let v = verifier(&[SECRET]);

    assert_eq!(
        v.verify(BODY, Some(&format!("t={T},v0={V1}")), at(T)),
        Err(SignatureError::NoV1Signature)
    );
}

#[test]
fn a_missing_header_is_reported_as_missing() {
    assert_eq!(
        verifier(&[SECRET]).verify(BODY, None, at(T)),
        Err(SignatureError::MissingHeader)
    );
}

#[test]
fn headers_without_a_usable_timestamp_are_malformed() {
    let v = verifier(&[SECRET]);

    for h in [
        "",
        "garbage",
        &format!("v1={V1}"),
        &format!("t=abc,v1={V1}"),
        &format!("t=1.5,v1={V1}"),
        &format!("t=99999999999999999999,v1={V1}"),
        &format!("t=,v1={V1}"),
    ] {
        assert_eq!(
            v.verify(BODY, Some(h), at(T)),
            Err(SignatureError::MalformedHeader),
            "{h:?}"
        );
    }
}

#[test]
fn bad_hex_or_wrong_length_signatures_are_mismatches() {
    let v = verifier(&[SECRET]);

    for sig in ["zz", "", "d95c", &V1[..63], &format!("{V1}00")] {
        assert_eq!(
            v.verify(BODY, Some(&header(T, sig)), at(T)),
            Err(SignatureError::Mismatch),
            "{sig:?}"
        );
    }
}

#[test]
fn uppercase_hex_is_accepted() {
    let v = verifier(&[SECRET]);

    assert_eq!(
        v.verify(BODY, Some(&header(T, &V1.to_uppercase())), at(T)),
        Ok(())
    );
}

#[test]
fn the_header_tolerates_any_order_and_surrounding_spaces() {
    let v = verifier(&[SECRET]);
    let h = format!(" v0=abc , v1 = {V1} ,  t = {T} ");

    assert_eq!(v.verify(BODY, Some(&h), at(T)), Ok(()));
}

#[test]
fn no_configured_secret_means_nothing_verifies() {
    assert_eq!(
        verifier(&[]).verify(BODY, Some(&header(T, V1)), at(T)),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn extreme_timestamps_are_refused_without_overflow() {
    let v = verifier(&[SECRET]);

    for t in [i64::MIN, i64::MAX, -1, 0] {
        let h = sign(SECRET, t, BODY);
        assert_eq!(
            v.verify(BODY, Some(&h), at(T)),
            Err(SignatureError::OutsideTolerance),
            "{t}"
        );
    }
    let max_now = DateTime::<Utc>::MAX_UTC;
    assert_eq!(
        v.verify(BODY, Some(&sign(SECRET, i64::MIN, BODY)), max_now),
        Err(SignatureError::OutsideTolerance)
    );
}

#[test]
fn every_vector_in_signatures_json_verifies_including_rotated_headers() {
    let raw = std::fs::read(fixtures().join("signatures.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let v = verifier(&[doc["secret"].as_str().unwrap()]);
    let files = doc["files"].as_object().unwrap();
    assert_eq!(files.len(), 7);

    for (name, vector) in files {
        let body = std::fs::read(fixtures().join(name)).unwrap();
        let t = vector["timestamp"].as_i64().unwrap();
        assert_eq!(
            body.len() as u64,
            vector["bytes"].as_u64().unwrap(),
            "{name}"
        );
        let plain = vector["stripe_signature_header"].as_str().unwrap();
        let rotated = vector["header_with_v0_and_rotated_secret"]
            .as_str()
            .unwrap();

        assert_eq!(
            sign(SECRET, t, &body),
            header(t, vector["v1"].as_str().unwrap()),
            "{name}"
        );
        assert_eq!(v.verify(&body, Some(plain), at(t)), Ok(()), "{name}");
        assert_eq!(v.verify(&body, Some(rotated), at(t)), Ok(()), "{name}");
        assert_eq!(
            v.verify(&body[1..], Some(plain), at(t)),
            Err(SignatureError::Mismatch),
            "{name}"
        );
        assert_eq!(
            v.verify(&body, Some(plain), at(t + 301)),
            Err(SignatureError::OutsideTolerance),
            "{name}"
        );
    }
}

#[test]
fn the_negative_cases_in_signatures_json_fail_with_the_expected_error() {
    let raw = std::fs::read(fixtures().join("signatures.json")).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let v = verifier(&[SECRET]);
    let cases = doc["negative_cases"].as_array().unwrap();
    let expected = [
        Err(SignatureError::Mismatch),
        Err(SignatureError::Mismatch),
        Err(SignatureError::Mismatch),
        Err(SignatureError::NoV1Signature),
        Err(SignatureError::OutsideTolerance),
        Ok(()),
    ];
    let now = [T, T, T, T, T + 301, T + 300];
    assert_eq!(cases.len(), expected.len());

    for ((case, want), now) in cases.iter().zip(expected).zip(now) {
        let payload = case["payload"].as_str().unwrap().as_bytes();
        let h = case["header"].as_str().unwrap();
        assert_eq!(
            v.verify(payload, Some(h), at(now)),
            want,
            "{}",
            case["case"]
        );
    }
}

/// xorshift64*: deterministic, dependency-free randomness for the sweep below.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_and_garbage_headers_and_bodies_never_panic_and_yield_typed_errors() {
    let v = verifier(&[SECRET, OLD_SECRET]);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let pieces = [
        "t=",
        "v1=",
        "v0=",
        "=",
        ",",
        " ",
        "t",
        "v1",
        "1700000000",
        "-1",
        "+5",
        "9223372036854775807",
        "-9223372036854775808",
        "99999999999999999999",
        V1,
        "zz",
        "é",
        "\u{0}",
        "%",
        "t=1700000000",
        "==",
        ",,",
    ];
    let nows = [
        at(T),
        DateTime::<Utc>::MAX_UTC,
        DateTime::<Utc>::MIN_UTC,
        at(0),
    ];

    for _ in 0..20_000 {
        let mut h = String::new();
        for _ in 0..rng.below(8) {
            h.push_str(pieces[rng.below(pieces.len())]);
        }
        let body: Vec<u8> = (0..rng.below(64)).map(|_| rng.next() as u8).collect();
        let now = nows[rng.below(nows.len())];

        let result = v.verify(&body, Some(&h), now);

        assert!(
            matches!(
                result,
                Ok(())
                    | Err(SignatureError::MalformedHeader
                        | SignatureError::NoV1Signature
                        | SignatureError::Mismatch
                        | SignatureError::OutsideTolerance)
            ),
            "{h:?} -> {result:?}"
        );
        assert!(v.parse(&body).is_err());
    }
}

#[test]
fn debug_output_never_shows_a_secret() {
    let v = verifier(&[SECRET, OLD_SECRET]);

    let shown = format!("{v:?}");

    assert!(!shown.contains("whsec_"), "{shown}");
}
