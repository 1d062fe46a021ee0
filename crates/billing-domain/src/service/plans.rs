//! Plans: the catalogue tenants subscribe to; admins create and change it.

use tracing::instrument;

use super::BillingService;
use crate::auth::Actor;
use crate::error::BillingError;
use crate::model::{NewPlan, Plan, PlanKey, PlanPatch};
use crate::ports::RepoError;

impl BillingService {
    #[instrument(skip_all)]
    pub(super) async fn list_plans(
        &self,
        actor: &Actor,
        include_inactive: bool,
    ) -> Result<Vec<Plan>, BillingError> {
        Ok(self
            .ports
            .plans
            .list(include_inactive && actor.admin)
            .await?)
    }

    #[instrument(skip_all, fields(plan.key = %key))]
    pub(super) async fn get_plan(
        &self,
        _actor: &Actor,
        key: &PlanKey,
    ) -> Result<Plan, BillingError> {
        self.ports
            .plans
            .get(key)
            .await?
            .ok_or_else(|| BillingError::PlanNotFound(key.to_string()))
    }

    #[instrument(skip_all, fields(plan.code = %plan.code))]
    pub(super) async fn create_plan(
        &self,
        actor: &Actor,
        plan: NewPlan,
    ) -> Result<Plan, BillingError> {
        Self::require_admin(actor)?;
        validate_name(&plan.name)?;
        match self.ports.plans.create(plan).await {
            Err(RepoError::Conflict(field)) => Err(BillingError::PlanExists(field)),
            other => Ok(other?),
        }
    }

    #[instrument(skip_all, fields(plan.key = %key))]
    pub(super) async fn update_plan(
        &self,
        actor: &Actor,
        key: &PlanKey,
        patch: PlanPatch,
    ) -> Result<Plan, BillingError> {
        Self::require_admin(actor)?;
        if patch.is_empty() {
            return Err(BillingError::Invalid("the patch changes nothing".into()));
        }
        if let Some(name) = &patch.name {
            validate_name(name)?;
        }
        let plan = self.get_plan(actor, key).await?;
        match self.ports.plans.update(plan.id, patch).await {
            Err(RepoError::Conflict(field)) => Err(BillingError::PlanExists(field)),
            other => other?.ok_or_else(|| BillingError::PlanNotFound(key.to_string())),
        }
    }
}

fn validate_name(name: &str) -> Result<(), BillingError> {
    if name.trim().is_empty() || name.chars().count() > 200 {
        return Err(BillingError::Invalid(
            "name must be 1-200 characters and not blank".into(),
        ));
    }
    Ok(())
}
