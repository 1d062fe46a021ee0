//! The payment provider (Stripe), as the use cases see it.

use std::fmt;

use async_trait::async_trait;
use thiserror::Error;

use super::BoxError;
use crate::ids::{
    CheckoutSessionRef, CustomerRef, EventId, InvoiceId, InvoiceRef, PaymentIntentRef, PlanId,
    PriceRef, SubscriptionRef, TenantId,
};
use crate::model::TrialDays;
use crate::money::Money;
use crate::webhook::{CheckoutCompleted, InvoiceSnapshot, SubscriptionSnapshot};

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

/// A Checkout Session as Stripe holds it now (`GET /v1/checkout/sessions/{id}`), for the
/// checkout return (reconciliation, issue 15).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSessionState {
    /// What a `checkout.session.completed` event would carry about it.
    pub session: CheckoutCompleted,
    /// Stripe's `status` as sent: `open`, `complete` or `expired`.
    pub status: String,
    /// Stripe's `payment_status` as sent: `paid`, `unpaid` or `no_payment_required`.
    pub payment_status: Option<String>,
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

/// One event as `GET /v1/events` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedEvent {
    /// Its id.
    pub id: EventId,
    /// Stripe's `created`.
    pub created: chrono::DateTime<chrono::Utc>,
    /// The event object's JSON, as a webhook would carry it.
    pub raw: Vec<u8>,
}

/// One page of `GET /v1/events`: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventPage {
    /// The events, newest first.
    pub events: Vec<ListedEvent>,
    /// Whether older events follow (ask again `starting_after` the last one).
    pub has_more: bool,
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

    // ---- reconciliation (issue 15) ----
    /// Every subscription of a customer, canceled ones included
    /// (`GET /v1/subscriptions?customer=&status=all`, all pages), read as the webhook path
    /// reads one.
    async fn list_subscriptions(
        &self,
        customer: &CustomerRef,
    ) -> Result<Vec<SubscriptionSnapshot>, ProviderError>;

    /// A customer's open invoices (`GET /v1/invoices?customer=&status=open`, all pages).
    async fn list_open_invoices(
        &self,
        customer: &CustomerRef,
    ) -> Result<Vec<InvoiceSnapshot>, ProviderError>;

    /// One invoice as it is now (`GET /v1/invoices/{id}`).
    async fn invoice(&self, id: &InvoiceRef) -> Result<InvoiceSnapshot, ProviderError>;

    /// A Checkout Session as it is now (`GET /v1/checkout/sessions/{id}`). An unknown
    /// session is [`ProviderError::Refused`] with `not_found`.
    async fn checkout_session(
        &self,
        id: &CheckoutSessionRef,
    ) -> Result<CheckoutSessionState, ProviderError>;

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

    /// One page (up to 100, newest first) of the events created at or after
    /// `created_gte` (`GET /v1/events?created[gte]=…&limit=100`), older than
    /// `starting_after` when given: the catch-up's reading of what Stripe sent.
    async fn list_events(
        &self,
        created_gte: chrono::DateTime<chrono::Utc>,
        starting_after: Option<EventId>,
    ) -> Result<EventPage, ProviderError>;

    // ---- self-service changes and refunds (issue 16) ----
    /// Reads a subscription with its first item (`GET /v1/subscriptions/{id}`).
    async fn subscription_state(
        &self,
        id: &SubscriptionRef,
    ) -> Result<SubscriptionState, ProviderError>;
    /// Changes a subscription; answers it as Stripe does after the change.
    async fn update_subscription(
        &self,
        update: &SubscriptionUpdate,
    ) -> Result<SubscriptionSnapshot, ProviderError>;
    /// Cancels a subscription now (`DELETE /v1/subscriptions/{id}`).
    async fn cancel_subscription_now(
        &self,
        id: &SubscriptionRef,
    ) -> Result<SubscriptionSnapshot, ProviderError>;
    /// Resumes a paused subscription (`POST /v1/subscriptions/{id}/resume`).
    async fn resume_subscription(
        &self,
        id: &SubscriptionRef,
        idempotency_key: &str,
    ) -> Result<SubscriptionSnapshot, ProviderError>;
    /// Previews the invoice after a plan change.
    async fn preview_plan_change(
        &self,
        preview: &PlanChangePreview,
    ) -> Result<InvoicePreview, ProviderError>;
    /// Creates a refund (or, with the same key, gets the same one back).
    async fn create_refund(&self, request: &RefundRequest) -> Result<CreatedRefund, ProviderError>;
}

// ---- self-service changes and refunds (issue 16) ----

/// How Stripe bills a plan change within the current period (`proration_behavior`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProrationBehavior {
    /// Proration items wait for the next invoice (Stripe's default).
    #[default]
    CreateProrations,
    /// No proration.
    None,
    /// The proration is invoiced (and charged) at once.
    AlwaysInvoice,
}

impl ProrationBehavior {
    /// Stripe's spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CreateProrations => "create_prorations",
            Self::None => "none",
            Self::AlwaysInvoice => "always_invoice",
        }
    }

    /// Parses Stripe's spelling.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "create_prorations" => Some(Self::CreateProrations),
            "none" => Some(Self::None),
            "always_invoice" => Some(Self::AlwaysInvoice),
            _ => None,
        }
    }
}

/// A subscription as Stripe holds it now, with the id of its (first) item: a plan change
/// replaces that item's price rather than adding a second item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionState {
    /// The subscription, read as the webhook path reads one.
    pub snapshot: SubscriptionSnapshot,
    /// Its first item's id (`si_...`).
    pub item: Option<String>,
}

/// A change of a subscription at Stripe (`POST /v1/subscriptions/{id}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionUpdate {
    /// The subscription.
    pub subscription: SubscriptionRef,
    /// `cancel_at_period_end`, when it changes.
    pub cancel_at_period_end: Option<bool>,
    /// The item whose price changes, and the new price.
    pub price: Option<(String, PriceRef)>,
    /// How a price change is prorated.
    pub proration: Option<ProrationBehavior>,
    /// Deterministic key: the same change sent twice is made once.
    pub idempotency_key: String,
}

/// A plan change to preview (`POST /v1/invoices/create_preview`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanChangePreview {
    /// The customer.
    pub customer: Option<CustomerRef>,
    /// The subscription.
    pub subscription: SubscriptionRef,
    /// The item whose price would change.
    pub item: String,
    /// The new price.
    pub price: PriceRef,
    /// How it would be prorated.
    pub proration: ProrationBehavior,
}

/// One line of a previewed invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviewLine {
    /// Stripe's description of the line.
    pub description: Option<String>,
    /// Amount, minor units (negative for a credit).
    pub amount: i64,
    /// Whether it is a proration.
    pub proration: bool,
    /// The price billed.
    pub price: Option<PriceRef>,
    /// Period start.
    pub period_start: Option<chrono::DateTime<chrono::Utc>>,
    /// Period end.
    pub period_end: Option<chrono::DateTime<chrono::Utc>>,
}

/// An invoice preview: what the next invoice would be after the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoicePreview {
    /// What would be due.
    pub amount_due: Money,
    /// Its lines.
    pub lines: Vec<PreviewLine>,
}

/// Why a refund is made: Stripe's `reason` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefundReason {
    /// Charged twice.
    Duplicate,
    /// A fraudulent charge.
    Fraudulent,
    /// The customer asked.
    RequestedByCustomer,
}

impl RefundReason {
    /// Stripe's spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Duplicate => "duplicate",
            Self::Fraudulent => "fraudulent",
            Self::RequestedByCustomer => "requested_by_customer",
        }
    }

    /// Parses Stripe's spelling.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "duplicate" => Some(Self::Duplicate),
            "fraudulent" => Some(Self::Fraudulent),
            "requested_by_customer" => Some(Self::RequestedByCustomer),
            _ => None,
        }
    }
}

/// A refund to create (`POST /v1/refunds`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    /// The payment refunded (sent as `metadata[paymentId]`).
    pub payment: crate::ids::PaymentId,
    /// The PaymentIntent refunded (preferred), or …
    pub payment_intent: Option<PaymentIntentRef>,
    /// … the charge.
    pub charge: Option<crate::ids::ChargeRef>,
    /// How much.
    pub amount: Money,
    /// Stripe's reason.
    pub reason: Option<RefundReason>,
    /// Deterministic (or the caller's) key: identical concurrent requests make one refund.
    pub idempotency_key: String,
}

/// A refund Stripe created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedRefund {
    /// The refund as Stripe answered it.
    pub snapshot: crate::webhook::RefundSnapshot,
    /// Stripe's `created`.
    pub created: chrono::DateTime<chrono::Utc>,
}
