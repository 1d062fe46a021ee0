//! Notifications other systems get about billing, delivered through a transactional
//! outbox: written in the same transaction as the change they announce, dispatched later,
//! at least once, each with a stable id receivers deduplicate on.

use chrono::{DateTime, Utc};

use crate::ids::{DisputeId, DisputeRef, PaymentId};
use crate::ids::{InvoiceId, InvoiceRef, NotificationId, TenantId};
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
