//! The Stripe API client: [`StripeClient`] implements the domain's [`PaymentProvider`] over
//! `reqwest`, with one private `send()` that owns headers, idempotency keys, retries,
//! timeouts and telemetry.
//!
//! `reqwest` never leaves this module: callers see domain types and [`ProviderError`] only.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use billing_domain::ids::{
    CheckoutSessionRef, CustomerRef, EventId, InvoiceRef, PaymentIntentRef, SubscriptionRef,
};
use billing_domain::money::{Currency, Money};
use billing_domain::ports::{
    BoxError, CheckoutRequest, CheckoutSession, ClientSecret, IntentState, PaymentIntentInfo,
    PaymentIntentRequest, PaymentProvider, ProviderError, SessionEnd,
};
use billing_domain::webhook::SubscriptionSnapshot;
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, USER_AGENT};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use thiserror::Error;
use url::Url;
use uuid::Uuid;

use crate::error::StripeError;
use crate::form::{encode_component, Form, FormValue};
use crate::wire;

/// Stripe's production API.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";

/// The API version this adapter's wire types (and the sample events) follow.
pub const DEFAULT_API_VERSION: &str = "2026-07-29.dahlia";

/// The template Stripe replaces with the session id in a Checkout `success_url`.
pub const CHECKOUT_SESSION_ID_TEMPLATE: &str = "{CHECKOUT_SESSION_ID}";

/// How often and how long to try one logical call.
///
/// Defaults follow the official SDKs (FACTS §6.3: 2 retries, 0.5 s doubling to 5 s with
/// jitter), with a shorter per-try timeout than their 80 s because a browser is waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (total attempts = 1 + this).
    pub max_retries: u32,
    /// Backoff before the first retry; also the floor of every backoff.
    pub initial_backoff: Duration,
    /// Cap of the exponential backoff (before jitter).
    pub max_backoff: Duration,
    /// Timeout of one attempt, from sending to the last byte of the body.
    pub per_try_timeout: Duration,
    /// The whole call, retries and backoff included, never takes longer than this.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(5),
            per_try_timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The pause before retry `retry` (1-based) for a jitter factor in `[0.5, 1.0)`:
    /// `max(initial, min(initial * 2^(retry-1), max) * jitter)`, as the SDKs compute it.
    #[must_use]
    pub fn backoff(&self, retry: u32, jitter: f64) -> Duration {
        let factor = 2_u32
            .checked_pow(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        let base = self
            .initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff);
        let jittered = Duration::try_from_secs_f64(base.as_secs_f64() * jitter.clamp(0.0, 1.0))
            .unwrap_or(base);
        jittered.max(self.initial_backoff)
    }
}

/// Configuration of [`StripeClient`].
///
/// `Debug` is safe to log: the API key prints as `[REDACTED]`.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// Secret key (`sk_…`/`rk_…`). `None` means "not configured": every call answers
    /// [`ProviderError::NotConfigured`].
    pub api_key: Option<SecretString>,
    /// API base URL (tests point it at a local server).
    pub api_base: Url,
    /// Pinned `Stripe-Version`.
    pub api_version: String,
    /// Checkout `success_url`; `session_id={CHECKOUT_SESSION_ID}` is appended when the
    /// template is missing.
    pub checkout_success_url: String,
    /// Checkout `cancel_url`.
    pub checkout_cancel_url: String,
    /// Retries and timeouts.
    pub retry: RetryPolicy,
}

impl StripeConfig {
    /// A configuration with Stripe's base URL, the pinned API version and the default
    /// retry policy.
    #[must_use]
    pub fn new(
        api_key: Option<SecretString>,
        checkout_success_url: impl Into<String>,
        checkout_cancel_url: impl Into<String>,
    ) -> Self {
        Self {
            api_key,
            api_base: default_api_base(),
            api_version: DEFAULT_API_VERSION.to_owned(),
            checkout_success_url: checkout_success_url.into(),
            checkout_cancel_url: checkout_cancel_url.into(),
            retry: RetryPolicy::default(),
        }
    }
}

#[expect(clippy::expect_used, reason = "a constant URL that is known to parse")]
fn default_api_base() -> Url {
    Url::parse(DEFAULT_API_BASE).expect("DEFAULT_API_BASE is a valid URL")
}

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

/// The client could not be built from its configuration.
#[derive(Debug, Error)]
#[error("cannot build the Stripe client: {0}")]
pub struct ClientBuildError(#[source] BoxError);

/// Stripe's API over HTTP, implementing [`PaymentProvider`].
#[derive(Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    config: StripeConfig,
    success_url: String,
    metrics: Option<Arc<dyn StripeMetrics>>,
}

impl fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeClient")
            .field("config", &self.config)
            .field("metrics", &self.metrics.is_some())
            .finish_non_exhaustive()
    }
}

impl StripeClient {
    /// Builds the client. A missing or blank API key is allowed (every call then answers
    /// [`ProviderError::NotConfigured`]).
    ///
    /// # Errors
    /// [`ClientBuildError`] when the API key or version cannot be sent as an HTTP header,
    /// or the HTTP stack cannot be initialised.
    pub fn new(config: StripeConfig) -> Result<Self, ClientBuildError> {
        if let Some(key) = &config.api_key {
            let key = key.expose_secret();
            // A blank key means "not configured", checked per call.
            if !key.trim().is_empty() && !key.chars().all(|c| c.is_ascii_graphic()) {
                // Never echo the key itself.
                return Err(ClientBuildError(
                    "the API key holds characters that cannot be sent in a header".into(),
                ));
            }
        }
        HeaderValue::from_str(&config.api_version).map_err(|e| ClientBuildError(Box::new(e)))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("billing-service/", env!("CARGO_PKG_VERSION"))),
        );
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            // Stripe never redirects; following one could carry the key elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(config.retry.per_try_timeout)
            .build()
            .map_err(|e| ClientBuildError(Box::new(e)))?;
        let success_url = with_session_template(&config.checkout_success_url);
        Ok(Self {
            http,
            config,
            success_url,
            metrics: None,
        })
    }

    /// Adds a metrics sink.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<dyn StripeMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The configuration in use.
    #[must_use]
    pub fn config(&self) -> &StripeConfig {
        &self.config
    }

    /// Whether an API key is configured.
    #[must_use]
    pub fn is_configured(&self) -> bool {
        self.api_key().is_some()
    }

    /// The `success_url` sent to Checkout (the configured one, with the session template).
    #[must_use]
    pub fn checkout_success_url(&self) -> &str {
        &self.success_url
    }

    fn api_key(&self) -> Option<&str> {
        self.config
            .api_key
            .as_ref()
            .map(ExposeSecret::expose_secret)
            .filter(|k| !k.trim().is_empty())
    }

    /// Runs one logical call: sends it (with retries), reads the 2xx body with `read`,
    /// maps failures to [`ProviderError`] and records telemetry.
    async fn call<R>(
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

    /// Sends a request, retrying per FACTS §6.3 plus 429 (SPEC §5), within the deadline.
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
        // replayed by Stripe instead of executed twice (FACTS §6.4).
        let idempotency_key = match request.method {
            Method::Post => Some(
                request
                    .idempotency_key
                    .clone()
                    .unwrap_or_else(|| Uuid::new_v4().to_string()),
            ),
            Method::Get => None,
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
            let delay = policy.backoff(stats.attempts, rand::thread_rng().gen_range(0.5..1.0));
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
}

/// One logical API call, before any attempt.
struct ApiRequest {
    operation: &'static str,
    method: Method,
    /// Already percent-encoded, starting with `/v1/`.
    path: String,
    /// Already encoded, without `?`.
    query: Option<String>,
    form: Option<Form>,
    /// Caller-given key; a fresh UUID is used for POSTs without one.
    idempotency_key: Option<String>,
    /// A shorter deadline than the policy's for this call.
    budget: Option<Duration>,
}

impl ApiRequest {
    fn get(operation: &'static str, path: String) -> Self {
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

    fn post(operation: &'static str, path: &str, form: Form, key: Option<String>) -> Self {
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
    let body = response.bytes().await?.to_vec();
    Ok(Answer {
        status,
        body,
        request_id,
        should_retry,
    })
}

/// `/v1/<collection>/<id>` with the id as one percent-encoded segment.
fn object_path(collection: &str, id: &str) -> Result<String, StripeError> {
    // `.` and `..` are unreserved, so they would survive encoding and be resolved away by
    // URL normalisation; no Stripe object has such an id.
    if id.is_empty() || id == "." || id == ".." {
        return Err(StripeError::InvalidInput(format!("no such object: '{id}'")));
    }
    Ok(format!("/v1/{collection}/{}", encode_component(id)))
}

/// Adds `session_id={CHECKOUT_SESSION_ID}` to a success URL that lacks the template.
fn with_session_template(url: &str) -> String {
    if url.contains(CHECKOUT_SESSION_ID_TEMPLATE) {
        return url.to_owned();
    }
    let (base, fragment) = match url.split_once('#') {
        Some((b, f)) => (b, Some(f)),
        None => (url, None),
    };
    let sep = if !base.contains('?') {
        "?"
    } else if base.ends_with('?') || base.ends_with('&') {
        ""
    } else {
        "&"
    };
    let mut out = format!("{base}{sep}session_id={CHECKOUT_SESSION_ID_TEMPLATE}");
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// Describes a JSON error by position and category only: never by content, which may hold
/// a client secret.
fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
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

fn intent_state(status: &str) -> IntentState {
    match status {
        "requires_payment_method" | "requires_confirmation" | "requires_action" => {
            IntentState::AwaitingPayment
        }
        "succeeded" => IntentState::Succeeded,
        "canceled" => IntentState::Canceled,
        // `processing`, `requires_capture` and any status added later: never hand out a
        // second PaymentIntent because of a status we do not know.
        _ => IntentState::Processing,
    }
}

fn intent_info(body: &[u8]) -> Result<PaymentIntentInfo, String> {
    let pi: wire::PaymentIntentResponse = json(body)?;
    let id = PaymentIntentRef::parse(pi.id).map_err(|e| e.to_string())?;
    let client_secret = pi
        .client_secret
        .filter(|s| !s.is_empty())
        .ok_or("payment intent without client_secret")?;
    let currency = Currency::parse(&pi.currency).map_err(|e| e.to_string())?;
    let amount = Money::new(pi.amount, currency).map_err(|e| e.to_string())?;
    Ok(PaymentIntentInfo {
        id,
        client_secret: ClientSecret::new(client_secret),
        state: intent_state(&pi.status),
        amount,
    })
}

/// How a Checkout Session that nobody can complete any more ended, from its `status`;
/// `None` while it is still open (or for a status we do not know).
fn session_end(status: Option<&str>) -> Option<SessionEnd> {
    match status {
        Some("expired") => Some(SessionEnd::Expired),
        Some("complete") => Some(SessionEnd::Completed),
        _ => None,
    }
}

/// Whether Stripe answered that the object named does not exist (404 or
/// `resource_missing`).
fn is_not_found(error: &ProviderError) -> bool {
    matches!(
        error,
        ProviderError::Refused {
            not_found: true,
            ..
        }
    )
}

impl StripeClient {
    /// Reads how a Checkout Session ended after Stripe refused to expire it (it was not
    /// open): `complete` or `expired`; a session Stripe no longer knows counts as expired.
    async fn checkout_session_end(&self, path: String) -> Result<SessionEnd, ProviderError> {
        let read = self
            .call(ApiRequest::get("retrieve_checkout_session", path), |body| {
                json::<wire::CheckoutSessionStatus>(body)
            })
            .await;
        match read {
            Ok(session) => session_end(session.status.as_deref()).ok_or_else(|| {
                ProviderError::Unexpected(
                    "Stripe refused to expire a checkout session that is not complete or expired"
                        .into(),
                )
            }),
            Err(e) if is_not_found(&e) => Ok(SessionEnd::Expired),
            // Refusing a read we made on our own is no fault of the caller's request.
            Err(ProviderError::Refused { .. }) => Err(ProviderError::Unexpected(
                "Stripe refused to read back a checkout session it would not expire".into(),
            )),
            Err(e) => Err(e),
        }
    }
}

#[async_trait]
impl PaymentProvider for StripeClient {
    async fn create_checkout_session(
        &self,
        request: &CheckoutRequest,
    ) -> Result<CheckoutSession, ProviderError> {
        let tenant = request.tenant.to_string();
        let plan = request.plan.to_string();
        let ids = || {
            FormValue::map([
                ("tenantId", FormValue::from(tenant.as_str())),
                ("planId", FormValue::from(plan.as_str())),
            ])
        };
        let mut subscription_data = vec![("metadata".to_owned(), ids())];
        if let Some(days) = request.trial_days {
            subscription_data.push((
                "trial_period_days".to_owned(),
                FormValue::Int(i64::from(days.get())),
            ));
        }
        let mut form = Form::new();
        form.push("mode", "subscription");
        form.push(
            "line_items",
            FormValue::List(vec![FormValue::map([
                ("price", FormValue::from(request.price.as_str())),
                ("quantity", FormValue::Int(1)),
            ])]),
        );
        form.push("client_reference_id", tenant.as_str());
        form.push_opt(
            "customer",
            request.customer.as_ref().map(CustomerRef::as_str),
        );
        form.push("metadata", ids());
        form.push("subscription_data", FormValue::Map(subscription_data));
        form.push("success_url", self.success_url.as_str());
        form.push("cancel_url", self.config.checkout_cancel_url.as_str());
        let req = ApiRequest::post(
            "create_checkout_session",
            "/v1/checkout/sessions",
            form,
            Some(request.idempotency_key.clone()),
        );
        self.call(req, |body| {
            let session: wire::CheckoutSessionResponse = json(body)?;
            let url = session
                .url
                .filter(|u| !u.is_empty())
                .ok_or("checkout session without url")?;
            Ok(CheckoutSession {
                id: CheckoutSessionRef::parse(session.id).map_err(|e| e.to_string())?,
                url,
            })
        })
        .await
    }

    async fn expire_checkout_session(
        &self,
        session: &CheckoutSessionRef,
    ) -> Result<SessionEnd, ProviderError> {
        let path =
            object_path("checkout/sessions", session.as_str()).map_err(ProviderError::from)?;
        // No key of our own: `send` gives the call one, kept across its retries only.
        // Stripe replays a stored answer for a key for a day, a 500 included, so a key per
        // session would replay one failure to every later checkout of the tenant. Expiring
        // twice is harmless anyway (the second is refused and the session read back).
        let req = ApiRequest::post(
            "expire_checkout_session",
            &format!("{path}/expire"),
            Form::new(),
            None,
        );
        let expired = self
            .call(req, |body| {
                let session: wire::CheckoutSessionStatus = json(body)?;
                session_end(session.status.as_deref()).ok_or_else(|| {
                    "expired checkout session neither expired nor complete".to_owned()
                })
            })
            .await;
        match expired {
            Ok(end) => Ok(end),
            Err(e) if is_not_found(&e) => Ok(SessionEnd::Expired),
            // Only open sessions can be expired (400): ask Stripe how this one ended.
            Err(ProviderError::Refused { .. }) => self.checkout_session_end(path).await,
            Err(e) => Err(e),
        }
    }

    async fn create_portal_session(
        &self,
        customer: &CustomerRef,
        return_url: &str,
    ) -> Result<String, ProviderError> {
        let mut form = Form::new();
        form.push("customer", customer.as_str());
        form.push("return_url", return_url);
        let req = ApiRequest::post(
            "create_portal_session",
            "/v1/billing_portal/sessions",
            form,
            None,
        );
        self.call(req, |body| {
            let session: wire::PortalSessionResponse = json(body)?;
            session
                .url
                .filter(|u| !u.is_empty())
                .ok_or_else(|| "portal session without url".to_owned())
        })
        .await
    }

    async fn create_payment_intent(
        &self,
        request: &PaymentIntentRequest,
    ) -> Result<PaymentIntentInfo, ProviderError> {
        let mut form = Form::new();
        form.push("amount", request.amount.minor());
        form.push("currency", request.amount.currency().as_str());
        form.push_opt(
            "customer",
            request.customer.as_ref().map(CustomerRef::as_str),
        );
        form.push(
            "metadata",
            FormValue::map([
                ("invoiceId", request.invoice.to_string()),
                ("tenantId", request.tenant.to_string()),
            ]),
        );
        form.push(
            "automatic_payment_methods",
            FormValue::map([("enabled", true)]),
        );
        let req = ApiRequest::post(
            "create_payment_intent",
            "/v1/payment_intents",
            form,
            Some(request.idempotency_key.clone()),
        );
        self.call(req, intent_info).await
    }

    async fn payment_intent(
        &self,
        id: &PaymentIntentRef,
    ) -> Result<PaymentIntentInfo, ProviderError> {
        let path = object_path("payment_intents", id.as_str()).map_err(ProviderError::from)?;
        self.call(
            ApiRequest::get("retrieve_payment_intent", path),
            intent_info,
        )
        .await
    }

    async fn invoice_payment_intent(
        &self,
        invoice: &InvoiceRef,
        budget: Option<Duration>,
    ) -> Result<Option<PaymentIntentRef>, ProviderError> {
        let path = object_path("invoices", invoice.as_str()).map_err(ProviderError::from)?;
        let mut req = ApiRequest::get("retrieve_invoice_payments", path);
        req.budget = budget;
        let mut query = Form::new();
        query.push("expand[]", "payments");
        req.query = Some(query.encode());
        self.call(req, |body| {
            let inv: wire::InvoicePaymentsResponse = json(body)?;
            inv.first_payment_intent()
                .map(|id| PaymentIntentRef::parse(id).map_err(|e| e.to_string()))
                .transpose()
        })
        .await
    }

    async fn subscription(
        &self,
        id: &SubscriptionRef,
    ) -> Result<SubscriptionSnapshot, ProviderError> {
        let path = object_path("subscriptions", id.as_str()).map_err(ProviderError::from)?;
        self.call(ApiRequest::get("retrieve_subscription", path), |body| {
            let object: wire::SubscriptionObject = json(body)?;
            crate::webhook::subscription(object).map_err(|e| e.0)
        })
        .await
    }

    async fn fetch_event(&self, id: &EventId) -> Result<Vec<u8>, ProviderError> {
        let path = object_path("events", id.as_str()).map_err(ProviderError::from)?;
        self.call(ApiRequest::get("retrieve_event", path), |body| {
            json::<serde::de::IgnoredAny>(body)?;
            Ok(body.to_vec())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_initial_delay_up_to_the_cap() {
        let p = RetryPolicy::default();

        assert_eq!(p.backoff(1, 0.999_999), Duration::from_millis(500));
        assert_eq!(p.backoff(2, 0.5), Duration::from_millis(500));
        assert_eq!(p.backoff(3, 0.5), Duration::from_millis(1000));
        assert_eq!(p.backoff(4, 0.75), Duration::from_millis(3000));
        assert_eq!(p.backoff(10, 0.5), Duration::from_millis(2500));
        assert!(p.backoff(10, 0.999) < Duration::from_secs(5));
        assert_eq!(p.backoff(u32::MAX, 0.5), Duration::from_millis(2500));
    }

    #[test]
    fn backoff_is_never_below_the_initial_delay() {
        let p = RetryPolicy::default();

        for retry in 1..40 {
            assert!(p.backoff(retry, 0.5) >= p.initial_backoff);
        }
    }

    #[test]
    fn a_success_url_without_the_template_gets_it_as_a_query_parameter() {
        assert_eq!(
            with_session_template("https://a.example/ok"),
            "https://a.example/ok?session_id={CHECKOUT_SESSION_ID}"
        );
        assert_eq!(
            with_session_template("https://a.example/ok?x=1#top"),
            "https://a.example/ok?x=1&session_id={CHECKOUT_SESSION_ID}#top"
        );
        assert_eq!(
            with_session_template("https://a.example/ok?s={CHECKOUT_SESSION_ID}"),
            "https://a.example/ok?s={CHECKOUT_SESSION_ID}"
        );
    }

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
    fn unknown_intent_statuses_count_as_processing() {
        assert_eq!(
            intent_state("requires_action"),
            IntentState::AwaitingPayment
        );
        assert_eq!(intent_state("requires_capture"), IntentState::Processing);
        assert_eq!(intent_state("something_new"), IntentState::Processing);
        assert_eq!(intent_state("canceled"), IntentState::Canceled);
        assert_eq!(intent_state("succeeded"), IntentState::Succeeded);
    }

    #[test]
    fn json_errors_never_quote_the_body() {
        let err = json::<wire::PaymentIntentResponse>(
            br#"{"id":"pi_1","client_secret":"pi_1_secret_abc","amount":"pi_1_secret_abc","currency":"usd"}"#,
        )
        .unwrap_err();

        assert!(!err.contains("secret"), "{err}");
    }
}
