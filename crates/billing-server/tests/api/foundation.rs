//! The foundation's promises: health, plans, invoices, tenancy, auth.

use billing_domain::TenantId;
use serde_json::json;

use crate::helpers::{admin_token, problem, spawn_app, spawn_app_with, tenant_token};

#[tokio::test]
async fn ready_answers_200_when_the_database_answers() {
    let app = spawn_app().await;

    let live = app
        .client
        .get(app.url("/health/live"))
        .send()
        .await
        .unwrap();
    let ready = app
        .client
        .get(app.url("/health/ready"))
        .send()
        .await
        .unwrap();

    assert_eq!(live.status(), 200);
    assert_eq!(ready.status(), 200);
}

#[tokio::test]
async fn ready_answers_503_when_the_database_is_unreachable() {
    let app = spawn_app_with(|env| {
        env.insert(
            "DATABASE_URL",
            "postgres://postgres@127.0.0.1:1/nowhere".into(),
        );
    })
    .await;

    let ready = app
        .client
        .get(app.url("/health/ready"))
        .send()
        .await
        .unwrap();

    let (status, body) = problem(ready).await;
    assert_eq!(status, 503);
    assert_eq!(body["code"], "database_unavailable");
}

#[tokio::test]
async fn an_admin_creates_a_plan_and_reads_it_back_by_id_and_by_code() {
    let app = spawn_app().await;
    let created = app.create_plan("plan-pro", "price_pro", Some(14)).await;
    let id = created["id"].as_str().unwrap();

    let by_id: serde_json::Value = app
        .get(
            &format!("/api/v1/billing/plans/{id}"),
            &tenant_token(TenantId::new()),
        )
        .await
        .json()
        .await
        .unwrap();
    let by_code: serde_json::Value = app
        .get("/api/v1/billing/plans/plan-pro", &admin_token())
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(by_id, created);
    assert_eq!(by_code, created);
    assert_eq!(created["trialDays"], 14);
    assert_eq!(created["stripePriceId"], "price_pro");
    assert_eq!(created["amount"], 4900);
}

#[tokio::test]
async fn a_duplicate_plan_code_is_a_conflict() {
    let app = spawn_app().await;
    app.create_plan("plan-pro", "price_pro", None).await;

    let again = app
        .post(
            "/api/v1/billing/plans",
            &admin_token(),
            &json!({"code": "plan-pro", "name": "Pro", "stripePriceId": "price_other",
                    "amount": 1, "currency": "usd", "interval": "month"}),
        )
        .await;

    let (status, body) = problem(again).await;
    assert_eq!(status, 409);
    assert_eq!(body["code"], "plan_exists");
}

#[tokio::test]
async fn an_admin_creates_an_invoice_and_reads_it_back_by_id_and_by_number() {
    let app = spawn_app().await;
    let tenant = TenantId::new();
    let created = app.create_invoice(tenant, "inv-001", 12_500).await;
    let id = created["id"].as_str().unwrap();

    let by_id: serde_json::Value = app
        .get(
            &format!("/api/v1/billing/invoices/{id}"),
            &tenant_token(tenant),
        )
        .await
        .json()
        .await
        .unwrap();
    let by_number: serde_json::Value = app
        .get("/api/v1/billing/invoices/inv-001", &admin_token())
        .await
        .json()
        .await
        .unwrap();

    assert_eq!(by_id, created);
    assert_eq!(by_number, created);
    assert_eq!(created["status"], "open");
    assert_eq!(created["amountDue"], 12_500);
    assert_eq!(created["amountRemaining"], 12_500);
    assert_eq!(created["dueDate"], "2026-12-31");
    let tenant_status = app.scalar(&format!("select status from tenants where id = '{tenant}'"));
    assert_eq!(
        tenant_status, "pending",
        "an unknown tenant is registered as pending"
    );
}

#[tokio::test]
async fn a_tenant_lists_only_its_own_invoices_and_is_refused_anothers() {
    let app = spawn_app().await;
    let mine = TenantId::new();
    let theirs = TenantId::new();
    app.create_invoice(mine, "inv-001", 100).await;
    app.create_invoice(mine, "inv-002", 200).await;
    app.create_invoice(theirs, "inv-003", 300).await;

    let own: serde_json::Value = app
        .get("/api/v1/billing/invoices", &tenant_token(mine))
        .await
        .json()
        .await
        .unwrap();
    let other = app
        .get(
            &format!("/api/v1/billing/invoices?tenantId={theirs}"),
            &tenant_token(mine),
        )
        .await;
    let single = app
        .get("/api/v1/billing/invoices/inv-003", &tenant_token(mine))
        .await;

    let numbers: Vec<_> = own["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["number"].clone())
        .collect();
    assert_eq!(numbers, [json!("inv-002"), json!("inv-001")]);
    assert_eq!(problem(other).await.0, 403);
    assert_eq!(problem(single).await.0, 403);
}

#[tokio::test]
async fn invoice_pages_follow_the_cursor_to_the_end() {
    let app = spawn_app().await;
    let tenant = TenantId::new();
    for n in 1..=5 {
        app.create_invoice(tenant, &format!("inv-{n:03}"), 100)
            .await;
    }

    let mut seen = Vec::new();
    let mut next = String::new();
    loop {
        let page: serde_json::Value = app
            .get(
                &format!("/api/v1/billing/invoices?limit=2{next}"),
                &admin_token(),
            )
            .await
            .json()
            .await
            .unwrap();
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["number"].as_str().unwrap().to_owned()),
        );
        match page["nextCursor"].as_str() {
            Some(c) => next = format!("&cursor={c}"),
            None => break,
        }
    }

    assert_eq!(
        seen,
        ["inv-005", "inv-004", "inv-003", "inv-002", "inv-001"]
    );
}

#[tokio::test]
async fn requests_without_a_valid_token_get_401_with_a_bearer_challenge() {
    let app = spawn_app().await;

    let none = app
        .client
        .get(app.url("/api/v1/billing/plans"))
        .send()
        .await
        .unwrap();
    let bad = app.get("/api/v1/billing/plans", "not-a-token").await;

    for response in [none, bad] {
        assert_eq!(response.status(), 401);
        let challenge = response
            .headers()
            .get("www-authenticate")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(challenge.starts_with("Bearer"), "{challenge}");
    }
}

#[tokio::test]
async fn a_tenant_reads_its_tenant_but_not_another() {
    let app = spawn_app().await;
    let mine = TenantId::new();
    app.create_invoice(mine, "inv-001", 100).await;

    let own = app
        .get(
            &format!("/api/v1/billing/tenants/{mine}"),
            &tenant_token(mine),
        )
        .await;
    let other = app
        .get(
            &format!("/api/v1/billing/tenants/{}", TenantId::new()),
            &tenant_token(mine),
        )
        .await;
    let no_sub = app
        .get(
            &format!("/api/v1/billing/tenants/{mine}/subscription"),
            &tenant_token(mine),
        )
        .await;

    assert_eq!(own.status(), 200);
    let body: serde_json::Value = own.json().await.unwrap();
    assert_eq!(body["status"], "pending");
    assert_eq!(body["subscription"], serde_json::Value::Null);
    assert_eq!(problem(other).await.0, 403);
    let (status, body) = problem(no_sub).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("subscription_not_found"))
    );
}
