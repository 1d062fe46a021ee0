//! The webhook path's ports: reading a delivery, and the one transaction an event is
//! applied in.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[cfg(doc)]
use super::PaymentIntentLookups;
use super::RepoError;
use crate::ids::{ChargeRef, PaymentId};
use crate::ids::{
    CheckoutSessionRef, CustomerRef, EventId, InvoiceId, InvoiceRef, PaymentIntentRef, PriceRef,
    SubscriptionId, SubscriptionRef, TenantId,
};
use crate::model::{Dispute, Refund};
use crate::model::{EventOutcome, Invoice, Payment, Plan, PlanKey, Subscription, Tenant};
use crate::notification::NewNotification;
use crate::webhook::{InvalidPayload, ProviderEvent, SignatureError};

/// Verifies and reads webhook deliveries.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait WebhookVerifier: Send + Sync {
    /// Checks the signature header against the raw body at time `now`.
    ///
    /// # Errors
    /// The [`SignatureError`] naming what was wrong.
    #[allow(
        clippy::needless_lifetimes,
        reason = "mockall cannot mock an elided lifetime inside Option<&str>"
    )]
    fn verify<'a>(
        &self,
        payload: &[u8],
        signature: Option<&'a str>,
        now: DateTime<Utc>,
    ) -> Result<(), SignatureError>;

    /// Reads a verified body.
    ///
    /// # Errors
    /// [`InvalidPayload`] when the body is not an event.
    fn parse(&self, payload: &[u8]) -> Result<ProviderEvent, InvalidPayload>;
}

/// A ledger row to insert when an event arrives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLedgerEntry {
    /// Stripe's event id.
    pub event_id: EventId,
    /// Stripe's type.
    pub kind: String,
    /// Stripe's `created`.
    pub created: DateTime<Utc>,
    /// Rendering API version.
    pub api_version: Option<String>,
    /// Live mode.
    pub livemode: bool,
    /// When we received it.
    pub received_at: DateTime<Utc>,
    /// The outcome expected when nothing goes differently (saves a write on the common
    /// path; [`WebhookTx::set_event_outcome`] corrects it).
    pub outcome: EventOutcome,
    /// The raw body.
    pub payload: std::sync::Arc<str>,
    /// How it arrived (kept from the first arrival: a later one finds the row).
    pub source: crate::model::EventSource,
}

/// What one webhook transaction decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The outcome recorded.
    pub outcome: EventOutcome,
    /// Why, for anything but `processed`.
    pub detail: Option<String>,
}

/// The reads and writes one event may make, all inside one database transaction. Reads
/// named `lock_*` take a row lock held until the transaction ends, so that two events
/// about one object are applied one after the other.
///
/// Methods are synchronous: the transaction runs on a blocking thread and never spans an
/// `.await`.
///
/// # Errors
/// Every method returns [`RepoError::Unavailable`] when the connection is lost; the
/// transaction is then rolled back whole.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait WebhookTx {
    /// Inserts the ledger row unless the event is already there; `false` for a duplicate.
    /// A concurrent insert of the same id waits for the other transaction and then
    /// reports a duplicate (or inserts, if the other rolled back).
    fn insert_event(&mut self, entry: &NewLedgerEntry) -> Result<bool, RepoError>;
    /// The stored outcome of an event, locking its row (for replays).
    fn lock_event(&mut self, id: &EventId) -> Result<Option<EventOutcome>, RepoError>;
    /// Records the outcome and when it was decided.
    fn set_event_outcome(
        &mut self,
        id: &EventId,
        applied: &Applied,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError>;
    /// The tenant, registering it as `pending` when unknown.
    fn ensure_tenant(&mut self, id: TenantId) -> Result<Tenant, RepoError>;
    /// The tenant, locked: its status and customer are decided by one event at a time.
    fn lock_tenant(&mut self, id: TenantId) -> Result<Option<Tenant>, RepoError>;
    /// The tenant of a Stripe customer.
    fn tenant_by_customer(&mut self, customer: &CustomerRef) -> Result<Option<Tenant>, RepoError>;
    /// Stores a tenant's status and customer.
    fn save_tenant(&mut self, tenant: &Tenant) -> Result<(), RepoError>;
    /// Remembers that a Stripe customer was deleted (nothing when already remembered).
    fn record_customer_deleted(
        &mut self,
        customer: &CustomerRef,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError>;
    /// Whether a Stripe customer was deleted: it is never recorded on a tenant again.
    fn customer_was_deleted(&mut self, customer: &CustomerRef) -> Result<bool, RepoError>;
    /// A plan by id or code.
    fn plan(&mut self, key: &PlanKey) -> Result<Option<Plan>, RepoError>;
    /// The plan billed by a Stripe price.
    fn plan_by_price(&mut self, price: &PriceRef) -> Result<Option<Plan>, RepoError>;
    /// A subscription by Stripe id, locked.
    fn lock_subscription(
        &mut self,
        subscription: &SubscriptionRef,
    ) -> Result<Option<Subscription>, RepoError>;
    /// Inserts or updates a subscription (by id).
    fn save_subscription(&mut self, subscription: &Subscription) -> Result<(), RepoError>;
    /// Records that a Checkout Session was completed (nothing when it is unknown).
    fn complete_checkout_session(
        &mut self,
        session: &CheckoutSessionRef,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError>;
    /// Closes a Checkout Session as expired if it is recorded and still open; `false`
    /// when it was not (unknown, or already complete or expired).
    fn expire_checkout_session(
        &mut self,
        session: &CheckoutSessionRef,
        at: DateTime<Utc>,
    ) -> Result<bool, RepoError>;
    /// Whether the tenant has a live subscription other than `except`.
    fn has_other_live_subscription(
        &mut self,
        tenant: TenantId,
        except: SubscriptionId,
    ) -> Result<bool, RepoError>;
    /// An invoice by Stripe id, locked.
    fn lock_invoice_by_ref(&mut self, invoice: &InvoiceRef) -> Result<Option<Invoice>, RepoError>;
    /// An invoice by our id, locked.
    fn lock_invoice(&mut self, id: InvoiceId) -> Result<Option<Invoice>, RepoError>;
    /// The invoice a PaymentIntent collects, locked. Also serialises this transaction with
    /// [`PaymentIntentLookups::complete`] for the same PaymentIntent, until it ends: a
    /// payment recorded without an invoice here is then always seen by the lookup that
    /// links it.
    fn lock_invoice_by_payment_intent(
        &mut self,
        payment_intent: &PaymentIntentRef,
    ) -> Result<Option<Invoice>, RepoError>;
    /// Inserts or updates an invoice (by id).
    ///
    /// # Errors
    /// [`RepoError::Conflict`] when its number or a Stripe id belongs to another invoice.
    fn save_invoice(&mut self, invoice: &Invoice) -> Result<(), RepoError>;
    /// Records a payment unless one for the same source event — or, for a success, the
    /// same PaymentIntent — exists; `false` when it already did.
    fn insert_payment(&mut self, payment: &Payment, source: &EventId) -> Result<bool, RepoError>;
    /// Puts a notification in the outbox unless its dedupe key is there; `false` if so.
    fn enqueue_notification(&mut self, notification: &NewNotification) -> Result<bool, RepoError>;
    /// Asks for the PaymentIntent of a paid Stripe invoice to be looked up at Stripe once
    /// this transaction has committed ([`PaymentIntentLookups`]), due at `at`. Nothing
    /// changes when the invoice has a PaymentIntent or a lookup is already pending.
    fn request_payment_intent_lookup(
        &mut self,
        invoice: InvoiceId,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError>;

    // ---- refunds and disputes (issue 14) ----
    // A refund's or a dispute's events first lock its payment, so that every change to a
    // payment's refunds and disputes (and so to its status) is made one at a time.

    /// The collected (not failed) payment made with a charge, locked.
    fn lock_payment_by_charge(&mut self, charge: &ChargeRef) -> Result<Option<Payment>, RepoError>;
    /// The collected (not failed) payment of a PaymentIntent, locked.
    fn lock_payment_by_payment_intent(
        &mut self,
        payment_intent: &PaymentIntentRef,
    ) -> Result<Option<Payment>, RepoError>;
    /// Stores a payment's refunded amount and status.
    fn save_payment_state(&mut self, payment: &Payment) -> Result<(), RepoError>;
    /// A payment's refunds, oldest first.
    fn refunds_of(&mut self, payment: PaymentId) -> Result<Vec<Refund>, RepoError>;
    /// Inserts or updates a refund (by id; its Stripe id is unique).
    fn save_refund(&mut self, refund: &Refund) -> Result<(), RepoError>;
    /// A payment's disputes, oldest first.
    fn disputes_of(&mut self, payment: PaymentId) -> Result<Vec<Dispute>, RepoError>;
    /// Inserts or updates a dispute (by id; its Stripe id is unique).
    fn save_dispute(&mut self, dispute: &Dispute) -> Result<(), RepoError>;

    // ---- billing events out (issue 16) ----

    /// Appends a billing event to the outbox: takes the tenant's next sequence number
    /// (locking its counter row until the transaction ends, so that sequences have no
    /// gaps and commit in order) and queues one delivery per configured subscriber.
    /// Returns the sequence. Called by [`crate::events_out::emit::EmittingStore`] once the
    /// work has decided; rules need not call it.
    fn append_billing_event(
        &mut self,
        event: &crate::events_out::NewBillingEvent,
    ) -> Result<u64, RepoError>;
}

/// What one unit of work came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkOutcome {
    /// The event was decided: commit.
    Applied(Applied),
    /// The event is about a subscription whose newest applied event has the same
    /// `created` second, so their order is unknown: roll back. The service settles the
    /// tie with Stripe's current state of the subscription, in a second unit of work.
    SameSecondTie(SubscriptionRef),
}

impl From<Applied> for WorkOutcome {
    fn from(applied: Applied) -> Self {
        Self::Applied(applied)
    }
}

/// The unit of work a webhook event is applied in.
pub type WebhookWork =
    Box<dyn Fn(&mut dyn WebhookTx) -> Result<WorkOutcome, RepoError> + Send + Sync>;

/// Runs webhook work atomically.
///
/// # Errors
/// MUST commit everything `work` did or nothing: on any error the transaction is rolled
/// back and the error returned ([`RepoError::Unavailable`] for connection loss, so that
/// Stripe is asked to redeliver). On [`WorkOutcome::SameSecondTie`] the transaction is
/// rolled back too, and the tie returned as `Ok`. The adapter MAY run `work` again after
/// a deadlock or a serialization failure; `work` is written to be re-run.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Runs `work` in one transaction and commits it, unless it is a same-second tie.
    async fn apply(&self, work: WebhookWork) -> Result<WorkOutcome, RepoError>;
}
