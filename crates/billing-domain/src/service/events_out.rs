//! The billing events' outbox, admin side (issue 16): listing deliveries and retrying a
//! dead one. What is emitted and how it is delivered is [`crate::events_out`]'s.

use std::sync::Arc;

use super::BillingService;
use crate::auth::Actor;
use crate::error::BillingError;
use crate::events_out::{BillingEventOutbox, DeliveryStatus, OutboxEntry, RetryOutcome};
use crate::ids::BillingDeliveryId;
use crate::page::{Page, PageRequest};

impl BillingService {
    fn events_outbox(&self) -> Result<&Arc<dyn BillingEventOutbox>, BillingError> {
        self.events_outbox.as_ref().ok_or_else(|| {
            BillingError::Unexpected(
                "no billing events outbox: build the service with_events_outbox".into(),
            )
        })
    }

    /// A page of deliveries (admin).
    pub(super) async fn list_outbox(
        &self,
        actor: &Actor,
        status: Option<DeliveryStatus>,
        page: PageRequest,
    ) -> Result<Page<OutboxEntry>, BillingError> {
        Self::require_admin(actor)?;
        Ok(self.events_outbox()?.list_entries(status, page).await?)
    }

    /// Makes a dead delivery pending again, due now (admin): its chain moves on once it is
    /// delivered.
    pub(super) async fn retry_outbox_entry(
        &self,
        actor: &Actor,
        id: BillingDeliveryId,
    ) -> Result<(), BillingError> {
        Self::require_admin(actor)?;
        let now = self.ports.clock.now();
        match self.events_outbox()?.retry_entry(id, now).await? {
            RetryOutcome::Retried => {
                tracing::info!(delivery.id = %id, "dead billing event delivery retried");
                Ok(())
            }
            RetryOutcome::NotFound => Err(BillingError::OutboxEntryNotFound(id)),
            RetryOutcome::NotDead => Err(BillingError::OutboxEntryNotDead(id)),
        }
    }
}
