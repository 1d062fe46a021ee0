//! Subscriptions created outside Checkout, paused and resumed (the tenant suspended and
//! back), their trial ending.

use super::*;

#[tokio::test]
async fn a_subscription_started_outside_checkout_is_created_and_activates_its_tenant() {
    let store = store_with_plan();
    let tenant = TenantId::new();

    let applied = deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::SubscriptionCreated(sub_snapshot(
                SubscriptionStatus::Active,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    assert_eq!(applied.outcome, EventOutcome::Processed);
    let state = store.state();
    let sub = state.subscriptions.values().next().unwrap();
    assert_eq!(sub.tenant_id, tenant);
    assert_eq!(sub.status, SubscriptionStatus::Active);
    assert_eq!(state.tenants[&tenant].status, TenantStatus::Active);
}

#[tokio::test]
async fn a_paused_subscription_suspends_its_tenant_until_it_resumes() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::SubscriptionCreated(sub_snapshot(
                SubscriptionStatus::Trialing,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    deliver(
        &store,
        event(
            "evt_2",
            200,
            PaymentEvent::SubscriptionPaused(sub_snapshot(
                SubscriptionStatus::Paused,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();
    let state = store.state();
    assert_eq!(
        state.subscriptions.values().next().unwrap().status,
        SubscriptionStatus::Paused
    );
    assert_eq!(state.tenants[&tenant].status, TenantStatus::Suspended);

    deliver(
        &store,
        event(
            "evt_3",
            300,
            PaymentEvent::SubscriptionResumed(sub_snapshot(
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
async fn a_pause_leaves_the_tenant_active_while_another_subscription_is_live() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    let mut other = sub_snapshot(SubscriptionStatus::Active, Some(tenant));
    other.subscription = SubscriptionRef::parse("sub_2").unwrap();
    deliver(
        &store,
        event("evt_0", 50, PaymentEvent::SubscriptionCreated(other)),
    )
    .await
    .unwrap();

    deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::SubscriptionPaused(sub_snapshot(
                SubscriptionStatus::Paused,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    assert_eq!(store.state().tenants[&tenant].status, TenantStatus::Active);
}

#[tokio::test]
async fn an_operators_suspension_is_not_lifted_by_an_ordinary_update() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    store.with(|s| {
        s.ensure_tenant(tenant).unwrap();
        s.tenants.get_mut(&tenant).unwrap().status = TenantStatus::Suspended;
    });

    deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::SubscriptionCreated(sub_snapshot(
                SubscriptionStatus::Active,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    assert_eq!(
        store.state().tenants[&tenant].status,
        TenantStatus::Suspended
    );
}

#[tokio::test]
async fn a_paused_subscription_that_ends_leaves_the_tenant_cancelled() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::SubscriptionPaused(sub_snapshot(
                SubscriptionStatus::Paused,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    deliver(
        &store,
        event(
            "evt_2",
            200,
            PaymentEvent::SubscriptionDeleted(sub_snapshot(
                SubscriptionStatus::Canceled,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    assert_eq!(
        store.state().tenants[&tenant].status,
        TenantStatus::Cancelled
    );
}

#[tokio::test]
async fn a_trial_ending_soon_is_notified_once_per_subscription_and_trial_end() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    let trialing = SubscriptionSnapshot {
        trial_end: Some(at(5_000)),
        ..sub_snapshot(SubscriptionStatus::Trialing, Some(tenant))
    };
    deliver(
        &store,
        event(
            "evt_0",
            50,
            PaymentEvent::SubscriptionCreated(trialing.clone()),
        ),
    )
    .await
    .unwrap();

    let first = deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::SubscriptionTrialWillEnd(trialing.clone()),
        ),
    )
    .await
    .unwrap();
    let again = deliver(
        &store,
        event(
            "evt_2",
            101,
            PaymentEvent::SubscriptionTrialWillEnd(trialing.clone()),
        ),
    )
    .await
    .unwrap();
    // A later trial end (the trial was extended) is a new reminder.
    deliver(
        &store,
        event(
            "evt_3",
            102,
            PaymentEvent::SubscriptionTrialWillEnd(SubscriptionSnapshot {
                trial_end: Some(at(9_000)),
                ..trialing
            }),
        ),
    )
    .await
    .unwrap();

    assert_eq!(first.outcome, EventOutcome::Processed);
    assert_eq!(first.detail, None);
    assert_eq!(
        again.detail.as_deref(),
        Some("this trial end was already notified")
    );
    let state = store.state();
    let keys: Vec<_> = state
        .notifications
        .iter()
        .map(|n| n.dedupe_key.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "subscription.trial_will_end:sub_1:5000",
            "subscription.trial_will_end:sub_1:9000"
        ]
    );
    assert!(matches!(
        &state.notifications[0].body,
        NotificationBody::SubscriptionTrialWillEnd { tenant: t, trial_end: Some(end), .. }
            if *t == tenant && *end == at(5_000)
    ));
    // A reminder changes no state.
    assert_eq!(
        state.subscriptions.values().next().unwrap().last_event_at,
        Some(at(50))
    );
}

#[tokio::test]
async fn a_trial_reminder_naming_no_tenant_is_unmatched() {
    let store = store_with_plan();

    let applied = deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::SubscriptionTrialWillEnd(sub_snapshot(
                SubscriptionStatus::Trialing,
                None,
            )),
        ),
    )
    .await
    .unwrap();

    assert_eq!(applied.outcome, EventOutcome::Unmatched);
    assert!(store.state().notifications.is_empty());
}

#[tokio::test]
async fn a_tenant_suspended_by_a_pause_is_active_again_after_paying_a_new_checkout() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    for (id, created, event_kind) in [
        (
            "evt_1",
            100,
            PaymentEvent::SubscriptionCreated(sub_snapshot(
                SubscriptionStatus::Active,
                Some(tenant),
            )),
        ),
        (
            "evt_2",
            200,
            PaymentEvent::SubscriptionPaused(sub_snapshot(
                SubscriptionStatus::Paused,
                Some(tenant),
            )),
        ),
    ] {
        deliver(&store, event(id, created, event_kind))
            .await
            .unwrap();
    }
    assert_eq!(
        store.state().tenants[&tenant].status,
        TenantStatus::Suspended
    );

    // The tenant buys a new subscription while the paused one stays paused.
    let PaymentEvent::CheckoutCompleted(mut new_checkout) = checkout(tenant) else {
        unreachable!("checkout() builds a completed checkout")
    };
    new_checkout.session = CheckoutSessionRef::parse("cs_test_2").unwrap();
    new_checkout.subscription = Some(SubscriptionRef::parse("sub_2").unwrap());
    let done = deliver(
        &store,
        event("evt_3", 300, PaymentEvent::CheckoutCompleted(new_checkout)),
    )
    .await
    .unwrap();

    assert_eq!(done.outcome, EventOutcome::Processed);
    assert_eq!(store.state().tenants[&tenant].status, TenantStatus::Active);
}
