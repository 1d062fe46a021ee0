//! Provider-neutral payment events: what a verified Stripe webhook means to us.
//!
//! The Stripe adapter turns each event type it understands into one of
//! these; every other type becomes [`PaymentEvent::Ignored`]. Values the domain must judge
//! (tenant ids, currencies, statuses) arrive as the provider sent them, so that the domain
//! can record *why* an event could not be matched instead of the parser failing.

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::ids::{
    ChargeRef, CheckoutSessionRef, CustomerRef, EventId, InvoiceRef, PaymentIntentRef, PriceRef,
    SubscriptionRef,
};
use crate::ids::{DisputeRef, RefundRef};
use crate::model::SubscriptionStatus;
use crate::model::{DisputeStatus, RefundStatus};

/// A verified, parsed provider event.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderEvent {
    /// Stripe's event id: the ledger key.
    pub id: EventId,
    /// Stripe's event type.
    pub kind: String,
    /// Stripe's `created`: the order of events about one object.
    pub created: DateTime<Utc>,
    /// The API version the payload was rendered in.
    pub api_version: Option<String>,
    /// Whether it came from live mode.
    pub livemode: bool,
    /// What it means.
    pub event: PaymentEvent,
}

/// The places a tenant id can be found, in the order the SPEC resolves them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TenantHints {
    /// The object's own `metadata.tenantId`.
    pub metadata: Option<String>,
    /// A checkout session's `client_reference_id`.
    pub client_reference: Option<String>,
    /// The subscription's `metadata.tenantId` (for invoices:
    /// `parent.subscription_details.metadata`).
    pub subscription_metadata: Option<String>,
    /// The Stripe customer, looked up among known tenants last.
    pub customer: Option<CustomerRef>,
}

/// What an event tells us.
#[derive(Debug, Clone, PartialEq)]
pub enum PaymentEvent {
    /// `checkout.session.completed`.
    CheckoutCompleted(CheckoutCompleted),
    /// `invoice.payment_succeeded`.
    InvoicePaid(InvoiceSnapshot),
    /// `invoice.payment_failed`.
    InvoicePaymentFailed(InvoiceSnapshot),
    /// `customer.subscription.updated`.
    SubscriptionUpdated(SubscriptionSnapshot),
    /// `customer.subscription.deleted`.
    SubscriptionDeleted(SubscriptionSnapshot),
    /// `payment_intent.succeeded`.
    PaymentSucceeded(PaymentIntentSnapshot),
    /// `payment_intent.payment_failed`.
    PaymentFailed(PaymentIntentSnapshot),
    // ---- the lifecycle beyond the seven (issue 14, docs/contract.md, The whole lifecycle; not refunds or disputes) ----
    /// `invoice.created`: Stripe's invoice mirrored (usually a draft).
    InvoiceCreated(InvoiceSnapshot),
    /// `invoice.finalized`: numbered and `open`, with its hosted page and PDF.
    InvoiceFinalized(InvoiceSnapshot),
    /// `invoice.updated`: mirrored before payment.
    InvoiceUpdated(InvoiceSnapshot),
    /// `invoice.voided`.
    InvoiceVoided(InvoiceSnapshot),
    /// `invoice.marked_uncollectible`.
    InvoiceMarkedUncollectible(InvoiceSnapshot),
    /// `invoice.payment_action_required`: the customer must authenticate the payment.
    InvoicePaymentActionRequired(InvoiceSnapshot),
    /// `customer.subscription.created`.
    SubscriptionCreated(SubscriptionSnapshot),
    /// `customer.subscription.paused`.
    SubscriptionPaused(SubscriptionSnapshot),
    /// `customer.subscription.resumed`.
    SubscriptionResumed(SubscriptionSnapshot),
    /// `customer.subscription.trial_will_end`.
    SubscriptionTrialWillEnd(SubscriptionSnapshot),
    /// `checkout.session.expired`.
    CheckoutExpired(CheckoutCompleted),
    /// `checkout.session.async_payment_succeeded`.
    CheckoutAsyncPaymentSucceeded(CheckoutCompleted),
    /// `checkout.session.async_payment_failed`.
    CheckoutAsyncPaymentFailed(CheckoutCompleted),
    /// `payment_intent.canceled`.
    PaymentIntentCanceled(PaymentIntentSnapshot),
    /// `customer.deleted`.
    CustomerDeleted(CustomerDeleted),
    // ---- end of the lifecycle block ----
    // ---- refunds and disputes (issue 14) ----
    /// `charge.refunded`: the charge with the refunds it lists.
    ChargeRefunded(ChargeRefunded),
    /// `refund.created`, `refund.updated`, `refund.failed` (and the older
    /// `charge.refund.updated`): the refund as it is now.
    RefundChanged(RefundSnapshot),
    /// `charge.dispute.created`, `.updated`, `.funds_withdrawn`, `.funds_reinstated`,
    /// `.closed`: the dispute as it is now.
    DisputeChanged(DisputeSnapshot),
    /// Any other type: recorded as ignored.
    Ignored,
}

/// A deleted Stripe customer (`customer.deleted`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerDeleted {
    /// The customer.
    pub customer: CustomerRef,
    /// Where its tenant may be named (`metadata.tenantId`, then the customer itself).
    pub tenant: TenantHints,
}

/// A checkout session (completed, expired, or its delayed payment's outcome).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutCompleted {
    /// The session.
    pub session: CheckoutSessionRef,
    /// Where its tenant may be named.
    pub tenant: TenantHints,
    /// `metadata.planId` as sent at checkout (a UUID or a code).
    pub plan: Option<String>,
    /// The customer Checkout used or created.
    pub customer: Option<CustomerRef>,
    /// The subscription Checkout created (subscription mode).
    pub subscription: Option<SubscriptionRef>,
    /// Whether the payment is still on its way (Stripe's `payment_status` `unpaid`: a
    /// delayed method such as a bank debit). Such a checkout does not activate the tenant:
    /// the subscription's own events do, once Stripe reports it active.
    pub awaiting_payment: bool,
}

/// An invoice as the event rendered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceSnapshot {
    /// Stripe's invoice id.
    pub invoice: InvoiceRef,
    /// Stripe's invoice number (null until finalised).
    pub number: Option<String>,
    /// Where its tenant may be named.
    pub tenant: TenantHints,
    /// Our invoice id when the invoice's metadata carries `invoiceId`.
    pub local_invoice: Option<String>,
    /// The subscription it bills.
    pub subscription: Option<SubscriptionRef>,
    /// Total owed, minor units.
    pub amount_due: i64,
    /// Paid so far, minor units.
    pub amount_paid: i64,
    /// Lower-case currency as sent.
    pub currency: String,
    /// When it was paid (`status_transitions.paid_at`).
    pub paid_at: Option<DateTime<Utc>>,
    /// How many payment attempts were made.
    pub attempt_count: i64,
    /// The PaymentIntent paying it, when the payload (older shape or expanded
    /// `payments`) names one.
    pub payment_intent: Option<PaymentIntentRef>,
    /// Due date.
    pub due_date: Option<DateTime<Utc>>,
    /// Stripe's `created` of the invoice.
    pub created: Option<DateTime<Utc>>,
    /// Stripe's status as sent (`draft`, `open`, `paid`, `uncollectible`, `void`).
    pub status: Option<String>,
    /// The hosted invoice page (null until finalised).
    pub hosted_invoice_url: Option<String>,
    /// The invoice PDF (null until finalised).
    pub invoice_pdf_url: Option<String>,
    /// Paid outside Stripe (`paid_out_of_band`, sent by API versions before basil and by
    /// the emulator): no PaymentIntent, no payment row.
    pub paid_out_of_band: bool,
}

/// A subscription as the event rendered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionSnapshot {
    /// Stripe's subscription id.
    pub subscription: SubscriptionRef,
    /// The customer.
    pub customer: Option<CustomerRef>,
    /// Where its tenant may be named (`metadata.tenantId`).
    pub tenant: TenantHints,
    /// Status; `None` when Stripe sent a status this version does not know.
    pub status: Option<SubscriptionStatus>,
    /// The status as sent, for the ledger's detail when unknown.
    pub status_raw: String,
    /// The price of its first item.
    pub price: Option<PriceRef>,
    /// `metadata.planId` as sent at checkout.
    pub plan: Option<String>,
    /// Current period start (items' `current_period_start`, or the older top level).
    pub current_period_start: Option<DateTime<Utc>>,
    /// Current period end.
    pub current_period_end: Option<DateTime<Utc>>,
    /// Ends at period end.
    pub cancel_at_period_end: bool,
    /// When it was canceled.
    pub canceled_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// When its trial ends.
    pub trial_end: Option<DateTime<Utc>>,
}

/// A PaymentIntent as the event rendered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentIntentSnapshot {
    /// Stripe's PaymentIntent id.
    pub payment_intent: PaymentIntentRef,
    /// Amount asked, minor units.
    pub amount: i64,
    /// Amount received, minor units.
    pub amount_received: i64,
    /// Lower-case currency as sent.
    pub currency: String,
    /// The customer.
    pub customer: Option<CustomerRef>,
    /// Where its tenant may be named (`metadata.tenantId`).
    pub tenant: TenantHints,
    /// `metadata.invoiceId`: our invoice (UUID) it pays.
    pub local_invoice: Option<String>,
    /// The latest charge.
    pub charge: Option<ChargeRef>,
    /// `last_payment_error.code` (or `decline_code`) for failures.
    pub failure_code: Option<String>,
    /// `last_payment_error.message` for failures.
    pub failure_message: Option<String>,
}

// ---- refunds and disputes (issue 14) ----

/// A refund as an event rendered it (on its own, or in a charge's `refunds` list).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundSnapshot {
    /// Stripe's refund id.
    pub refund: RefundRef,
    /// The charge refunded.
    pub charge: Option<ChargeRef>,
    /// The PaymentIntent refunded.
    pub payment_intent: Option<PaymentIntentRef>,
    /// Amount, minor units.
    pub amount: i64,
    /// Lower-case currency as sent.
    pub currency: String,
    /// Status; `None` when Stripe sent one this version does not know.
    pub status: Option<RefundStatus>,
    /// The status as sent, for the ledger's detail when unknown.
    pub status_raw: String,
    /// Stripe's reason.
    pub reason: Option<String>,
}

/// A refunded charge (`charge.refunded`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeRefunded {
    /// Stripe's charge id.
    pub charge: ChargeRef,
    /// Its PaymentIntent.
    pub payment_intent: Option<PaymentIntentRef>,
    /// Stripe's `amount_refunded` (for the ledger's detail; the rows decide ours).
    pub amount_refunded: i64,
    /// The refunds the charge lists, each with the charge filled in. Empty when the
    /// payload leaves the list out: the refunds' own events then carry them.
    pub refunds: Vec<RefundSnapshot>,
}

/// A dispute as an event rendered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisputeSnapshot {
    /// Stripe's dispute id.
    pub dispute: DisputeRef,
    /// The charge disputed.
    pub charge: Option<ChargeRef>,
    /// The PaymentIntent disputed.
    pub payment_intent: Option<PaymentIntentRef>,
    /// Amount, minor units.
    pub amount: i64,
    /// Lower-case currency as sent.
    pub currency: String,
    /// Stripe's reason (`fraudulent`, `general`, …).
    pub reason: String,
    /// Status; `None` when Stripe sent one this version does not know.
    pub status: Option<DisputeStatus>,
    /// The status as sent, for the ledger's detail when unknown.
    pub status_raw: String,
}

/// Why a webhook was refused before anything was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SignatureError {
    /// No `Stripe-Signature` header.
    #[error("missing Stripe-Signature header")]
    MissingHeader,
    /// The header has no usable `t=`.
    #[error("malformed Stripe-Signature header")]
    MalformedHeader,
    /// The header has no `v1=` signature.
    #[error("no v1 signature in Stripe-Signature header")]
    NoV1Signature,
    /// No `v1` matched any configured secret.
    #[error("no signature matches the payload")]
    Mismatch,
    /// `t` is further from now than the tolerance.
    #[error("signature timestamp outside the tolerance")]
    OutsideTolerance,
}

impl SignatureError {
    /// A stable reason for metrics and logs.
    #[must_use]
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::MissingHeader => "missing_header",
            Self::MalformedHeader => "malformed_header",
            Self::NoV1Signature => "no_v1",
            Self::Mismatch => "mismatch",
            Self::OutsideTolerance => "outside_tolerance",
        }
    }
}

/// A verified body that is not a Stripe event we can read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid event payload: {0}")]
pub struct InvalidPayload(pub String);
