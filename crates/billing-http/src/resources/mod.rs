//! The resources of the API, one module each with its handlers and DTOs.
//!
//! Each handler extracts its input, converts it to domain types, makes one `BillingApi`
//! call and maps the answer; authorisation and business rules are the domain's. Every
//! protected handler takes [`AuthenticatedActor`](crate::AuthenticatedActor) first, so a
//! request without a valid token is refused before its body is read.
//!
//! * Bodies (`*Body`) deny unknown fields and convert with `try_into_domain()`, which
//!   answers 422 `validation_failed` naming the field when a value breaks a rule.
//! * Query strings (`*Params`) are read as raw strings and parsed here, so that a bad value
//!   answers 400 `invalid_parameter` naming the parameter rather than a serde message.
//! * Responses (`*Response`) are built with `From<&Entity>`. Ids are strings, money is an
//!   integer in minor units plus a lower-case currency, times are RFC 3339 in UTC, and
//!   absent optional values are `null` (never omitted) so every response has one shape.
//! * The `*Name` enumerations exist for the OpenAPI document only (responses carry them as
//!   strings from the domain's `as_str`; the tests check the two agree).

pub mod catchup;
pub mod checkout;
pub mod common;
pub mod events;
pub mod invoices;
pub mod ops;
pub mod outbox;
pub mod payments;
pub mod plans;
pub mod portal;
pub mod reconcile;
pub mod self_service;
pub mod tenants;
pub mod webhook;
