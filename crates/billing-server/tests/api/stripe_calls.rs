//! Checkout, portal and payment intents against the local Stripe fake.

use billing_domain::TenantId;
use billing_stripe_emulator::Failure;
use serde_json::{json, Value};

use crate::helpers::{
    admin_token, problem, sample_event, spawn_app, spawn_app_with, tenant_token, TestApp,
};

const CHECKOUT: &str = "/api/v1/billing/stripe/checkout";
const PORTAL: &str = "/api/v1/billing/stripe/portal";

/// Completes a checkout for `tenant` through a signed webhook, as Stripe would.
async fn complete_checkout(app: &TestApp, tenant: TenantId, plan_id: &str) {
    let body = sample_event("checkout.session.completed", |e| {
        e["data"]["object"]["client_reference_id"] = json!(tenant.to_string());
        e["data"]["object"]["metadata"] =
            json!({"tenantId": tenant.to_string(), "planId": plan_id});
    });
    let response = app.webhook(&body).await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn checkout_sends_stripe_the_plan_price_tenant_metadata_trial_and_urls() {
    let app = spawn_app().await;
    let plan = app.create_plan("plan-pro", "price_pro", Some(14)).await;
    let tenant = TenantId::new();

    let response = app
        .post_empty(
            &format!("{CHECKOUT}?tenantId={tenant}&planId=plan-pro"),
            &tenant_token(tenant),
        )
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert!(body["sessionId"].as_str().unwrap().starts_with("cs_test_"));
    assert!(body["sessionUrl"]
        .as_str()
        .unwrap()
        .starts_with("https://checkout.stripe.com/"));
    let sent = app
        .stripe
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/checkout/sessions")
        .unwrap();
    let plan_id = plan["id"].as_str().unwrap();
    let tenant_id = tenant.to_string();
    for (key, value) in [
        ("mode", "subscription"),
        ("line_items[0][price]", "price_pro"),
        ("line_items[0][quantity]", "1"),
        ("client_reference_id", tenant_id.as_str()),
        ("metadata[tenantId]", tenant_id.as_str()),
        ("metadata[planId]", plan_id),
        ("subscription_data[metadata][tenantId]", tenant_id.as_str()),
        ("subscription_data[metadata][planId]", plan_id),
        ("subscription_data[trial_period_days]", "14"),
        (
            "success_url",
            "https://app.example.com/billing/success?session_id={CHECKOUT_SESSION_ID}",
        ),
        ("cancel_url", "https://app.example.com/billing/cancel"),
    ] {
        assert_eq!(sent.form_value(key), Some(value), "{key}");
    }
    assert_eq!(
        sent.form_value("customer"),
        None,
        "Checkout creates the customer"
    );
    assert!(sent.header("idempotency-key").is_some());
    assert_eq!(sent.header("stripe-version"), Some("2026-07-29.dahlia"));
    assert_eq!(
        app.scalar(&format!("select status from tenants where id = '{tenant}'")),
        "pending"
    );
}

async fn start_checkout(app: &TestApp, tenant: TenantId) -> reqwest::Response {
    app.post_empty(
        &format!("{CHECKOUT}?tenantId={tenant}&planId=plan-pro"),
        &tenant_token(tenant),
    )
    .await
}

async fn session_id(response: reqwest::Response) -> String {
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["sessionId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_tenant_never_has_two_checkout_sessions_it_could_both_complete() {
    let app = spawn_app().await;
    app.create_plan("plan-pro", "price_pro", None).await;
    let (tenant, neighbour) = (TenantId::new(), TenantId::new());

    let first = session_id(start_checkout(&app, tenant).await).await;
    let theirs = session_id(start_checkout(&app, neighbour).await).await;
    let second = session_id(start_checkout(&app, tenant).await).await;

    // The abandoned first session can no longer be completed; the other tenant's is untouched.
    assert_eq!(
        app.stripe.checkout_session_status(&first).as_deref(),
        Some("expired")
    );
    assert_eq!(
        app.stripe.checkout_session_status(&second).as_deref(),
        Some("open")
    );
    assert_eq!(
        app.stripe.checkout_session_status(&theirs).as_deref(),
        Some("open")
    );
    assert_eq!(
        app.scalar(&format!(
            "select string_agg(status, ',' order by created_at) from checkout_sessions \
             where tenant_id = '{tenant}'"
        )),
        "expired,open"
    );

    // The tenant completes the second one; its webhook has not arrived yet.
    assert!(app.stripe.complete_checkout_session(&second));
    let third = start_checkout(&app, tenant).await;

    let (status, body) = problem(third).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("subscription_exists"))
    );
    let sessions = app.stripe.checkout_session_ids();
    let withdrawn = sessions.last().unwrap();
    assert_eq!(
        app.stripe.checkout_session_status(withdrawn).as_deref(),
        Some("expired")
    );
    assert_eq!(
        app.stripe.checkout_session_status(&second).as_deref(),
        Some("complete")
    );
}

#[tokio::test]
async fn when_stripe_cannot_expire_the_older_session_the_new_one_is_withdrawn_with_a_502() {
    let app = spawn_app().await;
    app.create_plan("plan-pro", "price_pro", None).await;
    let tenant = TenantId::new();
    let first = session_id(start_checkout(&app, tenant).await).await;
    app.stripe.fail_next_on(
        &format!("/v1/checkout/sessions/{first}/expire"),
        100,
        Failure::Status(500),
    );

    let refused = start_checkout(&app, tenant).await;

    let (status, body) = problem(refused).await;
    assert_eq!(status, 502, "{body}");
    let withdrawn = app.stripe.checkout_session_ids().last().unwrap().clone();
    assert_ne!(withdrawn, first);
    assert_eq!(
        app.stripe.checkout_session_status(&withdrawn).as_deref(),
        Some("expired")
    );
    assert_eq!(
        app.stripe.checkout_session_status(&first).as_deref(),
        Some("open")
    );

    // Stripe is back: the next checkout expires the first session after all.
    app.stripe.clear_failures();
    let third = session_id(start_checkout(&app, tenant).await).await;

    assert_eq!(
        app.stripe.checkout_session_status(&first).as_deref(),
        Some("expired")
    );
    assert_eq!(
        app.stripe.checkout_session_status(&third).as_deref(),
        Some("open")
    );
}

#[tokio::test]
async fn a_tenant_whose_completed_subscription_ended_can_check_out_again_at_once() {
    let app = spawn_app().await;
    // The price the samples' subscription bills.
    let plan = app
        .create_plan("plan-pro", "price_1Rq48kHx4KpL29aTV5PnnbOR", None)
        .await;
    let tenant = TenantId::new();
    let first = session_id(start_checkout(&app, tenant).await).await;
    assert!(app.stripe.complete_checkout_session(&first));
    let completed = sample_event("checkout.session.completed", |e| {
        let object = &mut e["data"]["object"];
        object["id"] = json!(first);
        object["client_reference_id"] = json!(tenant.to_string());
        object["metadata"] = json!({"tenantId": tenant.to_string(), "planId": plan["id"]});
    });
    assert_eq!(app.webhook(&completed).await.status(), 200);
    let ended = sample_event("customer.subscription.deleted", |e| {
        e["created"] = json!(e["created"].as_i64().unwrap() + 86_400 * 30);
        e["data"]["object"]["metadata"] = json!({"tenantId": tenant.to_string()});
    });
    assert_eq!(app.webhook(&ended).await.status(), 200);

    // The webhook closed the first session: it is not taken for a checkout in flight.
    let again = start_checkout(&app, tenant).await;

    assert_eq!(again.status(), 200);
    assert_eq!(
        app.scalar(&format!(
            "select string_agg(status, ',' order by created_at) from checkout_sessions \
             where tenant_id = '{tenant}'"
        )),
        "complete,open"
    );
}

#[tokio::test]
async fn checkout_accepts_a_json_body_too() {
    let app = spawn_app().await;
    app.create_plan("plan-pro", "price_pro", None).await;
    let tenant = TenantId::new();

    let response = app
        .post(
            CHECKOUT,
            &tenant_token(tenant),
            &json!({"tenantId": tenant.to_string(), "planId": "plan-pro"}),
        )
        .await;

    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn checkout_refuses_unknown_and_inactive_plans() {
    let app = spawn_app().await;
    let plan = app.create_plan("plan-old", "price_old", None).await;
    let retire = app
        .client
        .patch(app.url(&format!(
            "/api/v1/billing/plans/{}",
            plan["id"].as_str().unwrap()
        )))
        .bearer_auth(admin_token())
        .json(&json!({"active": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(retire.status(), 200);
    let tenant = TenantId::new();

    let unknown = app
        .post_empty(
            &format!("{CHECKOUT}?tenantId={tenant}&planId=plan-nope"),
            &tenant_token(tenant),
        )
        .await;
    let inactive = app
        .post_empty(
            &format!("{CHECKOUT}?tenantId={tenant}&planId=plan-old"),
            &tenant_token(tenant),
        )
        .await;

    assert_eq!(problem(unknown).await.1["code"], "plan_not_found");
    let (status, body) = problem(inactive).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("plan_inactive"))
    );
    assert_eq!(app.stripe.checkout_sessions_created(), 0);
}

#[tokio::test]
async fn a_subscribed_tenant_is_pointed_to_the_portal_and_the_portal_opens_for_its_customer() {
    let app = spawn_app().await;
    let plan = app.create_plan("plan-pro", "price_pro", None).await;
    let tenant = TenantId::new();
    complete_checkout(&app, tenant, plan["id"].as_str().unwrap()).await;

    let again = app
        .post_empty(
            &format!("{CHECKOUT}?tenantId={tenant}&planId=plan-pro"),
            &tenant_token(tenant),
        )
        .await;
    let portal = app
        .post_empty(
            &format!("{PORTAL}?customerId=cus_t9FXeM4pJmfNhL"),
            &tenant_token(tenant),
        )
        .await;

    let (status, body) = problem(again).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("subscription_exists"))
    );
    assert!(body["detail"].as_str().unwrap().contains("portal"));
    assert_eq!(portal.status(), 200);
    let portal: Value = portal.json().await.unwrap();
    assert!(portal["portalUrl"]
        .as_str()
        .unwrap()
        .starts_with("https://billing.stripe.com/"));
    let sent = app
        .stripe
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/billing_portal/sessions")
        .unwrap();
    assert_eq!(sent.form_value("customer"), Some("cus_t9FXeM4pJmfNhL"));
    assert_eq!(
        sent.form_value("return_url"),
        Some("https://app.example.com/billing")
    );
}

#[tokio::test]
async fn the_portal_refuses_foreign_customers_and_open_redirects() {
    let app = spawn_app().await;
    let plan = app.create_plan("plan-pro", "price_pro", None).await;
    let tenant = TenantId::new();
    complete_checkout(&app, tenant, plan["id"].as_str().unwrap()).await;

    let evil = app
        .post_empty(
            &format!("{PORTAL}?customerId=cus_t9FXeM4pJmfNhL&returnUrl=https%3A%2F%2Fevil.example.net%2F"),
            &tenant_token(tenant),
        )
        .await;
    let foreign = app
        .post_empty(
            &format!("{PORTAL}?customerId=cus_t9FXeM4pJmfNhL"),
            &tenant_token(TenantId::new()),
        )
        .await;
    let unknown = app
        .post_empty(&format!("{PORTAL}?customerId=cus_nobody"), &admin_token())
        .await;

    assert_eq!(problem(evil).await.1["code"], "invalid_return_url");
    assert_eq!(problem(foreign).await.0, 403);
    assert_eq!(problem(unknown).await.1["code"], "customer_not_found");
    assert_eq!(app.stripe.portal_sessions_created(), 0);
}

#[tokio::test]
async fn checkout_refuses_a_customer_that_belongs_to_another_tenant() {
    let app = spawn_app().await;
    let plan = app.create_plan("plan-pro", "price_pro", None).await;
    let owner = TenantId::new();
    complete_checkout(&app, owner, plan["id"].as_str().unwrap()).await;
    let intruder = TenantId::new();

    let response = app
        .post_empty(
            &format!(
                "{CHECKOUT}?tenantId={intruder}&planId=plan-pro&customerId=cus_t9FXeM4pJmfNhL"
            ),
            &tenant_token(intruder),
        )
        .await;

    assert_eq!(
        problem(response).await.1["code"],
        "customer_belongs_to_other_tenant"
    );
}

#[tokio::test]
async fn ten_simultaneous_payment_intent_calls_create_exactly_one_payment_intent() {
    let app = spawn_app().await;
    let tenant = TenantId::new();
    app.create_invoice(tenant, "inv-001", 12_500).await;
    let token = tenant_token(tenant);

    let calls =
        (0..10).map(|_| app.post_empty("/api/v1/billing/invoices/inv-001/payment-intent", &token));
    let responses = futures::future::join_all(calls).await;

    let mut secrets = Vec::new();
    for response in responses {
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        secrets.push(body["clientSecret"].as_str().unwrap().to_owned());
    }
    secrets.dedup();
    assert_eq!(secrets.len(), 1, "every caller got the same client secret");
    assert_eq!(app.stripe.payment_intents_created(), 1);
    let stored =
        app.scalar("select stripe_payment_intent_id from invoices where number = 'inv-001'");
    assert!(secrets[0].starts_with(&format!("{stored}_secret_")));
    let sent = app
        .stripe
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/payment_intents")
        .unwrap();
    assert_eq!(sent.form_value("amount"), Some("12500"));
    assert_eq!(sent.form_value("currency"), Some("usd"));
    assert_eq!(
        sent.form_value("automatic_payment_methods[enabled]"),
        Some("true")
    );
    assert_eq!(
        sent.form_value("metadata[tenantId]"),
        Some(tenant.to_string().as_str())
    );
    assert!(sent.form_value("metadata[invoiceId]").is_some());
}

#[tokio::test]
async fn a_second_call_hands_out_the_same_payment_intent_again() {
    let app = spawn_app().await;
    let tenant = TenantId::new();
    let invoice = app.create_invoice(tenant, "inv-001", 500).await;
    let path = format!(
        "/api/v1/billing/invoices/{}/payment-intent",
        invoice["id"].as_str().unwrap()
    );

    let first: Value = app
        .post_empty(&path, &tenant_token(tenant))
        .await
        .json()
        .await
        .unwrap();
    let second: Value = app
        .post_empty(&path, &tenant_token(tenant))
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(first, second);
    assert_eq!(app.stripe.payment_intents_created(), 1);
}

#[tokio::test]
async fn paid_invoices_and_other_tenants_get_no_payment_intent() {
    let app = spawn_app().await;
    let tenant = TenantId::new();
    app.create_invoice(tenant, "inv-001", 500).await;
    app.db
        .execute("update invoices set status = 'paid', amount_paid = 500 where number = 'inv-001'")
        .unwrap();

    let paid = app
        .post_empty(
            "/api/v1/billing/invoices/inv-001/payment-intent",
            &tenant_token(tenant),
        )
        .await;
    let foreign = app
        .post_empty(
            "/api/v1/billing/invoices/inv-001/payment-intent",
            &tenant_token(TenantId::new()),
        )
        .await;
    let missing = app
        .post_empty(
            "/api/v1/billing/invoices/inv-404/payment-intent",
            &admin_token(),
        )
        .await;

    let (status, body) = problem(paid).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("invoice_already_paid"))
    );
    assert_eq!(problem(foreign).await.0, 403);
    assert_eq!(problem(missing).await.0, 404);
    assert_eq!(app.stripe.payment_intents_created(), 0);
}

#[tokio::test]
async fn stripe_failing_persistently_gives_a_502_within_the_deadline() {
    let app = spawn_app().await;
    let tenant = TenantId::new();
    app.create_invoice(tenant, "inv-001", 500).await;
    app.stripe.fail_next(100, Failure::Status(500));
    let started = std::time::Instant::now();

    let response = app
        .post_empty(
            "/api/v1/billing/invoices/inv-001/payment-intent",
            &tenant_token(tenant),
        )
        .await;

    let (status, body) = problem(response).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("stripe_unavailable"))
    );
    assert!(
        // The slack is for a busy CI machine, not for the client.
        started.elapsed() < std::time::Duration::from_secs(8),
        "deadline is 5 s"
    );
    assert_eq!(app.stripe.payment_intents_created(), 0);
}

#[tokio::test]
async fn a_stripe_hiccup_is_retried_with_the_same_key_and_creates_one_intent() {
    let app = spawn_app().await;
    let tenant = TenantId::new();
    app.create_invoice(tenant, "inv-001", 500).await;
    app.stripe
        .fail_next_on("/v1/payment_intents", 1, Failure::Status(503));

    let response = app
        .post_empty(
            "/api/v1/billing/invoices/inv-001/payment-intent",
            &tenant_token(tenant),
        )
        .await;

    assert_eq!(response.status(), 200);
    let keys: Vec<_> = app
        .stripe
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/payment_intents")
        .map(|r| r.header("idempotency-key").unwrap().to_owned())
        .collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1]);
    assert_eq!(app.stripe.payment_intents_created(), 1);
}

#[tokio::test]
async fn a_refused_api_key_is_a_502_that_does_not_leak_the_key() {
    let app = spawn_app_with(|env| {
        env.insert("STRIPE_API_KEY", "sk_live_wrong_key_for_tests".into());
    })
    .await;
    app.create_plan("plan-pro", "price_pro", None).await;
    let tenant = TenantId::new();

    let response = app
        .post_empty(
            &format!("{CHECKOUT}?tenantId={tenant}&planId=plan-pro"),
            &tenant_token(tenant),
        )
        .await;

    let (status, body) = problem(response).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (502, Some("stripe_unavailable"))
    );
    assert!(!body.to_string().contains("sk_live_wrong"));
}

#[tokio::test]
async fn stripe_refusing_the_request_is_a_4xx_with_stripes_message() {
    let app = spawn_app().await;
    app.create_plan("plan-pro", "price_pro", None).await;
    let tenant = TenantId::new();
    app.stripe.fail_next_on(
        "/v1/checkout/sessions",
        1,
        Failure::StripeError {
            status: 400,
            error_type: "invalid_request_error".into(),
            code: Some("resource_missing".into()),
            message: "No such price: 'price_pro'".into(),
            param: Some("line_items[0][price]".into()),
        },
    );

    let response = app
        .post_empty(
            &format!("{CHECKOUT}?tenantId={tenant}&planId=plan-pro"),
            &tenant_token(tenant),
        )
        .await;

    let (status, body) = problem(response).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("stripe_request_refused"))
    );
    assert!(body["detail"].as_str().unwrap().contains("No such price"));
}
