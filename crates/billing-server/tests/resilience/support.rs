//! What the resilience scenarios share: the built server started as a real process (and
//! killed by a guard), its environment, tokens, Stripe-shaped events signed like Stripe
//! signs them, a Stripe-like sender that redelivers until it gets a 2xx, and SQL through
//! `psql`.
//!
//! Copied in spirit from `tests/api/helpers.rs` (test binaries share no code); kept small.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use billing_domain::TenantId;
use billing_postgres::testing::TestDatabase;
use rand::RngExt;
use serde_json::{json, Value};

pub use crate::common::{admin_token, count, server_env, sql, tenant_token, WEBHOOK_SECRET};
/// The Stripe prices of the two plans the scenarios create.
pub const BASIC_PRICE: &str = "price_1Rq3oaHx4KpL29aTqhCv4Gt4";
pub const PRO_PRICE: &str = "price_1Rq48kHx4KpL29aTV5PnnbOR";

/// A fresh, migrated database (or an empty one when `migrated` is false).
pub async fn database(migrated: bool) -> TestDatabase {
    tokio::task::spawn_blocking(move || {
        if migrated {
            TestDatabase::create()
        } else {
            TestDatabase::create_empty()
        }
    })
    .await
    .unwrap()
    .expect("test database (is PostgreSQL running?)")
}

/// The built `billing-server` binary running as a child process; killed on drop.
pub struct ServerProcess {
    child: Child,
    pub address: String,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl ServerProcess {
    /// Starts the binary with exactly `env` (plus `PORT`) and waits until `/health/ready`
    /// answers 200. Set `RESILIENCE_LOG=1` to see its logs.
    pub async fn start(env: &BTreeMap<&'static str, String>) -> Self {
        // The free port may be taken between the probe and the bind: try a few.
        for _ in 0..3 {
            let port = free_port();
            let mut command = Command::new(env!("CARGO_BIN_EXE_billing-server"));
            command
                .arg("serve")
                .env_clear()
                .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
                .env("PORT", port.to_string())
                .stdin(Stdio::null());
            if std::env::var_os("RESILIENCE_LOG").is_none() {
                command.stdout(Stdio::null()).stderr(Stdio::null());
            }
            let child = command.spawn().expect("spawn billing-server");
            let mut server = Self {
                child,
                address: format!("http://127.0.0.1:{port}"),
            };
            if server.wait_ready(Duration::from_secs(30)).await {
                return server;
            }
        }
        panic!("billing-server did not become ready");
    }

    /// Whether the process is still running (it was never restarted).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    async fn wait_ready(&mut self, within: Duration) -> bool {
        let client = client(Duration::from_secs(2));
        let started = Instant::now();
        while started.elapsed() < within {
            if !self.is_running() {
                return false;
            }
            if let Ok(r) = client.get(self.url("/health/ready")).send().await {
                if r.status() == 200 {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// `host:port`, for raw TCP clients.
    pub fn socket_addr(&self) -> String {
        self.address.trim_start_matches("http://").to_owned()
    }
}

pub fn client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder().timeout(timeout).build().unwrap()
}

/// Creates the two plans every scenario's subscription events refer to.
pub async fn create_plans(server: &ServerProcess) {
    let client = client(Duration::from_secs(10));
    for (code, price) in [("plan-basic", BASIC_PRICE), ("plan-pro", PRO_PRICE)] {
        let response = client
            .post(server.url("/api/v1/billing/plans"))
            .bearer_auth(admin_token())
            .json(&json!({
                "code": code, "name": code, "stripePriceId": price,
                "amount": 4900, "currency": "usd", "interval": "month",
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "create plan {code}");
    }
}

// ---------------------------------------------------------------------------------------
// Events

fn fixture(kind: &str) -> Value {
    static CACHE: OnceLock<BTreeMap<String, Value>> = OnceLock::new();
    let all = CACHE.get_or_init(|| {
        let dir = format!(
            "{}/../billing-stripe/tests/fixtures/events",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .map(|p| {
                let name = p.file_stem().unwrap().to_string_lossy().into_owned();
                let json = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
                (name, json)
            })
            .collect()
    });
    all.get(kind)
        .unwrap_or_else(|| panic!("no fixture {kind}"))
        .clone()
}

/// A Stripe event: its id and the exact body Stripe would send (every delivery of one
/// event carries the same bytes).
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub kind: &'static str,
    pub body: String,
}

/// Who an event is about.
#[derive(Debug, Clone)]
pub struct Party {
    pub tenant: TenantId,
    pub customer: String,
}

impl Party {
    pub fn new(tag: &str) -> Self {
        Self {
            tenant: TenantId::new(),
            customer: format!("cus_{tag}"),
        }
    }
}

fn event(kind: &'static str, id: &str, created: i64, edit: impl FnOnce(&mut Value)) -> Event {
    let mut e = fixture(kind);
    e["id"] = json!(id);
    e["created"] = json!(created);
    edit(&mut e["data"]["object"]);
    Event {
        id: id.to_owned(),
        kind,
        body: serde_json::to_string(&e).unwrap(),
    }
}

fn own(object: &mut Value, party: &Party) {
    object["metadata"] = json!({"tenantId": party.tenant.to_string()});
    object["customer"] = json!(party.customer);
}

/// `payment_intent.succeeded` for `pi` (charge `ch`), for `party`, of `amount` cents.
pub fn payment_succeeded(
    id: &str,
    created: i64,
    party: &Party,
    pi: &str,
    ch: &str,
    amount: i64,
) -> Event {
    event("payment_intent.succeeded", id, created, |o| {
        own(o, party);
        o["id"] = json!(pi);
        o["latest_charge"] = json!(ch);
        o["amount"] = json!(amount);
        o["amount_received"] = json!(amount);
        o["client_secret"] = json!(format!("{pi}_secret_test"));
    })
}

/// `payment_intent.payment_failed` for `pi` (failed charge `ch`).
pub fn payment_failed(id: &str, created: i64, party: &Party, pi: &str, ch: &str) -> Event {
    event("payment_intent.payment_failed", id, created, |o| {
        own(o, party);
        o["id"] = json!(pi);
        o["latest_charge"] = json!(ch);
        o["last_payment_error"]["charge"] = json!(ch);
        o["client_secret"] = json!(format!("{pi}_secret_test"));
    })
}

/// `invoice.payment_failed` or `invoice.payment_succeeded` for Stripe invoice `invoice`.
pub fn invoice_event(
    kind: &'static str,
    id: &str,
    created: i64,
    party: &Party,
    invoice: &str,
    subscription: Option<&str>,
    attempt: i64,
) -> Event {
    assert!(kind == "invoice.payment_failed" || kind == "invoice.payment_succeeded");
    event(kind, id, created, |o| {
        own(o, party);
        o["id"] = json!(invoice);
        o["number"] = json!(format!("N-{invoice}"));
        o["attempt_count"] = json!(attempt);
        let details = &mut o["parent"]["subscription_details"];
        details["metadata"] = json!({"tenantId": party.tenant.to_string()});
        details["subscription"] = json!(subscription);
    })
}

/// `customer.subscription.updated` (or `.deleted`) for `sub`, now in `status` on `price`.
pub fn subscription_event(
    kind: &'static str,
    id: &str,
    created: i64,
    party: &Party,
    sub: &str,
    status: &str,
    price: &str,
) -> Event {
    assert!(kind == "customer.subscription.updated" || kind == "customer.subscription.deleted");
    event(kind, id, created, |o| {
        own(o, party);
        o["id"] = json!(sub);
        o["status"] = json!(status);
        if let Some(items) = o.pointer_mut("/items/data").and_then(Value::as_array_mut) {
            for item in items {
                item["subscription"] = json!(sub);
                item["price"]["id"] = json!(price);
                if item.get("plan").is_some_and(Value::is_object) {
                    item["plan"]["id"] = json!(price);
                }
            }
        }
    })
}

/// `checkout.session.completed` that starts subscription `sub` on plan `plan_code`.
pub fn checkout_completed(
    id: &str,
    created: i64,
    party: &Party,
    sub: &str,
    plan_code: &str,
) -> Event {
    event("checkout.session.completed", id, created, |o| {
        o["metadata"] = json!({"tenantId": party.tenant.to_string(), "planId": plan_code});
        o["client_reference_id"] = json!(party.tenant.to_string());
        o["customer"] = json!(party.customer);
        o["subscription"] = json!(sub);
        o["id"] = json!(format!("cs_test_{id}"));
    })
}

// ---------------------------------------------------------------------------------------
// Delivering like Stripe

/// What one event's deliveries came to.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// HTTP attempts until the first 2xx.
    pub attempts: u32,
    /// `outcome` of the 2xx answer.
    pub outcome: String,
}

/// Posts `event` to the server's webhook, signed now (each attempt re-signed, as Stripe
/// does), until it answers 2xx; non-2xx answers and transport errors are redelivered after
/// a short backoff. Panics once `give_up` has passed.
pub async fn deliver(
    client: &reqwest::Client,
    server: &str,
    event: &Event,
    give_up: Instant,
) -> Delivered {
    let url = format!("{server}/api/v1/billing/stripe/webhook");
    let mut attempts = 0u32;
    let mut last = String::new();
    loop {
        assert!(
            Instant::now() < give_up,
            "event {} still refused after {attempts} attempts (last: {last})",
            event.id
        );
        attempts += 1;
        let now = chrono::Utc::now().timestamp();
        let signature = billing_stripe::sign(WEBHOOK_SECRET, now, event.body.as_bytes());
        let sent = client
            .post(&url)
            .header("content-type", "application/json")
            .header("stripe-signature", signature)
            .body(event.body.clone())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                let body: Value = r.json().await.unwrap_or(Value::Null);
                return Delivered {
                    attempts,
                    outcome: body["outcome"].as_str().unwrap_or_default().to_owned(),
                };
            }
            Ok(r) => {
                let status = r.status().as_u16();
                assert!(
                    status >= 500,
                    "event {} refused with {status}: {}",
                    event.id,
                    r.text().await.unwrap_or_default()
                );
                last = format!("HTTP {status}");
            }
            Err(e) => last = format!("transport: {e}"),
        }
        // Stripe backs off for hours; a test backs off for milliseconds, with jitter.
        let base = 40u64.saturating_mul(1 << attempts.min(4));
        let jitter = rand::rng().random_range(0..base);
        tokio::time::sleep(Duration::from_millis(base + jitter)).await;
    }
}
