//! The request handlers. Each one extracts its input, converts it to domain types, makes
//! one `BillingApi` call and maps the answer; authorisation and business rules are the
//! domain's. Every protected handler takes [`AuthenticatedActor`] first, so a request
//! without a valid token is refused before its body is read.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use billing_domain::BillingApi;
use billing_domain::CheckoutInput;

use crate::auth::AuthenticatedActor;
use crate::dto::{
    customer_param, invoice_param, merge_param, plan_param, tenant_param, CheckoutParams,
    CheckoutResponse, CreateInvoiceBody, CreatePlanBody, EventResponse, HealthResponse,
    InvoiceResponse, ListEventsParams, ListInvoicesParams, ListPaymentsParams, ListPlansParams,
    PageResponse, PaymentIntentResponse, PaymentResponse, PlanResponse, PortalParams,
    PortalResponse, SubscriptionResponse, TenantResponse, UpdatePlanBody,
};
use crate::error::ApiError;
use crate::extract::OptionalJson;
use crate::paths;

/// The service, as the handlers see it.
type Api = web::Data<dyn BillingApi>;

/// Lists plans.
/// # Responses
/// 200 `[PlanResponse]` · 400 bad `includeInactive`
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
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(HealthResponse { status: "ok" })
}

/// Readiness: the database answers.
/// # Responses
/// 200 `{"status":"ok"}` · 503 `database_unavailable`
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
