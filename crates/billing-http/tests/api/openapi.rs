//! The OpenAPI document: it parses, lists exactly the routes the router serves, declares
//! the refusals each kind of route can answer, and real answers fit their schemas.

use std::collections::BTreeSet;

use actix_web::http::header;
use actix_web::test::TestRequest;
use billing_domain::service::MockBillingApi;
use billing_domain::*;
use billing_http::paths;
use serde_json::Value;

use crate::helpers::*;

async fn document() -> Value {
    let reply = send(
        untouched(),
        TestRequest::get().uri("/api-docs/openapi.json"),
    )
    .await;
    assert_eq!(reply.status.as_u16(), 200);
    reply.body
}

fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            ops.push((path.clone(), method.clone(), op.clone()));
        }
    }
    ops
}

#[actix_rt::test]
async fn the_document_lists_exactly_the_routes_of_the_router() {
    let doc = document().await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));

    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(p, m, _)| (p, m))
        .collect();
    let listed: BTreeSet<(String, String)> = paths::ALL
        .iter()
        .flat_map(|(p, ms)| ms.iter().map(move |m| ((*p).to_owned(), (*m).to_owned())))
        .collect();

    assert_eq!(documented, listed);
}

#[actix_rt::test]
async fn the_router_serves_every_listed_path_with_exactly_the_listed_methods() {
    for (pattern, methods) in paths::ALL {
        let uri = pattern
            .replace("{planId}", "plan-pro")
            .replace("{tenantId}", "2f1a3b4c-0000-4000-8000-000000000001")
            .replace("{invoiceId}", "inv-001")
            .replace("{eventId}", "evt_1");

        // PUT is served nowhere: the 405's Allow header lists what the resource serves.
        let reply = send(untouched(), TestRequest::put().uri(&uri)).await;

        reply.assert_problem(405, "method_not_allowed");
        let allow: BTreeSet<String> = reply
            .header(header::ALLOW)
            .unwrap()
            .split(", ")
            .map(str::to_ascii_lowercase)
            .collect();
        let expected: BTreeSet<String> = methods.iter().map(|m| (*m).to_owned()).collect();
        assert_eq!(allow, expected, "{pattern}");
    }
}

#[actix_rt::test]
async fn every_operation_declares_the_refusals_it_can_answer() {
    let doc = document().await;

    for (path, method, op) in operations(&doc) {
        let declared = |status: &str| op["responses"].get(status).is_some();
        let secured = op.get("security").is_some();
        let has_body = op.get("requestBody").is_some();
        let has_params = op
            .get("parameters")
            .and_then(Value::as_array)
            .is_some_and(|ps| ps.iter().any(|p| p["in"] != "header"));
        let has_path_params = path.contains('{');
        let at = format!("{method} {path}");

        if secured {
            for status in ["401", "403", "500"] {
                assert!(declared(status), "{at} lacks {status}");
            }
        }
        if has_params || has_body {
            assert!(declared("400"), "{at} lacks 400");
        }
        // The access check answers for every tenant id, an unknown tenant as
        // `no_subscription` (one read, no second query for the tenant).
        if has_path_params && path != paths::TENANT_ACCESS {
            assert!(declared("404"), "{at} lacks 404");
        }
        if has_body {
            assert!(declared("413"), "{at} lacks 413");
            let json = op["requestBody"]["content"]
                .get("application/json")
                .is_some();
            assert!(json, "{at} body is not JSON");
            if secured {
                assert!(declared("415") && declared("422"), "{at} lacks 415/422");
            }
        }
        assert!(declared("200") || declared("201"), "{at} lacks a success");
        let public = [
            paths::STRIPE_WEBHOOK,
            paths::HEALTH_LIVE,
            paths::HEALTH_READY,
            paths::METRICS,
            paths::OPENAPI,
        ];
        assert_eq!(secured, !public.contains(&path.as_str()), "{at} security");
    }
}

#[actix_rt::test]
async fn the_status_enumerations_match_the_domain() {
    let doc = document().await;
    let names = |schema: &str| -> BTreeSet<String> {
        doc["components"]["schemas"][schema]["enum"]
            .as_array()
            .unwrap_or_else(|| panic!("{schema} has no enum"))
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let set =
        |values: &[&str]| -> BTreeSet<String> { values.iter().map(|v| (*v).to_owned()).collect() };

    assert_eq!(
        names("InvoiceStatusName"),
        set(&InvoiceStatus::ALL.map(InvoiceStatus::as_str))
    );
    assert_eq!(
        names("EventOutcomeName"),
        set(&EventOutcome::ALL.map(EventOutcome::as_str))
    );
    assert_eq!(
        names("TenantStatusName"),
        set(&[
            TenantStatus::Pending,
            TenantStatus::Active,
            TenantStatus::Suspended,
            TenantStatus::Cancelled
        ]
        .map(TenantStatus::as_str))
    );
    assert_eq!(
        names("SubscriptionStatusName"),
        set(&[
            SubscriptionStatus::Incomplete,
            SubscriptionStatus::IncompleteExpired,
            SubscriptionStatus::Trialing,
            SubscriptionStatus::Active,
            SubscriptionStatus::PastDue,
            SubscriptionStatus::Canceled,
            SubscriptionStatus::Unpaid,
            SubscriptionStatus::Paused
        ]
        .map(SubscriptionStatus::as_str))
    );
    assert_eq!(
        names("PaymentStatusName"),
        set(&[
            PaymentStatus::Succeeded,
            PaymentStatus::Failed,
            PaymentStatus::Refunded,
            PaymentStatus::PartiallyRefunded,
            PaymentStatus::Disputed,
            PaymentStatus::DisputeLost
        ]
        .map(PaymentStatus::as_str))
    );
    assert_eq!(
        names("RefundStatusName"),
        set(&[
            RefundStatus::Pending,
            RefundStatus::RequiresAction,
            RefundStatus::Succeeded,
            RefundStatus::Failed,
            RefundStatus::Canceled
        ]
        .map(RefundStatus::as_str))
    );
    assert_eq!(
        names("DisputeStatusName"),
        set(&[
            DisputeStatus::WarningNeedsResponse,
            DisputeStatus::WarningUnderReview,
            DisputeStatus::WarningClosed,
            DisputeStatus::NeedsResponse,
            DisputeStatus::UnderReview,
            DisputeStatus::Won,
            DisputeStatus::Lost,
            DisputeStatus::Prevented
        ]
        .map(DisputeStatus::as_str))
    );
    assert_eq!(
        names("AccessReasonName"),
        set(&AccessReason::ALL.map(AccessReason::as_str))
    );
    assert_eq!(
        names("IntervalName"),
        set(&[BillingInterval::Month, BillingInterval::Year].map(BillingInterval::as_str))
    );
}

// ---------------------------------------------------------------------------------------
// The browsable viewer at /api-docs (its rendering in a browser: billing-server's `browser`
// tests)

/// The `src`/`href` attribute values of an HTML page.
fn linked(html: &str) -> Vec<String> {
    let mut links = Vec::new();
    for attr in ["src=\"", "href=\""] {
        for (at, _) in html.match_indices(attr) {
            let rest = &html[at + attr.len()..];
            links.push(rest[..rest.find('"').unwrap()].to_owned());
        }
    }
    links
}

#[actix_rt::test]
async fn api_docs_redirects_to_the_viewer_page() {
    let reply = send(untouched(), TestRequest::get().uri("/api-docs")).await;
    assert_eq!(reply.status.as_u16(), 301);
    // Relative, so that a path prefix added by a proxy is kept.
    assert_eq!(reply.header(header::LOCATION), Some("api-docs/"));
}

#[actix_rt::test]
async fn the_viewer_page_links_only_assets_of_the_binary() {
    let page = send(untouched(), TestRequest::get().uri("/api-docs/")).await;
    assert_eq!(page.status.as_u16(), 200);
    assert!(page
        .header(header::CONTENT_TYPE)
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text.contains("id=\"swagger-ui\""), "{}", page.text);

    let links = linked(&page.text);
    assert!(links.len() >= 4, "{links:?}");
    for link in links {
        assert!(
            !link.contains("//"),
            "{link}: an asset from outside the binary"
        );
        let asset = send(
            untouched(),
            TestRequest::get().uri(&format!("/api-docs/{}", link.trim_start_matches("./"))),
        )
        .await;
        assert_eq!(asset.status.as_u16(), 200, "{link}");
        assert!(!asset.text.is_empty(), "{link}");
    }
}

#[actix_rt::test]
async fn the_viewer_loads_this_document_and_calls_no_outside_validator() {
    let init = send(
        untouched(),
        TestRequest::get().uri("/api-docs/swagger-initializer.js"),
    )
    .await;
    assert_eq!(init.status.as_u16(), 200);
    assert!(init
        .header(header::CONTENT_TYPE)
        .unwrap()
        .contains("javascript"));
    assert!(init.text.contains("\"openapi.json\""), "{}", init.text);
    assert!(
        init.text.contains("\"validatorUrl\": \"none\""),
        "{}",
        init.text
    );
    assert!(!init.text.contains("petstore"), "{}", init.text);

    // The document itself is still the JSON route, not a file of the viewer.
    assert!(document().await["paths"][paths::STRIPE_CHECKOUT].is_object());
}

#[actix_rt::test]
async fn the_viewer_answers_problems_for_what_it_does_not_serve() {
    send(
        untouched(),
        TestRequest::get().uri("/api-docs/no-such-file.js"),
    )
    .await
    .assert_problem(404, "not_found");
    send(untouched(), TestRequest::post().uri("/api-docs/"))
        .await
        .assert_problem(405, "method_not_allowed");
    send(untouched(), TestRequest::delete().uri("/api-docs"))
        .await
        .assert_problem(405, "method_not_allowed");
}

// ---------------------------------------------------------------------------------------
// Real answers against their schemas

/// A small JSON Schema check covering what the document uses: `$ref`, `type` (also as a
/// list), `required`, `properties`, `additionalProperties: false`, `items`, `enum`,
/// `oneOf`, and the `uuid`, `date-time` and `date` formats.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap();
        return check(doc, &doc["components"]["schemas"][name], value, at);
    }
    if let Some(alternatives) = schema.get("oneOf").and_then(Value::as_array) {
        let fits = alternatives
            .iter()
            .filter(|s| std::panic::catch_unwind(|| check(doc, s, value, at)).is_ok());
        assert_eq!(
            fits.count(),
            1,
            "{at}: {value} fits not exactly one of {schema}"
        );
        return;
    }
    if let Some(kind) = schema.get("type") {
        let kinds: Vec<&str> = match kind {
            Value::String(k) => vec![k.as_str()],
            Value::Array(ks) => ks.iter().map(|k| k.as_str().unwrap()).collect(),
            _ => panic!("{at}: odd type {kind}"),
        };
        let actual = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let ok = kinds.contains(&actual) || (actual == "integer" && kinds.contains(&"number"));
        assert!(ok, "{at}: {value} is {actual}, schema says {kinds:?}");
        if actual == "null" {
            return;
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        assert!(values.contains(value), "{at}: {value} not in {values:?}");
    }
    if let (Some(format), Some(text)) =
        (schema.get("format").and_then(Value::as_str), value.as_str())
    {
        let ok = match format {
            "uuid" => uuid::Uuid::parse_str(text).is_ok(),
            "date-time" => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
            "date" => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok(),
            _ => true,
        };
        assert!(ok, "{at}: {text} is not a {format}");
    }
    if let Some(object) = value.as_object() {
        let props = schema.get("properties").and_then(Value::as_object);
        for required in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = required.as_str().unwrap();
            assert!(object.contains_key(name), "{at}: missing required {name}");
        }
        for (name, v) in object {
            match props.and_then(|p| p.get(name)) {
                Some(s) => check(doc, s, v, &format!("{at}.{name}")),
                None => assert!(props.is_none(), "{at}: {name} is not in the schema"),
            }
        }
        if let Some(props) = props {
            // Everything documented is sent: optional values are `null`, never omitted.
            for name in props.keys() {
                assert!(
                    object.contains_key(name),
                    "{at}: {name} documented but not sent"
                );
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, v) in array.iter().enumerate() {
            check(doc, items, v, &format!("{at}[{i}]"));
        }
    }
}

/// Checks a reply against the documented response of `method path` for its status.
fn conforms(doc: &Value, path: &str, method: &str, reply: &Reply) {
    let status = reply.status.as_u16().to_string();
    let mut response = &doc["paths"][path][method]["responses"][&status];
    assert!(
        !response.is_null(),
        "{method} {path}: {status} is not documented"
    );
    if let Some(r) = response.get("$ref").and_then(Value::as_str) {
        response = &doc["components"]["responses"][r.rsplit('/').next().unwrap()];
    }
    let content_type = reply.header(header::CONTENT_TYPE).unwrap();
    let media = content_type.split(';').next().unwrap().trim();
    let schema = &response["content"][media]["schema"];
    assert!(
        !schema.is_null(),
        "{method} {path} {status}: {media} is not documented"
    );
    check(
        doc,
        schema,
        &reply.body,
        &format!("{method} {path} {status}"),
    );
}

#[actix_rt::test]
async fn real_answers_fit_their_documented_schemas() {
    let doc = document().await;
    let tenant_id = TenantId::new();
    let mut api = MockBillingApi::new();
    api.expect_list_plans().returning(|_, _| Ok(vec![plan()]));
    api.expect_get_tenant().returning(move |_, id| {
        Ok(TenantOverview {
            tenant: tenant(id),
            subscription: Some(subscription(id)),
        })
    });
    api.expect_list_invoices().returning(move |_, _, _| {
        Ok(Page {
            items: vec![invoice(tenant_id)],
            next: None,
        })
    });
    api.expect_list_payments().returning(move |_, _, _| {
        Ok(Page {
            items: vec![payment(tenant_id, InvoiceId::new())],
            next: None,
        })
    });
    api.expect_list_events().returning(|_, _, _| {
        Ok(Page {
            items: vec![ledger_entry()],
            next: None,
        })
    });
    api.expect_get_plan()
        .returning(|_, key| Err(BillingError::PlanNotFound(key.to_string())));
    let entitled = TenantId::new();
    api.expect_tenant_access().returning(move |_, id| {
        Ok(if id == entitled {
            TenantAccess {
                decision: AccessDecision {
                    entitled: true,
                    reason: AccessReason::PastDueGrace,
                    until: Some(created()),
                },
                plan_code: Some(PlanCode::parse("plan-pro").unwrap()),
                features: Features::parse(vec!["reports".into()]).unwrap(),
                status: Some(SubscriptionStatus::PastDue),
            }
        } else {
            TenantAccess {
                decision: AccessDecision {
                    entitled: false,
                    reason: AccessReason::NoSubscription,
                    until: None,
                },
                plan_code: None,
                features: Features::default(),
                status: None,
            }
        })
    });
    // ---- refunds and disputes (issue 14) ----
    let detail = refunded_and_disputed(tenant_id);
    let payment_id = detail.payment.id;
    let disputes = detail.disputes.clone();
    api.expect_get_payment()
        .returning(move |_, _| Ok(detail.clone()));
    api.expect_list_disputes().returning(move |_, _, _| {
        Ok(Page {
            items: disputes.clone(),
            next: None,
        })
    });
    let admin = || bearer(&admin_token());
    let cases = [
        (
            paths::PAYMENT,
            "get",
            TestRequest::get()
                .uri(&format!("/api/v1/billing/payments/{payment_id}"))
                .insert_header(admin()),
        ),
        (
            paths::DISPUTES,
            "get",
            TestRequest::get()
                .uri("/api/v1/billing/disputes?status=lost")
                .insert_header(admin()),
        ),
        (
            paths::PLANS,
            "get",
            TestRequest::get().uri(paths::PLANS).insert_header(admin()),
        ),
        (
            paths::PLAN,
            "get",
            TestRequest::get()
                .uri("/api/v1/billing/plans/plan-gold")
                .insert_header(admin()),
        ),
        (
            paths::TENANT,
            "get",
            TestRequest::get()
                .uri(&format!("/api/v1/billing/tenants/{tenant_id}"))
                .insert_header(admin()),
        ),
        (
            paths::TENANT_ACCESS,
            "get",
            TestRequest::get()
                .uri(&format!("/api/v1/billing/tenants/{entitled}/access"))
                .insert_header(admin()),
        ),
        (
            paths::TENANT_ACCESS,
            "get",
            TestRequest::get()
                .uri(&format!("/api/v1/billing/tenants/{tenant_id}/access"))
                .insert_header(admin()),
        ),
        (
            paths::INVOICES,
            "get",
            TestRequest::get()
                .uri(paths::INVOICES)
                .insert_header(admin()),
        ),
        (
            paths::PAYMENTS,
            "get",
            TestRequest::get()
                .uri(paths::PAYMENTS)
                .insert_header(admin()),
        ),
        (
            paths::STRIPE_EVENTS,
            "get",
            TestRequest::get()
                .uri(paths::STRIPE_EVENTS)
                .insert_header(admin()),
        ),
        (
            paths::STRIPE_EVENTS,
            "get",
            TestRequest::get()
                .uri("/api/v1/billing/stripe/events?limit=0")
                .insert_header(admin()),
        ),
        (
            paths::PLANS,
            "post",
            TestRequest::post()
                .uri(paths::PLANS)
                .insert_header(admin())
                .set_payload("{")
                .insert_header((header::CONTENT_TYPE, "application/json")),
        ),
        (
            paths::INVOICES,
            "get",
            TestRequest::get().uri(paths::INVOICES),
        ),
        (
            paths::HEALTH_LIVE,
            "get",
            TestRequest::get().uri(paths::HEALTH_LIVE),
        ),
    ];
    let (specs, reqs): (Vec<_>, Vec<_>) = cases
        .into_iter()
        .map(|(path, method, req)| ((path, method), req))
        .unzip();

    let replies = send_all(
        billing_http::Authenticator::hs256(SECRET).unwrap(),
        api,
        std::sync::Arc::new(billing_domain::metrics::NoMetrics),
        reqs,
    )
    .await;

    for ((path, method), reply) in specs.into_iter().zip(&replies) {
        conforms(&doc, path, method, reply);
    }
}

#[actix_rt::test]
async fn the_invoice_schema_documents_its_stripe_links_as_required_nullable_strings() {
    let doc = document().await;
    let invoice = &doc["components"]["schemas"]["InvoiceResponse"];

    for field in ["hostedInvoiceUrl", "invoicePdfUrl"] {
        let property = &invoice["properties"][field];
        assert!(property.is_object(), "{field} is not documented: {invoice}");
        assert!(
            property.to_string().contains("null"),
            "{field} should be nullable: {property}"
        );
        assert!(
            invoice["required"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == field),
            "{field} should be required"
        );
    }
}
