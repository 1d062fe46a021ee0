//! The emulator's own tests, over real HTTP: lifecycle sequences, webhook delivery, events
//! list, test clocks, controls.
#![allow(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: failing loudly is the useful behaviour"
)]

mod harness;
mod lifecycle;
mod pages;
mod platform;
