//! `/api/v1/billing/stripe/events`: the webhook event ledger (admin), and the replay of
//! one event fetched from Stripe again.

use actix_web::{web, HttpRequest, HttpResponse};
use billing_domain::service::WebhookReceipt;
use billing_domain::{EventId, EventOutcome, LedgerEntry, LedgerQuery, PageRequest};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::{page_param, Api, PageResponse};
use super::webhook::record_event;
use crate::auth::AuthenticatedActor;
use crate::error::ApiError;
use crate::responses::{BadGateway, Conflict, Guarded, NotFound};

/// What became of a webhook event.
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum EventOutcomeName {
    /// Applied.
    Processed,
    /// Already in the ledger.
    Duplicate,
    /// Older than the newest applied event about the same object.
    Stale,
    /// A type the service does not act on.
    Ignored,
    /// Its tenant could not be resolved; kept for replay.
    Unmatched,
    /// Could not be applied; kept for an operator.
    Failed,
}

/// Query of `GET /api/v1/billing/stripe/events`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListEventsParams {
    /// Outcome filter.
    #[param(value_type = Option<EventOutcomeName>, inline)]
    pub status: Option<String>,
    /// Stripe event type filter.
    #[serde(rename = "type")]
    #[param(
        min_length = 1,
        max_length = 255,
        pattern = "^[!-~]{1,255}$",
        example = "invoice.paid"
    )]
    pub kind: Option<String>,
    /// Page size, 1-100 (default 20).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListEventsParams {
    /// Converts to the domain's filter and page.
    ///
    /// # Errors
    /// 400 `invalid_parameter` naming the bad parameter.
    pub fn try_into_domain(self) -> Result<(LedgerQuery, PageRequest), ApiError> {
        let outcome = self
            .status
            .as_deref()
            .map(|s| {
                EventOutcome::parse(s).ok_or_else(|| {
                    ApiError::invalid_parameter(
                        "status",
                        "must be one of processed, duplicate, stale, ignored, unmatched, failed",
                    )
                })
            })
            .transpose()?;
        let kind = self
            .kind
            .map(|k| {
                let ok = !k.is_empty() && k.len() <= 255 && k.chars().all(|c| c.is_ascii_graphic());
                if ok {
                    Ok(k)
                } else {
                    Err(ApiError::invalid_parameter(
                        "type",
                        "must be a Stripe event type such as invoice.paid",
                    ))
                }
            })
            .transpose()?;
        let page = page_param(self.limit.as_deref(), self.cursor.as_deref())?;
        Ok((LedgerQuery { outcome, kind }, page))
    }
}

/// A ledger row, without its payload.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventResponse {
    /// Stripe event id.
    pub event_id: String,
    /// Stripe event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// Stripe's `created`.
    pub created: DateTime<Utc>,
    /// API version of the payload.
    #[schema(required = true)]
    pub api_version: Option<String>,
    /// When first received.
    pub received_at: DateTime<Utc>,
    /// When its outcome was decided.
    #[schema(required = true)]
    pub processed_at: Option<DateTime<Utc>>,
    /// Outcome.
    #[schema(value_type = EventOutcomeName)]
    pub outcome: &'static str,
    /// Why (stale, unmatched, failed).
    #[schema(required = true)]
    pub detail: Option<String>,
}

impl From<&LedgerEntry> for EventResponse {
    fn from(e: &LedgerEntry) -> Self {
        Self {
            event_id: e.event_id.to_string(),
            kind: e.kind.clone(),
            created: e.created,
            api_version: e.api_version.clone(),
            received_at: e.received_at,
            processed_at: e.processed_at,
            outcome: e.outcome.as_str(),
            detail: e.detail.clone(),
        }
    }
}

/// `POST /api/v1/billing/stripe/events/{eventId}/replay` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReplayResponse {
    /// Stripe's event id.
    pub event_id: String,
    /// Stripe's event type.
    #[serde(rename = "type")]
    pub kind: String,
    /// What the replay came to.
    #[schema(value_type = EventOutcomeName)]
    pub outcome: &'static str,
    /// Why, when not simply processed.
    #[schema(required = true)]
    pub detail: Option<String>,
}

impl From<&WebhookReceipt> for ReplayResponse {
    fn from(r: &WebhookReceipt) -> Self {
        Self {
            event_id: r.event_id.to_string(),
            kind: r.kind.clone(),
            outcome: r.outcome.as_str(),
            detail: r.detail.clone(),
        }
    }
}

/// A page of the webhook event ledger (admin), without payloads.
///
/// # Responses
/// 200 `{data: [EventResponse], nextCursor}` · 400 bad filter · 403 `admin_required`
#[utoipa::path(
    get,
    path = "/api/v1/billing/stripe/events",
    tag = "stripe",
    params(ListEventsParams),
    responses(
        (status = 200, description = "A page of the event ledger (admin), without payloads", body = PageResponse<EventResponse>),
        Guarded
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

/// Fetches an event from Stripe again and applies it (admin); an `unmatched` or `failed`
/// event is applied anew.
///
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
        Guarded,
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
