//! Reconciliation (issue 15): `POST /api/v1/billing/tenants/{tenantId}/sync` re-reads a
//! tenant's subscriptions and open invoices from Stripe and answers what it corrected;
//! `GET /api/v1/billing/stripe/checkout/{sessionId}` is the checkout return, which applies
//! a completed session at once, as its webhook would.

use actix_web::{web, HttpResponse};
use billing_domain::jobs::reconcile::{Correction, ReconcileReport};
use billing_domain::service::CheckoutReturn;
use billing_domain::CheckoutSessionRef;
use serde::Serialize;

use super::common::{tenant_param, Api};
use super::tenants::{SubscriptionResponse, TenantStatusName};
use crate::auth::AuthenticatedActor;
use crate::error::ApiError;
use crate::responses::{BadGateway, Guarded, NotFound};

/// One field the reconciliation corrected.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CorrectionResponse {
    /// `subscription`, `invoice` or `tenant`.
    #[schema(example = "subscription")]
    pub kind: String,
    /// The object: a Stripe id (`sub_…`, `in_…`) or the tenant's UUID.
    #[schema(example = "sub_1Q2w3E4r5T6y7U8i")]
    pub object: String,
    /// The field, as this API names it (`status`, `planId`, `cancelAtPeriodEnd`,
    /// `currentPeriodEnd`, `canceledAt`, `amountDue`, `amountPaid`, `paidAt`).
    #[schema(example = "status")]
    pub field: String,
    /// The value before (`null`: none, or the object was unknown).
    pub from: Option<String>,
    /// The value after.
    pub to: Option<String>,
}

impl From<&Correction> for CorrectionResponse {
    fn from(c: &Correction) -> Self {
        Self {
            kind: c.kind.as_str().to_owned(),
            object: c.object.clone(),
            field: c.field.to_owned(),
            from: c.from.clone(),
            to: c.to.clone(),
        }
    }
}

/// What a tenant sync read and corrected.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncResponse {
    /// Subscriptions read from Stripe.
    pub subscriptions: u32,
    /// Invoices read from Stripe.
    pub invoices: u32,
    /// What differed and was corrected (empty when nothing had drifted).
    pub corrections: Vec<CorrectionResponse>,
}

impl From<&ReconcileReport> for SyncResponse {
    fn from(r: &ReconcileReport) -> Self {
        Self {
            subscriptions: r.subscriptions,
            invoices: r.invoices,
            corrections: r.corrections.iter().map(CorrectionResponse::from).collect(),
        }
    }
}

/// Re-reads the tenant's subscriptions and open invoices from Stripe and corrects what
/// differs, under the webhook path's order guard (an older read never overwrites a newer
/// event).
///
/// # Responses
/// 200 the corrections · 404 unknown tenant · 502 Stripe unavailable
#[utoipa::path(
    post,
    path = "/api/v1/billing/tenants/{tenantId}/sync",
    tag = "tenants",
    params(("tenantId" = String, Path, format = Uuid, description = "The tenant's UUID", example = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b")),
    responses(
        (status = 200, description = "What was read and corrected", body = SyncResponse),
        Guarded,
        (status = 404, response = NotFound),
        (status = 502, response = BadGateway)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(tenant.id = %path))]
pub async fn sync_tenant(
    actor: AuthenticatedActor,
    api: Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = tenant_param("tenantId", &path)?;
    let report = api.sync_tenant(&actor, tenant).await?;
    Ok(HttpResponse::Ok().json(SyncResponse::from(&report)))
}

/// The checkout return.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutReturnResponse {
    /// Stripe's session status: `open`, `complete` or `expired`.
    #[schema(example = "complete")]
    pub status: String,
    /// Stripe's payment status: `paid`, `unpaid` or `no_payment_required`.
    #[schema(example = "paid")]
    pub payment_status: Option<String>,
    /// The tenant's status, after the session was applied.
    #[schema(value_type = Option<TenantStatusName>)]
    pub tenant_status: Option<String>,
    /// The tenant's current subscription, after it.
    pub subscription: Option<SubscriptionResponse>,
}

impl From<&CheckoutReturn> for CheckoutReturnResponse {
    fn from(r: &CheckoutReturn) -> Self {
        Self {
            status: r.status.clone(),
            payment_status: r.payment_status.clone(),
            tenant_status: r.tenant_status.map(|s| s.as_str().to_owned()),
            subscription: r.subscription.as_ref().map(SubscriptionResponse::from),
        }
    }
}

/// A Checkout Session id as Stripe makes them (`cs_test_…`, `cs_live_…`).
fn session_param(raw: &str) -> Result<CheckoutSessionRef, ApiError> {
    let well_formed = raw.len() > 3
        && raw.starts_with("cs_")
        && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    CheckoutSessionRef::parse(raw)
        .ok()
        .filter(|_| well_formed)
        .ok_or_else(|| {
            ApiError::invalid_parameter(
                "sessionId",
                "must be a Checkout Session id such as cs_test_123",
            )
        })
}

/// The success URL's call: reads the Checkout Session from Stripe and, when complete,
/// applies it exactly as `checkout.session.completed` would be (whichever comes first
/// wins; the other changes nothing), so the user sees the tenant active at once.
///
/// # Responses
/// 200 the session and the tenant · 400 malformed id · 403 another tenant's session ·
/// 404 `checkout_session_not_found` · 502 Stripe unavailable
#[utoipa::path(
    get,
    path = "/api/v1/billing/stripe/checkout/{sessionId}",
    tag = "stripe",
    params(("sessionId" = String, Path, description = "The Checkout Session's id", example = "cs_test_a1B2c3D4")),
    responses(
        (status = 200, description = "The session's state and the tenant's after applying it", body = CheckoutReturnResponse),
        Guarded,
        (status = 404, response = NotFound),
        (status = 502, response = BadGateway)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(stripe.checkout_session = %path))]
pub async fn checkout_return(
    actor: AuthenticatedActor,
    api: Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let session = session_param(&path)?;
    let answer = api.checkout_return(&actor, &session).await?;
    Ok(HttpResponse::Ok().json(CheckoutReturnResponse::from(&answer)))
}
