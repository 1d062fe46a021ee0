//! What the client is told: Stripe's defaults, the configuration and the retry policy.

use std::time::Duration;

use secrecy::SecretString;
use url::Url;

/// Stripe's production API.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";

/// The API version this adapter's wire types (and the sample events) follow.
pub const DEFAULT_API_VERSION: &str = "2026-07-29.dahlia";

/// How often and how long to try one logical call.
///
/// Defaults follow the official SDKs (docs/stripe.md, Retries the SDKs make: 2 retries, 0.5 s doubling to 5 s with
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

/// Who is calling, sent in Stripe's app-info form (docs/stripe.md, Request headers): appended to the
/// `User-Agent` as `Name/Version (url)` and put under `application` in
/// `X-Stripe-Client-User-Agent`, so Stripe (and its support) can tell this service's
/// requests apart from other integrations on the same account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppInfo {
    /// The application's name (no spaces or `/`; e.g. `BillingService`).
    pub name: String,
    /// Its version.
    pub version: Option<String>,
    /// Where to learn about it.
    pub url: Option<String>,
}

impl Default for AppInfo {
    fn default() -> Self {
        Self {
            name: "BillingService".to_owned(),
            version: Some(env!("CARGO_PKG_VERSION").to_owned()),
            url: None,
        }
    }
}

impl AppInfo {
    /// `Name/Version (url)`, as the SDKs format app info for the `User-Agent`.
    #[must_use]
    pub fn user_agent_part(&self) -> String {
        let mut out = self.name.clone();
        if let Some(version) = &self.version {
            out.push('/');
            out.push_str(version);
        }
        if let Some(url) = &self.url {
            out.push_str(" (");
            out.push_str(url);
            out.push(')');
        }
        out
    }
}

/// Configuration of [`StripeClient`](super::StripeClient).
///
/// `Debug` is safe to log: the API key prints as `[REDACTED]`.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// Secret key (`sk_…`/`rk_…`). `None` means "not configured": every call answers
    /// [`ProviderError::NotConfigured`](billing_domain::ports::ProviderError::NotConfigured).
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
    /// The application named in the `User-Agent` headers.
    pub app_info: AppInfo,
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
            app_info: AppInfo::default(),
        }
    }
}

#[expect(clippy::expect_used, reason = "a constant URL that is known to parse")]
fn default_api_base() -> Url {
    Url::parse(DEFAULT_API_BASE).expect("DEFAULT_API_BASE is a valid URL")
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
}
