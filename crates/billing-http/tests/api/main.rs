//! HTTP adapter tests: the real routes over `MockBillingApi`, with tokens minted here.

// clippy.toml allows these in `#[test]` functions only; the helpers and fixtures shared by
// the tests need them too, and a failed fixture should fail the test loudly.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers and fixtures"
)]

mod auth;
mod endpoints;
mod error_mapping;
mod helpers;
mod jwks;
mod openapi;
mod rejections;
mod telemetry;
mod webhook;
