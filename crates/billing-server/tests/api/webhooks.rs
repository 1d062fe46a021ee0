//! The webhook endpoint, as Stripe (and an attacker) would try it.

use billing_domain::TenantId;
use serde_json::{json, Value};

use crate::helpers::{admin_token, problem, sample_event, spawn_app, WEBHOOK_SECRET};

fn with_tenant(kind: &str, tenant: TenantId, plan: Option<&str>) -> String {
    sample_event(kind, |e| {
        let object = &mut e["data"]["object"];
        let mut metadata = json!({"tenantId": tenant.to_string()});
        if let Some(plan) = plan {
            metadata["planId"] = json!(plan);
        }
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

#[tokio::test]
async fn the_seven_event_types_keep_tenant_subscription_invoice_and_payments_in_step() {
    let app = spawn_app().await;
    let basic = app
        .create_plan("plan-basic", "price_1Rq3oaHx4KpL29aTqhCv4Gt4", None)
        .await;
    app.create_plan("plan-pro", "price_1Rq48kHx4KpL29aTV5PnnbOR", None)
        .await;
    let tenant = TenantId::new();
    let plan_id = basic["id"].as_str().unwrap();

    // In the order Stripe created them.
    let checkout = with_tenant("checkout.session.completed", tenant, Some(plan_id));
    let paid = with_tenant("invoice.payment_succeeded", tenant, None);
    let pi_ok = with_tenant("payment_intent.succeeded", tenant, None);
    let pi_failed = with_tenant("payment_intent.payment_failed", tenant, None);
    let failed = with_tenant("invoice.payment_failed", tenant, None);
    let updated = with_tenant("customer.subscription.updated", tenant, None);
    let deleted = with_tenant("customer.subscription.deleted", tenant, None);

    assert_eq!(outcome(app.webhook(&checkout).await).await, "processed");
    assert_eq!(
        app.scalar(&format!(
            "select status || ' ' || stripe_customer_id from tenants where id = '{tenant}'"
        )),
        "active cus_t9FXeM4pJmfNhL"
    );
    assert_eq!(
        app.scalar("select status || ' ' || stripe_subscription_id from subscriptions"),
        "active sub_1RqjwsHx4KpL29aTnHB49Ctb"
    );

    assert_eq!(outcome(app.webhook(&paid).await).await, "processed");
    assert_eq!(
        app.scalar("select status || ' ' || amount_paid from invoices"),
        "paid 2000"
    );

    assert_eq!(outcome(app.webhook(&pi_ok).await).await, "processed");
    assert_eq!(app.count("select count(*) from payments where status = 'succeeded' and stripe_charge_id is not null"), 1);

    assert_eq!(outcome(app.webhook(&pi_failed).await).await, "processed");
    assert_eq!(
        app.scalar("select failure_code from payments where status = 'failed'"),
        "insufficient_funds"
    );

    assert_eq!(outcome(app.webhook(&failed).await).await, "processed");
    assert_eq!(
        app.count("select count(*) from notifications where kind = 'invoice.payment_failed'"),
        1
    );

    assert_eq!(outcome(app.webhook(&updated).await).await, "processed");
    let pro_plan = app.scalar("select code from plans p join subscriptions s on s.plan_id = p.id");
    assert_eq!(pro_plan, "plan-pro", "the plan follows the Stripe price");

    assert_eq!(outcome(app.webhook(&deleted).await).await, "processed");
    assert_eq!(app.scalar("select status from subscriptions"), "canceled");
    assert_eq!(
        app.scalar(&format!("select status from tenants where id = '{tenant}'")),
        "cancelled"
    );
    assert_eq!(
        app.count("select count(*) from webhook_events where outcome = 'processed'"),
        7
    );
}

#[tokio::test]
async fn one_event_delivered_five_times_three_at_once_is_applied_once() {
    let app = spawn_app().await;
    let tenant = TenantId::new();
    let body = with_tenant("payment_intent.succeeded", tenant, None);

    let first = outcome(app.webhook(&body).await).await;
    let racing = futures::future::join_all((0..3).map(|_| app.webhook(&body))).await;
    let last = outcome(app.webhook(&body).await).await;

    assert_eq!(first, "processed");
    for response in racing {
        assert_eq!(outcome(response).await, "duplicate");
    }
    assert_eq!(last, "duplicate");
    assert_eq!(app.count("select count(*) from webhook_events"), 1);
    assert_eq!(app.count("select count(*) from payments"), 1);
}

#[tokio::test]
async fn concurrent_first_deliveries_of_one_event_apply_it_once() {
    let app = spawn_app().await;
    let tenant = TenantId::new();
    let body = with_tenant("payment_intent.succeeded", tenant, None);

    let outcomes = futures::future::join_all((0..6).map(|_| app.webhook(&body))).await;

    let mut processed = 0;
    for response in outcomes {
        if outcome(response).await == "processed" {
            processed += 1;
        }
    }
    assert_eq!(processed, 1);
    assert_eq!(app.count("select count(*) from payments"), 1);
}

#[tokio::test]
async fn an_older_subscription_update_after_a_newer_one_is_stale() {
    let app = spawn_app().await;
    app.create_plan("plan-pro", "price_1Rq48kHx4KpL29aTV5PnnbOR", None)
        .await;
    let tenant = TenantId::new();
    let newer = sample_event("customer.subscription.updated", |e| {
        e["id"] = json!("evt_newer");
        e["created"] = json!(1_800_000_100);
        e["data"]["object"]["metadata"] = json!({"tenantId": tenant.to_string()});
        e["data"]["object"]["status"] = json!("past_due");
    });
    let older = sample_event("customer.subscription.updated", |e| {
        e["id"] = json!("evt_older");
        e["created"] = json!(1_800_000_000);
        e["data"]["object"]["metadata"] = json!({"tenantId": tenant.to_string()});
        e["data"]["object"]["status"] = json!("active");
    });

    assert_eq!(outcome(app.webhook(&newer).await).await, "processed");
    assert_eq!(outcome(app.webhook(&older).await).await, "stale");

    assert_eq!(app.scalar("select status from subscriptions"), "past_due");
    assert_eq!(
        app.scalar("select outcome from webhook_events where event_id = 'evt_older'"),
        "stale"
    );
}

#[tokio::test]
async fn a_same_second_tie_takes_the_subscription_stripe_has_now() {
    let app = spawn_app().await;
    app.create_plan("plan-pro", "price_1Rq48kHx4KpL29aTV5PnnbOR", None)
        .await;
    let tenant = TenantId::new();
    let event = |id: &str, status: &str| {
        sample_event("customer.subscription.updated", |e| {
            e["id"] = json!(id);
            e["created"] = json!(1_800_000_000);
            e["data"]["object"]["metadata"] = json!({"tenantId": tenant.to_string()});
            e["data"]["object"]["status"] = json!(status);
        })
    };
    // Stripe's current state says past_due.
    let current: Value = serde_json::from_str(&event("evt_x", "past_due")).unwrap();
    app.stripe
        .add_subscription(current["data"]["object"].clone());

    assert_eq!(
        outcome(app.webhook(&event("evt_a", "past_due")).await).await,
        "processed"
    );
    assert_eq!(
        outcome(app.webhook(&event("evt_b", "active")).await).await,
        "processed"
    );

    assert_eq!(app.scalar("select status from subscriptions"), "past_due");
    assert!(app
        .stripe
        .requests()
        .iter()
        .any(|r| r.path.starts_with("/v1/subscriptions/")));
}

#[tokio::test]
async fn an_event_without_a_resolvable_tenant_is_recorded_as_unmatched_and_can_be_replayed() {
    let app = spawn_app().await;
    let body = sample_event("payment_intent.succeeded", |_| {});

    assert_eq!(outcome(app.webhook(&body).await).await, "unmatched");
    let detail = app.scalar("select detail from webhook_events");
    assert!(
        detail.contains("user_8842") || detail.contains("cus_t9FXeM4pJmfNhL"),
        "{detail}"
    );
    assert_eq!(app.count("select count(*) from payments"), 0);

    // The operator links the customer to a tenant, then replays.
    let tenant = TenantId::new();
    app.db
        .execute(&format!("insert into tenants (id, status, stripe_customer_id, created_at, updated_at) values ('{tenant}', 'active', 'cus_t9FXeM4pJmfNhL', now(), now())"))
        .unwrap();
    let event: Value = serde_json::from_str(&body).unwrap();
    let id = event["id"].as_str().unwrap();
    app.stripe.add_event(id, body.clone());
    let replay = app
        .post_empty(
            &format!("/api/v1/billing/stripe/events/{id}/replay"),
            &admin_token(),
        )
        .await;

    assert_eq!(replay.status(), 200);
    assert_eq!(
        app.scalar("select outcome from webhook_events"),
        "processed"
    );
    assert_eq!(
        app.count(&format!(
            "select count(*) from payments where tenant_id = '{tenant}'"
        )),
        1
    );
}

#[tokio::test]
async fn a_live_mode_event_reaching_a_test_mode_service_is_failed_and_changes_nothing() {
    let app = spawn_app().await; // holds an sk_test_ key
    let plan = app
        .create_plan("plan-basic", "price_1Rq3oaHx4KpL29aTqhCv4Gt4", None)
        .await;
    let tenant = TenantId::new();
    let body = sample_event("checkout.session.completed", |e| {
        e["livemode"] = json!(true);
        e["data"]["object"]["livemode"] = json!(true);
        e["data"]["object"]["client_reference_id"] = json!(tenant.to_string());
        e["data"]["object"]["metadata"] =
            json!({"tenantId": tenant.to_string(), "planId": plan["id"]});
    });

    // `failed`: answered 200 (it is genuine), kept for a replay once the keys are fixed.
    assert_eq!(outcome(app.webhook(&body).await).await, "failed");
    assert_eq!(app.count("select count(*) from subscriptions"), 0);
    assert_eq!(
        app.count(&format!(
            "select count(*) from tenants where id = '{tenant}'"
        )),
        0
    );
    assert!(app
        .scalar("select detail from webhook_events")
        .starts_with("a live-mode event reached a test-mode service; nothing applied"));
}

#[tokio::test]
async fn a_checkout_paid_by_a_delayed_method_activates_the_tenant_only_once_the_money_is_in() {
    let app = spawn_app().await;
    let plan = app
        .create_plan("plan-basic", "price_1Rq3oaHx4KpL29aTqhCv4Gt4", None)
        .await;
    // The update's sample names the Pro price.
    app.create_plan("plan-pro", "price_1Rq48kHx4KpL29aTV5PnnbOR", None)
        .await;
    let tenant = TenantId::new();
    let plan_id = plan["id"].as_str().unwrap();
    let unpaid = sample_event("checkout.session.completed", |e| {
        let object = &mut e["data"]["object"];
        object["payment_status"] = json!("unpaid");
        object["client_reference_id"] = json!(tenant.to_string());
        object["metadata"] = json!({"tenantId": tenant.to_string(), "planId": plan_id});
    });
    let active = sample_event("customer.subscription.updated", |e| {
        e["created"] = json!(e["created"].as_i64().unwrap() + 86_400);
        let object = &mut e["data"]["object"];
        object["status"] = json!("active");
        object["metadata"] = json!({"tenantId": tenant.to_string()});
    });
    let tenant_status = format!("select status from tenants where id = '{tenant}'");

    assert_eq!(outcome(app.webhook(&unpaid).await).await, "processed");
    assert_eq!(app.scalar(&tenant_status), "pending");
    assert_eq!(app.scalar("select status from subscriptions"), "incomplete");

    assert_eq!(outcome(app.webhook(&active).await).await, "processed");
    assert_eq!(app.scalar(&tenant_status), "active");
    assert_eq!(app.scalar("select status from subscriptions"), "active");
}

#[tokio::test]
async fn an_unknown_event_type_is_acknowledged_and_recorded_as_ignored() {
    let app = spawn_app().await;
    let body = sample_event("payment_intent.succeeded", |e| {
        e["type"] = json!("customer.tax_id.created");
    });

    assert_eq!(outcome(app.webhook(&body).await).await, "ignored");
    let listed: Value = app
        .get(
            "/api/v1/billing/stripe/events?status=ignored",
            &admin_token(),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"][0]["type"], "customer.tax_id.created");
}

#[tokio::test]
async fn every_kind_of_bad_signature_is_refused_and_nothing_is_recorded() {
    let app = spawn_app().await;
    let body = sample_event("payment_intent.succeeded", |_| {});
    let now = chrono::Utc::now().timestamp();
    let good = billing_stripe::sign(WEBHOOK_SECRET, now, body.as_bytes());
    let v1 = good.split("v1=").nth(1).unwrap().to_owned();
    let wrong_secret = billing_stripe::sign("whsec_someone_else", now, body.as_bytes());
    let stale = billing_stripe::sign(WEBHOOK_SECRET, now - 3600, body.as_bytes());
    let future = billing_stripe::sign(WEBHOOK_SECRET, now + 3600, body.as_bytes());

    for signature in [
        None,
        Some("garbage".to_owned()),
        Some(format!("t={now}")),
        Some(format!("t={now},v0={v1}")),
        Some(wrong_secret),
        Some(stale),
        Some(future),
        Some(format!("t={},v1={v1}", now + 1)),
    ] {
        let response = app.webhook_signed(&body, signature.as_deref()).await;
        let (status, problem) = problem(response).await;
        assert_eq!(
            (status, problem["code"].as_str()),
            (400, Some("invalid_signature")),
            "{signature:?}"
        );
    }
    let tampered = body.replace("user_8842", "user_8843");
    let (status, _) = problem(app.webhook_signed(&tampered, Some(&good)).await).await;
    assert_eq!(status, 400);
    assert_eq!(app.count("select count(*) from webhook_events"), 0);
}

#[tokio::test]
async fn a_body_over_256_kib_is_refused_with_413() {
    let app = spawn_app().await;
    let body = format!("{{\"pad\":\"{}\"}}", "x".repeat(1024 * 1024));

    let response = app.webhook(&body).await;

    assert_eq!(problem(response).await.0, 413);
}

#[tokio::test]
async fn a_correctly_signed_body_that_is_not_json_is_a_400() {
    let app = spawn_app().await;

    let response = app.webhook("{not json").await;

    let (status, body) = problem(response).await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "invalid_payload");
}

#[tokio::test]
async fn a_database_failure_answers_5xx_and_a_redelivery_applies_the_event_once() {
    let app = spawn_app().await;
    let tenant = TenantId::new();
    let body = with_tenant("payment_intent.succeeded", tenant, None);
    let admin = billing_postgres::testing::url_with_database(
        &billing_postgres::testing::base_url(),
        "postgres",
    )
    .unwrap();
    let block = format!(
        "alter database \"{0}\" allow_connections false; select pg_terminate_backend(pid) from pg_stat_activity where datname = '{0}'",
        app.db.name()
    );
    let psql = |sql: &str| {
        let out = std::process::Command::new("psql")
            .args([admin.as_str(), "-tAc", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    psql(&block);

    let during = app.webhook(&body).await;

    assert!(during.status().is_server_error(), "{}", during.status());
    psql(&format!(
        "alter database \"{}\" allow_connections true",
        app.db.name()
    ));
    let mut after = String::new();
    for _ in 0..20 {
        let response = app.webhook(&body).await;
        if response.status() == 200 {
            after = outcome(response).await;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    assert_eq!(after, "processed");
    assert_eq!(app.count("select count(*) from payments"), 1);
    assert_eq!(app.count("select count(*) from webhook_events"), 1);
}

#[tokio::test]
async fn a_paid_invoice_gets_its_payment_intent_after_the_answer_and_an_earlier_payment_is_attached(
) {
    let app = spawn_app().await;
    let tenant = TenantId::new();
    // The pinned API version's invoice event names no PaymentIntent; Stripe knows it.
    let paid = with_tenant("invoice.payment_succeeded", tenant, None);
    let pi_ok = with_tenant("payment_intent.succeeded", tenant, None);
    let field = |body: &str, pointer: &str| -> String {
        let v: Value = serde_json::from_str(body).unwrap();
        v.pointer(pointer).unwrap().as_str().unwrap().to_owned()
    };
    let invoice = field(&paid, "/data/object/id");
    let intent = field(&pi_ok, "/data/object/id");
    app.stripe.add_invoice(json!({
        "id": invoice, "object": "invoice", "amount_due": 2000,
        "amount_paid": 2000, "currency": "usd", "status": "paid"
    }));
    app.stripe.add_invoice_payment(&invoice, &intent);

    // The payment's event comes first: no invoice names its PaymentIntent yet.
    assert_eq!(outcome(app.webhook(&pi_ok).await).await, "processed");
    assert_eq!(
        app.count("select count(*) from payments where invoice_id is null"),
        1
    );
    assert_eq!(outcome(app.webhook(&paid).await).await, "processed");

    // The linker, in the background, asks Stripe and records the link.
    let linked = format!(
        "select count(*) from invoices i join payments p on p.invoice_id = i.id \
         where i.stripe_invoice_id = '{invoice}' and i.stripe_payment_intent_id = '{intent}' \
         and i.payment_intent_lookup_at is null"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while app.count(&linked) == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(app.count(&linked), 1, "invoice and payment linked");
    assert_eq!(
        app.scalar("select status || ' ' || amount_paid from invoices"),
        "paid 2000"
    );
}
