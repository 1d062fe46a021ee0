//! Ports: what the domain needs from the outside world, as traits named by role.
//!
//! Adapters implement them (`billing-postgres`, `billing-stripe`); tests use the mockall
//! mocks generated here (`MockTenantRepository`, …), which other crates reach through the
//! `mocks` feature.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::ids::{
    CheckoutSessionRef, CustomerRef, EventId, InvoiceId, InvoiceRef, PaymentIntentRef, PlanId,
    PriceRef, SubscriptionId, SubscriptionRef, TenantId,
};
use crate::model::{
    EventOutcome, Invoice, InvoiceKey, InvoiceStatus, LedgerEntry, LedgerQuery, NewInvoice,
    NewPlan, Payment, Plan, PlanKey, PlanPatch, Subscription, Tenant, TrialDays,
};
use crate::money::Money;
use crate::notification::NewNotification;
use crate::page::{Page, PageRequest};
use crate::webhook::{InvalidPayload, ProviderEvent, SignatureError, SubscriptionSnapshot};

/// Any error, boxed, for the catch-all variants.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How a repository call failed.
#[derive(Debug, Error)]
pub enum RepoError {
    /// A uniqueness rule was broken; the string names the field (`code`, `number`, …).
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A referenced row does not exist (foreign key).
    #[error("referenced {0} does not exist")]
    MissingReference(&'static str),
    /// The database could not be reached or timed out: retryable.
    #[error("database unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else.
    #[error("unexpected database error")]
    Unexpected(#[source] BoxError),
}

/// Tenants.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TenantRepository: Send + Sync {
    /// The tenant, if known.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn get(&self, id: TenantId) -> Result<Option<Tenant>, RepoError>;

    /// The tenant, registering it as `pending` first when unknown. Idempotent and safe
    /// under concurrency.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn ensure(&self, id: TenantId) -> Result<Tenant, RepoError>;

    /// The tenant whose Stripe customer is `customer`.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn find_by_customer(&self, customer: &CustomerRef) -> Result<Option<Tenant>, RepoError>;
}

/// Plans.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PlanRepository: Send + Sync {
    /// All plans, by code; only active ones unless `include_inactive`.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn list(&self, include_inactive: bool) -> Result<Vec<Plan>, RepoError>;

    /// A plan by id or code.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn get(&self, key: &PlanKey) -> Result<Option<Plan>, RepoError>;

    /// The plan billed by a Stripe price.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn find_by_price(&self, price: &PriceRef) -> Result<Option<Plan>, RepoError>;

    /// Stores a new plan.
    ///
    /// # Errors
    /// [`RepoError::Conflict`] naming `code` or `stripePriceId` when either is taken.
    async fn create(&self, plan: NewPlan) -> Result<Plan, RepoError>;

    /// Applies a patch; `None` when the plan does not exist.
    ///
    /// # Errors
    /// [`RepoError::Conflict`] naming `stripePriceId` when the new price is taken.
    async fn update(&self, id: PlanId, patch: PlanPatch) -> Result<Option<Plan>, RepoError>;
}

/// Subscriptions.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SubscriptionRepository: Send + Sync {
    /// The tenant's current subscription: its newest live one, else its newest
    /// `incomplete` one (a first payment on its way), else its newest one.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn current_for_tenant(&self, tenant: TenantId)
        -> Result<Option<Subscription>, RepoError>;
}

/// Filters for listing invoices.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvoiceQuery {
    /// Only this tenant's.
    pub tenant: Option<TenantId>,
    /// Only this status.
    pub status: Option<InvoiceStatus>,
}

/// Invoices.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait InvoiceRepository: Send + Sync {
    /// Stores a new invoice in status `open`, registering its tenant as `pending` when
    /// unknown (in the same transaction).
    ///
    /// # Errors
    /// [`RepoError::Conflict`] naming `number` when the number is taken.
    async fn create(&self, invoice: NewInvoice) -> Result<Invoice, RepoError>;

    /// An invoice by id or number.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn get(&self, key: &InvoiceKey) -> Result<Option<Invoice>, RepoError>;

    /// A page of invoices, newest first.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn list(
        &self,
        query: InvoiceQuery,
        page: PageRequest,
    ) -> Result<Page<Invoice>, RepoError>;

    /// Records the PaymentIntent collecting the invoice unless one is already recorded;
    /// returns the invoice as stored afterwards (whose `payment_intent` is the winner when
    /// two callers race).
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn attach_payment_intent(
        &self,
        id: InvoiceId,
        payment_intent: &PaymentIntentRef,
        replace: Option<PaymentIntentRef>,
    ) -> Result<Option<Invoice>, RepoError>;
}

/// Filters for listing payments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PaymentQuery {
    /// Only this tenant's.
    pub tenant: Option<TenantId>,
    /// Only this invoice's.
    pub invoice: Option<InvoiceId>,
}

/// Payments.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PaymentRepository: Send + Sync {
    /// A page of payments, newest first.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn list(
        &self,
        query: PaymentQuery,
        page: PageRequest,
    ) -> Result<Page<Payment>, RepoError>;
}

/// The webhook event ledger, read side.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LedgerRepository: Send + Sync {
    /// A page of ledger rows, newest received first.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn list(
        &self,
        query: LedgerQuery,
        page: PageRequest,
    ) -> Result<Page<LedgerEntry>, RepoError>;

    /// One ledger row.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn get(&self, id: &EventId) -> Result<Option<LedgerEntry>, RepoError>;
}

/// Liveness of the storage, for `/health/ready`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait HealthCheck: Send + Sync {
    /// Runs a trivial query.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database does not answer.
    async fn ping(&self) -> Result<(), RepoError>;
}

/// The time. A port so that tests control it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A browser-facing secret (a PaymentIntent's client secret). Its `Debug` is redacted
/// so that it never reaches a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// Wraps a secret.
    #[must_use]
    pub fn new(s: String) -> Self {
        Self(s)
    }

    /// The secret, for the one response that carries it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(***)")
    }
}

/// A Checkout Session to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutRequest {
    /// Who subscribes.
    pub tenant: TenantId,
    /// What they subscribe to.
    pub plan: PlanId,
    /// The Stripe price of the plan.
    pub price: PriceRef,
    /// The customer to reuse, if any (otherwise Checkout creates one).
    pub customer: Option<CustomerRef>,
    /// Trial, if the plan has one.
    pub trial_days: Option<TrialDays>,
    /// Key that makes a retried request the same request at Stripe.
    pub idempotency_key: String,
}

/// A created Checkout Session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    /// Its id.
    pub id: CheckoutSessionRef,
    /// The hosted page to redirect to.
    pub url: String,
}

/// How a Checkout Session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// Nobody can complete it any more.
    Expired,
    /// The customer completed it: a subscription exists or is on its way.
    Completed,
}

impl SessionEnd {
    /// The stored name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "expired",
            Self::Completed => "complete",
        }
    }
}

/// The Checkout Sessions the service opened, so that a tenant never has two it could both
/// complete (each would start a subscription, and Stripe would bill both).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CheckoutSessionRepository: Send + Sync {
    /// Records a session just opened for `tenant` and returns the tenant's other sessions
    /// still recorded as open, oldest first. Serialised per tenant: of two sessions
    /// recorded at once, the one recorded second always sees the first, and the first
    /// never sees the second.
    async fn record_open(
        &self,
        tenant: TenantId,
        session: &CheckoutSessionRef,
        at: DateTime<Utc>,
    ) -> Result<Vec<CheckoutSessionRef>, RepoError>;
    /// Records how a session ended.
    async fn close(
        &self,
        session: &CheckoutSessionRef,
        end: SessionEnd,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError>;
}

/// A PaymentIntent to create for an invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentIntentRequest {
    /// The invoice it pays.
    pub invoice: InvoiceId,
    /// Its owner.
    pub tenant: TenantId,
    /// What is still due.
    pub amount: Money,
    /// The tenant's customer, when known.
    pub customer: Option<CustomerRef>,
    /// Deterministic key: concurrent or retried calls for the same invoice and amount
    /// get the same PaymentIntent back from Stripe.
    pub idempotency_key: String,
}

/// Where a PaymentIntent stands, as far as reusing it goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntentState {
    /// Waiting for the customer (`requires_payment_method`, `requires_confirmation`,
    /// `requires_action`): its client secret can be handed out again.
    AwaitingPayment,
    /// Being processed or captured: handing it out again is fine, paying twice is not
    /// possible through it.
    Processing,
    /// Paid.
    Succeeded,
    /// Canceled: a new one is needed.
    Canceled,
}

/// A PaymentIntent as far as the domain cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentIntentInfo {
    /// Its id.
    pub id: PaymentIntentRef,
    /// Its client secret.
    pub client_secret: ClientSecret,
    /// State.
    pub state: IntentState,
    /// Amount it charges.
    pub amount: Money,
}

/// How a call to the payment provider failed.
#[derive(Debug, Error)]
pub enum ProviderError {
    /// No API key is configured (development mode).
    #[error("payment provider is not configured")]
    NotConfigured,
    /// Unreachable, timing out, rate limiting or failing on its side after our retries.
    #[error("payment provider unavailable")]
    Unavailable(#[source] BoxError),
    /// Our credentials were refused (401/403): an operator must fix the configuration.
    #[error("payment provider refused our credentials")]
    Misconfigured(#[source] BoxError),
    /// The provider refused this request (400/402/404): the message is safe to show.
    #[error("payment provider refused the request: {message}")]
    Refused {
        /// Provider's machine code (`resource_missing`, `card_declined`, …).
        code: Option<String>,
        /// Offending parameter.
        param: Option<String>,
        /// Provider's message, safe for the caller.
        message: String,
        /// Whether the object named did not exist (404 or `resource_missing`).
        not_found: bool,
    },
    /// The provider answered something we cannot read.
    #[error("unexpected answer from payment provider")]
    Unexpected(#[source] BoxError),
}

/// The payment processor (Stripe).
///
/// # Errors
/// Every method MUST return [`ProviderError::Unavailable`] for network errors, timeouts,
/// 429 and 5xx once its own retries are exhausted (so callers answer 502), and
/// [`ProviderError::Refused`] when the provider rejected the request itself.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait PaymentProvider: Send + Sync {
    /// Creates a subscription-mode Checkout Session.
    async fn create_checkout_session(
        &self,
        request: &CheckoutRequest,
    ) -> Result<CheckoutSession, ProviderError>;

    /// Expires a Checkout Session so that nobody can complete it any more; tells how it
    /// ended: [`SessionEnd::Completed`] when it had been completed before (it cannot be
    /// expired then), [`SessionEnd::Expired`] otherwise (also when it had expired on its
    /// own or the provider no longer knows it).
    async fn expire_checkout_session(
        &self,
        session: &CheckoutSessionRef,
    ) -> Result<SessionEnd, ProviderError>;

    /// Creates a Customer Portal session; returns its URL.
    async fn create_portal_session(
        &self,
        customer: &CustomerRef,
        return_url: &str,
    ) -> Result<String, ProviderError>;

    /// Creates (or, with the same idempotency key, gets back) a PaymentIntent.
    async fn create_payment_intent(
        &self,
        request: &PaymentIntentRequest,
    ) -> Result<PaymentIntentInfo, ProviderError>;

    /// Reads a PaymentIntent.
    async fn payment_intent(
        &self,
        id: &PaymentIntentRef,
    ) -> Result<PaymentIntentInfo, ProviderError>;

    /// The PaymentIntent Stripe made for one of its invoices (`expand[]=payments`), if any.
    /// `budget` caps the whole call (retries included) below the adapter's own deadline,
    /// for a best-effort lookup that must not hold up what waits for it.
    async fn invoice_payment_intent(
        &self,
        invoice: &InvoiceRef,
        budget: Option<std::time::Duration>,
    ) -> Result<Option<PaymentIntentRef>, ProviderError>;

    /// Fetches an event again (`GET /v1/events/{id}`), for replay; returns its raw JSON.
    async fn fetch_event(&self, id: &EventId) -> Result<Vec<u8>, ProviderError>;

    /// Reads a subscription as it is now (`GET /v1/subscriptions/{id}`), to settle two
    /// events about it created in the same second.
    async fn subscription(
        &self,
        id: &SubscriptionRef,
    ) -> Result<SubscriptionSnapshot, ProviderError>;
}

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
}

/// The unit of work a webhook event is applied in.
pub type WebhookWork = Box<dyn Fn(&mut dyn WebhookTx) -> Result<Applied, RepoError> + Send + Sync>;

/// Runs webhook work atomically.
///
/// # Errors
/// MUST commit everything `work` did or nothing: on any error the transaction is rolled
/// back and the error returned ([`RepoError::Unavailable`] for connection loss, so that
/// Stripe is asked to redeliver). The adapter MAY run `work` again after a deadlock or a
/// serialization failure; `work` is written to be re-run.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait WebhookStore: Send + Sync {
    /// Runs `work` in one transaction and commits it.
    async fn apply(&self, work: WebhookWork) -> Result<Applied, RepoError>;
}

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
/// worked off by [`crate::linker::PaymentIntentLinker`] outside the webhook's request, so
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

/// How a delivery went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// The receiver accepted it.
    Sent,
    /// No receiver is configured: it was written to the log.
    Logged,
}

/// A delivery that did not go through.
#[derive(Debug, Error)]
pub enum NotifyError {
    /// Network error, timeout, 429 or 5xx: try again later.
    #[error("notification delivery failed, will retry: {0}")]
    Retryable(String),
    /// The receiver refused the message (4xx): retrying will not help.
    #[error("notification refused: {0}")]
    Rejected(String),
}

/// Delivers notifications to whoever listens (SPEC: `NOTIFICATIONS_URL`).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Delivers one message. Deliveries are at least once: the same id may arrive twice.
    ///
    /// # Errors
    /// [`NotifyError::Retryable`] for failures worth retrying, [`NotifyError::Rejected`]
    /// for a refusal.
    async fn deliver(&self, message: &OutboxMessage) -> Result<Delivered, NotifyError>;
}
