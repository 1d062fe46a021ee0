#![doc = include_str!("../README.md")]

pub mod document;
pub mod events;

pub use document::render as render_document;
pub use events::{render as render_billing_event, HttpEventSender};

use std::time::Duration;

use async_trait::async_trait;
use billing_domain::ports::{Delivered, Notifier, NotifyError, OutboxMessage};
use reqwest::StatusCode;
use url::Url;

/// Delivers notifications over HTTP.
#[derive(Debug, Clone)]
pub struct HttpNotifier {
    client: reqwest::Client,
    url: Url,
}

impl HttpNotifier {
    /// A notifier POSTing to `url`, each try bounded by `timeout`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built (TLS backend failure).
    pub fn new(url: Url, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("billing-service/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { client, url })
    }
}

#[async_trait]
impl Notifier for HttpNotifier {
    async fn deliver(&self, message: &OutboxMessage) -> Result<Delivered, NotifyError> {
        let id = message.id.to_string();
        let response = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Notification-Id", &id)
            .header("X-Notification-Type", &message.kind)
            .header("Idempotency-Key", &id)
            .body(message.payload.clone())
            .send()
            .await
            .map_err(|e| NotifyError::Retryable(format!("request failed: {}", e.without_url())))?;
        let status = response.status();
        if status.is_success() {
            Ok(Delivered::Sent)
        } else if status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
        {
            Err(NotifyError::Retryable(format!("HTTP {}", status.as_u16())))
        } else {
            Err(NotifyError::Rejected(format!("HTTP {}", status.as_u16())))
        }
    }
}

/// Writes notifications to the log when no receiver is configured.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogNotifier;

#[async_trait]
impl Notifier for LogNotifier {
    async fn deliver(&self, message: &OutboxMessage) -> Result<Delivered, NotifyError> {
        tracing::info!(
            notification.id = %message.id,
            notification.kind = %message.kind,
            "notification (NOTIFICATIONS_URL is not set, so it is only logged)"
        );
        Ok(Delivered::Logged)
    }
}
