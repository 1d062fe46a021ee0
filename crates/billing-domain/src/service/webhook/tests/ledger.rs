//! What every event goes through (rules in `webhook/mod.rs`): the ledger row, duplicates,
//! unknown types, replays, and the rollback of a failed transaction.

use super::*;

#[tokio::test]
async fn a_redelivered_event_changes_nothing() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(&store, event("evt_1", 100, checkout(tenant)))
        .await
        .unwrap();
    let before = store.state().subscriptions;

    let again = deliver(&store, event("evt_1", 100, checkout(tenant)))
        .await
        .unwrap();

    assert_eq!(again.outcome, EventOutcome::Duplicate);
    assert_eq!(store.state().subscriptions, before);
    assert_eq!(store.state().events.len(), 1);
}

#[tokio::test]
async fn an_unknown_event_type_is_recorded_as_ignored() {
    let store = FakeStore::default();

    let outcome = deliver(&store, event("evt_1", 100, PaymentEvent::Ignored))
        .await
        .unwrap();

    assert_eq!(outcome.outcome, EventOutcome::Ignored);
    assert_eq!(
        store.state().events[&EventId::parse("evt_1").unwrap()].0,
        EventOutcome::Ignored
    );
}

#[tokio::test]
async fn a_database_failure_mid_event_leaves_no_partial_change() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    let inv = local_invoice(tenant, 4900);
    store.with(|s| {
        s.invoices.insert(inv.id, inv.clone());
        s.fail_invoice_writes = true;
    });

    let err = deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::PaymentSucceeded(intent(Some(tenant), Some(inv.id), 4900)),
        ),
    )
    .await
    .unwrap_err();

    assert!(matches!(err, RepoError::Unavailable(_)));
    let state = store.state();
    assert!(
        state.events.is_empty(),
        "ledger row rolled back with the rest"
    );
    assert!(state.payments.is_empty());

    store.with(|s| s.fail_invoice_writes = false);
    let retried = deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::PaymentSucceeded(intent(Some(tenant), Some(inv.id), 4900)),
        ),
    )
    .await
    .unwrap();
    assert_eq!(retried.outcome, EventOutcome::Processed);
    assert_eq!(store.state().invoices[&inv.id].status, InvoiceStatus::Paid);
}

#[tokio::test]
async fn a_replay_applies_an_unmatched_event_once_its_cause_is_fixed() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    let ev = || event("evt_1", 100, checkout(tenant));
    let first = deliver(&store, ev()).await.unwrap();
    assert_eq!(first.outcome, EventOutcome::Unmatched, "no plan yet");
    store.with(|s| s.plans.push(pro_plan()));

    let redelivered = deliver(&store, ev()).await.unwrap();
    let replayed = deliver_as(&store, ev(), Delivery::Replay).await.unwrap();
    let replayed_again = deliver_as(&store, ev(), Delivery::Replay).await.unwrap();

    assert_eq!(redelivered.outcome, EventOutcome::Duplicate);
    assert_eq!(replayed.outcome, EventOutcome::Processed);
    assert_eq!(replayed_again.outcome, EventOutcome::Duplicate);
    assert_eq!(
        store.state().events[&EventId::parse("evt_1").unwrap()].0,
        EventOutcome::Processed
    );
}

#[test]
fn ledger_details_never_carry_control_characters() {
    assert_eq!(quote("a\0b\nc"), "abc");
    assert_eq!(quote(&"x".repeat(100)).len(), 64);
}
