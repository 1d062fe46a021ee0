//! Self-service changes and admin refunds end to end (issue 16): the service wired to the
//! in-process emulator as `--dev` wires it (strict request validation: a parameter Stripe
//! refuses is a 400 there, and the call here would fail); a tenant pays through Checkout,
//! then cancels, resumes, changes plan and is refunded through the API. Each effect is
//! checked at Stripe (the emulator's state and its requests) and locally.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use billing_domain::TenantId;
use billing_postgres::testing::TestDatabase;
use billing_server::config::Config;
use billing_server::startup::{seed_dev_plans, start_dev_emulator, Application};
use billing_stripe_emulator::{Authentication, StripeEmulator};
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::common::{admin_token, tenant_token};

struct Running {
    _db: TestDatabase,
    emulator: StripeEmulator,
    stripe_key: String,
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
    let stripe_key = config
        .stripe
        .api_key
        .as_ref()
        .map(|k| k.expose_secret().to_owned())
        .expect("the dev emulator's key");
    seed_dev_plans(&config).await.expect("seed");
    let app = Application::build(&config, listener).expect("application");
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    Running {
        _db: db,
        emulator,
        stripe_key,
        handle,
        base: format!("http://127.0.0.1:{port}/api/v1/billing"),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
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

    async fn post(&self, path: &str, token: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// An object as Stripe (the emulator) holds it now.
    async fn stripe(&self, path: &str) -> Value {
        self.client
            .get(format!(
                "{}{path}",
                self.emulator.base_url().trim_end_matches('/')
            ))
            .bearer_auth(&self.stripe_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The distinct idempotency keys of the service's requests `method path`.
    fn keys_of(&self, method: &str, path: &str) -> (usize, HashSet<String>) {
        let requests: Vec<_> = self
            .emulator
            .requests()
            .into_iter()
            .filter(|r| r.method == method && r.path == path)
            .collect();
        let keys = requests
            .iter()
            .filter_map(|r| r.header("idempotency-key").map(str::to_owned))
            .collect();
        (requests.len(), keys)
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

    /// A tenant who paid for `plan` through Checkout: its id, token, Stripe subscription
    /// and recorded payment.
    async fn paid_tenant(&self, plan: &str) -> (TenantId, String, String, Value) {
        let tenant = TenantId::new();
        let token = tenant_token(tenant);
        let (status, body) = self
            .post(
                &format!("/stripe/checkout?tenantId={tenant}&planId={plan}"),
                &token,
                None,
            )
            .await;
        assert_eq!(status, 200, "checkout started: {body}");
        self.emulator
            .complete_checkout(
                body["sessionId"].as_str().unwrap(),
                "4242424242424242",
                Authentication::Pending,
            )
            .expect("the test card pays");
        let sub = self
            .eventually(&format!("/tenants/{tenant}/subscription"), &token, |s| {
                s["status"] == "active"
            })
            .await;
        assert_eq!(sub["status"], "active", "{sub}");
        let page = self
            .eventually(&format!("/payments?tenantId={tenant}"), &token, |p| {
                p["data"].as_array().is_some_and(|d| !d.is_empty())
            })
            .await;
        let payment = page["data"][0].clone();
        assert_eq!(payment["status"], "succeeded", "{page}");
        let stripe_sub = sub["stripeSubscriptionId"].as_str().unwrap().to_owned();
        (tenant, token, stripe_sub, payment)
    }

    async fn plan(&self, code: &str) -> Value {
        let (status, plan) = self.get(&format!("/plans/{code}"), &admin_token()).await;
        assert_eq!(status, 200, "{plan}");
        plan
    }

    async fn stop(self) {
        self.handle.stop(true).await;
        self.emulator.stop().await;
    }
}

#[tokio::test]
async fn cancel_at_period_end_resume_and_cancel_now_each_change_stripe_once() {
    let app = start().await;
    let (tenant, token, sub_id, _) = app.paid_tenant("plan-pro").await;
    let sub_path = format!("/v1/subscriptions/{sub_id}");
    let base = format!("/tenants/{tenant}/subscription");

    // Cancel at period end (the default), twice: one change at Stripe.
    let (status, first) = app.post(&format!("{base}/cancel"), &token, None).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["cancelAtPeriodEnd"], true, "{first}");
    assert_eq!(first["status"], "active");
    assert_eq!(app.stripe(&sub_path).await["cancel_at_period_end"], true);
    let (status, again) = app
        .post(
            &format!("{base}/cancel"),
            &token,
            Some(json!({"atPeriodEnd": true})),
        )
        .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["cancelAtPeriodEnd"], true);
    assert_eq!(app.keys_of("POST", &sub_path).0, 1, "one update at Stripe");
    let (_, shown) = app.get(&base, &token).await;
    assert_eq!(shown["cancelAtPeriodEnd"], true, "local state: {shown}");

    // Resume undoes it; a second resume has nothing to resume.
    let (status, resumed) = app.post(&format!("{base}/resume"), &token, None).await;
    assert_eq!(status, 200, "{resumed}");
    assert_eq!(resumed["cancelAtPeriodEnd"], false);
    assert_eq!(app.stripe(&sub_path).await["cancel_at_period_end"], false);
    let (status, problem) = app.post(&format!("{base}/resume"), &token, None).await;
    assert_eq!(
        (status, &problem["code"]),
        (409, &json!("nothing_to_resume"))
    );
    let (requests, keys) = app.keys_of("POST", &sub_path);
    assert_eq!(
        (requests, keys.len()),
        (2, 2),
        "cancel and undo: two intents"
    );

    // Cancel at period end again after the undo: a new intent, a new key, a change.
    let (status, third) = app.post(&format!("{base}/cancel"), &token, None).await;
    assert_eq!(status, 200, "{third}");
    assert_eq!(app.stripe(&sub_path).await["cancel_at_period_end"], true);
    assert_eq!(app.keys_of("POST", &sub_path).1.len(), 3);

    // Cancel now: DELETE at Stripe; then everything is 409 subscription_canceled.
    let (status, canceled) = app
        .post(
            &format!("{base}/cancel"),
            &token,
            Some(json!({"atPeriodEnd": false})),
        )
        .await;
    assert_eq!(status, 200, "{canceled}");
    assert_eq!(canceled["status"], "canceled", "{canceled}");
    assert!(canceled["canceledAt"].is_string());
    assert_eq!(app.stripe(&sub_path).await["status"], "canceled");
    for (path, body) in [
        ("cancel", Some(json!({"atPeriodEnd": false}))),
        ("resume", None),
        ("change-plan", Some(json!({"planId": "plan-basic"}))),
    ] {
        let (status, problem) = app.post(&format!("{base}/{path}"), &token, body).await;
        assert_eq!(
            (status, &problem["code"]),
            (409, &json!("subscription_canceled")),
            "{path}: {problem}"
        );
    }
    assert_eq!(
        app.keys_of("DELETE", &sub_path).0,
        1,
        "one cancel at Stripe"
    );
    let view = app
        .eventually(&format!("/tenants/{tenant}"), &token, |t| {
            t["status"] == "cancelled"
        })
        .await;
    assert_eq!(view["status"], "cancelled", "{view}");

    // Another tenant's token, a tenant with nothing live.
    let other = tenant_token(TenantId::new());
    let (status, _) = app.post(&format!("{base}/cancel"), &other, None).await;
    assert_eq!(status, 403);
    let lonely = TenantId::new();
    let (status, problem) = app
        .post(
            &format!("/tenants/{lonely}/subscription/cancel"),
            &admin_token(),
            None,
        )
        .await;
    assert_eq!(
        (status, &problem["code"]),
        (409, &json!("no_live_subscription"))
    );
    app.stop().await;
}

#[tokio::test]
async fn a_plan_change_is_previewed_then_made_once_even_when_sent_twice_at_once() {
    let app = start().await;
    let (tenant, token, sub_id, _) = app.paid_tenant("plan-basic").await;
    let pro = app.plan("plan-pro").await;
    let basic = app.plan("plan-basic").await;
    let base = format!("/tenants/{tenant}/subscription");
    let sub_path = format!("/v1/subscriptions/{sub_id}");

    // The preview: Stripe's next invoice with the prorations of the move.
    let (status, preview) = app
        .get(
            &format!("{base}/change-plan/preview?planId=plan-pro"),
            &token,
        )
        .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["currency"], pro["currency"]);
    let lines = preview["lines"].as_array().unwrap();
    let sum: i64 = lines.iter().map(|l| l["amount"].as_i64().unwrap()).sum();
    assert_eq!(preview["amountDue"].as_i64().unwrap(), sum, "{preview}");
    assert!(
        lines.iter().any(|l| l["proration"] == false
            && l["amount"] == pro["amount"]
            && l["stripePriceId"] == pro["stripePriceId"]),
        "the next period at the new price: {preview}"
    );
    let (status, none) = app
        .get(
            &format!("{base}/change-plan/preview?planId=plan-pro&prorationBehavior=none"),
            &token,
        )
        .await;
    assert_eq!(status, 200, "{none}");
    assert_eq!(none["amountDue"], pro["amount"], "no proration: {none}");
    let (status, problem) = app
        .get(&format!("{base}/change-plan/preview"), &token)
        .await;
    assert_eq!(
        (status, &problem["code"]),
        (400, &json!("invalid_parameter"))
    );

    // The same change sent twice at once: one change at Stripe.
    let body = json!({"planId": "plan-pro", "prorationBehavior": "none"});
    let path = format!("{base}/change-plan");
    let (a, b) = tokio::join!(
        app.post(&path, &token, Some(body.clone())),
        app.post(&path, &token, Some(body.clone()))
    );
    for (status, answer) in [&a, &b] {
        assert!(
            *status == 200 || (*status == 409 && answer["code"] == "plan_unchanged"),
            "{status} {answer}"
        );
    }
    let changed = if a.0 == 200 { &a.1 } else { &b.1 };
    assert_eq!(changed["planId"], pro["id"], "{changed}");
    let (_, keys) = app.keys_of("POST", &sub_path);
    assert_eq!(keys.len(), 1, "one change at Stripe: {keys:?}");
    let at_stripe = app.stripe(&sub_path).await;
    assert_eq!(
        at_stripe["items"]["data"][0]["price"]["id"], pro["stripePriceId"],
        "{at_stripe}"
    );
    assert_eq!(at_stripe["items"]["data"].as_array().unwrap().len(), 1);
    let (_, shown) = app.get(&base, &token).await;
    assert_eq!(shown["planId"], pro["id"]);

    // Sent again later: the plan is the current one.
    let (status, problem) = app.post(&path, &token, Some(body)).await;
    assert_eq!((status, &problem["code"]), (409, &json!("plan_unchanged")));
    // Unknown plan, bad proration, back to basic with an invoice at once.
    let (status, problem) = app
        .post(&path, &token, Some(json!({"planId": "plan-nope"})))
        .await;
    assert_eq!((status, &problem["code"]), (404, &json!("plan_not_found")));
    let (status, problem) = app
        .post(
            &path,
            &token,
            Some(json!({"planId": "plan-basic", "prorationBehavior": "sometimes"})),
        )
        .await;
    assert_eq!(
        (status, &problem["code"]),
        (422, &json!("validation_failed"))
    );
    let (status, back) = app
        .post(
            &path,
            &token,
            Some(json!({"planId": basic["id"], "prorationBehavior": "always_invoice"})),
        )
        .await;
    assert_eq!(status, 200, "{back}");
    assert_eq!(back["planId"], basic["id"]);
    assert_eq!(app.keys_of("POST", &sub_path).1.len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn ten_identical_refunds_at_once_make_one_and_partial_then_full_then_too_much() {
    let app = start().await;
    let admin = admin_token();

    // Ten identical full refunds at once: one refund at Stripe and here.
    let (_, token, _, payment) = app.paid_tenant("plan-pro").await;
    let id = payment["id"].as_str().unwrap().to_owned();
    let path = format!("/payments/{id}/refunds");
    let answers = futures::future::join_all((0..10).map(|_| app.post(&path, &admin, None))).await;
    let mut made = HashSet::new();
    for (status, answer) in &answers {
        match status {
            201 => {
                assert_eq!(answer["amount"], payment["amount"], "{answer}");
                made.insert(answer["refundId"].as_str().unwrap().to_owned());
            }
            409 => assert_eq!(answer["code"], "refund_exceeds_payment", "{answer}"),
            other => panic!("unexpected {other}: {answer}"),
        }
    }
    assert_eq!(made.len(), 1, "{answers:?}");
    let refunds_at_stripe = |app: &Running| {
        app.emulator
            .events()
            .iter()
            .filter(|e| e["type"] == "refund.created")
            .count()
    };
    assert_eq!(refunds_at_stripe(&app), 1);
    let detail = app
        .eventually(&format!("/payments/{id}"), &token, |p| {
            p["status"] == "refunded"
        })
        .await;
    assert_eq!(detail["status"], "refunded", "{detail}");
    assert_eq!(detail["refunds"].as_array().unwrap().len(), 1, "{detail}");
    let (status, problem) = app.post(&path, &admin, None).await;
    assert_eq!(
        (status, &problem["code"]),
        (409, &json!("refund_exceeds_payment"))
    );

    // Partial, then the rest by default, then one cent too much.
    let (_, token, _, payment) = app.paid_tenant("plan-pro").await;
    let id = payment["id"].as_str().unwrap().to_owned();
    let path = format!("/payments/{id}/refunds");
    let total = payment["amount"].as_i64().unwrap();
    let (status, partial) = app
        .post(
            &path,
            &admin,
            Some(json!({"amount": 1000, "reason": "requested_by_customer"})),
        )
        .await;
    assert_eq!(status, 201, "{partial}");
    assert_eq!(partial["amount"], 1000);
    let (_, shown) = app.get(&format!("/payments/{id}"), &token).await;
    assert_eq!(shown["status"], "partially_refunded", "at once: {shown}");
    assert_eq!(shown["amountRefunded"], 1000);
    let (status, problem) = app
        .post(&path, &admin, Some(json!({"amount": total - 999})))
        .await;
    assert_eq!(
        (status, &problem["code"]),
        (409, &json!("refund_exceeds_payment"))
    );
    let (status, rest) = app.post(&path, &admin, Some(json!({}))).await;
    assert_eq!(status, 201, "{rest}");
    assert_eq!(rest["amount"], total - 1000);
    assert_ne!(rest["refundId"], partial["refundId"]);
    let detail = app
        .eventually(&format!("/payments/{id}"), &token, |p| {
            p["status"] == "refunded" && p["refunds"].as_array().is_some_and(|r| r.len() == 2)
        })
        .await;
    assert_eq!(detail["amountRefunded"], total, "{detail}");
    assert_eq!(refunds_at_stripe(&app), 3);
    let (status, problem) = app.post(&path, &admin, Some(json!({"amount": 1}))).await;
    assert_eq!(
        (status, &problem["code"]),
        (409, &json!("refund_exceeds_payment"))
    );

    // Admin only; unknown payment; bad input.
    let (status, _) = app.post(&path, &token, None).await;
    assert_eq!(status, 403);
    let (status, problem) = app
        .post(
            &format!("/payments/{}/refunds", billing_domain::PaymentId::new()),
            &admin,
            None,
        )
        .await;
    assert_eq!(
        (status, &problem["code"]),
        (404, &json!("payment_not_found"))
    );
    let (status, _) = app
        .post(&path, &admin, Some(json!({"reason": "boredom"})))
        .await;
    assert_eq!(status, 422);
    let (status, _) = app.post(&path, &admin, Some(json!({"amount": 0}))).await;
    assert_eq!(status, 422);
    app.stop().await;
}
