//! Self-service changes of a tenant's subscription (the tenant itself, or admin) and admin
//! refunds of a payment (issue 16):
//!
//! * `POST /api/v1/billing/tenants/{tenantId}/subscription/cancel` `{"atPeriodEnd"}`;
//! * `POST .../subscription/resume`;
//! * `POST .../subscription/change-plan` `{"planId", "prorationBehavior"}`;
//! * `GET .../subscription/change-plan/preview?planId=&prorationBehavior=`;
//! * `POST /api/v1/billing/payments/{paymentId}/refunds` `{"amount"?, "reason"?}` with an
//!   optional `Idempotency-Key` header.
//!
//! The rules (409 codes, idempotency keys) are the domain's (`service/self_service.rs`).

use actix_web::{web, HttpRequest, HttpResponse};
use billing_domain::ports::{InvoicePreview, PreviewLine, ProrationBehavior, RefundReason};
use billing_domain::service::{PlanChange, RefundInput};
use billing_domain::{PaymentId, Refund};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{plan_param, tenant_param, Api};
use super::payments::RefundStatusName;
use super::tenants::SubscriptionResponse;
use crate::auth::AuthenticatedActor;
use crate::error::ApiError;
use crate::extract::OptionalJson;
use crate::responses::{BadGateway, BodyErrors, Conflict, Guarded, NotFound};

/// Body of `POST .../subscription/cancel` (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelBody {
    /// `true` (the default): ends with the current period; `false`: canceled now.
    pub at_period_end: Option<bool>,
}

/// Body of `POST .../subscription/change-plan`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ChangePlanBody {
    /// The new plan: its UUID or code.
    #[schema(example = "plan-pro")]
    pub plan_id: String,
    /// `create_prorations` (the default), `none` or `always_invoice`.
    #[schema(example = "create_prorations")]
    pub proration_behavior: Option<String>,
}

fn proration(raw: Option<&str>, field: bool) -> Result<ProrationBehavior, ApiError> {
    raw.map_or(Ok(ProrationBehavior::default()), |p| {
        ProrationBehavior::parse(p).ok_or_else(|| {
            let problem = "must be create_prorations, none or always_invoice";
            if field {
                ApiError::invalid_field("prorationBehavior", problem)
            } else {
                ApiError::invalid_parameter("prorationBehavior", problem)
            }
        })
    })
}

impl ChangePlanBody {
    /// Converts to the domain's change.
    ///
    /// # Errors
    /// 422 naming the bad field.
    pub fn try_into_domain(self) -> Result<PlanChange, ApiError> {
        let plan = plan_param("planId", &self.plan_id)
            .map_err(|_| ApiError::invalid_field("planId", "must be a plan's UUID or code"))?;
        Ok(PlanChange {
            plan,
            proration: proration(self.proration_behavior.as_deref(), true)?,
        })
    }
}

/// Query of `GET .../subscription/change-plan/preview`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviewParams {
    /// The plan to preview (UUID or code); required.
    #[param(required = true, example = "plan-pro")]
    pub plan_id: Option<String>,
    /// `create_prorations` (the default), `none` or `always_invoice`.
    pub proration_behavior: Option<String>,
}

/// One line of a previewed invoice.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviewLineResponse {
    /// Stripe's description.
    #[schema(required = true)]
    pub description: Option<String>,
    /// Amount, minor units (negative for a credit).
    pub amount: i64,
    /// Whether it is a proration.
    pub proration: bool,
    /// The Stripe price billed.
    #[schema(required = true)]
    pub stripe_price_id: Option<String>,
    /// Period start.
    #[schema(required = true)]
    pub period_start: Option<DateTime<Utc>>,
    /// Period end.
    #[schema(required = true)]
    pub period_end: Option<DateTime<Utc>>,
}

impl From<&PreviewLine> for PreviewLineResponse {
    fn from(l: &PreviewLine) -> Self {
        Self {
            description: l.description.clone(),
            amount: l.amount,
            proration: l.proration,
            stripe_price_id: l.price.as_ref().map(ToString::to_string),
            period_start: l.period_start,
            period_end: l.period_end,
        }
    }
}

/// Stripe's preview of the invoice after a plan change.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviewResponse {
    /// What would be due, minor units.
    pub amount_due: i64,
    /// Lower-case currency.
    pub currency: String,
    /// The invoice's lines (prorations first).
    pub lines: Vec<PreviewLineResponse>,
}

impl From<&InvoicePreview> for PreviewResponse {
    fn from(p: &InvoicePreview) -> Self {
        Self {
            amount_due: p.amount_due.minor(),
            currency: p.amount_due.currency().to_string(),
            lines: p.lines.iter().map(PreviewLineResponse::from).collect(),
        }
    }
}

/// Body of `POST /api/v1/billing/payments/{paymentId}/refunds` (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefundBody {
    /// Minor units, at least 1; default: what is left to refund.
    pub amount: Option<i64>,
    /// `duplicate`, `fraudulent` or `requested_by_customer`.
    pub reason: Option<String>,
}

/// A refund made.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundCreatedResponse {
    /// The refund's id (as in `GET /api/v1/billing/payments/{paymentId}`).
    #[schema(format = Uuid)]
    pub refund_id: String,
    /// Stripe's status.
    #[schema(value_type = RefundStatusName)]
    pub status: &'static str,
    /// Amount, minor units.
    pub amount: i64,
    /// Lower-case currency.
    pub currency: String,
    /// Stripe's refund id.
    pub stripe_refund_id: String,
}

impl From<&Refund> for RefundCreatedResponse {
    fn from(r: &Refund) -> Self {
        Self {
            refund_id: r.id.to_string(),
            status: r.status.as_str(),
            amount: r.amount.minor(),
            currency: r.amount.currency().to_string(),
            stripe_refund_id: r.refund_ref.to_string(),
        }
    }
}

/// Cancels the tenant's subscription at the end of its period (the default) or now.
///
/// # Responses
/// 200 `SubscriptionResponse` · 400/422 body · 403 · 409 `no_live_subscription`,
/// `subscription_canceled` · 502 Stripe
#[utoipa::path(
    post,
    path = "/api/v1/billing/tenants/{tenantId}/subscription/cancel",
    tag = "tenants",
    params(("tenantId" = String, Path, format = Uuid, description = "The tenant's UUID")),
    request_body(content = Option<CancelBody>, description = "`atPeriodEnd` (default `true`)"),
    responses(
        (status = 200, description = "The subscription as Stripe answered the change", body = SubscriptionResponse),
        Guarded,
        BodyErrors,
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 502, response = BadGateway)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(tenant.id = %path))]
pub async fn cancel_subscription(
    actor: AuthenticatedActor,
    api: Api,
    path: web::Path<String>,
    body: OptionalJson<CancelBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = tenant_param("tenantId", &path)?;
    let at_period_end = body.0.unwrap_or_default().at_period_end.unwrap_or(true);
    let sub = api
        .cancel_subscription(&actor, tenant, at_period_end)
        .await?;
    Ok(HttpResponse::Ok().json(SubscriptionResponse::from(&sub)))
}

/// Undoes a cancel at period end, or resumes a paused subscription.
///
/// # Responses
/// 200 `SubscriptionResponse` · 403 · 409 `no_live_subscription`, `subscription_canceled`,
/// `nothing_to_resume` · 502 Stripe
#[utoipa::path(
    post,
    path = "/api/v1/billing/tenants/{tenantId}/subscription/resume",
    tag = "tenants",
    params(("tenantId" = String, Path, format = Uuid, description = "The tenant's UUID")),
    responses(
        (status = 200, description = "The subscription as Stripe answered the change", body = SubscriptionResponse),
        Guarded,
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 502, response = BadGateway)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(tenant.id = %path))]
pub async fn resume_subscription(
    actor: AuthenticatedActor,
    api: Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = tenant_param("tenantId", &path)?;
    let sub = api.resume_subscription(&actor, tenant).await?;
    Ok(HttpResponse::Ok().json(SubscriptionResponse::from(&sub)))
}

/// Moves the tenant's subscription to another plan (its item's price at Stripe).
///
/// # Responses
/// 200 `SubscriptionResponse` · 400/422 body · 403 · 404 `plan_not_found` · 409
/// `plan_inactive`, `plan_unchanged`, `no_live_subscription`, `subscription_canceled` · 502
#[utoipa::path(
    post,
    path = "/api/v1/billing/tenants/{tenantId}/subscription/change-plan",
    tag = "tenants",
    params(("tenantId" = String, Path, format = Uuid, description = "The tenant's UUID")),
    request_body = ChangePlanBody,
    responses(
        (status = 200, description = "The subscription as Stripe answered the change", body = SubscriptionResponse),
        Guarded,
        BodyErrors,
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 502, response = BadGateway)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(tenant.id = %path))]
pub async fn change_plan(
    actor: AuthenticatedActor,
    api: Api,
    path: web::Path<String>,
    body: web::Json<ChangePlanBody>,
) -> Result<HttpResponse, ApiError> {
    let tenant = tenant_param("tenantId", &path)?;
    let change = body.into_inner().try_into_domain()?;
    let sub = api.change_plan(&actor, tenant, change).await?;
    Ok(HttpResponse::Ok().json(SubscriptionResponse::from(&sub)))
}

/// Stripe's preview of the next invoice if the subscription moved to `planId` now.
///
/// # Responses
/// 200 `PreviewResponse` · 400 parameter · 403 · 404 `plan_not_found` · 409 as change-plan ·
/// 502
#[utoipa::path(
    get,
    path = "/api/v1/billing/tenants/{tenantId}/subscription/change-plan/preview",
    tag = "tenants",
    params(("tenantId" = String, Path, format = Uuid, description = "The tenant's UUID"), PreviewParams),
    responses(
        (status = 200, description = "The invoice Stripe would make", body = PreviewResponse),
        Guarded,
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 502, response = BadGateway)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(tenant.id = %path))]
pub async fn preview_plan_change(
    actor: AuthenticatedActor,
    api: Api,
    path: web::Path<String>,
    query: web::Query<PreviewParams>,
) -> Result<HttpResponse, ApiError> {
    let tenant = tenant_param("tenantId", &path)?;
    let query = query.into_inner();
    let raw = query
        .plan_id
        .as_deref()
        .ok_or_else(|| ApiError::invalid_parameter("planId", "is required"))?;
    let change = PlanChange {
        plan: plan_param("planId", raw)?,
        proration: proration(query.proration_behavior.as_deref(), false)?,
    };
    let preview = api.preview_plan_change(&actor, tenant, change).await?;
    Ok(HttpResponse::Ok().json(PreviewResponse::from(&preview)))
}

/// The caller's `Idempotency-Key`, when given: 1 to 255 visible ASCII characters.
fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|k| !k.is_empty() && k.len() <= 200 && k.chars().all(|c| c.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::invalid_parameter(
                "Idempotency-Key",
                "must be 1 to 200 visible ASCII characters",
            )
        })?;
    Ok(Some(format!("refund-caller-{key}")))
}

/// Refunds a payment (admin): all that is left, or `amount` of it. Identical concurrent
/// requests make one refund at Stripe (a deterministic idempotency key, or the caller's
/// `Idempotency-Key` header).
///
/// # Responses
/// 201 `RefundCreatedResponse` · 400/422 body · 403 `admin_required` · 404
/// `payment_not_found` · 409 `refund_exceeds_payment`, `payment_not_refundable` · 502
#[utoipa::path(
    post,
    path = "/api/v1/billing/payments/{paymentId}/refunds",
    tag = "payments",
    params(
        ("paymentId" = String, Path, format = Uuid, description = "The payment's UUID"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request the same refund")
    ),
    request_body(content = Option<RefundBody>, description = "`amount` (default: what is left) and `reason`"),
    responses(
        (status = 201, description = "The refund made", body = RefundCreatedResponse),
        Guarded,
        BodyErrors,
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 502, response = BadGateway)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(payment.id = %path))]
pub async fn create_refund(
    actor: AuthenticatedActor,
    api: Api,
    req: HttpRequest,
    path: web::Path<String>,
    body: OptionalJson<RefundBody>,
) -> Result<HttpResponse, ApiError> {
    let id = PaymentId::parse(&path)
        .map_err(|_| ApiError::invalid_parameter("paymentId", "must be a UUID"))?;
    let body = body.0.unwrap_or_default();
    if body.amount.is_some_and(|a| a < 1) {
        return Err(ApiError::invalid_field(
            "amount",
            "must be a positive integer in minor units",
        ));
    }
    let reason = body
        .reason
        .as_deref()
        .map(|r| {
            RefundReason::parse(r).ok_or_else(|| {
                ApiError::invalid_field(
                    "reason",
                    "must be duplicate, fraudulent or requested_by_customer",
                )
            })
        })
        .transpose()?;
    let input = RefundInput {
        amount: body.amount,
        reason,
        idempotency_key: idempotency_key(&req)?,
    };
    let refund = api.create_refund(&actor, id, input).await?;
    Ok(HttpResponse::Created().json(RefundCreatedResponse::from(&refund)))
}

/// Registers this module's routes (kept here so that the router's list stays short).
pub fn configure(cfg: &mut web::ServiceConfig) {
    use crate::{paths, resource};
    cfg.service(
        resource(paths::TENANT_SUBSCRIPTION_CANCEL, "POST")
            .route(web::post().to(cancel_subscription)),
    )
    .service(
        resource(paths::TENANT_SUBSCRIPTION_RESUME, "POST")
            .route(web::post().to(resume_subscription)),
    )
    .service(
        resource(paths::TENANT_SUBSCRIPTION_CHANGE_PLAN, "POST").route(web::post().to(change_plan)),
    )
    .service(
        resource(paths::TENANT_SUBSCRIPTION_CHANGE_PLAN_PREVIEW, "GET")
            .route(web::get().to(preview_plan_change)),
    )
    .service(resource(paths::PAYMENT_REFUNDS, "POST").route(web::post().to(create_refund)));
}
