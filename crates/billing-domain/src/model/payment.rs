//! Payments: money Stripe collected, and failed attempts to collect it.

use chrono::{DateTime, Utc};

use crate::ids::{ChargeRef, InvoiceId, PaymentId, PaymentIntentRef, TenantId};
use crate::money::Money;

/// Outcome of a payment attempt. Only Stripe's explicit success or failure is recorded;
/// anything in between stays with Stripe until it settles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    /// Money received.
    Succeeded,
    /// Attempt failed.
    Failed,
}

impl PaymentStatus {
    /// `succeeded` or `failed`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }

    /// Parses [`Self::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
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
