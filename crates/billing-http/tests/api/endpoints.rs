//! Every endpoint's success answer: status, field names and values, and what the handler
//! passed to the use case.

use actix_web::http::header;
use actix_web::test::TestRequest;
use billing_domain::ports::{CheckoutSession, ClientSecret};
use billing_domain::service::MockBillingApi;
use billing_domain::*;
use chrono::NaiveDate;
use serde_json::json;

use crate::helpers::*;

#[actix_rt::test]
async fn plans_are_listed_with_every_field_in_camel_case() {
    let p = plan();
    let id = p.id.to_string();
    let mut api = MockBillingApi::new();
    api.expect_list_plans()
        .withf(|_, include| *include)
        .times(1)
        .returning(move |_, _| Ok(vec![p.clone()]));

    let reply = send(
        api,
        TestRequest::get()
            .uri("/api/v1/billing/plans?includeInactive=true")
            .insert_header(bearer(&admin_token())),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!([{
            "id": id,
            "code": "plan-pro",
            "name": "Pro",
            "stripePriceId": "price_pro_test",
            "amount": 2900,
            "currency": "usd",
            "interval": "month",
            "trialDays": 14,
            "features": [],
            "active": true,
            "createdAt": "2026-01-02T03:04:05Z",
            "updatedAt": "2026-02-03T04:05:06Z"
        }])
    );
}

#[actix_rt::test]
async fn a_plan_is_found_by_its_code() {
    let mut api = MockBillingApi::new();
    api.expect_get_plan()
        .withf(|_, key| *key == PlanKey::Code(PlanCode::parse("plan-pro").unwrap()))
        .times(1)
        .returning(|_, _| Ok(plan()));

    let reply = send(
        api,
        TestRequest::get()
            .uri("/api/v1/billing/plans/plan-pro")
            .insert_header(bearer(&tenant_token(TenantId::new()))),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(reply.body["stripePriceId"], "price_pro_test");
}

#[actix_rt::test]
async fn creating_a_plan_answers_201_with_its_location() {
    let p = plan();
    let location = format!("/api/v1/billing/plans/{}", p.id);
    let mut api = MockBillingApi::new();
    api.expect_create_plan()
        .withf(|actor, new| {
            actor.admin
                && new.code.as_str() == "plan-pro"
                && new.price.as_str() == "price_pro_test"
                && new.amount == usd(2900)
                && new.interval == BillingInterval::Year
                && new.trial_days.map(TrialDays::get) == Some(7)
        })
        .times(1)
        .returning(move |_, _| Ok(p.clone()));

    let reply = send(
        api,
        TestRequest::post()
            .uri("/api/v1/billing/plans")
            .insert_header(bearer(&admin_token()))
            .set_json(json!({
                "code": "plan-pro", "name": "Pro", "stripePriceId": "price_pro_test",
                "amount": 2900, "currency": "USD", "interval": "year", "trialDays": 7
            })),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 201, "{}", reply.body);
    assert_eq!(reply.header(header::LOCATION), Some(location.as_str()));
    assert_eq!(reply.body["code"], "plan-pro");
}

#[actix_rt::test]
async fn a_plans_features_go_to_the_use_case_and_come_back_in_the_answer() {
    let mut api = MockBillingApi::new();
    api.expect_create_plan()
        .withf(|_, new| new.features.as_slice() == ["reports:export", "seats.max-10"])
        .times(1)
        .returning(|_, new| {
            let mut p = plan();
            p.features = new.features;
            Ok(p)
        });

    let reply = send(
        api,
        TestRequest::post()
            .uri("/api/v1/billing/plans")
            .insert_header(bearer(&admin_token()))
            .set_json(json!({
                "code": "plan-pro", "name": "Pro", "stripePriceId": "price_pro_test",
                "amount": 2900, "currency": "usd", "interval": "month",
                "features": ["reports:export", "seats.max-10"]
            })),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 201, "{}", reply.body);
    assert_eq!(
        reply.body["features"],
        json!(["reports:export", "seats.max-10"])
    );
}

#[actix_rt::test]
async fn bad_features_are_422_naming_the_field_before_the_use_case() {
    for body in [
        json!({"code": "plan-pro", "name": "Pro", "stripePriceId": "price_1", "amount": 1,
               "currency": "usd", "interval": "month", "features": ["Not OK"]}),
        json!({"code": "plan-pro", "name": "Pro", "stripePriceId": "price_1", "amount": 1,
               "currency": "usd", "interval": "month", "features": ["x".repeat(65)]}),
    ] {
        let reply = send(
            MockBillingApi::new(),
            TestRequest::post()
                .uri("/api/v1/billing/plans")
                .insert_header(bearer(&admin_token()))
                .set_json(body),
        )
        .await;

        let detail = reply.assert_problem(422, "validation_failed");
        assert!(detail.starts_with("features"), "{detail}");
    }
    let patch = send(
        MockBillingApi::new(),
        TestRequest::patch()
            .uri("/api/v1/billing/plans/plan-pro")
            .insert_header(bearer(&admin_token()))
            .set_json(json!({"features": (0..51).map(|i| format!("f{i}")).collect::<Vec<_>>()})),
    )
    .await;
    assert!(patch
        .assert_problem(422, "validation_failed")
        .starts_with("features"));
}

#[actix_rt::test]
async fn a_patch_with_a_null_trial_removes_the_trial() {
    let mut api = MockBillingApi::new();
    api.expect_update_plan()
        .withf(|_, key, patch| {
            *key == PlanKey::Code(PlanCode::parse("plan-pro").unwrap())
                && patch.trial_days == Some(None)
                && patch.active == Some(false)
                && patch.amount == Some(usd(3900))
                && patch.name.is_none()
        })
        .times(1)
        .returning(|_, _, _| {
            let mut p = plan();
            p.trial_days = None;
            p.active = false;
            Ok(p)
        });

    let reply = send(
        api,
        TestRequest::patch()
            .uri("/api/v1/billing/plans/plan-pro")
            .insert_header(bearer(&admin_token()))
            .set_json(
                json!({"trialDays": null, "active": false, "amount": 3900, "currency": "usd"}),
            ),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(reply.body["trialDays"], json!(null));
    assert_eq!(reply.body["active"], false);
}

#[actix_rt::test]
async fn a_tenant_is_shown_with_its_current_subscription() {
    let id = TenantId::new();
    let sub = subscription(id);
    let (sub_id, plan_id) = (sub.id.to_string(), sub.plan_id.to_string());
    let mut api = MockBillingApi::new();
    api.expect_get_tenant()
        .withf(move |actor, t| *t == id && actor.tenant == Some(id))
        .times(1)
        .returning(move |_, _| {
            Ok(TenantOverview {
                tenant: tenant(id),
                subscription: Some(sub.clone()),
            })
        });

    let reply = send(
        api,
        TestRequest::get()
            .uri(&format!("/api/v1/billing/tenants/{id}"))
            .insert_header(bearer(&tenant_token(id))),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({
            "id": id.to_string(),
            "name": "Acme",
            "status": "active",
            "stripeCustomerId": "cus_test_acme",
            "subscription": {
                "id": sub_id,
                "tenantId": id.to_string(),
                "planId": plan_id,
                "status": "trialing",
                "currentPeriodStart": "2026-01-01T00:00:00Z",
                "currentPeriodEnd": "2026-02-01T00:00:00Z",
                "cancelAtPeriodEnd": false,
                "canceledAt": null,
                "stripeSubscriptionId": "sub_test_1",
                "stripeCustomerId": "cus_test_acme",
                "createdAt": "2026-01-02T03:04:05Z",
                "updatedAt": "2026-02-03T04:05:06Z"
            },
            "createdAt": "2026-01-02T03:04:05Z",
            "updatedAt": "2026-02-03T04:05:06Z"
        })
    );
}

#[actix_rt::test]
async fn a_tenant_without_a_subscription_shows_null() {
    let id = TenantId::new();
    let mut api = MockBillingApi::new();
    api.expect_get_tenant().returning(move |_, _| {
        Ok(TenantOverview {
            tenant: tenant(id),
            subscription: None,
        })
    });

    let reply = send(
        api,
        TestRequest::get()
            .uri(&format!("/api/v1/billing/tenants/{id}"))
            .insert_header(bearer(&admin_token())),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 200);
    assert_eq!(reply.body["subscription"], json!(null));
}

#[actix_rt::test]
async fn a_tenants_subscription_is_shown_on_its_own() {
    let id = TenantId::new();
    let mut api = MockBillingApi::new();
    api.expect_tenant_subscription()
        .withf(move |_, t| *t == id)
        .times(1)
        .returning(move |_, _| Ok(subscription(id)));

    let reply = send(
        api,
        TestRequest::get()
            .uri(&format!("/api/v1/billing/tenants/{id}/subscription"))
            .insert_header(bearer(&tenant_token(id))),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(reply.body["tenantId"], id.to_string());
    assert_eq!(reply.body["stripeSubscriptionId"], "sub_test_1");
    assert_eq!(reply.body["cancelAtPeriodEnd"], false);
}

#[actix_rt::test]
async fn a_tenants_access_is_answered_in_camel_case_with_every_field() {
    let id = TenantId::new();
    let mut api = MockBillingApi::new();
    api.expect_tenant_access()
        .withf(move |_, t| *t == id)
        .times(1)
        .returning(|_, _| {
            Ok(TenantAccess {
                decision: AccessDecision {
                    entitled: true,
                    reason: AccessReason::CancelAtPeriodEnd,
                    until: Some(at("2026-04-01T00:00:00Z")),
                },
                plan_code: Some(PlanCode::parse("plan-pro").unwrap()),
                features: Features::parse(vec!["reports:export".into(), "api".into()]).unwrap(),
                status: Some(SubscriptionStatus::Active),
            })
        });

    let reply = send(
        api,
        TestRequest::get()
            .uri(&format!("/api/v1/billing/tenants/{id}/access"))
            .insert_header(bearer(&tenant_token(id))),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({
            "entitled": true,
            "planCode": "plan-pro",
            "features": ["reports:export", "api"],
            "status": "active",
            "until": "2026-04-01T00:00:00Z",
            "reason": "cancel_at_period_end",
        })
    );
}

#[actix_rt::test]
async fn access_without_a_subscription_answers_nulls_not_missing_fields() {
    let mut api = MockBillingApi::new();
    api.expect_tenant_access().returning(|_, _| {
        Ok(TenantAccess {
            decision: AccessDecision {
                entitled: false,
                reason: AccessReason::NoSubscription,
                until: None,
            },
            plan_code: None,
            features: Features::default(),
            status: None,
        })
    });

    let reply = send(
        api,
        TestRequest::get()
            .uri(&format!(
                "/api/v1/billing/tenants/{}/access",
                TenantId::new()
            ))
            .insert_header(bearer(&admin_token())),
    )
    .await;

    assert_eq!(
        reply.body,
        json!({
            "entitled": false,
            "planCode": null,
            "features": [],
            "status": null,
            "until": null,
            "reason": "no_subscription",
        })
    );
}

#[actix_rt::test]
async fn invoices_are_listed_a_page_at_a_time_with_filters_and_cursor() {
    let t = TenantId::new();
    let inv = invoice(t);
    let inv_id = inv.id.to_string();
    let pi = "pi_test_1";
    let cursor_in = Cursor {
        at: at("2026-01-01T00:00:00Z"),
        id: InvoiceId::new().to_string(),
    };
    let cursor_out = Cursor {
        at: created(),
        id: inv_id.clone(),
    };
    let expected_cursor = cursor_in.clone();
    let next = cursor_out.clone();
    let mut api = MockBillingApi::new();
    api.expect_list_invoices()
        .withf(move |_, q, page| {
            q.tenant == Some(t)
                && q.status == Some(InvoiceStatus::Open)
                && page.limit.get() == 1
                && page.after.as_ref() == Some(&expected_cursor)
        })
        .times(1)
        .returning(move |_, _, _| {
            Ok(Page {
                items: vec![inv.clone()],
                next: Some(next.clone()),
            })
        });

    let reply = send(
        api,
        TestRequest::get()
            .uri(&format!(
                "/api/v1/billing/invoices?tenantId={t}&status=open&limit=1&cursor={}",
                cursor_in.encode()
            ))
            .insert_header(bearer(&tenant_token(t))),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(reply.body["nextCursor"], cursor_out.encode());
    assert_eq!(
        reply.body["data"],
        json!([{
            "id": inv_id,
            "tenantId": t.to_string(),
            "subscriptionId": null,
            "number": "inv-001",
            "status": "open",
            "amountDue": 5000,
            "amountPaid": 1500,
            "amountRemaining": 3500,
            "currency": "usd",
            "dueDate": "2026-03-31",
            "description": "March",
            "paidAt": null,
            "stripeInvoiceId": null,
            "stripePaymentIntentId": pi,
            "hostedInvoiceUrl": null,
            "invoicePdfUrl": null,
            "createdAt": "2026-01-02T03:04:05Z",
            "updatedAt": "2026-02-03T04:05:06Z"
        }])
    );
}

#[actix_rt::test]
async fn the_last_page_has_a_null_next_cursor() {
    let mut api = MockBillingApi::new();
    api.expect_list_invoices()
        .withf(|_, q, page| {
            *q == Default::default() && page.limit.get() == 20 && page.after.is_none()
        })
        .returning(|_, _, _| {
            Ok(Page {
                items: vec![],
                next: None,
            })
        });

    let reply = send(
        api,
        TestRequest::get()
            .uri("/api/v1/billing/invoices")
            .insert_header(bearer(&admin_token())),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 200);
    assert_eq!(reply.body, json!({"data": [], "nextCursor": null}));
}

#[actix_rt::test]
async fn an_invoice_is_found_by_its_number() {
    let t = TenantId::new();
    let mut api = MockBillingApi::new();
    api.expect_get_invoice()
        .withf(|_, key| *key == InvoiceKey::Number(InvoiceNumber::parse("inv-001").unwrap()))
        .times(1)
        .returning(move |_, _| Ok(invoice(t)));

    let reply = send(
        api,
        TestRequest::get()
            .uri("/api/v1/billing/invoices/inv-001")
            .insert_header(bearer(&tenant_token(t))),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(reply.body["number"], "inv-001");
    assert_eq!(reply.body["amountRemaining"], 3500);
}

#[actix_rt::test]
async fn creating_an_invoice_answers_201_with_its_location() {
    let t = TenantId::new();
    let inv = invoice(t);
    let location = format!("/api/v1/billing/invoices/{}", inv.id);
    let mut api = MockBillingApi::new();
    api.expect_create_invoice()
        .withf(move |_, new| {
            new.tenant_id == t
                && new.number.as_str() == "inv-001"
                && new.amount_due == usd(5000)
                && new.due_date == NaiveDate::from_ymd_opt(2026, 3, 31)
                && new.description.as_deref() == Some("March")
        })
        .times(1)
        .returning(move |_, _| Ok(inv.clone()));

    let reply = send(
        api,
        TestRequest::post()
            .uri("/api/v1/billing/invoices")
            .insert_header(bearer(&admin_token()))
            .set_json(json!({
                "tenantId": t.to_string(), "number": "inv-001", "amountDue": 5000,
                "currency": "usd", "dueDate": "2026-03-31", "description": "March"
            })),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 201, "{}", reply.body);
    assert_eq!(reply.header(header::LOCATION), Some(location.as_str()));
    assert_eq!(reply.body["status"], "open");
}

#[actix_rt::test]
async fn payments_are_listed_with_their_failure_details() {
    let t = TenantId::new();
    let invoice_id = InvoiceId::new();
    let pay = payment(t, invoice_id);
    let pay_id = pay.id.to_string();
    let mut api = MockBillingApi::new();
    api.expect_list_payments()
        .withf(move |_, q, _| q.tenant.is_none() && q.invoice == Some(invoice_id))
        .times(1)
        .returning(move |_, _, _| {
            Ok(Page {
                items: vec![pay.clone()],
                next: None,
            })
        });

    let reply = send(
        api,
        TestRequest::get()
            .uri(&format!("/api/v1/billing/payments?invoiceId={invoice_id}"))
            .insert_header(bearer(&tenant_token(t))),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({
            "data": [{
                "id": pay_id,
                "tenantId": t.to_string(),
                "invoiceId": invoice_id.to_string(),
                "amount": 1500,
                "amountRefunded": 0,
                "currency": "usd",
                "status": "failed",
                "failureCode": "card_declined",
                "failureMessage": "Your card was declined.",
                "stripePaymentIntentId": "pi_test_1",
                "stripeChargeId": null,
                "createdAt": "2026-01-02T03:04:05Z"
            }],
            "nextCursor": null
        })
    );
}

#[actix_rt::test]
async fn the_event_ledger_is_listed_without_payloads() {
    let mut api = MockBillingApi::new();
    api.expect_list_events()
        .withf(|_, q, _| {
            q.outcome == Some(EventOutcome::Unmatched)
                && q.kind.as_deref() == Some("invoice.payment_failed")
        })
        .times(1)
        .returning(|_, _, _| {
            Ok(Page {
                items: vec![ledger_entry()],
                next: None,
            })
        });

    let reply = send(
        api,
        TestRequest::get()
            .uri("/api/v1/billing/stripe/events?status=unmatched&type=invoice.payment_failed")
            .insert_header(bearer(&admin_token())),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({
            "data": [{
                "eventId": "evt_test_1",
                "type": "invoice.payment_failed",
                "created": "2026-01-05T10:00:00Z",
                "apiVersion": "2026-07-29.dahlia",
                "receivedAt": "2026-01-05T10:00:01Z",
                "processedAt": "2026-01-05T10:00:02Z",
                "outcome": "unmatched",
                "detail": "no tenant for customer cus_x"
            }],
            "nextCursor": null
        })
    );
}

fn checkout_mock(t: TenantId, customer: Option<&'static str>) -> MockBillingApi {
    let mut api = MockBillingApi::new();
    api.expect_start_checkout()
        .withf(move |_, input| {
            input.tenant == t
                && input.plan == PlanKey::Code(PlanCode::parse("plan-pro").unwrap())
                && input.customer.as_ref().map(CustomerRef::as_str) == customer
        })
        .times(1)
        .returning(|_, _| {
            Ok(CheckoutSession {
                id: CheckoutSessionRef::parse("cs_test_1").unwrap(),
                url: "https://checkout.stripe.test/c/pay/cs_test_1".into(),
            })
        });
    api
}

#[actix_rt::test]
async fn checkout_takes_its_fields_from_the_query_string() {
    let t = TenantId::new();

    let reply = send(
        checkout_mock(t, Some("cus_test_acme")),
        TestRequest::post()
            .uri(&format!(
                "/api/v1/billing/stripe/checkout?tenantId={t}&planId=plan-pro&customerId=cus_test_acme"
            ))
            .insert_header(bearer(&tenant_token(t))),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({
            "sessionUrl": "https://checkout.stripe.test/c/pay/cs_test_1",
            "sessionId": "cs_test_1"
        })
    );
}

#[actix_rt::test]
async fn checkout_takes_its_fields_from_a_json_body() {
    let t = TenantId::new();

    let reply = send(
        checkout_mock(t, None),
        TestRequest::post()
            .uri("/api/v1/billing/stripe/checkout")
            .insert_header(bearer(&tenant_token(t)))
            .set_json(json!({"tenantId": t.to_string(), "planId": "plan-pro"})),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(reply.body["sessionId"], "cs_test_1");
}

#[actix_rt::test]
async fn checkout_accepts_query_and_body_that_agree() {
    let t = TenantId::new();

    let reply = send(
        checkout_mock(t, None),
        TestRequest::post()
            .uri(&format!("/api/v1/billing/stripe/checkout?tenantId={t}"))
            .insert_header(bearer(&tenant_token(t)))
            .set_json(json!({"tenantId": t.to_string(), "planId": "plan-pro"})),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
}

#[actix_rt::test]
async fn the_portal_opens_for_a_customer_with_a_return_url() {
    let mut api = MockBillingApi::new();
    api.expect_open_portal()
        .withf(|_, customer, url| {
            customer.as_str() == "cus_test_acme"
                && url.as_deref() == Some("https://app.example.test/billing")
        })
        .times(1)
        .returning(|_, _, _| Ok("https://billing.stripe.test/p/session/test_1".into()));

    let reply = send(
        api,
        TestRequest::post()
            .uri("/api/v1/billing/stripe/portal?customerId=cus_test_acme&returnUrl=https%3A%2F%2Fapp.example.test%2Fbilling")
            .insert_header(bearer(&tenant_token(TenantId::new()))),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(
        reply.body,
        json!({"portalUrl": "https://billing.stripe.test/p/session/test_1"})
    );
}

#[actix_rt::test]
async fn the_portal_takes_its_customer_from_a_json_body_too() {
    let mut api = MockBillingApi::new();
    api.expect_open_portal()
        .withf(|_, customer, url| customer.as_str() == "cus_test_acme" && url.is_none())
        .times(1)
        .returning(|_, _, _| Ok("https://billing.stripe.test/p/session/test_2".into()));

    let reply = send(
        api,
        TestRequest::post()
            .uri("/api/v1/billing/stripe/portal")
            .insert_header(bearer(&admin_token()))
            .set_json(json!({"customerId": "cus_test_acme"})),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(
        reply.body["portalUrl"],
        "https://billing.stripe.test/p/session/test_2"
    );
}

#[actix_rt::test]
async fn an_invoice_payment_intent_answers_its_client_secret() {
    let id = InvoiceId::new();
    let mut api = MockBillingApi::new();
    api.expect_invoice_payment_intent()
        .withf(move |_, key| *key == InvoiceKey::Id(id))
        .times(1)
        .returning(|_, _| Ok(ClientSecret::new("pi_test_1_secret_abc".into())));

    let reply = send(
        api,
        TestRequest::post()
            .uri(&format!("/api/v1/billing/invoices/{id}/payment-intent"))
            .insert_header(bearer(&tenant_token(TenantId::new()))),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(reply.body, json!({"clientSecret": "pi_test_1_secret_abc"}));
}

#[actix_rt::test]
async fn liveness_needs_no_token_and_no_service_call() {
    let reply = send(untouched(), TestRequest::get().uri("/health/live")).await;

    assert_eq!(reply.status.as_u16(), 200);
    assert_eq!(reply.body, json!({"status": "ok"}));
}

#[actix_rt::test]
async fn readiness_is_ok_when_the_database_answers() {
    let mut api = MockBillingApi::new();
    api.expect_ready().times(1).returning(|| Ok(()));

    let reply = send(api, TestRequest::get().uri("/health/ready")).await;

    assert_eq!(reply.status.as_u16(), 200);
    assert_eq!(reply.body, json!({"status": "ok"}));
}

#[actix_rt::test]
async fn readiness_is_503_when_the_database_does_not_answer() {
    let mut api = MockBillingApi::new();
    api.expect_ready()
        .times(1)
        .returning(|| Err(BillingError::Unavailable("connection refused".into())));

    let reply = send(api, TestRequest::get().uri("/health/ready")).await;

    let detail = reply.assert_problem(503, "database_unavailable");
    assert!(!detail.contains("connection refused"));
}

// ---- refunds and disputes (issue 14) ----

#[actix_rt::test]
async fn a_payment_is_shown_with_its_refunds_and_disputes() {
    let t = TenantId::new();
    let detail = refunded_and_disputed(t);
    let id = detail.payment.id;
    let (refund_id, dispute_id) = (detail.refunds[0].id, detail.disputes[0].id);
    let mut api = MockBillingApi::new();
    api.expect_get_payment()
        .withf(move |_, asked| *asked == id)
        .times(1)
        .returning(move |_, _| Ok(detail.clone()));

    let reply = send(
        api,
        TestRequest::get()
            .uri(&format!("/api/v1/billing/payments/{id}"))
            .insert_header(bearer(&tenant_token(t))),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(reply.body["id"], id.to_string());
    assert_eq!(reply.body["status"], "disputed");
    assert_eq!(reply.body["amountRefunded"], 500);
    assert_eq!(
        reply.body["refunds"],
        json!([{
            "id": refund_id.to_string(),
            "paymentId": id.to_string(),
            "amount": 500,
            "currency": "usd",
            "status": "succeeded",
            "reason": "requested_by_customer",
            "stripeRefundId": "re_test_1",
            "createdAt": "2026-01-03T00:00:00Z",
            "updatedAt": "2026-01-03T00:00:00Z"
        }])
    );
    assert_eq!(
        reply.body["disputes"],
        json!([{
            "id": dispute_id.to_string(),
            "paymentId": id.to_string(),
            "amount": 1000,
            "currency": "usd",
            "reason": "fraudulent",
            "status": "needs_response",
            "stripeDisputeId": "dp_test_1",
            "createdAt": "2026-01-03T00:00:00Z",
            "updatedAt": "2026-01-03T00:00:00Z"
        }])
    );
}

#[actix_rt::test]
async fn an_unknown_payment_is_a_404_problem_and_a_malformed_id_a_400() {
    let mut api = MockBillingApi::new();
    api.expect_get_payment()
        .times(1)
        .returning(|_, id| Err(BillingError::PaymentNotFound(id)));

    let missing = send(
        api,
        TestRequest::get()
            .uri(&format!("/api/v1/billing/payments/{}", PaymentId::new()))
            .insert_header(bearer(&admin_token())),
    )
    .await;
    let malformed = send(
        MockBillingApi::new(),
        TestRequest::get()
            .uri("/api/v1/billing/payments/pay-1")
            .insert_header(bearer(&admin_token())),
    )
    .await;

    assert_eq!(missing.status.as_u16(), 404, "{}", missing.body);
    assert_eq!(missing.body["code"], "payment_not_found");
    assert_eq!(
        missing.header(header::CONTENT_TYPE),
        Some("application/problem+json")
    );
    assert_eq!(malformed.status.as_u16(), 400, "{}", malformed.body);
    assert_eq!(malformed.body["code"], "invalid_parameter");
}

#[actix_rt::test]
async fn disputes_are_listed_by_status_in_pages() {
    let detail = refunded_and_disputed(TenantId::new());
    let dispute = detail.disputes[0].clone();
    let mut api = MockBillingApi::new();
    api.expect_list_disputes()
        .withf(|_, q, page| q.status == Some(DisputeStatus::NeedsResponse) && page.limit.get() == 5)
        .times(1)
        .returning(move |_, _, _| {
            Ok(Page {
                items: vec![dispute.clone()],
                next: None,
            })
        });

    let reply = send(
        api,
        TestRequest::get()
            .uri("/api/v1/billing/disputes?status=needs_response&limit=5")
            .insert_header(bearer(&admin_token())),
    )
    .await;
    let bad = send(
        MockBillingApi::new(),
        TestRequest::get()
            .uri("/api/v1/billing/disputes?status=open")
            .insert_header(bearer(&admin_token())),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(reply.body["data"][0]["stripeDisputeId"], "dp_test_1");
    assert_eq!(reply.body["nextCursor"], serde_json::Value::Null);
    assert_eq!(bad.status.as_u16(), 400, "{}", bad.body);
}
