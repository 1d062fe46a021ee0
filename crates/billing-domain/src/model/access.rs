//! Access: whether a tenant may use the platform now, decided from its current
//! subscription alone (SPEC §9). [`decide_access`] is a pure function of the subscription,
//! the time and the grace period, so that every rule is a row of one table test.
//!
//! The rules, by the subscription's status:
//!
//! | status | entitled | `reason` | `until` |
//! |---|---|---|---|
//! | none | no | `no_subscription` | — |
//! | `trialing` | yes | `trialing` | the trial's end (Stripe's `current_period_end` while trialing) |
//! | `active` | yes | `active` | — (a renewal does not change the answer) |
//! | `past_due`, within the grace | yes | `past_due_grace` | the grace's end |
//! | `past_due`, after the grace | no | `past_due` | — |
//! | `paused` | no | `paused` | — |
//! | `unpaid` | no | `unpaid` | — |
//! | `canceled` | no | `canceled` | — |
//! | `incomplete` | no | `incomplete` | — |
//! | `incomplete_expired` | no | `incomplete_expired` | — |
//!
//! A subscription set to cancel at the end of its period (`cancel_at_period_end`) that is
//! entitled by the table stays so until the period ends: its `until` is the period's end
//! (or the trial's or grace's end, when earlier), its reason `cancel_at_period_end` (a
//! `past_due_grace` keeps its reason, the more urgent news). Once the period has ended it
//! is `canceled` at once, before Stripe's `customer.subscription.deleted` arrives.
//!
//! **The first failed payment** is [`Subscription::past_due_since`]: the `created` time of
//! the Stripe event that moved the subscription into `past_due` (the moment Stripe marked
//! the payment failed, not when the webhook arrived), kept while it stays `past_due` and
//! cleared when it leaves. The grace is counted from it. A `past_due` row without it
//! (written before the column existed and not backfilled) counts from its `updated_at`.

use chrono::{DateTime, Duration, Utc};

use super::subscription::{Subscription, SubscriptionStatus};

/// Why a tenant is or is not entitled: a stable word, part of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessReason {
    /// Paid up.
    Active,
    /// In a trial.
    Trialing,
    /// A payment failed, still within the grace period.
    PastDueGrace,
    /// A payment failed and the grace period is over.
    PastDue,
    /// Set to cancel at the end of the current period, which has not ended.
    CancelAtPeriodEnd,
    /// Canceled, or set to cancel at a period end that has passed.
    Canceled,
    /// Paused.
    Paused,
    /// Stripe's retries are exhausted; the subscription is left open, unpaid.
    Unpaid,
    /// The first payment has not been made.
    Incomplete,
    /// The first payment was never made.
    IncompleteExpired,
    /// The tenant has no subscription.
    NoSubscription,
}

impl AccessReason {
    /// Every reason, in the order of the API documentation.
    pub const ALL: [Self; 11] = [
        Self::Active,
        Self::Trialing,
        Self::PastDueGrace,
        Self::PastDue,
        Self::CancelAtPeriodEnd,
        Self::Canceled,
        Self::Paused,
        Self::Unpaid,
        Self::Incomplete,
        Self::IncompleteExpired,
        Self::NoSubscription,
    ];

    /// The stable word.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Trialing => "trialing",
            Self::PastDueGrace => "past_due_grace",
            Self::PastDue => "past_due",
            Self::CancelAtPeriodEnd => "cancel_at_period_end",
            Self::Canceled => "canceled",
            Self::Paused => "paused",
            Self::Unpaid => "unpaid",
            Self::Incomplete => "incomplete",
            Self::IncompleteExpired => "incomplete_expired",
            Self::NoSubscription => "no_subscription",
        }
    }
}

/// The answer of [`decide_access`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessDecision {
    /// Whether the tenant may use the platform.
    pub entitled: bool,
    /// Why.
    pub reason: AccessReason,
    /// When this answer changes by itself (a trial, grace or period ending), if known.
    pub until: Option<DateTime<Utc>>,
}

impl AccessDecision {
    const fn yes(reason: AccessReason, until: Option<DateTime<Utc>>) -> Self {
        Self {
            entitled: true,
            reason,
            until,
        }
    }

    const fn no(reason: AccessReason) -> Self {
        Self {
            entitled: false,
            reason,
            until: None,
        }
    }
}

/// Decides access from the tenant's current subscription (see the module's table) at
/// `now`, with `grace` the time a `past_due` subscription stays entitled after its first
/// failed payment.
#[must_use]
pub fn decide_access(
    subscription: Option<&Subscription>,
    now: DateTime<Utc>,
    grace: Duration,
) -> AccessDecision {
    let Some(sub) = subscription else {
        return AccessDecision::no(AccessReason::NoSubscription);
    };
    let by_status = match sub.status {
        SubscriptionStatus::Trialing => {
            AccessDecision::yes(AccessReason::Trialing, sub.current_period_end)
        }
        SubscriptionStatus::Active => AccessDecision::yes(AccessReason::Active, None),
        SubscriptionStatus::PastDue => {
            let grace_end = sub.past_due_since.unwrap_or(sub.updated_at) + grace;
            if now < grace_end {
                AccessDecision::yes(AccessReason::PastDueGrace, Some(grace_end))
            } else {
                AccessDecision::no(AccessReason::PastDue)
            }
        }
        SubscriptionStatus::Paused => AccessDecision::no(AccessReason::Paused),
        SubscriptionStatus::Unpaid => AccessDecision::no(AccessReason::Unpaid),
        SubscriptionStatus::Canceled => AccessDecision::no(AccessReason::Canceled),
        SubscriptionStatus::Incomplete => AccessDecision::no(AccessReason::Incomplete),
        SubscriptionStatus::IncompleteExpired => {
            AccessDecision::no(AccessReason::IncompleteExpired)
        }
    };
    if !(by_status.entitled && sub.cancel_at_period_end) {
        return by_status;
    }
    let Some(period_end) = sub.current_period_end else {
        // Ends with a period whose end is not known yet: entitled, without a date.
        return AccessDecision {
            reason: cancel_reason(by_status.reason),
            ..by_status
        };
    };
    if now >= period_end {
        return AccessDecision::no(AccessReason::Canceled);
    }
    AccessDecision::yes(
        cancel_reason(by_status.reason),
        Some(by_status.until.map_or(period_end, |u| u.min(period_end))),
    )
}

/// The reason of an entitled subscription set to cancel at period end.
const fn cancel_reason(by_status: AccessReason) -> AccessReason {
    match by_status {
        AccessReason::PastDueGrace => AccessReason::PastDueGrace,
        _ => AccessReason::CancelAtPeriodEnd,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::ids::{PlanId, SubscriptionId, TenantId};

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
    }

    /// A subscription of March 2026 (period 1st to 31st), last changed on the 2nd.
    fn sub(status: SubscriptionStatus) -> Subscription {
        Subscription {
            id: SubscriptionId::new(),
            tenant_id: TenantId::new(),
            plan_id: PlanId::new(),
            status,
            current_period_start: Some(at(1, 0)),
            current_period_end: Some(at(31, 0)),
            cancel_at_period_end: false,
            canceled_at: None,
            past_due_since: None,
            subscription_ref: None,
            customer: None,
            last_event_at: Some(at(2, 0)),
            created_at: at(1, 0),
            updated_at: at(2, 0),
        }
    }

    fn past_due_since(day: u32) -> Subscription {
        Subscription {
            past_due_since: Some(at(day, 12)),
            ..sub(SubscriptionStatus::PastDue)
        }
    }

    fn cancelling(status: SubscriptionStatus) -> Subscription {
        Subscription {
            cancel_at_period_end: true,
            ..sub(status)
        }
    }

    /// A row of the table: name, subscription, then the expected entitled, reason, until.
    type Case = (
        &'static str,
        Option<Subscription>,
        bool,
        AccessReason,
        Option<DateTime<Utc>>,
    );

    #[test]
    #[expect(clippy::too_many_lines, reason = "one table of every case")]
    fn access_follows_the_table_for_every_status_and_case() {
        use AccessReason as R;
        use SubscriptionStatus as S;
        let grace = Duration::days(7);
        let now = at(10, 12);
        let cases: Vec<Case> = vec![
            ("no subscription", None, false, R::NoSubscription, None),
            (
                "trialing",
                Some(sub(S::Trialing)),
                true,
                R::Trialing,
                Some(at(31, 0)),
            ),
            (
                "trialing, trial end unknown",
                Some(Subscription {
                    current_period_end: None,
                    ..sub(S::Trialing)
                }),
                true,
                R::Trialing,
                None,
            ),
            ("active", Some(sub(S::Active)), true, R::Active, None),
            (
                "past_due inside the grace",
                Some(past_due_since(5)),
                true,
                R::PastDueGrace,
                Some(at(12, 12)),
            ),
            (
                "past_due one second before the grace ends",
                Some(Subscription {
                    past_due_since: Some(now - grace + Duration::seconds(1)),
                    ..sub(S::PastDue)
                }),
                true,
                R::PastDueGrace,
                Some(now + Duration::seconds(1)),
            ),
            (
                "past_due exactly at the grace's end",
                Some(Subscription {
                    past_due_since: Some(now - grace),
                    ..sub(S::PastDue)
                }),
                false,
                R::PastDue,
                None,
            ),
            (
                "past_due outside the grace",
                Some(past_due_since(1)),
                false,
                R::PastDue,
                None,
            ),
            (
                "past_due without a start counts from its last change",
                Some(sub(S::PastDue)),
                false,
                R::PastDue,
                None,
            ),
            ("paused", Some(sub(S::Paused)), false, R::Paused, None),
            ("unpaid", Some(sub(S::Unpaid)), false, R::Unpaid, None),
            ("canceled", Some(sub(S::Canceled)), false, R::Canceled, None),
            (
                "incomplete",
                Some(sub(S::Incomplete)),
                false,
                R::Incomplete,
                None,
            ),
            (
                "incomplete_expired",
                Some(sub(S::IncompleteExpired)),
                false,
                R::IncompleteExpired,
                None,
            ),
            (
                "active, cancel at period end, before the end",
                Some(cancelling(S::Active)),
                true,
                R::CancelAtPeriodEnd,
                Some(at(31, 0)),
            ),
            (
                "active, cancel at period end, after the end",
                Some(Subscription {
                    current_period_end: Some(at(10, 0)),
                    ..cancelling(S::Active)
                }),
                false,
                R::Canceled,
                None,
            ),
            (
                "active, cancel at period end, exactly at the end",
                Some(Subscription {
                    current_period_end: Some(now),
                    ..cancelling(S::Active)
                }),
                false,
                R::Canceled,
                None,
            ),
            (
                "active, cancel at period end, end unknown",
                Some(Subscription {
                    current_period_end: None,
                    ..cancelling(S::Active)
                }),
                true,
                R::CancelAtPeriodEnd,
                None,
            ),
            (
                "trialing, cancel at period end",
                Some(cancelling(S::Trialing)),
                true,
                R::CancelAtPeriodEnd,
                Some(at(31, 0)),
            ),
            (
                "past_due inside the grace, cancel at period end after the grace",
                Some(Subscription {
                    cancel_at_period_end: true,
                    ..past_due_since(5)
                }),
                true,
                R::PastDueGrace,
                Some(at(12, 12)),
            ),
            (
                "past_due inside the grace, period ending first",
                Some(Subscription {
                    cancel_at_period_end: true,
                    current_period_end: Some(at(11, 0)),
                    ..past_due_since(5)
                }),
                true,
                R::PastDueGrace,
                Some(at(11, 0)),
            ),
            (
                "past_due outside the grace, cancel at period end",
                Some(Subscription {
                    cancel_at_period_end: true,
                    ..past_due_since(1)
                }),
                false,
                R::PastDue,
                None,
            ),
            (
                "paused, cancel at period end",
                Some(cancelling(S::Paused)),
                false,
                R::Paused,
                None,
            ),
            (
                "canceled with the flag left set",
                Some(cancelling(S::Canceled)),
                false,
                R::Canceled,
                None,
            ),
        ];

        for (name, subscription, entitled, reason, until) in cases {
            let decision = decide_access(subscription.as_ref(), now, grace);

            assert_eq!(
                decision,
                AccessDecision {
                    entitled,
                    reason,
                    until
                },
                "{name}"
            );
        }
    }

    #[test]
    fn every_status_has_a_row_in_the_table() {
        use SubscriptionStatus as S;
        let decided: Vec<&str> = [
            S::Incomplete,
            S::IncompleteExpired,
            S::Trialing,
            S::Active,
            S::PastDue,
            S::Canceled,
            S::Unpaid,
            S::Paused,
        ]
        .into_iter()
        .map(|s| {
            decide_access(Some(&sub(s)), at(3, 0), Duration::days(7))
                .reason
                .as_str()
        })
        .collect();

        assert_eq!(
            decided,
            [
                "incomplete",
                "incomplete_expired",
                "trialing",
                "active",
                "past_due_grace",
                "canceled",
                "unpaid",
                "paused"
            ]
        );
    }

    #[test]
    fn a_longer_grace_keeps_a_past_due_tenant_entitled_longer() {
        let s = past_due_since(1);

        let short = decide_access(Some(&s), at(10, 12), Duration::days(7));
        let long = decide_access(Some(&s), at(10, 12), Duration::days(14));
        let none = decide_access(Some(&s), at(1, 12), Duration::zero());

        assert!(!short.entitled);
        assert_eq!((long.entitled, long.until), (true, Some(at(15, 12))));
        assert_eq!(none.reason, AccessReason::PastDue);
    }

    #[test]
    fn reasons_are_distinct_snake_case_words() {
        let words: std::collections::HashSet<&str> =
            AccessReason::ALL.iter().map(|r| r.as_str()).collect();

        assert_eq!(words.len(), AccessReason::ALL.len());
        assert!(words
            .iter()
            .all(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '_')));
    }
}
