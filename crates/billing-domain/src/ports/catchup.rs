//! The catch-up's state ([`crate::jobs::catchup`]): the lease that lets one replica at a
//! time read Stripe's Events API, the watermark it resumes from, and which listed events
//! the ledger already holds.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::RepoError;
use crate::ids::EventId;

/// Where the catch-up keeps its lease and watermark.
///
/// # Errors
/// Every method returns [`RepoError::Unavailable`] when the database cannot be reached.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CatchupStore: Send + Sync {
    /// Takes the lease for `holder` until `until`, or renews it when `holder` has it;
    /// `false` when another holder's lease is still running at `now` (a holder that died
    /// loses it when `until` passes).
    async fn try_lease(
        &self,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, RepoError>;

    /// Gives the lease up, if `holder` has it.
    async fn release_lease(&self, holder: &str) -> Result<(), RepoError>;

    /// Where the last complete pass left off: every event created before it was applied
    /// (or found in the ledger). `None` before the first pass.
    async fn watermark(&self) -> Result<Option<DateTime<Utc>>, RepoError>;

    /// Moves the watermark to `to`, if `holder` still has the lease; `false` when it
    /// does not (the watermark is left alone).
    async fn set_watermark(&self, holder: &str, to: DateTime<Utc>) -> Result<bool, RepoError>;

    /// Of `ids`, those the event ledger holds (whatever their outcome).
    async fn known_events(&self, ids: Vec<EventId>) -> Result<Vec<EventId>, RepoError>;
}
