//! `POST /api/v1/billing/stripe/portal`: a Customer Portal session, its fields from the
//! query string or a JSON body.

use actix_web::{web, HttpResponse};
use billing_domain::CustomerRef;
use serde::{Deserialize, Serialize};

use super::common::{customer_param, merge_param, Api};
use crate::auth::AuthenticatedActor;
use crate::error::ApiError;
use crate::extract::OptionalJson;
use crate::responses::{BadGateway, BodyErrors, Conflict, Guarded, NotFound};

/// The portal fields, from the query string or the JSON body (same names).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PortalParams {
    /// Stripe customer (required).
    #[serde(default)]
    #[schema(pattern = "^[!-~]{1,255}$", example = "cus_123")]
    #[param(pattern = "^[!-~]{1,255}$", example = "cus_123")]
    pub customer_id: Option<String>,
    /// Where the portal sends the customer back.
    #[serde(default)]
    pub return_url: Option<String>,
}

impl PortalParams {
    /// The customer and the return URL from the query string's fields and the body's, if
    /// any; `customerId` is required. The domain validates the URL itself (scheme, host
    /// allow-list); here it is only text.
    ///
    /// # Errors
    /// 400 `invalid_parameter` naming the first field that is missing, malformed or given
    /// two different values.
    pub fn merge(self, body: Option<Self>) -> Result<(CustomerRef, Option<String>), ApiError> {
        let body = body.unwrap_or_default();
        let customer = merge_param(
            "customerId",
            self.customer_id.as_deref(),
            body.customer_id.as_deref(),
            customer_param,
        )?
        .ok_or_else(|| ApiError::invalid_parameter("customerId", "is required"))?;
        let return_url = merge_param(
            "returnUrl",
            self.return_url.as_deref(),
            body.return_url.as_deref(),
            |_, raw| Ok(raw.to_owned()),
        )?;
        Ok((customer, return_url))
    }
}

/// `POST /api/v1/billing/stripe/portal` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PortalResponse {
    /// The portal session URL.
    pub portal_url: String,
}

/// Opens a Customer Portal session. Fields come from the query string or a JSON body.
///
/// # Responses
/// 200 `{portalUrl}` · 400 missing `customerId`, bad `returnUrl` · 403 · 404 customer ·
/// 502/503 Stripe
#[utoipa::path(
    post,
    path = "/api/v1/billing/stripe/portal",
    tag = "stripe",
    params(PortalParams),
    request_body(content = Option<PortalParams>, description = "The same fields as the query string, as JSON (optional)"),
    responses(
        (status = 200, description = "The Customer Portal session", body = PortalResponse),
        Guarded,
        BodyErrors,
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 502, response = BadGateway)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn open_portal(
    actor: AuthenticatedActor,
    api: Api,
    query: web::Query<PortalParams>,
    body: OptionalJson<PortalParams>,
) -> Result<HttpResponse, ApiError> {
    let (customer, return_url) = query.into_inner().merge(body.0)?;
    let portal_url = api.open_portal(&actor, &customer, return_url).await?;
    Ok(HttpResponse::Ok().json(PortalResponse { portal_url }))
}
