//! Refunds and disputes end to end (issue 14): the service wired to the in-process
//! emulator as `--dev` wires it; a tenant pays through Checkout, then the emulator's
//! controls refund the charge "from the Dashboard" and open and close disputes, and the
//! signed webhooks they send bring the payment to the state the API shows.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use billing_domain::TenantId;
use billing_postgres::testing::TestDatabase;
use billing_server::config::Config;
use billing_server::startup::{seed_dev_plans, start_dev_emulator, Application};
use billing_stripe_emulator::{Authentication, StripeEmulator};
use serde_json::{json, Value};

use crate::common::{admin_token, tenant_token};

struct Running {
    _db: TestDatabase,
    emulator: StripeEmulator,
    handle: actix_web::dev::ServerHandle,
    base: String,
    client: reqwest::Client,
}

async fn start() -> Running {
    let db = tokio::task::spawn_blocking(TestDatabase::create)
        .await
        .unwrap()
        .expect("test database");
    let mut env = crate::common::server_env(db.url(), "http://unused.invalid");
    for var in ["STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE"] {
        env.remove(var);
    }
    let view: HashMap<&str, &str> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (mut config, _) = Config::from_env(&view, true).expect("dev configuration");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let emulator = start_dev_emulator(
        &mut config,
        SocketAddr::from(([127, 0, 0, 1], 0)),
        format!("http://127.0.0.1:{port}/api/v1/billing/stripe/webhook"),
    )
    .await
    .expect("emulator");
    seed_dev_plans(&config).await.expect("seed");
    let app = Application::build(&config, listener).expect("application");
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    Running {
        _db: db,
        emulator,
        handle,
        base: format!("http://127.0.0.1:{port}/api/v1/billing"),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap(),
    }
}

impl Running {
    async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A control of the emulator (`/__emulator/…`).
    async fn control(&self, path: &str, body: Value) -> Value {
        let response = self
            .client
            .post(format!(
                "{}/__emulator/{path}",
                self.emulator.base_url().trim_end_matches('/')
            ))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "control {path}");
        response.json().await.unwrap()
    }

    /// Polls `GET path` until `done` holds (or 10 s pass); the last answer.
    async fn eventually(&self, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (_, body) = self.get(path, token).await;
            if done(&body) || Instant::now() > deadline {
                return body;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A tenant who paid for `plan-pro` through Checkout, and its recorded payment.
    async fn paid_tenant(&self) -> (String, Value) {
        let tenant = TenantId::new();
        let token = tenant_token(tenant);
        let response = self
            .client
            .post(format!(
                "{}/stripe/checkout?tenantId={tenant}&planId=plan-pro",
                self.base
            ))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "checkout started");
        let body: Value = response.json().await.unwrap();
        self.emulator
            .complete_checkout(
                body["sessionId"].as_str().unwrap(),
                "4242424242424242",
                Authentication::Pending,
            )
            .expect("the test card pays");
        // Checkout's `payment_intent.succeeded` comes before `checkout.session.completed`
        // links the customer; the service applies it again once the checkout does.
        let page = self
            .eventually(&format!("/payments?tenantId={tenant}"), &token, |p| {
                p["data"].as_array().is_some_and(|d| !d.is_empty())
            })
            .await;
        let payment = page["data"][0].clone();
        assert_eq!(payment["status"], "succeeded", "{page}");
        assert!(payment["stripeChargeId"].is_string(), "{payment}");
        (token, payment)
    }

    async fn payment(&self, payment: &Value, token: &str, done: impl Fn(&Value) -> bool) -> Value {
        let id = payment["id"].as_str().unwrap();
        self.eventually(&format!("/payments/{id}"), token, done)
            .await
    }

    async fn stop(self) {
        self.handle.stop(true).await;
        self.emulator.stop().await;
    }
}

#[tokio::test]
async fn a_partial_refund_and_a_won_dispute_then_a_full_refund_and_a_lost_dispute() {
    let app = start().await;

    // A partial refund from the Dashboard, then a dispute the merchant wins.
    let (token, payment) = app.paid_tenant().await;
    let charge = payment["stripeChargeId"].as_str().unwrap().to_owned();
    let amount = payment["amount"].as_i64().unwrap();
    app.control(
        &format!("charges/{charge}/refund"),
        json!({"amount": 1000, "reason": "requested_by_customer"}),
    )
    .await;
    let partial = app
        .payment(&payment, &token, |p| p["status"] == "partially_refunded")
        .await;
    assert_eq!(partial["status"], "partially_refunded", "{partial}");
    assert_eq!(partial["amountRefunded"], 1000);
    assert_eq!(partial["refunds"].as_array().unwrap().len(), 1, "{partial}");
    assert_eq!(partial["refunds"][0]["status"], "succeeded");
    assert_eq!(partial["refunds"][0]["reason"], "requested_by_customer");

    let dispute = app
        .control(
            &format!("charges/{charge}/dispute"),
            json!({"reason": "fraudulent"}),
        )
        .await;
    let disputed = app
        .payment(&payment, &token, |p| p["status"] == "disputed")
        .await;
    assert_eq!(disputed["status"], "disputed", "{disputed}");
    assert_eq!(disputed["disputes"][0]["stripeDisputeId"], dispute["id"]);
    let dispute_id = dispute["id"].as_str().unwrap();
    app.control(
        &format!("disputes/{dispute_id}/close"),
        json!({"outcome": "won"}),
    )
    .await;
    let won = app
        .payment(&payment, &token, |p| p["disputes"][0]["status"] == "won")
        .await;
    assert_eq!(won["disputes"][0]["status"], "won", "{won}");
    assert_eq!(
        won["status"], "partially_refunded",
        "back to its refund status"
    );
    assert_eq!(won["amountRefunded"], 1000);

    // A second payment refunded in full, then a dispute lost.
    let (token, payment) = app.paid_tenant().await;
    let charge = payment["stripeChargeId"].as_str().unwrap().to_owned();
    app.control(&format!("charges/{charge}/refund"), json!({}))
        .await;
    let full = app
        .payment(&payment, &token, |p| p["status"] == "refunded")
        .await;
    assert_eq!(full["status"], "refunded", "{full}");
    assert_eq!(full["amountRefunded"], amount);
    let dispute = app
        .control(&format!("charges/{charge}/dispute"), json!({}))
        .await;
    let dispute_id = dispute["id"].as_str().unwrap();
    app.control(
        &format!("disputes/{dispute_id}/close"),
        json!({"outcome": "lost"}),
    )
    .await;
    let lost = app
        .payment(&payment, &token, |p| p["status"] == "dispute_lost")
        .await;
    assert_eq!(lost["status"], "dispute_lost", "{lost}");
    assert_eq!(lost["disputes"][0]["status"], "lost");

    // The admin's list of disputes, by status; a tenant may not list them.
    let (_, lost_list) = app.get("/disputes?status=lost", &admin_token()).await;
    assert_eq!(
        lost_list["data"].as_array().unwrap().len(),
        1,
        "{lost_list}"
    );
    assert_eq!(lost_list["data"][0]["stripeDisputeId"], dispute["id"]);
    let (_, all) = app.get("/disputes?limit=1", &admin_token()).await;
    assert_eq!(all["data"].as_array().unwrap().len(), 1);
    assert!(all["nextCursor"].is_string(), "a second page: {all}");
    let (status, _) = app.get("/disputes", &token).await;
    assert_eq!(status, 403);

    // Every event was applied once; none was left unmatched.
    let (_, unmatched) = app
        .get("/stripe/events?status=unmatched&limit=100", &admin_token())
        .await;
    let kinds: Vec<&str> = unmatched["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["type"].as_str())
        .filter(|k| k.starts_with("charge.") || k.starts_with("refund."))
        .collect();
    assert!(kinds.is_empty(), "unmatched: {kinds:?}");

    // The existing webhook metric labels the new types by type and outcome.
    let metrics = app
        .client
        .get(app.base.replace("/api/v1/billing", "/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for kind in [
        "charge.refunded",
        "refund.created",
        "charge.dispute.created",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.closed",
        "charge.dispute.funds_reinstated",
    ] {
        let line = format!("billing_webhook_events_total{{outcome=\"processed\",type=\"{kind}\"}}");
        assert!(metrics.contains(&line), "{line} in /metrics");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_failed_dashboard_refund_gives_the_amount_back_and_another_tenant_gets_403() {
    let app = start().await;
    let (token, payment) = app.paid_tenant().await;
    let charge = payment["stripeChargeId"].as_str().unwrap().to_owned();

    app.control(
        &format!("charges/{charge}/refund"),
        json!({"amount": 500, "fail": true}),
    )
    .await;
    let failed = app
        .payment(&payment, &token, |p| p["refunds"][0]["status"] == "failed")
        .await;

    assert_eq!(failed["refunds"][0]["status"], "failed", "{failed}");
    assert_eq!(failed["status"], "succeeded");
    assert_eq!(failed["amountRefunded"], 0);
    let id = payment["id"].as_str().unwrap();
    let (status, body) = app
        .get(&format!("/payments/{id}"), &tenant_token(TenantId::new()))
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = app
        .get(
            &format!("/payments/{}", billing_domain::PaymentId::new()),
            &admin_token(),
        )
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["code"], "payment_not_found");
    app.stop().await;
}
