//! The OpenAPI 3 document (`GET /api-docs/openapi.json`), generated with utoipa from the
//! handlers' `#[utoipa::path]` attributes and the DTOs' `ToSchema` derives of
//! [`crate::resources`], so that it follows the code. Error answers reference the reusable
//! responses of [`crate::responses`], all `application/problem+json` bodies of the
//! [`Problem`] schema.
//!
//! Tests check the document against the router (same paths and methods) and real answers
//! against their schemas. [`viewer`] serves it browsable at `/api-docs`.

use std::sync::OnceLock;

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

pub mod viewer;

use crate::error::Problem;
use crate::resources::{
    catchup, checkout, common, events, invoices, ops, outbox, payments, plans, portal, reconcile,
    self_service, tenants, webhook,
};
use crate::responses::{
    BadGateway, BadRequest, Conflict, Forbidden, Internal, NotFound, PayloadTooLarge, Unauthorized,
    Unavailable, Unprocessable, UnsupportedMediaType,
};

/// The name of the bearer security scheme in the document.
pub const BEARER: &str = "bearer";

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
                         `roles: [\"billing:admin\"]` makes an admin (the claim names are \
                         the server's JWT_TENANT_CLAIM and JWT_ROLES_CLAIM; `iss` and `aud` \
                         are checked when JWT_ISSUER and JWT_AUDIENCE are set).",
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
        plans::list_plans,
        plans::create_plan,
        plans::get_plan,
        plans::update_plan,
        tenants::get_tenant,
        tenants::tenant_subscription,
        tenants::tenant_access,
        self_service::cancel_subscription,
        self_service::resume_subscription,
        self_service::change_plan,
        self_service::preview_plan_change,
        self_service::create_refund,
        invoices::list_invoices,
        invoices::create_invoice,
        invoices::get_invoice,
        invoices::invoice_payment_intent,
        payments::list_payments,
        payments::get_payment,
        payments::list_disputes,
        events::list_events,
        events::replay_event,
        catchup::sync_events,
        outbox::list_outbox,
        outbox::retry_outbox_entry,
        checkout::start_checkout,
        portal::open_portal,
        webhook::stripe_webhook,
        ops::live,
        ops::ready,
        ops::metrics,
        openapi,
        reconcile::sync_tenant,
        reconcile::checkout_return,
    ),
    components(
        schemas(Problem, common::PageResponse<invoices::InvoiceResponse>),
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
        (name = "tenants", description = "Tenants, their subscriptions and their access"),
        (name = "invoices", description = "Invoices and their payment"),
        (name = "payments", description = "Payments and failed attempts"),
        (name = "stripe", description = "Checkout, Customer Portal, webhook and event ledger"),
        (name = "events", description = "Billing events out: the outbox of deliveries to the platform's services"),
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

/// The OpenAPI 3 document of this API.
///
/// # Responses
/// 200 `application/json`
#[utoipa::path(
    get,
    path = "/api-docs/openapi.json",
    tag = "operations",
    responses(
        (status = 200, description = "This document", body = serde_json::Value, content_type = "application/json")
    )
)]
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document_json())
}
