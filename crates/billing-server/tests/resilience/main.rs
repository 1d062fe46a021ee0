//! Resilience suite: the service under failure, each scenario bounded in time and checked
//! against the database afterwards.
//!
//! * `postgres_outage`: PostgreSQL backends killed and connections refused under webhook load.
//! * `stripe_outage`: Stripe answering 500/429, hanging and resetting connections.
//! * `two_processes`: two server processes on one database receiving the same stream.
//! * `hostile_clients`: idle connections, slowloris, oversized bodies and headers.
//!
//! Every scenario runs the built `billing-server` binary as a real process. Set
//! `RESILIENCE_LOG=1` to see the processes' logs.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly on broken fixtures"
)]

#[path = "../common/mod.rs"]
mod common;
mod hostile_clients;
mod postgres_outage;
mod stripe_outage;
mod support;
mod two_processes;
