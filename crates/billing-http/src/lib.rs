#![doc = include_str!("../README.md")]
//!
//! This crate knows `billing-domain` and actix-web only: no database, no Stripe client.

pub mod auth;
pub mod dto;
pub mod error;
pub mod extract;
pub mod handlers;

use actix_web::web;

pub use auth::{mint_hs256, AuthError, AuthenticatedActor, Authenticator, InvalidKey, MintError};
pub use error::ApiError;
pub use extract::{extractor_configs, ExtractorConfigs, JSON_LIMIT};

/// The paths of the API (SPEC §3), for routing, `Location` headers and tests.
pub mod paths {
    /// Plans collection.
    pub const PLANS: &str = "/api/v1/billing/plans";
    /// One plan (`{planId}`: UUID or code).
    pub const PLAN: &str = "/api/v1/billing/plans/{planId}";
    /// One tenant.
    pub const TENANT: &str = "/api/v1/billing/tenants/{tenantId}";
    /// A tenant's current subscription.
    pub const TENANT_SUBSCRIPTION: &str = "/api/v1/billing/tenants/{tenantId}/subscription";
    /// Invoices collection.
    pub const INVOICES: &str = "/api/v1/billing/invoices";
    /// One invoice (`{invoiceId}`: UUID or number).
    pub const INVOICE: &str = "/api/v1/billing/invoices/{invoiceId}";
    /// The PaymentIntent of an invoice.
    pub const INVOICE_PAYMENT_INTENT: &str = "/api/v1/billing/invoices/{invoiceId}/payment-intent";
    /// Payments collection.
    pub const PAYMENTS: &str = "/api/v1/billing/payments";
    /// Webhook event ledger.
    pub const STRIPE_EVENTS: &str = "/api/v1/billing/stripe/events";
    /// Checkout Session.
    pub const STRIPE_CHECKOUT: &str = "/api/v1/billing/stripe/checkout";
    /// Customer Portal session.
    pub const STRIPE_PORTAL: &str = "/api/v1/billing/stripe/portal";
    /// Stripe webhook (registered by the server, not by this crate).
    pub const STRIPE_WEBHOOK: &str = "/api/v1/billing/stripe/webhook";
    /// Liveness probe.
    pub const HEALTH_LIVE: &str = "/health/live";
    /// Readiness probe.
    pub const HEALTH_READY: &str = "/health/ready";
}

/// A resource at `path` that answers 405 `method_not_allowed` (problem+json, with an
/// `Allow: <allow>` header) to methods it has no route for. Use it for any route added
/// next to [`configure`]'s, e.g. the webhook:
/// `cfg.service(billing_http::resource(paths::STRIPE_WEBHOOK, "POST").route(web::post().to(h)))`.
#[must_use]
pub fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<actix_web::HttpResponse, ApiError>(ApiError::method_not_allowed(allow))
    }))
}

/// Registers every route of the billing API, the extractor configurations and a
/// problem+json 404 for unknown paths.
///
/// The app must also hold, as app data, a `web::Data<dyn BillingApi>` (from an
/// `Arc<dyn BillingApi>` with `web::Data::from`) and a `web::Data<Authenticator>`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use handlers as h;

    let configs = extractor_configs();
    cfg.app_data(configs.json)
        .app_data(configs.query)
        .app_data(configs.path);

    cfg.service(
        resource(paths::PLANS, "GET, POST")
            .route(web::get().to(h::list_plans))
            .route(web::post().to(h::create_plan)),
    )
    .service(
        resource(paths::PLAN, "GET, PATCH")
            .route(web::get().to(h::get_plan))
            .route(web::patch().to(h::update_plan)),
    )
    .service(resource(paths::TENANT, "GET").route(web::get().to(h::get_tenant)))
    .service(
        resource(paths::TENANT_SUBSCRIPTION, "GET").route(web::get().to(h::tenant_subscription)),
    )
    .service(
        resource(paths::INVOICES, "GET, POST")
            .route(web::get().to(h::list_invoices))
            .route(web::post().to(h::create_invoice)),
    )
    .service(resource(paths::INVOICE, "GET").route(web::get().to(h::get_invoice)))
    .service(
        resource(paths::INVOICE_PAYMENT_INTENT, "POST")
            .route(web::post().to(h::invoice_payment_intent)),
    )
    .service(resource(paths::PAYMENTS, "GET").route(web::get().to(h::list_payments)))
    .service(resource(paths::STRIPE_EVENTS, "GET").route(web::get().to(h::list_events)))
    .service(resource(paths::STRIPE_CHECKOUT, "POST").route(web::post().to(h::start_checkout)))
    .service(resource(paths::STRIPE_PORTAL, "POST").route(web::post().to(h::open_portal)))
    .service(resource(paths::HEALTH_LIVE, "GET").route(web::get().to(h::live)))
    .service(resource(paths::HEALTH_READY, "GET").route(web::get().to(h::ready)));

    cfg.default_service(web::to(|| async {
        Err::<actix_web::HttpResponse, ApiError>(ApiError::route_not_found())
    }));
}
