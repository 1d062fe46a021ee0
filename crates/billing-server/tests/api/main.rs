//! End-to-end tests: the real server on a random port, a fresh PostgreSQL database per
//! test and the Stripe emulator (lenient, as a fake; or delivering its events).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on broken fixtures"
)]

mod access;
mod catchup;
#[path = "../common/mod.rs"]
mod common;
mod dev_loop;
mod events_out;
mod foundation;
mod helpers;
mod identity_provider;
mod lifecycle;
mod metrics;
mod outbox;
mod reconcile;
mod refunds;
mod renewals;
mod self_service;
mod stripe_calls;
mod webhooks;
