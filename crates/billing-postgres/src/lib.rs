#![doc = include_str!("../README.md")]
//!
//! This crate depends on the domain only; no other adapter, no HTTP. Nothing outside it
//! names a diesel type: callers see [`PgStore`], [`PgConfig`] and the domain's ports.

mod catchup;
mod checkout_sessions;
mod deleted_customers;
mod error;
mod events_out;
mod health;
mod invoices;
mod lease;
mod ledger;
mod lookups;
pub mod migrate;
mod outbox;
mod payments;
mod plans;
mod reconcile;
mod refunds;
mod rows;
mod schema;
mod statement;
mod store;
mod subscriptions;
mod tenants;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod webhook;

pub use events_out::{BillingEventFormat, EventsOutSetup};
pub use migrate::{
    applied_migrations, ensure_database, revert_all, run_migrations, SetupError, MIGRATIONS,
};
pub use outbox::NotificationFormat;
pub use store::{redact_url, PgConfig, PgStore};
