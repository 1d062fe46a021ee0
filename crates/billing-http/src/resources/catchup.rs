//! `POST /api/v1/billing/stripe/events/sync` (admin): runs a catch-up pass over Stripe's
//! Events API now (SPEC §8, "Catch-up"; `billing_domain::jobs::catchup`).

use actix_web::{web, HttpResponse};
use billing_domain::jobs::catchup::CatchupReport;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::common::Api;
use crate::auth::AuthenticatedActor;
use crate::error::ApiError;
use crate::responses::{BadGateway, Conflict, Guarded};

/// Query of `POST /api/v1/billing/stripe/events/sync`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SyncParams {
    /// List Stripe's events created since then (RFC 3339, or Unix seconds) instead of
    /// since the watermark; at most 30 days back (older events are gone at Stripe).
    #[param(example = "2026-12-01T00:00:00Z")]
    pub since: Option<String>,
}

/// What the pass did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventsSyncResponse {
    /// Events Stripe listed.
    pub listed: u64,
    /// Events the ledger lacked, applied now.
    pub applied: u64,
    /// Events the ledger already held.
    pub already_applied: u64,
    /// Events recorded `unmatched`.
    pub unmatched: u64,
    /// Events recorded `failed`, or not applied (tried again by the next pass).
    pub failed: u64,
}

impl From<&CatchupReport> for EventsSyncResponse {
    fn from(r: &CatchupReport) -> Self {
        Self {
            listed: r.listed,
            applied: r.applied,
            already_applied: r.already_applied,
            unmatched: r.unmatched,
            failed: r.failed,
        }
    }
}

/// `since` as RFC 3339 or Unix seconds.
///
/// # Errors
/// 400 `invalid_parameter` naming `since`.
pub fn parse_since(raw: &str) -> Result<DateTime<Utc>, ApiError> {
    let raw = raw.trim();
    let bad = || {
        ApiError::invalid_parameter(
            "since",
            "must be an RFC 3339 time (2026-12-01T00:00:00Z) or Unix seconds",
        )
    };
    if !raw.is_empty() && raw.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = raw.parse().map_err(|_| bad())?;
        return DateTime::from_timestamp(secs, 0).ok_or_else(bad);
    }
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| bad())
}

/// Runs a catch-up pass now (admin): Stripe's events since `since` (or the watermark)
/// that the ledger lacks are applied, oldest first, as their webhooks would have been.
///
/// # Responses
/// 200 `{listed, applied, alreadyApplied, unmatched, failed}` · 400 bad `since` ·
/// 403 `admin_required` · 409 `catchup_in_progress` · 502 Stripe · 503 database, or
/// `stripe_not_configured`
#[utoipa::path(
    post,
    path = "/api/v1/billing/stripe/events/sync",
    tag = "stripe",
    params(SyncParams),
    responses(
        (status = 200, description = "What the catch-up pass did", body = EventsSyncResponse),
        Guarded,
        (status = 409, response = Conflict),
        (status = 502, response = BadGateway)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn sync_events(
    actor: AuthenticatedActor,
    api: Api,
    query: web::Query<SyncParams>,
) -> Result<HttpResponse, ApiError> {
    let since = query.since.as_deref().map(parse_since).transpose()?;
    let report = api.sync_events(&actor, since).await?;
    Ok(HttpResponse::Ok().json(EventsSyncResponse::from(&report)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_is_rfc3339_or_unix_seconds() {
        let t = DateTime::from_timestamp(1_764_547_200, 0).unwrap_or_default();
        assert_eq!(parse_since("1764547200").ok(), Some(t));
        assert_eq!(parse_since("2025-12-01T00:00:00Z").ok(), Some(t));
        assert_eq!(parse_since("2025-12-01T01:00:00+01:00").ok(), Some(t));
        for bad in [
            "",
            "yesterday",
            "-5",
            "1e9",
            "2025-13-01T00:00:00Z",
            "99999999999999999999",
        ] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
    }
}
