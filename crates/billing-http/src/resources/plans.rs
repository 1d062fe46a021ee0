//! `/api/v1/billing/plans`: what tenants can subscribe to. Listing and reading for every
//! caller, creating and changing for admins.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use billing_domain::{BillingInterval, NewPlan, Plan, PlanCode, PlanPatch, PriceRef, TrialDays};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};

use super::common::{currency_field, money_field, plan_param, text_field, Api};
use crate::auth::AuthenticatedActor;
use crate::error::ApiError;
use crate::paths;
use crate::responses::{BodyErrors, Conflict, Guarded, NotFound};

/// A plan's billing interval.
#[derive(Debug, Clone, Copy, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum IntervalName {
    /// Monthly.
    Month,
    /// Yearly.
    Year,
}

/// Query of `GET /api/v1/billing/plans`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListPlansParams {
    /// `true` to include retired plans (admins only; ignored for others).
    #[param(value_type = Option<bool>)]
    pub include_inactive: Option<String>,
}

impl ListPlansParams {
    /// The flag, default `false`.
    ///
    /// # Errors
    /// 400 `invalid_parameter` unless the value is `true` or `false`.
    pub fn include_inactive(&self) -> Result<bool, ApiError> {
        match self.include_inactive.as_deref() {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(ApiError::invalid_parameter(
                "includeInactive",
                "must be true or false",
            )),
        }
    }
}

/// Body of `POST /api/v1/billing/plans`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreatePlanBody {
    /// Code such as `plan-pro`.
    #[schema(pattern = "^[a-z][a-z0-9-]{0,63}$", example = "plan-pro")]
    pub code: String,
    /// Display name: 1-200 characters, not blank.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00]*\\S[^\\x00]*$",
        example = "Pro"
    )]
    pub name: String,
    /// Stripe price id.
    #[schema(pattern = "^[!-~]{1,255}$", example = "price_123")]
    pub stripe_price_id: String,
    /// Price per interval in minor units.
    #[schema(minimum = 0)]
    pub amount: i64,
    /// Currency code.
    #[schema(pattern = "^[A-Za-z]{3}$", example = "usd")]
    pub currency: String,
    /// `month` or `year`.
    #[schema(value_type = IntervalName)]
    pub interval: String,
    /// Trial days (1-730), if any.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 730)]
    pub trial_days: Option<i64>,
}

impl CreatePlanBody {
    /// Converts to the domain's input.
    ///
    /// # Errors
    /// 422 `validation_failed` naming the first field that breaks a rule.
    pub fn try_into_domain(self) -> Result<NewPlan, ApiError> {
        let code = PlanCode::parse(&self.code).map_err(|e| ApiError::invalid_field("code", e))?;
        let currency = currency_field("currency", &self.currency)?;
        let interval = BillingInterval::parse(&self.interval)
            .ok_or_else(|| ApiError::invalid_field("interval", "must be month or year"))?;
        Ok(NewPlan {
            code,
            name: text_field("name", self.name)?,
            price: price_field(self.stripe_price_id)?,
            amount: money_field("amount", self.amount, currency)?,
            interval,
            trial_days: self.trial_days.map(trial_field).transpose()?,
        })
    }
}

/// Body of `PATCH /api/v1/billing/plans/{planId}`. Absent fields stay as they are;
/// `"trialDays": null` removes the trial. `amount` and `currency` go together.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdatePlanBody {
    /// New display name: 1-200 characters, not blank.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00]*\\S[^\\x00]*$",
        example = "Pro"
    )]
    pub name: Option<String>,
    /// New Stripe price id.
    #[serde(default)]
    #[schema(pattern = "^[!-~]{1,255}$", example = "price_123")]
    pub stripe_price_id: Option<String>,
    /// New amount (requires `currency`).
    #[serde(default)]
    #[schema(minimum = 0)]
    pub amount: Option<i64>,
    /// Currency of the new amount (requires `amount`).
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z]{3}$", example = "usd")]
    pub currency: Option<String>,
    /// New trial (1-730); `null` removes it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 730)]
    pub trial_days: Option<Option<i64>>,
    /// Activate or retire.
    #[serde(default)]
    pub active: Option<bool>,
}

impl UpdatePlanBody {
    /// Converts to the domain's patch.
    ///
    /// # Errors
    /// 422 `validation_failed` naming the first field that breaks a rule.
    pub fn try_into_domain(self) -> Result<PlanPatch, ApiError> {
        let amount = match (self.amount, self.currency) {
            (None, None) => None,
            (Some(minor), Some(currency)) => Some(money_field(
                "amount",
                minor,
                currency_field("currency", &currency)?,
            )?),
            (Some(_), None) => {
                return Err(ApiError::invalid_field(
                    "currency",
                    "is required with amount",
                ))
            }
            (None, Some(_)) => {
                return Err(ApiError::invalid_field(
                    "amount",
                    "is required with currency",
                ))
            }
        };
        Ok(PlanPatch {
            name: self.name.map(|n| text_field("name", n)).transpose()?,
            price: self.stripe_price_id.map(price_field).transpose()?,
            amount,
            trial_days: self
                .trial_days
                .map(|days| days.map(trial_field).transpose())
                .transpose()?,
            active: self.active,
        })
    }
}

/// A plan.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlanResponse {
    /// Id.
    #[schema(format = Uuid)]
    pub id: String,
    /// Code.
    pub code: String,
    /// Display name.
    pub name: String,
    /// Stripe price id.
    pub stripe_price_id: String,
    /// Price per interval, minor units.
    pub amount: i64,
    /// Lower-case currency.
    pub currency: String,
    /// `month` or `year`.
    #[schema(value_type = IntervalName)]
    pub interval: &'static str,
    /// Trial days or `null`.
    #[schema(required = true)]
    pub trial_days: Option<u16>,
    /// Whether it can be bought.
    pub active: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<&Plan> for PlanResponse {
    fn from(p: &Plan) -> Self {
        Self {
            id: p.id.to_string(),
            code: p.code.to_string(),
            name: p.name.clone(),
            stripe_price_id: p.price.to_string(),
            amount: p.amount.minor(),
            currency: p.amount.currency().to_string(),
            interval: p.interval.as_str(),
            trial_days: p.trial_days.map(TrialDays::get),
            active: p.active,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

fn price_field(raw: String) -> Result<PriceRef, ApiError> {
    PriceRef::parse(raw).map_err(|_| {
        ApiError::invalid_field(
            "stripePriceId",
            "must be a Stripe price id such as price_123",
        )
    })
}

fn trial_field(days: i64) -> Result<TrialDays, ApiError> {
    TrialDays::new(days).map_err(|e| ApiError::invalid_field("trialDays", e))
}

/// Deserialises a field that may be absent (`None`), `null` (`Some(None)`) or a value.
fn double_option<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(de).map(Some)
}

/// Lists plans.
///
/// # Responses
/// 200 `[PlanResponse]` · 400 bad `includeInactive`
#[utoipa::path(
    get,
    path = "/api/v1/billing/plans",
    tag = "plans",
    params(ListPlansParams),
    responses(
        (status = 200, description = "Plans, by code", body = Vec<PlanResponse>),
        Guarded
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all)]
pub async fn list_plans(
    actor: AuthenticatedActor,
    api: Api,
    query: web::Query<ListPlansParams>,
) -> Result<HttpResponse, ApiError> {
    let include_inactive = query.include_inactive()?;
    let plans = api.list_plans(&actor, include_inactive).await?;
    let body: Vec<PlanResponse> = plans.iter().map(PlanResponse::from).collect();
    Ok(HttpResponse::Ok().json(body))
}

/// One plan by UUID or code.
///
/// # Responses
/// 200 `PlanResponse` · 400 malformed key · 404 `plan_not_found`
#[utoipa::path(
    get,
    path = "/api/v1/billing/plans/{planId}",
    tag = "plans",
    params(("planId" = String, Path, description = "A plan's UUID or its code, e.g. `plan-pro`", pattern = "^([a-z][a-z0-9-]{0,63}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$", example = "plan-pro")),
    responses(
        (status = 200, description = "The plan", body = PlanResponse),
        Guarded,
        (status = 404, response = NotFound)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(plan.key = %path))]
pub async fn get_plan(
    actor: AuthenticatedActor,
    api: Api,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let key = plan_param("planId", &path)?;
    let plan = api.get_plan(&actor, &key).await?;
    Ok(HttpResponse::Ok().json(PlanResponse::from(&plan)))
}

/// Creates a plan (admin).
///
/// # Responses
/// 201 `PlanResponse` with `Location` · 403 `admin_required` · 409 `plan_exists` · 422
#[utoipa::path(
    post,
    path = "/api/v1/billing/plans",
    tag = "plans",
    request_body = CreatePlanBody,
    responses(
        (status = 201, description = "The new plan", body = PlanResponse, headers(("Location" = String, description = "The new resource"))),
        Guarded,
        BodyErrors,
        (status = 409, response = Conflict)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(plan.code = %body.code))]
pub async fn create_plan(
    actor: AuthenticatedActor,
    api: Api,
    body: web::Json<CreatePlanBody>,
) -> Result<HttpResponse, ApiError> {
    let plan = api
        .create_plan(&actor, body.into_inner().try_into_domain()?)
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("{}/{}", paths::PLANS, plan.id)))
        .json(PlanResponse::from(&plan)))
}

/// Changes a plan (admin).
///
/// # Responses
/// 200 `PlanResponse` · 403 `admin_required` · 404 `plan_not_found` · 409 · 422
#[utoipa::path(
    patch,
    path = "/api/v1/billing/plans/{planId}",
    tag = "plans",
    params(("planId" = String, Path, description = "A plan's UUID or its code, e.g. `plan-pro`", pattern = "^([a-z][a-z0-9-]{0,63}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$", example = "plan-pro")),
    request_body = UpdatePlanBody,
    responses(
        (status = 200, description = "The changed plan", body = PlanResponse),
        Guarded,
        BodyErrors,
        (status = 404, response = NotFound),
        (status = 409, response = Conflict)
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(plan.key = %path))]
pub async fn update_plan(
    actor: AuthenticatedActor,
    api: Api,
    path: web::Path<String>,
    body: web::Json<UpdatePlanBody>,
) -> Result<HttpResponse, ApiError> {
    let key = plan_param("planId", &path)?;
    let patch = body.into_inner().try_into_domain()?;
    let plan = api.update_plan(&actor, &key, patch).await?;
    Ok(HttpResponse::Ok().json(PlanResponse::from(&plan)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_patch_distinguishes_an_absent_trial_from_a_null_one() {
        let absent: UpdatePlanBody = serde_json::from_str(r#"{"name":"Pro"}"#).unwrap();
        let null: UpdatePlanBody = serde_json::from_str(r#"{"trialDays":null}"#).unwrap();
        let set: UpdatePlanBody = serde_json::from_str(r#"{"trialDays":14}"#).unwrap();

        assert_eq!(absent.try_into_domain().unwrap().trial_days, None);
        assert_eq!(null.try_into_domain().unwrap().trial_days, Some(None));
        assert_eq!(
            set.try_into_domain().unwrap().trial_days,
            Some(Some(TrialDays::new(14).unwrap()))
        );
    }

    #[test]
    fn an_amount_without_a_currency_names_the_missing_field() {
        let body: UpdatePlanBody = serde_json::from_str(r#"{"amount":900}"#).unwrap();

        let err = body.try_into_domain().unwrap_err();

        assert_eq!(err.code(), "validation_failed");
        assert!(err.detail().starts_with("currency"), "{}", err.detail());
    }
}
