//! Checkout Sessions expiring, and delayed payments that succeed or fail.

use super::*;

fn session(tenant: TenantId) -> CheckoutCompleted {
    let PaymentEvent::CheckoutCompleted(c) = checkout(tenant) else {
        unreachable!()
    };
    c
}

#[tokio::test]
async fn an_expired_checkout_closes_the_recorded_session_once() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    store.with(|s| {
        s.open_sessions
            .insert(CheckoutSessionRef::parse("cs_test_1").unwrap());
    });

    let expired = deliver(
        &store,
        event("evt_1", 100, PaymentEvent::CheckoutExpired(session(tenant))),
    )
    .await
    .unwrap();
    let again = deliver(
        &store,
        event("evt_2", 101, PaymentEvent::CheckoutExpired(session(tenant))),
    )
    .await
    .unwrap();

    assert_eq!(expired.outcome, EventOutcome::Processed);
    assert_eq!(expired.detail, None);
    assert!(store.state().open_sessions.is_empty());
    assert_eq!(
        again.detail.as_deref(),
        Some("no open checkout session cs_test_1 was recorded")
    );
    assert!(store.state().subscriptions.is_empty());
}

#[tokio::test]
async fn a_delayed_payment_that_succeeds_activates_like_an_immediate_one() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(&store, event("evt_1", 100, unpaid_checkout(tenant)))
        .await
        .unwrap();
    assert_eq!(store.state().tenants[&tenant].status, TenantStatus::Pending);

    let paid = deliver(
        &store,
        event(
            "evt_2",
            200,
            PaymentEvent::CheckoutAsyncPaymentSucceeded(session(tenant)),
        ),
    )
    .await
    .unwrap();

    assert_eq!(paid.outcome, EventOutcome::Processed);
    let state = store.state();
    assert_eq!(
        state.subscriptions.values().next().unwrap().status,
        SubscriptionStatus::Active
    );
    assert_eq!(state.tenants[&tenant].status, TenantStatus::Active);
}

#[tokio::test]
async fn a_delayed_payment_that_succeeds_first_creates_the_active_subscription() {
    let store = store_with_plan();
    let tenant = TenantId::new();

    deliver(
        &store,
        event(
            "evt_2",
            200,
            PaymentEvent::CheckoutAsyncPaymentSucceeded(session(tenant)),
        ),
    )
    .await
    .unwrap();

    assert_eq!(store.state().tenants[&tenant].status, TenantStatus::Active);
}

#[tokio::test]
async fn a_delayed_payment_that_fails_is_notified_once() {
    let store = store_with_plan();
    let tenant = TenantId::new();

    for id in ["evt_1", "evt_2"] {
        let applied = deliver(
            &store,
            event(
                id,
                100,
                PaymentEvent::CheckoutAsyncPaymentFailed(session(tenant)),
            ),
        )
        .await
        .unwrap();
        assert_eq!(applied.outcome, EventOutcome::Processed);
    }

    let state = store.state();
    assert_eq!(state.notifications.len(), 1);
    assert_eq!(
        state.notifications[0].dedupe_key,
        "checkout.async_payment_failed:cs_test_1"
    );
    assert_eq!(state.tenants[&tenant].status, TenantStatus::Pending);
}
