//! What a use case can answer besides success.
//!
//! One enum for the whole `BillingApi` rather than one per operation: the operations share
//! most outcomes (not found, forbidden, provider down), the HTTP adapter maps each variant
//! to one stable code, and a per-operation enum would repeat those variants a dozen times.

use thiserror::Error;

use crate::ids::{PaymentId, TenantId};
use crate::model::InvoiceStatus;
use crate::ports::{BoxError, ProviderError, RepoError};

/// What a uniqueness rule found taken: the field of a [`RepoError::Conflict`]. The HTTP
/// adapter spells it in its answers; `Display` names it for the logs and the ledger's
/// details (by the resource field's name, as they always have).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictField {
    /// A plan's code.
    PlanCode,
    /// The Stripe price a plan bills.
    StripePrice,
    /// An invoice's number.
    InvoiceNumber,
    /// The Stripe invoice an invoice mirrors.
    StripeInvoice,
    /// The PaymentIntent collecting an invoice, or recorded as a success.
    StripePaymentIntent,
    /// A tenant's Stripe customer.
    StripeCustomer,
    /// The Stripe subscription a subscription mirrors.
    StripeSubscription,
    /// The charge a payment was made with.
    StripeCharge,
    /// The event a payment was recorded from.
    SourceEvent,
    /// A notification's dedupe key.
    DedupeKey,
    /// A Stripe event's id in the ledger.
    EventId,
    /// A row's id, or a rule the adapter does not name.
    Id,
}

impl std::fmt::Display for ConflictField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::PlanCode => "code",
            Self::StripePrice => "stripePriceId",
            Self::InvoiceNumber => "number",
            Self::StripeInvoice => "stripeInvoiceId",
            Self::StripePaymentIntent => "stripePaymentIntentId",
            Self::StripeCustomer => "stripeCustomerId",
            Self::StripeSubscription => "stripeSubscriptionId",
            Self::StripeCharge => "stripeChargeId",
            Self::SourceEvent => "sourceEventId",
            Self::DedupeKey => "dedupeKey",
            Self::EventId => "eventId",
            Self::Id => "id",
        })
    }
}

/// What a foreign key found missing: the field of a [`RepoError::MissingReference`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceField {
    /// The tenant a row belongs to.
    Tenant,
    /// The plan a subscription bills.
    Plan,
    /// The subscription an invoice is for.
    Subscription,
    /// The invoice a payment pays.
    Invoice,
    /// A reference the adapter does not name.
    Other,
}

impl std::fmt::Display for ReferenceField {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tenant => "tenantId",
            Self::Plan => "planId",
            Self::Subscription => "subscriptionId",
            Self::Invoice => "invoiceId",
            Self::Other => "reference",
        })
    }
}

/// The outcome of a refused or failed use case.
#[derive(Debug, Error)]
pub enum BillingError {
    /// The caller may not act for this tenant.
    #[error("not allowed to act for tenant {0}")]
    Forbidden(TenantId),
    /// The token names no tenant and is not an admin's.
    #[error("token names no tenant")]
    NoTenant,
    /// Only `billing:admin` may do this.
    #[error("admin role required")]
    AdminOnly,
    /// No plan with this id or code.
    #[error("no plan {0}")]
    PlanNotFound(String),
    /// The plan is retired.
    #[error("plan {0} is not active")]
    PlanInactive(String),
    /// A plan with this code or price exists.
    #[error("a plan with this {0} already exists")]
    PlanExists(ConflictField),
    /// No such tenant.
    #[error("no tenant {0}")]
    TenantNotFound(TenantId),
    /// The tenant has no subscription.
    #[error("tenant {0} has no subscription")]
    SubscriptionNotFound(TenantId),
    /// The tenant already has a live subscription: manage it in the portal.
    #[error("tenant {0} already has a live subscription")]
    AlreadySubscribed(TenantId),
    /// No such invoice.
    #[error("no invoice {0}")]
    InvoiceNotFound(String),
    /// An invoice with this number exists.
    #[error("an invoice with this number already exists")]
    InvoiceExists,
    /// The invoice cannot be paid in its status.
    #[error("invoice is {}", .0.as_str())]
    InvoiceNotPayable(InvoiceStatus),
    /// Nothing is left to pay.
    #[error("nothing is left to pay on this invoice")]
    NothingToPay,
    /// Stripe made the invoice and has not opened a payment for it; paying it outside
    /// Stripe's invoice could charge twice.
    #[error("Stripe has no payment open for this invoice yet")]
    InvoicePaymentPending,
    /// No such payment (issue 14).
    #[error("no payment {0}")]
    PaymentNotFound(PaymentId),
    /// Stripe knows no event with this id (or it is older than Stripe's 30 days).
    #[error("no event {0} at Stripe")]
    EventNotFound(String),
    /// No tenant has this Stripe customer.
    #[error("unknown customer {0}")]
    CustomerNotFound(String),
    /// Stripe knows no Checkout Session with this id, or it is not one of ours (issue 15).
    #[error("no checkout session {0}")]
    CheckoutSessionNotFound(String),
    /// The Stripe customer belongs to another tenant.
    #[error("customer belongs to another tenant")]
    CustomerOfAnotherTenant,
    /// The portal return URL is not acceptable.
    #[error("invalid returnUrl: {0}")]
    InvalidReturnUrl(&'static str),
    /// No return URL was given and none is configured.
    #[error("returnUrl is required: no PORTAL_RETURN_URL is configured")]
    ReturnUrlRequired,
    // ---- billing events out (issue 16) ----
    /// No billing event delivery with this id.
    #[error("no outbox entry {0}")]
    OutboxEntryNotFound(crate::ids::BillingDeliveryId),
    /// The delivery has attempts left (or was delivered): only a dead one is retried.
    #[error("outbox entry {0} is not dead")]
    OutboxEntryNotDead(crate::ids::BillingDeliveryId),
    /// Input that is well-formed but breaks a business rule.
    #[error("{0}")]
    Invalid(String),
    /// A self-service change or a refund the subscription's or payment's state does not
    /// allow (issue 16).
    #[error("{0}")]
    Refused(Refusal),
    /// No Stripe API key is configured (development mode).
    #[error("Stripe is not configured")]
    ProviderNotConfigured,
    /// Stripe could not be reached, failed, or refused our credentials.
    #[error("Stripe is unavailable")]
    ProviderUnavailable(#[source] BoxError),
    /// Stripe refused the request itself; the message is Stripe's and safe to show.
    #[error("Stripe refused the request: {message}")]
    ProviderRefused {
        /// Stripe's code.
        code: Option<String>,
        /// Stripe's message.
        message: String,
    },
    /// A catch-up pass is already running (here or on another replica).
    #[error("a catch-up pass is already running")]
    CatchupInProgress,
    /// The database could not be reached.
    #[error("database unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else; details go to the log only.
    #[error("unexpected error")]
    Unexpected(#[source] BoxError),
}

impl From<RepoError> for BillingError {
    fn from(e: RepoError) -> Self {
        match e {
            RepoError::Unavailable(src) => Self::Unavailable(src),
            e @ (RepoError::Conflict(_) | RepoError::MissingReference(_)) => {
                Self::Unexpected(Box::new(e))
            }
            RepoError::Unexpected(src) => Self::Unexpected(src),
        }
    }
}

impl From<ProviderError> for BillingError {
    fn from(e: ProviderError) -> Self {
        match e {
            ProviderError::NotConfigured => Self::ProviderNotConfigured,
            ProviderError::Refused { code, message, .. } => Self::ProviderRefused { code, message },
            e @ (ProviderError::Unavailable(_)
            | ProviderError::Misconfigured(_)
            | ProviderError::Unexpected(_)) => Self::ProviderUnavailable(Box::new(e)),
        }
    }
}

/// Why a self-service change or a refund was refused (issue 16): each a 409 with its own
/// stable code.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Refusal {
    /// The tenant has no live subscription to change.
    #[error("tenant {0} has no live subscription")]
    NoLiveSubscription(TenantId),
    /// The tenant's subscription is already canceled.
    #[error("the subscription is already canceled")]
    SubscriptionCanceled,
    /// The subscription already bills the plan asked for.
    #[error("the subscription already bills plan {0}")]
    PlanUnchanged(String),
    /// Neither a cancel at period end to undo nor a pause to end.
    #[error("the subscription is neither paused nor set to cancel at period end")]
    NothingToResume,
    /// More than what is left to refund was asked for.
    #[error("asked to refund {asked} but only {left} is left to refund")]
    RefundExceedsPayment {
        /// The amount asked (minor units).
        asked: i64,
        /// What is left (minor units).
        left: i64,
    },
    /// The payment is not one that can be refunded (a failed attempt, or disputed).
    #[error("a payment in status {} cannot be refunded", .0.as_str())]
    PaymentNotRefundable(crate::model::PaymentStatus),
}
