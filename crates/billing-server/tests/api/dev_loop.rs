//! `--dev` without `STRIPE_API_KEY`: the service wired to the in-process emulator as
//! `main` wires it; a checkout started through the API and paid on the emulator makes the
//! tenant active through the emulator's signed webhooks.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use billing_domain::TenantId;
use billing_postgres::testing::TestDatabase;
use billing_server::config::Config;
use billing_server::startup::{seed_dev_plans, start_dev_emulator, Application, DEV_PLANS};
use billing_stripe_emulator::Authentication;
use serde_json::Value;

use crate::common::{admin_token, tenant_token};

#[tokio::test]
async fn dev_mode_checkout_paid_on_the_emulator_makes_the_tenant_active() {
    let db = tokio::task::spawn_blocking(TestDatabase::create)
        .await
        .unwrap()
        .expect("test database");
    let mut env = crate::common::server_env(db.url(), "http://unused.invalid");
    for var in ["STRIPE_API_KEY", "STRIPE_WEBHOOK_SECRET", "STRIPE_API_BASE"] {
        env.remove(var);
    }
    let view: HashMap<&str, &str> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (mut config, made_up) = Config::from_env(&view, true).expect("dev configuration");
    assert!(config.stripe.api_key.is_none());
    assert!(made_up.filled.contains(&"STRIPE_API_KEY"));

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let emulator = start_dev_emulator(
        &mut config,
        SocketAddr::from(([127, 0, 0, 1], 0)),
        format!("http://127.0.0.1:{port}/api/v1/billing/stripe/webhook"),
    )
    .await
    .expect("emulator");
    assert_eq!(
        config.stripe.api_base.as_str().trim_end_matches('/'),
        emulator.base_url().trim_end_matches('/')
    );
    assert_eq!(config.stripe.webhook_secrets.len(), 1);
    assert!(emulator.webhook_secret().starts_with("whsec_test_"));

    assert!(
        seed_dev_plans(&config).await.expect("seed"),
        "empty table seeded"
    );
    assert!(
        !seed_dev_plans(&config).await.expect("seed"),
        "seeded only once"
    );

    let app = Application::build(&config, listener).expect("application");
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let base = format!("http://127.0.0.1:{port}/api/v1/billing");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    let plans: Value = client
        .get(format!("{base}/plans"))
        .bearer_auth(admin_token())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let plans = plans
        .as_array()
        .or_else(|| plans["items"].as_array())
        .cloned();
    let codes: Vec<String> = plans
        .unwrap_or_default()
        .iter()
        .filter_map(|p| p["code"].as_str().map(str::to_owned))
        .collect();
    for plan in DEV_PLANS {
        assert!(
            codes.iter().any(|c| c == plan.code),
            "{} in {codes:?}",
            plan.code
        );
    }

    let tenant = TenantId::new();
    let token = tenant_token(tenant);
    let response = client
        .post(format!(
            "{base}/stripe/checkout?tenantId={tenant}&planId=plan-pro"
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "checkout started");
    let body: Value = response.json().await.unwrap();
    let session = body["sessionId"].as_str().expect("sessionId").to_owned();
    let url = body["sessionUrl"].as_str().expect("sessionUrl");
    assert!(
        url.starts_with(&emulator.base_url().trim_end_matches('/').to_owned()),
        "the hosted page is the emulator's: {url}"
    );

    emulator
        .complete_checkout(&session, "4242424242424242", Authentication::Pending)
        .expect("the test card pays");

    let deadline = Instant::now() + Duration::from_secs(10);
    let last = loop {
        let view: Value = client
            .get(format!("{base}/tenants/{tenant}"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let done = view["status"] == "active" && !view["subscription"].is_null();
        if done || Instant::now() > deadline {
            break view;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(last["status"], "active", "tenant after paying: {last}");
    assert!(
        last["subscription"].is_object(),
        "the tenant has its subscription: {last}"
    );
    assert!(
        last["stripeCustomerId"]
            .as_str()
            .is_some_and(|c| c.starts_with("cus_")),
        "{last}"
    );

    handle.stop(true).await;
    emulator.stop().await;
}

/// Polls the tenant until `done` holds or 10 s pass; returns the last view.
async fn tenant_until(
    client: &reqwest::Client,
    base: &str,
    tenant: TenantId,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let view: Value = client
            .get(format!("{base}/tenants/{tenant}"))
            .bearer_auth(tenant_token(tenant))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if done(&view) || Instant::now() > deadline {
            return view;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_subscription_paused_and_resumed_on_the_emulator_suspends_and_reactivates_the_tenant() {
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
    let base = format!("http://127.0.0.1:{port}/api/v1/billing");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let tenant = TenantId::new();
    let body: Value = client
        .post(format!(
            "{base}/stripe/checkout?tenantId={tenant}&planId=plan-pro"
        ))
        .bearer_auth(tenant_token(tenant))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    emulator
        .complete_checkout(
            body["sessionId"].as_str().unwrap(),
            "4242424242424242",
            Authentication::Pending,
        )
        .expect("the test card pays");
    let active = tenant_until(&client, &base, tenant, |v| {
        v["status"] == "active" && v["subscription"]["stripeSubscriptionId"].is_string()
    })
    .await;
    let sub = active["subscription"]["stripeSubscriptionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no subscription: {active}"))
        .to_owned();
    let emulator_url = emulator.base_url().trim_end_matches('/').to_owned();

    let paused = client
        .post(format!(
            "{emulator_url}/__emulator/subscriptions/{sub}/pause"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(paused.status(), 200);
    let suspended = tenant_until(&client, &base, tenant, |v| v["status"] == "suspended").await;
    assert_eq!(suspended["status"], "suspended", "{suspended}");
    assert_eq!(suspended["subscription"]["status"], "paused", "{suspended}");

    let resumed = client
        .post(format!("{emulator_url}/v1/subscriptions/{sub}/resume"))
        .bearer_auth(billing_server::startup::DEV_EMULATOR_API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(resumed.status(), 200);
    let back = tenant_until(&client, &base, tenant, |v| v["status"] == "active").await;
    assert_eq!(back["status"], "active", "{back}");
    assert_eq!(back["subscription"]["status"], "active", "{back}");

    handle.stop(true).await;
    emulator.stop().await;
}
