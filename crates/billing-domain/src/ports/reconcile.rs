//! The reconciliation's storage port (issue 15): what to re-read from Stripe, and the
//! claim that lets one replica sweep per interval. The corrections themselves are made in
//! the webhook path's transaction ([`super::WebhookStore`]), under its order guard.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::RepoError;
use crate::ids::{CustomerRef, InvoiceRef, TenantId};

/// The Stripe objects a tenant's reconciliation re-reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileTargets {
    /// The tenant's Stripe customers: its own and those of its subscriptions.
    pub customers: Vec<CustomerRef>,
    /// The Stripe invoices the tenant still owes locally (`open` or `overdue`, or a
    /// `draft`): re-read one by one when Stripe no longer lists them as open.
    pub open_invoices: Vec<InvoiceRef>,
}

/// Reads and the sweep's claim.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ReconcileRepository: Send + Sync {
    /// What to re-read for a tenant; `None` when the tenant is unknown.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn targets(&self, tenant: TenantId) -> Result<Option<ReconcileTargets>, RepoError>;

    /// The tenants the periodic sweep visits: those with a live subscription or an open
    /// invoice that Stripe knows, at most `limit`, in a stable order.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn sweep_tenants(&self, limit: u32) -> Result<Vec<TenantId>, RepoError>;

    /// Claims the sweep of the interval starting at `slot` for this replica: `true` for
    /// the one caller that inserted it, `false` for every other (another replica swept).
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the database cannot be reached.
    async fn claim_sweep(
        &self,
        slot: DateTime<Utc>,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError>;
}
