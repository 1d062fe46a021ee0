//! The one error type of the HTTP adapter and its `application/problem+json` rendering.
//!
//! Every refusal this crate answers, whether it comes from the domain ([`BillingError`]),
//! from the extractors (bad JSON, bad query, bad token) or from routing (unknown path,
//! wrong method), becomes an [`ApiError`]: an HTTP status, a stable snake_case `code` and a
//! hand-written `detail`. Internal errors are logged here, once, and answered with an opaque
//! body; their `Display` never reaches a client.
//!
//! Every mapping to an [`ApiError`] lives in this module: the constructors here, the
//! conversions from the domain's, the authenticator's and the extractors' errors in
//! [`mapping`].
//!
//! Problem documents use `"type": "about:blank"` with the status's reason phrase as
//! `title` (RFC 9457 §4.2.1): the machine-readable distinction lives in `code`.

use std::borrow::Cow;
use std::fmt;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};
use billing_domain::webhook::SignatureError;
use serde::{Deserialize, Serialize};

mod mapping;

pub(crate) use mapping::{json_error, path_error, query_error};

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The `WWW-Authenticate` challenge when no bearer token was sent (RFC 6750 §3.1).
const CHALLENGE_NO_TOKEN: &str = "Bearer realm=\"billing\"";
/// The `WWW-Authenticate` challenge when a bearer token was sent but refused.
const CHALLENGE_BAD_TOKEN: &str = "Bearer realm=\"billing\", error=\"invalid_token\"";

/// An HTTP error answer: status, stable code and public message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: Cow<'static, str>,
    challenge: Option<&'static str>,
    allow: Option<&'static str>,
}

/// An error body as the OpenAPI document describes it (and tests read it): RFC 9457
/// problem details plus our stable `code`. Content type `application/problem+json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "type": "about:blank",
    "title": "Not Found",
    "status": 404,
    "detail": "there is no plan plan-gold",
    "code": "plan_not_found"
}))]
pub struct Problem {
    /// Always `about:blank`: the distinction lives in `code`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The status's reason phrase.
    pub title: String,
    /// The HTTP status.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// What went wrong, for a human.
    pub detail: String,
    /// A stable snake_case machine code such as `plan_not_found`.
    pub code: String,
}

/// The problem+json body (RFC 9457) plus our `code`, as written.
#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'static str,
    status: u16,
    detail: &'a str,
    code: &'static str,
}

impl ApiError {
    /// An error with the given status, code and public detail.
    #[must_use]
    pub fn new(
        status: StatusCode,
        code: &'static str,
        detail: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            detail: detail.into(),
            challenge: None,
            allow: None,
        }
    }

    /// The HTTP status.
    #[must_use]
    pub const fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable machine code.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        self.code
    }

    /// The public message.
    #[must_use]
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// 401 `unauthorized` with a `WWW-Authenticate: Bearer` challenge; the challenge
    /// carries `error="invalid_token"` when a bearer token was present (RFC 6750 §3.1).
    #[must_use]
    pub fn unauthorized(detail: impl Into<Cow<'static, str>>, token_present: bool) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail);
        e.challenge = Some(if token_present {
            CHALLENGE_BAD_TOKEN
        } else {
            CHALLENGE_NO_TOKEN
        });
        e
    }

    /// 400 `invalid_parameter`: a query or path value is missing or malformed. The detail
    /// starts with the parameter's name.
    #[must_use]
    pub fn invalid_parameter(name: &str, problem: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!("{name}: {problem}"),
        )
    }

    /// 422 `validation_failed`: a well-typed body breaks a rule. The detail starts with the
    /// field's name.
    #[must_use]
    pub fn invalid_field(name: &str, problem: impl fmt::Display) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            format!("{name}: {problem}"),
        )
    }

    /// 400 `invalid_json`: the body is not JSON at all.
    #[must_use]
    pub fn invalid_json(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_json", detail)
    }

    /// 422 `invalid_body`: well-formed JSON of the wrong shape (unknown field, wrong
    /// type, missing field).
    #[must_use]
    pub fn invalid_body(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_body", detail)
    }

    /// 413 `payload_too_large`.
    #[must_use]
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    }

    /// 415 `unsupported_media_type`: a body that is not `application/json`.
    #[must_use]
    pub fn unsupported_media_type() -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "the request body must be application/json",
        )
    }

    /// 404 `not_found`: no route matches.
    #[must_use]
    pub fn route_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no resource at this path",
        )
    }

    /// 405 `method_not_allowed` with an `Allow` header listing `allow`.
    #[must_use]
    pub fn method_not_allowed(allow: &'static str) -> Self {
        let mut e = Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("this resource supports only {allow}"),
        );
        e.allow = Some(allow);
        e
    }

    /// 500 `internal_error`. `what` goes to the log only.
    #[must_use]
    pub fn internal(what: &dyn std::error::Error) -> Self {
        tracing::error!(error = %Chain(what), "internal error");
        Self::opaque_internal()
    }

    fn opaque_internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "the request failed because of an internal error",
        )
    }

    /// 400 `invalid_signature`: the webhook's `Stripe-Signature` does not prove the body
    /// came from Stripe. The detail is a fixed phrase per reason; the header is never
    /// echoed.
    #[must_use]
    pub fn invalid_signature(reason: &SignatureError) -> Self {
        let detail = match reason {
            SignatureError::MissingHeader => "the Stripe-Signature header is missing",
            SignatureError::MalformedHeader => "the Stripe-Signature header is malformed",
            SignatureError::NoV1Signature => "the Stripe-Signature header has no v1 signature",
            SignatureError::Mismatch => "no signature matches the payload",
            SignatureError::OutsideTolerance => {
                "the signature timestamp is outside the accepted tolerance"
            }
        };
        Self::new(StatusCode::BAD_REQUEST, "invalid_signature", detail)
    }

    /// 400 `invalid_payload`: a webhook body that is not a Stripe event we can read.
    #[must_use]
    pub fn invalid_payload(detail: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_payload", detail)
    }

    /// 408 `request_timeout`: the body did not arrive within `limit`.
    #[must_use]
    pub fn request_timeout(limit: std::time::Duration) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request body was not received within {} s",
                limit.as_secs()
            ),
        )
    }

    /// 503 `service_unavailable`: a temporary failure; the caller should retry.
    #[must_use]
    pub fn service_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "service_unavailable",
            "the service is temporarily unable to handle the request; retry later",
        )
    }

    /// 503 `database_unavailable`.
    #[must_use]
    pub fn database_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the service's database is unavailable; retry later",
        )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl std::error::Error for ApiError {}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let problem = ProblemBody {
            kind: "about:blank",
            title: self.status.canonical_reason().unwrap_or("Error"),
            status: self.status.as_u16(),
            detail: &self.detail,
            code: self.code,
        };
        let mut res = HttpResponseBuilder::new(self.status);
        res.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        if let Some(challenge) = self.challenge {
            res.insert_header((
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            ));
        }
        if let Some(allow) = self.allow {
            res.insert_header((header::ALLOW, HeaderValue::from_static(allow)));
        }
        // Serialising a struct of strings and integers cannot fail; the fallback keeps
        // the answer a valid problem document anyway.
        let body = serde_json::to_string(&problem).unwrap_or_else(|_| {
            format!(
                r#"{{"type":"about:blank","title":"Error","status":{},"code":"{}"}}"#,
                self.status.as_u16(),
                self.code
            )
        });
        res.body(body)
    }
}

/// An inner error whose response carries the request id too.
#[derive(Debug)]
pub(crate) struct WithRequestId {
    pub(crate) inner: actix_web::Error,
    pub(crate) id: Option<HeaderValue>,
}

impl fmt::Display for WithRequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

impl ResponseError for WithRequestId {
    fn status_code(&self) -> StatusCode {
        self.inner.as_response_error().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = self.inner.error_response();
        if let Some(value) = &self.id {
            res.headers_mut()
                .insert(crate::middleware::REQUEST_ID_HEADER, value.clone());
        }
        res
    }
}

/// Displays an error with its whole `source()` chain, for the log.
pub(crate) struct Chain<'a>(pub(crate) &'a dyn std::error::Error);

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}
