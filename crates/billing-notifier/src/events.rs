//! Billing events out (issue 16): the body POSTed to each `BILLING_EVENTS_URL`, and its
//! signature.
//!
//! ```json
//! {"id":"…","type":"invoice.paid","createdAt":"2026-01-01T00:00:00Z",
//!  "tenantId":"…","sequence":7,"data":{"previousStatus":"open","invoice":{…}}}
//! ```
//!
//! `data` names the object changed (`tenant`, `subscription`, `invoice`, `payment`,
//! `dispute`) with its state after the change, and `previousStatus` when a status
//! changed; a notification's type carries its notification `data` (see [`crate::document`]).
//! Rendered once, when the event is made: every delivery sends the same bytes.
//!
//! Headers: `Billing-Event-Id` (receivers deduplicate on it) and
//! `Billing-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`, Stripe's
//! scheme, with one `v1=` per configured secret in the order configured (newest first).

use std::time::Duration;

use async_trait::async_trait;
use billing_domain::events_out::dispatch::BillingEventSender;
use billing_domain::events_out::{BillingEventSubject, ClaimedDelivery, NewBillingEvent};
use billing_domain::notification::NewNotification;
use billing_domain::ports::NotifyError;
use billing_domain::NotificationId;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;
use url::Url;

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

fn subject_data(subject: &BillingEventSubject) -> Result<Value, BoxError> {
    Ok(match subject {
        BillingEventSubject::Tenant(t) => json!({"tenant": {
            "id": t.id.to_string(), "status": t.status.as_str(),
            "stripeCustomerId": t.customer.as_ref().map(ToString::to_string)}}),
        BillingEventSubject::Subscription(s) => json!({"subscription": {
            "id": s.id.to_string(), "tenantId": s.tenant_id.to_string(),
            "planId": s.plan_id.to_string(), "status": s.status.as_str(),
            "currentPeriodStart": s.current_period_start, "currentPeriodEnd": s.current_period_end,
            "cancelAtPeriodEnd": s.cancel_at_period_end, "canceledAt": s.canceled_at,
            "stripeSubscriptionId": s.subscription_ref.as_ref().map(ToString::to_string)}}),
        BillingEventSubject::Invoice(i) => json!({"invoice": {
            "id": i.id.to_string(), "tenantId": i.tenant_id.to_string(),
            "subscriptionId": i.subscription_id.map(|s| s.to_string()),
            "number": i.number.as_str(), "status": i.status.as_str(),
            "amountDue": i.amount_due.minor(), "amountPaid": i.amount_paid.minor(),
            "currency": i.amount_due.currency().as_str(), "paidAt": i.paid_at,
            "stripeInvoiceId": i.invoice_ref.as_ref().map(ToString::to_string)}}),
        BillingEventSubject::Payment(p) => json!({"payment": {
            "id": p.id.to_string(), "tenantId": p.tenant_id.to_string(),
            "invoiceId": p.invoice_id.map(|i| i.to_string()),
            "amount": p.amount.minor(), "amountRefunded": p.amount_refunded.minor(),
            "currency": p.amount.currency().as_str(), "status": p.status.as_str(),
            "failureCode": p.failure_code, "failureMessage": p.failure_message,
            "stripePaymentIntentId": p.payment_intent.as_ref().map(ToString::to_string)}}),
        BillingEventSubject::Dispute(d) => json!({"dispute": {
            "id": d.id.to_string(), "paymentId": d.payment_id.to_string(),
            "amount": d.amount.minor(), "currency": d.amount.currency().as_str(),
            "reason": d.reason, "status": d.status.as_str(),
            "stripeDisputeId": d.dispute_ref.to_string()}}),
        BillingEventSubject::Notification(body) => {
            let document = crate::document::render(&NewNotification {
                id: NotificationId::new(),
                dedupe_key: String::new(),
                occurred_at: chrono::DateTime::UNIX_EPOCH,
                body: body.clone(),
            })?;
            let mut v: Value = serde_json::from_str(&document)?;
            v.get_mut("data").map(Value::take).unwrap_or(Value::Null)
        }
    })
}

/// Renders a billing event's body with its `sequence` (what the outbox stores; handed to
/// the store by the composition root).
///
/// # Errors
/// When the document cannot be serialised (it always can).
pub fn render(event: &NewBillingEvent, sequence: u64) -> Result<String, BoxError> {
    let mut data = subject_data(&event.subject)?;
    if let (Some(previous), Value::Object(map)) = (event.previous_status, &mut data) {
        map.insert("previousStatus".into(), Value::from(previous));
    }
    Ok(serde_json::to_string(&json!({
        "id": event.id.to_string(),
        "type": event.kind,
        "createdAt": event.created_at,
        "tenantId": event.tenant.to_string(),
        "sequence": sequence,
        "data": data,
    }))?)
}

/// The `Billing-Signature` header of `body` at unix time `t`: one `v1=` per secret, in
/// the order given.
#[must_use]
pub fn signature(secrets: &[String], t: i64, body: &str) -> String {
    let mut header = format!("t={t}");
    for secret in secrets {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            continue;
        };
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        header.push_str(",v1=");
        header.push_str(&hex::encode(mac.finalize().into_bytes()));
    }
    header
}

/// The key a subscriber's deliveries are kept under: its URL without credentials,
/// query or fragment (no secret lands in the database, the logs or a metric label).
#[must_use]
pub fn subscriber_key(url: &Url) -> String {
    let mut key = url.clone();
    let _ = key.set_username("");
    let _ = key.set_password(None);
    key.set_query(None);
    key.set_fragment(None);
    key.to_string()
}

/// POSTs billing events to one subscriber, signed.
pub struct HttpEventSender {
    client: reqwest::Client,
    url: Url,
    secrets: Vec<String>,
}

impl std::fmt::Debug for HttpEventSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpEventSender")
            .field("url", &subscriber_key(&self.url))
            .field("secrets", &"***")
            .finish()
    }
}

impl HttpEventSender {
    /// A sender to `url`, signing with `secrets` (newest first), each try bounded by
    /// `timeout`.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(url: Url, secrets: Vec<String>, timeout: Duration) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("billing-service/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            url,
            secrets,
        })
    }
}

#[async_trait]
impl BillingEventSender for HttpEventSender {
    async fn send(&self, delivery: &ClaimedDelivery) -> Result<(), NotifyError> {
        let t = chrono::Utc::now().timestamp();
        let response = self
            .client
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("Billing-Event-Id", delivery.event_id.to_string())
            .header(
                "Billing-Signature",
                signature(&self.secrets, t, &delivery.body),
            )
            .body(delivery.body.clone())
            .send()
            .await
            .map_err(|e| NotifyError::Retryable(format!("request failed: {}", e.without_url())))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_stripes_scheme_with_one_v1_per_secret_in_order() {
        let header = signature(&["new".into(), "old".into()], 1_700_000_000, "{}");

        let parts: Vec<&str> = header.split(',').collect();
        assert_eq!(parts[0], "t=1700000000");
        assert_eq!(parts.len(), 3);
        let mut mac = Hmac::<Sha256>::new_from_slice(b"new").unwrap();
        mac.update(b"1700000000.{}");
        assert_eq!(
            parts[1],
            format!("v1={}", hex::encode(mac.finalize().into_bytes()))
        );
        assert_ne!(parts[1], parts[2]);
    }

    #[test]
    fn a_subscriber_key_keeps_no_credentials_or_query() {
        let url = Url::parse("https://user:pw@hooks.example:8443/billing?token=abc").unwrap();

        assert_eq!(subscriber_key(&url), "https://hooks.example:8443/billing");
    }
}
