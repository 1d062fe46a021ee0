//! Notifications other systems get about billing, delivered through a transactional
//! outbox: written in the same transaction as the change they announce, dispatched later,
//! at least once, each with a stable id receivers deduplicate on.

use chrono::{DateTime, Utc};

use crate::ids::{
    CheckoutSessionRef, InvoiceId, InvoiceRef, NotificationId, SubscriptionId, SubscriptionRef,
    TenantId,
};
use crate::ids::{DisputeId, DisputeRef, PaymentId};
use crate::model::DisputeStatus;
use crate::money::Money;

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationBody {
    /// A payment attempt on an invoice failed.
    InvoicePaymentFailed {
        /// The tenant.
        tenant: TenantId,
        /// Our invoice.
        invoice: InvoiceId,
        /// Its number.
        number: String,
        /// Stripe's invoice, if it is one of Stripe's.
        invoice_ref: Option<InvoiceRef>,
        /// What is owed.
        amount_due: Money,
        /// Which attempt failed (Stripe's `attempt_count`).
        attempt: i64,
    },
    // ---- the lifecycle beyond the seven (issue 14) ----
    /// A payment on a Stripe invoice needs the customer to authenticate it (3-D Secure) on
    /// the hosted invoice page.
    InvoicePaymentActionRequired {
        /// The tenant.
        tenant: TenantId,
        /// Our invoice.
        invoice: InvoiceId,
        /// Its number.
        number: String,
        /// Stripe's invoice.
        invoice_ref: Option<InvoiceRef>,
        /// Where the customer completes the payment.
        hosted_invoice_url: Option<String>,
        /// What is owed.
        amount_due: Money,
        /// Which attempt needs it (Stripe's `attempt_count`).
        attempt: i64,
    },
    /// A subscription's trial ends soon (Stripe tells three days before).
    SubscriptionTrialWillEnd {
        /// The tenant.
        tenant: TenantId,
        /// Our subscription, when it is known.
        subscription: Option<SubscriptionId>,
        /// Stripe's subscription.
        subscription_ref: SubscriptionRef,
        /// When the trial ends.
        trial_end: Option<DateTime<Utc>>,
    },
    /// A checkout's delayed payment (a bank debit) failed.
    CheckoutAsyncPaymentFailed {
        /// The tenant.
        tenant: TenantId,
        /// The Checkout Session.
        session: CheckoutSessionRef,
        /// The subscription it started, if any.
        subscription_ref: Option<SubscriptionRef>,
    },
    // ---- refunds and disputes (issue 14) ----
    /// A customer disputed a payment (an inquiry or a chargeback): once per dispute.
    DisputeCreated {
        /// The tenant.
        tenant: TenantId,
        /// The payment disputed.
        payment: PaymentId,
        /// Our dispute.
        dispute: DisputeId,
        /// Stripe's dispute.
        dispute_ref: DisputeRef,
        /// The amount disputed.
        amount: Money,
        /// Stripe's reason.
        reason: String,
        /// Stripe's status when we learnt of it.
        status: DisputeStatus,
    },
}

impl NotificationBody {
    /// The notification type, as receivers see it.
    #[must_use]
    pub const fn kind(&self) -> &'static str {
        match self {
            Self::InvoicePaymentFailed { .. } => "invoice.payment_failed",
            Self::InvoicePaymentActionRequired { .. } => "invoice.payment_action_required",
            Self::SubscriptionTrialWillEnd { .. } => "subscription.trial_will_end",
            Self::CheckoutAsyncPaymentFailed { .. } => "checkout.async_payment_failed",
            Self::DisputeCreated { .. } => "dispute.created",
        }
    }
}

/// A notification to put in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotification {
    /// Stable id, sent with every delivery attempt.
    pub id: NotificationId,
    /// One fact is notified once: a second notification with the same key is dropped.
    pub dedupe_key: String,
    /// When the fact happened.
    pub occurred_at: DateTime<Utc>,
    /// What happened.
    pub body: NotificationBody,
}
