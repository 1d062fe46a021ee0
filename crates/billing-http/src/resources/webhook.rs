//! `POST /api/v1/billing/stripe/webhook`: Stripe's deliveries. No bearer token: the
//! `Stripe-Signature` header is the credential, checked by the service over the raw body.

use actix_web::{HttpRequest, HttpResponse};
use billing_domain::metrics::WebhookDelivery;
use billing_domain::service::{WebhookError, WebhookReceipt};
use serde::Serialize;

use super::common::Api;
use super::events::EventOutcomeName;
use crate::error::ApiError;
use crate::extract::WebhookBody;
use crate::metrics;
use crate::middleware::root_span;
use crate::responses::{BadRequest, Internal, PayloadTooLarge, Unavailable};

/// `POST /api/v1/billing/stripe/webhook` answer to an accepted delivery.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAck {
    /// Always `true`.
    pub received: bool,
    /// Stripe's event id.
    pub event_id: String,
    /// What the delivery came to.
    #[schema(value_type = EventOutcomeName)]
    pub outcome: &'static str,
}

impl From<&WebhookReceipt> for WebhookAck {
    fn from(r: &WebhookReceipt) -> Self {
        Self {
            received: true,
            event_id: r.event_id.to_string(),
            outcome: r.outcome.as_str(),
        }
    }
}

/// The header Stripe signs webhook deliveries with.
pub const STRIPE_SIGNATURE: &str = "Stripe-Signature";

/// Records an event's id and type in the request's root span.
pub(super) fn record_event(req: &HttpRequest, receipt: &WebhookReceipt) {
    let span = root_span(req);
    span.record("stripe.event_id", receipt.event_id.as_str());
    span.record("stripe.event_type", receipt.kind.as_str());
}

/// Records a delivered event in the root span and the metrics.
fn observe_receipt(req: &HttpRequest, receipt: &WebhookReceipt) {
    record_event(req, receipt);
    // An event "from the future" (clock skew) counts as no lag.
    let lag = (chrono::Utc::now() - receipt.created)
        .to_std()
        .unwrap_or_default();
    metrics::report(req, |m| {
        m.webhook_event(&WebhookDelivery {
            kind: &receipt.kind,
            outcome: receipt.outcome,
            lag,
            api_version: receipt.api_version.as_deref(),
        });
    });
}

/// Receives a Stripe webhook delivery. No bearer token: the `Stripe-Signature` header is
/// the credential, checked by the service over the raw body exactly as received.
///
/// # Responses
/// 200 `{received, eventId, outcome}` for every recorded outcome (processed, duplicate,
/// stale, ignored, unmatched, failed) · 400 `invalid_signature`, `invalid_payload` ·
/// 413 `payload_too_large` · 503 `service_unavailable` (Stripe retries) · 500
#[utoipa::path(
    post,
    path = "/api/v1/billing/stripe/webhook",
    tag = "stripe",
    params(("Stripe-Signature" = Option<String>, Header, description = "`t=<unix>,v1=<hex>[,v1=...]`: the credential")),
    request_body(content = serde_json::Value, content_type = "application/json", description = "A Stripe event, verified byte for byte as received (at most 256 KiB)"),
    responses(
        (status = 200, description = "Accepted; `outcome` says what it came to", body = WebhookAck),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable)
    )
)]
#[tracing::instrument(skip_all)]
pub async fn stripe_webhook(
    req: HttpRequest,
    api: Api,
    body: WebhookBody,
) -> Result<HttpResponse, ApiError> {
    // A header that is not visible ASCII is handed over as text anyway: the service's
    // parser refuses it as malformed, the one place that judges signatures.
    let signature = req
        .headers()
        .get(STRIPE_SIGNATURE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    match api.receive_webhook(&body.0, signature).await {
        Ok(receipt) => {
            observe_receipt(&req, &receipt);
            tracing::info!(
                stripe.event_id = receipt.event_id.as_str(),
                stripe.event_type = receipt.kind.as_str(),
                outcome = receipt.outcome.as_str(),
                "webhook event received"
            );
            Ok(HttpResponse::Ok().json(WebhookAck::from(&receipt)))
        }
        Err(e) => {
            if let Some(reason) = rejection_reason(&e) {
                reject(&req, reason);
            }
            Err(ApiError::from(e))
        }
    }
}

/// The `billing_webhook_rejections_total` reason of a refused delivery; `None` for a
/// failure on our side (Stripe retries those).
fn rejection_reason(e: &WebhookError) -> Option<&'static str> {
    match e {
        WebhookError::Signature(e) => Some(e.reason()),
        WebhookError::InvalidPayload(_) => Some("invalid_payload"),
        WebhookError::Unavailable(_) | WebhookError::Unexpected(_) => None,
    }
}

fn reject(req: &HttpRequest, reason: &str) {
    metrics::report(req, |m| m.webhook_rejected(reason));
}
