//! `POST /api/v1/billing/stripe/checkout`: a Stripe Checkout Session for a tenant and a
//! plan, its fields from the query string or a JSON body.

use actix_web::{web, HttpResponse};
use billing_domain::ports::CheckoutSession;
use billing_domain::CheckoutInput;
use serde::{Deserialize, Serialize};

use super::common::{customer_param, merge_param, plan_param, tenant_param, Api};
use crate::auth::AuthenticatedActor;
use crate::error::ApiError;
use crate::extract::OptionalJson;
use crate::responses::{BadGateway, BodyErrors, Conflict, Guarded, NotFound};

/// The checkout fields, from the query string or the JSON body (same names).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckoutParams {
    /// Tenant subscribing (UUID).
    #[serde(default)]
    #[schema(format = Uuid)]
    #[param(format = Uuid)]
    pub tenant_id: Option<String>,
    /// Plan UUID or code.
    #[serde(default)]
    #[schema(
        pattern = "^([a-z][a-z0-9-]{0,63}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$",
        example = "plan-pro"
    )]
    #[param(
        pattern = "^([a-z][a-z0-9-]{0,63}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$",
        example = "plan-pro"
    )]
    pub plan_id: Option<String>,
    /// Stripe customer to reuse.
    #[serde(default)]
    #[schema(pattern = "^[!-~]{1,255}$", example = "cus_123")]
    #[param(pattern = "^[!-~]{1,255}$", example = "cus_123")]
    pub customer_id: Option<String>,
}

impl CheckoutParams {
    /// The domain's input from the query string's fields and the body's, if any: either
    /// may carry a field, and when both do they must name the same thing. `tenantId` and
    /// `planId` are required.
    ///
    /// # Errors
    /// 400 `invalid_parameter` naming the first field that is missing, malformed or given
    /// two different values.
    pub fn merge(self, body: Option<Self>) -> Result<CheckoutInput, ApiError> {
        let body = body.unwrap_or_default();
        let tenant = merge_param(
            "tenantId",
            self.tenant_id.as_deref(),
            body.tenant_id.as_deref(),
            tenant_param,
        )?
        .ok_or_else(|| ApiError::invalid_parameter("tenantId", "is required"))?;
        let plan = merge_param(
            "planId",
            self.plan_id.as_deref(),
            body.plan_id.as_deref(),
            plan_param,
        )?
        .ok_or_else(|| ApiError::invalid_parameter("planId", "is required"))?;
        let customer = merge_param(
            "customerId",
            self.customer_id.as_deref(),
            body.customer_id.as_deref(),
            customer_param,
        )?;
        Ok(CheckoutInput {
            tenant,
            plan,
            customer,
        })
    }
}

/// `POST /api/v1/billing/stripe/checkout` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckoutResponse {
    /// The hosted Checkout page.
    pub session_url: String,
    /// Stripe's session id (`cs_…`).
    pub session_id: String,
}

impl From<&CheckoutSession> for CheckoutResponse {
    fn from(s: &CheckoutSession) -> Self {
        Self {
            session_url: s.url.clone(),
            session_id: s.id.to_string(),
        }
    }
}

/// Opens a Stripe Checkout Session. Fields come from the query string or a JSON body.
///
/// # Responses
/// 200 `{sessionUrl, sessionId}` · 400 missing/bad/conflicting parameter · 403 · 404 plan ·
/// 409 inactive plan, live subscription, foreign customer · 502/503 Stripe
#[utoipa::path(
    post,
    path = "/api/v1/billing/stripe/checkout",
    tag = "stripe",
    params(CheckoutParams),
    request_body(content = Option<CheckoutParams>, description = "The same fields as the query string, as JSON (optional)"),
    responses(
        (status = 200, description = "The Checkout Session", body = CheckoutResponse),
        Guarded,
        BodyErrors,
        (status = 404, response = NotFound),
        (status = 409, response = Conflict),
        (status = 502, response = BadGateway)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(tenant.id = tracing::field::Empty))]
pub async fn start_checkout(
    actor: AuthenticatedActor,
    api: Api,
    query: web::Query<CheckoutParams>,
    body: OptionalJson<CheckoutParams>,
) -> Result<HttpResponse, ApiError> {
    let input = query.into_inner().merge(body.0)?;
    tracing::Span::current().record("tenant.id", tracing::field::display(input.tenant));
    let session = api.start_checkout(&actor, input).await?;
    Ok(HttpResponse::Ok().json(CheckoutResponse::from(&session)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(tenant: Option<&str>, plan: Option<&str>, customer: Option<&str>) -> CheckoutParams {
        CheckoutParams {
            tenant_id: tenant.map(str::to_owned),
            plan_id: plan.map(str::to_owned),
            customer_id: customer.map(str::to_owned),
        }
    }

    const TENANT: &str = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b";

    #[test]
    fn the_query_and_the_body_each_give_fields_and_must_agree_where_both_do() {
        let merged = params(Some(TENANT), None, None)
            .merge(Some(params(
                Some(TENANT),
                Some("plan-pro"),
                Some("cus_123"),
            )))
            .unwrap();
        let differ = params(Some(TENANT), Some("plan-pro"), None)
            .merge(Some(params(None, Some("plan-team"), None)))
            .unwrap_err();

        assert_eq!(merged.tenant.to_string(), TENANT);
        assert_eq!(merged.plan.to_string(), "plan-pro");
        assert_eq!(
            merged.customer.map(|c| c.to_string()).as_deref(),
            Some("cus_123")
        );
        assert_eq!(differ.code(), "invalid_parameter");
        assert!(differ.detail().starts_with("planId"), "{}", differ.detail());
    }

    #[test]
    fn a_missing_tenant_or_plan_is_named() {
        let no_tenant = params(None, Some("plan-pro"), None)
            .merge(None)
            .unwrap_err();
        let no_plan = params(Some(TENANT), None, None).merge(None).unwrap_err();

        assert!(
            no_tenant.detail().starts_with("tenantId"),
            "{}",
            no_tenant.detail()
        );
        assert!(
            no_plan.detail().starts_with("planId"),
            "{}",
            no_plan.detail()
        );
    }
}
