//! `/api/v1/billing/outbox` (admin, issue 16): the billing events' deliveries, and the
//! retry of a dead one (its chain then moves on).

use actix_web::{web, HttpResponse};
use billing_domain::events_out::{DeliveryStatus, OutboxEntry};
use billing_domain::{BillingDeliveryId, PageRequest};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{page_param, Api, PageResponse};
use crate::auth::AuthenticatedActor;
use crate::error::ApiError;
use crate::responses::{Conflict, Guarded, NotFound};

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum DeliveryStatusName {
    /// Waiting for its turn or its next attempt.
    Pending,
    /// Accepted by the subscriber.
    Delivered,
    /// Out of attempts: its (subscriber, tenant) chain waits for a retry.
    Dead,
}

/// Query of `GET /api/v1/billing/outbox`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListOutboxParams {
    /// Status filter.
    #[param(value_type = Option<DeliveryStatusName>, inline)]
    pub status: Option<String>,
    /// Page size, 1-100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListOutboxParams {
    /// Converts to the domain's filter and page.
    ///
    /// # Errors
    /// 400 `invalid_parameter` naming the bad parameter.
    pub fn try_into_domain(self) -> Result<(Option<DeliveryStatus>, PageRequest), ApiError> {
        let status = self
            .status
            .as_deref()
            .map(|s| {
                DeliveryStatus::parse(s).ok_or_else(|| {
                    ApiError::invalid_parameter("status", "must be one of pending, delivered, dead")
                })
            })
            .transpose()?;
        let page = page_param(self.limit.as_deref(), self.cursor.as_deref())?;
        if let Some(c) = &page.after {
            if uuid::Uuid::parse_str(&c.id).is_err() {
                return Err(ApiError::invalid_parameter(
                    "cursor",
                    "is not a cursor this list issued",
                ));
            }
        }
        Ok((status, page))
    }
}

/// One subscriber's delivery of one billing event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEntryResponse {
    /// The delivery's id (what a retry names).
    pub id: String,
    /// The billing event's id (`Billing-Event-Id`).
    pub event_id: String,
    /// The event's type.
    #[serde(rename = "type")]
    pub kind: String,
    /// The event's tenant.
    pub tenant_id: String,
    /// Its place in the tenant's order, from 1.
    pub sequence: u64,
    /// The subscriber (URL without credentials or query).
    pub subscriber: String,
    /// Where it stands.
    #[schema(value_type = DeliveryStatusName)]
    pub status: &'static str,
    /// Attempts so far.
    pub attempts: u32,
    /// When the next attempt is due (pending).
    pub next_attempt_at: DateTime<Utc>,
    /// The last failure.
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// When the event was made.
    pub created_at: DateTime<Utc>,
    /// When the subscriber accepted it.
    #[schema(required = true)]
    pub delivered_at: Option<DateTime<Utc>>,
}

impl From<&OutboxEntry> for OutboxEntryResponse {
    fn from(e: &OutboxEntry) -> Self {
        Self {
            id: e.id.to_string(),
            event_id: e.event_id.to_string(),
            kind: e.kind.clone(),
            tenant_id: e.tenant.to_string(),
            sequence: e.sequence,
            subscriber: e.subscriber.clone(),
            status: e.status.as_str(),
            attempts: e.attempts,
            next_attempt_at: e.next_attempt_at,
            last_error: e.last_error.clone(),
            created_at: e.created_at,
            delivered_at: e.delivered_at,
        }
    }
}

/// `POST /api/v1/billing/outbox/{id}/retry` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryResponse {
    /// The delivery.
    pub id: String,
    /// Now `pending`, due at once.
    #[schema(value_type = DeliveryStatusName)]
    pub status: &'static str,
}

/// A page of the billing events' deliveries (admin), newest first.
///
/// # Responses
/// 200 `{data: [OutboxEntryResponse], nextCursor}` · 400 bad filter · 403 `admin_required`
#[utoipa::path(
    get,
    path = "/api/v1/billing/outbox",
    tag = "events",
    params(ListOutboxParams),
    responses(
        (status = 200, description = "A page of billing event deliveries (admin)", body = PageResponse<OutboxEntryResponse>),
        Guarded
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn list_outbox(
    actor: AuthenticatedActor,
    api: Api,
    query: web::Query<ListOutboxParams>,
) -> Result<HttpResponse, ApiError> {
    let (status, page) = query.into_inner().try_into_domain()?;
    let entries = api.list_outbox(&actor, status, page).await?;
    Ok(HttpResponse::Ok().json(PageResponse::<OutboxEntryResponse>::from_page(&entries)))
}

/// Makes a dead delivery pending again (admin): it is sent at once, and its chain's later
/// events follow it.
///
/// # Responses
/// 200 `{id, status}` · 400 malformed id · 403 `admin_required` ·
/// 404 `outbox_entry_not_found` · 409 `outbox_entry_not_dead`
#[utoipa::path(
    post,
    path = "/api/v1/billing/outbox/{id}/retry",
    tag = "events",
    params(("id" = String, Path, description = "A delivery's id (UUID)", format = Uuid)),
    responses(
        (status = 200, description = "The delivery is pending again", body = RetryResponse),
        Guarded,
        (status = 404, response = NotFound),
        (status = 409, response = Conflict)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(delivery.id = %path))]
pub async fn retry_outbox_entry(
    actor: AuthenticatedActor,
    api: Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = BillingDeliveryId::parse(path.as_str())
        .map_err(|_| ApiError::invalid_parameter("id", "must be a UUID"))?;
    api.retry_outbox_entry(&actor, id).await?;
    Ok(HttpResponse::Ok().json(RetryResponse {
        id: id.to_string(),
        status: DeliveryStatus::Pending.as_str(),
    }))
}
