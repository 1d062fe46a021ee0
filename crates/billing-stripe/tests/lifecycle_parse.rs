//! Stripe event → `ProviderEvent` for the lifecycle beyond the seven (issue 14): one
//! sample delivery per type in `fixtures/events/` (dahlia, built on Stripe's 2026
//! fixtures), and the older invoice shape where it differs (`paid_out_of_band`).

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

fn verifier() -> StripeWebhookVerifier {
    StripeWebhookVerifier::from_secret_list("whsec_test_secret", Duration::from_secs(300))
}

fn parse(kind: &str) -> ProviderEvent {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/events")
        .join(format!("{kind}.json"));
    let e = verifier().parse(&std::fs::read(path).unwrap()).unwrap();
    assert_eq!(e.kind, kind);
    e
}

const CUSTOMER: &str = "cus_t9FXeM4pJmfNhL";
const SUBSCRIPTION: &str = "sub_1RqjwsHx4KpL29aTnHB49Ctb";

#[test]
fn invoice_mirror_events_carry_status_number_and_links() {
    let PaymentEvent::InvoiceCreated(draft) = parse("invoice.created").event else {
        panic!("not a created invoice")
    };
    assert_eq!(draft.status.as_deref(), Some("draft"));
    assert_eq!(draft.number, None);
    assert_eq!(draft.hosted_invoice_url, None);
    assert_eq!(
        draft.subscription.as_ref().map(|s| s.as_str()),
        Some(SUBSCRIPTION)
    );

    let PaymentEvent::InvoiceFinalized(open) = parse("invoice.finalized").event else {
        panic!("not a finalized invoice")
    };
    assert_eq!(open.status.as_deref(), Some("open"));
    assert_eq!(open.number.as_deref(), Some("7F3A9C21-0001"));
    assert!(open
        .hosted_invoice_url
        .as_deref()
        .unwrap()
        .starts_with("https://invoice.stripe.com/i/"));
    assert!(open
        .invoice_pdf_url
        .as_deref()
        .unwrap()
        .ends_with("/pdf?s=ap"));

    let PaymentEvent::InvoiceUpdated(updated) = parse("invoice.updated").event else {
        panic!("not an updated invoice")
    };
    assert_eq!(updated.due_date.map(|d| d.timestamp()), Some(1_786_000_000));
}

#[test]
fn invoice_paid_maps_like_payment_succeeded_and_is_not_out_of_band_in_dahlia() {
    let PaymentEvent::InvoicePaid(paid) = parse("invoice.paid").event else {
        panic!("not a paid invoice")
    };
    let PaymentEvent::InvoicePaid(succeeded) = parse("invoice.payment_succeeded").event else {
        panic!("not a paid invoice")
    };

    assert_eq!(paid, succeeded);
    assert!(!paid.paid_out_of_band);
}

#[test]
fn the_older_shape_says_when_an_invoice_was_paid_out_of_band() {
    let body = br#"{"id":"evt_oob","type":"invoice.paid","created":1600000000,
        "api_version":"2020-08-27",
        "data":{"object":{"id":"in_oob","object":"invoice","customer":"cus_1",
        "subscription":"sub_old","payment_intent":null,"paid":true,"paid_out_of_band":true,
        "status":"paid","amount_due":100,"amount_paid":100,"currency":"usd",
        "status_transitions":{"paid_at":1600000001}}}}"#;

    let e = verifier().parse(body).unwrap();

    let PaymentEvent::InvoicePaid(i) = e.event else {
        panic!("{:?}", e.event)
    };
    assert!(i.paid_out_of_band);
    assert_eq!(i.payment_intent, None);
    assert_eq!(i.subscription.as_ref().map(|s| s.as_str()), Some("sub_old"));
}

#[test]
fn closing_and_action_events_map_to_their_invoice_variants() {
    assert!(matches!(
        parse("invoice.voided").event,
        PaymentEvent::InvoiceVoided(i) if i.status.as_deref() == Some("void")
    ));
    assert!(matches!(
        parse("invoice.marked_uncollectible").event,
        PaymentEvent::InvoiceMarkedUncollectible(i) if i.status.as_deref() == Some("uncollectible")
    ));
    let PaymentEvent::InvoicePaymentActionRequired(i) =
        parse("invoice.payment_action_required").event
    else {
        panic!("not an action-required invoice")
    };
    assert_eq!(i.attempt_count, 1);
    assert!(i.hosted_invoice_url.is_some());
}

#[test]
fn subscription_events_map_to_their_variants_with_the_status_and_trial_end() {
    let status = |e: &PaymentEvent| match e {
        PaymentEvent::SubscriptionCreated(s)
        | PaymentEvent::SubscriptionPaused(s)
        | PaymentEvent::SubscriptionResumed(s)
        | PaymentEvent::SubscriptionTrialWillEnd(s) => s.status,
        other => panic!("{other:?}"),
    };
    let created = parse("customer.subscription.created").event;
    assert!(matches!(created, PaymentEvent::SubscriptionCreated(_)));
    assert_eq!(status(&created), Some(SubscriptionStatus::Incomplete));
    let paused = parse("customer.subscription.paused").event;
    assert!(matches!(paused, PaymentEvent::SubscriptionPaused(_)));
    assert_eq!(status(&paused), Some(SubscriptionStatus::Paused));
    let resumed = parse("customer.subscription.resumed").event;
    assert!(matches!(resumed, PaymentEvent::SubscriptionResumed(_)));
    assert_eq!(status(&resumed), Some(SubscriptionStatus::Active));

    let PaymentEvent::SubscriptionTrialWillEnd(s) =
        parse("customer.subscription.trial_will_end").event
    else {
        panic!("not a trial reminder")
    };
    assert_eq!(s.trial_end.map(|t| t.timestamp()), Some(1_786_100_000));
    assert_eq!(s.subscription.as_str(), SUBSCRIPTION);
}

#[test]
fn checkout_session_events_map_to_their_variants() {
    let PaymentEvent::CheckoutExpired(expired) = parse("checkout.session.expired").event else {
        panic!("not an expired session")
    };
    assert!(expired.session.as_str().starts_with("cs_"));
    assert_eq!(expired.subscription, None);

    let PaymentEvent::CheckoutAsyncPaymentSucceeded(paid) =
        parse("checkout.session.async_payment_succeeded").event
    else {
        panic!("not an async success")
    };
    assert!(!paid.awaiting_payment);
    assert_eq!(paid.customer.as_ref().map(|c| c.as_str()), Some(CUSTOMER));

    assert!(matches!(
        parse("checkout.session.async_payment_failed").event,
        PaymentEvent::CheckoutAsyncPaymentFailed(c) if c.subscription.is_some()
    ));
}

#[test]
fn a_canceled_payment_intent_and_a_deleted_customer_map_to_their_variants() {
    let PaymentEvent::PaymentIntentCanceled(p) = parse("payment_intent.canceled").event else {
        panic!("not a canceled intent")
    };
    assert!(p.payment_intent.as_str().starts_with("pi_"));
    assert_eq!(p.failure_code, None);

    let PaymentEvent::CustomerDeleted(c) = parse("customer.deleted").event else {
        panic!("not a deleted customer")
    };
    assert_eq!(c.customer.as_str(), CUSTOMER);
    assert_eq!(
        c.tenant.customer.as_ref().map(|c| c.as_str()),
        Some(CUSTOMER)
    );
}

#[test]
fn a_deleted_customer_event_carrying_another_object_is_refused() {
    let body = br#"{"id":"evt_x","type":"customer.deleted","created":1,
        "data":{"object":{"id":"sub_1","object":"subscription"}}}"#;

    let err = verifier().parse(body).unwrap_err();

    assert!(err.0.contains("not a customer"), "{}", err.0);
}
