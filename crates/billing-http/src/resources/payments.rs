//! `GET /api/v1/billing/payments`: payments and failed attempts.

use actix_web::{web, HttpResponse};
use billing_domain::ports::PaymentQuery;
use billing_domain::{InvoiceId, PageRequest, Payment};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{page_param, tenant_param, Api, PageResponse};
use crate::auth::AuthenticatedActor;
use crate::error::ApiError;
use crate::responses::Guarded;

/// A payment's status.
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum PaymentStatusName {
    /// Money moved.
    Succeeded,
    /// A failed attempt.
    Failed,
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
    /// Lower-case currency.
    pub currency: String,
    /// `succeeded` or `failed`.
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
