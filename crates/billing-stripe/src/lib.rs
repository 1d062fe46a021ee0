#![doc = include_str!("../README.md")]
//!
//! This crate depends on the domain crate only; it is the one place that names `reqwest`
//! or Stripe's JSON. `billing-server` wires it in.

mod client;
mod error;
mod form;
mod webhook;
mod wire;

pub use client::{
    CallOutcome, CallRecord, ClientBuildError, RetryPolicy, StripeClient, StripeConfig,
    StripeMetrics, CHECKOUT_SESSION_ID_TEMPLATE, DEFAULT_API_BASE, DEFAULT_API_VERSION,
};
pub use error::{ApiErrorDetail, StripeError};
pub use webhook::{sign, StripeWebhookVerifier, DEFAULT_TOLERANCE};
