#![doc = include_str!("../README.md")]
//!
//! This crate knows `billing-domain` and actix-web only: no database, no Stripe client. Its
//! one outgoing request fetches the identity provider's key set (`auth::Jwks`).

pub mod auth;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod middleware;
pub mod openapi;
pub mod resources;
pub mod responses;

use std::sync::Arc;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::{web, App};
use billing_domain::BillingApi;

pub use auth::{
    mint_hs256, AuthError, AuthenticatedActor, Authenticator, InvalidKey, Jwks, MintError,
    TokenPolicy,
};
pub use error::{ApiError, Problem};
pub use extract::{extractor_configs, ExtractorConfigs, JSON_LIMIT, WEBHOOK_LIMIT};
pub use metrics::MetricsEndpoint;
pub use middleware::RequestId;

/// The paths of the API (docs/contract.md, HTTP API), for routing, `Location` headers and tests.
pub mod paths {
    /// Plans collection.
    pub const PLANS: &str = "/api/v1/billing/plans";
    /// One plan (`{planId}`: UUID or code).
    pub const PLAN: &str = "/api/v1/billing/plans/{planId}";
    /// One tenant.
    pub const TENANT: &str = "/api/v1/billing/tenants/{tenantId}";
    /// A tenant's current subscription.
    pub const TENANT_SUBSCRIPTION: &str = "/api/v1/billing/tenants/{tenantId}/subscription";
    /// Whether a tenant may use the platform now.
    pub const TENANT_ACCESS: &str = "/api/v1/billing/tenants/{tenantId}/access";
    /// Invoices collection.
    pub const INVOICES: &str = "/api/v1/billing/invoices";
    /// One invoice (`{invoiceId}`: UUID or number).
    pub const INVOICE: &str = "/api/v1/billing/invoices/{invoiceId}";
    /// The PaymentIntent of an invoice.
    pub const INVOICE_PAYMENT_INTENT: &str = "/api/v1/billing/invoices/{invoiceId}/payment-intent";
    /// Payments collection.
    pub const PAYMENTS: &str = "/api/v1/billing/payments";
    /// One payment with its refunds and disputes (issue 14).
    pub const PAYMENT: &str = "/api/v1/billing/payments/{paymentId}";
    /// Disputes collection, admin (issue 14).
    pub const DISPUTES: &str = "/api/v1/billing/disputes";
    /// Webhook event ledger.
    pub const STRIPE_EVENTS: &str = "/api/v1/billing/stripe/events";
    /// Checkout Session.
    pub const STRIPE_CHECKOUT: &str = "/api/v1/billing/stripe/checkout";
    /// Customer Portal session.
    pub const STRIPE_PORTAL: &str = "/api/v1/billing/stripe/portal";
    /// Stripe webhook (no bearer token; `Stripe-Signature`).
    pub const STRIPE_WEBHOOK: &str = "/api/v1/billing/stripe/webhook";
    /// Runs a catch-up pass over Stripe's Events API now (admin, issue 15).
    pub const STRIPE_EVENTS_SYNC: &str = "/api/v1/billing/stripe/events/sync";
    /// Reconciles a tenant with Stripe (issue 15).
    pub const TENANT_SYNC: &str = "/api/v1/billing/tenants/{tenantId}/sync";
    /// The checkout return: a Checkout Session read back from Stripe (issue 15).
    pub const STRIPE_CHECKOUT_SESSION: &str = "/api/v1/billing/stripe/checkout/{sessionId}";
    /// Billing events' deliveries (admin, issue 16).
    pub const OUTBOX: &str = "/api/v1/billing/outbox";
    /// Retries a dead delivery (admin, issue 16).
    pub const OUTBOX_RETRY: &str = "/api/v1/billing/outbox/{id}/retry";
    /// Replays one ledger event (admin).
    pub const STRIPE_EVENT_REPLAY: &str = "/api/v1/billing/stripe/events/{eventId}/replay";
    /// Cancels a tenant's subscription (issue 16).
    pub const TENANT_SUBSCRIPTION_CANCEL: &str =
        "/api/v1/billing/tenants/{tenantId}/subscription/cancel";
    /// Resumes a tenant's subscription (issue 16).
    pub const TENANT_SUBSCRIPTION_RESUME: &str =
        "/api/v1/billing/tenants/{tenantId}/subscription/resume";
    /// Moves a tenant's subscription to another plan (issue 16).
    pub const TENANT_SUBSCRIPTION_CHANGE_PLAN: &str =
        "/api/v1/billing/tenants/{tenantId}/subscription/change-plan";
    /// Previews a plan change (issue 16).
    pub const TENANT_SUBSCRIPTION_CHANGE_PLAN_PREVIEW: &str =
        "/api/v1/billing/tenants/{tenantId}/subscription/change-plan/preview";
    /// Refunds a payment, admin (issue 16).
    pub const PAYMENT_REFUNDS: &str = "/api/v1/billing/payments/{paymentId}/refunds";
    /// Liveness probe.
    pub const HEALTH_LIVE: &str = "/health/live";
    /// Readiness probe.
    pub const HEALTH_READY: &str = "/health/ready";
    /// Prometheus metrics.
    pub const METRICS: &str = "/metrics";
    /// The OpenAPI document.
    pub const OPENAPI: &str = "/api-docs/openapi.json";
    /// The document's browsable viewer (redirects to [`API_DOCS_FILES`]' page). Not an
    /// operation of the API: not in [`ALL`] nor in the document.
    pub const API_DOCS: &str = "/api-docs";
    /// The viewer's page (`/api-docs/`) and its embedded assets.
    pub const API_DOCS_FILES: &str = "/api-docs/{file:.*}";

    /// Every route pattern [`super::configure`] registers, with its methods. Keep in step
    /// with `configure`; the tests compare it with the router and the OpenAPI document.
    pub const ALL: &[(&str, &[&str])] = &[
        (TENANT_SYNC, &["post"]),
        (STRIPE_EVENTS_SYNC, &["post"]),
        (STRIPE_CHECKOUT_SESSION, &["get"]),
        (PLANS, &["get", "post"]),
        (PLAN, &["get", "patch"]),
        (TENANT, &["get"]),
        (TENANT_SUBSCRIPTION, &["get"]),
        (TENANT_ACCESS, &["get"]),
        (INVOICES, &["get", "post"]),
        (INVOICE, &["get"]),
        (INVOICE_PAYMENT_INTENT, &["post"]),
        (PAYMENTS, &["get"]),
        (PAYMENT, &["get"]),
        (DISPUTES, &["get"]),
        (STRIPE_EVENTS, &["get"]),
        (STRIPE_EVENT_REPLAY, &["post"]),
        (OUTBOX, &["get"]),
        (OUTBOX_RETRY, &["post"]),
        (STRIPE_CHECKOUT, &["post"]),
        (STRIPE_PORTAL, &["post"]),
        (STRIPE_WEBHOOK, &["post"]),
        (HEALTH_LIVE, &["get"]),
        (HEALTH_READY, &["get"]),
        (METRICS, &["get"]),
        (OPENAPI, &["get"]),
        (TENANT_SUBSCRIPTION_CANCEL, &["post"]),
        (TENANT_SUBSCRIPTION_RESUME, &["post"]),
        (TENANT_SUBSCRIPTION_CHANGE_PLAN, &["post"]),
        (TENANT_SUBSCRIPTION_CHANGE_PLAN_PREVIEW, &["get"]),
        (PAYMENT_REFUNDS, &["post"]),
    ];
}

/// Everything the app needs: the use cases, the token verifier and the metrics.
#[derive(Clone)]
pub struct AppState {
    /// The billing use cases.
    pub api: Arc<dyn BillingApi>,
    /// Bearer-token verification.
    pub auth: Authenticator,
    /// Where requests and webhook deliveries are reported, also rendered at
    /// `GET /metrics`.
    pub metrics: Arc<dyn MetricsEndpoint>,
}

/// The whole application, for the server and the tests alike: app data from `state`,
/// the request-id/tracing/metrics middleware ([`middleware::observe`]) around every
/// route of [`configure`].
pub fn app(
    state: AppState,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    App::new()
        .app_data(web::Data::from(state.api))
        .app_data(web::Data::new(state.auth))
        .app_data(web::Data::from(state.metrics))
        .wrap(actix_web::middleware::from_fn(middleware::observe))
        .configure(configure)
}

/// A resource at `path` that answers 405 `method_not_allowed` (problem+json, with an
/// `Allow: <allow>` header) to methods it has no route for. Use it for any route added
/// next to [`configure`]'s:
/// `cfg.service(billing_http::resource("/extra", "POST").route(web::post().to(h)))`.
#[must_use]
pub fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<actix_web::HttpResponse, ApiError>(ApiError::method_not_allowed(allow))
    }))
}

/// Registers every route of the billing API (the webhook, health, metrics and OpenAPI
/// ones included, and the document's viewer at `/api-docs`), the extractor configurations
/// and a problem+json 404 for unknown paths.
///
/// The app must also hold, as app data, a `web::Data<dyn BillingApi>` (from an
/// `Arc<dyn BillingApi>` with `web::Data::from`), a `web::Data<Authenticator>` and a
/// `web::Data<dyn MetricsEndpoint>` (from an `Arc` with `web::Data::from`); [`app`] does
/// all of it.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use resources::{
        catchup, checkout, events, invoices, ops, outbox, payments, plans, portal, reconcile,
        tenants, webhook,
    };

    let configs = extractor_configs();
    cfg.app_data(configs.json)
        .app_data(configs.query)
        .app_data(configs.path);

    // The webhook (the hot path) and the probes first: the router tries routes in order,
    // and a path with an `{id}` is matched with a regex, which the webhook then never pays
    // for (profiling showed it). No two patterns overlap, so the order changes nothing else.
    cfg.service(
        // Raw bytes only: the signature covers the body exactly as received.
        resource(paths::STRIPE_WEBHOOK, "POST")
            .app_data(web::PayloadConfig::new(WEBHOOK_LIMIT))
            .route(web::post().to(webhook::stripe_webhook)),
    )
    .service(resource(paths::HEALTH_LIVE, "GET").route(web::get().to(ops::live)))
    .service(resource(paths::HEALTH_READY, "GET").route(web::get().to(ops::ready)))
    .service(resource(paths::METRICS, "GET").route(web::get().to(ops::metrics)))
    .service(
        resource(paths::PLANS, "GET, POST")
            .route(web::get().to(plans::list_plans))
            .route(web::post().to(plans::create_plan)),
    )
    .service(
        resource(paths::PLAN, "GET, PATCH")
            .route(web::get().to(plans::get_plan))
            .route(web::patch().to(plans::update_plan)),
    )
    .service(resource(paths::TENANT, "GET").route(web::get().to(tenants::get_tenant)))
    .service(
        resource(paths::TENANT_SUBSCRIPTION, "GET")
            .route(web::get().to(tenants::tenant_subscription)),
    )
    .service(resource(paths::TENANT_ACCESS, "GET").route(web::get().to(tenants::tenant_access)))
    .configure(resources::self_service::configure)
    .service(
        resource(paths::INVOICES, "GET, POST")
            .route(web::get().to(invoices::list_invoices))
            .route(web::post().to(invoices::create_invoice)),
    )
    .service(resource(paths::INVOICE, "GET").route(web::get().to(invoices::get_invoice)))
    .service(
        resource(paths::INVOICE_PAYMENT_INTENT, "POST")
            .route(web::post().to(invoices::invoice_payment_intent)),
    )
    .service(resource(paths::PAYMENTS, "GET").route(web::get().to(payments::list_payments)))
    // ---- refunds and disputes (issue 14) ----
    .service(resource(paths::PAYMENT, "GET").route(web::get().to(payments::get_payment)))
    .service(resource(paths::DISPUTES, "GET").route(web::get().to(payments::list_disputes)))
    .service(resource(paths::STRIPE_EVENTS, "GET").route(web::get().to(events::list_events)))
    .service(
        resource(paths::STRIPE_EVENTS_SYNC, "POST").route(web::post().to(catchup::sync_events)),
    )
    .service(
        resource(paths::STRIPE_CHECKOUT, "POST").route(web::post().to(checkout::start_checkout)),
    )
    .service(resource(paths::STRIPE_PORTAL, "POST").route(web::post().to(portal::open_portal)))
    .service(
        resource(paths::STRIPE_EVENT_REPLAY, "POST").route(web::post().to(events::replay_event)),
    )
    // ---- billing events out (issue 16) ----
    .service(resource(paths::OUTBOX, "GET").route(web::get().to(outbox::list_outbox)))
    .service(
        resource(paths::OUTBOX_RETRY, "POST").route(web::post().to(outbox::retry_outbox_entry)),
    )
    // ---- reconciliation (issue 15) ----
    .service(resource(paths::TENANT_SYNC, "POST").route(web::post().to(reconcile::sync_tenant)))
    .service(
        resource(paths::STRIPE_CHECKOUT_SESSION, "GET")
            .route(web::get().to(reconcile::checkout_return)),
    )
    .service(resource(paths::OPENAPI, "GET").route(web::get().to(openapi::openapi)))
    // After the document: its pattern takes every other path under `/api-docs/`.
    .service(resource(paths::API_DOCS, "GET").route(web::get().to(openapi::viewer::redirect)))
    .service(resource(paths::API_DOCS_FILES, "GET").route(web::get().to(openapi::viewer::file)));

    cfg.default_service(web::to(|| async {
        Err::<actix_web::HttpResponse, ApiError>(ApiError::route_not_found())
    }));
}
