//! Every 4xx the adapter answers itself, and the domain's refusals on the way through.

use actix_web::http::header;
use actix_web::test::TestRequest;
use billing_domain::service::MockBillingApi;
use billing_domain::*;
use serde_json::json;

use crate::helpers::*;

fn post_plan(body: &str) -> TestRequest {
    TestRequest::post()
        .uri("/api/v1/billing/plans")
        .insert_header(bearer(&admin_token()))
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload(body.to_owned())
}

fn valid_plan() -> serde_json::Value {
    json!({
        "code": "plan-pro", "name": "Pro", "stripePriceId": "price_pro_test",
        "amount": 2900, "currency": "usd", "interval": "month"
    })
}

fn admin_get(uri: &str) -> TestRequest {
    TestRequest::get()
        .uri(uri)
        .insert_header(bearer(&admin_token()))
}

#[actix_rt::test]
async fn a_tenant_token_reading_another_tenant_gets_403() {
    let mine = TenantId::new();
    let other = TenantId::new();
    let mut api = MockBillingApi::new();
    api.expect_get_tenant()
        .returning(|_, t| Err(BillingError::Forbidden(t)));

    let reply = send(
        api,
        TestRequest::get()
            .uri(&format!("/api/v1/billing/tenants/{other}"))
            .insert_header(bearer(&tenant_token(mine))),
    )
    .await;

    let detail = reply.assert_problem(403, "forbidden");
    assert!(detail.contains(&other.to_string()), "{detail}");
}

#[actix_rt::test]
async fn a_tenant_token_creating_a_plan_gets_403_admin_required() {
    let mut api = MockBillingApi::new();
    api.expect_create_plan()
        .withf(|actor, _| !actor.admin)
        .times(1)
        .returning(|_, _| Err(BillingError::AdminOnly));

    let reply = send(
        api,
        TestRequest::post()
            .uri("/api/v1/billing/plans")
            .insert_header(bearer(&tenant_token(TenantId::new())))
            .set_json(valid_plan()),
    )
    .await;

    reply.assert_problem(403, "admin_required");
}

#[actix_rt::test]
async fn malformed_json_is_400_invalid_json() {
    let reply = send(untouched(), post_plan(r#"{"code": "plan-pro","#)).await;

    reply.assert_problem(400, "invalid_json");
}

#[actix_rt::test]
async fn an_unknown_field_is_422_invalid_body_naming_it() {
    let mut body = valid_plan();
    body["colour"] = json!("blue");

    let reply = send(untouched(), post_plan(&body.to_string())).await;

    let detail = reply.assert_problem(422, "invalid_body");
    assert!(detail.contains("colour"), "{detail}");
}

#[actix_rt::test]
async fn a_wrongly_typed_field_is_422_invalid_body() {
    let mut body = valid_plan();
    body["amount"] = json!("29.00");

    let reply = send(untouched(), post_plan(&body.to_string())).await;

    reply.assert_problem(422, "invalid_body");
}

#[actix_rt::test]
async fn a_missing_field_is_422_invalid_body_naming_it() {
    let mut body = valid_plan();
    body.as_object_mut().unwrap().remove("stripePriceId");

    let reply = send(untouched(), post_plan(&body.to_string())).await;

    let detail = reply.assert_problem(422, "invalid_body");
    assert!(detail.contains("stripePriceId"), "{detail}");
}

#[actix_rt::test]
async fn values_breaking_a_rule_are_422_validation_failed_naming_the_field() {
    let cases = [
        ("currency", json!("dollars")),
        ("amount", json!(-1)),
        ("interval", json!("week")),
        ("code", json!("Plan Pro")),
        ("trialDays", json!(0)),
        ("stripePriceId", json!("price with spaces")),
    ];
    for (field, value) in cases {
        let mut body = valid_plan();
        body[field] = value;

        let reply = send(untouched(), post_plan(&body.to_string())).await;

        let detail = reply.assert_problem(422, "validation_failed");
        assert!(detail.starts_with(field), "{field}: {detail}");
    }
}

#[actix_rt::test]
async fn an_invoice_with_a_bad_due_date_is_refused_naming_due_date() {
    let reply = send(
        untouched(),
        TestRequest::post()
            .uri("/api/v1/billing/invoices")
            .insert_header(bearer(&admin_token()))
            .set_json(json!({
                "tenantId": TenantId::new().to_string(), "number": "inv-001",
                "amountDue": 100, "currency": "usd", "dueDate": "31/03/2026"
            })),
    )
    .await;

    let detail = reply.assert_problem(422, "validation_failed");
    assert!(detail.starts_with("dueDate"), "{detail}");
}

#[actix_rt::test]
async fn a_body_over_64_kib_is_413() {
    let mut body = valid_plan();
    body["name"] = json!("x".repeat(70 * 1024));

    let reply = send(untouched(), post_plan(&body.to_string())).await;

    reply.assert_problem(413, "payload_too_large");
}

#[actix_rt::test]
async fn a_body_that_is_not_json_is_415() {
    let reply = send(
        untouched(),
        TestRequest::post()
            .uri("/api/v1/billing/plans")
            .insert_header(bearer(&admin_token()))
            .insert_header((header::CONTENT_TYPE, "text/plain"))
            .set_payload("code=plan-pro"),
    )
    .await;

    reply.assert_problem(415, "unsupported_media_type");
}

#[actix_rt::test]
async fn a_tenant_path_that_is_not_a_uuid_is_400_naming_tenant_id() {
    for uri in [
        "/api/v1/billing/tenants/acme",
        "/api/v1/billing/tenants/acme/subscription",
        "/api/v1/billing/tenants/acme/access",
    ] {
        let reply = send(untouched(), admin_get(uri)).await;

        let detail = reply.assert_problem(400, "invalid_parameter");
        assert!(detail.starts_with("tenantId"), "{uri}: {detail}");
    }
}

#[actix_rt::test]
async fn malformed_plan_and_invoice_keys_are_400() {
    let plan = send(
        untouched(),
        admin_get("/api/v1/billing/plans/Not%20A%20Plan"),
    )
    .await;
    let invoice = send(untouched(), admin_get("/api/v1/billing/invoices/inv%20001")).await;

    assert!(plan
        .assert_problem(400, "invalid_parameter")
        .starts_with("planId"));
    assert!(invoice
        .assert_problem(400, "invalid_parameter")
        .starts_with("invoiceId"));
}

#[actix_rt::test]
async fn bad_list_parameters_are_400_naming_the_parameter() {
    let cases = [
        ("/api/v1/billing/invoices?status=settled", "status"),
        ("/api/v1/billing/invoices?cursor=not-ours", "cursor"),
        ("/api/v1/billing/invoices?limit=0", "limit"),
        ("/api/v1/billing/invoices?limit=ten", "limit"),
        ("/api/v1/billing/invoices?tenantId=acme", "tenantId"),
        ("/api/v1/billing/payments?invoiceId=inv-001", "invoiceId"),
        ("/api/v1/billing/payments?cursor=1.", "cursor"),
        ("/api/v1/billing/stripe/events?status=done", "status"),
        ("/api/v1/billing/stripe/events?limit=101", "limit"),
        (
            "/api/v1/billing/plans?includeInactive=yes",
            "includeInactive",
        ),
    ];
    for (uri, param) in cases {
        let reply = send(untouched(), admin_get(uri)).await;

        let detail = reply.assert_problem(400, "invalid_parameter");
        assert!(detail.starts_with(param), "{uri}: {detail}");
    }
}

#[actix_rt::test]
async fn an_unknown_query_parameter_is_400_naming_it() {
    let reply = send(
        untouched(),
        admin_get("/api/v1/billing/invoices?tenantID=x"),
    )
    .await;

    let detail = reply.assert_problem(400, "invalid_parameter");
    assert!(detail.contains("tenantID"), "{detail}");
}

#[actix_rt::test]
async fn checkout_without_a_plan_is_400_naming_plan_id() {
    let t = TenantId::new();

    let reply = send(
        untouched(),
        TestRequest::post()
            .uri(&format!("/api/v1/billing/stripe/checkout?tenantId={t}"))
            .insert_header(bearer(&tenant_token(t))),
    )
    .await;

    let detail = reply.assert_problem(400, "invalid_parameter");
    assert!(detail.starts_with("planId"), "{detail}");
}

#[actix_rt::test]
async fn checkout_without_a_tenant_is_400_naming_tenant_id() {
    let reply = send(
        untouched(),
        TestRequest::post()
            .uri("/api/v1/billing/stripe/checkout?planId=plan-pro")
            .insert_header(bearer(&admin_token())),
    )
    .await;

    let detail = reply.assert_problem(400, "invalid_parameter");
    assert!(detail.starts_with("tenantId"), "{detail}");
}

#[actix_rt::test]
async fn checkout_with_query_and_body_disagreeing_is_400() {
    let t = TenantId::new();

    let reply = send(
        untouched(),
        TestRequest::post()
            .uri(&format!(
                "/api/v1/billing/stripe/checkout?tenantId={t}&planId=plan-pro"
            ))
            .insert_header(bearer(&tenant_token(t)))
            .set_json(json!({"planId": "plan-team"})),
    )
    .await;

    let detail = reply.assert_problem(400, "invalid_parameter");
    assert!(detail.starts_with("planId"), "{detail}");
}

#[actix_rt::test]
async fn checkout_with_an_unknown_body_field_is_422() {
    let t = TenantId::new();

    let reply = send(
        untouched(),
        TestRequest::post()
            .uri("/api/v1/billing/stripe/checkout")
            .insert_header(bearer(&tenant_token(t)))
            .set_json(json!({"tenantId": t.to_string(), "planId": "plan-pro", "quantity": 2})),
    )
    .await;

    reply.assert_problem(422, "invalid_body");
}

#[actix_rt::test]
async fn the_portal_without_a_customer_is_400_naming_customer_id() {
    let reply = send(
        untouched(),
        TestRequest::post()
            .uri("/api/v1/billing/stripe/portal")
            .insert_header(bearer(&admin_token())),
    )
    .await;

    let detail = reply.assert_problem(400, "invalid_parameter");
    assert!(detail.starts_with("customerId"), "{detail}");
}

#[actix_rt::test]
async fn an_unknown_route_is_a_problem_json_404() {
    let reply = send(untouched(), admin_get("/api/v1/billing/nothing-here")).await;

    reply.assert_problem(404, "not_found");
}

#[actix_rt::test]
async fn a_known_route_with_another_method_is_405_with_allow() {
    let reply = send(
        untouched(),
        TestRequest::delete()
            .uri("/api/v1/billing/plans/plan-pro")
            .insert_header(bearer(&admin_token())),
    )
    .await;

    reply.assert_problem(405, "method_not_allowed");
    assert_eq!(reply.header(header::ALLOW), Some("GET, PATCH"));
}

#[actix_rt::test]
async fn an_empty_plan_patch_reaches_the_domain_which_refuses_it() {
    let mut api = MockBillingApi::new();
    api.expect_update_plan()
        .withf(|_, _, patch| patch.is_empty())
        .times(1)
        .returning(|_, _, _| Err(BillingError::Invalid("the patch changes nothing".into())));

    let reply = send(
        api,
        TestRequest::patch()
            .uri("/api/v1/billing/plans/plan-pro")
            .insert_header(bearer(&admin_token()))
            .set_json(json!({})),
    )
    .await;

    let detail = reply.assert_problem(422, "validation_failed");
    assert_eq!(detail, "the patch changes nothing");
}
