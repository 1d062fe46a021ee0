//! Extractor configuration: the JSON, query and path extractors answer problem+json.
//!
//! Body errors are split by what went wrong:
//! * not JSON at all (syntax error, truncated body): 400 `invalid_json`;
//! * JSON of the wrong shape (unknown field, wrong type, missing field): 422 `invalid_body`;
//! * larger than [`JSON_LIMIT`]: 413 `payload_too_large`;
//! * a body that is not `application/json`: 415 `unsupported_media_type`.
//!
//! Query and path errors answer 400 `invalid_parameter`. The mappings themselves live in
//! [`crate::error`].

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, Error, FromRequest, HttpRequest};
use futures::future::{FutureExt, LocalBoxFuture};
use serde::de::DeserializeOwned;

use crate::error::{json_error, path_error, query_error, ApiError};

/// Largest JSON body accepted: 64 KiB.
pub const JSON_LIMIT: usize = 64 * 1024;

/// The extractor configurations [`crate::configure`] registers.
#[derive(Clone)]
pub struct ExtractorConfigs {
    /// `web::Json`: 64 KiB, problem+json errors.
    pub json: web::JsonConfig,
    /// `web::Query`: problem+json errors.
    pub query: web::QueryConfig,
    /// `web::Path`: problem+json errors.
    pub path: web::PathConfig,
}

/// Builds the JSON, query and path extractor configurations.
#[must_use]
pub fn extractor_configs() -> ExtractorConfigs {
    ExtractorConfigs {
        json: web::JsonConfig::default()
            .limit(JSON_LIMIT)
            .error_handler(|e, _| json_error(&e).into()),
        query: web::QueryConfig::default().error_handler(|e, _| query_error(&e).into()),
        path: web::PathConfig::default().error_handler(|e, _| path_error(&e).into()),
    }
}

/// A JSON body that may be absent: `None` when the request has no body (or the body is
/// `null`), otherwise extracted exactly like `web::Json<T>` (same limit, same error
/// answers). Used where the
/// same fields may come from the query string instead.
#[derive(Debug)]
pub struct OptionalJson<T>(pub Option<T>);

/// Whether the request carries a body, by HTTP/1.1 framing (RFC 9112 §6.3): a positive
/// `Content-Length` or any `Transfer-Encoding`. The server speaks HTTP/1.1 only (actix's
/// `http2` feature is off); an HTTP/2 front end (ingress) forwards as HTTP/1.1 with
/// framing headers.
fn has_body(req: &HttpRequest) -> bool {
    let headers = req.headers();
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return true;
    }
    headers.get(header::CONTENT_LENGTH).is_some_and(|length| {
        length
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            // An unreadable length is left to the JSON extractor to refuse.
            .is_none_or(|n| n > 0)
    })
}

impl<T: DeserializeOwned + 'static> FromRequest for OptionalJson<T> {
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self, Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        if !has_body(req) {
            return std::future::ready(Ok(Self(None))).boxed_local();
        }
        // A JSON `null` body means "no fields", like no body at all.
        web::Json::<Option<T>>::from_request(req, payload)
            .map(|r| r.map(|json| Self(json.into_inner())))
            .boxed_local()
    }
}

/// Largest webhook body accepted: 256 KiB (docs/contract.md, HTTP API). Stripe's events are far smaller.
pub const WEBHOOK_LIMIT: usize = 256 * 1024;

/// The raw body of a webhook delivery, exactly as received (its signature covers these
/// bytes). Read through `web::Bytes` with the route's `PayloadConfig`
/// ([`WEBHOOK_LIMIT`]); a declared `Content-Length` over the limit is refused before
/// any of the body is read. Refusals answer problem+json and count in
/// `billing_webhook_rejections_total`.
#[derive(Debug)]
pub struct WebhookBody(pub web::Bytes);

/// How long a webhook sender may take to send its body.
pub const WEBHOOK_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

fn reject_webhook(req: &HttpRequest, error: ApiError, reason: &str) -> Error {
    crate::metrics::report(req, |m| m.webhook_rejected(reason));
    tracing::warn!(reason, "webhook delivery refused");
    error.into()
}

fn declared_length(req: &HttpRequest) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

impl FromRequest for WebhookBody {
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self, Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let too_large = || ApiError::payload_too_large(WEBHOOK_LIMIT);
        if declared_length(req).is_some_and(|n| n > WEBHOOK_LIMIT as u64) {
            let e = reject_webhook(req, too_large(), "payload_too_large");
            return std::future::ready(Err(e)).boxed_local();
        }
        let req = req.clone();
        let read = web::Bytes::from_request(&req, payload);
        // actix times out a slow request head, not a slow body: a sender trickling the body
        // of this unauthenticated endpoint would hold a connection forever.
        actix_web::rt::time::timeout(WEBHOOK_READ_TIMEOUT, read)
            .map(move |read| {
                let Ok(read) = read else {
                    let timeout = ApiError::request_timeout(WEBHOOK_READ_TIMEOUT);
                    return Err(reject_webhook(&req, timeout, "body_timeout"));
                };
                read.map(Self).map_err(|e| {
                    let overflow = matches!(
                        e.as_error::<actix_web::error::PayloadError>(),
                        Some(actix_web::error::PayloadError::Overflow)
                    );
                    if overflow {
                        reject_webhook(&req, too_large(), "payload_too_large")
                    } else {
                        let unreadable =
                            ApiError::invalid_payload("the request body could not be read");
                        reject_webhook(&req, unreadable, "invalid_payload")
                    }
                })
            })
            .boxed_local()
    }
}
