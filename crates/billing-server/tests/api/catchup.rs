//! Catch-up from Stripe's Events API (issue 15) through the real server, PostgreSQL and
//! the emulator: webhooks held while tenants subscribe and renew on test clocks, then
//! dropped; one `POST /stripe/events/sync` leaves the state a run with every webhook
//! leaves, each event recorded once with source `catchup`; a second pass finds them all
//! applied; two passes at once apply nothing twice; a bad `since` is a 400.

use billing_domain::TenantId;
use billing_server::startup::DEV_EMULATOR_API_KEY;
use serde_json::{json, Value};

use crate::common::dev_service::{eventually, DevService};
use crate::common::{admin_token, tenant_token};

const DAY: i64 = 86_400;
const TENANTS: usize = 6;

async fn stripe(app: &DevService, path: &str, form: &[(&str, String)]) -> Value {
    app.http
        .post(format!(
            "{}{path}",
            app.emulator.base_url().trim_end_matches('/')
        ))
        .bearer_auth(DEV_EMULATOR_API_KEY)
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

async fn control(app: &DevService, path: &str, body: &Value) -> Value {
    app.http
        .post(format!(
            "{}/__emulator/{path}",
            app.emulator.base_url().trim_end_matches('/')
        ))
        .json(body)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap_or(Value::Null)
}

async fn deliveries(app: &DevService) -> Value {
    app.http
        .get(format!(
            "{}/__emulator/deliveries",
            app.emulator.base_url().trim_end_matches('/')
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until nothing is left to deliver.
async fn settled(app: &DevService) {
    eventually("every event delivered", || async {
        let body = deliveries(app).await;
        let pending = body["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["state"] == "pending");
        if pending && body["held"] != true {
            Err(body.to_string())
        } else {
            Ok(())
        }
    })
    .await;
}

/// `TENANTS` tenants subscribe through Checkout on test clocks, and a month passes on
/// each (a renewal). Returns the tenants.
async fn history(app: &DevService) -> Vec<TenantId> {
    let now = chrono::Utc::now().timestamp();
    let mut tenants = Vec::new();
    for _ in 0..TENANTS {
        let clock = stripe(
            app,
            "/v1/test_helpers/test_clocks",
            &[("frozen_time", now.to_string())],
        )
        .await;
        let clock = clock["id"].as_str().unwrap().to_owned();
        let tenant = TenantId::new();
        let opened = app
            .post(
                &format!("/stripe/checkout?tenantId={tenant}&planId=plan-pro"),
                &tenant_token(tenant),
            )
            .await;
        let session = opened["sessionId"].as_str().unwrap();
        control(
            app,
            &format!("checkout/sessions/{session}/complete"),
            &json!({"card": "4242424242424242", "test_clock": clock}),
        )
        .await;
        stripe(
            app,
            &format!("/v1/test_helpers/test_clocks/{clock}/advance"),
            &[("frozen_time", (now + 32 * DAY).to_string())],
        )
        .await;
        tenants.push(tenant);
    }
    tenants
}

/// What the service holds about each tenant, without ids and times.
async fn state(app: &DevService, tenants: &[TenantId]) -> Vec<Value> {
    let mut out = Vec::new();
    for tenant in tenants {
        let token = tenant_token(*tenant);
        let view = app.tenant(*tenant, &token).await;
        let (_, invoices) = app
            .get(&format!("/invoices?tenantId={tenant}"), &token)
            .await;
        let (_, payments) = app
            .get(&format!("/payments?tenantId={tenant}"), &token)
            .await;
        let mut invoices: Vec<Value> = invoices["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| json!([i["status"], i["amountDue"], i["amountPaid"]]))
            .collect();
        invoices.sort_by_key(ToString::to_string);
        let mut payments: Vec<Value> = payments["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| json!([p["status"], p["amount"]]))
            .collect();
        payments.sort_by_key(ToString::to_string);
        out.push(json!({
            "status": view["status"],
            "subscription": view["subscription"]["status"],
            "invoices": invoices,
            "payments": payments,
        }));
    }
    out
}

fn sql(app: &DevService, query: &str) -> i64 {
    crate::common::count(app.database_url(), query)
}

async fn sync(app: &DevService, query: &str) -> reqwest::Response {
    app.http
        .post(format!(
            "{}/api/v1/billing/stripe/events/sync{query}",
            app.base
        ))
        .bearer_auth(admin_token())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn one_pass_over_dropped_webhooks_leaves_the_state_every_webhook_leaves() {
    // The reference: every webhook arrives.
    let reference = DevService::start().await;
    let tenants = history(&reference).await;
    settled(&reference).await;
    let expected = state(&reference, &tenants).await;
    reference.stop().await;
    assert!(
        expected.iter().all(|t| t["status"] == "active"),
        "{expected:?}"
    );

    // The same history with every webhook held, then dropped.
    let app = DevService::start().await;
    control(&app, "deliveries/hold", &json!({})).await;
    let tenants = history(&app).await;
    let dropped = control(&app, "deliveries/drop", &json!({})).await;
    let dropped = dropped["dropped"].as_array().unwrap().len();
    assert!(dropped >= TENANTS * 10, "dropped {dropped}");
    control(&app, "deliveries/release", &json!({})).await;
    assert_eq!(sql(&app, "SELECT count(*) FROM webhook_events"), 0);
    let before = state(&app, &tenants).await;
    assert_ne!(before, expected, "nothing was applied before the catch-up");

    let response = sync(&app, "").await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    let listed = report["listed"].as_u64().unwrap();
    assert!(listed >= dropped as u64, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(
        report["applied"].as_u64().unwrap()
            + report["alreadyApplied"].as_u64().unwrap()
            + report["unmatched"].as_u64().unwrap(),
        listed,
        "{report}"
    );

    assert_eq!(state(&app, &tenants).await, expected);
    let recorded = sql(&app, "SELECT count(*) FROM webhook_events");
    assert_eq!(
        recorded,
        i64::try_from(listed).unwrap(),
        "each event recorded once"
    );
    assert_eq!(
        sql(
            &app,
            "SELECT count(*) FROM webhook_events WHERE source <> 'catchup'"
        ),
        0
    );
    assert_eq!(
        sql(
            &app,
            "SELECT count(*) FROM (SELECT stripe_payment_intent_id FROM payments \
             WHERE stripe_payment_intent_id IS NOT NULL GROUP BY 1 HAVING count(*) > 1) d"
        ),
        0,
        "no duplicate payments"
    );

    // A second pass finds everything in the ledger.
    let again: Value = sync(&app, "").await.json().await.unwrap();
    assert_eq!(again["applied"], 0, "{again}");
    assert_eq!(again["listed"], again["alreadyApplied"], "{again}");

    // Two at once: one pass, or one and a 409; nothing applied twice.
    let (a, b) = tokio::join!(sync(&app, "?since=0"), sync(&app, "?since=0"));
    let statuses = [a.status().as_u16(), b.status().as_u16()];
    assert!(statuses.contains(&200), "{statuses:?}");
    for (status, response) in statuses.into_iter().zip([a, b]) {
        let body: Value = response.json().await.unwrap();
        if status == 409 {
            assert_eq!(body["code"], "catchup_in_progress", "{body}");
        } else {
            assert_eq!(status, 200);
            assert_eq!(body["applied"], 0, "{body}");
        }
    }
    assert_eq!(sql(&app, "SELECT count(*) FROM webhook_events"), recorded);
    app.stop().await;
}

#[tokio::test]
async fn webhooks_released_during_the_pass_apply_each_event_once() {
    let app = DevService::start().await;
    control(&app, "deliveries/hold", &json!({})).await;
    let tenants = history(&app).await;
    // Release the held deliveries while the pass runs: webhooks and the catch-up race.
    let (response, _) = tokio::join!(sync(&app, ""), async {
        control(&app, "deliveries/release", &json!({})).await;
    });
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    settled(&app).await;
    let listed = report["listed"].as_i64().unwrap();
    assert_eq!(
        sql(&app, "SELECT count(*) FROM webhook_events"),
        listed,
        "{report}"
    );
    let view = state(&app, &tenants).await;
    for tenant in &view {
        assert_eq!(tenant["status"], "active", "{view:?}");
        assert_eq!(tenant["payments"].as_array().unwrap().len(), 2, "{view:?}");
    }
    app.stop().await;
}

#[tokio::test]
async fn a_bad_since_is_a_400_problem_and_a_tenant_token_is_refused() {
    let app = DevService::start().await;
    for bad in ["yesterday", "-1", "2026-13-01T00:00:00Z"] {
        let response = sync(&app, &format!("?since={bad}")).await;
        assert_eq!(response.status(), 400, "{bad}");
        assert!(response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/problem+json")));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "invalid_parameter", "{body}");
    }
    let ok = sync(&app, "?since=2026-01-01T00:00:00Z").await;
    assert_eq!(ok.status(), 200);
    let refused = app
        .http
        .post(format!("{}/api/v1/billing/stripe/events/sync", app.base))
        .bearer_auth(tenant_token(TenantId::new()))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    app.stop().await;
}
