//! `checkout.session.completed` (rules in `webhook/checkout.rs`).

use super::*;

#[tokio::test]
async fn a_completed_checkout_creates_the_subscription_and_activates_the_tenant() {
    let store = store_with_plan();
    let tenant = TenantId::new();

    let outcome = deliver(&store, event("evt_1", 100, checkout(tenant)))
        .await
        .unwrap();

    let state = store.state();
    assert_eq!(outcome.outcome, EventOutcome::Processed);
    let sub = state.subscriptions.values().next().unwrap();
    assert_eq!(sub.tenant_id, tenant);
    assert_eq!(sub.status, SubscriptionStatus::Active);
    assert_eq!(sub.subscription_ref.as_ref().unwrap().as_str(), "sub_1");
    let t = &state.tenants[&tenant];
    assert_eq!(t.status, TenantStatus::Active);
    assert_eq!(t.customer.as_ref().unwrap().as_str(), "cus_1");
    assert_eq!(state.completed_sessions[0].as_str(), "cs_test_1");
}

#[tokio::test]
async fn a_checkout_still_awaiting_payment_waits_for_the_subscription_to_turn_active() {
    let store = store_with_plan();
    let tenant = TenantId::new();

    let done = deliver(&store, event("evt_1", 100, unpaid_checkout(tenant)))
        .await
        .unwrap();

    {
        let state = store.state();
        assert_eq!(done.outcome, EventOutcome::Processed);
        assert!(
            done.detail
                .as_deref()
                .unwrap()
                .starts_with("payment pending"),
            "{done:?}"
        );
        let sub = state.subscriptions.values().next().unwrap();
        assert_eq!(sub.status, SubscriptionStatus::Incomplete);
        let t = &state.tenants[&tenant];
        assert_eq!(
            t.status,
            TenantStatus::Pending,
            "no service before the money"
        );
        assert_eq!(t.customer.as_ref().unwrap().as_str(), "cus_1");
    }

    // The bank debit clears: Stripe reports the subscription active.
    deliver(
        &store,
        event(
            "evt_2",
            200,
            PaymentEvent::SubscriptionUpdated(sub_snapshot(
                SubscriptionStatus::Active,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    let state = store.state();
    assert_eq!(
        state.subscriptions.values().next().unwrap().status,
        SubscriptionStatus::Active
    );
    assert_eq!(state.tenants[&tenant].status, TenantStatus::Active);
}

#[tokio::test]
async fn a_delayed_payment_that_fails_leaves_the_tenant_unactivated() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(&store, event("evt_1", 100, unpaid_checkout(tenant)))
        .await
        .unwrap();

    deliver(
        &store,
        event(
            "evt_2",
            200,
            PaymentEvent::SubscriptionUpdated(sub_snapshot(
                SubscriptionStatus::IncompleteExpired,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    let state = store.state();
    assert_eq!(
        state.subscriptions.values().next().unwrap().status,
        SubscriptionStatus::IncompleteExpired
    );
    assert_eq!(state.tenants[&tenant].status, TenantStatus::Pending);
}

#[tokio::test]
async fn a_checkout_with_another_tenants_customer_is_flagged_and_changes_nothing() {
    let store = store_with_plan();
    let owner = TenantId::new();
    deliver(&store, event("evt_1", 100, checkout(owner)))
        .await
        .unwrap();
    let intruder = TenantId::new();
    let mut other = checkout(intruder);
    if let PaymentEvent::CheckoutCompleted(c) = &mut other {
        c.subscription = Some(SubscriptionRef::parse("sub_2").unwrap());
    }

    let outcome = deliver(&store, event("evt_2", 200, other)).await.unwrap();

    assert_eq!(outcome.outcome, EventOutcome::Failed);
    assert!(outcome.detail.unwrap().contains("belongs to tenant"));
    let state = store.state();
    assert_eq!(state.subscriptions.len(), 1);
    assert_eq!(
        state.tenants[&owner].customer.as_ref().unwrap().as_str(),
        "cus_1"
    );
}

#[tokio::test]
async fn a_second_live_subscription_is_recorded_and_called_out() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(&store, event("evt_1", 100, checkout(tenant)))
        .await
        .unwrap();
    let mut second = checkout(tenant);
    if let PaymentEvent::CheckoutCompleted(c) = &mut second {
        c.subscription = Some(SubscriptionRef::parse("sub_2").unwrap());
    }

    let outcome = deliver(&store, event("evt_2", 200, second)).await.unwrap();

    assert_eq!(outcome.outcome, EventOutcome::Processed);
    assert!(outcome.detail.unwrap().contains("second one"));
    assert_eq!(store.state().subscriptions.len(), 2);
}
