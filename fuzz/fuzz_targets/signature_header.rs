//! Fuzz target: `Stripe-Signature` parsing and verification.
//!
//! The input is split into a header (arbitrary bytes, converted lossily as an HTTP layer
//! would), a body, a timestamp and a clock offset. Properties checked on every run:
//! * `verify` never panics, whatever the header, body or clock;
//! * an arbitrary header never verifies (forging one would mean finding an HMAC);
//! * a header made by `sign()` for the same body verifies exactly when the clock is within
//!   the tolerance, also with a rotated secret list, extra blanks, and junk or `v0` elements
//!   around it; it is a `Mismatch` for another secret, another body or another `t`.

#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use billing_domain::ports::WebhookVerifier;
use billing_domain::webhook::SignatureError;
use billing_stripe::{sign, StripeWebhookVerifier};
use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use secrecy::SecretString;

const SECRET: &str = "whsec_test_secret";
const OTHER: &str = "whsec_test_other";
const TOLERANCE_SECS: u64 = 300;
/// Keeps `t` and `t + offset` inside chrono's representable range (about ±8.2e12 s).
const MAX_T: i64 = 8_000_000_000_000;

#[derive(Debug, Arbitrary)]
struct Input<'a> {
    header: &'a [u8],
    no_header: bool,
    body: &'a [u8],
    t: i64,
    now_offset: i32,
    junk: &'a [u8],
}

fn verifier(secrets: &[&str]) -> StripeWebhookVerifier {
    StripeWebhookVerifier::new(
        secrets
            .iter()
            .map(|s| SecretString::from((*s).to_owned()))
            .collect(),
        Duration::from_secs(TOLERANCE_SECS),
    )
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).expect("timestamp clamped into chrono's range")
}

fuzz_target!(|input: Input<'_>| {
    let t = input.t % MAX_T;
    let now = at(t + i64::from(input.now_offset));
    let v = verifier(&[SECRET]);

    // 1. Arbitrary header: no panic, and never accepted.
    let header = String::from_utf8_lossy(input.header);
    let arbitrary_header = (!input.no_header).then_some(header.as_ref());
    let result = v.verify(input.body, arbitrary_header, now);
    assert!(result.is_err(), "an arbitrary header verified: {header:?}");
    if input.no_header {
        assert_eq!(result, Err(SignatureError::MissingHeader));
    }
    // No secrets configured: never accepted either.
    assert!(verifier(&[])
        .verify(input.body, arbitrary_header, now)
        .is_err());

    // 2. A genuine header.
    let signed = sign(SECRET, t, input.body);
    let within = u64::from(input.now_offset.unsigned_abs()) <= TOLERANCE_SECS;
    let expected = if within {
        Ok(())
    } else {
        Err(SignatureError::OutsideTolerance)
    };
    assert_eq!(
        v.verify(input.body, Some(&signed), now),
        expected,
        "{signed}"
    );
    assert_eq!(
        verifier(&[OTHER, SECRET]).verify(input.body, Some(&signed), now),
        expected,
        "rotated secret list"
    );

    // Junk elements without '=' are skipped; a `v0=` element is ignored whatever it holds.
    let junk = String::from_utf8_lossy(input.junk);
    let no_eq = junk.replace('=', "");
    let no_comma = junk.replace(',', "");
    for variant in [
        format!("{signed},{no_eq}"),
        format!("{no_eq},{signed}"),
        format!("v0={no_comma},{signed}"),
        format!(" {} ", signed.replace(',', " , ").replace('=', " = ")),
    ] {
        assert_eq!(
            v.verify(input.body, Some(&variant), now),
            expected,
            "{variant:?}"
        );
    }

    // 3. Wrong secret, tampered body, or a shifted `t` with the same MAC: always a mismatch
    // (the signature is checked before the clock).
    assert_eq!(
        verifier(&[OTHER]).verify(input.body, Some(&signed), now),
        Err(SignatureError::Mismatch)
    );
    let mut tampered = input.body.to_vec();
    tampered.push(b'\n');
    assert_eq!(
        v.verify(&tampered, Some(&signed), now),
        Err(SignatureError::Mismatch)
    );
    let mac = signed
        .split_once(",v1=")
        .map(|(_, mac)| mac)
        .unwrap_or_default();
    let shifted = format!("t={},v1={mac}", t + 1);
    assert_eq!(
        v.verify(input.body, Some(&shifted), now),
        Err(SignatureError::Mismatch)
    );
});
