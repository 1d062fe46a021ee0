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

/// What a plan entitles its subscribers to: up to [`Features::MAX`] distinct names of
/// 1 to 64 characters of `a-z`, `0-9`, `_`, `.`, `:` and `-` (such as `reports:export`),
/// set by an admin and answered by the access check. Kept in the order given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Features(Vec<String>);

/// A feature list that breaks the rule of [`Features`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum InvalidFeatures {
    /// More than [`Features::MAX`] names.
    #[error("at most 50 features")]
    TooMany,
    /// A name of the wrong length or with another character.
    #[error("each feature must be 1-64 characters of a-z, 0-9, '_', '.', ':' and '-'")]
    BadName,
    /// The same name twice.
    #[error("feature '{0}' is listed twice")]
    Repeated(String),
}

impl Features {
    /// The most features a plan can have.
    pub const MAX: usize = 50;

    /// Validates a list of feature names.
    ///
    /// # Errors
    /// [`InvalidFeatures`] naming the first rule `names` breaks.
    pub fn parse(names: Vec<String>) -> Result<Self, InvalidFeatures> {
        if names.len() > Self::MAX {
            return Err(InvalidFeatures::TooMany);
        }
        for (i, name) in names.iter().enumerate() {
            let ok = (1..=64).contains(&name.len())
                && name.chars().all(|c| {
                    c.is_ascii_lowercase()
                        || c.is_ascii_digit()
                        || matches!(c, '_' | '.' | ':' | '-')
                });
            if !ok {
                return Err(InvalidFeatures::BadName);
            }
            if names[..i].contains(name) {
                return Err(InvalidFeatures::Repeated(name.clone()));
            }
        }
        Ok(Self(names))
    }

    /// The names.
    #[must_use]
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// Whether there is none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
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
    /// What it entitles its subscribers to.
    pub features: Features,
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
    /// Features (may be empty).
    pub features: Features,
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
    /// New features, replacing the old list.
    pub features: Option<Features>,
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
            && self.features.is_none()
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
    fn features_are_at_most_fifty_distinct_short_names() {
        let names = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let fifty: Vec<String> = (0..50).map(|i| format!("f{i}")).collect();
        let fifty_one: Vec<String> = (0..51).map(|i| format!("f{i}")).collect();

        assert_eq!(
            Features::parse(names(&["reports:export", "seats.max-10", "api_v2"]))
                .unwrap()
                .as_slice(),
            ["reports:export", "seats.max-10", "api_v2"]
        );
        assert!(Features::parse(Vec::new()).unwrap().is_empty());
        assert!(Features::parse(fifty).is_ok());
        assert_eq!(Features::parse(fifty_one), Err(InvalidFeatures::TooMany));
        assert!(Features::parse(vec!["a".repeat(64)]).is_ok());
        for bad in ["", "Reports", "a b", "é", "x/y", &"a".repeat(65)] {
            assert_eq!(
                Features::parse(names(&[bad])),
                Err(InvalidFeatures::BadName),
                "{bad:?}"
            );
        }
        assert_eq!(
            Features::parse(names(&["a", "b", "a"])),
            Err(InvalidFeatures::Repeated("a".into()))
        );
    }

    #[test]
    fn a_patch_of_features_alone_is_not_empty() {
        let patch = PlanPatch {
            features: Some(Features::default()),
            ..PlanPatch::default()
        };

        assert!(!patch.is_empty());
    }

    #[test]
    fn trial_days_stay_within_stripes_bounds() {
        assert!(TrialDays::new(14).is_ok());
        assert!(TrialDays::new(0).is_err());
        assert!(TrialDays::new(731).is_err());
        assert!(TrialDays::new(-3).is_err());
    }
}
