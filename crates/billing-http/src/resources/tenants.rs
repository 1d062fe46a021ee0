//! `/api/v1/billing/tenants/{tenantId}`: a tenant, its current subscription and its access.

use actix_web::{web, HttpResponse};
use billing_domain::{Subscription, TenantAccess, TenantOverview};
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

/// Why a tenant is or is not entitled (the domain's `AccessReason`).
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum AccessReasonName {
    /// `active`: paid up (entitled).
    Active,
    /// `trialing`: in a trial (entitled until the trial ends).
    Trialing,
    /// `past_due_grace`: a payment failed, within `ACCESS_GRACE_DAYS` of the first
    /// failure (entitled until the grace ends).
    PastDueGrace,
    /// `past_due`: a payment failed and the grace is over (not entitled).
    PastDue,
    /// `cancel_at_period_end`: ends with the current period (entitled until it ends).
    CancelAtPeriodEnd,
    /// `canceled`: canceled, or its cancel-at-period-end date has passed (not entitled).
    Canceled,
    /// `paused`: paused (not entitled).
    Paused,
    /// `unpaid`: Stripe's retries are exhausted (not entitled).
    Unpaid,
    /// `incomplete`: the first payment has not been made (not entitled).
    Incomplete,
    /// `incomplete_expired`: the first payment was never made (not entitled).
    IncompleteExpired,
    /// `no_subscription`: the tenant has no subscription (not entitled).
    NoSubscription,
}

/// Whether a tenant may use the platform now.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessResponse {
    /// Whether the tenant may use the platform.
    pub entitled: bool,
    /// The current subscription's plan, or `null` without a subscription.
    #[schema(required = true, example = "plan-pro")]
    pub plan_code: Option<String>,
    /// The plan's features while entitled; empty when not entitled.
    #[schema(example = json!(["reports:export", "seats.max-10"]))]
    pub features: Vec<String>,
    /// The current subscription's status, or `null` without a subscription.
    #[schema(required = true, value_type = Option<SubscriptionStatusName>)]
    pub status: Option<&'static str>,
    /// When this answer changes by itself (the trial's, grace's or period's end), or
    /// `null` when no such time is known (ask again after the next change).
    #[schema(required = true)]
    pub until: Option<DateTime<Utc>>,
    /// Why, as a stable word.
    #[schema(value_type = AccessReasonName)]
    pub reason: &'static str,
}

impl From<&TenantAccess> for AccessResponse {
    fn from(a: &TenantAccess) -> Self {
        Self {
            entitled: a.decision.entitled,
            plan_code: a.plan_code.as_ref().map(ToString::to_string),
            features: a.features.as_slice().to_vec(),
            status: a.status.map(billing_domain::SubscriptionStatus::as_str),
            until: a.decision.until,
            reason: a.decision.reason.as_str(),
        }
    }
}

/// Whether a tenant may use the platform now, and with which features: one indexed read,
/// meant to be called on every request of the other services.
///
/// Entitled while `trialing` or `active`; while `past_due` within `ACCESS_GRACE_DAYS` of
/// the first failed payment; while set to cancel at period end, until the period ends. Not
/// entitled when `paused`, `unpaid`, `canceled`, `incomplete`, `incomplete_expired` or
/// without a subscription (an unknown tenant included). `reason` is one of `active`,
/// `trialing`, `past_due_grace`, `past_due`, `cancel_at_period_end`, `canceled`, `paused`,
/// `unpaid`, `incomplete`, `incomplete_expired`, `no_subscription`.
///
/// # Responses
/// 200 `AccessResponse` · 400 bad UUID · 401 · 403 `forbidden`
#[utoipa::path(
    get,
    path = "/api/v1/billing/tenants/{tenantId}/access",
    tag = "tenants",
    params(("tenantId" = String, Path, format = Uuid, description = "The tenant's UUID", example = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b")),
    responses(
        (status = 200, description = "Whether the tenant is entitled, why and until when", body = AccessResponse),
        Guarded
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(tenant.id = %path))]
pub async fn tenant_access(
    actor: AuthenticatedActor,
    api: Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let tenant = tenant_param("tenantId", &path)?;
    let access = api.tenant_access(&actor, tenant).await?;
    Ok(HttpResponse::Ok().json(AccessResponse::from(&access)))
}
