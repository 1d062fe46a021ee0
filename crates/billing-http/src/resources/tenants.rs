//! `/api/v1/billing/tenants/{tenantId}`: a tenant and its current subscription.

use actix_web::{web, HttpResponse};
use billing_domain::{Subscription, TenantOverview};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::common::{tenant_param, Api};
use crate::auth::AuthenticatedActor;
use crate::error::ApiError;
use crate::responses::{Guarded, NotFound};

/// A tenant's status.
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum TenantStatusName {
    /// Registered, not yet subscribed.
    Pending,
    /// Subscribed.
    Active,
    /// Suspended by an operator.
    Suspended,
    /// Nothing live is left.
    Cancelled,
}

/// A subscription's status (Stripe's set).
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum SubscriptionStatusName {
    /// `incomplete`.
    Incomplete,
    /// `incomplete_expired`.
    IncompleteExpired,
    /// `trialing`.
    Trialing,
    /// `active`.
    Active,
    /// `past_due`.
    PastDue,
    /// `canceled`.
    Canceled,
    /// `unpaid`.
    Unpaid,
    /// `paused`.
    Paused,
}

/// A subscription.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionResponse {
    /// Id.
    #[schema(format = Uuid)]
    pub id: String,
    /// Owner.
    #[schema(format = Uuid)]
    pub tenant_id: String,
    /// Plan billed.
    #[schema(format = Uuid)]
    pub plan_id: String,
    /// Stripe's status.
    #[schema(value_type = SubscriptionStatusName)]
    pub status: &'static str,
    /// Start of the current period.
    #[schema(required = true)]
    pub current_period_start: Option<DateTime<Utc>>,
    /// End of the current period.
    #[schema(required = true)]
    pub current_period_end: Option<DateTime<Utc>>,
    /// Whether it ends with the period.
    pub cancel_at_period_end: bool,
    /// When it was canceled.
    #[schema(required = true)]
    pub canceled_at: Option<DateTime<Utc>>,
    /// Stripe subscription id.
    #[schema(required = true)]
    pub stripe_subscription_id: Option<String>,
    /// Stripe customer id.
    #[schema(required = true)]
    pub stripe_customer_id: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<&Subscription> for SubscriptionResponse {
    fn from(s: &Subscription) -> Self {
        Self {
            id: s.id.to_string(),
            tenant_id: s.tenant_id.to_string(),
            plan_id: s.plan_id.to_string(),
            status: s.status.as_str(),
            current_period_start: s.current_period_start,
            current_period_end: s.current_period_end,
            cancel_at_period_end: s.cancel_at_period_end,
            canceled_at: s.canceled_at,
            stripe_subscription_id: s.subscription_ref.as_ref().map(ToString::to_string),
            stripe_customer_id: s.customer.as_ref().map(ToString::to_string),
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// A tenant with its current subscription.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TenantResponse {
    /// Id.
    #[schema(format = Uuid)]
    pub id: String,
    /// Display name.
    pub name: String,
    /// `pending`, `active`, `suspended` or `cancelled`.
    #[schema(value_type = TenantStatusName)]
    pub status: &'static str,
    /// Stripe customer id.
    #[schema(required = true)]
    pub stripe_customer_id: Option<String>,
    /// Current subscription or `null`.
    #[schema(required = true)]
    pub subscription: Option<SubscriptionResponse>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<&TenantOverview> for TenantResponse {
    fn from(o: &TenantOverview) -> Self {
        let t = &o.tenant;
        Self {
            id: t.id.to_string(),
            name: t.name.clone(),
            status: t.status.as_str(),
            stripe_customer_id: t.customer.as_ref().map(ToString::to_string),
            subscription: o.subscription.as_ref().map(SubscriptionResponse::from),
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// A tenant with its current subscription.
///
/// # Responses
/// 200 `TenantResponse` · 400 bad UUID · 403 `forbidden` · 404 `tenant_not_found`
#[utoipa::path(
    get,
    path = "/api/v1/billing/tenants/{tenantId}",
    tag = "tenants",
    params(("tenantId" = String, Path, format = Uuid, description = "The tenant's UUID", example = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b")),
    responses(
        (status = 200, description = "The tenant with its current subscription", body = TenantResponse),
        Guarded,
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
///
/// # Responses
/// 200 `SubscriptionResponse` · 400 bad UUID · 403 · 404 `subscription_not_found`
#[utoipa::path(
    get,
    path = "/api/v1/billing/tenants/{tenantId}/subscription",
    tag = "tenants",
    params(("tenantId" = String, Path, format = Uuid, description = "The tenant's UUID", example = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b")),
    responses(
        (status = 200, description = "The tenant's current subscription", body = SubscriptionResponse),
        Guarded,
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
