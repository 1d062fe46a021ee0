//! `customer.subscription.*`: order, the same-second tie, cancellation (rules in
//! `webhook/subscription.rs`).

use super::*;

#[tokio::test]
async fn a_subscription_turning_live_beside_another_live_one_is_called_out() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    // A card checkout (sub_1, active), and an older bank-debit one clearing later (sub_2).
    deliver(&store, event("evt_1", 100, checkout(tenant)))
        .await
        .unwrap();
    let mut debit = sub_snapshot(SubscriptionStatus::Incomplete, Some(tenant));
    debit.subscription = SubscriptionRef::parse("sub_2").unwrap();
    deliver(
        &store,
        event(
            "evt_2",
            110,
            PaymentEvent::SubscriptionUpdated(debit.clone()),
        ),
    )
    .await
    .unwrap();
    debit.status = Some(SubscriptionStatus::Active);

    let cleared = deliver(
        &store,
        event("evt_3", 120, PaymentEvent::SubscriptionUpdated(debit)),
    )
    .await
    .unwrap();

    assert_eq!(cleared.outcome, EventOutcome::Processed);
    assert_eq!(
        cleared.detail.as_deref(),
        Some(
            format!("tenant {tenant} already had a live subscription; sub_2 is a second one")
                .as_str()
        )
    );
}

#[tokio::test]
async fn an_older_subscription_update_arriving_late_is_stale() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_new",
            200,
            PaymentEvent::SubscriptionUpdated(sub_snapshot(
                SubscriptionStatus::PastDue,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    let late = deliver(
        &store,
        event(
            "evt_old",
            150,
            PaymentEvent::SubscriptionUpdated(sub_snapshot(
                SubscriptionStatus::Active,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    assert_eq!(late.outcome, EventOutcome::Stale);
    let sub = store.state().subscriptions.values().next().unwrap().clone();
    assert_eq!(sub.status, SubscriptionStatus::PastDue);
    assert_eq!(sub.last_event_at, Some(at(200)));
}

#[tokio::test]
async fn a_subscription_update_before_its_checkout_creates_it_and_checkout_completes_it() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_upd",
            200,
            PaymentEvent::SubscriptionUpdated(sub_snapshot(
                SubscriptionStatus::PastDue,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    let done = deliver(&store, event("evt_chk", 150, checkout(tenant)))
        .await
        .unwrap();

    assert_eq!(done.outcome, EventOutcome::Processed);
    let state = store.state();
    assert_eq!(state.subscriptions.len(), 1);
    let sub = state.subscriptions.values().next().unwrap();
    assert_eq!(
        sub.status,
        SubscriptionStatus::PastDue,
        "the newer status is kept"
    );
    assert_eq!(
        state.tenants[&tenant].customer.as_ref().unwrap().as_str(),
        "cus_1"
    );
}

#[tokio::test]
async fn a_same_second_tie_rolls_back_and_asks_for_stripes_state() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_a",
            200,
            PaymentEvent::SubscriptionUpdated(sub_snapshot(
                SubscriptionStatus::Active,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    let tie = run(
        &store,
        event(
            "evt_b",
            200,
            PaymentEvent::SubscriptionUpdated(sub_snapshot(
                SubscriptionStatus::PastDue,
                Some(tenant),
            )),
        ),
        Delivery::Webhook,
    )
    .await
    .unwrap();

    assert_eq!(
        tie,
        WorkOutcome::SameSecondTie(SubscriptionRef::parse("sub_1").unwrap())
    );
    assert!(
        !store
            .state()
            .events
            .contains_key(&EventId::parse("evt_b").unwrap()),
        "rolled back"
    );

    let settled = deliver_as(
        &store,
        event(
            "evt_b",
            200,
            PaymentEvent::SubscriptionUpdated(sub_snapshot(
                SubscriptionStatus::PastDue,
                Some(tenant),
            )),
        ),
        Delivery::Refetched,
    )
    .await
    .unwrap();

    assert_eq!(settled.outcome, EventOutcome::Processed);
    assert_eq!(
        store.state().subscriptions.values().next().unwrap().status,
        SubscriptionStatus::PastDue
    );
}

#[tokio::test]
async fn a_tie_stripe_cannot_settle_is_recorded_as_failed_without_effects() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_a",
            200,
            PaymentEvent::SubscriptionUpdated(sub_snapshot(
                SubscriptionStatus::Active,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    let outcome = deliver_as(
        &store,
        event(
            "evt_b",
            200,
            PaymentEvent::SubscriptionUpdated(sub_snapshot(
                SubscriptionStatus::Canceled,
                Some(tenant),
            )),
        ),
        Delivery::Unsettled,
    )
    .await
    .unwrap();

    assert_eq!(outcome.outcome, EventOutcome::Failed);
    let state = store.state();
    assert_eq!(
        state.events[&EventId::parse("evt_b").unwrap()].0,
        EventOutcome::Failed
    );
    assert_eq!(
        state.subscriptions.values().next().unwrap().status,
        SubscriptionStatus::Active
    );
}

#[tokio::test]
async fn a_deleted_subscription_cancels_the_tenant_when_nothing_live_is_left() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(&store, event("evt_1", 100, checkout(tenant)))
        .await
        .unwrap();
    let mut gone = sub_snapshot(SubscriptionStatus::Canceled, Some(tenant));
    gone.ended_at = Some(at(300));

    deliver(
        &store,
        event("evt_2", 300, PaymentEvent::SubscriptionDeleted(gone)),
    )
    .await
    .unwrap();

    let state = store.state();
    let sub = state.subscriptions.values().next().unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Canceled);
    assert_eq!(sub.canceled_at, Some(at(300)));
    assert_eq!(state.tenants[&tenant].status, TenantStatus::Cancelled);
}

#[tokio::test]
async fn a_canceled_subscription_is_not_revived_by_a_later_update() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::SubscriptionDeleted(sub_snapshot(
                SubscriptionStatus::Canceled,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    let outcome = deliver(
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

    assert_eq!(outcome.outcome, EventOutcome::Stale);
    assert_eq!(
        store.state().subscriptions.values().next().unwrap().status,
        SubscriptionStatus::Canceled
    );
}

#[tokio::test]
async fn an_update_to_an_unknown_price_is_unmatched_and_changes_nothing() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(&store, event("evt_1", 100, checkout(tenant)))
        .await
        .unwrap();
    let mut snap = sub_snapshot(SubscriptionStatus::Active, Some(tenant));
    snap.price = Some(PriceRef::parse("price_unknown").unwrap());

    let outcome = deliver(
        &store,
        event("evt_2", 200, PaymentEvent::SubscriptionUpdated(snap)),
    )
    .await
    .unwrap();

    assert_eq!(outcome.outcome, EventOutcome::Unmatched);
    assert!(outcome.detail.unwrap().contains("price_unknown"));
    assert_eq!(
        store
            .state()
            .subscriptions
            .values()
            .next()
            .unwrap()
            .last_event_at,
        Some(at(100))
    );
}

#[tokio::test]
async fn past_due_since_is_set_on_entering_past_due_kept_while_there_and_cleared_on_leaving() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    let update = |id: &'static str, secs: i64, status: SubscriptionStatus| {
        event(
            id,
            secs,
            PaymentEvent::SubscriptionUpdated(sub_snapshot(status, Some(tenant))),
        )
    };
    let since = |store: &FakeStore| {
        store
            .state()
            .subscriptions
            .values()
            .next()
            .unwrap()
            .past_due_since
    };

    deliver(&store, update("evt_1", 100, SubscriptionStatus::Active))
        .await
        .unwrap();
    let while_active = since(&store);
    deliver(&store, update("evt_2", 200, SubscriptionStatus::PastDue))
        .await
        .unwrap();
    let entered = since(&store);
    deliver(&store, update("evt_3", 300, SubscriptionStatus::PastDue))
        .await
        .unwrap();
    let stayed = since(&store);
    deliver(&store, update("evt_4", 400, SubscriptionStatus::Active))
        .await
        .unwrap();
    let left = since(&store);
    deliver(&store, update("evt_5", 500, SubscriptionStatus::PastDue))
        .await
        .unwrap();
    let again = since(&store);

    assert_eq!(while_active, None);
    assert_eq!(entered, Some(at(200)));
    assert_eq!(
        stayed,
        Some(at(200)),
        "a second failure keeps the first one"
    );
    assert_eq!(left, None);
    assert_eq!(again, Some(at(500)));
}
