//! Billing events out (issue 16): `BILLING_EVENTS_URL`, `BILLING_EVENTS_SECRET`,
//! `BILLING_EVENTS_MAX_ATTEMPTS`.

use secrecy::SecretString;
use url::Url;

use super::{absolute_url, invalid, ConfigError, Env};

/// Where billing events go.
#[derive(Debug, Clone, Default)]
pub struct EventsOutSettings {
    /// `BILLING_EVENTS_URL`, split on commas: each subscriber gets every event.
    pub urls: Vec<Url>,
    /// `BILLING_EVENTS_SECRET`, split on commas, newest first: one `v1=` each. Required
    /// when a URL is set (events are never sent unsigned).
    pub secrets: Vec<SecretString>,
    /// `BILLING_EVENTS_MAX_ATTEMPTS` (default 25, about a day of backoff): attempts
    /// before a delivery is dead and holds its chain.
    pub max_attempts: u32,
}

/// The default of `BILLING_EVENTS_MAX_ATTEMPTS`.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 25;

/// Reads the three settings.
pub(super) fn read(env: &dyn Env) -> Result<EventsOutSettings, ConfigError> {
    let mut urls = Vec::new();
    if let Some(raw) = env.var("BILLING_EVENTS_URL") {
        for part in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let url = absolute_url("BILLING_EVENTS_URL", part)?;
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
    }
    let secrets: Vec<SecretString> = env
        .var("BILLING_EVENTS_SECRET")
        .map(|list| {
            list.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| SecretString::from(s.to_owned()))
                .collect()
        })
        .unwrap_or_default();
    if !urls.is_empty() && secrets.is_empty() {
        return Err(ConfigError::Missing("BILLING_EVENTS_SECRET"));
    }
    let max_attempts = match env.var("BILLING_EVENTS_MAX_ATTEMPTS") {
        None => DEFAULT_MAX_ATTEMPTS,
        Some(raw) => match raw.trim().parse::<u32>() {
            Ok(n) if (1..=1000).contains(&n) => n,
            _ => {
                return Err(invalid(
                    "BILLING_EVENTS_MAX_ATTEMPTS",
                    "must be a whole number from 1 to 1000",
                ))
            }
        },
    };
    Ok(EventsOutSettings {
        urls,
        secrets,
        max_attempts,
    })
}
