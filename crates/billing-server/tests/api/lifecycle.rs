//! The lifecycle beyond the seven events (docs/contract.md, The whole lifecycle) through the real server and
//! PostgreSQL: each new type applied once however it is redelivered, in Stripe's order
//! and out of it, with its effect on the invoice, subscription, tenant, session or outbox.

use billing_domain::TenantId;
use serde_json::{json, Value};

use crate::helpers::{sample_event, spawn_app, TestApp};

/// A sample event whose object names `tenant` wherever Stripe would carry it.
fn for_tenant(kind: &str, tenant: TenantId) -> String {
    sample_event(kind, |e| {
        let object = &mut e["data"]["object"];
        let metadata = json!({"tenantId": tenant.to_string()});
        object["metadata"] = metadata.clone();
        if object.get("client_reference_id").is_some() {
            object["client_reference_id"] = json!(tenant.to_string());
        }
        if let Some(details) = object.pointer_mut("/parent/subscription_details") {
            details["metadata"] = metadata;
        }
    })
}

async fn outcome(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["outcome"].as_str().unwrap().to_owned()
}

/// Delivers `body` five times, three of them at once; returns the first outcome and
/// checks that every other delivery was a duplicate.
async fn five_times(app: &TestApp, body: &str) -> String {
    let first = outcome(app.webhook(body).await).await;
    let racing = futures::future::join_all((0..3).map(|_| app.webhook(body))).await;
    for response in racing {
        assert_eq!(outcome(response).await, "duplicate", "{body:.80}");
    }
    assert_eq!(outcome(app.webhook(body).await).await, "duplicate");
    first
}

async fn app_with_plans() -> TestApp {
    let app = spawn_app().await;
    app.create_plan("plan-basic", "price_1Rq3oaHx4KpL29aTqhCv4Gt4", None)
        .await;
    app.create_plan("plan-pro", "price_1Rq48kHx4KpL29aTV5PnnbOR", None)
        .await;
    app
}

#[tokio::test]
async fn every_new_type_redelivered_five_times_three_at_once_is_applied_once() {
    let app = app_with_plans().await;
    let tenant = TenantId::new();
    let kinds = [
        "customer.subscription.created",
        "invoice.created",
        "invoice.finalized",
        "invoice.updated",
        "invoice.payment_action_required",
        "invoice.marked_uncollectible",
        "invoice.paid",
        "customer.subscription.trial_will_end",
        "customer.subscription.paused",
        "customer.subscription.resumed",
        "checkout.session.expired",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "payment_intent.canceled",
        "invoice.voided",
        "customer.deleted",
    ];

    let mut outcomes = Vec::new();
    for kind in kinds {
        let mut body = for_tenant(kind, tenant);
        if kind == "invoice.marked_uncollectible" {
            // Written off before it was paid (an uncollectible invoice can still be paid).
            let mut event: Value = serde_json::from_str(&body).unwrap();
            event["created"] = json!(event["created"].as_i64().unwrap() - 101);
            body = event.to_string();
        }
        outcomes.push((kind, five_times(&app, &body).await));
    }

    for (kind, first) in &outcomes {
        // A paid invoice reported void afterwards is for an operator; all else applies.
        let expected = if *kind == "invoice.voided" {
            "failed"
        } else {
            "processed"
        };
        assert_eq!(first, expected, "{kind}");
    }
    assert_eq!(
        app.count("select count(*) from webhook_events"),
        i64::try_from(kinds.len()).unwrap()
    );
    assert_eq!(
        app.scalar(
            "select status || ' ' || number || ' ' || amount_paid || ' ' || \
             (hosted_invoice_url like 'https://invoice.stripe.com/i/%') from invoices"
        ),
        "paid 7F3A9C21-0001 2000 true"
    );
    assert_eq!(
        app.count(
            "select count(*) from notifications where kind in \
             ('invoice.payment_action_required', 'checkout.async_payment_failed')"
        ),
        2
    );
    assert_eq!(app.scalar("select status from subscriptions"), "active");
    assert_eq!(
        app.scalar(&format!(
            "select status || ' ' || coalesce(stripe_customer_id, 'none') from tenants \
             where id = '{tenant}'"
        )),
        "active none"
    );
}

#[tokio::test]
async fn a_pause_suspends_the_tenant_and_an_older_pause_after_the_resume_is_stale() {
    let app = app_with_plans().await;
    let tenant = TenantId::new();
    let active = sample_event("customer.subscription.created", |e| {
        e["data"]["object"]["status"] = json!("active");
        e["data"]["object"]["metadata"] = json!({"tenantId": tenant.to_string()});
    });
    assert_eq!(outcome(app.webhook(&active).await).await, "processed");

    let paused = for_tenant("customer.subscription.paused", tenant);
    let resumed = for_tenant("customer.subscription.resumed", tenant);
    assert_eq!(outcome(app.webhook(&paused).await).await, "processed");
    let tenant_status = format!("select status from tenants where id = '{tenant}'");
    assert_eq!(app.scalar(&tenant_status), "suspended");
    assert_eq!(app.scalar("select status from subscriptions"), "paused");

    assert_eq!(outcome(app.webhook(&resumed).await).await, "processed");
    assert_eq!(app.scalar(&tenant_status), "active");

    // The pause again under another event id, older than the resume: out of order.
    let late = sample_event("customer.subscription.paused", |e| {
        e["id"] = json!("evt_1RqWz7Hx4KpL29aTlateLATE");
        e["data"]["object"]["metadata"] = json!({"tenantId": tenant.to_string()});
    });
    assert_eq!(outcome(app.webhook(&late).await).await, "stale");
    assert_eq!(app.scalar("select status from subscriptions"), "active");
    assert_eq!(app.scalar(&tenant_status), "active");
}

#[tokio::test]
async fn an_invoice_finalisation_arriving_after_a_newer_update_is_stale() {
    let app = spawn_app().await;
    let tenant = TenantId::new();

    assert_eq!(
        outcome(app.webhook(&for_tenant("invoice.updated", tenant)).await).await,
        "processed"
    );
    assert_eq!(
        outcome(app.webhook(&for_tenant("invoice.finalized", tenant)).await).await,
        "stale"
    );

    assert_eq!(
        app.scalar("select status || ' ' || due_date from invoices"),
        "open 2026-08-06"
    );
}

#[tokio::test]
async fn an_invoice_paid_out_of_band_has_no_payment_and_a_voided_one_refuses_a_payment_intent() {
    let app = spawn_app().await;
    let tenant = TenantId::new();
    let out_of_band = sample_event("invoice.paid", |e| {
        let o = &mut e["data"]["object"];
        o["paid_out_of_band"] = json!(true);
        o["metadata"] = json!({"tenantId": tenant.to_string()});
    });
    assert_eq!(outcome(app.webhook(&out_of_band).await).await, "processed");
    assert_eq!(
        app.scalar("select status || ' ' || (payment_intent_lookup_at is null) from invoices"),
        "paid true"
    );
    assert_eq!(app.count("select count(*) from payments"), 0);

    let other = TenantId::new();
    let voided = sample_event("invoice.voided", |e| {
        let o = &mut e["data"]["object"];
        o["id"] = json!("in_voided_1");
        o["number"] = json!("VOID-0001");
        o["metadata"] = json!({"tenantId": other.to_string()});
        o["parent"] = Value::Null;
    });
    assert_eq!(outcome(app.webhook(&voided).await).await, "processed");
    let id = app.scalar("select id::text from invoices where status = 'void'");

    let response = app
        .post_empty(
            &format!("/api/v1/billing/invoices/{id}/payment-intent"),
            &crate::helpers::tenant_token(other),
        )
        .await;

    let (status, body) = crate::helpers::problem(response).await;
    assert_eq!(status, 409);
    assert_eq!(body["code"], "invoice_not_payable");
}

/// `body` as an older event of the same object: another id, `created` a minute earlier.
fn older_copy(body: &str) -> String {
    let mut event: Value = serde_json::from_str(body).unwrap();
    event["id"] = json!(format!("{}_older", event["id"].as_str().unwrap()));
    event["created"] = json!(event["created"].as_i64().unwrap() - 60);
    event.to_string()
}

#[tokio::test]
async fn every_new_ordered_type_arriving_after_a_newer_event_of_its_object_is_stale() {
    let kinds = [
        "customer.subscription.created",
        "customer.subscription.paused",
        "customer.subscription.resumed",
        "invoice.created",
        "invoice.finalized",
        "invoice.updated",
        "invoice.payment_action_required",
        "invoice.marked_uncollectible",
        "invoice.voided",
        "invoice.paid",
    ];
    for kind in kinds {
        let app = app_with_plans().await;
        let newer = for_tenant(kind, TenantId::new());

        let first = outcome(app.webhook(&newer).await).await;
        let late = outcome(app.webhook(&older_copy(&newer)).await).await;

        assert_eq!(first, "processed", "{kind}");
        assert_eq!(late, "stale", "{kind} delivered out of order");
    }
}
