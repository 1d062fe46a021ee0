//! Time moved by the emulator's test clock: a subscription paid through Checkout renews a
//! month later, the emulator emits the renewal's events in Stripe's order and delivers them
//! signed, and the service applies them (new period, second paid invoice and payment).
//! The checkout's own PaymentIntent event arrives before the session's and is applied once
//! the session links its customer. A renewal that fails twice on a card that fails when
//! charged goes past_due, and back to active when Stripe's second retry pays; a failed
//! renewal's invoice voided at Stripe is void here, one paid out of band is paid here with
//! no payment.

use billing_domain::TenantId;
use billing_server::startup::DEV_EMULATOR_API_KEY;
use serde_json::{json, Value};

use crate::common::dev_service::DevService;
use crate::common::{admin_token, tenant_token};

const DAY: i64 = 86_400;

/// A Stripe API call to the service's emulator.
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

/// Waits until the emulator has nothing left to deliver, none given up.
async fn delivered(app: &DevService) {
    let url = format!(
        "{}/__emulator/deliveries",
        app.emulator.base_url().trim_end_matches('/')
    );
    crate::common::dev_service::eventually("every event delivered", || async {
        let body: Value = app
            .http
            .get(&url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let states: Vec<&str> = body["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|e| e["state"].as_str())
            .collect();
        assert!(
            !states.contains(&"failed"),
            "a delivery was given up: {body}"
        );
        if states.contains(&"pending") {
            Err(body.to_string())
        } else {
            Ok(())
        }
    })
    .await;
}

fn period_end(tenant: &Value) -> i64 {
    let end = tenant["subscription"]["currentPeriodEnd"]
        .as_str()
        .expect("the tenant's subscription has a period end");
    chrono::DateTime::parse_from_rfc3339(end)
        .unwrap()
        .timestamp()
}

/// Whether `wanted` appears in `types` in this order (other events may come between).
fn in_order(types: &[String], wanted: &[&str]) -> bool {
    let mut rest = types.iter();
    wanted.iter().all(|w| rest.any(|t| t == w))
}

#[tokio::test]
async fn a_month_on_the_test_clock_renews_the_subscription_and_the_service_applies_it() {
    let app = DevService::start().await;
    let admin = admin_token();
    let now = chrono::Utc::now().timestamp();
    let (tenant, token, clock, _) = subscribed_on_a_clock(&app, now).await;
    let subscribed = app.tenant(tenant, &token).await;
    let first_end = period_end(&subscribed);
    let events_before = app.emulator.event_types().len();

    advance(&app, &clock, now + 32 * DAY).await;

    let renewal: Vec<String> = app.emulator.event_types()[events_before..].to_vec();
    assert!(
        in_order(
            &renewal,
            &[
                "invoice.created",
                "invoice.finalized",
                "payment_intent.succeeded",
                "invoice.paid",
                "invoice.payment_succeeded",
                "customer.subscription.updated",
            ]
        ),
        "renewal events in Stripe's order: {renewal:?}"
    );
    let renewed = app.tenant(tenant, &token).await;
    assert_eq!(renewed["status"], "active", "{renewed}");
    assert_eq!(renewed["subscription"]["status"], "active", "{renewed}");
    let second_end = period_end(&renewed);
    assert!(
        (second_end - first_end - 30 * DAY).abs() <= 2 * DAY,
        "the period moved on a month: {first_end} -> {second_end}"
    );
    let (_, invoices) = app
        .get(&format!("/invoices?tenantId={tenant}&status=paid"), &token)
        .await;
    assert_eq!(invoices["data"].as_array().unwrap().len(), 2, "{invoices}");
    // The checkout's own PaymentIntent event came before `checkout.session.completed`,
    // when its customer was nobody's yet: recorded unmatched, then applied again once the
    // checkout linked the customer. The renewal's found the tenant by its customer.
    let (_, payments) = app
        .get(&format!("/payments?tenantId={tenant}"), &token)
        .await;
    assert_eq!(payments["data"].as_array().unwrap().len(), 2, "{payments}");
    let (_, unmatched) = app.get("/stripe/events?status=unmatched", &admin).await;
    assert_eq!(
        unmatched["data"].as_array().unwrap().len(),
        0,
        "{unmatched}"
    );

    app.stop().await;
}

/// A tenant subscribed to plan-pro through Checkout, its customer on a new test clock
/// frozen at `now`: the tenant, its token, the clock and the Stripe customer.
async fn subscribed_on_a_clock(app: &DevService, now: i64) -> (TenantId, String, String, String) {
    let clock = stripe(
        app,
        "/v1/test_helpers/test_clocks",
        &[("frozen_time", now.to_string())],
    )
    .await;
    let clock = clock["id"].as_str().unwrap().to_owned();
    let tenant = TenantId::new();
    let token = tenant_token(tenant);
    let opened = app
        .post(
            &format!("/stripe/checkout?tenantId={tenant}&planId=plan-pro"),
            &token,
        )
        .await;
    let session = opened["sessionId"].as_str().unwrap();
    control(
        app,
        &format!("checkout/sessions/{session}/complete"),
        &json!({"card": "4242424242424242", "test_clock": clock}),
    )
    .await;
    delivered(app).await;
    let view = app.tenant(tenant, &token).await;
    assert_eq!(view["status"], "active", "{view}");
    let customer = view["stripeCustomerId"].as_str().unwrap().to_owned();
    (tenant, token, clock, customer)
}

/// A POST to the emulator's controls (`/__emulator/{path}`).
async fn control(app: &DevService, path: &str, body: &Value) {
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
        .unwrap();
}

/// Moves `clock` to `at` and waits until its events are delivered.
async fn advance(app: &DevService, clock: &str, at: i64) {
    stripe(
        app,
        &format!("/v1/test_helpers/test_clocks/{clock}/advance"),
        &[("frozen_time", at.to_string())],
    )
    .await;
    delivered(app).await;
}

fn count(types: &[String], wanted: &str) -> usize {
    types.iter().filter(|t| *t == wanted).count()
}

#[tokio::test]
async fn a_renewal_that_fails_twice_then_pays_goes_past_due_and_back_to_active() {
    let app = DevService::start().await;
    let now = chrono::Utc::now().timestamp();
    let (tenant, token, clock, customer) = subscribed_on_a_clock(&app, now).await;
    control(
        &app,
        &format!("customers/{customer}/payment_method"),
        &json!({"card": "4000000000000341"}),
    )
    .await;
    let before = app.emulator.event_types().len();

    // The renewal is charged an hour after the period's end and fails.
    advance(&app, &clock, now + 32 * DAY).await;
    let failed_once = app.tenant(tenant, &token).await;
    assert_eq!(
        failed_once["subscription"]["status"], "past_due",
        "{failed_once}"
    );
    let (_, overdue) = app
        .get(
            &format!("/invoices?tenantId={tenant}&status=overdue"),
            &token,
        )
        .await;
    assert_eq!(overdue["data"].as_array().unwrap().len(), 1, "{overdue}");

    // Stripe's first retry, three days later, fails too.
    advance(&app, &clock, now + 35 * DAY).await;
    let types = app.emulator.event_types()[before..].to_vec();
    assert_eq!(count(&types, "invoice.payment_failed"), 2, "{types:?}");
    let failed_twice = app.tenant(tenant, &token).await;
    assert_eq!(
        failed_twice["subscription"]["status"], "past_due",
        "{failed_twice}"
    );

    // A card that pays, then the second retry five days later.
    control(
        &app,
        &format!("customers/{customer}/payment_method"),
        &json!({"card": "4242424242424242"}),
    )
    .await;
    advance(&app, &clock, now + 40 * DAY).await;

    let types = app.emulator.event_types()[before..].to_vec();
    assert_eq!(count(&types, "invoice.payment_failed"), 2, "{types:?}");
    assert_eq!(count(&types, "invoice.payment_succeeded"), 1, "{types:?}");
    let paid = app.tenant(tenant, &token).await;
    assert_eq!(paid["status"], "active", "{paid}");
    assert_eq!(paid["subscription"]["status"], "active", "{paid}");
    let (_, overdue) = app
        .get(
            &format!("/invoices?tenantId={tenant}&status=overdue"),
            &token,
        )
        .await;
    assert_eq!(overdue["data"].as_array().unwrap().len(), 0, "{overdue}");
    let (_, invoices) = app
        .get(&format!("/invoices?tenantId={tenant}&status=paid"), &token)
        .await;
    assert_eq!(invoices["data"].as_array().unwrap().len(), 2, "{invoices}");

    app.stop().await;
}

/// The tenant's one overdue invoice after a failed renewal: its id and Stripe's id.
async fn overdue_invoice(app: &DevService, tenant: TenantId, token: &str) -> (String, String) {
    let (_, overdue) = app
        .get(
            &format!("/invoices?tenantId={tenant}&status=overdue"),
            token,
        )
        .await;
    let [invoice] = overdue["data"]
        .as_array()
        .unwrap()
        .clone()
        .try_into()
        .unwrap();
    (
        invoice["id"].as_str().unwrap().to_owned(),
        invoice["stripeInvoiceId"].as_str().unwrap().to_owned(),
    )
}

/// A tenant whose renewal failed (a card that fails when charged): its invoice is open at
/// Stripe and overdue here.
async fn with_a_failed_renewal(app: &DevService) -> (TenantId, String, String, String) {
    let now = chrono::Utc::now().timestamp();
    let (tenant, token, clock, customer) = subscribed_on_a_clock(app, now).await;
    control(
        app,
        &format!("customers/{customer}/payment_method"),
        &json!({"card": "4000000000000341"}),
    )
    .await;
    advance(app, &clock, now + 32 * DAY).await;
    let (id, stripe_id) = overdue_invoice(app, tenant, &token).await;
    (tenant, token, id, stripe_id)
}

#[tokio::test]
async fn an_invoice_voided_at_stripe_is_void_here_and_refuses_a_payment_intent() {
    let app = DevService::start().await;
    let (tenant, token, id, stripe_id) = with_a_failed_renewal(&app).await;

    stripe(&app, &format!("/v1/invoices/{stripe_id}/void"), &[]).await;
    delivered(&app).await;

    let (_, invoice) = app.get(&format!("/invoices/{id}"), &token).await;
    assert_eq!(invoice["status"], "void", "{invoice}");
    let refused = app
        .http
        .post(format!(
            "{}/api/v1/billing/invoices/{id}/payment-intent",
            app.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 409);
    let (_, tenant_view) = app.get(&format!("/tenants/{tenant}"), &token).await;
    assert_eq!(
        tenant_view["subscription"]["status"], "past_due",
        "{tenant_view}"
    );

    app.stop().await;
}

#[tokio::test]
async fn an_invoice_paid_out_of_band_is_paid_here_without_a_payment() {
    let app = DevService::start().await;
    let (tenant, token, id, stripe_id) = with_a_failed_renewal(&app).await;
    let (_, before) = app
        .get(&format!("/payments?tenantId={tenant}"), &token)
        .await;
    let payments_before = before["data"].as_array().unwrap().len();

    let paid = stripe(
        &app,
        &format!("/v1/invoices/{stripe_id}/pay"),
        &[("paid_out_of_band", "true".to_owned())],
    )
    .await;
    delivered(&app).await;

    assert_eq!(paid["paid_out_of_band"], true, "{paid}");
    let (_, invoice) = app.get(&format!("/invoices/{id}"), &token).await;
    assert_eq!(invoice["status"], "paid", "{invoice}");
    let (_, after) = app
        .get(&format!("/payments?tenantId={tenant}"), &token)
        .await;
    let succeeded = after["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["status"] == "succeeded")
        .count();
    assert_eq!(
        succeeded, 1,
        "only the checkout's payment succeeded: {after}"
    );
    assert_eq!(
        after["data"].as_array().unwrap().len(),
        payments_before,
        "no payment row for money received outside Stripe: {after}"
    );

    app.stop().await;
}
