//! Shared test plumbing: the app under test, tokens and domain fixtures.

use billing_domain::testing;
use std::sync::Arc;
use std::time::Duration;

use actix_web::http::header::{self, HeaderMap};
use actix_web::http::StatusCode;
use actix_web::test;
use billing_domain::metrics::NoMetrics;
use billing_domain::service::MockBillingApi;
use billing_domain::*;
use billing_http::{mint_hs256, AppState, Authenticator, MetricsEndpoint};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde_json::Value;

/// HS256 secret of the app under test (test-only).
pub const SECRET: &[u8] = b"test-only-jwt-secret-0123456789abcdef";

pub const PUBLIC_PEM: &[u8] = include_bytes!("../fixtures/test_only_rsa_public.pem");
pub const PRIVATE_PEM: &[u8] = include_bytes!("../fixtures/test_only_rsa_private.pem");

/// What the app answered.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body as JSON (`Null` when empty or not JSON).
    pub body: Value,
    /// The body as text.
    pub text: String,
}

impl Reply {
    pub fn header(&self, name: header::HeaderName) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts a problem+json answer with this status and code; returns its detail.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(
            self.header(header::CONTENT_TYPE),
            Some("application/problem+json"),
            "body: {}",
            self.body
        );
        assert_eq!(self.body["code"], code, "body: {}", self.body);
        assert_eq!(self.body["status"], status);
        assert_eq!(self.body["type"], "about:blank");
        assert!(self.body["title"].is_string());
        self.body["detail"]
            .as_str()
            .expect("detail is a string")
            .to_owned()
    }
}

/// Sends `req` to an app over `api`, verifying tokens with `auth`.
pub async fn send_with(auth: Authenticator, api: MockBillingApi, req: test::TestRequest) -> Reply {
    let mut replies = send_all(auth, api, Arc::new(NoMetrics), vec![req]).await;
    replies.pop().unwrap()
}

/// Sends each request in turn to one app (the real [`billing_http::app`]).
pub async fn send_all(
    auth: Authenticator,
    api: MockBillingApi,
    metrics: Arc<dyn MetricsEndpoint>,
    reqs: Vec<test::TestRequest>,
) -> Vec<Reply> {
    let api: Arc<dyn BillingApi> = Arc::new(api);
    let app = test::init_service(billing_http::app(AppState { api, auth, metrics })).await;
    let mut replies = Vec::new();
    for req in reqs {
        let res = test::call_service(&app, req.to_request()).await;
        replies.push(reply(res).await);
    }
    replies
}

async fn reply(res: actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>) -> Reply {
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = test::read_body(res).await;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.contains("json"));
    let body = if bytes.is_empty() || !json {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("body is not JSON ({e}): {text}"))
    };
    Reply {
        status,
        headers,
        body,
        text,
    }
}

/// Sends `req` to an app over `api` with the HS256 authenticator.
pub async fn send(api: MockBillingApi, req: test::TestRequest) -> Reply {
    send_with(Authenticator::hs256(SECRET).unwrap(), api, req).await
}

/// A mock that fails the test if any use case is called.
pub fn untouched() -> MockBillingApi {
    MockBillingApi::new()
}

pub fn admin_token() -> String {
    mint_hs256(
        SECRET,
        "ops@example.test",
        None,
        true,
        Duration::from_secs(300),
    )
    .unwrap()
}

pub fn tenant_token(tenant: TenantId) -> String {
    mint_hs256(
        SECRET,
        "user-1",
        Some(tenant),
        false,
        Duration::from_secs(300),
    )
    .unwrap()
}

pub fn bearer(token: &str) -> (header::HeaderName, String) {
    (header::AUTHORIZATION, format!("Bearer {token}"))
}

pub fn now() -> i64 {
    Utc::now().timestamp()
}

/// An HS256 token with exactly these claims, signed with `secret`.
pub fn hs256_token(secret: &[u8], claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret).unwrap(),
    )
    .unwrap()
}

/// An RS256 token with these claims, signed with the test-only private key.
pub fn rs256_token(claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        claims,
        &jsonwebtoken::EncodingKey::from_rsa_pem(PRIVATE_PEM).unwrap(),
    )
    .unwrap()
}

// ---------------------------------------------------------------------------------------
// Fixtures

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub fn created() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

pub fn updated() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 3, 4, 5, 6).unwrap()
}

pub fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::parse("usd").unwrap()).unwrap()
}

pub fn plan() -> Plan {
    Plan {
        price: PriceRef::parse("price_pro_test").unwrap(),
        amount: usd(2900),
        trial_days: Some(TrialDays::new(14).unwrap()),
        created_at: created(),
        updated_at: updated(),
        ..testing::plan()
    }
}

pub fn tenant(id: TenantId) -> Tenant {
    Tenant {
        name: "Acme".into(),
        status: TenantStatus::Active,
        customer: Some(CustomerRef::parse("cus_test_acme").unwrap()),
        created_at: created(),
        updated_at: updated(),
        ..testing::tenant(id)
    }
}

pub fn subscription(tenant: TenantId) -> Subscription {
    Subscription {
        status: SubscriptionStatus::Trialing,
        current_period_start: Some(at("2026-01-01T00:00:00Z")),
        current_period_end: Some(at("2026-02-01T00:00:00Z")),
        subscription_ref: Some(SubscriptionRef::parse("sub_test_1").unwrap()),
        customer: Some(CustomerRef::parse("cus_test_acme").unwrap()),
        created_at: created(),
        updated_at: updated(),
        ..testing::subscription(tenant, PlanId::new())
    }
}

pub fn invoice(tenant: TenantId) -> Invoice {
    Invoice {
        amount_due: usd(5000),
        amount_paid: usd(1500),
        due_date: Some(NaiveDate::from_ymd_opt(2026, 3, 31).unwrap()),
        description: Some("March".into()),
        payment_intent: Some(PaymentIntentRef::parse("pi_test_1").unwrap()),
        created_at: created(),
        updated_at: updated(),
        ..testing::invoice(tenant)
    }
}

pub fn payment(tenant: TenantId, invoice: InvoiceId) -> Payment {
    Payment {
        invoice_id: Some(invoice),
        amount: usd(1500),
        status: PaymentStatus::Failed,
        failure_code: Some("card_declined".into()),
        failure_message: Some("Your card was declined.".into()),
        payment_intent: Some(PaymentIntentRef::parse("pi_test_1").unwrap()),
        created_at: created(),
        ..testing::payment(tenant)
    }
}

pub fn ledger_entry() -> LedgerEntry {
    LedgerEntry {
        event_id: EventId::parse("evt_test_1").unwrap(),
        kind: "invoice.payment_failed".into(),
        created: at("2026-01-05T10:00:00Z"),
        api_version: Some("2026-07-29.dahlia".into()),
        received_at: at("2026-01-05T10:00:01Z"),
        processed_at: Some(at("2026-01-05T10:00:02Z")),
        outcome: EventOutcome::Unmatched,
        detail: Some("no tenant for customer cus_x".into()),
        payload: r#"{"id":"evt_test_1","secret":"payload"}"#.into(),
    }
}

/// A disputed payment with one refund and one open dispute (issue 14).
pub fn refunded_and_disputed(tenant: TenantId) -> PaymentDetail {
    let mut pay = payment(tenant, InvoiceId::new());
    pay.status = PaymentStatus::Disputed;
    pay.amount_refunded = usd(500);
    pay.failure_code = None;
    pay.failure_message = None;
    let at = chrono::DateTime::parse_from_rfc3339("2026-01-03T00:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let refund = Refund {
        id: RefundId::new(),
        payment_id: pay.id,
        amount: usd(500),
        status: RefundStatus::Succeeded,
        reason: Some("requested_by_customer".into()),
        refund_ref: RefundRef::parse("re_test_1").unwrap(),
        last_event_at: at,
        created_at: at,
        updated_at: at,
    };
    let dispute = Dispute {
        id: DisputeId::new(),
        payment_id: pay.id,
        amount: usd(1000),
        reason: "fraudulent".into(),
        status: DisputeStatus::NeedsResponse,
        dispute_ref: DisputeRef::parse("dp_test_1").unwrap(),
        last_event_at: at,
        created_at: at,
        updated_at: at,
    };
    PaymentDetail {
        payment: pay,
        refunds: vec![refund],
        disputes: vec![dispute],
    }
}
