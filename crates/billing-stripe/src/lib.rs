#![doc = include_str!("../README.md")]
//!
//! This crate depends on the domain crate only; it is the one place that names `reqwest`
//! or Stripe's JSON. `billing-server` wires it in.

pub mod budget;
mod client;
mod error;
mod form;
mod metrics;
mod webhook;
mod wire;

pub use budget::RateBudget;
pub use client::{
    AppInfo, CallOutcome, CallRecord, ClientBuildError, RetryPolicy, StripeClient, StripeConfig,
    StripeMetrics, CHECKOUT_SESSION_ID_TEMPLATE, DEFAULT_API_BASE, DEFAULT_API_VERSION,
};
pub use error::{ApiErrorDetail, StripeError};
pub use webhook::{sign, StripeWebhookVerifier, DEFAULT_TOLERANCE};

/// The mode of the account a secret or restricted API key belongs to: `Some(true)` for
/// live mode (`sk_live_…`, `rk_live_…`), `Some(false)` for test mode (`sk_test_…`,
/// `rk_test_…`), `None` for anything else (a stand-in key in development).
#[must_use]
pub fn key_livemode(key: &str) -> Option<bool> {
    ["sk_", "rk_"].iter().find_map(|kind| {
        let mode = key.strip_prefix(kind)?;
        if mode.starts_with("live_") {
            Some(true)
        } else if mode.starts_with("test_") {
            Some(false)
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::key_livemode;

    #[test]
    fn a_key_tells_its_mode() {
        assert_eq!(key_livemode("sk_live_abc"), Some(true));
        assert_eq!(key_livemode("rk_live_abc"), Some(true));
        assert_eq!(key_livemode("sk_test_abc"), Some(false));
        assert_eq!(key_livemode("rk_test_abc"), Some(false));
        assert_eq!(key_livemode("pk_live_abc"), None);
        assert_eq!(key_livemode("sk_bench"), None);
        assert_eq!(key_livemode(""), None);
    }
}
