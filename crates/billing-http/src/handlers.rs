//! The request handlers. Each one extracts its input, converts it to domain types, makes
//! one `BillingApi` call and maps the answer; authorisation and business rules are the
//! domain's. Every protected handler takes [`AuthenticatedActor`] first, so a request
//! without a valid token is refused before its body is read.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use billing_domain::service::{WebhookError, WebhookReceipt};
use billing_domain::{BillingApi, CheckoutInput, EventId};

use crate::auth::AuthenticatedActor;
use crate::dto::{
    customer_param, invoice_param, merge_param, plan_param, tenant_param, CheckoutParams,
    CheckoutResponse, CreateInvoiceBody, CreatePlanBody, EventResponse, HealthResponse,
    InvoiceResponse, ListEventsParams, ListInvoicesParams, ListPaymentsParams, ListPlansParams,
    PageResponse, PaymentIntentResponse, PaymentResponse, PlanResponse, PortalParams,
    PortalResponse, ReplayResponse, SubscriptionResponse, TenantResponse, UpdatePlanBody,
    WebhookAck,
};
use crate::error::{ApiError, Chain};
use crate::extract::{OptionalJson, WebhookBody};
use crate::metrics::{Metrics, TEXT_FORMAT};
use crate::middleware::root_span;
use crate::openapi::{
    BadGateway, BadRequest, Conflict, Forbidden, Internal, NotFound, PayloadTooLarge, Unauthorized,
    Unavailable, Unprocessable, UnsupportedMediaType,
};
use crate::paths;

/// The service, as the handlers see it.
type Api = web::Data<dyn BillingApi>;

/// Lists plans.
/// # Responses
/// 200 `[PlanResponse]` · 400 bad `includeInactive`
#[utoipa::path(
    get,
    path = "/api/v1/billing/plans",
    tag = "plans",
    params(ListPlansParams),
    responses(
        (status = 200, description = "Plans, by code", body = Vec<PlanResponse>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn list_plans(
    actor: AuthenticatedActor,
    api: Api,
    query: web::Query<ListPlansParams>,
) -> Result<HttpResponse, ApiError> {
    let include_inactive = query.include_inactive()?;
    let plans = api.list_plans(&actor, include_inactive).await?;
    let body: Vec<PlanResponse> = plans.iter().map(PlanResponse::from).collect();
    Ok(HttpResponse::Ok().json(body))
}

/// One plan by UUID or code.
/// # Responses
/// 200 `PlanResponse` · 400 malformed key · 404 `plan_not_found`
#[utoipa::path(
    get,
    path = "/api/v1/billing/plans/{planId}",
    tag = "plans",
    params(("planId" = String, Path, description = "A plan's UUID or its code, e.g. `plan-pro`", pattern = "^([a-z][a-z0-9-]{0,63}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$", example = "plan-pro")),
    responses(
        (status = 200, description = "The plan", body = PlanResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
        (status = 404, response = NotFound)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(plan.key = %path))]
pub async fn get_plan(
    actor: AuthenticatedActor,
    api: Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = plan_param("planId", &path)?;
    let plan = api.get_plan(&actor, &key).await?;
    Ok(HttpResponse::Ok().json(PlanResponse::from(&plan)))
}

/// Creates a plan (admin).
/// # Responses
/// 201 `PlanResponse` with `Location` · 403 `admin_required` · 409 `plan_exists` · 422
#[utoipa::path(
    post,
    path = "/api/v1/billing/plans",
    tag = "plans",
    request_body = CreatePlanBody,
    responses(
        (status = 201, description = "The new plan", body = PlanResponse, headers(("Location" = String, description = "The new resource"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
        (status = 409, response = Conflict)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(plan.code = %body.code))]
pub async fn create_plan(
    actor: AuthenticatedActor,
    api: Api,
    body: web::Json<CreatePlanBody>,
) -> Result<HttpResponse, ApiError> {
    let plan = api
        .create_plan(&actor, body.into_inner().try_into_domain()?)
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("{}/{}", paths::PLANS, plan.id)))
        .json(PlanResponse::from(&plan)))
}

/// Changes a plan (admin).
/// # Responses
/// 200 `PlanResponse` · 403 `admin_required` · 404 `plan_not_found` · 409 · 422
#[utoipa::path(
    patch,
    path = "/api/v1/billing/plans/{planId}",
    tag = "plans",
    params(("planId" = String, Path, description = "A plan's UUID or its code, e.g. `plan-pro`", pattern = "^([a-z][a-z0-9-]{0,63}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$", example = "plan-pro")),
    request_body = UpdatePlanBody,
    responses(
        (status = 200, description = "The changed plan", body = PlanResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(plan.key = %path))]
pub async fn update_plan(
    actor: AuthenticatedActor,
    api: Api,
    path: web::Path<String>,
    body: web::Json<UpdatePlanBody>,
) -> Result<HttpResponse, ApiError> {
    let key = plan_param("planId", &path)?;
    let patch = body.into_inner().try_into_domain()?;
    let plan = api.update_plan(&actor, &key, patch).await?;
    Ok(HttpResponse::Ok().json(PlanResponse::from(&plan)))
}

/// A tenant with its current subscription.
/// # Responses
/// 200 `TenantResponse` · 400 bad UUID · 403 `forbidden` · 404 `tenant_not_found`
#[utoipa::path(
    get,
    path = "/api/v1/billing/tenants/{tenantId}",
    tag = "tenants",
    params(("tenantId" = String, Path, format = Uuid, description = "The tenant's UUID", example = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b")),
    responses(
        (status = 200, description = "The tenant with its current subscription", body = TenantResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
        (status = 404, response = NotFound)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(tenant.id = %path))]
pub async fn get_tenant(
    actor: AuthenticatedActor,
    api: Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = tenant_param("tenantId", &path)?;
    let overview = api.get_tenant(&actor, tenant).await?;
    Ok(HttpResponse::Ok().json(TenantResponse::from(&overview)))
}

/// A tenant's current subscription.
/// # Responses
/// 200 `SubscriptionResponse` · 400 bad UUID · 403 · 404 `subscription_not_found`
#[utoipa::path(
    get,
    path = "/api/v1/billing/tenants/{tenantId}/subscription",
    tag = "tenants",
    params(("tenantId" = String, Path, format = Uuid, description = "The tenant's UUID", example = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b")),
    responses(
        (status = 200, description = "The tenant's current subscription", body = SubscriptionResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
        (status = 404, response = NotFound)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(tenant.id = %path))]
pub async fn tenant_subscription(
    actor: AuthenticatedActor,
    api: Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = tenant_param("tenantId", &path)?;
    let subscription = api.tenant_subscription(&actor, tenant).await?;
    Ok(HttpResponse::Ok().json(SubscriptionResponse::from(&subscription)))
}

/// A page of invoices.
/// # Responses
/// 200 `{data: [InvoiceResponse], nextCursor}` · 400 bad filter, limit or cursor · 403
#[utoipa::path(
    get,
    path = "/api/v1/billing/invoices",
    tag = "invoices",
    params(ListInvoicesParams),
    responses(
        (status = 200, description = "A page of invoices, newest first", body = PageResponse<InvoiceResponse>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(tenant.id = ?query.tenant_id))]
pub async fn list_invoices(
    actor: AuthenticatedActor,
    api: Api,
    query: web::Query<ListInvoicesParams>,
) -> Result<HttpResponse, ApiError> {
    let (filter, page) = query.into_inner().try_into_domain()?;
    let invoices = api.list_invoices(&actor, filter, page).await?;
    Ok(HttpResponse::Ok().json(PageResponse::<InvoiceResponse>::from_page(&invoices)))
}

/// One invoice by UUID or number.
/// # Responses
/// 200 `InvoiceResponse` · 400 malformed key · 403 · 404 `invoice_not_found`
#[utoipa::path(
    get,
    path = "/api/v1/billing/invoices/{invoiceId}",
    tag = "invoices",
    params(("invoiceId" = String, Path, description = "An invoice's UUID or its number, e.g. `inv-001`", pattern = "^[!-.0-~]{1,64}$", example = "inv-001")),
    responses(
        (status = 200, description = "The invoice", body = InvoiceResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
        (status = 404, response = NotFound)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(invoice.key = %path))]
pub async fn get_invoice(
    actor: AuthenticatedActor,
    api: Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = invoice_param("invoiceId", &path)?;
    let invoice = api.get_invoice(&actor, &key).await?;
    Ok(HttpResponse::Ok().json(InvoiceResponse::from(&invoice)))
}

/// Creates an invoice (admin).
/// # Responses
/// 201 `InvoiceResponse` with `Location` · 403 `admin_required` · 409 `invoice_exists` · 422
#[utoipa::path(
    post,
    path = "/api/v1/billing/invoices",
    tag = "invoices",
    request_body = CreateInvoiceBody,
    responses(
        (status = 201, description = "The new invoice", body = InvoiceResponse, headers(("Location" = String, description = "The new resource"))),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(tenant.id = %body.tenant_id))]
pub async fn create_invoice(
    actor: AuthenticatedActor,
    api: Api,
    body: web::Json<CreateInvoiceBody>,
) -> Result<HttpResponse, ApiError> {
    let invoice = api
        .create_invoice(&actor, body.into_inner().try_into_domain()?)
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("{}/{}", paths::INVOICES, invoice.id),
        ))
        .json(InvoiceResponse::from(&invoice)))
}

/// The client secret of the one PaymentIntent collecting an invoice.
/// # Responses
/// 200 `{clientSecret}` · 403 · 404 · 409 (paid, not payable, nothing to pay, pending) ·
/// 502/503 Stripe
#[utoipa::path(
    post,
    path = "/api/v1/billing/invoices/{invoiceId}/payment-intent",
    tag = "invoices",
    params(("invoiceId" = String, Path, description = "An invoice's UUID or its number, e.g. `inv-001`", pattern = "^[!-.0-~]{1,64}$", example = "inv-001")),
    responses(
        (status = 200, description = "The client secret of the invoice's one PaymentIntent", body = PaymentIntentResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 502, response = BadGateway)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(invoice.key = %path))]
pub async fn invoice_payment_intent(
    actor: AuthenticatedActor,
    api: Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = invoice_param("invoiceId", &path)?;
    let secret = api.invoice_payment_intent(&actor, &key).await?;
    Ok(HttpResponse::Ok().json(PaymentIntentResponse {
        client_secret: secret.expose().to_owned(),
    }))
}

/// A page of payments.
/// # Responses
/// 200 `{data: [PaymentResponse], nextCursor}` · 400 bad filter, limit or cursor · 403
#[utoipa::path(
    get,
    path = "/api/v1/billing/payments",
    tag = "payments",
    params(ListPaymentsParams),
    responses(
        (status = 200, description = "A page of payments, newest first", body = PageResponse<PaymentResponse>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(tenant.id = ?query.tenant_id))]
pub async fn list_payments(
    actor: AuthenticatedActor,
    api: Api,
    query: web::Query<ListPaymentsParams>,
) -> Result<HttpResponse, ApiError> {
    let (filter, page) = query.into_inner().try_into_domain()?;
    let payments = api.list_payments(&actor, filter, page).await?;
    Ok(HttpResponse::Ok().json(PageResponse::<PaymentResponse>::from_page(&payments)))
}

/// A page of the webhook event ledger (admin), without payloads.
/// # Responses
/// 200 `{data: [EventResponse], nextCursor}` · 400 bad filter · 403 `admin_required`
#[utoipa::path(
    get,
    path = "/api/v1/billing/stripe/events",
    tag = "stripe",
    params(ListEventsParams),
    responses(
        (status = 200, description = "A page of the event ledger (admin), without payloads", body = PageResponse<EventResponse>),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn list_events(
    actor: AuthenticatedActor,
    api: Api,
    query: web::Query<ListEventsParams>,
) -> Result<HttpResponse, ApiError> {
    let (filter, page) = query.into_inner().try_into_domain()?;
    let events = api.list_events(&actor, filter, page).await?;
    Ok(HttpResponse::Ok().json(PageResponse::<EventResponse>::from_page(&events)))
}

/// Opens a Stripe Checkout Session. Fields come from the query string or a JSON body.
/// # Responses
/// 200 `{sessionUrl, sessionId}` · 400 missing/bad/conflicting parameter · 403 · 404 plan ·
/// 409 inactive plan, live subscription, foreign customer · 502/503 Stripe
#[utoipa::path(
    post,
    path = "/api/v1/billing/stripe/checkout",
    tag = "stripe",
    params(CheckoutParams),
    request_body(content = Option<CheckoutParams>, description = "The same fields as the query string, as JSON (optional)"),
    responses(
        (status = 200, description = "The Checkout Session", body = CheckoutResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 502, response = BadGateway)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(tenant.id = tracing::field::Empty))]
pub async fn start_checkout(
    actor: AuthenticatedActor,
    api: Api,
    query: web::Query<CheckoutParams>,
    body: OptionalJson<CheckoutParams>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0.unwrap_or_default();
    let tenant = merge_param(
        "tenantId",
        query.tenant_id.as_deref(),
        body.tenant_id.as_deref(),
        tenant_param,
    )?
    .ok_or_else(|| ApiError::invalid_parameter("tenantId", "is required"))?;
    tracing::Span::current().record("tenant.id", tracing::field::display(tenant));
    let plan = merge_param(
        "planId",
        query.plan_id.as_deref(),
        body.plan_id.as_deref(),
        plan_param,
    )?
    .ok_or_else(|| ApiError::invalid_parameter("planId", "is required"))?;
    let customer = merge_param(
        "customerId",
        query.customer_id.as_deref(),
        body.customer_id.as_deref(),
        customer_param,
    )?;
    let session = api
        .start_checkout(
            &actor,
            CheckoutInput {
                tenant,
                plan,
                customer,
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(CheckoutResponse::from(&session)))
}

/// Opens a Customer Portal session. Fields come from the query string or a JSON body.
/// # Responses
/// 200 `{portalUrl}` · 400 missing `customerId`, bad `returnUrl` · 403 · 404 customer ·
/// 502/503 Stripe
#[utoipa::path(
    post,
    path = "/api/v1/billing/stripe/portal",
    tag = "stripe",
    params(PortalParams),
    request_body(content = Option<PortalParams>, description = "The same fields as the query string, as JSON (optional)"),
    responses(
        (status = 200, description = "The Customer Portal session", body = PortalResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 413, response = PayloadTooLarge),
        (status = 415, response = UnsupportedMediaType),
        (status = 422, response = Unprocessable),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 502, response = BadGateway)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn open_portal(
    actor: AuthenticatedActor,
    api: Api,
    query: web::Query<PortalParams>,
    body: OptionalJson<PortalParams>,
) -> Result<HttpResponse, ApiError> {
    let body = body.0.unwrap_or_default();
    let customer = merge_param(
        "customerId",
        query.customer_id.as_deref(),
        body.customer_id.as_deref(),
        customer_param,
    )?
    .ok_or_else(|| ApiError::invalid_parameter("customerId", "is required"))?;
    // The domain validates the URL itself (scheme, host allow-list); here it is only text.
    let return_url = merge_param(
        "returnUrl",
        query.return_url.as_deref(),
        body.return_url.as_deref(),
        |_, raw| Ok(raw.to_owned()),
    )?;
    let portal_url = api.open_portal(&actor, &customer, return_url).await?;
    Ok(HttpResponse::Ok().json(PortalResponse { portal_url }))
}

/// Liveness: the process answers.
/// # Responses
/// 200 `{"status":"ok"}`
#[utoipa::path(
    get,
    path = "/health/live",
    tag = "operations",
    responses(
        (status = 200, description = "The process answers", body = HealthResponse)
    )
)]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(HealthResponse { status: "ok" })
}

/// Readiness: the database answers.
/// # Responses
/// 200 `{"status":"ok"}` · 503 `database_unavailable`
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "operations",
    responses(
        (status = 200, description = "The database answers", body = HealthResponse),
        (status = 503, response = Unavailable)
    )
)]
pub async fn ready(api: Api) -> Result<HttpResponse, ApiError> {
    match api.ready().await {
        Ok(()) => Ok(HttpResponse::Ok().json(HealthResponse { status: "ok" })),
        Err(e) => {
            // Any failure means "do not send traffic here"; the probe needs no more.
            tracing::warn!(error = %crate::error::Chain(&e), "readiness check failed");
            Err(ApiError::database_unavailable())
        }
    }
}

/// The header Stripe signs webhook deliveries with.
pub const STRIPE_SIGNATURE: &str = "Stripe-Signature";

/// Records an event's id and type in the request's root span.
fn record_event(req: &HttpRequest, receipt: &WebhookReceipt) {
    let span = root_span(req);
    span.record("stripe.event_id", receipt.event_id.as_str());
    span.record("stripe.event_type", receipt.kind.as_str());
}

/// Records a delivered event in the root span and the metrics.
fn observe_receipt(req: &HttpRequest, receipt: &WebhookReceipt) {
    record_event(req, receipt);
    if let Some(metrics) = req.app_data::<web::Data<Metrics>>() {
        // An event "from the future" (clock skew) counts as no lag.
        let lag = (chrono::Utc::now() - receipt.created)
            .to_std()
            .unwrap_or_default();
        metrics.observe_webhook_event(
            &receipt.kind,
            receipt.outcome.as_str(),
            lag,
            receipt.api_version.as_deref(),
        );
    }
}

/// Receives a Stripe webhook delivery. No bearer token: the `Stripe-Signature` header is
/// the credential, checked by the service over the raw body exactly as received.
/// # Responses
/// 200 `{received, eventId, outcome}` for every recorded outcome (processed, duplicate,
/// stale, ignored, unmatched, failed) · 400 `invalid_signature`, `invalid_payload` ·
/// 413 `payload_too_large` · 503 `service_unavailable` (Stripe retries) · 500
#[utoipa::path(
    post,
    path = "/api/v1/billing/stripe/webhook",
    tag = "stripe",
    params(("Stripe-Signature" = Option<String>, Header, description = "`t=<unix>,v1=<hex>[,v1=...]`: the credential")),
    request_body(content = serde_json::Value, content_type = "application/json", description = "A Stripe event, verified byte for byte as received (at most 256 KiB)"),
    responses(
        (status = 200, description = "Accepted; `outcome` says what it came to", body = WebhookAck),
        (status = 400, response = BadRequest),
        (status = 413, response = PayloadTooLarge),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable)
    )
)]
#[tracing::instrument(skip_all)]
pub async fn stripe_webhook(
    req: HttpRequest,
    api: Api,
    body: WebhookBody,
) -> Result<HttpResponse, ApiError> {
    // A header that is not visible ASCII is handed over as text anyway: the service's
    // parser refuses it as malformed, the one place that judges signatures.
    let signature = req
        .headers()
        .get(STRIPE_SIGNATURE)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    match api.receive_webhook(&body.0, signature).await {
        Ok(receipt) => {
            observe_receipt(&req, &receipt);
            tracing::info!(
                stripe.event_id = receipt.event_id.as_str(),
                stripe.event_type = receipt.kind.as_str(),
                outcome = receipt.outcome.as_str(),
                "webhook event received"
            );
            Ok(HttpResponse::Ok().json(WebhookAck::from(&receipt)))
        }
        Err(WebhookError::Signature(e)) => {
            reject(&req, e.reason());
            tracing::warn!(reason = e.reason(), "webhook signature refused");
            Err(ApiError::invalid_signature(&e))
        }
        Err(WebhookError::InvalidPayload(why)) => {
            reject(&req, "invalid_payload");
            tracing::warn!(reason = %why, "webhook payload refused");
            Err(ApiError::invalid_payload(
                "the signed body is not a Stripe event this service can read",
            ))
        }
        Err(WebhookError::Unavailable(e)) => {
            tracing::error!(error = %Chain(e.as_ref()), "webhook not processed: unavailable");
            Err(ApiError::service_unavailable())
        }
        Err(WebhookError::Unexpected(e)) => Err(ApiError::internal(e.as_ref())),
    }
}

fn reject(req: &HttpRequest, reason: &str) {
    if let Some(metrics) = req.app_data::<web::Data<Metrics>>() {
        metrics.observe_webhook_rejection(reason);
    }
}

/// Fetches an event from Stripe again and applies it (admin); an `unmatched` or `failed`
/// event is applied anew.
/// # Responses
/// 200 `{eventId, type, outcome, detail}` · 400 malformed id · 403 `admin_required` ·
/// 404 `event_not_found` ·
/// 502/503 Stripe or database
#[utoipa::path(
    post,
    path = "/api/v1/billing/stripe/events/{eventId}/replay",
    tag = "stripe",
    params(("eventId" = String, Path, description = "A Stripe event id, e.g. `evt_123`", pattern = "^[!-~]{1,255}$", example = "evt_123")),
    responses(
        (status = 200, description = "What the replay came to", body = ReplayResponse),
        (status = 400, response = BadRequest),
        (status = 401, response = Unauthorized),
        (status = 403, response = Forbidden),
        (status = 500, response = Internal),
        (status = 503, response = Unavailable),
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 502, response = BadGateway)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(stripe.event_id = %path))]
pub async fn replay_event(
    req: HttpRequest,
    actor: AuthenticatedActor,
    api: Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = EventId::parse(path.as_str()).map_err(|_| {
        ApiError::invalid_parameter("eventId", "must be a Stripe event id such as evt_123")
    })?;
    let receipt = api.replay_event(&actor, &id).await?;
    // Not a delivery: the webhook metrics (lag, outcomes) stay Stripe's.
    record_event(&req, &receipt);
    Ok(HttpResponse::Ok().json(ReplayResponse::from(&receipt)))
}

/// The metrics in the Prometheus text format; scrape hooks run first.
/// # Responses
/// 200 `text/plain; version=0.0.4`
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain")
    )
)]
pub async fn metrics(metrics: web::Data<Metrics>) -> HttpResponse {
    metrics.run_scrape_hooks();
    HttpResponse::Ok()
        .content_type(TEXT_FORMAT)
        .body(metrics.render())
}

/// The OpenAPI 3 document of this API.
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
        .body(crate::openapi::document_json())
}
