//! The queues the background jobs ([`crate::jobs`]) work off: PaymentIntent lookups and
//! the notification outbox.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::RepoError;
#[cfg(doc)]
use super::WebhookTx;
use crate::ids::{InvoiceId, InvoiceRef, PaymentIntentRef};

/// A paid Stripe invoice whose PaymentIntent is still to be looked up: since API version
/// 2025-03-31.basil Stripe's invoice events no longer name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLookup {
    /// Our invoice.
    pub invoice: InvoiceId,
    /// Stripe's invoice.
    pub invoice_ref: InvoiceRef,
    /// Lookups tried so far.
    pub attempts: u32,
}

/// What recording a lookup's result changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Linked {
    /// The invoice now names the PaymentIntent (`false`: none was found, the invoice
    /// already named one, or another invoice holds it).
    pub invoice_updated: bool,
    /// Payments of that PaymentIntent, recorded before the link was known, now attached
    /// to the invoice.
    pub payments_linked: u64,
}

/// The queue of PaymentIntent lookups ([`WebhookTx::request_payment_intent_lookup`]),
/// worked off by [`crate::jobs::linker::PaymentIntentLinker`] outside the webhook's request, so
/// that acknowledging an event never waits for Stripe's API.
///
/// # Errors
/// Every method returns [`RepoError::Unavailable`] when the database cannot be reached;
/// the linker tries again on its next pass.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PaymentIntentLookups: Send + Sync {
    /// Takes up to `limit` due lookups, hiding them from other linkers until
    /// `lease_until` (a crashed linker's lookups come back then).
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PendingLookup>, RepoError>;
    /// Records a lookup's result and ends it, in one transaction: the invoice gets the
    /// PaymentIntent `found` unless it names one already or another invoice holds it, and
    /// the payments of that PaymentIntent recorded for the invoice's tenant without an
    /// invoice are attached to it.
    async fn complete(
        &self,
        invoice: InvoiceId,
        found: Option<PaymentIntentRef>,
        at: DateTime<Utc>,
    ) -> Result<Linked, RepoError>;
    /// Records a failed attempt and when to try again; `None` gives up (the error stays
    /// on the invoice for an operator).
    async fn reschedule(
        &self,
        invoice: InvoiceId,
        attempts: u32,
        retry_at: Option<DateTime<Utc>>,
        error: String,
    ) -> Result<(), RepoError>;
    /// How many lookups wait.
    async fn backlog(&self) -> Result<u64, RepoError>;
}

/// A notification taken from the outbox for delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Stable id: receivers deduplicate on it.
    pub id: crate::ids::NotificationId,
    /// The notification type (`invoice.payment_failed`).
    pub kind: String,
    /// The JSON document to deliver, as the outbox stored it.
    pub payload: String,
    /// Deliveries tried so far.
    pub attempts: u32,
}

/// The outbox, dispatch side.
///
/// # Errors
/// Every method returns [`RepoError::Unavailable`] when the database cannot be reached;
/// the dispatcher then simply tries again on its next pass.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OutboxRepository: Send + Sync {
    /// Takes up to `limit` pending messages that are due, hiding them from other
    /// dispatchers until `lease_until` (a crashed dispatcher's messages come back then).
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, RepoError>;
    /// Marks a message delivered (`logged` when there is nowhere to deliver to).
    async fn mark_done(
        &self,
        id: crate::ids::NotificationId,
        logged_only: bool,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError>;
    /// Records a failed attempt and when to try again; `None` gives up (`dead`).
    async fn mark_failed(
        &self,
        id: crate::ids::NotificationId,
        attempts: u32,
        retry_at: Option<DateTime<Utc>>,
        error: String,
    ) -> Result<(), RepoError>;
    /// How many messages wait for delivery.
    async fn backlog(&self) -> Result<u64, RepoError>;
}
