//! Payments: money Stripe collected, and failed attempts to collect it.

use chrono::{DateTime, Utc};

use crate::ids::{ChargeRef, InvoiceId, PaymentId, PaymentIntentRef, TenantId};
use crate::money::Money;

/// Outcome of a payment attempt. Only Stripe's explicit success or failure is recorded;
/// anything in between stays with Stripe until it settles. A success later becomes
/// refunded or disputed as its refunds and disputes say ([`Payment::settle`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// Money received.
    Succeeded,
    /// Attempt failed.
    Failed,
    // ---- refunds and disputes (issue 14): a collected payment's later states ----
    /// All of it refunded.
    Refunded,
    /// Part of it refunded.
    PartiallyRefunded,
    /// A dispute on it is open.
    Disputed,
    /// A dispute on it was lost.
    DisputeLost,
}

impl PaymentStatus {
    /// Stripe-style snake_case (`succeeded`, `partially_refunded`, …).
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Refunded => "refunded",
            Self::PartiallyRefunded => "partially_refunded",
            Self::Disputed => "disputed",
            Self::DisputeLost => "dispute_lost",
        }
    }

    /// Parses [`Self::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            "refunded" => Some(Self::Refunded),
            "partially_refunded" => Some(Self::PartiallyRefunded),
            "disputed" => Some(Self::Disputed),
            "dispute_lost" => Some(Self::DisputeLost),
            _ => None,
        }
    }
}

/// A recorded payment or failed attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// Our id.
    pub id: PaymentId,
    /// Who paid.
    pub tenant_id: TenantId,
    /// The invoice it paid, when known.
    pub invoice_id: Option<InvoiceId>,
    /// Amount received (or attempted).
    pub amount: Money,
    /// How much of it was refunded (refunds not failed or canceled), same currency.
    pub amount_refunded: Money,
    /// Outcome.
    pub status: PaymentStatus,
    /// Stripe's failure code (`card_declined`, …) for failed attempts.
    pub failure_code: Option<String>,
    /// Stripe's failure message for failed attempts.
    pub failure_message: Option<String>,
    /// The PaymentIntent.
    pub payment_intent: Option<PaymentIntentRef>,
    /// The charge.
    pub charge: Option<ChargeRef>,
    /// When we recorded it.
    pub created_at: DateTime<Utc>,
}
