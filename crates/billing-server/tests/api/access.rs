//! `GET /tenants/{tenantId}/access`: the answer other services ask on every request,
//! from subscriptions the webhook mirrored, with the plan's features.

use billing_domain::TenantId;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

use crate::helpers::{
    admin_token, problem, sample_event, spawn_app, spawn_app_with, tenant_token, TestApp,
};

const PRICE: &str = "price_1Rq48kHx4KpL29aTV5PnnbOR";

/// A `customer.subscription.updated` of `tenant`'s own subscription, created at `created`.
fn update(
    tenant: TenantId,
    n: u32,
    created: DateTime<Utc>,
    edit: impl FnOnce(&mut Value),
) -> String {
    sample_event("customer.subscription.updated", |e| {
        e["id"] = json!(format!("evt_access_{n}"));
        e["created"] = json!(created.timestamp());
        let object = &mut e["data"]["object"];
        object["id"] = json!(format!("sub_access_{n}"));
        object["customer"] = json!(format!("cus_access_{n}"));
        object["metadata"] = json!({"tenantId": tenant.to_string()});
        edit(object);
    })
}

async fn access(app: &TestApp, tenant: TenantId) -> Value {
    let response = app
        .get(
            &format!("/api/v1/billing/tenants/{tenant}/access"),
            &tenant_token(tenant),
        )
        .await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn features_plan(app: &TestApp) {
    let created = app
        .post(
            "/api/v1/billing/plans",
            &admin_token(),
            &json!({
                "code": "plan-pro", "name": "Pro", "stripePriceId": PRICE, "amount": 4900,
                "currency": "usd", "interval": "month",
                "features": ["reports:export", "seats.max-10"],
            }),
        )
        .await;
    assert_eq!(created.status(), 201);
}

fn time(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn access_answers_for_each_state_the_webhook_mirrored() {
    let app = spawn_app().await;
    features_plan(&app).await;
    let now = Utc::now();
    let (active, grace, late, ending, none) = (
        TenantId::new(),
        TenantId::new(),
        TenantId::new(),
        TenantId::new(),
        TenantId::new(),
    );
    let period_end = now + Duration::days(20);
    for body in [
        update(active, 1, now - Duration::hours(1), |o| {
            o["status"] = json!("active")
        }),
        update(grace, 2, now - Duration::days(2), |o| {
            o["status"] = json!("past_due")
        }),
        update(late, 3, now - Duration::days(8), |o| {
            o["status"] = json!("past_due")
        }),
        update(ending, 4, now - Duration::hours(1), |o| {
            o["status"] = json!("active");
            o["cancel_at_period_end"] = json!(true);
            o["current_period_end"] = json!(period_end.timestamp());
            o["items"]["data"][0]["current_period_end"] = json!(period_end.timestamp());
        }),
    ] {
        assert_eq!(app.webhook(&body).await.status(), 200);
    }

    let active = access(&app, active).await;
    let grace_answer = access(&app, grace).await;
    let late = access(&app, late).await;
    let ending = access(&app, ending).await;
    let none = access(&app, none).await;

    assert_eq!(
        active,
        json!({"entitled": true, "planCode": "plan-pro",
               "features": ["reports:export", "seats.max-10"], "status": "active",
               "until": null, "reason": "active"})
    );
    assert_eq!(grace_answer["entitled"], true);
    assert_eq!(grace_answer["reason"], "past_due_grace");
    assert_eq!(grace_answer["status"], "past_due");
    // Seven days (the default) after the event that made it past_due.
    let expected = (now - Duration::days(2) + Duration::days(7)).timestamp();
    assert_eq!(time(&grace_answer["until"]).timestamp(), expected);
    assert_eq!(
        late,
        json!({"entitled": false, "planCode": "plan-pro", "features": [],
               "status": "past_due", "until": null, "reason": "past_due"})
    );
    assert_eq!(ending["entitled"], true);
    assert_eq!(ending["reason"], "cancel_at_period_end");
    assert_eq!(time(&ending["until"]).timestamp(), period_end.timestamp());
    assert_eq!(
        none,
        json!({"entitled": false, "planCode": null, "features": [], "status": null,
               "until": null, "reason": "no_subscription"})
    );
    assert_eq!(
        app.count(&format!(
            "select count(*) from subscriptions where tenant_id = '{grace}' \
             and past_due_since = to_timestamp({})",
            (now - Duration::days(2)).timestamp()
        )),
        1
    );
}

#[tokio::test]
async fn access_grace_days_sets_how_long_a_past_due_tenant_keeps_access() {
    let app = spawn_app_with(|env| {
        env.insert("ACCESS_GRACE_DAYS", "1".to_owned());
    })
    .await;
    features_plan(&app).await;
    let tenant = TenantId::new();
    let failed = update(tenant, 5, Utc::now() - Duration::days(2), |o| {
        o["status"] = json!("past_due");
    });
    assert_eq!(app.webhook(&failed).await.status(), 200);

    let answer = access(&app, tenant).await;

    assert_eq!(answer["entitled"], false);
    assert_eq!(answer["reason"], "past_due");
}

#[tokio::test]
async fn access_is_the_tenants_own_or_an_admins() {
    let app = spawn_app().await;
    let mine = TenantId::new();
    let path = format!("/api/v1/billing/tenants/{mine}/access");

    let admin = app.get(&path, &admin_token()).await;
    let other = app.get(&path, &tenant_token(TenantId::new())).await;
    let anonymous = app.client.get(app.url(&path)).send().await.unwrap();

    assert_eq!(admin.status(), 200);
    assert_eq!(problem(other).await.0, 403);
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn a_change_applied_here_is_answered_at_once_despite_the_kept_answer() {
    // The default keeps an entitled answer for a second; an event this replica applies
    // empties what it kept, so the next check sees the change.
    let app = spawn_app().await;
    features_plan(&app).await;
    let tenant = TenantId::new();
    let now = Utc::now();
    let active = update(tenant, 10, now - Duration::minutes(2), |o| {
        o["status"] = json!("active")
    });
    assert_eq!(app.webhook(&active).await.status(), 200);
    assert_eq!(access(&app, tenant).await["entitled"], true);
    assert_eq!(access(&app, tenant).await["entitled"], true);

    let unpaid = update(tenant, 10, now - Duration::minutes(1), |o| {
        o["status"] = json!("unpaid")
    })
    .replace("evt_access_10", "evt_access_10b");
    assert_eq!(app.webhook(&unpaid).await.status(), 200);

    let after = access(&app, tenant).await;
    assert_eq!(after["entitled"], false);
    assert_eq!(after["reason"], "unpaid");
}
