//! Time moved by the emulator's test clock: a subscription paid through Checkout renews a
//! month later, the emulator emits the renewal's events in Stripe's order and delivers them
//! signed, and the service applies them (new period, second paid invoice and payment).
//! The checkout's own PaymentIntent event arrives before the session's and is applied once
//! the session links its customer.

use std::collections::HashMap;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use billing_domain::TenantId;
use billing_postgres::testing::TestDatabase;
use billing_server::config::Config;
use billing_server::startup::Application;
use billing_stripe_emulator::{EmulatorConfig, PriceSeed, StripeEmulator};
use serde_json::{json, Value};

use crate::common::{admin_token, server_env, tenant_token};

const PRICE: &str = "price_renewal_monthly";
const DAY: i64 = 86_400;

/// The service wired to an emulator that delivers its events to the service's webhook.
struct Emulated {
    base: String,
    client: reqwest::Client,
    emulator: StripeEmulator,
    handle: ServerHandle,
    _db: TestDatabase,
}

async fn emulated() -> Emulated {
    let db = tokio::task::spawn_blocking(TestDatabase::create)
        .await
        .unwrap()
        .expect("test database");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let emulator = StripeEmulator::start(EmulatorConfig {
        forward_to: Some(format!(
            "http://127.0.0.1:{port}/api/v1/billing/stripe/webhook"
        )),
        webhook_secret: "whsec_test_renewals".to_owned(),
        hosted_pages: false,
        prices: vec![PriceSeed {
            id: PRICE.to_owned(),
            product_name: "Pro".to_owned(),
            unit_amount: 4900,
            currency: "usd".to_owned(),
            interval: Some("month".to_owned()),
        }],
        ..EmulatorConfig::default()
    })
    .await
    .expect("emulator");
    let mut env = server_env(db.url(), &emulator.base_url());
    env.insert(
        "STRIPE_WEBHOOK_SECRET",
        emulator.webhook_secret().to_owned(),
    );
    env.insert("MIGRATE_ON_START", "true".to_owned());
    let view: HashMap<&str, &str> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (config, _) = Config::from_env(&view, false).expect("test configuration");
    let app = Application::build(&config, listener).expect("application");
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    Emulated {
        base: format!("http://127.0.0.1:{port}/api/v1/billing"),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
        emulator,
        handle,
        _db: db,
    }
}

impl Emulated {
    async fn get(&self, path: &str, token: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "GET {path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// A Stripe API call to the emulator (any test key is accepted).
    async fn stripe(&self, path: &str, form: &[(&str, String)]) -> Value {
        self.client
            .post(format!(
                "{}{path}",
                self.emulator.base_url().trim_end_matches('/')
            ))
            .bearer_auth("sk_test_fake_key_for_tests")
            .form(form)
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Waits until the emulator has nothing left to deliver.
    async fn delivered(&self) {
        let url = format!(
            "{}/__emulator/deliveries",
            self.emulator.base_url().trim_end_matches('/')
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let body: Value = self
                .client
                .get(&url)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let states: Vec<&str> = body["events"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|e| e["state"].as_str())
                .collect();
            assert!(
                !states.contains(&"failed"),
                "a delivery was given up: {body}"
            );
            if !states.contains(&"pending") {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "deliveries still pending: {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn period_end(tenant: &Value) -> i64 {
    let end = tenant["subscription"]["currentPeriodEnd"]
        .as_str()
        .expect("the tenant's subscription has a period end");
    chrono::DateTime::parse_from_rfc3339(end)
        .unwrap()
        .timestamp()
}

/// Whether `wanted` appears in `types` in this order (other events may come between).
fn in_order(types: &[String], wanted: &[&str]) -> bool {
    let mut rest = types.iter();
    wanted.iter().all(|w| rest.any(|t| t == w))
}

#[tokio::test]
async fn a_month_on_the_test_clock_renews_the_subscription_and_the_service_applies_it() {
    let app = emulated().await;
    let admin = admin_token();
    let created = app
        .client
        .post(format!("{}/plans", app.base))
        .bearer_auth(&admin)
        .json(
            &json!({"code": "plan-pro", "name": "Pro", "stripePriceId": PRICE,
                      "amount": 4900, "currency": "usd", "interval": "month"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let now = chrono::Utc::now().timestamp();
    let clock = app
        .stripe(
            "/v1/test_helpers/test_clocks",
            &[("frozen_time", now.to_string())],
        )
        .await;
    let clock = clock["id"].as_str().unwrap().to_owned();

    let tenant = TenantId::new();
    let token = tenant_token(tenant);
    let opened: Value = app
        .client
        .post(format!(
            "{}/stripe/checkout?tenantId={tenant}&planId=plan-pro",
            app.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = opened["sessionId"].as_str().unwrap();
    app.client
        .post(format!(
            "{}/__emulator/checkout/sessions/{session}/complete",
            app.emulator.base_url().trim_end_matches('/')
        ))
        .json(&json!({"card": "4242424242424242", "test_clock": clock}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();
    app.delivered().await;
    let subscribed = app.get(&format!("/tenants/{tenant}"), &token).await;
    assert_eq!(subscribed["status"], "active", "{subscribed}");
    let first_end = period_end(&subscribed);
    let events_before = app.emulator.event_types().len();

    app.stripe(
        &format!("/v1/test_helpers/test_clocks/{clock}/advance"),
        &[("frozen_time", (now + 32 * DAY).to_string())],
    )
    .await;
    app.delivered().await;

    let renewal: Vec<String> = app.emulator.event_types()[events_before..].to_vec();
    assert!(
        in_order(
            &renewal,
            &[
                "invoice.created",
                "invoice.finalized",
                "payment_intent.succeeded",
                "invoice.paid",
                "invoice.payment_succeeded",
                "customer.subscription.updated",
            ]
        ),
        "renewal events in Stripe's order: {renewal:?}"
    );
    let renewed = app.get(&format!("/tenants/{tenant}"), &token).await;
    assert_eq!(renewed["status"], "active", "{renewed}");
    assert_eq!(renewed["subscription"]["status"], "active", "{renewed}");
    let second_end = period_end(&renewed);
    assert!(
        (second_end - first_end - 30 * DAY).abs() <= 2 * DAY,
        "the period moved on a month: {first_end} -> {second_end}"
    );
    let invoices = app
        .get(&format!("/invoices?tenantId={tenant}&status=paid"), &token)
        .await;
    assert_eq!(invoices["data"].as_array().unwrap().len(), 2, "{invoices}");
    // The checkout's own PaymentIntent event came before `checkout.session.completed`,
    // when its customer was nobody's yet: recorded unmatched, then applied again once the
    // checkout linked the customer. The renewal's found the tenant by its customer.
    let payments = app
        .get(&format!("/payments?tenantId={tenant}"), &token)
        .await;
    assert_eq!(payments["data"].as_array().unwrap().len(), 2, "{payments}");
    let unmatched = app.get("/stripe/events?status=unmatched", &admin).await;
    assert_eq!(
        unmatched["data"].as_array().unwrap().len(),
        0,
        "{unmatched}"
    );

    app.handle.stop(true).await;
    app.emulator.stop().await;
}
