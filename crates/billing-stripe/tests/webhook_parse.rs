//! Stripe event → `ProviderEvent`: the seven sample deliveries, unknown types, the older
//! invoice/subscription shapes, leniency and garbage.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions unwrap fixtures"
)]

use std::path::PathBuf;
use std::time::Duration;

use billing_domain::model::SubscriptionStatus;
use billing_domain::ports::WebhookVerifier;
use billing_domain::webhook::{PaymentEvent, ProviderEvent};
use billing_stripe::StripeWebhookVerifier;
use chrono::{DateTime, Utc};

fn verifier() -> StripeWebhookVerifier {
    StripeWebhookVerifier::from_secret_list("whsec_test_secret", Duration::from_secs(300))
}

fn fixture(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/events")
        .join(name);
    std::fs::read(path).unwrap()
}

fn parse(name: &str) -> ProviderEvent {
    verifier().parse(&fixture(name)).unwrap()
}

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap()
}

fn some_at(secs: i64) -> Option<DateTime<Utc>> {
    Some(at(secs))
}

const CUSTOMER: &str = "cus_t9FXeM4pJmfNhL";
const SUBSCRIPTION: &str = "sub_1RqjwsHx4KpL29aTnHB49Ctb";

#[test]
fn checkout_session_completed_maps_to_checkout_completed() {
    let e = parse("checkout.session.completed.json");

    assert_eq!(e.id.as_str(), "evt_1RqWz7Hx4KpL29aT6YhE5Nel");
    assert_eq!(e.kind, "checkout.session.completed");
    assert_eq!(e.created, at(1_785_765_907));
    assert_eq!(e.api_version.as_deref(), Some("2026-07-29.dahlia"));
    assert!(!e.livemode);
    let PaymentEvent::CheckoutCompleted(c) = e.event else {
        panic!("expected CheckoutCompleted, got {:?}", e.event)
    };
    assert_eq!(
        c.session.as_str(),
        "cs_test_a1GNymw9Djfsx9b7GHM7lXtEcJkptZpDpALs24nFkwedVqIZ4i6bKgeYxK"
    );
    assert_eq!(c.customer.as_ref().map(|c| c.as_str()), Some(CUSTOMER));
    assert_eq!(
        c.subscription.as_ref().map(|s| s.as_str()),
        Some(SUBSCRIPTION)
    );
    assert_eq!(c.tenant.client_reference.as_deref(), Some("user_8842"));
    // The sample's metadata uses `app_user_id`, not our `tenantId`/`planId`.
    assert_eq!(c.tenant.metadata, None);
    assert_eq!(c.plan, None);
    assert_eq!(c.tenant.customer, c.customer);
    // `payment_status` `paid`.
    assert!(!c.awaiting_payment);
}

#[test]
fn a_checkout_is_awaiting_payment_unless_paid_or_free() {
    let with = |status: &str| {
        let field = if status.is_empty() {
            String::new()
        } else {
            format!(r#","payment_status":"{status}""#)
        };
        let body = format!(
            r#"{{"id":"evt_1","type":"checkout.session.completed","created":1,
            "data":{{"object":{{"id":"cs_1","object":"checkout.session"{field}}}}}}}"#
        );
        let e = verifier().parse(body.as_bytes()).unwrap();
        let PaymentEvent::CheckoutCompleted(c) = e.event else {
            panic!("{:?}", e.event)
        };
        c.awaiting_payment
    };

    assert!(!with("paid"));
    assert!(!with("no_payment_required"), "a trial needs no payment");
    assert!(with("unpaid"), "a delayed payment method");
    assert!(with("something_new"), "unknown: do not fulfil");
    assert!(!with(""), "absent: as before the field existed");
}

#[test]
fn invoice_payment_succeeded_maps_to_invoice_paid_from_the_dahlia_shape() {
    let e = parse("invoice.payment_succeeded.json");

    assert_eq!(e.id.as_str(), "evt_1RqkQRHx4KpL29aTt8FilQLV");
    let PaymentEvent::InvoicePaid(i) = e.event else {
        panic!("expected InvoicePaid, got {:?}", e.event)
    };
    assert_eq!(i.invoice.as_str(), "in_1RqvsiHx4KpL29aTzvVg974x");
    assert_eq!(i.number.as_deref(), Some("7F3A9C21-0001"));
    assert_eq!(
        i.subscription.as_ref().map(|s| s.as_str()),
        Some(SUBSCRIPTION)
    );
    assert_eq!(i.amount_due, 2000);
    assert_eq!(i.amount_paid, 2000);
    assert_eq!(i.currency, "usd");
    assert_eq!(i.paid_at, some_at(1_785_765_905));
    assert_eq!(i.attempt_count, 1);
    assert_eq!(i.payment_intent, None);
    assert_eq!(i.due_date, None);
    assert_eq!(i.created, some_at(1_785_765_903));
    assert_eq!(i.local_invoice, None);
    assert_eq!(
        i.tenant.customer.as_ref().map(|c| c.as_str()),
        Some(CUSTOMER)
    );
    assert_eq!(i.tenant.subscription_metadata, None);
}

#[test]
fn invoice_payment_failed_maps_to_invoice_payment_failed() {
    let e = parse("invoice.payment_failed.json");

    let PaymentEvent::InvoicePaymentFailed(i) = e.event else {
        panic!("expected InvoicePaymentFailed, got {:?}", e.event)
    };
    assert_eq!(i.invoice.as_str(), "in_1RqpFYHx4KpL29aT6gtEfBZC");
    assert_eq!(i.number.as_deref(), Some("7F3A9C21-0002"));
    assert_eq!(i.amount_due, 2000);
    assert_eq!(i.amount_paid, 0);
    assert_eq!(i.paid_at, None);
    assert_eq!(i.attempt_count, 1);
    assert_eq!(i.created, some_at(1_788_444_303));
    assert_eq!(
        i.subscription.as_ref().map(|s| s.as_str()),
        Some(SUBSCRIPTION)
    );
}

#[test]
fn customer_subscription_updated_maps_to_subscription_updated_with_the_item_period() {
    let e = parse("customer.subscription.updated.json");

    assert_eq!(e.created, at(1_788_858_764));
    let PaymentEvent::SubscriptionUpdated(s) = e.event else {
        panic!("expected SubscriptionUpdated, got {:?}", e.event)
    };
    assert_eq!(s.subscription.as_str(), SUBSCRIPTION);
    assert_eq!(s.customer.as_ref().map(|c| c.as_str()), Some(CUSTOMER));
    assert_eq!(s.status, Some(SubscriptionStatus::Active));
    assert_eq!(s.status_raw, "active");
    assert_eq!(
        s.price.as_ref().map(|p| p.as_str()),
        Some("price_1Rq48kHx4KpL29aTV5PnnbOR")
    );
    assert_eq!(s.current_period_start, some_at(1_788_444_303));
    assert_eq!(s.current_period_end, some_at(1_791_036_303));
    assert!(!s.cancel_at_period_end);
    assert_eq!(s.canceled_at, None);
    assert_eq!(s.ended_at, None);
    assert_eq!(s.tenant.metadata, None);
    assert_eq!(s.plan, None);
}

#[test]
fn customer_subscription_deleted_maps_to_subscription_deleted() {
    let e = parse("customer.subscription.deleted.json");

    let PaymentEvent::SubscriptionDeleted(s) = e.event else {
        panic!("expected SubscriptionDeleted, got {:?}", e.event)
    };
    assert_eq!(s.status, Some(SubscriptionStatus::Canceled));
    assert!(s.cancel_at_period_end);
    assert_eq!(s.canceled_at, some_at(1_789_929_011));
    assert_eq!(s.ended_at, some_at(1_791_036_303));
}

#[test]
fn payment_intent_succeeded_maps_to_payment_succeeded() {
    let e = parse("payment_intent.succeeded.json");

    assert_eq!(e.id.as_str(), "evt_1RqF0hHx4KpL29aThXHsP9po");
    let PaymentEvent::PaymentSucceeded(p) = e.event else {
        panic!("expected PaymentSucceeded, got {:?}", e.event)
    };
    assert_eq!(p.payment_intent.as_str(), "pi_1RqWFLHx4KpL29aTXSrZ0rcy");
    assert_eq!(p.amount, 4900);
    assert_eq!(p.amount_received, 4900);
    assert_eq!(p.currency, "usd");
    assert_eq!(
        p.charge.as_ref().map(|c| c.as_str()),
        Some("ch_1RqRVlHx4KpL29aT8iUtRSB7")
    );
    assert_eq!(p.customer.as_ref().map(|c| c.as_str()), Some(CUSTOMER));
    assert_eq!(p.failure_code, None);
    assert_eq!(p.failure_message, None);
    assert_eq!(p.local_invoice, None);
}

#[test]
fn payment_intent_payment_failed_carries_the_decline_code_and_message() {
    let e = parse("payment_intent.payment_failed.json");

    let PaymentEvent::PaymentFailed(p) = e.event else {
        panic!("expected PaymentFailed, got {:?}", e.event)
    };
    assert_eq!(p.payment_intent.as_str(), "pi_1Rqgw2Hx4KpL29aTUF7f2N5W");
    assert_eq!(p.amount, 4900);
    assert_eq!(p.amount_received, 0);
    assert_eq!(p.failure_code.as_deref(), Some("insufficient_funds"));
    assert_eq!(
        p.failure_message.as_deref(),
        Some("Your card has insufficient funds.")
    );
    assert_eq!(
        p.charge.as_ref().map(|c| c.as_str()),
        Some("ch_1RqjhdHx4KpL29aTF7dcVib5")
    );
}

#[test]
fn an_unknown_event_type_is_ignored_but_keeps_its_envelope() {
    let body = std::fs::read(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../billing-stripe-emulator/fixtures/event.json"),
    )
    .unwrap();

    let e = verifier().parse(&body).unwrap();

    assert_eq!(e.event, PaymentEvent::Ignored);
    assert_eq!(e.kind, "plan.created");
    assert_eq!(e.id.as_str(), "evt_1Pgc76B7WZ01zgkWwyRHS12y");
    assert_eq!(e.api_version, None);
}

#[test]
fn an_unknown_type_without_data_is_still_ignored() {
    let e = verifier()
        .parse(br#"{"id":"evt_1","type":"v2.something","created":1}"#)
        .unwrap();

    assert_eq!(e.event, PaymentEvent::Ignored);
}

#[test]
fn our_metadata_fills_the_tenant_plan_and_invoice_hints() {
    let body = br#"{"id":"evt_1","type":"checkout.session.completed","created":1,"livemode":true,
        "data":{"object":{"id":"cs_1","client_reference_id":"ref",
        "metadata":{"tenantId":"t-1","planId":"plan-pro"},"customer":null,"subscription":null}}}"#;
    let pi = br#"{"id":"evt_2","type":"payment_intent.succeeded","created":1,
        "data":{"object":{"id":"pi_1","amount":5,"amount_received":5,"currency":"eur",
        "metadata":{"tenantId":"t-2","invoiceId":"inv-uuid"},
        "latest_charge":{"id":"ch_obj","object":"charge"}}}}"#;

    let e = verifier().parse(body).unwrap();
    let p = verifier().parse(pi).unwrap();

    assert!(e.livemode);
    let PaymentEvent::CheckoutCompleted(c) = e.event else {
        panic!("{:?}", e.event)
    };
    assert_eq!(c.tenant.metadata.as_deref(), Some("t-1"));
    assert_eq!(c.plan.as_deref(), Some("plan-pro"));
    assert_eq!(c.customer, None);
    let PaymentEvent::PaymentSucceeded(p) = p.event else {
        panic!("{:?}", p.event)
    };
    assert_eq!(p.tenant.metadata.as_deref(), Some("t-2"));
    assert_eq!(p.local_invoice.as_deref(), Some("inv-uuid"));
    assert_eq!(p.charge.as_ref().map(|c| c.as_str()), Some("ch_obj"));
}

#[test]
fn the_older_invoice_shape_with_top_level_fields_is_read() {
    let body = br#"{"id":"evt_old","type":"invoice.payment_succeeded","created":1600000000,
        "api_version":"2020-08-27",
        "data":{"object":{"id":"in_old","customer":"cus_1","subscription":"sub_old",
        "payment_intent":"pi_old","subscription_details":{"metadata":{"tenantId":"t-9"}},
        "metadata":{"invoiceId":"local-1"},
        "amount_due":100,"amount_paid":100,"currency":"usd","paid":true,
        "status_transitions":{"paid_at":1600000001},"attempt_count":2,"due_date":1600100000}}}"#;

    let e = verifier().parse(body).unwrap();

    let PaymentEvent::InvoicePaid(i) = e.event else {
        panic!("{:?}", e.event)
    };
    assert_eq!(i.subscription.as_ref().map(|s| s.as_str()), Some("sub_old"));
    assert_eq!(
        i.payment_intent.as_ref().map(|p| p.as_str()),
        Some("pi_old")
    );
    assert_eq!(i.tenant.subscription_metadata.as_deref(), Some("t-9"));
    assert_eq!(i.local_invoice.as_deref(), Some("local-1"));
    assert_eq!(i.paid_at, some_at(1_600_000_001));
    assert_eq!(i.due_date, some_at(1_600_100_000));
    assert_eq!(i.attempt_count, 2);
}

#[test]
fn dahlia_invoice_metadata_and_expanded_payments_are_read() {
    let body = br#"{"id":"evt_new","type":"invoice.payment_failed","created":1,
        "data":{"object":{"id":"in_new","customer":{"id":"cus_2","object":"customer"},
        "parent":{"type":"subscription_details","subscription_details":{
          "subscription":{"id":"sub_exp","object":"subscription"},"metadata":{"tenantId":"t-3"}}},
        "payments":{"object":"list","data":[
          {"payment":{"type":"payment_intent","payment_intent":"pi_from_payments"}}]}}}}"#;

    let e = verifier().parse(body).unwrap();

    let PaymentEvent::InvoicePaymentFailed(i) = e.event else {
        panic!("{:?}", e.event)
    };
    assert_eq!(i.subscription.as_ref().map(|s| s.as_str()), Some("sub_exp"));
    assert_eq!(i.tenant.subscription_metadata.as_deref(), Some("t-3"));
    assert_eq!(
        i.tenant.customer.as_ref().map(|c| c.as_str()),
        Some("cus_2")
    );
    assert_eq!(
        i.payment_intent.as_ref().map(|p| p.as_str()),
        Some("pi_from_payments")
    );
}

#[test]
fn the_older_subscription_shape_with_top_level_periods_is_read() {
    let body = br#"{"id":"evt_s","type":"customer.subscription.updated","created":1,
        "data":{"object":{"id":"sub_1","customer":"cus_1","status":"past_due",
        "current_period_start":1000,"current_period_end":2000,
        "items":{"data":[{"price":{"id":"price_x","object":"price"}}]},
        "metadata":{"tenantId":"t-4","planId":"plan-basic"}}}}"#;

    let e = verifier().parse(body).unwrap();

    let PaymentEvent::SubscriptionUpdated(s) = e.event else {
        panic!("{:?}", e.event)
    };
    assert_eq!(s.current_period_start, some_at(1000));
    assert_eq!(s.current_period_end, some_at(2000));
    assert_eq!(s.status, Some(SubscriptionStatus::PastDue));
    assert_eq!(s.price.as_ref().map(|p| p.as_str()), Some("price_x"));
    assert_eq!(s.tenant.metadata.as_deref(), Some("t-4"));
    assert_eq!(s.plan.as_deref(), Some("plan-basic"));
}

#[test]
fn unknown_fields_and_unknown_enum_values_still_parse() {
    let body = br#"{"id":"evt_u","type":"customer.subscription.updated","created":1,
        "brand_new_field":{"x":[1,2,3]},
        "data":{"object":{"id":"sub_1","status":"hibernating","another":"x",
        "items":{"data":[]}},"previous_attributes":{"status":"active"}}}"#;

    let e = verifier().parse(body).unwrap();

    let PaymentEvent::SubscriptionUpdated(s) = e.event else {
        panic!("{:?}", e.event)
    };
    assert_eq!(s.status, None);
    assert_eq!(s.status_raw, "hibernating");
    assert_eq!(s.price, None);
    assert_eq!(s.current_period_end, None);
}

#[test]
fn garbage_and_incomplete_envelopes_are_invalid_payloads() {
    let v = verifier();

    for body in [
        &b""[..],
        b"not json",
        b"[]",
        b"null",
        br#"{"id":"evt_test_webhook","object":"event"}"#,
        br#"{"type":"invoice.paid","created":1}"#,
        br#"{"id":"evt_1","created":1}"#,
        br#"{"id":"evt_1","type":"invoice.paid"}"#,
        br#"{"id":"evt_1","type":"invoice.paid","created":"yesterday"}"#,
        br#"{"id":"","type":"invoice.paid","created":1}"#,
        br#"{"id":"evt_1","type":"invoice.payment_succeeded","created":1}"#,
        br#"{"id":"evt_1","type":"invoice.payment_succeeded","created":1,"data":{"object":{"amount_due":1}}}"#,
        br#"{"id":"evt_1","type":"invoice.payment_succeeded","created":1,"data":{"object":"in_1"}}"#,
    ] {
        assert!(
            v.parse(body).is_err(),
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn out_of_range_timestamps_are_invalid_payloads_not_panics() {
    let v = verifier();
    let huge = i64::MAX;

    let envelope = format!(r#"{{"id":"evt_1","type":"x","created":{huge}}}"#);
    let period = format!(
        r#"{{"id":"evt_1","type":"customer.subscription.deleted","created":1,
        "data":{{"object":{{"id":"sub_1","ended_at":{huge}}}}}}}"#
    );

    assert!(v.parse(envelope.as_bytes()).is_err());
    assert!(v.parse(period.as_bytes()).is_err());
}

#[test]
fn truncated_or_mutated_sample_events_never_panic() {
    let v = verifier();
    let names = [
        "checkout.session.completed.json",
        "invoice.payment_succeeded.json",
        "invoice.payment_failed.json",
        "customer.subscription.updated.json",
        "customer.subscription.deleted.json",
        "payment_intent.succeeded.json",
        "payment_intent.payment_failed.json",
    ];

    for name in names {
        let body = fixture(name);
        for cut in (0..body.len()).step_by(37) {
            assert!(v.parse(&body[..cut]).is_err(), "{name} cut at {cut}");
            let mut mutated = body.clone();
            mutated[cut] = b'"';
            let _ = v.parse(&mutated);
        }
    }
}

#[test]
fn an_event_type_that_is_not_a_stripe_type_is_invalid() {
    let body = String::from_utf8(fixture("payment_intent.succeeded.json"))
        .unwrap()
        .replace(
            "\"payment_intent.succeeded\"",
            "\"payment_intent.\\u0000succeeded\"",
        );

    assert!(verifier().parse(body.as_bytes()).is_err());
}

#[test]
fn a_nul_in_a_decline_message_is_replaced_not_passed_on() {
    let body = String::from_utf8(fixture("payment_intent.payment_failed.json")).unwrap();
    let mut event: serde_json::Value = serde_json::from_str(&body).unwrap();
    event["data"]["object"]["last_payment_error"]["message"] = "Declined\u{0}!".into();

    let parsed = verifier()
        .parse(serde_json::to_string(&event).unwrap().as_bytes())
        .unwrap();

    let PaymentEvent::PaymentFailed(p) = parsed.event else {
        panic!("expected PaymentFailed")
    };
    assert_eq!(p.failure_message.as_deref(), Some("Declined\u{FFFD}!"));
}

// ---- refunds and disputes (issue 14) ----

const PAYMENT_INTENT: &str = "pi_1RqWFLHx4KpL29aTXSrZ0rcy";
const CHARGE: &str = "ch_1RqRVlHx4KpL29aT8iUtRSB7";

#[test]
fn charge_refunded_maps_to_the_charge_with_the_refunds_it_lists() {
    let e = parse("charge.refunded.json");

    assert_eq!(e.kind, "charge.refunded");
    let PaymentEvent::ChargeRefunded(c) = e.event else {
        panic!("expected ChargeRefunded, got {:?}", e.event)
    };
    assert_eq!(c.charge.as_str(), CHARGE);
    assert_eq!(c.payment_intent.as_ref().unwrap().as_str(), PAYMENT_INTENT);
    assert_eq!(c.amount_refunded, 1500);
    assert_eq!(c.refunds.len(), 1);
    let r = &c.refunds[0];
    assert_eq!(r.refund.as_str(), "re_1RqH2aHx4KpL29aTg1bJ5rEe");
    assert_eq!(r.charge.as_ref().unwrap().as_str(), CHARGE);
    assert_eq!(r.amount, 1500);
    assert_eq!(
        r.status,
        Some(billing_domain::model::RefundStatus::Succeeded)
    );
    assert_eq!(r.reason.as_deref(), Some("requested_by_customer"));
}

#[test]
fn a_charge_without_its_refunds_list_maps_to_no_refunds_and_a_listed_refund_gets_the_charge() {
    let body = br#"{"id":"evt_1","type":"charge.refunded","created":1700000000,"data":{"object":
        {"id":"ch_1","object":"charge","amount_refunded":100,"payment_intent":"pi_1"}}}"#;
    let PaymentEvent::ChargeRefunded(c) = verifier().parse(body).unwrap().event else {
        panic!("expected ChargeRefunded")
    };
    assert!(c.refunds.is_empty());

    let body = br#"{"id":"evt_2","type":"charge.refunded","created":1700000000,"data":{"object":
        {"id":"ch_1","object":"charge","refunds":{"object":"list","data":[
        {"id":"re_1","object":"refund","amount":100,"currency":"usd","status":"pending"}]}}}}"#;
    let PaymentEvent::ChargeRefunded(c) = verifier().parse(body).unwrap().event else {
        panic!("expected ChargeRefunded")
    };
    assert_eq!(c.refunds[0].charge.as_ref().unwrap().as_str(), "ch_1");
}

#[test]
fn refund_events_map_to_the_refund_as_it_is_now() {
    for (file, status, amount) in [
        ("refund.created.json", "succeeded", 1500),
        ("refund.failed.json", "failed", 3400),
    ] {
        let e = parse(file);
        let PaymentEvent::RefundChanged(r) = e.event else {
            panic!("expected RefundChanged from {file}, got {:?}", e.event)
        };
        assert_eq!(r.status_raw, status);
        assert_eq!(r.amount, amount);
        assert_eq!(r.currency, "usd");
        assert_eq!(r.charge.as_ref().unwrap().as_str(), CHARGE);
        assert_eq!(r.payment_intent.as_ref().unwrap().as_str(), PAYMENT_INTENT);
    }
}

#[test]
fn dispute_events_map_to_the_dispute_as_it_is_now() {
    let created = parse("charge.dispute.created.json");
    let closed = parse("charge.dispute.closed.json");

    let PaymentEvent::DisputeChanged(d) = created.event else {
        panic!("expected DisputeChanged, got {:?}", created.event)
    };
    assert_eq!(d.dispute.as_str(), "dp_1RqJ4eHx4KpL29aTn3Vb8xCd");
    assert_eq!(d.charge.as_ref().unwrap().as_str(), CHARGE);
    assert_eq!(d.amount, 4900);
    assert_eq!(d.reason, "fraudulent");
    assert_eq!(
        d.status,
        Some(billing_domain::model::DisputeStatus::NeedsResponse)
    );
    let PaymentEvent::DisputeChanged(d) = closed.event else {
        panic!("expected DisputeChanged, got {:?}", closed.event)
    };
    assert_eq!(d.status, Some(billing_domain::model::DisputeStatus::Lost));
}

#[test]
fn a_dispute_event_carrying_a_refund_is_invalid_and_an_unknown_status_is_kept_raw() {
    let body =
        br#"{"id":"evt_1","type":"charge.dispute.updated","created":1700000000,"data":{"object":
        {"id":"re_1","object":"refund"}}}"#;
    assert!(verifier().parse(body).is_err());

    let body =
        br#"{"id":"evt_2","type":"charge.dispute.updated","created":1700000000,"data":{"object":
        {"id":"dp_1","object":"dispute","status":"something_new","charge":"ch_1"}}}"#;
    let PaymentEvent::DisputeChanged(d) = verifier().parse(body).unwrap().event else {
        panic!("expected DisputeChanged")
    };
    assert_eq!(d.status, None);
    assert_eq!(d.status_raw, "something_new");
}
