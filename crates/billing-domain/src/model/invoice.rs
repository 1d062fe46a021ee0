//! Invoices: ours (created by an admin) or mirrored from Stripe's.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use thiserror::Error;

use crate::ids::{InvoiceId, InvoiceRef, PaymentIntentRef, SubscriptionId, TenantId};
use crate::money::{Money, MoneyError};

/// An invoice number such as `inv-001`: 1 to 64 printable ASCII characters without
/// spaces, and never a UUID (so that a path segment names one invoice unambiguously).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InvoiceNumber(String);

/// An invoice number that breaks the rule of [`InvoiceNumber`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invoice number must be 1-64 printable characters without spaces, and not a UUID")]
pub struct InvalidInvoiceNumber;

impl InvoiceNumber {
    /// Validates a number.
    ///
    /// # Errors
    /// [`InvalidInvoiceNumber`] when `s` breaks the rule above.
    pub fn parse(s: &str) -> Result<Self, InvalidInvoiceNumber> {
        let ok = (1..=64).contains(&s.len())
            && s.chars().all(|c| c.is_ascii_graphic() && c != '/')
            && InvoiceId::parse(s).is_err();
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidInvoiceNumber)
        }
    }

    /// The number.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InvoiceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a caller names an invoice: by UUID or by number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvoiceKey {
    /// By id.
    Id(InvoiceId),
    /// By number.
    Number(InvoiceNumber),
}

impl InvoiceKey {
    /// A UUID is an id; anything else must be a valid number.
    ///
    /// # Errors
    /// [`InvalidInvoiceNumber`] when `s` is neither.
    pub fn parse(s: &str) -> Result<Self, InvalidInvoiceNumber> {
        match InvoiceId::parse(s) {
            Ok(id) => Ok(Self::Id(id)),
            Err(_) => InvoiceNumber::parse(s).map(Self::Number),
        }
    }
}

impl fmt::Display for InvoiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => id.fmt(f),
            Self::Number(n) => n.fmt(f),
        }
    }
}

/// An invoice's status.
///
/// Allowed moves: `draft → open | void`; `open → paid | overdue | void | uncollectible`;
/// `overdue → paid | open | void | uncollectible`; `uncollectible → paid | void` (Stripe
/// lets such an invoice still be paid); `paid` and `void` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvoiceStatus {
    /// Not yet finalised.
    Draft,
    /// Awaiting payment.
    Open,
    /// Fully paid.
    Paid,
    /// A payment attempt failed or the due date passed.
    Overdue,
    /// Cancelled; nothing is owed.
    Void,
    /// Written off.
    Uncollectible,
}

impl InvoiceStatus {
    /// Every status, in API order.
    pub const ALL: [Self; 6] = [
        Self::Draft,
        Self::Open,
        Self::Paid,
        Self::Overdue,
        Self::Void,
        Self::Uncollectible,
    ];

    /// The lower-case name used in the API and the database.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Open => "open",
            Self::Paid => "paid",
            Self::Overdue => "overdue",
            Self::Void => "void",
            Self::Uncollectible => "uncollectible",
        }
    }

    /// Parses [`Self::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Whether the status may move to `next`.
    #[must_use]
    pub const fn can_become(self, next: Self) -> bool {
        use InvoiceStatus::{Draft, Open, Overdue, Paid, Uncollectible, Void};
        matches!(
            (self, next),
            (Draft, Open | Void)
                | (Open, Paid | Overdue | Void | Uncollectible)
                | (Overdue, Paid | Open | Void | Uncollectible)
                | (Uncollectible, Paid | Void)
        )
    }

    /// Whether money can be collected on an invoice in this status. A draft is not final
    /// yet, so it cannot be charged either (Stripe refuses to pay a draft invoice too).
    #[must_use]
    pub const fn is_payable(self) -> bool {
        matches!(self, Self::Open | Self::Overdue)
    }
}

/// A stored invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invoice {
    /// Our id.
    pub id: InvoiceId,
    /// Owner.
    pub tenant_id: TenantId,
    /// The subscription it bills, if any.
    pub subscription_id: Option<SubscriptionId>,
    /// Unique number.
    pub number: InvoiceNumber,
    /// Status.
    pub status: InvoiceStatus,
    /// What is owed in total.
    pub amount_due: Money,
    /// What has been paid (same currency as `amount_due`).
    pub amount_paid: Money,
    /// Due date, if any.
    pub due_date: Option<NaiveDate>,
    /// Free text.
    pub description: Option<String>,
    /// When it was paid in full.
    pub paid_at: Option<DateTime<Utc>>,
    /// Stripe's invoice id, for invoices Stripe made.
    pub invoice_ref: Option<InvoiceRef>,
    /// The PaymentIntent collecting it.
    pub payment_intent: Option<PaymentIntentRef>,
    /// `created` of the newest Stripe event applied to it (order guard).
    pub last_event_at: Option<DateTime<Utc>>,
    /// Stripe's hosted invoice page, for invoices Stripe made (once finalised).
    pub hosted_invoice_url: Option<String>,
    /// Stripe's invoice PDF, for invoices Stripe made (once finalised).
    pub invoice_pdf_url: Option<String>,
    /// Stripe canceled `payment_intent` (`payment_intent.canceled`): it is never handed
    /// out again, and the next payment-intent call replaces it.
    pub payment_intent_canceled: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Invoice {
    /// What is still to be paid.
    ///
    /// # Errors
    /// Only if the stored amounts disagree on currency, which the database forbids.
    pub fn amount_remaining(&self) -> Result<Money, MoneyError> {
        self.amount_due.saturating_sub(self.amount_paid)
    }
}

/// Input for creating an invoice (admin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInvoice {
    /// Owner; registered as `pending` when not yet known.
    pub tenant_id: TenantId,
    /// Unique number.
    pub number: InvoiceNumber,
    /// Amount owed; must be above zero.
    pub amount_due: Money,
    /// Due date.
    pub due_date: Option<NaiveDate>,
    /// Free text (at most 1000 characters, Stripe's limit for descriptions).
    pub description: Option<String>,
}

/// The longest description accepted (Stripe's own limit for PaymentIntents).
pub const MAX_DESCRIPTION_LEN: usize = 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paid_and_void_invoices_are_final() {
        for next in InvoiceStatus::ALL {
            assert!(!InvoiceStatus::Paid.can_become(next), "paid -> {next:?}");
            assert!(!InvoiceStatus::Void.can_become(next), "void -> {next:?}");
        }
    }

    #[test]
    fn an_overdue_invoice_can_still_be_paid() {
        assert!(InvoiceStatus::Overdue.can_become(InvoiceStatus::Paid));
        assert!(InvoiceStatus::Open.can_become(InvoiceStatus::Overdue));
        assert!(!InvoiceStatus::Draft.can_become(InvoiceStatus::Paid));
    }

    #[test]
    fn invoice_numbers_cannot_be_uuids_or_hold_spaces() {
        assert!(InvoiceNumber::parse("inv-001").is_ok());
        assert!(InvoiceNumber::parse("ABCD1234-0001").is_ok());
        assert!(InvoiceNumber::parse("inv 001").is_err());
        assert!(InvoiceNumber::parse("a/b").is_err());
        assert!(InvoiceNumber::parse(&InvoiceId::new().to_string()).is_err());
        assert!(InvoiceNumber::parse("").is_err());
    }

    #[test]
    fn only_open_and_overdue_invoices_are_payable() {
        let payable: Vec<_> = InvoiceStatus::ALL
            .into_iter()
            .filter(|s| s.is_payable())
            .collect();

        assert_eq!(payable, [InvoiceStatus::Open, InvoiceStatus::Overdue]);
    }
}
