//! The operations endpoints: liveness, readiness and the metrics.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use super::common::Api;
use crate::error::ApiError;
use crate::metrics::MetricsEndpoint;
use crate::responses::Unavailable;

/// A health answer.
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum HealthStatusName {
    /// Healthy.
    Ok,
}

/// Health answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HealthResponse {
    /// Always `ok`.
    #[schema(value_type = HealthStatusName)]
    pub status: &'static str,
}

/// Liveness: the process answers.
///
/// # Responses
/// 200 `{"status":"ok"}`
#[utoipa::path(
    get,
    path = "/health/live",
    tag = "operations",
    responses(
        (status = 200, description = "The process answers", body = HealthResponse)
    )
)]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(HealthResponse { status: "ok" })
}

/// Readiness: the database answers.
///
/// # Responses
/// 200 `{"status":"ok"}` · 503 `database_unavailable`
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "operations",
    responses(
        (status = 200, description = "The database answers", body = HealthResponse),
        (status = 503, response = Unavailable)
    )
)]
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

/// The metrics in the Prometheus text format; scrape hooks run first.
///
/// # Responses
/// 200 `text/plain; version=0.0.4`
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text format 0.0.4", body = String, content_type = "text/plain")
    )
)]
pub async fn metrics(metrics: web::Data<dyn MetricsEndpoint>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(metrics.content_type())
        .body(metrics.scrape())
}
