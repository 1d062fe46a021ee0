//! Stripe's failures, typed the way its SDKs type them (docs/stripe.md, Errors), and their
//! translation into the domain's [`ProviderError`].
//!
//! The typed [`StripeError`] is what gets logged and what travels as the `source` of a
//! `ProviderError`; callers only ever match on `ProviderError`. No message built here may
//! contain the API key: Stripe's own messages are scrubbed before they are stored.

use std::fmt;

use billing_domain::ports::{BoxError, ProviderError};
use thiserror::Error;

use crate::wire::ErrorBody;

/// What Stripe said in `{"error": {…}}`, plus the HTTP status it came with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiErrorDetail {
    /// HTTP status.
    pub status: u16,
    /// `error.type` as sent (`invalid_request_error`, `card_error`, …).
    pub kind: Option<String>,
    /// `error.code` (`resource_missing`, `card_declined`, …).
    pub code: Option<String>,
    /// `error.decline_code` for card declines.
    pub decline_code: Option<String>,
    /// `error.message`, scrubbed of the API key.
    pub message: Option<String>,
    /// `error.param`, the offending parameter.
    pub param: Option<String>,
    /// The `Request-Id` response header, for Stripe's dashboard logs.
    pub request_id: Option<String>,
}

impl fmt::Display for ApiErrorDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {}", self.status)?;
        if let Some(kind) = &self.kind {
            write!(f, " {kind}")?;
        }
        if let Some(code) = &self.code {
            write!(f, " ({code})")?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

/// A failed Stripe call, classified as the official SDKs classify it.
///
/// Details are boxed to keep `Result<_, StripeError>` small on the happy path.
#[derive(Debug, Error)]
pub enum StripeError {
    /// 402: the card (or other payment method) was declined.
    #[error("card error: {0}")]
    Card(Box<ApiErrorDetail>),
    /// 400/404: the request was invalid or named something that does not exist.
    #[error("invalid request: {0}")]
    InvalidRequest(Box<ApiErrorDetail>),
    /// 401: the API key was refused.
    #[error("authentication failed: {0}")]
    Authentication(Box<ApiErrorDetail>),
    /// 403: the key lacks a permission.
    #[error("permission denied: {0}")]
    Permission(Box<ApiErrorDetail>),
    /// 429 (or 400 `rate_limit`): too many requests.
    #[error("rate limited: {0}")]
    RateLimit(Box<ApiErrorDetail>),
    /// 400/404 `idempotency_error`: a key was reused with different parameters.
    #[error("idempotency error: {0}")]
    Idempotency(Box<ApiErrorDetail>),
    /// Anything else (409, 424, 5xx, unexpected statuses).
    #[error("Stripe API error: {0}")]
    Api(Box<ApiErrorDetail>),
    /// No HTTP answer: connection refused, reset, TLS failure.
    #[error("could not reach Stripe")]
    Connection(#[source] BoxError),
    /// No answer within the per-try timeout, or the whole call ran out of its deadline.
    #[error("Stripe did not answer in time")]
    Timeout,
    /// A 2xx answer we could not read.
    #[error("malformed Stripe response (HTTP {status}): {reason}")]
    MalformedResponse {
        /// HTTP status.
        status: u16,
        /// What was wrong (never the body itself).
        reason: String,
    },
    /// A request this client refused to send (for example an id that would change the
    /// request path).
    #[error("request not sent: {0}")]
    InvalidInput(String),
}

impl StripeError {
    /// Classifies a non-2xx answer (docs/stripe.md, Errors). `body` may be anything, including empty.
    pub(crate) fn from_response(
        status: u16,
        body: &[u8],
        request_id: Option<String>,
        api_key: &str,
    ) -> Self {
        let parsed: ErrorBody = serde_json::from_slice::<crate::wire::ErrorEnvelope>(body)
            .map(|e| e.error)
            .unwrap_or_default();
        let is_type = |t: &str| parsed.kind.as_deref() == Some(t);
        let is_code = |c: &str| parsed.code.as_deref() == Some(c);
        let rate_limited = status == 429 || (status == 400 && is_code("rate_limit"));
        let idempotency = matches!(status, 400 | 404) && is_type("idempotency_error");
        let detail = Box::new(ApiErrorDetail {
            status,
            message: parsed.message.as_deref().map(|m| scrub(m, api_key)),
            kind: parsed.kind,
            code: parsed.code,
            decline_code: parsed.decline_code,
            param: parsed.param,
            request_id,
        });
        match status {
            _ if rate_limited => Self::RateLimit(detail),
            _ if idempotency => Self::Idempotency(detail),
            400 | 404 => Self::InvalidRequest(detail),
            401 => Self::Authentication(detail),
            402 => Self::Card(detail),
            403 => Self::Permission(detail),
            _ => Self::Api(detail),
        }
    }
}

/// Replaces every occurrence of the API key (Stripe echoes a masked key, but a proxy or a
/// test double might not).
fn scrub(message: &str, api_key: &str) -> String {
    if api_key.is_empty() {
        message.to_owned()
    } else {
        message.replace(api_key, "***")
    }
}

fn refused(detail: &ApiErrorDetail, fallback: &str) -> ProviderError {
    let not_found = detail.status == 404 || detail.code.as_deref() == Some("resource_missing");
    ProviderError::Refused {
        code: detail.code.clone(),
        param: detail.param.clone(),
        message: detail
            .message
            .clone()
            .unwrap_or_else(|| fallback.to_owned()),
        not_found,
    }
}

impl From<StripeError> for ProviderError {
    fn from(e: StripeError) -> Self {
        match &e {
            StripeError::InvalidRequest(d) => refused(d, "Stripe refused the request"),
            StripeError::Card(d) => refused(d, "the payment method was declined"),
            StripeError::Idempotency(d) => refused(d, "Stripe refused a reused idempotency key"),
            StripeError::Authentication(_) | StripeError::Permission(_) => {
                ProviderError::Misconfigured(Box::new(e))
            }
            StripeError::RateLimit(_) | StripeError::Connection(_) | StripeError::Timeout => {
                ProviderError::Unavailable(Box::new(e))
            }
            // 409 (after retries), 424 and 5xx are Stripe-side or transient; other statuses
            // (3xx, 405, …) mean we do not understand the answer.
            StripeError::Api(d) if d.status == 409 || d.status == 424 || d.status >= 500 => {
                ProviderError::Unavailable(Box::new(e))
            }
            StripeError::Api(_) | StripeError::MalformedResponse { .. } => {
                ProviderError::Unexpected(Box::new(e))
            }
            StripeError::InvalidInput(m) => ProviderError::Refused {
                code: Some("resource_missing".to_owned()),
                param: None,
                message: m.clone(),
                not_found: true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify(status: u16, body: &str) -> StripeError {
        StripeError::from_response(status, body.as_bytes(), None, "sk_test_fake")
    }

    #[test]
    fn statuses_are_classified_like_the_sdks() {
        assert!(matches!(classify(429, ""), StripeError::RateLimit(_)));
        assert!(matches!(
            classify(
                400,
                r#"{"error":{"type":"invalid_request_error","code":"rate_limit"}}"#
            ),
            StripeError::RateLimit(_)
        ));
        assert!(matches!(
            classify(400, r#"{"error":{"type":"idempotency_error"}}"#),
            StripeError::Idempotency(_)
        ));
        assert!(matches!(
            classify(404, "{}"),
            StripeError::InvalidRequest(_)
        ));
        assert!(matches!(classify(401, ""), StripeError::Authentication(_)));
        assert!(matches!(classify(402, ""), StripeError::Card(_)));
        assert!(matches!(classify(403, ""), StripeError::Permission(_)));
        assert!(matches!(classify(409, ""), StripeError::Api(_)));
        assert!(matches!(classify(503, "<html>"), StripeError::Api(_)));
    }

    #[test]
    fn a_card_error_keeps_code_decline_code_and_message() {
        let e = classify(
            402,
            r#"{"error":{"type":"card_error","code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds.","charge":"ch_1","extra":{"a":1}}}"#,
        );

        let StripeError::Card(d) = &e else {
            panic!("expected a card error, got {e:?}")
        };
        assert_eq!(d.decline_code.as_deref(), Some("insufficient_funds"));
        match ProviderError::from(e) {
            ProviderError::Refused {
                code,
                message,
                not_found,
                ..
            } => {
                assert_eq!(code.as_deref(), Some("card_declined"));
                assert_eq!(message, "Your card has insufficient funds.");
                assert!(!not_found);
            }
            other => panic!("expected Refused, got {other:?}"),
        }
    }

    #[test]
    fn a_404_or_resource_missing_is_refused_as_not_found() {
        let not_found_404 = ProviderError::from(classify(404, ""));
        let missing_param = ProviderError::from(classify(
            400,
            r#"{"error":{"type":"invalid_request_error","code":"resource_missing","param":"customer","message":"No such customer: 'cus_x'"}}"#,
        ));

        assert!(matches!(
            not_found_404,
            ProviderError::Refused {
                not_found: true,
                ..
            }
        ));
        assert!(matches!(
            missing_param,
            ProviderError::Refused { not_found: true, param: Some(ref p), .. } if p == "customer"
        ));
    }

    #[test]
    fn outages_map_to_unavailable_and_credentials_to_misconfigured() {
        for status in [409, 424, 429, 500, 502, 503, 504] {
            assert!(
                matches!(
                    ProviderError::from(classify(status, "")),
                    ProviderError::Unavailable(_)
                ),
                "{status}"
            );
        }
        assert!(matches!(
            ProviderError::from(classify(401, "")),
            ProviderError::Misconfigured(_)
        ));
        assert!(matches!(
            ProviderError::from(classify(403, "")),
            ProviderError::Misconfigured(_)
        ));
        assert!(matches!(
            ProviderError::from(classify(400, r#"{"error":{"type":"idempotency_error"}}"#)),
            ProviderError::Refused { .. }
        ));
        assert!(matches!(
            ProviderError::from(classify(302, "")),
            ProviderError::Unexpected(_)
        ));
    }

    #[test]
    fn the_api_key_is_scrubbed_from_stripe_messages() {
        let e = classify(
            401,
            r#"{"error":{"type":"invalid_request_error","message":"Invalid API Key provided: sk_test_fake"}}"#,
        );

        let shown = format!("{e} {e:?}");

        assert!(!shown.contains("sk_test_fake"), "{shown}");
        assert!(shown.contains("***"));
    }
}
