//! The error answers of the OpenAPI document: one reusable response per status (all
//! `application/problem+json` bodies of the [`Problem`] schema, registered as components
//! by [`crate::openapi`]), and the sets that most operations share, so that a handler's
//! `#[utoipa::path]` names a set instead of repeating its statuses.

use std::collections::BTreeMap;

use utoipa::openapi::{Ref, RefOr, Response};
use utoipa::{IntoResponses, ToResponse};

use crate::error::Problem;

/// 400: a malformed parameter, body or signature.
#[derive(ToResponse)]
#[response(
    description = "Bad input: a malformed parameter (`invalid_parameter`), body (`invalid_json`), return URL (`invalid_return_url`, `return_url_required`) or webhook (`invalid_signature`, `invalid_payload`), or a request Stripe refused (`stripe_request_refused`, with Stripe's message)",
    content_type = "application/problem+json"
)]
pub struct BadRequest(pub Problem);

/// 401: no valid bearer token.
#[derive(ToResponse)]
#[response(
    description = "No valid bearer token (`unauthorized`)",
    content_type = "application/problem+json",
    headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"billing\"`, with `error=\"invalid_token\"` when a token was sent"))
)]
pub struct Unauthorized(pub Problem);

/// 403: the caller may not do this.
#[derive(ToResponse)]
#[response(
    description = "The token may not act for this tenant (`forbidden`, `tenant_required`) or is not an admin's (`admin_required`)",
    content_type = "application/problem+json"
)]
pub struct Forbidden(pub Problem);

/// 404: no such resource.
#[derive(ToResponse)]
#[response(
    description = "No such resource (`plan_not_found`, `tenant_not_found`, `invoice_not_found`, `subscription_not_found`, `customer_not_found`, `not_found`)",
    content_type = "application/problem+json"
)]
pub struct NotFound(pub Problem);

/// 409: the resource's state forbids it.
#[derive(ToResponse)]
#[response(
    description = "The current state forbids it (`plan_exists`, `plan_inactive`, `subscription_exists`, `invoice_exists`, `invoice_already_paid`, `invoice_not_payable`, `nothing_to_pay`, `invoice_payment_pending`, `customer_belongs_to_other_tenant`, `catchup_in_progress`)",
    content_type = "application/problem+json"
)]
pub struct Conflict(pub Problem);

/// 413: the body is too large.
#[derive(ToResponse)]
#[response(
    description = "The body is too large (`payload_too_large`): 64 KiB for JSON, 256 KiB for the webhook",
    content_type = "application/problem+json"
)]
pub struct PayloadTooLarge(pub Problem);

/// 415: the body is not JSON.
#[derive(ToResponse)]
#[response(
    description = "The body is not `application/json` (`unsupported_media_type`)",
    content_type = "application/problem+json"
)]
pub struct UnsupportedMediaType(pub Problem);

/// 422: well-formed JSON that breaks a rule.
#[derive(ToResponse)]
#[response(
    description = "JSON of the wrong shape (`invalid_body`) or a value breaking a rule (`validation_failed`)",
    content_type = "application/problem+json"
)]
pub struct Unprocessable(pub Problem);

/// 500: internal failure.
#[derive(ToResponse)]
#[response(
    description = "Internal failure (`internal_error`); the cause is logged",
    content_type = "application/problem+json"
)]
pub struct Internal(pub Problem);

/// 502: Stripe failed.
#[derive(ToResponse)]
#[response(
    description = "Stripe failed to answer (`stripe_unavailable`)",
    content_type = "application/problem+json"
)]
pub struct BadGateway(pub Problem);

/// 503: temporarily unavailable.
#[derive(ToResponse)]
#[response(
    description = "Temporarily unavailable (`database_unavailable`, `stripe_not_configured`, `service_unavailable`); retry later",
    content_type = "application/problem+json"
)]
pub struct Unavailable(pub Problem);

/// References the component response `name` under `status`.
fn reference(set: &mut BTreeMap<String, RefOr<Response>>, status: u16, name: &str) {
    set.insert(
        status.to_string(),
        RefOr::Ref(Ref::from_response_name(name)),
    );
}

/// What any operation behind a bearer token may answer besides its own statuses: 400 bad
/// input, 401 no valid token, 403 not allowed, 500 internal failure, 503 unavailable.
pub struct Guarded;

impl IntoResponses for Guarded {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut set = BTreeMap::new();
        reference(&mut set, 400, "BadRequest");
        reference(&mut set, 401, "Unauthorized");
        reference(&mut set, 403, "Forbidden");
        reference(&mut set, 500, "Internal");
        reference(&mut set, 503, "Unavailable");
        set
    }
}

/// What an operation that reads a JSON body may answer about the body: 413 too large, 415
/// not JSON, 422 the wrong shape or a broken rule.
pub struct BodyErrors;

impl IntoResponses for BodyErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut set = BTreeMap::new();
        reference(&mut set, 413, "PayloadTooLarge");
        reference(&mut set, 415, "UnsupportedMediaType");
        reference(&mut set, 422, "Unprocessable");
        set
    }
}
