//! Delivering notifications to whoever listens.

use async_trait::async_trait;
use thiserror::Error;

use super::OutboxMessage;

/// How a delivery went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// The receiver accepted it.
    Sent,
    /// No receiver is configured: it was written to the log.
    Logged,
}

/// A delivery that did not go through.
#[derive(Debug, Error)]
pub enum NotifyError {
    /// Network error, timeout, 429 or 5xx: try again later.
    #[error("notification delivery failed, will retry: {0}")]
    Retryable(String),
    /// The receiver refused the message (4xx): retrying will not help.
    #[error("notification refused: {0}")]
    Rejected(String),
}

/// Delivers notifications to whoever listens (SPEC: `NOTIFICATIONS_URL`).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Delivers one message. Deliveries are at least once: the same id may arrive twice.
    ///
    /// # Errors
    /// [`NotifyError::Retryable`] for failures worth retrying, [`NotifyError::Rejected`]
    /// for a refusal.
    async fn deliver(&self, message: &OutboxMessage) -> Result<Delivered, NotifyError>;
}
