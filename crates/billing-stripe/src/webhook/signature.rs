//! `Stripe-Signature` verification (docs/stripe.md, Signatures) and the `sign()` that tests use.
//!
//! Verification runs on the raw body exactly as received; nothing here logs the body, the
//! header or a secret. No input, however malformed, makes these functions panic.

use billing_domain::webhook::SignatureError;
use chrono::{DateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;

use super::StripeWebhookVerifier;

type HmacSha256 = Hmac<Sha256>;

impl StripeWebhookVerifier {
    pub(super) fn check(
        &self,
        payload: &[u8],
        header: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), SignatureError> {
        let header = header.ok_or(SignatureError::MissingHeader)?;
        let parsed = parse_header(header)?;
        let signed = signed_prefix(parsed.timestamp);
        let matched = self.secrets.iter().any(|secret| {
            let Some(mut mac) = mac_for(secret.expose_secret()) else {
                return false;
            };
            mac.update(signed.as_bytes());
            mac.update(payload);
            parsed.v1.iter().any(|candidate| {
                // Bad hex is simply not a match. `verify_slice` compares in constant time,
                // so the time taken does not reveal how many leading bytes matched.
                hex::decode(candidate).is_ok_and(|bytes| mac.clone().verify_slice(&bytes).is_ok())
            })
        });
        if !matched {
            return Err(SignatureError::Mismatch);
        }
        // i128 cannot overflow for any pair of i64 values.
        let age = i128::from(now.timestamp()) - i128::from(parsed.timestamp);
        if age.unsigned_abs() > u128::from(self.tolerance.as_secs()) {
            return Err(SignatureError::OutsideTolerance);
        }
        Ok(())
    }
}

struct ParsedHeader<'a> {
    timestamp: i64,
    v1: Vec<&'a str>,
}

/// Splits `t=…,v1=…[,v1=…][,v0=…]`, tolerating any order, blanks around elements and
/// unknown schemes (ignored: only `v1` is accepted, which prevents a downgrade).
fn parse_header(header: &str) -> Result<ParsedHeader<'_>, SignatureError> {
    let mut timestamp: Option<i64> = None;
    let mut v1 = Vec::new();
    for element in header.split(',') {
        let Some((key, value)) = element.split_once('=') else {
            continue;
        };
        match key.trim() {
            "t" => {
                let t = value
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| SignatureError::MalformedHeader)?;
                // Two different timestamps are ambiguous: refuse rather than guess.
                if timestamp.is_some_and(|prev| prev != t) {
                    return Err(SignatureError::MalformedHeader);
                }
                timestamp = Some(t);
            }
            "v1" => v1.push(value.trim()),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::MalformedHeader)?;
    if v1.is_empty() {
        return Err(SignatureError::NoV1Signature);
    }
    Ok(ParsedHeader { timestamp, v1 })
}

fn signed_prefix(timestamp: i64) -> String {
    format!("{timestamp}.")
}

fn mac_for(secret: &str) -> Option<HmacSha256> {
    // HMAC accepts keys of any length, so this never fails in practice.
    <HmacSha256 as KeyInit>::new_from_slice(secret.as_bytes()).ok()
}

/// Computes a `Stripe-Signature` header (`t=<timestamp>,v1=<hex>`) for `payload`, exactly as
/// Stripe signs deliveries.
///
/// **Test support**: for unit, benchmark and end-to-end tests that need a validly signed
/// webhook; production code only ever verifies.
#[must_use]
pub fn sign(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let hex = mac_for(secret).map_or_else(String::new, |mut mac| {
        mac.update(signed_prefix(timestamp).as_bytes());
        mac.update(payload);
        hex::encode(mac.finalize().into_bytes())
    });
    format!("t={timestamp},v1={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_parsing_tolerates_order_blanks_and_unknown_schemes() {
        let h = parse_header(" v0=aa , v1= bb ,t = 5,x,v1=cc").unwrap();

        assert_eq!(h.timestamp, 5);
        assert_eq!(h.v1, vec!["bb", "cc"]);
    }

    #[test]
    fn two_different_timestamps_are_malformed() {
        assert_eq!(
            parse_header("t=1,t=2,v1=aa").err(),
            Some(SignatureError::MalformedHeader)
        );
    }
}
