//! Ports: what the domain needs from the outside world, as traits named by role.
//!
//! Adapters implement them (`billing-postgres`, `billing-stripe`); tests use the mockall
//! mocks generated here (`MockTenantRepository`, …), which other crates reach through the
//! `mocks` feature.

use thiserror::Error;

use crate::error::{ConflictField, ReferenceField};

mod catchup;
mod clock;
mod notifier;
mod provider;
mod queues;
mod reconcile;
mod repositories;
mod webhook_store;

pub use catchup::*;
pub use clock::*;
pub use notifier::*;
pub use provider::*;
pub use queues::*;
pub use reconcile::*;
pub use repositories::*;
pub use webhook_store::*;

/// Any error, boxed, for the catch-all variants.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// How a repository call failed.
#[derive(Debug, Error)]
pub enum RepoError {
    /// A uniqueness rule was broken on this field.
    #[error("{0} already exists")]
    Conflict(ConflictField),
    /// A referenced row does not exist (foreign key).
    #[error("referenced {0} does not exist")]
    MissingReference(ReferenceField),
    /// The database could not be reached or timed out: retryable.
    #[error("database unavailable")]
    Unavailable(#[source] BoxError),
    /// Anything else.
    #[error("unexpected database error")]
    Unexpected(#[source] BoxError),
}
