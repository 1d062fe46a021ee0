//! The notification document, byte for byte.
#![allow(clippy::unwrap_used, reason = "test helpers fail loudly by design")]

use billing_domain::notification::{NewNotification, NotificationBody};
use billing_domain::{Currency, InvoiceId, InvoiceRef, Money, NotificationId, TenantId};
use billing_notifier::render_document;
use chrono::{TimeZone, Utc};

fn payment_failed(invoice_ref: Option<&str>) -> NewNotification {
    NewNotification {
        id: NotificationId::from_uuid(
            uuid::Uuid::parse_str("00000000-0000-4000-8000-000000000001").unwrap(),
        ),
        dedupe_key: "invoice.payment_failed:in_test_7:2".into(),
        occurred_at: Utc.timestamp_opt(1_767_225_600, 0).unwrap(),
        body: NotificationBody::InvoicePaymentFailed {
            tenant: TenantId::from_uuid(
                uuid::Uuid::parse_str("00000000-0000-4000-8000-000000000002").unwrap(),
            ),
            invoice: InvoiceId::from_uuid(
                uuid::Uuid::parse_str("00000000-0000-4000-8000-000000000003").unwrap(),
            ),
            number: "INV-7".into(),
            invoice_ref: invoice_ref.map(|r| InvoiceRef::parse(r).unwrap()),
            amount_due: Money::new(4200, Currency::parse("usd").unwrap()).unwrap(),
            attempt: 2,
        },
    }
}

#[test]
fn an_invoice_payment_failure_renders_the_documented_document() {
    let document = render_document(&payment_failed(Some("in_test_7"))).unwrap();

    assert_eq!(
        document,
        "{\"id\":\"00000000-0000-4000-8000-000000000001\",\"type\":\"invoice.payment_failed\",\
         \"occurredAt\":\"2026-01-01T00:00:00Z\",\"data\":{\
         \"tenantId\":\"00000000-0000-4000-8000-000000000002\",\
         \"invoiceId\":\"00000000-0000-4000-8000-000000000003\",\
         \"invoiceNumber\":\"INV-7\",\"stripeInvoiceId\":\"in_test_7\",\
         \"amountDue\":4200,\"currency\":\"usd\",\"attempt\":2}}"
    );
}

#[test]
fn an_invoice_of_our_own_has_a_null_stripe_invoice_id_and_sub_second_times_are_kept() {
    let mut notification = payment_failed(None);
    notification.occurred_at = Utc.timestamp_opt(1_767_225_600, 123_456_789).unwrap();

    let document: serde_json::Value =
        serde_json::from_str(&render_document(&notification).unwrap()).unwrap();

    assert_eq!(document["data"]["stripeInvoiceId"], serde_json::Value::Null);
    assert_eq!(document["occurredAt"], "2026-01-01T00:00:00.123456789Z");
}

// ---- the lifecycle beyond the seven (issue 14) ----

fn uuid(n: u8) -> uuid::Uuid {
    uuid::Uuid::parse_str(&format!("00000000-0000-4000-8000-0000000000{n:02}")).unwrap()
}

#[test]
fn a_payment_needing_authentication_carries_the_hosted_invoice_page() {
    let mut n = payment_failed(Some("in_test_7"));
    n.body = NotificationBody::InvoicePaymentActionRequired {
        tenant: TenantId::from_uuid(uuid(2)),
        invoice: InvoiceId::from_uuid(uuid(3)),
        number: "INV-7".into(),
        invoice_ref: Some(InvoiceRef::parse("in_test_7").unwrap()),
        hosted_invoice_url: Some("https://invoice.stripe.com/i/acct_1/test_x".into()),
        amount_due: Money::new(4200, Currency::parse("usd").unwrap()).unwrap(),
        attempt: 1,
    };

    let document: serde_json::Value = serde_json::from_str(&render_document(&n).unwrap()).unwrap();

    assert_eq!(document["type"], "invoice.payment_action_required");
    assert_eq!(
        document["data"]["hostedInvoiceUrl"],
        "https://invoice.stripe.com/i/acct_1/test_x"
    );
    assert_eq!(document["data"]["invoiceNumber"], "INV-7");
    assert_eq!(document["data"]["attempt"], 1);
}

#[test]
fn a_trial_reminder_and_a_failed_delayed_payment_render_their_own_data() {
    let mut trial = payment_failed(None);
    trial.body = NotificationBody::SubscriptionTrialWillEnd {
        tenant: TenantId::from_uuid(uuid(2)),
        subscription: None,
        subscription_ref: billing_domain::SubscriptionRef::parse("sub_9").unwrap(),
        trial_end: Some(Utc.timestamp_opt(1_767_225_600, 0).unwrap()),
    };
    let mut failed = payment_failed(None);
    failed.body = NotificationBody::CheckoutAsyncPaymentFailed {
        tenant: TenantId::from_uuid(uuid(2)),
        session: billing_domain::CheckoutSessionRef::parse("cs_test_9").unwrap(),
        subscription_ref: None,
    };

    let trial: serde_json::Value = serde_json::from_str(&render_document(&trial).unwrap()).unwrap();
    let failed: serde_json::Value =
        serde_json::from_str(&render_document(&failed).unwrap()).unwrap();

    assert_eq!(trial["type"], "subscription.trial_will_end");
    assert_eq!(trial["data"]["stripeSubscriptionId"], "sub_9");
    assert_eq!(trial["data"]["trialEnd"], "2026-01-01T00:00:00Z");
    assert_eq!(trial["data"]["subscriptionId"], serde_json::Value::Null);
    assert_eq!(failed["type"], "checkout.async_payment_failed");
    assert_eq!(failed["data"]["stripeCheckoutSessionId"], "cs_test_9");
}

// ---- refunds and disputes (issue 14) ----
#[test]
fn a_dispute_renders_its_payment_dispute_and_amount() {
    let notification = NewNotification {
        id: NotificationId::from_uuid(uuid(1)),
        dedupe_key: "dispute.created:dp_1".into(),
        occurred_at: Utc.timestamp_opt(1_767_225_600, 0).unwrap(),
        body: NotificationBody::DisputeCreated {
            tenant: TenantId::from_uuid(uuid(2)),
            payment: billing_domain::PaymentId::from_uuid(uuid(3)),
            dispute: billing_domain::DisputeId::from_uuid(uuid(4)),
            dispute_ref: billing_domain::DisputeRef::parse("dp_1").unwrap(),
            amount: Money::new(4900, Currency::parse("usd").unwrap()).unwrap(),
            reason: "fraudulent".into(),
            status: billing_domain::DisputeStatus::NeedsResponse,
        },
    };

    let document = render_document(&notification).unwrap();

    assert_eq!(
        document,
        "{\"id\":\"00000000-0000-4000-8000-000000000001\",\"type\":\"dispute.created\",\
         \"occurredAt\":\"2026-01-01T00:00:00Z\",\"data\":{\
         \"tenantId\":\"00000000-0000-4000-8000-000000000002\",\
         \"paymentId\":\"00000000-0000-4000-8000-000000000003\",\
         \"disputeId\":\"00000000-0000-4000-8000-000000000004\",\
         \"stripeDisputeId\":\"dp_1\",\"amount\":4900,\"currency\":\"usd\",\
         \"reason\":\"fraudulent\",\"status\":\"needs_response\"}}"
    );
}
