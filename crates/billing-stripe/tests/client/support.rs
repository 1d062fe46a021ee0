//! Shared by the client tests: a client against a wiremock server with a fast retry
//! policy, fixtures, request inspection and a metrics recorder.

use std::sync::Mutex;
use std::time::Duration;

use billing_domain::ids::{CheckoutSessionRef, CustomerRef, InvoiceId, PlanId, PriceRef, TenantId};
use billing_domain::model::TrialDays;
use billing_domain::money::{Currency, Money};
use billing_domain::ports::{CheckoutRequest, PaymentIntentRequest};
use billing_stripe::{CallRecord, RetryPolicy, StripeClient, StripeConfig, StripeMetrics};
use secrecy::SecretString;
use wiremock::{MockServer, Request, ResponseTemplate};

pub(crate) const KEY: &str = "sk_test_fake_0123456789";
pub(crate) const TENANT: &str = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";
pub(crate) const PLAN: &str = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d";
pub(crate) const INVOICE: &str = "11111111-2222-4333-8444-555555555555";

pub(crate) fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        per_try_timeout: Duration::from_secs(2),
        deadline: Duration::from_secs(5),
    }
}

pub(crate) fn config(server: &MockServer) -> StripeConfig {
    let mut c = StripeConfig::new(
        Some(SecretString::from(KEY.to_owned())),
        "https://app.example.com/billing/success?session_id={CHECKOUT_SESSION_ID}",
        "https://app.example.com/billing/cancel",
    );
    c.api_base = server.uri().parse().unwrap();
    c.retry = fast_policy();
    c
}

pub(crate) fn client(server: &MockServer) -> StripeClient {
    StripeClient::new(config(server)).unwrap()
}

/// A Stripe object from the workspace's one fixture set (the emulator's `fixtures/`).
pub(crate) fn fixture(name: &str) -> String {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../billing-stripe-emulator/fixtures")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

pub(crate) fn json(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.to_owned(), "application/json")
}

pub(crate) fn stripe_error(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.to_owned(), "application/json")
}

pub(crate) fn header<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

pub(crate) fn body(r: &Request) -> String {
    String::from_utf8(r.body.clone()).unwrap()
}

pub(crate) fn pairs(r: &Request) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&r.body).into_owned().collect()
}

pub(crate) fn owned(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

pub(crate) fn checkout_request(customer: Option<&str>, trial: Option<i64>) -> CheckoutRequest {
    CheckoutRequest {
        tenant: TenantId::parse(TENANT).unwrap(),
        plan: PlanId::parse(PLAN).unwrap(),
        price: PriceRef::parse("price_1Rq3oaHx4KpL29aTqhCv4Gt4").unwrap(),
        customer: customer.map(|c| CustomerRef::parse(c).unwrap()),
        trial_days: trial.map(|d| TrialDays::new(d).unwrap()),
        idempotency_key: "checkout:tenant:plan".to_owned(),
    }
}

pub(crate) fn intent_request() -> PaymentIntentRequest {
    PaymentIntentRequest {
        invoice: InvoiceId::parse(INVOICE).unwrap(),
        tenant: TenantId::parse(TENANT).unwrap(),
        amount: Money::new(4900, Currency::parse("usd").unwrap()).unwrap(),
        customer: Some(CustomerRef::parse("cus_t9FXeM4pJmfNhL").unwrap()),
        idempotency_key: format!("pi:{INVOICE}:4900"),
    }
}

pub(crate) fn assert_common_headers(r: &Request) {
    assert_eq!(header(r, "authorization"), Some(&*format!("Bearer {KEY}")));
    assert_eq!(header(r, "stripe-version"), Some("2026-07-29.dahlia"));
    assert_eq!(
        header(r, "user-agent"),
        Some(&*format!(
            "Stripe/v1 BillingStripeRust/{v} BillingService/{v}",
            v = env!("CARGO_PKG_VERSION")
        ))
    );
    assert!(
        header(r, "x-stripe-client-user-agent").is_some_and(|v| v.contains("\"lang\":\"rust\""))
    );
}

pub(crate) fn assert_post_headers(r: &Request) {
    assert_common_headers(r);
    assert_eq!(
        header(r, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
}

#[derive(Default)]
pub(crate) struct Recorder(pub(crate) Mutex<Vec<CallRecord>>);

impl StripeMetrics for Recorder {
    fn record(&self, call: &CallRecord) {
        self.0.lock().unwrap().push(call.clone());
    }
}

pub(crate) const SESSION: &str =
    "cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY";

pub(crate) fn session_ref() -> CheckoutSessionRef {
    CheckoutSessionRef::parse(SESSION).unwrap()
}
