//! The transport: one logical call to Stripe's API over `reqwest`, with the headers,
//! idempotency keys, retries, timeouts and telemetry every operation shares.
//!
//! `reqwest` never leaves this file: the operations build an [`ApiRequest`], hand
//! [`StripeClient::call`] a reader for the 2xx body, and see [`ProviderError`] only.

use std::time::{Duration, Instant};

use billing_domain::ports::ProviderError;
use rand::RngExt;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, USER_AGENT};
use serde::de::DeserializeOwned;
use url::Url;
use uuid::Uuid;

use super::{ClientBuildError, StripeClient, StripeConfig};
use crate::error::StripeError;
use crate::form::{encode_component, Form};

/// How a call ended, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallOutcome {
    /// 2xx and readable.
    Success,
    /// Stripe refused the request (400/402/404).
    Refused,
    /// Our credentials were refused (401/403).
    Misconfigured,
    /// Network, timeout, 409, 429 or 5xx after retries.
    Unavailable,
    /// An answer we could not read.
    Unexpected,
    /// No API key configured; nothing was sent.
    NotConfigured,
}

impl CallOutcome {
    /// Stable label (`success`, `refused`, …).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Refused => "refused",
            Self::Misconfigured => "misconfigured",
            Self::Unavailable => "unavailable",
            Self::Unexpected => "unexpected",
            Self::NotConfigured => "not_configured",
        }
    }

    fn of<T>(result: &Result<T, ProviderError>) -> Self {
        match result {
            Ok(_) => Self::Success,
            Err(ProviderError::NotConfigured) => Self::NotConfigured,
            Err(ProviderError::Unavailable(_)) => Self::Unavailable,
            Err(ProviderError::Misconfigured(_)) => Self::Misconfigured,
            Err(ProviderError::Refused { .. }) => Self::Refused,
            Err(ProviderError::Unexpected(_)) => Self::Unexpected,
        }
    }
}

/// One finished logical call (all its attempts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallRecord {
    /// Operation name (`create_checkout_session`, …).
    pub operation: &'static str,
    /// How it ended.
    pub outcome: CallOutcome,
    /// HTTP attempts made (0 when nothing was sent).
    pub attempts: u32,
    /// Wall time of the whole call, backoff included.
    pub duration: Duration,
    /// HTTP status of the last answer, if any.
    pub status: Option<u16>,
    /// Stripe's `Request-Id` of the last answer, if any.
    pub request_id: Option<String>,
}

/// A sink for per-call metrics (a Prometheus adapter, a test recorder, …).
pub trait StripeMetrics: Send + Sync {
    /// Called once per logical call, after it finished.
    fn record(&self, call: &CallRecord);
}

/// This client, as the `User-Agent`'s bindings part names it (`NodeBindings/22.5.0` for
/// Stripe's Node SDK).
const BINDINGS: &str = concat!("BillingStripeRust/", env!("CARGO_PKG_VERSION"));

/// The two identifying headers in Stripe's app-info form (docs/stripe.md, Request headers):
/// `User-Agent: Stripe/v1 BillingStripeRust/<v> <Name>/<Version> (<url>)` and
/// `X-Stripe-Client-User-Agent`, a JSON object with `bindings_version`, `lang`,
/// `publisher`, `httplib` and `application` (`name`, `version`, `url`).
pub(super) fn identity_headers(config: &StripeConfig) -> (String, String) {
    let app = &config.app_info;
    let user_agent = format!("Stripe/v1 {BINDINGS} {}", app.user_agent_part());
    let client = serde_json::json!({
        "bindings_version": env!("CARGO_PKG_VERSION"),
        "lang": "rust",
        "publisher": "billing-service",
        "httplib": "reqwest",
        "application": {
            "name": app.name,
            "version": app.version,
            "url": app.url,
        },
    });
    (user_agent, client.to_string())
}

/// The HTTP client every call goes through: our user agent, JSON answers, no redirects.
pub(super) fn http_client(config: &StripeConfig) -> Result<reqwest::Client, ClientBuildError> {
    HeaderValue::from_str(&config.api_version).map_err(|e| ClientBuildError(Box::new(e)))?;
    let (user_agent, client_user_agent) = identity_headers(config);
    let mut headers = HeaderMap::new();
    headers.insert(
        USER_AGENT,
        HeaderValue::from_str(&user_agent).map_err(|e| ClientBuildError(Box::new(e)))?,
    );
    headers.insert(
        "x-stripe-client-user-agent",
        HeaderValue::from_str(&client_user_agent).map_err(|e| ClientBuildError(Box::new(e)))?,
    );
    headers.insert(
        reqwest::header::ACCEPT,
        HeaderValue::from_static("application/json"),
    );
    reqwest::Client::builder()
        .default_headers(headers)
        // Stripe never redirects; following one could carry the key elsewhere.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(config.retry.per_try_timeout)
        .build()
        .map_err(|e| ClientBuildError(Box::new(e)))
}

impl StripeClient {
    /// Runs one logical call: sends it (with retries), reads the 2xx body with `read`,
    /// maps failures to [`ProviderError`] and records telemetry.
    pub(super) async fn call<R>(
        &self,
        request: ApiRequest,
        read: impl FnOnce(&[u8]) -> Result<R, String> + Send,
    ) -> Result<R, ProviderError> {
        let started = Instant::now();
        let mut stats = CallStats::default();
        let mut detail: Option<String> = None;
        let result = match self.api_key() {
            None => Err(ProviderError::NotConfigured),
            Some(key) => self
                .send(&request, key, &mut stats)
                .await
                .and_then(|answer| {
                    read(&answer.body).map_err(|reason| StripeError::MalformedResponse {
                        status: answer.status,
                        reason,
                    })
                })
                .map_err(|e| {
                    detail = Some(e.to_string());
                    ProviderError::from(e)
                }),
        };
        let record = CallRecord {
            operation: request.operation,
            outcome: CallOutcome::of(&result),
            attempts: stats.attempts,
            duration: started.elapsed(),
            status: stats.status,
            request_id: stats.request_id,
        };
        // The one log line of a call, failures included (the HTTP adapter does not log
        // them again): info when it succeeded or nothing was sent, warn when Stripe
        // refused the request, error when Stripe failed or answered what we cannot read.
        macro_rules! finished {
            ($level:ident) => {
                tracing::$level!(
                    stripe.operation = record.operation,
                    stripe.outcome = record.outcome.as_str(),
                    stripe.attempts = record.attempts,
                    stripe.request_id = record.request_id.as_deref(),
                    http.status = record.status,
                    duration_ms = u64::try_from(record.duration.as_millis()).unwrap_or(u64::MAX),
                    stripe.error = detail.as_deref(),
                    "stripe call finished"
                )
            };
        }
        match record.outcome {
            CallOutcome::Success | CallOutcome::NotConfigured => finished!(info),
            CallOutcome::Refused => finished!(warn),
            CallOutcome::Misconfigured | CallOutcome::Unavailable | CallOutcome::Unexpected => {
                finished!(error);
            }
        }
        if let Some(metrics) = &self.metrics {
            metrics.record(&record);
        }
        result
    }

    /// Sends a request, retrying per docs/stripe.md, Retries the SDKs make plus 429 (docs/contract.md, Calls to Stripe), within the deadline.
    async fn send(
        &self,
        request: &ApiRequest,
        api_key: &str,
        stats: &mut CallStats,
    ) -> Result<Answer, StripeError> {
        let policy = self.config.retry;
        let budget = request
            .budget
            .map_or(policy.deadline, |b| b.min(policy.deadline));
        let deadline = Instant::now().checked_add(budget);
        let url = self.url(request)?;
        let body = request.form.as_ref().map(Form::encode);
        // One key per logical call, identical on every retry, so that a retried POST is
        // replayed by Stripe instead of executed twice (docs/stripe.md, Idempotency).
        let idempotency_key = match request.method {
            Method::Post => Some(
                request
                    .idempotency_key
                    .clone()
                    .unwrap_or_else(|| Uuid::new_v4().to_string()),
            ),
            Method::Get | Method::Delete => None,
        };
        let max_attempts = policy.max_retries.saturating_add(1);
        loop {
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if remaining == Some(Duration::ZERO) {
                return Err(StripeError::Timeout);
            }
            let try_timeout =
                remaining.map_or(policy.per_try_timeout, |r| r.min(policy.per_try_timeout));
            stats.attempts += 1;
            if let Some(budget) = &self.budget {
                budget.acquire().await;
            }
            let builder = self.build(
                request.method,
                url.clone(),
                api_key,
                body.as_ref(),
                idempotency_key.as_deref(),
            );
            let (error, retry) = match tokio::time::timeout(try_timeout, attempt(builder)).await {
                Err(_elapsed) => (StripeError::Timeout, true),
                Ok(Err(e)) => {
                    let retry = !e.is_builder();
                    (StripeError::Connection(Box::new(e.without_url())), retry)
                }
                Ok(Ok(answer)) => {
                    stats.status = Some(answer.status);
                    stats.request_id.clone_from(&answer.request_id);
                    if let Some(budget) = &self.budget {
                        if answer.status == 429 {
                            budget.throttled(answer.retry_after);
                        } else {
                            budget.succeeded();
                        }
                    }
                    if (200..300).contains(&answer.status) {
                        return Ok(answer);
                    }
                    let retry = answer
                        .should_retry
                        .unwrap_or(matches!(answer.status, 409 | 429) || answer.status >= 500);
                    let error = StripeError::from_response(
                        answer.status,
                        &answer.body,
                        answer.request_id,
                        api_key,
                    );
                    (error, retry)
                }
            };
            if !retry || stats.attempts >= max_attempts {
                return Err(error);
            }
            let delay = policy.backoff(stats.attempts, rand::rng().random_range(0.5..1.0));
            let wakes = Instant::now().checked_add(delay);
            // Never sleep past the deadline: give up now with the last error instead.
            if let Some(deadline) = deadline {
                if wakes.is_none_or(|w| w >= deadline) {
                    return Err(error);
                }
            }
            tracing::debug!(
                stripe.operation = request.operation,
                stripe.attempts = stats.attempts,
                retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                stripe.error = %error,
                "retrying stripe call"
            );
            tokio::time::sleep(delay).await;
        }
    }

    fn build(
        &self,
        method: Method,
        url: Url,
        api_key: &str,
        body: Option<&String>,
        idempotency_key: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut builder = match method {
            Method::Get => self.http.get(url),
            Method::Post => self.http.post(url),
            Method::Delete => self.http.delete(url),
        }
        .bearer_auth(api_key)
        .header("Stripe-Version", &self.config.api_version);
        if let Some(key) = idempotency_key {
            builder = builder.header("Idempotency-Key", key);
        }
        if method == Method::Post {
            builder = builder
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body.cloned().unwrap_or_default());
        }
        builder
    }

    fn url(&self, request: &ApiRequest) -> Result<Url, StripeError> {
        let mut s = self
            .config
            .api_base
            .as_str()
            .trim_end_matches('/')
            .to_owned();
        s.push_str(&request.path);
        if let Some(query) = &request.query {
            s.push('?');
            s.push_str(query);
        }
        Url::parse(&s).map_err(|e| StripeError::InvalidInput(format!("invalid request URL: {e}")))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Get,
    Post,
    /// `DELETE` (cancel a subscription now): idempotent by itself, sent without a key.
    Delete,
}

/// One logical API call, before any attempt.
pub(super) struct ApiRequest {
    operation: &'static str,
    method: Method,
    /// Already percent-encoded, starting with `/v1/`.
    path: String,
    /// Already encoded, without `?`.
    pub(super) query: Option<String>,
    form: Option<Form>,
    /// Caller-given key; a fresh UUID is used for POSTs without one.
    idempotency_key: Option<String>,
    /// A shorter deadline than the policy's for this call.
    pub(super) budget: Option<Duration>,
}

impl ApiRequest {
    pub(super) fn get(operation: &'static str, path: String) -> Self {
        Self {
            operation,
            method: Method::Get,
            path,
            query: None,
            form: None,
            idempotency_key: None,
            budget: None,
        }
    }

    pub(super) fn delete(operation: &'static str, path: String) -> Self {
        Self {
            method: Method::Delete,
            ..Self::get(operation, path)
        }
    }

    pub(super) fn post(
        operation: &'static str,
        path: &str,
        form: Form,
        key: Option<String>,
    ) -> Self {
        Self {
            operation,
            method: Method::Post,
            path: path.to_owned(),
            query: None,
            form: Some(form),
            idempotency_key: key,
            budget: None,
        }
    }
}

#[derive(Debug, Default)]
struct CallStats {
    attempts: u32,
    status: Option<u16>,
    request_id: Option<String>,
}

/// One HTTP answer, body read.
struct Answer {
    status: u16,
    body: Vec<u8>,
    request_id: Option<String>,
    should_retry: Option<bool>,
    /// `Retry-After` in seconds, when given.
    retry_after: Option<Duration>,
}

async fn attempt(builder: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
    let response = builder.send().await?;
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .map(str::to_owned)
    };
    let request_id = header("request-id").filter(|id| id.len() <= 255);
    let should_retry = header("stripe-should-retry").and_then(|v| match v.as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    });
    let retry_after = header("retry-after")
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_secs);
    let body = response.bytes().await?.to_vec();
    Ok(Answer {
        status,
        body,
        request_id,
        should_retry,
        retry_after,
    })
}

/// `/v1/<collection>/<id>` with the id as one percent-encoded segment.
pub(super) fn object_path(collection: &str, id: &str) -> Result<String, StripeError> {
    // `.` and `..` are unreserved, so they would survive encoding and be resolved away by
    // URL normalisation; no Stripe object has such an id.
    if id.is_empty() || id == "." || id == ".." {
        return Err(StripeError::InvalidInput(format!("no such object: '{id}'")));
    }
    Ok(format!("/v1/{collection}/{}", encode_component(id)))
}

/// Describes a JSON error by position and category only: never by content, which may hold
/// a client secret.
pub(super) fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| {
        format!(
            "{} error in {} at line {} column {}",
            match e.classify() {
                serde_json::error::Category::Io => "io",
                serde_json::error::Category::Syntax => "syntax",
                serde_json::error::Category::Data => "data",
                serde_json::error::Category::Eof => "eof",
            },
            std::any::type_name::<T>()
                .rsplit("::")
                .next()
                .unwrap_or("body"),
            e.line(),
            e.column()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_a_single_encoded_path_segment() {
        assert_eq!(object_path("events", "evt_1").unwrap(), "/v1/events/evt_1");
        assert_eq!(
            object_path("invoices", "in_1/../x?y#z").unwrap(),
            "/v1/invoices/in_1%2F..%2Fx%3Fy%23z"
        );
        assert!(object_path("invoices", "..").is_err());
        assert!(object_path("invoices", ".").is_err());
    }

    #[test]
    fn json_errors_never_quote_the_body() {
        let err = json::<crate::wire::PaymentIntentResponse>(
            br#"{"id":"pi_1","client_secret":"pi_1_secret_abc","amount":"pi_1_secret_abc","currency":"usd"}"#,
        )
        .unwrap_err();

        assert!(!err.contains("secret"), "{err}");
    }
}
