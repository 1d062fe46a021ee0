//! `StripeClient` against the Stripe emulator (every operation, validated as Stripe validates
//! it) and against a local wiremock server (the exact request shape per operation, retries,
//! idempotency keys, timeouts, deadlines and the error mapping). One test binary, one
//! module per concern.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap fixtures"
)]

mod checkout;
mod config;
mod emulator;
mod errors;
mod lookups;
mod payment_intent;
mod portal;
mod support;
mod transport;
