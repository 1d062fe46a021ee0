//! Reconciliation and the checkout return (issue 15) through the real server, PostgreSQL
//! and the in-process Stripe emulator delivering its events: an object changed at Stripe
//! without an event (the emulator's drift control) is corrected by the tenant sync and by
//! the periodic sweep, and counted; an older read never overwrites newer state; the
//! success URL's sync before the webhook, after it and racing it ends with the tenant
//! active, one subscription row and one application; tenant scoping, 404 and 400.

use std::time::Duration;

use billing_domain::TenantId;
use serde_json::{json, Value};

use crate::common::dev_service::{eventually, DevService};
use crate::common::{admin_token, sql, tenant_token};

/// A POST to the emulator's controls (`/__emulator/{path}`).
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

/// Waits until the emulator has nothing left to deliver.
async fn delivered(app: &DevService) {
    let url = format!(
        "{}/__emulator/deliveries",
        app.emulator.base_url().trim_end_matches('/')
    );
    eventually("every event delivered", || async {
        let body: Value = app
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
        let pending = body["events"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|e| e["state"] == "pending");
        if pending {
            Err(body.to_string())
        } else {
            Ok(())
        }
    })
    .await;
}

/// Opens a checkout of plan-pro for a new tenant: tenant, token, session id.
async fn open_checkout(app: &DevService) -> (TenantId, String, String) {
    let tenant = TenantId::new();
    let token = tenant_token(tenant);
    let opened = app
        .post(
            &format!("/stripe/checkout?tenantId={tenant}&planId=plan-pro"),
            &token,
        )
        .await;
    let session = opened["sessionId"].as_str().unwrap().to_owned();
    (tenant, token, session)
}

async fn complete(app: &DevService, session: &str) {
    control(
        app,
        &format!("checkout/sessions/{session}/complete"),
        &json!({"card": "4242424242424242"}),
    )
    .await;
}

/// A tenant subscribed through Checkout, every event delivered: tenant, token, Stripe
/// subscription id.
async fn subscribed(app: &DevService) -> (TenantId, String, String) {
    let (tenant, token, session) = open_checkout(app).await;
    complete(app, &session).await;
    delivered(app).await;
    let view = app.wait_until_active(tenant, &token).await;
    let sub = view["subscription"]["stripeSubscriptionId"]
        .as_str()
        .unwrap()
        .to_owned();
    // Reads are dated a second early (clock skew): let the checkout's events be older.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    (tenant, token, sub)
}

async fn metric(app: &DevService, line: &str) -> f64 {
    let text = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(line)
                .map(|v| v.trim().parse::<f64>().unwrap())
        })
        .expect("the metric is in /metrics")
}

async fn sync(app: &DevService, tenant: TenantId, token: &str) -> (u16, Value) {
    let response = app
        .http
        .post(format!("{}/api/v1/billing/tenants/{tenant}/sync", app.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

const SUBSCRIPTION_CORRECTIONS: &str = "billing_reconcile_corrections_total{kind=\"subscription\"}";

#[tokio::test]
async fn a_subscription_changed_at_stripe_without_an_event_is_corrected_by_the_tenant_sync() {
    let app = DevService::start().await;
    let (tenant, token, sub) = subscribed(&app).await;
    let before = metric(&app, SUBSCRIPTION_CORRECTIONS).await;
    control(
        &app,
        &format!("objects/subscriptions/{sub}"),
        &json!({"cancel_at_period_end": true}),
    )
    .await;

    let (status, body) = sync(&app, tenant, &token).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["subscriptions"], 1, "{body}");
    let corrections = body["corrections"].as_array().unwrap();
    assert!(
        corrections.contains(&json!({"kind": "subscription", "object": sub,
            "field": "cancelAtPeriodEnd", "from": "false", "to": "true"})),
        "{body}"
    );
    let (_, local) = app
        .get(&format!("/tenants/{tenant}/subscription"), &token)
        .await;
    assert_eq!(local["cancelAtPeriodEnd"], true, "{local}");
    assert_eq!(
        metric(&app, SUBSCRIPTION_CORRECTIONS).await,
        before + 1.0,
        "one correction counted"
    );
    // Nothing differs any more: a second sync corrects nothing.
    let (status, again) = sync(&app, tenant, &token).await;
    assert_eq!(status, 200);
    assert_eq!(again["corrections"], json!([]), "{again}");
    app.stop().await;
}

#[tokio::test]
async fn an_older_read_never_overwrites_a_newer_local_state() {
    let app = DevService::start().await;
    let (tenant, token, sub) = subscribed(&app).await;
    // An event newer than any read this test makes has been applied (created an hour
    // from now, as a webhook from Stripe's future would be).
    sql(
        app.db_url(),
        &format!(
            "UPDATE subscriptions SET last_event_at = now() + interval '1 hour' \
             WHERE stripe_subscription_id = '{sub}'"
        ),
    );
    control(
        &app,
        &format!("objects/subscriptions/{sub}"),
        &json!({"cancel_at_period_end": true}),
    )
    .await;

    let (status, body) = sync(&app, tenant, &admin_token()).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["corrections"], json!([]), "{body}");
    let (_, local) = app
        .get(&format!("/tenants/{tenant}/subscription"), &token)
        .await;
    assert_eq!(local["cancelAtPeriodEnd"], false, "{local}");
    app.stop().await;
}

#[tokio::test]
async fn the_periodic_sweep_corrects_drift_and_counts_it() {
    let app = DevService::start_with(|env| {
        env.insert("STRIPE_RECONCILE_INTERVAL_SECS", "2".to_owned());
    })
    .await;
    let (tenant, token, sub) = subscribed(&app).await;
    let before = metric(&app, SUBSCRIPTION_CORRECTIONS).await;
    control(
        &app,
        &format!("objects/subscriptions/{sub}"),
        &json!({"status": "past_due"}),
    )
    .await;

    eventually("the sweep corrected the status", || async {
        let (_, local) = app
            .get(&format!("/tenants/{tenant}/subscription"), &token)
            .await;
        if local["status"] == "past_due" {
            Ok(())
        } else {
            Err(local.to_string())
        }
    })
    .await;
    assert!(metric(&app, SUBSCRIPTION_CORRECTIONS).await >= before + 1.0);
    let swept = sql(app.db_url(), "SELECT count(*) FROM reconcile_sweeps");
    assert!(
        swept.parse::<i64>().unwrap() >= 1,
        "claims recorded: {swept}"
    );
    app.stop().await;
}

async fn checkout_return(app: &DevService, session: &str, token: &str) -> (u16, Value) {
    app.get(&format!("/stripe/checkout/{session}"), token).await
}

fn rows(app: &DevService, tenant: TenantId) -> i64 {
    sql(
        app.db_url(),
        &format!("SELECT count(*) FROM subscriptions WHERE tenant_id = '{tenant}'"),
    )
    .parse()
    .unwrap()
}

/// The tenant active with one subscription row, and the session's webhook applied
/// without a second change (processed, nothing flagged).
async fn applied_once(app: &DevService, tenant: TenantId, token: &str) {
    let view = app.tenant(tenant, token).await;
    assert_eq!(view["status"], "active", "{view}");
    assert_eq!(rows(app, tenant), 1, "one subscription row");
    let outcomes = sql(
        app.db_url(),
        "SELECT outcome FROM webhook_events WHERE type = 'checkout.session.completed'",
    );
    assert_eq!(outcomes, "processed", "the webhook applied once, cleanly");
}

#[tokio::test]
async fn the_checkout_return_before_the_webhook_activates_the_tenant_at_once() {
    let app = DevService::start().await;
    let (tenant, token, session) = open_checkout(&app).await;
    control(&app, "deliveries/hold", &json!({})).await;
    complete(&app, &session).await;

    let (status, body) = checkout_return(&app, &session, &token).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "complete");
    assert_eq!(body["paymentStatus"], "paid");
    assert_eq!(body["tenantStatus"], "active", "{body}");
    assert!(
        body["subscription"]["stripeSubscriptionId"].is_string(),
        "{body}"
    );
    assert_eq!(rows(&app, tenant), 1);
    control(&app, "deliveries/release", &json!({})).await;
    delivered(&app).await;
    applied_once(&app, tenant, &token).await;
    app.stop().await;
}

#[tokio::test]
async fn the_checkout_return_after_the_webhook_changes_nothing() {
    let app = DevService::start().await;
    let (tenant, token, session) = open_checkout(&app).await;
    complete(&app, &session).await;
    delivered(&app).await;
    app.wait_until_active(tenant, &token).await;
    let before = app.tenant(tenant, &token).await;

    let (status, body) = checkout_return(&app, &session, &token).await;

    assert_eq!(status, 200, "{body}");
    assert_eq!(body["tenantStatus"], "active");
    let after = app.tenant(tenant, &token).await;
    assert_eq!(
        before["subscription"]["updatedAt"], after["subscription"]["updatedAt"],
        "the subscription was not written again"
    );
    applied_once(&app, tenant, &token).await;
    app.stop().await;
}

#[tokio::test]
async fn the_checkout_return_racing_the_webhook_applies_the_session_once() {
    let app = DevService::start().await;
    let (tenant, token, session) = open_checkout(&app).await;
    control(&app, "deliveries/hold", &json!({})).await;
    complete(&app, &session).await;

    let empty = json!({});
    let release = control(&app, "deliveries/release", &empty);
    let returns =
        futures::future::join_all((0..3).map(|_| checkout_return(&app, &session, &token)));
    let (_, answers) = tokio::join!(release, returns);

    for (status, body) in answers {
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["tenantStatus"], "active", "{body}");
    }
    delivered(&app).await;
    applied_once(&app, tenant, &token).await;
    app.stop().await;
}

#[tokio::test]
async fn the_checkout_return_and_the_sync_are_tenant_scoped_and_refuse_bad_ids() {
    let app = DevService::start().await;
    let (tenant, token, session) = open_checkout(&app).await;
    complete(&app, &session).await;
    delivered(&app).await;
    let stranger = tenant_token(TenantId::new());

    let (status, body) = checkout_return(&app, &session, &stranger).await;
    assert_eq!(status, 403, "another tenant's session: {body}");
    let (status, body) = checkout_return(&app, "cs_test_nosuchsession", &token).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "checkout_session_not_found");
    let (status, body) = checkout_return(&app, "not-a-session", &token).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "invalid_parameter");
    let (status, _) = checkout_return(&app, &session, &admin_token()).await;
    assert_eq!(status, 200, "admin reads any session");

    let (status, body) = sync(&app, tenant, &stranger).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = sync(&app, TenantId::new(), &admin_token()).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["code"], "tenant_not_found");
    let response = app
        .http
        .post(format!(
            "{}/api/v1/billing/tenants/not-a-uuid/sync",
            app.base
        ))
        .bearer_auth(admin_token())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    app.stop().await;
}
