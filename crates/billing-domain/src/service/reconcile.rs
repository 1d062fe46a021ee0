//! The tenant sync and the checkout return (issue 15, SPEC §8): Stripe's state read
//! through the API and applied through the webhook path's rules
//! ([`crate::jobs::reconcile`], `webhook/reconcile.rs`).

use std::sync::Arc;

use tracing::{instrument, warn};

use super::webhook_reconcile::{checkout_return, READ_SKEW};
use super::BillingService;
use crate::auth::Actor;
use crate::error::BillingError;
use crate::ids::{CheckoutSessionRef, TenantId};
use crate::jobs::reconcile::{ReconcileReport, Reconciler};
use crate::model::{EventOutcome, Subscription, TenantStatus};
use crate::ports::{ProviderError, WorkOutcome};

/// What the checkout return answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutReturn {
    /// Stripe's session `status` (`open`, `complete`, `expired`).
    pub status: String,
    /// Stripe's `payment_status`.
    pub payment_status: Option<String>,
    /// The tenant's status after the session was applied.
    pub tenant_status: Option<TenantStatus>,
    /// The tenant's current subscription after it.
    pub subscription: Option<Subscription>,
}

impl BillingService {
    /// The reconciliation, when wired ([`BillingService::with_reconciler`]).
    fn reconciler(&self) -> Result<&Arc<Reconciler>, BillingError> {
        self.reconciler
            .as_ref()
            .ok_or_else(|| BillingError::Unexpected("reconciliation is not wired".into()))
    }

    #[instrument(skip_all, fields(tenant.id = %tenant))]
    pub(super) async fn sync_tenant(
        &self,
        actor: &Actor,
        tenant: TenantId,
    ) -> Result<ReconcileReport, BillingError> {
        Self::require_tenant(actor, tenant)?;
        let reconciler = self.reconciler()?;
        reconciler
            .tenant(self.ports.provider.as_ref(), tenant)
            .await
    }

    #[instrument(skip_all, fields(stripe.checkout_session = %session))]
    pub(super) async fn checkout_return(
        &self,
        actor: &Actor,
        session: &CheckoutSessionRef,
    ) -> Result<CheckoutReturn, BillingError> {
        if !actor.admin && actor.tenant.is_none() {
            return Err(BillingError::NoTenant);
        }
        let not_found = || BillingError::CheckoutSessionNotFound(session.to_string());
        let read_at = self.ports.clock.now() - READ_SKEW;
        let state = match self.ports.provider.checkout_session(session).await {
            Err(ProviderError::Refused {
                not_found: true, ..
            }) => return Err(not_found()),
            other => other?,
        };
        // The session names its tenant as our checkout made it: metadata, then
        // `client_reference_id`. A session without one is not ours.
        let tenant = [
            &state.session.tenant.metadata,
            &state.session.tenant.client_reference,
        ]
        .into_iter()
        .flatten()
        .find_map(|raw| TenantId::parse(raw).ok())
        .ok_or_else(not_found)?;
        Self::require_tenant(actor, tenant)?;
        if state.status == "complete" && state.session.subscription.is_some() {
            let c = Arc::new(state.session.clone());
            let now = self.ports.clock.now();
            let applied = Arc::clone(&c);
            let outcome = self
                .ports
                .webhooks
                .apply(Box::new(move |tx| {
                    checkout_return(tx, &applied, read_at, now).map(WorkOutcome::Applied)
                }))
                .await?;
            if let WorkOutcome::Applied(applied) = outcome {
                match applied.outcome {
                    EventOutcome::Processed => {
                        if let Some(customer) = &c.customer {
                            self.reapply_unmatched(customer).await;
                        }
                    }
                    other => warn!(
                        outcome = other.as_str(),
                        detail = applied.detail.as_deref(),
                        tenant.id = %tenant,
                        "checkout return: the completed session was not applied"
                    ),
                }
            }
        }
        let tenant_status = self.ports.tenants.get(tenant).await?.map(|t| t.status);
        let subscription = self.ports.subscriptions.current_for_tenant(tenant).await?;
        Ok(CheckoutReturn {
            status: state.status,
            payment_status: state.payment_status,
            tenant_status,
            subscription,
        })
    }
}
