//! The one middleware around every request: request id, root tracing span, the
//! per-request log line and the HTTP duration metric.
//!
//! * **Request id.** A caller's `X-Request-Id` is kept when it is 1 to 128 characters of
//!   `[A-Za-z0-9._-]` (anything else could inject into logs); otherwise a UUID v4 is
//!   generated. It is echoed on every response, errors, 404s and 413s included.
//! * **Root span** `http.request` with `request_id`, `http.method`, `http.route` (the
//!   matched pattern), `http.status_code`, `duration_ms`, and empty `tenant.id`,
//!   `stripe.event_id` and `stripe.event_type` that the auth extractor and the webhook
//!   handler fill in through [`root_span`]. Handler spans are its children.
//! * **Metrics**: `http_request_duration_seconds{route, method, status}` with the route
//!   *pattern* (`unmatched` when no route matched), reported through the
//!   [`MetricsEndpoint`] registered as `web::Data<dyn MetricsEndpoint>`, if any.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage, HttpRequest};
use tracing::field::Empty;
use tracing::Instrument;

use crate::error::WithRequestId;
use crate::metrics::MetricsEndpoint;

/// The request id header.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The route label of requests no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// The id of the current request (request extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

impl RequestId {
    /// The id as sent in `X-Request-Id`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The root span of the current request (request extension).
#[derive(Debug, Clone)]
struct RootSpan(tracing::Span);

/// The root span of `req`, where fields such as `tenant.id` are recorded; the current
/// span when the middleware is not installed.
#[must_use]
pub fn root_span(req: &HttpRequest) -> tracing::Span {
    req.extensions()
        .get::<RootSpan>()
        .map_or_else(tracing::Span::current, |s| s.0.clone())
}

/// Whether a caller's request id is safe to keep.
fn acceptable_request_id(raw: &str) -> bool {
    (1..=128).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The method as a bounded label value.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// The middleware function; install it with `actix_web::middleware::from_fn(observe)`
/// (as [`crate::app`] does).
///
/// # Errors
/// None of its own: an error from the inner service is turned into its response here, so
/// that it carries the request id and is measured too.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let start = Instant::now();
    let request_id = req
        .headers()
        .get(&REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable_request_id(v))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    let method = method_label(req.method());
    let span = tracing::info_span!(
        "http.request",
        request_id = %request_id,
        http.method = method,
        http.route = Empty,
        http.status_code = Empty,
        duration_ms = Empty,
        tenant.id = Empty,
        stripe.event_id = Empty,
        stripe.event_type = Empty,
    );
    {
        let mut ext = req.extensions_mut();
        ext.insert(RequestId(request_id.clone()));
        ext.insert(RootSpan(span.clone()));
    }
    let metrics = req.app_data::<web::Data<dyn MetricsEndpoint>>().cloned();
    // The id passed `acceptable_request_id` or is a UUID: always a valid header value.
    let id_header = HeaderValue::from_str(&request_id).ok();

    let outcome = next.call(req).instrument(span.clone()).await;

    let elapsed = start.elapsed();
    let (status, route) = match &outcome {
        Ok(res) => (
            res.status().as_u16(),
            res.request()
                .match_pattern()
                .unwrap_or_else(|| UNMATCHED_ROUTE.to_owned()),
        ),
        // Only an inner middleware could fail this way (handlers' and extractors' errors
        // are responses already); the request, and with it the route, is gone.
        Err(e) => (
            e.as_response_error().status_code().as_u16(),
            UNMATCHED_ROUTE.to_owned(),
        ),
    };
    let duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    span.record("http.route", route.as_str());
    span.record("http.status_code", status);
    span.record("duration_ms", duration_ms);
    if let Some(metrics) = metrics {
        metrics.http_request(&route, method, status, elapsed);
    }
    tracing::info!(
        parent: &span,
        http.method = method,
        http.route = %route,
        http.status_code = status,
        duration_ms,
        request_id = %request_id,
        "{method} {route} {status} {duration_ms}ms"
    );
    match outcome {
        Ok(res) => {
            let mut res = res.map_into_boxed_body();
            if let Some(value) = id_header {
                res.headers_mut().insert(REQUEST_ID_HEADER, value);
            }
            Ok(res)
        }
        Err(inner) => Err(WithRequestId {
            inner,
            id: id_header,
        }
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_kept_only_when_short_and_plain() {
        assert!(acceptable_request_id("abc-123_X.y"));
        assert!(acceptable_request_id(&"a".repeat(128)));
        assert!(!acceptable_request_id(&"a".repeat(129)));
        assert!(!acceptable_request_id(""));
        assert!(!acceptable_request_id("a b"));
        assert!(!acceptable_request_id("a\nb"));
        assert!(!acceptable_request_id("ä"));
    }
}
