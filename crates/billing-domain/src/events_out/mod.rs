//! Billing events out (SPEC §9): what changed in a tenant's billing, told to the
//! platform's other services through a transactional outbox.
//!
//! * **What is emitted** ([`emit`]). Nothing in the webhook rules names an event: every unit
//!   of work run through the [`WebhookStore`](crate::ports::WebhookStore) goes through
//!   [`emit::EmittingStore`], which watches the rows the work reads and saves through its
//!   [`WebhookTx`](crate::ports::WebhookTx) and, when the work has decided, compares each
//!   row saved with what it was when first read. The differences become events, appended
//!   in the same transaction ([`WebhookTx::append_billing_event`](crate::ports::WebhookTx::append_billing_event)).
//!   A duplicate or stale Stripe event saves nothing new, so it emits nothing; a
//!   same-second tie rolls back, its events with it. Any new unit of work saved through
//!   the store (a self-service answer, a refund, a reconciliation correction) emits its
//!   events the same way, without a line of its own.
//! * **Order** ([`dispatch`]). Each tenant's events are numbered from 1 without gaps (a
//!   per-tenant counter row locked in the transaction); each subscriber gets each tenant's
//!   events in that order, one chain per (subscriber, tenant): a failing subscriber or
//!   tenant holds only its own chain.

use chrono::{DateTime, Utc};

use crate::ids::{BillingDeliveryId, BillingEventId, TenantId};
use crate::model::{Dispute, Invoice, Payment, Subscription, Tenant};
use crate::notification::NotificationBody;
use crate::page::{Page, PageRequest};
use crate::ports::RepoError;

pub mod dispatch;
pub mod emit;

/// The billing event types (SPEC §9), besides the notifications' own types.
pub mod kinds {
    /// A tenant became `active`.
    pub const TENANT_ACTIVATED: &str = "tenant.activated";
    /// A tenant became `suspended`.
    pub const TENANT_SUSPENDED: &str = "tenant.suspended";
    /// A tenant became `cancelled`.
    pub const TENANT_CANCELLED: &str = "tenant.cancelled";
    /// A subscription was recorded.
    pub const SUBSCRIPTION_CREATED: &str = "subscription.created";
    /// A subscription's plan or status changed (but not to `canceled`).
    pub const SUBSCRIPTION_UPDATED: &str = "subscription.updated";
    /// A subscription became `canceled`.
    pub const SUBSCRIPTION_CANCELED: &str = "subscription.canceled";
    /// An invoice became `paid`.
    pub const INVOICE_PAID: &str = "invoice.paid";
    /// An invoice became `overdue`.
    pub const INVOICE_OVERDUE: &str = "invoice.overdue";
    /// An invoice became `void`.
    pub const INVOICE_VOIDED: &str = "invoice.voided";
    /// A payment was collected.
    pub const PAYMENT_SUCCEEDED: &str = "payment.succeeded";
    /// A payment attempt failed.
    pub const PAYMENT_FAILED: &str = "payment.failed";
    /// More of a payment was refunded.
    pub const PAYMENT_REFUNDED: &str = "payment.refunded";
    /// A payment was disputed.
    pub const DISPUTE_CREATED: &str = "dispute.created";
    /// A dispute was decided or withdrawn.
    pub const DISPUTE_CLOSED: &str = "dispute.closed";
}

/// What a billing event is about: the row as the transaction saved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BillingEventSubject {
    /// A tenant.
    Tenant(Tenant),
    /// A subscription.
    Subscription(Subscription),
    /// An invoice.
    Invoice(Invoice),
    /// A payment.
    Payment(Payment),
    /// A dispute (with its payment's tenant on the event).
    Dispute(Dispute),
    /// A notification of SPEC §3 or §7, sent as a billing event of its own type.
    Notification(NotificationBody),
}

/// A billing event to append to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBillingEvent {
    /// Stable id, sent with every delivery (`Billing-Event-Id`): receivers deduplicate on it.
    pub id: BillingEventId,
    /// Whose billing changed: the event's chain.
    pub tenant: TenantId,
    /// The type (`invoice.paid`, see [`kinds`]).
    pub kind: &'static str,
    /// When the change was made.
    pub created_at: DateTime<Utc>,
    /// The subject's status before the change, when it had one and it changed.
    pub previous_status: Option<&'static str>,
    /// What it is about.
    pub subject: BillingEventSubject,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Waiting for its turn or its next attempt.
    Pending,
    /// The subscriber accepted it.
    Delivered,
    /// Out of attempts (or refused): its chain waits for an operator's retry.
    Dead,
}

impl DeliveryStatus {
    /// Every status, in API order.
    pub const ALL: [Self; 3] = [Self::Pending, Self::Delivered, Self::Dead];

    /// The stable name used in the API and the database.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }

    /// Parses [`Self::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// One subscriber's delivery of one billing event, as the admin lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The delivery's id (what a retry names).
    pub id: BillingDeliveryId,
    /// The event delivered.
    pub event_id: BillingEventId,
    /// The event's type.
    pub kind: String,
    /// The event's tenant.
    pub tenant: TenantId,
    /// The event's place in its tenant's order.
    pub sequence: u64,
    /// Where it goes (the subscriber URL without credentials or query).
    pub subscriber: String,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts so far.
    pub attempts: u32,
    /// When the next attempt is due (pending).
    pub next_attempt_at: DateTime<Utc>,
    /// The last failure.
    pub last_error: Option<String>,
    /// When the event was made.
    pub created_at: DateTime<Utc>,
    /// When the subscriber accepted it.
    pub delivered_at: Option<DateTime<Utc>>,
}

/// A delivery taken for sending: the head of its (subscriber, tenant) chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedDelivery {
    /// The delivery.
    pub id: BillingDeliveryId,
    /// The event (`Billing-Event-Id`).
    pub event_id: BillingEventId,
    /// The event's type.
    pub kind: String,
    /// The event's tenant.
    pub tenant: TenantId,
    /// Its place in the tenant's order.
    pub sequence: u64,
    /// The body to send, exactly as stored when the event was made.
    pub body: String,
    /// Attempts so far.
    pub attempts: u32,
}

/// One subscriber's backlog, for the gauges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberBacklog {
    /// The subscriber (as stored).
    pub subscriber: String,
    /// Deliveries not yet accepted (pending or dead).
    pub waiting: u64,
    /// When the oldest of them was made.
    pub oldest: Option<DateTime<Utc>>,
}

/// What a retry came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOutcome {
    /// The delivery is pending again, due now, with its attempts reset.
    Retried,
    /// No such delivery.
    NotFound,
    /// It is not dead (pending or delivered): nothing changed.
    NotDead,
}

/// The billing events' outbox: the dispatch side and the admin's.
///
/// # Errors
/// Every method returns [`RepoError::Unavailable`] when the database cannot be reached.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait::async_trait]
pub trait BillingEventOutbox: Send + Sync {
    /// Takes up to `limit` heads of `subscriber`'s chains that are due: in each
    /// (subscriber, tenant) chain only the lowest sequence not yet delivered, and only
    /// while it is pending (a dead head holds its chain). Claimed heads are hidden until
    /// `lease_until`, so two dispatchers never send one chain at once.
    async fn claim_heads(
        &self,
        subscriber: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, RepoError>;
    /// Marks a pending delivery accepted.
    async fn mark_delivered(
        &self,
        id: BillingDeliveryId,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError>;
    /// Records a failed attempt and when to try again; `None` makes it dead.
    async fn mark_failed(
        &self,
        id: BillingDeliveryId,
        attempts: u32,
        retry_at: Option<DateTime<Utc>>,
        error: String,
    ) -> Result<(), RepoError>;
    /// The backlog of every subscriber with deliveries not yet accepted.
    async fn backlogs(&self) -> Result<Vec<SubscriberBacklog>, RepoError>;
    /// A page of deliveries, newest first.
    async fn list_entries(
        &self,
        status: Option<DeliveryStatus>,
        page: PageRequest,
    ) -> Result<Page<OutboxEntry>, RepoError>;
    /// Makes a dead delivery pending again, due at `now`.
    async fn retry_entry(
        &self,
        id: BillingDeliveryId,
        now: DateTime<Utc>,
    ) -> Result<RetryOutcome, RepoError>;
}
