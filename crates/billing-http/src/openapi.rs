//! The OpenAPI 3 document (`GET /api-docs/openapi.json`), generated with utoipa from the
//! handlers' `#[utoipa::path]` attributes and the DTOs' `ToSchema` derives, so that it
//! follows the code. Error answers reference the reusable responses below, all
//! `application/problem+json` bodies of the [`Problem`] schema.
//!
//! Tests check the document against the router (same paths and methods) and real answers
//! against their schemas.

use std::sync::OnceLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToResponse};

use crate::dto;
use crate::error::Problem;
use crate::handlers;

/// The name of the bearer security scheme in the document.
pub const BEARER: &str = "bearer";

/// 400: a malformed parameter, body or signature.
#[derive(ToResponse)]
#[response(
    description = "Bad input: a malformed parameter (`invalid_parameter`), body (`invalid_json`), return URL (`invalid_return_url`, `return_url_required`) or webhook (`invalid_signature`, `invalid_payload`), or a request Stripe refused (`stripe_request_refused`, with Stripe's message)",
    content_type = "application/problem+json"
)]
pub struct BadRequest(pub Problem);

/// 401: no valid bearer token.
#[derive(ToResponse)]
#[response(
    description = "No valid bearer token (`unauthorized`)",
    content_type = "application/problem+json",
    headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"billing\"`, with `error=\"invalid_token\"` when a token was sent"))
)]
pub struct Unauthorized(pub Problem);

/// 403: the caller may not do this.
#[derive(ToResponse)]
#[response(
    description = "The token may not act for this tenant (`forbidden`, `tenant_required`) or is not an admin's (`admin_required`)",
    content_type = "application/problem+json"
)]
pub struct Forbidden(pub Problem);

/// 404: no such resource.
#[derive(ToResponse)]
#[response(
    description = "No such resource (`plan_not_found`, `tenant_not_found`, `invoice_not_found`, `subscription_not_found`, `customer_not_found`, `not_found`)",
    content_type = "application/problem+json"
)]
pub struct NotFound(pub Problem);

/// 409: the resource's state forbids it.
#[derive(ToResponse)]
#[response(
    description = "The current state forbids it (`plan_exists`, `plan_inactive`, `subscription_exists`, `invoice_exists`, `invoice_already_paid`, `invoice_not_payable`, `nothing_to_pay`, `invoice_payment_pending`, `customer_belongs_to_other_tenant`)",
    content_type = "application/problem+json"
)]
pub struct Conflict(pub Problem);

/// 413: the body is too large.
#[derive(ToResponse)]
#[response(
    description = "The body is too large (`payload_too_large`): 64 KiB for JSON, 256 KiB for the webhook",
    content_type = "application/problem+json"
)]
pub struct PayloadTooLarge(pub Problem);

/// 415: the body is not JSON.
#[derive(ToResponse)]
#[response(
    description = "The body is not `application/json` (`unsupported_media_type`)",
    content_type = "application/problem+json"
)]
pub struct UnsupportedMediaType(pub Problem);

/// 422: well-formed JSON that breaks a rule.
#[derive(ToResponse)]
#[response(
    description = "JSON of the wrong shape (`invalid_body`) or a value breaking a rule (`validation_failed`)",
    content_type = "application/problem+json"
)]
pub struct Unprocessable(pub Problem);

/// 500: internal failure.
#[derive(ToResponse)]
#[response(
    description = "Internal failure (`internal_error`); the cause is logged",
    content_type = "application/problem+json"
)]
pub struct Internal(pub Problem);

/// 502: Stripe failed.
#[derive(ToResponse)]
#[response(
    description = "Stripe failed to answer (`stripe_unavailable`)",
    content_type = "application/problem+json"
)]
pub struct BadGateway(pub Problem);

/// 503: temporarily unavailable.
#[derive(ToResponse)]
#[response(
    description = "Temporarily unavailable (`database_unavailable`, `stripe_not_configured`, `service_unavailable`); retry later",
    content_type = "application/problem+json"
)]
pub struct Unavailable(pub Problem);

/// Registers the bearer scheme.
struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT with `sub` and `exp`; `tenant_id` names the tenant, \
                         `roles: [\"billing:admin\"]` makes an admin.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The document's definition.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Billing Service",
        description = "Plans, subscriptions through Stripe Checkout, invoices and payments of a \
                       multi-tenant platform. Errors are `application/problem+json` with a stable `code`."
    ),
    paths(
        handlers::list_plans,
        handlers::create_plan,
        handlers::get_plan,
        handlers::update_plan,
        handlers::get_tenant,
        handlers::tenant_subscription,
        handlers::list_invoices,
        handlers::create_invoice,
        handlers::get_invoice,
        handlers::invoice_payment_intent,
        handlers::list_payments,
        handlers::list_events,
        handlers::replay_event,
        handlers::start_checkout,
        handlers::open_portal,
        handlers::stripe_webhook,
        handlers::live,
        handlers::ready,
        handlers::metrics,
        handlers::openapi,
    ),
    components(
        schemas(Problem, dto::PageResponse<dto::InvoiceResponse>),
        responses(
            BadRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            Conflict,
            PayloadTooLarge,
            UnsupportedMediaType,
            Unprocessable,
            Internal,
            BadGateway,
            Unavailable
        )
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "plans", description = "What tenants can subscribe to"),
        (name = "tenants", description = "Tenants and their subscriptions"),
        (name = "invoices", description = "Invoices and their payment"),
        (name = "payments", description = "Payments and failed attempts"),
        (name = "stripe", description = "Checkout, Customer Portal, webhook and event ledger"),
        (name = "operations", description = "Health, metrics and this document")
    )
)]
pub struct ApiDoc;

/// The OpenAPI document.
#[must_use]
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The OpenAPI document as JSON, built once.
#[must_use]
pub fn document_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| {
        document().to_json().unwrap_or_else(|e| {
            tracing::error!(error = %e, "could not serialise the OpenAPI document");
            "{}".to_owned()
        })
    })
}
