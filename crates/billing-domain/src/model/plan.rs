//! Plans: what a tenant can subscribe to, each backed by one Stripe price.

use std::fmt;

use chrono::{DateTime, Utc};
use thiserror::Error;

use crate::ids::{PlanId, PriceRef};
use crate::money::Money;

/// A plan's human-readable key, such as `plan-pro`: lower-case letters, digits and `-`,
/// 1 to 64 characters, starting with a letter. Never a UUID, so the two ways of naming a
/// plan in a path cannot collide.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PlanCode(String);

/// A plan code that breaks the rule of [`PlanCode`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("plan code must be 1-64 characters of a-z, 0-9 and '-', starting with a letter")]
pub struct InvalidPlanCode;

impl PlanCode {
    /// Validates a code.
    ///
    /// # Errors
    /// [`InvalidPlanCode`] when `s` breaks the rule above.
    pub fn parse(s: &str) -> Result<Self, InvalidPlanCode> {
        let ok = (1..=64).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidPlanCode)
        }
    }

    /// The code.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PlanCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How often a plan bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BillingInterval {
    /// Monthly.
    Month,
    /// Yearly.
    Year,
}

impl BillingInterval {
    /// `month` or `year`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Month => "month",
            Self::Year => "year",
        }
    }

    /// Parses `month` or `year`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "month" => Some(Self::Month),
            "year" => Some(Self::Year),
            _ => None,
        }
    }
}

/// Trial length in days: 1 to 730, as Stripe's `trial_period_days` allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrialDays(u16);

/// A trial length outside 1..=730.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("trialDays must be between 1 and 730")]
pub struct InvalidTrialDays;

impl TrialDays {
    /// The longest trial Stripe accepts.
    pub const MAX: u16 = 730;

    /// Validates a trial length.
    ///
    /// # Errors
    /// [`InvalidTrialDays`] outside 1..=730.
    pub fn new(days: i64) -> Result<Self, InvalidTrialDays> {
        match u16::try_from(days) {
            Ok(d) if (1..=Self::MAX).contains(&d) => Ok(Self(d)),
            _ => Err(InvalidTrialDays),
        }
    }

    /// The number of days.
    #[must_use]
    pub const fn get(self) -> u16 {
        self.0
    }
}

/// A stored plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Its id.
    pub id: PlanId,
    /// Its code (`plan-pro`).
    pub code: PlanCode,
    /// Display name.
    pub name: String,
    /// The Stripe price that bills it.
    pub price: PriceRef,
    /// Price per interval.
    pub amount: Money,
    /// Billing interval.
    pub interval: BillingInterval,
    /// Trial days offered at checkout, if any.
    pub trial_days: Option<TrialDays>,
    /// Inactive plans are kept for existing subscribers but cannot be bought.
    pub active: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

/// Input for creating a plan (admin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPlan {
    /// Code.
    pub code: PlanCode,
    /// Display name (non-empty).
    pub name: String,
    /// Stripe price.
    pub price: PriceRef,
    /// Price per interval.
    pub amount: Money,
    /// Interval.
    pub interval: BillingInterval,
    /// Trial days.
    pub trial_days: Option<TrialDays>,
}

/// A partial update of a plan (admin). `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanPatch {
    /// New display name.
    pub name: Option<String>,
    /// New Stripe price (a price change in Stripe is a new price id).
    pub price: Option<PriceRef>,
    /// New amount (same currency rules as creation).
    pub amount: Option<Money>,
    /// New trial: `Some(None)` removes the trial.
    pub trial_days: Option<Option<TrialDays>>,
    /// Activate or retire the plan.
    pub active: Option<bool>,
}

impl PlanPatch {
    /// True when the patch changes nothing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.name.is_none()
            && self.price.is_none()
            && self.amount.is_none()
            && self.trial_days.is_none()
            && self.active.is_none()
    }
}

/// How a caller names a plan: by UUID or by code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanKey {
    /// By id.
    Id(PlanId),
    /// By code.
    Code(PlanCode),
}

impl PlanKey {
    /// A UUID is an id; anything else must be a valid code.
    ///
    /// # Errors
    /// [`InvalidPlanCode`] when `s` is neither.
    pub fn parse(s: &str) -> Result<Self, InvalidPlanCode> {
        match PlanId::parse(s) {
            Ok(id) => Ok(Self::Id(id)),
            Err(_) => PlanCode::parse(s).map(Self::Code),
        }
    }
}

impl fmt::Display for PlanKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Id(id) => id.fmt(f),
            Self::Code(code) => code.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_codes_follow_the_slug_rule() {
        assert!(PlanCode::parse("plan-pro").is_ok());
        assert!(PlanCode::parse("p2").is_ok());
        for bad in [
            "",
            "Plan-pro",
            "-pro",
            "2pro",
            "plan pro",
            "plan_pro",
            &"a".repeat(65),
        ] {
            assert!(PlanCode::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_plan_key_is_an_id_when_it_is_a_uuid_and_a_code_otherwise() {
        let id = PlanId::new();

        assert_eq!(PlanKey::parse(&id.to_string()), Ok(PlanKey::Id(id)));
        assert!(matches!(PlanKey::parse("plan-pro"), Ok(PlanKey::Code(_))));
        assert!(PlanKey::parse("Not A Plan").is_err());
    }

    #[test]
    fn trial_days_stay_within_stripes_bounds() {
        assert!(TrialDays::new(14).is_ok());
        assert!(TrialDays::new(0).is_err());
        assert!(TrialDays::new(731).is_err());
        assert!(TrialDays::new(-3).is_err());
    }
}
