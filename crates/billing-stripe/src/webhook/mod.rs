//! Webhook deliveries: [`StripeWebhookVerifier`] implements the domain's
//! [`WebhookVerifier`] with `Stripe-Signature` verification ([`signature`]) and the mapping
//! of a verified Stripe event to the domain's [`ProviderEvent`] ([`event`]).
//!
//! Verification runs on the raw body exactly as received; nothing here logs the body, the
//! header or a secret. No input, however malformed, makes these functions panic.

use std::time::Duration;

use billing_domain::ports::WebhookVerifier;
use billing_domain::webhook::{InvalidPayload, ProviderEvent, SignatureError};
use chrono::{DateTime, Utc};
use secrecy::SecretString;

mod event;
mod signature;

pub(crate) use event::refund;
pub(crate) use event::subscription;
pub(crate) use event::{checkout, invoice};
pub use signature::sign;

/// Stripe's default signature tolerance (both SDKs).
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Verifies `Stripe-Signature` headers against one or more endpoint secrets and parses
/// verified bodies.
///
/// `Debug` is safe to log: secrets print as `[REDACTED]`.
#[derive(Debug, Clone)]
pub struct StripeWebhookVerifier {
    /// Endpoint secrets (`whsec_…`); several while a secret is being rotated.
    pub secrets: Vec<SecretString>,
    /// Accepted distance between the signature's `t` and now, in either direction.
    pub tolerance: Duration,
}

impl StripeWebhookVerifier {
    /// A verifier for these secrets.
    #[must_use]
    pub fn new(secrets: Vec<SecretString>, tolerance: Duration) -> Self {
        Self { secrets, tolerance }
    }

    /// A verifier from a comma-separated list (the `STRIPE_WEBHOOK_SECRET` format);
    /// blanks around and between entries are ignored.
    #[must_use]
    pub fn from_secret_list(list: &str, tolerance: Duration) -> Self {
        let secrets = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| SecretString::from(s.to_owned()))
            .collect();
        Self::new(secrets, tolerance)
    }
}

impl WebhookVerifier for StripeWebhookVerifier {
    fn verify(
        &self,
        payload: &[u8],
        signature: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), SignatureError> {
        self.check(payload, signature, now)
    }

    fn parse(&self, payload: &[u8]) -> Result<ProviderEvent, InvalidPayload> {
        event::parse_event(payload)
    }
}
