//! `StripeClient` against a local wiremock server: request shape per operation, retries,
//! idempotency keys, timeouts, deadlines and the error mapping.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap fixtures"
)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use billing_domain::ids::{
    CheckoutSessionRef, CustomerRef, EventId, InvoiceId, InvoiceRef, PaymentIntentRef, PlanId,
    PriceRef, TenantId,
};
use billing_domain::model::TrialDays;
use billing_domain::money::{Currency, Money};
use billing_domain::ports::{
    CheckoutRequest, IntentState, PaymentIntentRequest, PaymentProvider, ProviderError, SessionEnd,
};
use billing_stripe::{
    CallOutcome, CallRecord, RetryPolicy, StripeClient, StripeConfig, StripeMetrics,
};
use secrecy::SecretString;
use uuid::Uuid;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const KEY: &str = "sk_test_fake_0123456789";
const TENANT: &str = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";
const PLAN: &str = "0a1b2c3d-4e5f-4a6b-8c7d-8e9f0a1b2c3d";
const INVOICE: &str = "11111111-2222-4333-8444-555555555555";

fn fast_policy() -> RetryPolicy {
    RetryPolicy {
        max_retries: 2,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(40),
        per_try_timeout: Duration::from_secs(2),
        deadline: Duration::from_secs(5),
    }
}

fn config(server: &MockServer) -> StripeConfig {
    let mut c = StripeConfig::new(
        Some(SecretString::from(KEY.to_owned())),
        "https://app.example.com/billing/success?session_id={CHECKOUT_SESSION_ID}",
        "https://app.example.com/billing/cancel",
    );
    c.api_base = server.uri().parse().unwrap();
    c.retry = fast_policy();
    c
}

fn client(server: &MockServer) -> StripeClient {
    StripeClient::new(config(server)).unwrap()
}

fn fixture(name: &str) -> String {
    let path = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(path).unwrap()
}

fn json(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(body.to_owned(), "application/json")
}

fn stripe_error(status: u16, body: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(body.to_owned(), "application/json")
}

fn header<'a>(r: &'a Request, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

fn body(r: &Request) -> String {
    String::from_utf8(r.body.clone()).unwrap()
}

fn pairs(r: &Request) -> Vec<(String, String)> {
    url::form_urlencoded::parse(&r.body).into_owned().collect()
}

fn owned(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn checkout_request(customer: Option<&str>, trial: Option<i64>) -> CheckoutRequest {
    CheckoutRequest {
        tenant: TenantId::parse(TENANT).unwrap(),
        plan: PlanId::parse(PLAN).unwrap(),
        price: PriceRef::parse("price_1Rq3oaHx4KpL29aTqhCv4Gt4").unwrap(),
        customer: customer.map(|c| CustomerRef::parse(c).unwrap()),
        trial_days: trial.map(|d| TrialDays::new(d).unwrap()),
        idempotency_key: "checkout:tenant:plan".to_owned(),
    }
}

fn intent_request() -> PaymentIntentRequest {
    PaymentIntentRequest {
        invoice: InvoiceId::parse(INVOICE).unwrap(),
        tenant: TenantId::parse(TENANT).unwrap(),
        amount: Money::new(4900, Currency::parse("usd").unwrap()).unwrap(),
        customer: Some(CustomerRef::parse("cus_t9FXeM4pJmfNhL").unwrap()),
        idempotency_key: format!("pi:{INVOICE}:4900"),
    }
}

fn assert_common_headers(r: &Request) {
    assert_eq!(header(r, "authorization"), Some(&*format!("Bearer {KEY}")));
    assert_eq!(header(r, "stripe-version"), Some("2026-07-29.dahlia"));
    assert_eq!(
        header(r, "user-agent"),
        Some(&*format!("billing-service/{}", env!("CARGO_PKG_VERSION")))
    );
}

fn assert_post_headers(r: &Request) {
    assert_common_headers(r);
    assert_eq!(
        header(r, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
}

#[derive(Default)]
struct Recorder(Mutex<Vec<CallRecord>>);

impl StripeMetrics for Recorder {
    fn record(&self, call: &CallRecord) {
        self.0.lock().unwrap().push(call.clone());
    }
}

// ---------------------------------------------------------------------------------------
// Request shapes

#[tokio::test]
async fn checkout_sends_the_exact_form_headers_and_the_callers_idempotency_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(json(&fixture("checkout.session.json")))
        .expect(1)
        .mount(&server)
        .await;

    let session = client(&server)
        .create_checkout_session(&checkout_request(Some("cus_t9FXeM4pJmfNhL"), Some(14)))
        .await
        .unwrap();

    assert_eq!(
        session.id.as_str(),
        "cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY"
    );
    assert_eq!(
        session.url,
        "https://checkout.stripe.com/pay/c/cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY"
    );
    let requests = server.received_requests().await.unwrap();
    let r = &requests[0];
    assert_post_headers(r);
    assert_eq!(header(r, "idempotency-key"), Some("checkout:tenant:plan"));
    assert_eq!(
        pairs(r),
        owned(&[
            ("mode", "subscription"),
            ("line_items[0][price]", "price_1Rq3oaHx4KpL29aTqhCv4Gt4"),
            ("line_items[0][quantity]", "1"),
            ("client_reference_id", TENANT),
            ("customer", "cus_t9FXeM4pJmfNhL"),
            ("metadata[tenantId]", TENANT),
            ("metadata[planId]", PLAN),
            ("subscription_data[metadata][tenantId]", TENANT),
            ("subscription_data[metadata][planId]", PLAN),
            ("subscription_data[trial_period_days]", "14"),
            (
                "success_url",
                "https://app.example.com/billing/success?session_id={CHECKOUT_SESSION_ID}"
            ),
            ("cancel_url", "https://app.example.com/billing/cancel"),
        ])
    );
    assert_eq!(
        body(r),
        format!(
            "mode=subscription&line_items[0][price]=price_1Rq3oaHx4KpL29aTqhCv4Gt4\
             &line_items[0][quantity]=1&client_reference_id={TENANT}&customer=cus_t9FXeM4pJmfNhL\
             &metadata[tenantId]={TENANT}&metadata[planId]={PLAN}\
             &subscription_data[metadata][tenantId]={TENANT}&subscription_data[metadata][planId]={PLAN}\
             &subscription_data[trial_period_days]=14\
             &success_url=https%3A%2F%2Fapp.example.com%2Fbilling%2Fsuccess%3Fsession_id%3D%7BCHECKOUT_SESSION_ID%7D\
             &cancel_url=https%3A%2F%2Fapp.example.com%2Fbilling%2Fcancel"
        )
    );
}

#[tokio::test]
async fn checkout_without_customer_or_trial_omits_them_and_adds_the_session_template() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/checkout/sessions"))
        .respond_with(json(&fixture("checkout.session.json")))
        .mount(&server)
        .await;
    let mut cfg = config(&server);
    cfg.checkout_success_url = "https://app.example.com/done".to_owned();

    StripeClient::new(cfg)
        .unwrap()
        .create_checkout_session(&checkout_request(None, None))
        .await
        .unwrap();

    let r = &server.received_requests().await.unwrap()[0];
    let p = pairs(r);
    assert!(p.iter().all(|(k, _)| k != "customer"));
    assert!(p
        .iter()
        .all(|(k, _)| k != "subscription_data[trial_period_days]"));
    assert!(p.contains(&(
        "success_url".to_owned(),
        "https://app.example.com/done?session_id={CHECKOUT_SESSION_ID}".to_owned()
    )));
}

const SESSION: &str = "cs_test_a1YS1URlnyQCN5fUUduORoQ7Pw41PJqDWkIVQCpJPqkfIhd6tVY8XB1OLY";

fn session_ref() -> CheckoutSessionRef {
    CheckoutSessionRef::parse(SESSION).unwrap()
}

/// The checkout session fixture in `status`, with `url` null unless it is open.
fn session_in(status: &str) -> String {
    let session = fixture("checkout.session.json")
        .replace(r#""status": "open""#, &format!(r#""status": "{status}""#));
    assert!(session.contains(&format!(r#""status": "{status}""#)));
    if status == "open" {
        session
    } else {
        session.replace(
            &format!(r#""url": "https://checkout.stripe.com/pay/c/{SESSION}""#),
            r#""url": null"#,
        )
    }
}

const NOT_OPEN: &str = r#"{"error":{"message":"Only Checkout Sessions with a status in [\"open\"] can be expired.","type":"invalid_request_error"}}"#;

/// A server refusing to expire the session (it is not open) and answering its read-back
/// with `read_back`.
async fn refusing_to_expire(read_back: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(stripe_error(400, NOT_OPEN))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(read_back)
        .mount(&server)
        .await;
    server
}

#[tokio::test]
async fn expiring_an_open_session_posts_to_its_expire_path_with_a_key_per_call() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/checkout/sessions/{SESSION}/expire")))
        .respond_with(json(&session_in("expired")))
        .expect(1)
        .mount(&server)
        .await;

    let end = client(&server)
        .expire_checkout_session(&session_ref())
        .await
        .unwrap();

    assert_eq!(end, SessionEnd::Expired);
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r.method.as_str(), "POST");
    assert_eq!(
        r.url.path(),
        format!("/v1/checkout/sessions/{SESSION}/expire")
    );
    assert_post_headers(r);
    // Per call (a stored 500 must not be replayed to later checkouts): not derived from
    // the session.
    let key = header(r, "idempotency-key").unwrap();
    assert!(!key.is_empty() && !key.contains(SESSION), "{key}");
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn expire_answering_complete_is_completed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json(&session_in("complete")))
        .mount(&server)
        .await;

    let end = client(&server)
        .expire_checkout_session(&session_ref())
        .await
        .unwrap();

    assert_eq!(end, SessionEnd::Completed);
}

#[tokio::test]
async fn a_session_that_cannot_be_expired_is_read_back_and_completed_when_complete() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/checkout/sessions/{SESSION}/expire")))
        .respond_with(stripe_error(400, NOT_OPEN))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/checkout/sessions/{SESSION}")))
        .respond_with(json(&session_in("complete")))
        .expect(1)
        .mount(&server)
        .await;

    let end = client(&server)
        .expire_checkout_session(&session_ref())
        .await
        .unwrap();

    assert_eq!(end, SessionEnd::Completed);
    let requests = server.received_requests().await.unwrap();
    let sent: Vec<_> = requests
        .iter()
        .map(|r| (r.method.as_str().to_owned(), r.url.path().to_owned()))
        .collect();
    assert_eq!(
        sent,
        [
            (
                "POST".to_owned(),
                format!("/v1/checkout/sessions/{SESSION}/expire")
            ),
            ("GET".to_owned(), format!("/v1/checkout/sessions/{SESSION}")),
        ]
    );
    assert_eq!(header(&requests[1], "idempotency-key"), None);
}

#[tokio::test]
async fn a_session_that_expired_on_its_own_is_expired() {
    let server = refusing_to_expire(json(&session_in("expired"))).await;

    let end = client(&server)
        .expire_checkout_session(&session_ref())
        .await
        .unwrap();

    assert_eq!(end, SessionEnd::Expired);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_session_still_open_after_a_refused_expire_is_unexpected() {
    let server = refusing_to_expire(json(&session_in("open"))).await;

    let err = client(&server)
        .expire_checkout_session(&session_ref())
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Unexpected(_)), "{err:?}");
}

#[tokio::test]
async fn expiring_a_session_stripe_does_not_know_is_expired() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(stripe_error(
            404,
            &format!(
                r#"{{"error":{{"code":"resource_missing","message":"No such checkout.session: '{SESSION}'","param":"session","type":"invalid_request_error"}}}}"#
            ),
        ))
        .mount(&server)
        .await;

    let end = client(&server)
        .expire_checkout_session(&session_ref())
        .await
        .unwrap();

    assert_eq!(end, SessionEnd::Expired);
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_session_gone_when_read_back_is_expired() {
    let server = refusing_to_expire(stripe_error(
        404,
        r#"{"error":{"code":"resource_missing","type":"invalid_request_error"}}"#,
    ))
    .await;

    let end = client(&server)
        .expire_checkout_session(&session_ref())
        .await
        .unwrap();

    assert_eq!(end, SessionEnd::Expired);
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_read_back_stripe_refuses_is_unexpected_not_the_callers_fault() {
    let server = refusing_to_expire(stripe_error(
        400,
        r#"{"error":{"code":"parameter_unknown","message":"Received unknown parameter","type":"invalid_request_error"}}"#,
    ))
    .await;

    let err = client(&server)
        .expire_checkout_session(&session_ref())
        .await
        .unwrap_err();

    // Not `Refused`: that would answer our caller 4xx for a read it did not make.
    assert!(matches!(err, ProviderError::Unexpected(_)), "{err:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_persistent_500_on_expire_is_unavailable_after_retries_with_one_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;

    let err = client(&server)
        .expire_checkout_session(&session_ref())
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3);
    let key = header(&requests[0], "idempotency-key").unwrap().to_owned();
    assert!(
        requests
            .iter()
            .all(|r| r.method.as_str() == "POST"
                && header(r, "idempotency-key") == Some(key.as_str()))
    );
}

#[tokio::test]
async fn portal_session_posts_customer_and_return_url_and_returns_the_url() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/billing_portal/sessions"))
        .respond_with(json(&fixture("billing_portal.session.json")))
        .mount(&server)
        .await;

    let url = client(&server)
        .create_portal_session(
            &CustomerRef::parse("cus_QXg1o8vcGmoR32").unwrap(),
            "https://app.example.com/account?a=1&b=2",
        )
        .await
        .unwrap();

    assert_eq!(
        url,
        "https://sangeekp-15t6ai--customer_portal-mydev.dev.stripe.me/session/{SESSION_SECRET}"
    );
    let r = &server.received_requests().await.unwrap()[0];
    assert_post_headers(r);
    assert_eq!(
        body(r),
        "customer=cus_QXg1o8vcGmoR32&return_url=https%3A%2F%2Fapp.example.com%2Faccount%3Fa%3D1%26b%3D2"
    );
    let key = header(r, "idempotency-key").unwrap();
    assert!(Uuid::parse_str(key).is_ok(), "{key}");
}

#[tokio::test]
async fn payment_intent_creation_sends_amount_currency_metadata_and_automatic_methods() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/payment_intents"))
        .respond_with(json(&fixture("payment_intent.json")))
        .mount(&server)
        .await;

    let info = client(&server)
        .create_payment_intent(&intent_request())
        .await
        .unwrap();

    assert_eq!(info.id.as_str(), "pi_1PgafyB7WZ01zgkWSjxsAJo3");
    assert_eq!(
        info.client_secret.expose(),
        "pi_1PgafyB7WZ01zgkWSjxsAJo3_secret_Dm43xiq1k0ywrRRjDoi8y1gkM"
    );
    assert_eq!(info.state, IntentState::AwaitingPayment);
    assert_eq!(info.amount.minor(), 1099);
    assert_eq!(info.amount.currency().as_str(), "usd");
    let r = &server.received_requests().await.unwrap()[0];
    assert_post_headers(r);
    assert_eq!(
        header(r, "idempotency-key"),
        Some(&*format!("pi:{INVOICE}:4900"))
    );
    assert_eq!(
        body(r),
        format!(
            "amount=4900&currency=usd&customer=cus_t9FXeM4pJmfNhL&metadata[invoiceId]={INVOICE}\
             &metadata[tenantId]={TENANT}&automatic_payment_methods[enabled]=true"
        )
    );
}

#[tokio::test]
async fn reading_a_payment_intent_is_a_get_without_body_or_idempotency_key() {
    let server = MockServer::start().await;
    let pi = fixture("payment_intent.json").replace("requires_payment_method", "succeeded");
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_1PgafyB7WZ01zgkWSjxsAJo3"))
        .respond_with(json(&pi))
        .mount(&server)
        .await;

    let info = client(&server)
        .payment_intent(&PaymentIntentRef::parse("pi_1PgafyB7WZ01zgkWSjxsAJo3").unwrap())
        .await
        .unwrap();

    assert_eq!(info.state, IntentState::Succeeded);
    let r = &server.received_requests().await.unwrap()[0];
    assert_common_headers(r);
    assert_eq!(header(r, "idempotency-key"), None);
    assert_eq!(header(r, "content-type"), None);
    assert!(r.body.is_empty());
}

#[tokio::test]
async fn an_unknown_intent_status_is_treated_as_processing() {
    let server = MockServer::start().await;
    let pi = fixture("payment_intent.json").replace("requires_payment_method", "brand_new");
    Mock::given(method("GET"))
        .respond_with(json(&pi))
        .mount(&server)
        .await;

    let info = client(&server)
        .payment_intent(&PaymentIntentRef::parse("pi_1").unwrap())
        .await
        .unwrap();

    assert_eq!(info.state, IntentState::Processing);
}

#[tokio::test]
async fn the_invoice_payment_intent_is_read_from_expanded_payments() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/invoices/in_1"))
        .respond_with(json(
            r#"{"id":"in_1","object":"invoice","payments":{"object":"list","data":[
                {"object":"invoice_payment","payment":{"type":"payment_intent",
                 "payment_intent":{"id":"pi_expanded","object":"payment_intent"}}}]}}"#,
        ))
        .mount(&server)
        .await;

    let pi = client(&server)
        .invoice_payment_intent(&InvoiceRef::parse("in_1").unwrap(), None)
        .await
        .unwrap();

    assert_eq!(pi.as_ref().map(|p| p.as_str()), Some("pi_expanded"));
    let r = &server.received_requests().await.unwrap()[0];
    assert_eq!(r.url.query(), Some("expand[]=payments"));
    let query: Vec<(String, String)> = r.url.query_pairs().into_owned().collect();
    assert_eq!(query, owned(&[("expand[]", "payments")]));
}

#[tokio::test]
async fn an_invoice_without_payments_has_no_payment_intent() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/invoices/in_1"))
        .respond_with(json(&fixture("invoice.json")))
        .mount(&server)
        .await;

    let pi = client(&server)
        .invoice_payment_intent(&InvoiceRef::parse("in_1").unwrap(), None)
        .await
        .unwrap();

    assert_eq!(pi, None);
}

#[tokio::test]
async fn an_invoice_in_the_older_shape_yields_its_top_level_payment_intent() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(json(r#"{"id":"in_1","payment_intent":"pi_legacy"}"#))
        .mount(&server)
        .await;

    let pi = client(&server)
        .invoice_payment_intent(&InvoiceRef::parse("in_1").unwrap(), None)
        .await
        .unwrap();

    assert_eq!(pi.as_ref().map(|p| p.as_str()), Some("pi_legacy"));
}

#[tokio::test]
async fn fetching_an_event_returns_its_raw_bytes() {
    let server = MockServer::start().await;
    let raw = fixture("event.json");
    Mock::given(method("GET"))
        .and(path("/v1/events/evt_1Pgc76B7WZ01zgkWwyRHS12y"))
        .respond_with(json(&raw))
        .mount(&server)
        .await;

    let bytes = client(&server)
        .fetch_event(&EventId::parse("evt_1Pgc76B7WZ01zgkWwyRHS12y").unwrap())
        .await
        .unwrap();

    assert_eq!(bytes, raw.as_bytes());
}

#[tokio::test]
async fn ids_with_slashes_or_question_marks_stay_one_path_segment() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(json(&fixture("event.json")))
        .mount(&server)
        .await;

    client(&server)
        .fetch_event(&EventId::parse("evt_1/../../v1/charges?x=1#f").unwrap())
        .await
        .unwrap();

    let r = &server.received_requests().await.unwrap()[0];
    assert_eq!(
        r.url.path(),
        "/v1/events/evt_1%2F..%2F..%2Fv1%2Fcharges%3Fx%3D1%23f"
    );
    assert_eq!(r.url.query(), None);
}

#[tokio::test]
async fn a_dot_dot_id_is_refused_without_a_request() {
    let server = MockServer::start().await;

    let err = client(&server)
        .fetch_event(&EventId::parse("..").unwrap())
        .await
        .unwrap_err();

    assert!(matches!(
        err,
        ProviderError::Refused {
            not_found: true,
            ..
        }
    ));
    assert!(server.received_requests().await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------
// Retries, idempotency, timeouts

#[tokio::test]
async fn a_500_then_200_succeeds_and_both_attempts_carry_the_same_idempotency_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(stripe_error(500, r#"{"error":{"type":"api_error"}}"#))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(json(&fixture("billing_portal.session.json")))
        .mount(&server)
        .await;
    let recorder = Arc::new(Recorder::default());
    let client = client(&server).with_metrics(recorder.clone());

    let url = client
        .create_portal_session(&CustomerRef::parse("cus_1").unwrap(), "https://a.example/")
        .await;

    assert!(url.is_ok(), "{url:?}");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 2);
    let first = header(&requests[0], "idempotency-key").unwrap();
    assert_eq!(header(&requests[1], "idempotency-key"), Some(first));
    assert_eq!(requests[0].body, requests[1].body);
    let records = recorder.0.lock().unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].operation, "create_portal_session");
    assert_eq!(records[0].outcome, CallOutcome::Success);
    assert_eq!(records[0].attempts, 2);
}

#[tokio::test]
async fn the_callers_idempotency_key_is_reused_on_every_retry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;

    let err = client(&server)
        .create_payment_intent(&intent_request())
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    let requests = server.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3);
    for r in &requests {
        assert_eq!(
            header(r, "idempotency-key"),
            Some(&*format!("pi:{INVOICE}:4900"))
        );
    }
}

#[tokio::test]
async fn a_budget_cuts_a_lookup_short_of_the_clients_deadline() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(10)))
        .mount(&server)
        .await;
    // The client alone would wait 2 s per try, 5 s in all.
    let c = client(&server);
    let started = Instant::now();

    let err = c
        .invoice_payment_intent(
            &InvoiceRef::parse("in_1").unwrap(),
            Some(Duration::from_millis(300)),
        )
        .await
        .unwrap_err();

    let elapsed = started.elapsed();
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    // 300 ms budget plus scheduling slack, well short of the 2 s per-try timeout.
    assert!(elapsed < Duration::from_millis(1_500), "{elapsed:?}");
}

#[tokio::test]
async fn a_persistent_500_gives_up_within_the_deadline_as_unavailable() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&server)
        .await;
    let mut cfg = config(&server);
    cfg.retry = RetryPolicy {
        max_retries: 1_000,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(50),
        per_try_timeout: Duration::from_secs(1),
        deadline: Duration::from_millis(400),
    };
    let started = Instant::now();

    let err = StripeClient::new(cfg)
        .unwrap()
        .fetch_event(&EventId::parse("evt_1").unwrap())
        .await
        .unwrap_err();

    let elapsed = started.elapsed();
    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    // 400 ms deadline plus scheduling slack; a run without a deadline would take 20 s+.
    assert!(elapsed < Duration::from_secs(1), "{elapsed:?}");
    let attempts = server.received_requests().await.unwrap().len();
    assert!((2..1_000).contains(&attempts), "{attempts}");
}

#[tokio::test]
async fn retries_stop_after_max_retries() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(502))
        .mount(&server)
        .await;

    let err = client(&server)
        .fetch_event(&EventId::parse("evt_1").unwrap())
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(_)));
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_429_with_should_retry_false_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            stripe_error(
                429,
                r#"{"error":{"type":"invalid_request_error","code":"rate_limit"}}"#,
            )
            .insert_header("Stripe-Should-Retry", "false"),
        )
        .mount(&server)
        .await;

    let err = client(&server)
        .create_payment_intent(&intent_request())
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_429_without_header_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(stripe_error(429, ""))
        .up_to_n_times(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(json(&fixture("payment_intent.json")))
        .mount(&server)
        .await;

    let info = client(&server)
        .create_payment_intent(&intent_request())
        .await;

    assert!(info.is_ok(), "{info:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn a_409_is_retried_and_maps_to_unavailable_when_it_persists() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(stripe_error(
            409,
            r#"{"error":{"type":"invalid_request_error","code":"idempotency_key_in_use"}}"#,
        ))
        .mount(&server)
        .await;

    let err = client(&server)
        .create_payment_intent(&intent_request())
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn should_retry_true_forces_a_retry_of_a_400() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            stripe_error(
                400,
                r#"{"error":{"type":"invalid_request_error","message":"try again"}}"#,
            )
            .insert_header("Stripe-Should-Retry", "true"),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(json(&fixture("payment_intent.json")))
        .mount(&server)
        .await;

    let info = client(&server)
        .create_payment_intent(&intent_request())
        .await;

    assert!(info.is_ok(), "{info:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn should_retry_false_forbids_retrying_a_503() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503).insert_header("Stripe-Should-Retry", "false"))
        .mount(&server)
        .await;

    let err = client(&server)
        .fetch_event(&EventId::parse("evt_1").unwrap())
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(_)));
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_hanging_server_hits_the_per_try_timeout() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(json(&fixture("event.json")).set_delay(Duration::from_secs(10)))
        .mount(&server)
        .await;
    let mut cfg = config(&server);
    cfg.retry.per_try_timeout = Duration::from_millis(150);
    cfg.retry.max_retries = 1;
    let recorder = Arc::new(Recorder::default());
    let started = Instant::now();

    let err = StripeClient::new(cfg)
        .unwrap()
        .with_metrics(recorder.clone())
        .fetch_event(&EventId::parse("evt_1").unwrap())
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let records = recorder.0.lock().unwrap();
    assert_eq!(records[0].attempts, 2);
    assert_eq!(records[0].outcome, CallOutcome::Unavailable);
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable() {
    let server = MockServer::start().await;
    let mut cfg = config(&server);
    // A port that was just free: nothing listens there any more.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    cfg.api_base = format!("http://{}", listener.local_addr().unwrap())
        .parse()
        .unwrap();
    drop(listener);
    cfg.retry.max_retries = 1;

    let err = StripeClient::new(cfg)
        .unwrap()
        .fetch_event(&EventId::parse("evt_1").unwrap())
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Unavailable(_)), "{err:?}");
}

// ---------------------------------------------------------------------------------------
// Error mapping

#[tokio::test]
async fn an_invalid_request_is_refused_with_stripes_message_and_param_without_retry() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            stripe_error(
                400,
                r#"{"error":{"code":"resource_missing","doc_url":"https://docs.stripe.com/error-codes/resource-missing","message":"No such customer: 'cus_does_not_exist'","param":"customer","type":"invalid_request_error"}}"#,
            )
            .insert_header("Request-Id", "req_Abc123"),
        )
        .mount(&server)
        .await;
    let recorder = Arc::new(Recorder::default());

    let err = client(&server)
        .with_metrics(recorder.clone())
        .create_checkout_session(&checkout_request(Some("cus_does_not_exist"), None))
        .await
        .unwrap_err();

    match err {
        ProviderError::Refused {
            code,
            param,
            message,
            not_found,
        } => {
            assert_eq!(code.as_deref(), Some("resource_missing"));
            assert_eq!(param.as_deref(), Some("customer"));
            assert_eq!(message, "No such customer: 'cus_does_not_exist'");
            assert!(not_found);
        }
        other => panic!("expected Refused, got {other:?}"),
    }
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
    let records = recorder.0.lock().unwrap();
    assert_eq!(records[0].outcome, CallOutcome::Refused);
    assert_eq!(records[0].status, Some(400));
    assert_eq!(records[0].request_id.as_deref(), Some("req_Abc123"));
}

#[tokio::test]
async fn a_card_decline_is_refused_with_its_code() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(stripe_error(
            402,
            r#"{"error":{"charge":"ch_1","code":"card_declined","decline_code":"insufficient_funds","message":"Your card has insufficient funds.","type":"card_error"}}"#,
        ))
        .mount(&server)
        .await;

    let err = client(&server)
        .create_payment_intent(&intent_request())
        .await
        .unwrap_err();

    assert!(
        matches!(&err, ProviderError::Refused { code: Some(c), not_found: false, .. } if c == "card_declined"),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_404_for_a_missing_object_is_refused_as_not_found() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(stripe_error(
            404,
            r#"{"error":{"code":"resource_missing","message":"No such payment_intent: 'pi_x'","param":"intent","type":"invalid_request_error"}}"#,
        ))
        .mount(&server)
        .await;

    let err = client(&server)
        .payment_intent(&PaymentIntentRef::parse("pi_x").unwrap())
        .await
        .unwrap_err();

    assert!(
        matches!(
            err,
            ProviderError::Refused {
                not_found: true,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_401_is_misconfigured_and_never_shows_the_api_key() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(stripe_error(
            401,
            &format!(
                r#"{{"error":{{"message":"Invalid API Key provided: {KEY}","type":"invalid_request_error"}}}}"#
            ),
        ))
        .mount(&server)
        .await;

    let err = client(&server)
        .create_payment_intent(&intent_request())
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Misconfigured(_)), "{err:?}");
    let mut shown = format!("{err} {err:?}");
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        shown.push_str(&format!(" {s} {s:?}"));
        source = s.source();
    }
    assert!(!shown.contains(KEY), "{shown}");
    assert!(shown.contains("401"), "{shown}");
    assert_eq!(server.received_requests().await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_403_is_misconfigured() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(stripe_error(
            403,
            r#"{"error":{"type":"invalid_request_error"}}"#,
        ))
        .mount(&server)
        .await;

    let err = client(&server)
        .fetch_event(&EventId::parse("evt_1").unwrap())
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Misconfigured(_)), "{err:?}");
}

#[tokio::test]
async fn a_malformed_200_body_is_unexpected() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json("<html>not json</html>"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/events/evt_1"))
        .respond_with(json("{\"id\":\"evt_1\""))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/payment_intents/pi_1"))
        .respond_with(json(r#"{"id":"pi_1","status":"succeeded"}"#))
        .mount(&server)
        .await;
    let c = client(&server);

    let post = c
        .create_payment_intent(&intent_request())
        .await
        .unwrap_err();
    let get = c
        .payment_intent(&PaymentIntentRef::parse("pi_1").unwrap())
        .await
        .unwrap_err();
    let event = c
        .fetch_event(&EventId::parse("evt_1").unwrap())
        .await
        .unwrap_err();

    assert!(matches!(post, ProviderError::Unexpected(_)), "{post:?}");
    assert!(matches!(get, ProviderError::Unexpected(_)), "{get:?}");
    assert!(matches!(event, ProviderError::Unexpected(_)), "{event:?}");
}

#[tokio::test]
async fn a_checkout_session_without_url_is_unexpected() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(json(r#"{"id":"cs_1","url":null}"#))
        .mount(&server)
        .await;

    let err = client(&server)
        .create_checkout_session(&checkout_request(None, None))
        .await
        .unwrap_err();

    assert!(matches!(err, ProviderError::Unexpected(_)), "{err:?}");
}

#[tokio::test]
async fn without_an_api_key_every_call_is_not_configured_and_nothing_is_sent() {
    let server = MockServer::start().await;
    let mut cfg = config(&server);
    cfg.api_key = None;
    let c = StripeClient::new(cfg).unwrap();
    let blank = {
        let mut cfg = config(&server);
        cfg.api_key = Some(SecretString::from("  ".to_owned()));
        StripeClient::new(cfg).unwrap()
    };

    let results = [
        c.create_checkout_session(&checkout_request(None, None))
            .await
            .map(|_| ()),
        c.create_portal_session(&CustomerRef::parse("cus_1").unwrap(), "https://a.example")
            .await
            .map(|_| ()),
        c.create_payment_intent(&intent_request()).await.map(|_| ()),
        c.payment_intent(&PaymentIntentRef::parse("pi_1").unwrap())
            .await
            .map(|_| ()),
        c.invoice_payment_intent(&InvoiceRef::parse("in_1").unwrap(), None)
            .await
            .map(|_| ()),
        c.fetch_event(&EventId::parse("evt_1").unwrap())
            .await
            .map(|_| ()),
        c.expire_checkout_session(&session_ref()).await.map(|_| ()),
        blank
            .fetch_event(&EventId::parse("evt_1").unwrap())
            .await
            .map(|_| ()),
    ];

    for r in results {
        assert!(matches!(r, Err(ProviderError::NotConfigured)), "{r:?}");
    }
    assert!(!c.is_configured());
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn debug_of_the_config_and_client_never_shows_the_api_key() {
    let server = MockServer::start().await;
    let cfg = config(&server);
    let c = StripeClient::new(cfg.clone()).unwrap();

    let shown = format!("{cfg:?} {c:?} {cfg:#?} {c:#?}");

    assert!(!shown.contains(KEY), "{shown}");
    assert!(!shown.contains("sk_test"), "{shown}");
    assert!(shown.contains("2026-07-29.dahlia"));
}

#[test]
fn an_api_key_with_control_characters_is_refused_at_build_without_echoing_it() {
    let mut cfg = StripeConfig::new(
        Some(SecretString::from("sk_test_fake\nX".to_owned())),
        "https://a.example/ok",
        "https://a.example/cancel",
    );
    cfg.api_base = "http://127.0.0.1:9".parse().unwrap();

    let err = StripeClient::new(cfg).unwrap_err();

    assert!(!format!("{err} {err:?}").contains("sk_test_fake"));
}

#[test]
fn defaults_follow_the_sdks() {
    let cfg = StripeConfig::new(None, "s", "c");

    assert_eq!(cfg.api_base.as_str(), "https://api.stripe.com/");
    assert_eq!(cfg.api_version, "2026-07-29.dahlia");
    assert_eq!(cfg.retry.max_retries, 2);
    assert_eq!(cfg.retry.initial_backoff, Duration::from_millis(500));
    assert_eq!(cfg.retry.max_backoff, Duration::from_secs(5));
    assert_eq!(cfg.retry.per_try_timeout, Duration::from_secs(30));
    assert_eq!(cfg.retry.deadline, Duration::from_secs(60));
}

#[tokio::test]
async fn reading_a_subscription_gives_its_current_state() {
    let server = MockServer::start().await;
    let sub =
        fixture("subscription.json").replace("\"status\": \"active\"", "\"status\": \"past_due\"");
    Mock::given(method("GET"))
        .and(path("/v1/subscriptions/sub_1"))
        .respond_with(json(&sub))
        .mount(&server)
        .await;

    let snapshot = client(&server)
        .subscription(&billing_domain::ids::SubscriptionRef::parse("sub_1").unwrap())
        .await
        .unwrap();

    let original: serde_json::Value = serde_json::from_str(&fixture("subscription.json")).unwrap();
    assert_eq!(
        snapshot.subscription.as_str(),
        original["id"].as_str().unwrap()
    );
    assert_eq!(
        snapshot.status,
        Some(billing_domain::model::SubscriptionStatus::PastDue)
    );
    assert_eq!(
        snapshot.price.unwrap().as_str(),
        original["items"]["data"][0]["price"]["id"]
            .as_str()
            .unwrap()
    );
    let r = &server.received_requests().await.unwrap()[0];
    assert_eq!(r.method.as_str(), "GET");
    assert_common_headers(r);
}

#[tokio::test]
async fn the_invoices_default_payment_wins_over_an_earlier_canceled_attempt() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/invoices/in_1"))
        .respond_with(json(
            r#"{"id":"in_1","object":"invoice","payments":{"object":"list","data":[
                {"object":"invoice_payment","is_default":false,"status":"canceled",
                 "payment":{"type":"payment_intent","payment_intent":"pi_old"}},
                {"object":"invoice_payment","is_default":true,"status":"open",
                 "payment":{"type":"payment_intent","payment_intent":"pi_current"}}]}}"#,
        ))
        .mount(&server)
        .await;

    let pi = client(&server)
        .invoice_payment_intent(&InvoiceRef::parse("in_1").unwrap(), None)
        .await
        .unwrap();

    assert_eq!(pi.as_ref().map(|p| p.as_str()), Some("pi_current"));
}
