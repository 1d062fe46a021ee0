//! `spawn_app()`: the real server on a random port, its own database, and a local fake
//! of Stripe; plus token and webhook-signing helpers.

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use billing_domain::TenantId;
use billing_postgres::testing::TestDatabase;
use billing_server::config::Config;
use billing_server::startup::Application;
use billing_stripe_emulator::FakeStripe;
use serde_json::{json, Value};

pub use crate::common::{admin_token, tenant_token, WEBHOOK_SECRET};

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: TestDatabase,
    pub stripe: FakeStripe,
    handle: ServerHandle,
    env: BTreeMap<&'static str, String>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Stop accepting work before the database is dropped under it.
        drop(self.handle.stop(false));
    }
}

/// The service as configured for tests; `tweak` may override any variable.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut BTreeMap<&'static str, String>)) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        billing_server::telemetry::init(billing_server::config::LogFormat::Pretty);
    }
    let db = tokio::task::spawn_blocking(TestDatabase::create)
        .await
        .unwrap()
        .expect("test database");
    let stripe = FakeStripe::start().await;
    let mut env = crate::common::server_env(db.url(), &stripe.base_url());
    tweak(&mut env);
    let (address, handle) = start(&env);
    TestApp {
        address,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        db,
        stripe,
        handle,
        env,
    }
}

fn start(env: &BTreeMap<&'static str, String>) -> (String, ServerHandle) {
    let view: HashMap<&str, &str> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (config, _) = Config::from_env(&view, false).expect("test configuration");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let app = Application::build(&config, listener).expect("application");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    (address, handle)
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

impl TestApp {
    /// Stops the server gracefully and starts a new one on the same database.
    pub async fn restart(&mut self) {
        self.handle.stop(true).await;
        let (address, handle) = start(&self.env);
        self.address = address;
        self.handle = handle;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn post_empty(&self, path: &str, token: &str) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    /// Creates a plan as admin; returns its JSON.
    pub async fn create_plan(&self, code: &str, price: &str, trial_days: Option<u32>) -> Value {
        let response = self
            .post(
                "/api/v1/billing/plans",
                &admin_token(),
                &json!({
                    "code": code,
                    "name": format!("Plan {code}"),
                    "stripePriceId": price,
                    "amount": 4900,
                    "currency": "usd",
                    "interval": "month",
                    "trialDays": trial_days,
                }),
            )
            .await;
        assert_eq!(response.status(), 201, "create plan");
        response.json().await.unwrap()
    }

    /// Creates an invoice as admin; returns its JSON.
    pub async fn create_invoice(&self, tenant: TenantId, number: &str, amount: i64) -> Value {
        let response = self
            .post(
                "/api/v1/billing/invoices",
                &admin_token(),
                &json!({
                    "tenantId": tenant.to_string(),
                    "number": number,
                    "amountDue": amount,
                    "currency": "usd",
                    "dueDate": "2026-12-31",
                    "description": "Consulting",
                }),
            )
            .await;
        assert_eq!(response.status(), 201, "create invoice");
        response.json().await.unwrap()
    }

    /// Posts a webhook body signed now with the test secret.
    pub async fn webhook(&self, body: &str) -> reqwest::Response {
        let now = chrono::Utc::now().timestamp();
        let signature = billing_stripe::sign(WEBHOOK_SECRET, now, body.as_bytes());
        self.webhook_signed(body, Some(&signature)).await
    }

    pub async fn webhook_signed(&self, body: &str, signature: Option<&str>) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url("/api/v1/billing/stripe/webhook"))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(signature) = signature {
            request = request.header("stripe-signature", signature);
        }
        request.send().await.unwrap()
    }

    /// Runs one SQL query returning a single integer.
    pub fn count(&self, sql: &str) -> i64 {
        crate::common::count(self.db.url(), sql)
    }

    /// Runs one SQL query returning a single value, as text.
    pub fn scalar(&self, sql: &str) -> String {
        crate::common::sql(self.db.url(), sql)
    }
}

/// A sample event from Stripe's reference, with `edit` applied to its JSON.
pub fn sample_event(kind: &str, edit: impl FnOnce(&mut Value)) -> String {
    let path = format!(
        "{}/../billing-stripe/tests/fixtures/events/{kind}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut event: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut event);
    serde_json::to_string(&event).unwrap()
}

pub async fn problem(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        content_type.starts_with("application/problem+json"),
        "{status}: {content_type}"
    );
    (status, response.json().await.unwrap())
}
