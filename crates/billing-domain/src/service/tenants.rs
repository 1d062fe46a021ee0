//! Tenants and their current subscription.

use tracing::instrument;

use super::BillingService;
use crate::auth::Actor;
use crate::error::BillingError;
use crate::ids::TenantId;
use crate::model::{Subscription, Tenant};

/// A tenant with its current subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantOverview {
    /// The tenant.
    pub tenant: Tenant,
    /// Its current subscription (newest live one, else newest `incomplete` one, else
    /// newest), if any.
    pub subscription: Option<Subscription>,
}

impl BillingService {
    #[instrument(skip_all, fields(tenant.id = %id))]
    pub(super) async fn get_tenant(
        &self,
        actor: &Actor,
        id: TenantId,
    ) -> Result<TenantOverview, BillingError> {
        Self::require_tenant(actor, id)?;
        let tenant = self
            .ports
            .tenants
            .get(id)
            .await?
            .ok_or(BillingError::TenantNotFound(id))?;
        let subscription = self.ports.subscriptions.current_for_tenant(id).await?;
        Ok(TenantOverview {
            tenant,
            subscription,
        })
    }

    #[instrument(skip_all, fields(tenant.id = %id))]
    pub(super) async fn tenant_subscription(
        &self,
        actor: &Actor,
        id: TenantId,
    ) -> Result<Subscription, BillingError> {
        Self::require_tenant(actor, id)?;
        self.ports
            .subscriptions
            .current_for_tenant(id)
            .await?
            .ok_or(BillingError::SubscriptionNotFound(id))
    }
}
