//! The access check (SPEC §9): the tenant's current subscription and plan, read once, and
//! [`decide_access`] on them.

use tracing::instrument;

use super::BillingService;
use crate::auth::Actor;
use crate::error::BillingError;
use crate::ids::TenantId;
use crate::model::{decide_access, AccessDecision, Features, PlanCode, SubscriptionStatus};

/// What the access check answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantAccess {
    /// Entitled or not, why, and until when.
    pub decision: AccessDecision,
    /// The current subscription's plan, if any.
    pub plan_code: Option<PlanCode>,
    /// The plan's features while entitled; empty otherwise, so that a caller checking
    /// only the features never lets a tenant without access in.
    pub features: Features,
    /// The current subscription's status, if any.
    pub status: Option<SubscriptionStatus>,
}

impl BillingService {
    #[instrument(skip_all, fields(tenant.id = %id))]
    pub(super) async fn tenant_access(
        &self,
        actor: &Actor,
        id: TenantId,
    ) -> Result<TenantAccess, BillingError> {
        Self::require_tenant(actor, id)?;
        // An unknown tenant has no subscription: answered from the same single read,
        // without a second query for the tenant itself.
        let current = self.ports.subscriptions.current_with_plan(id).await?;
        let now = self.ports.clock.now();
        let decision = decide_access(
            current.as_ref().map(|(sub, _)| sub),
            now,
            self.settings.access_grace,
        );
        Ok(match current {
            Some((sub, plan)) => TenantAccess {
                decision,
                plan_code: Some(plan.code),
                features: if decision.entitled {
                    plan.features
                } else {
                    Features::default()
                },
                status: Some(sub.status),
            },
            None => TenantAccess {
                decision,
                plan_code: None,
                features: Features::default(),
                status: None,
            },
        })
    }
}
