//! Tenants: the platform's customers, who pay us.

use chrono::{DateTime, Utc};

use crate::ids::{CustomerRef, TenantId};

/// Where a tenant stands with billing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TenantStatus {
    /// Known (it started a checkout) but not yet subscribed.
    Pending,
    /// Has a subscription that Stripe confirmed.
    Active,
    /// Blocked by an operator.
    Suspended,
    /// Its last live subscription ended.
    Cancelled,
}

impl TenantStatus {
    /// The stable lower-case name used in the API and the database.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Cancelled => "cancelled",
        }
    }

    /// Parses [`Self::as_str`]'s output.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "active" => Self::Active,
            "suspended" => Self::Suspended,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }
}

/// A stored tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Its id (the platform's tenant UUID; we do not mint it).
    pub id: TenantId,
    /// A display name (may be empty until the platform tells us one).
    pub name: String,
    /// Billing status.
    pub status: TenantStatus,
    /// The Stripe customer paying for this tenant, once known.
    pub customer: Option<CustomerRef>,
    /// When we first saw the tenant.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}
