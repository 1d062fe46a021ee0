//! Subscriptions, mirrored from Stripe.

use chrono::{DateTime, Utc};

use crate::ids::{CustomerRef, PlanId, SubscriptionId, SubscriptionRef, TenantId};

/// Stripe's subscription statuses. Stripe is the source of truth for transitions, so
/// any status may follow any other except that `canceled` and `incomplete_expired` are
/// final: Stripe never revives such a subscription (a new one is created instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubscriptionStatus {
    /// First payment not yet made.
    Incomplete,
    /// First payment never made within 23 hours; final.
    IncompleteExpired,
    /// In a trial.
    Trialing,
    /// Paid up.
    Active,
    /// Latest payment failed; Stripe is retrying.
    PastDue,
    /// Ended; final.
    Canceled,
    /// Retries exhausted, left open.
    Unpaid,
    /// Paused (trial ended without a payment method).
    Paused,
}

impl SubscriptionStatus {
    /// Stripe's spelling.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Incomplete => "incomplete",
            Self::IncompleteExpired => "incomplete_expired",
            Self::Trialing => "trialing",
            Self::Active => "active",
            Self::PastDue => "past_due",
            Self::Canceled => "canceled",
            Self::Unpaid => "unpaid",
            Self::Paused => "paused",
        }
    }

    /// Parses Stripe's spelling.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "incomplete" => Self::Incomplete,
            "incomplete_expired" => Self::IncompleteExpired,
            "trialing" => Self::Trialing,
            "active" => Self::Active,
            "past_due" => Self::PastDue,
            "canceled" => Self::Canceled,
            "unpaid" => Self::Unpaid,
            "paused" => Self::Paused,
            _ => return None,
        })
    }

    /// Live subscriptions give access (docs/contract.md, HTTP API).
    #[must_use]
    pub const fn is_live(self) -> bool {
        matches!(self, Self::Trialing | Self::Active | Self::PastDue)
    }

    /// Whether the tenant may not start another checkout: a live subscription (docs/contract.md, HTTP API),
    /// or one waiting for the money of a delayed payment method (a bank debit), which a
    /// second checkout would turn into a second subscription once it clears. Stripe ends
    /// that wait with `active` or `incomplete_expired`.
    #[must_use]
    pub const fn blocks_checkout(self) -> bool {
        self.is_live() || matches!(self, Self::Incomplete)
    }

    /// Final statuses never change again.
    #[must_use]
    pub const fn is_final(self) -> bool {
        matches!(self, Self::Canceled | Self::IncompleteExpired)
    }

    /// Whether Stripe can move a subscription from `self` to `next`.
    #[must_use]
    pub const fn can_become(self, next: Self) -> bool {
        !self.is_final() || self as u8 == next as u8
    }
}

/// A stored subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Our id.
    pub id: SubscriptionId,
    /// The tenant it belongs to.
    pub tenant_id: TenantId,
    /// The plan it bills.
    pub plan_id: PlanId,
    /// Stripe's status.
    pub status: SubscriptionStatus,
    /// Start of the current billing period.
    pub current_period_start: Option<DateTime<Utc>>,
    /// End of the current billing period.
    pub current_period_end: Option<DateTime<Utc>>,
    /// Whether it ends at the end of the period.
    pub cancel_at_period_end: bool,
    /// When it was canceled.
    pub canceled_at: Option<DateTime<Utc>>,
    /// While `past_due`: when it became so (the `created` time of the Stripe event that
    /// moved it there), the first failed payment the access grace counts from; `None` in
    /// every other status.
    pub past_due_since: Option<DateTime<Utc>>,
    /// Stripe's subscription id.
    pub subscription_ref: Option<SubscriptionRef>,
    /// Stripe's customer id.
    pub customer: Option<CustomerRef>,
    /// `created` of the newest Stripe event applied to it (order guard).
    pub last_event_at: Option<DateTime<Utc>>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_trialing_active_and_past_due_are_live() {
        let live: Vec<_> = [
            SubscriptionStatus::Incomplete,
            SubscriptionStatus::IncompleteExpired,
            SubscriptionStatus::Trialing,
            SubscriptionStatus::Active,
            SubscriptionStatus::PastDue,
            SubscriptionStatus::Canceled,
            SubscriptionStatus::Unpaid,
            SubscriptionStatus::Paused,
        ]
        .into_iter()
        .filter(|s| s.is_live())
        .collect();

        assert_eq!(
            live,
            [
                SubscriptionStatus::Trialing,
                SubscriptionStatus::Active,
                SubscriptionStatus::PastDue
            ]
        );
    }

    #[test]
    fn a_canceled_subscription_never_comes_back() {
        assert!(!SubscriptionStatus::Canceled.can_become(SubscriptionStatus::Active));
        assert!(SubscriptionStatus::Canceled.can_become(SubscriptionStatus::Canceled));
        assert!(SubscriptionStatus::PastDue.can_become(SubscriptionStatus::Active));
    }

    #[test]
    fn status_names_round_trip() {
        for s in [
            "incomplete",
            "trialing",
            "active",
            "past_due",
            "canceled",
            "unpaid",
            "paused",
        ] {
            assert_eq!(SubscriptionStatus::parse(s).unwrap().as_str(), s);
        }
        assert_eq!(SubscriptionStatus::parse("bogus"), None);
    }
}
