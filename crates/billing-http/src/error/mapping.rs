//! The conversions into [`ApiError`]: from the domain's errors, the authenticator's and
//! the extractors'. A 5xx cause is logged here, once; a failure the adapter that met it
//! has logged already (Stripe's) is not logged again.

use std::borrow::Cow;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::StatusCode;
use billing_domain::service::WebhookError;
use billing_domain::{BillingError, ConflictField, InvoiceStatus, Refusal};
use serde_json::error::Category;

use super::{ApiError, Chain};
use crate::auth::AuthError;
use crate::extract::JSON_LIMIT;

fn conflict(code: &'static str, detail: impl Into<Cow<'static, str>>) -> ApiError {
    ApiError::new(StatusCode::CONFLICT, code, detail)
}

fn not_found(code: &'static str, detail: impl Into<Cow<'static, str>>) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, code, detail)
}

fn forbidden(code: &'static str, detail: impl Into<Cow<'static, str>>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, code, detail)
}

/// The API's name of the field a uniqueness rule protects.
fn field_name(field: ConflictField) -> &'static str {
    match field {
        ConflictField::PlanCode => "code",
        ConflictField::StripePrice => "stripePriceId",
        ConflictField::InvoiceNumber => "number",
        ConflictField::StripeInvoice => "stripeInvoiceId",
        ConflictField::StripePaymentIntent => "stripePaymentIntentId",
        ConflictField::StripeCustomer => "stripeCustomerId",
        ConflictField::StripeSubscription => "stripeSubscriptionId",
        ConflictField::StripeCharge => "stripeChargeId",
        ConflictField::SourceEvent => "sourceEventId",
        ConflictField::DedupeKey => "dedupeKey",
        ConflictField::EventId => "eventId",
        ConflictField::Id => "id",
    }
}

impl From<BillingError> for ApiError {
    fn from(e: BillingError) -> Self {
        match e {
            BillingError::Forbidden(tenant) => forbidden(
                "forbidden",
                format!("this token may not act for tenant {tenant}"),
            ),
            BillingError::NoTenant => forbidden(
                "tenant_required",
                "this token names no tenant (claim tenant_id) and is not an admin's",
            ),
            BillingError::AdminOnly => forbidden(
                "admin_required",
                "this operation needs the billing:admin role",
            ),
            BillingError::PlanNotFound(key) => {
                not_found("plan_not_found", format!("there is no plan {key}"))
            }
            BillingError::PlanInactive(key) => conflict(
                "plan_inactive",
                format!("plan {key} is retired and cannot be subscribed to"),
            ),
            BillingError::PlanExists(field) => conflict(
                "plan_exists",
                format!("a plan with this {} already exists", field_name(field)),
            ),
            BillingError::TenantNotFound(tenant) => {
                not_found("tenant_not_found", format!("there is no tenant {tenant}"))
            }
            BillingError::SubscriptionNotFound(tenant) => not_found(
                "subscription_not_found",
                format!("tenant {tenant} has no subscription"),
            ),
            BillingError::AlreadySubscribed(tenant) => conflict(
                "subscription_exists",
                format!(
                    "tenant {tenant} already has a live subscription; change or cancel it in \
                     the Customer Portal (POST /api/v1/billing/stripe/portal)"
                ),
            ),
            BillingError::InvoiceNotFound(key) => {
                not_found("invoice_not_found", format!("there is no invoice {key}"))
            }
            BillingError::PaymentNotFound(id) => {
                not_found("payment_not_found", format!("there is no payment {id}"))
            }
            BillingError::InvoiceExists => conflict(
                "invoice_exists",
                "an invoice with this number already exists",
            ),
            BillingError::InvoiceNotPayable(InvoiceStatus::Paid) => {
                conflict("invoice_already_paid", "the invoice is already paid")
            }
            BillingError::InvoiceNotPayable(status) => conflict(
                "invoice_not_payable",
                format!("an invoice in status {} cannot be paid", status.as_str()),
            ),
            BillingError::NothingToPay => {
                conflict("nothing_to_pay", "nothing is left to pay on this invoice")
            }
            BillingError::InvoicePaymentPending => conflict(
                "invoice_payment_pending",
                "Stripe has not opened a payment for this invoice yet; retry shortly",
            ),
            BillingError::EventNotFound(event) => not_found(
                "event_not_found",
                format!("Stripe has no event {event} (events older than 30 days are gone)"),
            ),
            BillingError::CustomerNotFound(customer) => not_found(
                "customer_not_found",
                format!("no tenant has the Stripe customer {customer}"),
            ),
            BillingError::OutboxEntryNotFound(id) => not_found(
                "outbox_entry_not_found",
                format!("there is no outbox entry {id}"),
            ),
            BillingError::OutboxEntryNotDead(id) => conflict(
                "outbox_entry_not_dead",
                format!("outbox entry {id} is not dead: only an entry out of attempts is retried"),
            ),
            BillingError::CheckoutSessionNotFound(session) => not_found(
                "checkout_session_not_found",
                format!("no checkout session {session}"),
            ),
            BillingError::CustomerOfAnotherTenant => conflict(
                "customer_belongs_to_other_tenant",
                "this Stripe customer belongs to another tenant",
            ),
            BillingError::InvalidReturnUrl(why) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_return_url",
                format!("returnUrl is not acceptable: {why}"),
            ),
            BillingError::ReturnUrlRequired => ApiError::new(
                StatusCode::BAD_REQUEST,
                "return_url_required",
                "returnUrl is required because no default portal return URL is configured",
            ),
            // The domain writes these messages for clients (they name the broken rule).
            BillingError::Invalid(message) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                message,
            ),
            BillingError::Refused(refusal) => refused(&refusal),
            BillingError::ProviderNotConfigured => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "stripe_not_configured",
                "payments are not configured on this server (no Stripe API key)",
            ),
            // The Stripe client logged the failure, with its cause, when it happened.
            BillingError::ProviderUnavailable(_) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "stripe_unavailable",
                "the payment provider failed to answer; retry later",
            ),
            // Stripe's message for a refused request is written for API users and names
            // the offending parameter; it holds no secret of ours.
            BillingError::ProviderRefused { message, .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "stripe_request_refused", message)
            }
            BillingError::CatchupInProgress => conflict(
                "catchup_in_progress",
                "a catch-up pass is already running (on this or another replica); retry once it ends",
            ),
            BillingError::Unavailable(source) => {
                tracing::error!(error = %Chain(source.as_ref()), "database unavailable");
                ApiError::database_unavailable()
            }
            BillingError::Unexpected(source) => ApiError::internal(source.as_ref()),
        }
    }
}

/// A self-service change or refund the state does not allow (issue 16): 409, one code each.
fn refused(refusal: &Refusal) -> ApiError {
    let code = match refusal {
        Refusal::NoLiveSubscription(_) => "no_live_subscription",
        Refusal::SubscriptionCanceled => "subscription_canceled",
        Refusal::PlanUnchanged(_) => "plan_unchanged",
        Refusal::NothingToResume => "nothing_to_resume",
        Refusal::RefundExceedsPayment { .. } => "refund_exceeds_payment",
        Refusal::PaymentNotRefundable(_) => "payment_not_refundable",
    };
    conflict(code, refusal.to_string())
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let present = e.token_present();
        ApiError::unauthorized(e.to_string(), present)
    }
}

/// A webhook delivery the service did not take. Refusals are logged at warn (the sender's
/// problem), failures on our side at error (Stripe redelivers).
impl From<WebhookError> for ApiError {
    fn from(e: WebhookError) -> Self {
        match e {
            WebhookError::Signature(e) => {
                tracing::warn!(reason = e.reason(), "webhook signature refused");
                ApiError::invalid_signature(&e)
            }
            WebhookError::InvalidPayload(why) => {
                tracing::warn!(reason = %why, "webhook payload refused");
                ApiError::invalid_payload(
                    "the signed body is not a Stripe event this service can read",
                )
            }
            WebhookError::Unavailable(e) => {
                tracing::error!(error = %Chain(e.as_ref()), "webhook not processed: unavailable");
                ApiError::service_unavailable()
            }
            WebhookError::Unexpected(e) => ApiError::internal(e.as_ref()),
        }
    }
}

/// Maps a JSON extraction failure to its answer.
pub(crate) fn json_error(e: &JsonPayloadError) -> ApiError {
    match e {
        JsonPayloadError::OverflowKnownLength { limit, .. }
        | JsonPayloadError::Overflow { limit } => ApiError::payload_too_large(*limit),
        JsonPayloadError::ContentType => ApiError::unsupported_media_type(),
        // serde_json's messages describe the client's document (position, field names);
        // they hold nothing of ours.
        JsonPayloadError::Deserialize(de) => match de.classify() {
            Category::Data => ApiError::invalid_body(format!("the body does not fit: {de}")),
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::invalid_json(format!("the body is not valid JSON: {de}"))
            }
        },
        JsonPayloadError::Payload(actix_web::error::PayloadError::Overflow) => {
            ApiError::payload_too_large(JSON_LIMIT)
        }
        _ => ApiError::invalid_json("the request body could not be read"),
    }
}

/// Maps a query-string extraction failure to 400 `invalid_parameter`.
pub(crate) fn query_error(e: &QueryPayloadError) -> ApiError {
    match e {
        // serde_urlencoded names the unknown or duplicated parameter in its message.
        QueryPayloadError::Deserialize(de) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!("the query string is not acceptable: {de}"),
        ),
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "the query string is not acceptable",
        ),
    }
}

/// Maps a path extraction failure to 400 `invalid_parameter`.
pub(crate) fn path_error(e: &PathError) -> ApiError {
    match e {
        PathError::Deserialize(de) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            format!("a path parameter is not acceptable: {de}"),
        ),
        _ => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_parameter",
            "a path parameter is not acceptable",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_chain_includes_every_source() {
        let inner = std::io::Error::other("socket closed");
        let outer = BillingError::Unexpected(Box::new(inner));

        let text = Chain(&outer).to_string();

        assert_eq!(text, "unexpected error: socket closed");
    }

    #[test]
    fn an_unexpected_error_answers_an_opaque_body() {
        let e = ApiError::from(BillingError::Unexpected("password=hunter2".into()));

        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.detail().contains("hunter2"));
    }
}
