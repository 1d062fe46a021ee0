//! The service as `billing-server --dev` runs it without `STRIPE_API_KEY` — the in-process
//! Stripe emulator delivering its signed events to the service's webhook, the dev plans
//! seeded — on random ports with a database of its own; and bounded polling. Shared by the
//! API and browser tests.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use billing_domain::TenantId;
use billing_postgres::testing::TestDatabase;
use billing_server::config::Config;
use billing_server::startup::{
    dev_checkout_success_url, seed_dev_plans, start_dev_emulator, Application,
};
use billing_stripe_emulator::StripeEmulator;
use serde_json::Value;

use super::{admin_token, tenant_token};

/// How long one wait for a page or an API state may take.
pub const WAIT: Duration = Duration::from_secs(20);

/// Polls `probe` every 100 ms until it gives `Some`, for at most [`WAIT`]; then fails
/// naming `what` and the last value seen.
#[allow(
    clippy::panic,
    reason = "a wait that runs out fails the test, naming what it waited for"
)]
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) if Instant::now() > deadline => {
                panic!("{what}: not within {WAIT:?}; last seen: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// The service as `--dev` runs it without `STRIPE_API_KEY` (the in-process emulator, the
/// dev plans seeded), on random ports with a database of its own.
pub struct DevService {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub emulator: StripeEmulator,
    pub http: reqwest::Client,
    handle: ServerHandle,
    _db: TestDatabase,
}

impl DevService {
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Like [`Self::start`], with `tweak` changing the environment first.
    pub async fn start_with(tweak: impl FnOnce(&mut BTreeMap<&'static str, String>)) -> Self {
        let db = tokio::task::spawn_blocking(TestDatabase::create)
            .await
            .unwrap()
            .expect("test database");
        let mut env = crate::common::server_env(db.url(), "http://unused.invalid");
        for var in ["STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE"] {
            env.remove(var);
        }
        tweak(&mut env);
        let view: HashMap<&str, &str> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (mut config, _) = Config::from_env(&view, true).expect("dev configuration");
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let base = format!("http://127.0.0.1:{port}");
        let emulator = start_dev_emulator(
            &mut config,
            SocketAddr::from(([127, 0, 0, 1], 0)),
            format!("{base}/api/v1/billing/stripe/webhook"),
        )
        .await
        .expect("emulator");
        // As `main` does in `--dev` without CHECKOUT_SUCCESS_URL: the browser comes back
        // to the emulator's page of the completed session, which shows its receipt.
        config.stripe.checkout_success_url = dev_checkout_success_url(&emulator);
        seed_dev_plans(&config).await.expect("seed");
        let app = Application::build(&config, listener).expect("application");
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        Self {
            base,
            emulator,
            http,
            handle,
            _db: db,
        }
    }

    /// The service's database URL (tests/api/catchup.rs reads the ledger's sources).
    pub fn database_url(&self) -> &str {
        self._db.url()
    }

    /// `GET /api/v1/billing{path}` with `token`: status and JSON body.
    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}/api/v1/billing{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// `POST /api/v1/billing{path}` with `token`; the 200 answer's JSON.
    pub async fn post(&self, path: &str, token: &str) -> Value {
        let response = self
            .http
            .post(format!("{}/api/v1/billing{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!(status, 200, "POST {path}: {body}");
        body
    }

    /// Starts a checkout of `plan` for a new tenant: the tenant, its token and the
    /// session's URL.
    pub async fn start_checkout(&self, plan: &str) -> (TenantId, String, String) {
        let tenant = TenantId::new();
        let token = tenant_token(tenant);
        let body = self
            .post(
                &format!("/stripe/checkout?tenantId={tenant}&planId={plan}"),
                &token,
            )
            .await;
        let url = body["sessionUrl"].as_str().expect("sessionUrl").to_owned();
        (tenant, token, url)
    }

    /// The tenant's view (`GET /tenants/{id}`).
    pub async fn tenant(&self, tenant: TenantId, token: &str) -> Value {
        self.get(&format!("/tenants/{tenant}"), token).await.1
    }

    /// Waits until the API shows `tenant` active with a subscription; returns the view.
    pub async fn wait_until_active(&self, tenant: TenantId, token: &str) -> Value {
        eventually("the tenant active with its subscription", || async {
            let view = self.tenant(tenant, token).await;
            if view["status"] == "active" && view["subscription"].is_object() {
                Ok(view)
            } else {
                Err(view.to_string())
            }
        })
        .await
    }

    /// The id (UUID) of the plan with `code`.
    pub async fn plan_id(&self, code: &str) -> String {
        let (status, plan) = self.get(&format!("/plans/{code}"), &admin_token()).await;
        assert_eq!(status, 200, "{plan}");
        plan["id"].as_str().unwrap().to_owned()
    }

    /// The service's database URL (for SQL checks).
    pub fn db_url(&self) -> &str {
        self._db.url()
    }

    pub async fn stop(self) {
        self.handle.stop(true).await;
        self.emulator.stop().await;
    }
}
