#![doc = include_str!("../README.md")]
//!
//! This crate must not depend on any infrastructure crate (actix, diesel, reqwest, serde
//! models of Stripe's JSON). If a feature seems to need one, the port is wrong.

pub mod auth;
pub mod error;
pub mod events_out;
pub mod ids;
pub mod jobs;
pub mod metrics;
pub mod model;
pub mod money;
pub mod notification;
pub mod page;
pub mod ports;
pub mod service;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod webhook;

pub use auth::Actor;
pub use error::{BillingError, ConflictField, ReferenceField, Refusal};
pub use ids::*;
pub use model::*;
pub use money::{Currency, Money, MoneyError};
pub use page::{Cursor, Page, PageLimit, PageRequest};
pub use service::{
    BillingApi, BillingService, BillingSettings, CheckoutInput, Ports, TenantAccess, TenantOverview,
};
