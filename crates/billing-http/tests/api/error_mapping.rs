//! Each `BillingError` variant reaches the client as its status and stable code.

use actix_web::test::TestRequest;
use billing_domain::service::MockBillingApi;
use billing_domain::*;

use crate::helpers::*;

type Case = (fn() -> BillingError, u16, &'static str);

fn cases() -> Vec<Case> {
    vec![
        (
            || BillingError::Forbidden(TenantId::new()),
            403,
            "forbidden",
        ),
        (|| BillingError::NoTenant, 403, "tenant_required"),
        (|| BillingError::AdminOnly, 403, "admin_required"),
        (
            || BillingError::PlanNotFound("plan-x".into()),
            404,
            "plan_not_found",
        ),
        (
            || BillingError::PlanInactive("plan-x".into()),
            409,
            "plan_inactive",
        ),
        (
            || BillingError::PlanExists(ConflictField::PlanCode),
            409,
            "plan_exists",
        ),
        (
            || BillingError::TenantNotFound(TenantId::new()),
            404,
            "tenant_not_found",
        ),
        (
            || BillingError::SubscriptionNotFound(TenantId::new()),
            404,
            "subscription_not_found",
        ),
        (
            || BillingError::AlreadySubscribed(TenantId::new()),
            409,
            "subscription_exists",
        ),
        (
            || BillingError::InvoiceNotFound("inv-9".into()),
            404,
            "invoice_not_found",
        ),
        (|| BillingError::InvoiceExists, 409, "invoice_exists"),
        (
            || BillingError::InvoiceNotPayable(InvoiceStatus::Paid),
            409,
            "invoice_already_paid",
        ),
        (
            || BillingError::InvoiceNotPayable(InvoiceStatus::Void),
            409,
            "invoice_not_payable",
        ),
        (|| BillingError::NothingToPay, 409, "nothing_to_pay"),
        (
            || BillingError::InvoicePaymentPending,
            409,
            "invoice_payment_pending",
        ),
        (
            || BillingError::EventNotFound("evt_x".into()),
            404,
            "event_not_found",
        ),
        (
            || BillingError::CustomerNotFound("cus_x".into()),
            404,
            "customer_not_found",
        ),
        (
            || BillingError::CustomerOfAnotherTenant,
            409,
            "customer_belongs_to_other_tenant",
        ),
        (
            || BillingError::InvalidReturnUrl("host is not allowed"),
            400,
            "invalid_return_url",
        ),
        (
            || BillingError::ReturnUrlRequired,
            400,
            "return_url_required",
        ),
        (
            || BillingError::Invalid("amountDue must be greater than zero".into()),
            422,
            "validation_failed",
        ),
        (
            || BillingError::ProviderNotConfigured,
            503,
            "stripe_not_configured",
        ),
        (
            || BillingError::ProviderUnavailable("stripe said 500 with sk_test_fake".into()),
            502,
            "stripe_unavailable",
        ),
        (
            || BillingError::ProviderRefused {
                code: Some("resource_missing".into()),
                message: "No such price: 'price_gone'".into(),
            },
            400,
            "stripe_request_refused",
        ),
        (
            || BillingError::Unavailable("pool timed out at db-host-7".into()),
            503,
            "database_unavailable",
        ),
        (
            || BillingError::Unexpected("row 42 violates xyz_check".into()),
            500,
            "internal_error",
        ),
    ]
}

async fn answer_to(error: fn() -> BillingError) -> Reply {
    let mut api = MockBillingApi::new();
    api.expect_get_invoice().returning(move |_, _| Err(error()));
    send(
        api,
        TestRequest::get()
            .uri("/api/v1/billing/invoices/inv-001")
            .insert_header(bearer(&admin_token())),
    )
    .await
}

#[actix_rt::test]
async fn every_domain_error_has_its_status_and_code() {
    for (error, status, code) in cases() {
        let reply = answer_to(error).await;

        let detail = reply.assert_problem(status, code);
        assert!(!detail.is_empty(), "{code}");
    }
}

#[actix_rt::test]
async fn server_side_failures_do_not_leak_their_cause() {
    let leaky = [
        (|| BillingError::ProviderUnavailable("sk_test_fake".into())) as fn() -> BillingError,
        || BillingError::Unavailable("db-host-7".into()),
        || BillingError::Unexpected("xyz_check".into()),
    ];
    for error in leaky {
        let secret = error().source_text();

        let reply = answer_to(error).await;

        assert!(!reply.body.to_string().contains(&secret), "{secret} leaked");
    }
}

#[actix_rt::test]
async fn details_name_what_the_client_needs() {
    let refused = answer_to(|| BillingError::ProviderRefused {
        code: None,
        message: "No such price: 'price_gone'".into(),
    })
    .await;
    let subscribed = answer_to(|| BillingError::AlreadySubscribed(TenantId::new())).await;
    let void = answer_to(|| BillingError::InvoiceNotPayable(InvoiceStatus::Void)).await;
    let exists = answer_to(|| BillingError::PlanExists(ConflictField::StripePrice)).await;

    assert_eq!(
        refused.assert_problem(400, "stripe_request_refused"),
        "No such price: 'price_gone'"
    );
    assert!(subscribed
        .assert_problem(409, "subscription_exists")
        .contains("POST /api/v1/billing/stripe/portal"));
    assert!(void
        .assert_problem(409, "invoice_not_payable")
        .contains("void"));
    assert!(exists
        .assert_problem(409, "plan_exists")
        .contains("stripePriceId"));
}

trait SourceText {
    fn source_text(&self) -> String;
}

impl SourceText for BillingError {
    fn source_text(&self) -> String {
        std::error::Error::source(self)
            .map(ToString::to_string)
            .unwrap_or_default()
    }
}
