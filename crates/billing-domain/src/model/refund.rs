//! Refunds and disputes of a payment (docs/contract.md, The whole lifecycle), with the statuses Stripe gives them and
//! the moves between those statuses this service accepts; and what they make of the
//! payment: its refunded amount and its status.

use chrono::{DateTime, Utc};

use super::payment::{Payment, PaymentStatus};
use crate::ids::{DisputeId, DisputeRef, PaymentId, RefundId, RefundRef};
use crate::money::{Money, MoneyError};

/// Stripe's refund statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefundStatus {
    /// On its way to the customer.
    Pending,
    /// The customer must act (some payment methods).
    RequiresAction,
    /// Sent to the customer.
    Succeeded,
    /// Failed: the money stays with us.
    Failed,
    /// Canceled before it went out.
    Canceled,
}

impl RefundStatus {
    /// Stripe's spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::RequiresAction => "requires_action",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Canceled => "canceled",
        }
    }

    /// Parses [`Self::as_str`]'s output; `None` for a status this version does not know.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "requires_action" => Some(Self::RequiresAction),
            "succeeded" => Some(Self::Succeeded),
            "failed" => Some(Self::Failed),
            "canceled" => Some(Self::Canceled),
            _ => None,
        }
    }

    /// Whether the refunded money counts as gone (every status but failed and canceled).
    #[must_use]
    pub const fn counts(self) -> bool {
        !matches!(self, Self::Failed | Self::Canceled)
    }

    /// Whether a refund in this status may move to `next`. Failed and canceled are final;
    /// a succeeded refund can still fail (the customer's bank returns it), nothing else.
    /// Staying put is always allowed. This settles two events of one second: whichever
    /// arrives last, the later state wins.
    #[must_use]
    pub const fn can_become(self, next: Self) -> bool {
        match (self, next) {
            _ if self as u8 == next as u8 => true,
            (Self::Pending | Self::RequiresAction, _) => true,
            (Self::Succeeded, Self::Failed) => true,
            _ => false,
        }
    }
}

/// A refund of a payment, one per Stripe refund.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refund {
    /// Our id.
    pub id: RefundId,
    /// The payment refunded.
    pub payment_id: PaymentId,
    /// How much.
    pub amount: Money,
    /// Stripe's status.
    pub status: RefundStatus,
    /// Stripe's reason (`duplicate`, `fraudulent`, `requested_by_customer`, …).
    pub reason: Option<String>,
    /// Stripe's refund id.
    pub refund_ref: RefundRef,
    /// `created` of the newest Stripe event applied to it: the order guard.
    pub last_event_at: DateTime<Utc>,
    /// When we first recorded it.
    pub created_at: DateTime<Utc>,
    /// When we last changed it.
    pub updated_at: DateTime<Utc>,
}

/// Stripe's dispute statuses: `warning_*` for an inquiry, the others for a chargeback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DisputeStatus {
    /// An inquiry waiting for our answer.
    WarningNeedsResponse,
    /// An inquiry being reviewed.
    WarningUnderReview,
    /// An inquiry closed without a chargeback.
    WarningClosed,
    /// A chargeback waiting for evidence.
    NeedsResponse,
    /// A chargeback being reviewed.
    UnderReview,
    /// Decided for us: the money comes back.
    Won,
    /// Decided for the customer: the money is gone.
    Lost,
    /// Prevented before it became a chargeback.
    Prevented,
}

impl DisputeStatus {
    /// Stripe's spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::WarningNeedsResponse => "warning_needs_response",
            Self::WarningUnderReview => "warning_under_review",
            Self::WarningClosed => "warning_closed",
            Self::NeedsResponse => "needs_response",
            Self::UnderReview => "under_review",
            Self::Won => "won",
            Self::Lost => "lost",
            Self::Prevented => "prevented",
        }
    }

    /// Parses [`Self::as_str`]'s output; `None` for a status this version does not know.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "warning_needs_response" => Some(Self::WarningNeedsResponse),
            "warning_under_review" => Some(Self::WarningUnderReview),
            "warning_closed" => Some(Self::WarningClosed),
            "needs_response" => Some(Self::NeedsResponse),
            "under_review" => Some(Self::UnderReview),
            "won" => Some(Self::Won),
            "lost" => Some(Self::Lost),
            "prevented" => Some(Self::Prevented),
            _ => None,
        }
    }

    /// Whether the dispute is decided (`warning_closed`, `won`, `lost`, `prevented`).
    #[must_use]
    pub const fn is_closed(self) -> bool {
        matches!(
            self,
            Self::WarningClosed | Self::Won | Self::Lost | Self::Prevented
        )
    }

    /// Whether a dispute in this status may move to `next`: an open one anywhere (an
    /// inquiry can become a chargeback, evidence can be asked for again), a decided one
    /// nowhere. Staying put is always allowed.
    #[must_use]
    pub const fn can_become(self, next: Self) -> bool {
        self as u8 == next as u8 || !self.is_closed()
    }
}

/// A dispute on a payment, one per Stripe dispute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispute {
    /// Our id.
    pub id: DisputeId,
    /// The payment disputed.
    pub payment_id: PaymentId,
    /// The amount disputed.
    pub amount: Money,
    /// Stripe's reason (`fraudulent`, `general`, …).
    pub reason: String,
    /// Stripe's status.
    pub status: DisputeStatus,
    /// Stripe's dispute id.
    pub dispute_ref: DisputeRef,
    /// `created` of the newest Stripe event applied to it: the order guard.
    pub last_event_at: DateTime<Utc>,
    /// When we first recorded it.
    pub created_at: DateTime<Utc>,
    /// When we last changed it.
    pub updated_at: DateTime<Utc>,
}

/// A payment with its refunds and disputes, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentDetail {
    /// The payment.
    pub payment: Payment,
    /// Its refunds.
    pub refunds: Vec<Refund>,
    /// Its disputes.
    pub disputes: Vec<Dispute>,
}

impl Payment {
    /// Derives the refunded amount and the status of a collected payment from all its
    /// refunds and disputes, so that the same rows give the same payment whatever order
    /// their events came in: `amount_refunded` is the sum of the refunds that count (not
    /// failed or canceled); the status is `dispute_lost` when a dispute was lost,
    /// `disputed` while one is open, else `refunded` when all of it was refunded,
    /// `partially_refunded` when some, `succeeded` otherwise. A failed attempt stays as
    /// it is.
    ///
    /// # Errors
    /// [`MoneyError`] when a refund is in another currency or the sum overflows.
    pub fn settle(&mut self, refunds: &[Refund], disputes: &[Dispute]) -> Result<(), MoneyError> {
        if self.status == PaymentStatus::Failed {
            return Ok(());
        }
        let mut refunded = Money::zero(self.amount.currency());
        for refund in refunds.iter().filter(|r| r.status.counts()) {
            refunded = refunded.checked_add(refund.amount)?;
        }
        self.amount_refunded = refunded;
        self.status = if disputes.iter().any(|d| d.status == DisputeStatus::Lost) {
            PaymentStatus::DisputeLost
        } else if disputes.iter().any(|d| !d.status.is_closed()) {
            PaymentStatus::Disputed
        } else if !refunded.is_zero() && refunded.minor() >= self.amount.minor() {
            PaymentStatus::Refunded
        } else if !refunded.is_zero() {
            PaymentStatus::PartiallyRefunded
        } else {
            PaymentStatus::Succeeded
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::TenantId;
    use crate::money::Currency;

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::parse("usd").unwrap()).unwrap()
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn payment(amount: i64) -> Payment {
        Payment {
            id: PaymentId::new(),
            tenant_id: TenantId::new(),
            invoice_id: None,
            amount: usd(amount),
            amount_refunded: usd(0),
            status: PaymentStatus::Succeeded,
            failure_code: None,
            failure_message: None,
            payment_intent: None,
            charge: None,
            created_at: at(0),
        }
    }

    fn refund(payment: &Payment, amount: i64, status: RefundStatus) -> Refund {
        Refund {
            id: RefundId::new(),
            payment_id: payment.id,
            amount: usd(amount),
            status,
            reason: None,
            refund_ref: RefundRef::parse(format!("re_{amount}")).unwrap(),
            last_event_at: at(1),
            created_at: at(1),
            updated_at: at(1),
        }
    }

    fn dispute(payment: &Payment, status: DisputeStatus) -> Dispute {
        Dispute {
            id: DisputeId::new(),
            payment_id: payment.id,
            amount: payment.amount,
            reason: "fraudulent".into(),
            status,
            dispute_ref: DisputeRef::parse("dp_1").unwrap(),
            last_event_at: at(1),
            created_at: at(1),
            updated_at: at(1),
        }
    }

    #[test]
    fn failed_and_canceled_refunds_are_final_and_a_succeeded_one_can_only_fail() {
        use RefundStatus::*;
        assert!(Pending.can_become(Succeeded));
        assert!(Pending.can_become(Failed));
        assert!(RequiresAction.can_become(Pending));
        assert!(Succeeded.can_become(Failed));
        assert!(Succeeded.can_become(Succeeded));
        assert!(!Succeeded.can_become(Pending));
        assert!(!Failed.can_become(Succeeded));
        assert!(!Failed.can_become(Pending));
        assert!(!Canceled.can_become(Pending));
    }

    #[test]
    fn a_decided_dispute_never_reopens() {
        use DisputeStatus::*;
        assert!(WarningNeedsResponse.can_become(NeedsResponse));
        assert!(NeedsResponse.can_become(UnderReview));
        assert!(UnderReview.can_become(Lost));
        assert!(Won.can_become(Won));
        assert!(!Won.can_become(NeedsResponse));
        assert!(!Lost.can_become(Won));
        assert!(!WarningClosed.can_become(NeedsResponse));
        for s in [
            WarningNeedsResponse,
            WarningUnderReview,
            WarningClosed,
            NeedsResponse,
            UnderReview,
            Won,
            Lost,
            Prevented,
        ] {
            assert_eq!(DisputeStatus::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn the_refunded_amount_counts_every_refund_but_failed_and_canceled_ones() {
        let mut p = payment(1000);
        let refunds = [
            refund(&p, 300, RefundStatus::Succeeded),
            refund(&p, 200, RefundStatus::Pending),
            refund(&p, 400, RefundStatus::Failed),
            refund(&p, 100, RefundStatus::Canceled),
        ];

        p.settle(&refunds, &[]).unwrap();

        assert_eq!(p.amount_refunded, usd(500));
        assert_eq!(p.status, PaymentStatus::PartiallyRefunded);
    }

    #[test]
    fn all_of_it_refunded_is_refunded_and_a_failed_refund_gives_it_back() {
        let mut p = payment(1000);
        let mut full = refund(&p, 1000, RefundStatus::Succeeded);
        p.settle(std::slice::from_ref(&full), &[]).unwrap();
        assert_eq!(p.status, PaymentStatus::Refunded);

        full.status = RefundStatus::Failed;
        p.settle(&[full], &[]).unwrap();

        assert_eq!(p.status, PaymentStatus::Succeeded);
        assert_eq!(p.amount_refunded, usd(0));
    }

    #[test]
    fn an_open_dispute_makes_it_disputed_a_won_one_gives_back_its_refund_status() {
        let mut p = payment(1000);
        let refunds = [refund(&p, 300, RefundStatus::Succeeded)];
        let mut d = dispute(&p, DisputeStatus::NeedsResponse);
        p.settle(&refunds, std::slice::from_ref(&d)).unwrap();
        assert_eq!(p.status, PaymentStatus::Disputed);

        d.status = DisputeStatus::Won;
        p.settle(&refunds, std::slice::from_ref(&d)).unwrap();
        assert_eq!(p.status, PaymentStatus::PartiallyRefunded);

        d.status = DisputeStatus::Lost;
        p.settle(&refunds, &[d]).unwrap();
        assert_eq!(p.status, PaymentStatus::DisputeLost);
    }

    #[test]
    fn a_refund_in_another_currency_is_refused() {
        let mut p = payment(1000);
        let mut eur = refund(&p, 100, RefundStatus::Succeeded);
        eur.amount = Money::new(100, Currency::parse("eur").unwrap()).unwrap();

        assert!(p.settle(&[eur], &[]).is_err());
    }
}
