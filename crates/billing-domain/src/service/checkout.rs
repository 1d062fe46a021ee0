//! Checkout: a Stripe Checkout Session for a subscription, and the tenant's only open one.

use chrono::{DateTime, Utc};
use tracing::instrument;

use super::BillingService;
use crate::auth::Actor;
use crate::error::BillingError;
use crate::ids::{CheckoutSessionRef, CustomerRef, TenantId};
use crate::model::PlanKey;
use crate::ports::{CheckoutRequest, CheckoutSession, SessionEnd};

/// What a caller asks Checkout for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutInput {
    /// The tenant subscribing.
    pub tenant: TenantId,
    /// The plan, by id or code.
    pub plan: PlanKey,
    /// A Stripe customer to reuse.
    pub customer: Option<CustomerRef>,
}

impl BillingService {
    #[instrument(skip_all, fields(tenant.id = %input.tenant, plan.key = %input.plan))]
    pub(super) async fn start_checkout(
        &self,
        actor: &Actor,
        input: CheckoutInput,
    ) -> Result<CheckoutSession, BillingError> {
        Self::require_tenant(actor, input.tenant)?;
        let plan = self
            .ports
            .plans
            .get(&input.plan)
            .await?
            .ok_or_else(|| BillingError::PlanNotFound(input.plan.to_string()))?;
        if !plan.active {
            return Err(BillingError::PlanInactive(plan.code.to_string()));
        }
        let tenant = self.ports.tenants.ensure(input.tenant).await?;
        if let Some(current) = self
            .ports
            .subscriptions
            .current_for_tenant(tenant.id)
            .await?
        {
            if current.status.blocks_checkout() {
                return Err(BillingError::AlreadySubscribed(tenant.id));
            }
        }
        let customer = match input.customer {
            Some(given) => {
                let owner = self.ports.tenants.find_by_customer(&given).await?;
                if owner.is_some_and(|o| o.id != tenant.id) {
                    return Err(BillingError::CustomerOfAnotherTenant);
                }
                Some(given)
            }
            None => tenant.customer.clone(),
        };
        let request = CheckoutRequest {
            tenant: tenant.id,
            plan: plan.id,
            price: plan.price.clone(),
            customer,
            trial_days: plan.trial_days,
            // A checkout is not naturally idempotent (a user may open a new session after
            // abandoning one), so each call gets its own key, kept across the client's
            // retries of that one call.
            idempotency_key: format!("checkout-{}-{}", tenant.id, uuid::Uuid::new_v4()),
        };
        let session = self
            .ports
            .provider
            .create_checkout_session(&request)
            .await?;
        self.keep_one_open_session(tenant.id, &session.id).await?;
        Ok(session)
    }

    /// Makes `new` the tenant's only open Checkout Session: each completed session starts
    /// a subscription and Stripe would bill both, so the tenant's older open sessions
    /// (an abandoned tab, say) are expired at Stripe first.
    ///
    /// * An older session turns out completed: the tenant has subscribed (its webhook may
    ///   not be here yet). The new session is expired too; 409 `subscription_exists`.
    /// * Stripe or the database fails: the new session is expired (best effort) and the
    ///   error answered; a retry expires the older ones again.
    /// * Two sessions opened at once: recording is serialised per tenant, so the one
    ///   recorded second expires the first, and one survives. The first caller may then
    ///   hold an expired session (a double click); its page says so at Stripe.
    async fn keep_one_open_session(
        &self,
        tenant: TenantId,
        new: &CheckoutSessionRef,
    ) -> Result<(), BillingError> {
        let now = self.ports.clock.now();
        let refused = match self.expire_older_sessions(tenant, new, now).await {
            Ok(false) => return Ok(()),
            Ok(true) => {
                tracing::warn!(
                    tenant.id = %tenant,
                    "an earlier checkout of the tenant was completed; the new one is withdrawn"
                );
                BillingError::AlreadySubscribed(tenant)
            }
            Err(e) => e,
        };
        // Withdrawn, best effort: one left open is expired by the tenant's next checkout
        // (it stays recorded as open).
        if let Err(error) = self.end_session(new, now).await {
            tracing::warn!(
                stripe.checkout_session = %new,
                error = %error,
                "could not withdraw a checkout session; the tenant's next checkout expires it"
            );
        }
        Err(refused)
    }

    /// Records `new` and ends the tenant's older open sessions; `true` when one of them had
    /// been completed.
    async fn expire_older_sessions(
        &self,
        tenant: TenantId,
        new: &CheckoutSessionRef,
        now: DateTime<Utc>,
    ) -> Result<bool, BillingError> {
        let older = self
            .ports
            .checkout_sessions
            .record_open(tenant, new, now)
            .await?;
        let mut completed = false;
        for session in older {
            completed |= self.end_session(&session, now).await? == SessionEnd::Completed;
        }
        Ok(completed)
    }

    /// Expires a session at Stripe and records how it ended.
    async fn end_session(
        &self,
        session: &CheckoutSessionRef,
        now: DateTime<Utc>,
    ) -> Result<SessionEnd, BillingError> {
        let end = self.ports.provider.expire_checkout_session(session).await?;
        self.ports
            .checkout_sessions
            .close(session, end, now)
            .await?;
        Ok(end)
    }
}
