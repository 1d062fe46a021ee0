//! `GET /api/v1/billing/payments`: payments and failed attempts;
//! `GET /api/v1/billing/payments/{paymentId}`: one with its refunds and disputes;
//! `GET /api/v1/billing/disputes` (admin).

use actix_web::{web, HttpResponse};
use billing_domain::ports::PaymentQuery;
use billing_domain::{InvoiceId, PageRequest, Payment};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{page_param, tenant_param, Api, PageResponse};
use crate::auth::AuthenticatedActor;
use crate::error::ApiError;
use crate::responses::{Guarded, NotFound};
use billing_domain::ports::DisputeQuery;
use billing_domain::{Dispute, DisputeStatus, PaymentDetail, PaymentId, Refund};

/// A payment's status.
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum PaymentStatusName {
    /// Money moved.
    Succeeded,
    /// A failed attempt.
    Failed,
    /// All of it refunded.
    Refunded,
    /// Part of it refunded.
    PartiallyRefunded,
    /// A dispute on it is open.
    Disputed,
    /// A dispute on it was lost.
    DisputeLost,
}

/// Query of `GET /api/v1/billing/payments`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListPaymentsParams {
    /// Only this tenant's.
    #[param(value_type = Option<String>, format = Uuid)]
    pub tenant_id: Option<String>,
    /// Only this invoice's (UUID).
    #[param(value_type = Option<String>, format = Uuid)]
    pub invoice_id: Option<String>,
    /// Page size, 1-100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListPaymentsParams {
    /// Converts to the domain's filter and page.
    ///
    /// # Errors
    /// 400 `invalid_parameter` naming the bad parameter.
    pub fn try_into_domain(self) -> Result<(PaymentQuery, PageRequest), ApiError> {
        let tenant = self
            .tenant_id
            .as_deref()
            .map(|t| tenant_param("tenantId", t))
            .transpose()?;
        let invoice = self
            .invoice_id
            .as_deref()
            .map(|i| {
                InvoiceId::parse(i)
                    .map_err(|_| ApiError::invalid_parameter("invoiceId", "must be a UUID"))
            })
            .transpose()?;
        let page = page_param(self.limit.as_deref(), self.cursor.as_deref())?;
        Ok((PaymentQuery { tenant, invoice }, page))
    }
}

/// A payment or failed attempt.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentResponse {
    /// Id.
    #[schema(format = Uuid)]
    pub id: String,
    /// Payer.
    #[schema(format = Uuid)]
    pub tenant_id: String,
    /// Invoice paid, if known.
    #[schema(format = Uuid, required = true)]
    pub invoice_id: Option<String>,
    /// Amount, minor units.
    pub amount: i64,
    /// How much of it was refunded (refunds not failed or canceled), minor units.
    pub amount_refunded: i64,
    /// Lower-case currency.
    pub currency: String,
    /// `succeeded` or `failed`; a success later `refunded`, `partially_refunded`,
    /// `disputed` or `dispute_lost`.
    #[schema(value_type = PaymentStatusName)]
    pub status: &'static str,
    /// Stripe's failure code.
    #[schema(required = true)]
    pub failure_code: Option<String>,
    /// Stripe's failure message.
    #[schema(required = true)]
    pub failure_message: Option<String>,
    /// Stripe PaymentIntent id.
    #[schema(required = true)]
    pub stripe_payment_intent_id: Option<String>,
    /// Stripe charge id.
    #[schema(required = true)]
    pub stripe_charge_id: Option<String>,
    /// When recorded.
    pub created_at: DateTime<Utc>,
}

impl From<&Payment> for PaymentResponse {
    fn from(p: &Payment) -> Self {
        Self {
            id: p.id.to_string(),
            tenant_id: p.tenant_id.to_string(),
            invoice_id: p.invoice_id.map(|i| i.to_string()),
            amount: p.amount.minor(),
            amount_refunded: p.amount_refunded.minor(),
            currency: p.amount.currency().to_string(),
            status: p.status.as_str(),
            failure_code: p.failure_code.clone(),
            failure_message: p.failure_message.clone(),
            stripe_payment_intent_id: p.payment_intent.as_ref().map(ToString::to_string),
            stripe_charge_id: p.charge.as_ref().map(ToString::to_string),
            created_at: p.created_at,
        }
    }
}

/// A page of payments.
///
/// # Responses
/// 200 `{data: [PaymentResponse], nextCursor}` · 400 bad filter, limit or cursor · 403
#[utoipa::path(
    get,
    path = "/api/v1/billing/payments",
    tag = "payments",
    params(ListPaymentsParams),
    responses(
        (status = 200, description = "A page of payments, newest first", body = PageResponse<PaymentResponse>),
        Guarded
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

// ---- refunds and disputes (issue 14) ----

/// A refund's status (Stripe's).
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum RefundStatusName {
    /// On its way.
    Pending,
    /// The customer must act.
    RequiresAction,
    /// Sent.
    Succeeded,
    /// Failed: the money stays.
    Failed,
    /// Canceled.
    Canceled,
}

/// A dispute's status (Stripe's).
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum DisputeStatusName {
    /// An inquiry waiting for an answer.
    WarningNeedsResponse,
    /// An inquiry under review.
    WarningUnderReview,
    /// An inquiry closed.
    WarningClosed,
    /// A chargeback waiting for evidence.
    NeedsResponse,
    /// A chargeback under review.
    UnderReview,
    /// Won.
    Won,
    /// Lost.
    Lost,
    /// Prevented.
    Prevented,
}

/// A refund of a payment.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefundResponse {
    /// Id.
    #[schema(format = Uuid)]
    pub id: String,
    /// The payment refunded.
    #[schema(format = Uuid)]
    pub payment_id: String,
    /// Amount, minor units.
    pub amount: i64,
    /// Lower-case currency.
    pub currency: String,
    /// Stripe's status.
    #[schema(value_type = RefundStatusName)]
    pub status: &'static str,
    /// Stripe's reason.
    #[schema(required = true)]
    pub reason: Option<String>,
    /// Stripe refund id.
    pub stripe_refund_id: String,
    /// When recorded.
    pub created_at: DateTime<Utc>,
    /// When last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<&Refund> for RefundResponse {
    fn from(r: &Refund) -> Self {
        Self {
            id: r.id.to_string(),
            payment_id: r.payment_id.to_string(),
            amount: r.amount.minor(),
            currency: r.amount.currency().to_string(),
            status: r.status.as_str(),
            reason: r.reason.clone(),
            stripe_refund_id: r.refund_ref.to_string(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A dispute on a payment.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisputeResponse {
    /// Id.
    #[schema(format = Uuid)]
    pub id: String,
    /// The payment disputed.
    #[schema(format = Uuid)]
    pub payment_id: String,
    /// Amount disputed, minor units.
    pub amount: i64,
    /// Lower-case currency.
    pub currency: String,
    /// Stripe's reason (`fraudulent`, `general`, …).
    pub reason: String,
    /// Stripe's status.
    #[schema(value_type = DisputeStatusName)]
    pub status: &'static str,
    /// Stripe dispute id.
    pub stripe_dispute_id: String,
    /// When recorded.
    pub created_at: DateTime<Utc>,
    /// When last changed.
    pub updated_at: DateTime<Utc>,
}

impl From<&Dispute> for DisputeResponse {
    fn from(d: &Dispute) -> Self {
        Self {
            id: d.id.to_string(),
            payment_id: d.payment_id.to_string(),
            amount: d.amount.minor(),
            currency: d.amount.currency().to_string(),
            reason: d.reason.clone(),
            status: d.status.as_str(),
            stripe_dispute_id: d.dispute_ref.to_string(),
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

/// A payment with its refunds and disputes (oldest first): the fields of
/// [`PaymentResponse`] plus two lists. Spelt out rather than `#[serde(flatten)]`, so that
/// the document has one plain object schema (no `allOf`) that clients and the schema
/// checks read directly.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentDetailResponse {
    /// Id.
    #[schema(format = Uuid)]
    pub id: String,
    /// Payer.
    #[schema(format = Uuid)]
    pub tenant_id: String,
    /// Invoice paid, if known.
    #[schema(format = Uuid, required = true)]
    pub invoice_id: Option<String>,
    /// Amount, minor units.
    pub amount: i64,
    /// How much of it was refunded (refunds not failed or canceled), minor units.
    pub amount_refunded: i64,
    /// Lower-case currency.
    pub currency: String,
    /// Status.
    #[schema(value_type = PaymentStatusName)]
    pub status: &'static str,
    /// Stripe's failure code.
    #[schema(required = true)]
    pub failure_code: Option<String>,
    /// Stripe's failure message.
    #[schema(required = true)]
    pub failure_message: Option<String>,
    /// Stripe PaymentIntent id.
    #[schema(required = true)]
    pub stripe_payment_intent_id: Option<String>,
    /// Stripe charge id.
    #[schema(required = true)]
    pub stripe_charge_id: Option<String>,
    /// When recorded.
    pub created_at: DateTime<Utc>,
    /// Its refunds.
    pub refunds: Vec<RefundResponse>,
    /// Its disputes.
    pub disputes: Vec<DisputeResponse>,
}

impl From<&PaymentDetail> for PaymentDetailResponse {
    fn from(d: &PaymentDetail) -> Self {
        let p = PaymentResponse::from(&d.payment);
        Self {
            id: p.id,
            tenant_id: p.tenant_id,
            invoice_id: p.invoice_id,
            amount: p.amount,
            amount_refunded: p.amount_refunded,
            currency: p.currency,
            status: p.status,
            failure_code: p.failure_code,
            failure_message: p.failure_message,
            stripe_payment_intent_id: p.stripe_payment_intent_id,
            stripe_charge_id: p.stripe_charge_id,
            created_at: p.created_at,
            refunds: d.refunds.iter().map(RefundResponse::from).collect(),
            disputes: d.disputes.iter().map(DisputeResponse::from).collect(),
        }
    }
}

/// One payment with its refunds and disputes; a tenant token reaches only its own.
/// # Responses
/// 200 `PaymentDetailResponse` · 400 malformed id · 403 · 404 `payment_not_found`
#[utoipa::path(
    get,
    path = "/api/v1/billing/payments/{paymentId}",
    tag = "payments",
    params(("paymentId" = String, Path, description = "A payment's UUID", format = Uuid)),
    responses(
        (status = 200, description = "The payment with its refunds and disputes", body = PaymentDetailResponse),
        Guarded,
        (status = 404, response = NotFound)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(payment.id = %path))]
pub async fn get_payment(
    actor: AuthenticatedActor,
    api: Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = PaymentId::parse(&path)
        .map_err(|_| ApiError::invalid_parameter("paymentId", "must be a UUID"))?;
    let detail = api.get_payment(&actor, id).await?;
    Ok(HttpResponse::Ok().json(PaymentDetailResponse::from(&detail)))
}

/// Query of `GET /api/v1/billing/disputes`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListDisputesParams {
    /// Status filter.
    #[param(value_type = Option<DisputeStatusName>, inline)]
    pub status: Option<String>,
    /// Page size, 1-100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListDisputesParams {
    /// Converts to the domain's filter and page.
    ///
    /// # Errors
    /// 400 `invalid_parameter` naming the bad parameter.
    pub fn try_into_domain(self) -> Result<(DisputeQuery, PageRequest), ApiError> {
        let status = self
            .status
            .as_deref()
            .map(|s| {
                DisputeStatus::parse(s).ok_or_else(|| {
                    ApiError::invalid_parameter(
                        "status",
                        "must be one of warning_needs_response, warning_under_review, \
                         warning_closed, needs_response, under_review, won, lost, prevented",
                    )
                })
            })
            .transpose()?;
        let page = page_param(self.limit.as_deref(), self.cursor.as_deref())?;
        Ok((DisputeQuery { status }, page))
    }
}

/// A page of disputes, newest first (admin).
/// # Responses
/// 200 `{data: [DisputeResponse], nextCursor}` · 400 bad filter · 403 `admin_required`
#[utoipa::path(
    get,
    path = "/api/v1/billing/disputes",
    tag = "payments",
    params(ListDisputesParams),
    responses(
        (status = 200, description = "A page of disputes, newest first (admin)", body = PageResponse<DisputeResponse>),
        Guarded
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn list_disputes(
    actor: AuthenticatedActor,
    api: Api,
    query: web::Query<ListDisputesParams>,
) -> Result<HttpResponse, ApiError> {
    let (filter, page) = query.into_inner().try_into_domain()?;
    let disputes = api.list_disputes(&actor, filter, page).await?;
    Ok(HttpResponse::Ok().json(PageResponse::<DisputeResponse>::from_page(&disputes)))
}
