//! Canceled PaymentIntents and deleted customers.

use super::*;

#[tokio::test]
async fn a_canceled_intent_is_marked_on_the_invoice_it_collects() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    let mut inv = local_invoice(tenant, 4900);
    inv.payment_intent = Some(PaymentIntentRef::parse("pi_1").unwrap());
    let id = inv.id;
    store.with(|s| {
        s.ensure_tenant(tenant).unwrap();
        s.invoices.insert(id, inv);
    });

    let canceled = deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::PaymentIntentCanceled(intent(None, None, 0)),
        ),
    )
    .await
    .unwrap();

    assert_eq!(canceled.outcome, EventOutcome::Processed);
    let inv = &store.state().invoices[&id];
    assert!(inv.payment_intent_canceled);
    assert_eq!(inv.status, InvoiceStatus::Open);
    assert!(store.state().payments.is_empty());
}

#[tokio::test]
async fn a_canceled_intent_of_no_invoice_changes_nothing_and_says_so() {
    let store = FakeStore::default();
    let tenant = TenantId::new();

    let canceled = deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::PaymentIntentCanceled(intent(Some(tenant), None, 0)),
        ),
    )
    .await
    .unwrap();

    assert_eq!(canceled.outcome, EventOutcome::Processed);
    assert_eq!(
        canceled.detail.as_deref(),
        Some("no invoice is collected by pi_1")
    );
}

fn deleted(customer: &str) -> PaymentEvent {
    PaymentEvent::CustomerDeleted(crate::webhook::CustomerDeleted {
        customer: CustomerRef::parse(customer).unwrap(),
        tenant: hints(None, Some(customer)),
    })
}

#[tokio::test]
async fn a_deleted_customer_is_cleared_from_its_tenant_and_history_kept() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(&store, event("evt_1", 100, checkout(tenant)))
        .await
        .unwrap();
    assert!(store.state().tenants[&tenant].customer.is_some());

    let applied = deliver(&store, event("evt_2", 200, deleted("cus_1")))
        .await
        .unwrap();

    assert_eq!(applied.outcome, EventOutcome::Processed);
    let state = store.state();
    assert_eq!(state.tenants[&tenant].customer, None);
    let sub = state.subscriptions.values().next().unwrap();
    assert_eq!(
        sub.customer.as_ref().map(CustomerRef::as_str),
        Some("cus_1")
    );
}

#[tokio::test]
async fn a_deleted_customer_of_no_tenant_is_unmatched() {
    let store = FakeStore::default();

    let applied = deliver(&store, event("evt_1", 100, deleted("cus_9")))
        .await
        .unwrap();

    assert_eq!(applied.outcome, EventOutcome::Unmatched);
    assert!(applied.detail.unwrap().contains("cus_9"));
}

#[tokio::test]
async fn a_subscription_event_delivered_after_its_customers_deletion_does_not_record_it_again() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(&store, event("evt_1", 100, checkout(tenant)))
        .await
        .unwrap();
    deliver(&store, event("evt_2", 300, deleted("cus_1")))
        .await
        .unwrap();

    // Sent before the deletion, delivered after it: the subscription names the tenant by
    // its metadata and the deleted customer.
    let late = deliver(
        &store,
        event(
            "evt_3",
            200,
            PaymentEvent::SubscriptionUpdated(sub_snapshot(
                SubscriptionStatus::Active,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    assert_eq!(store.state().tenants[&tenant].customer, None);
    assert!(
        late.detail
            .unwrap_or_default()
            .contains("cus_1 was deleted"),
        "the ledger says why the customer was left out"
    );
}

#[tokio::test]
async fn a_customer_deleted_before_its_checkout_is_delivered_is_never_recorded() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    // The deletion arrives first: no tenant knows the customer yet.
    let first = deliver(&store, event("evt_2", 300, deleted("cus_1")))
        .await
        .unwrap();
    assert_eq!(first.outcome, EventOutcome::Unmatched);

    deliver(&store, event("evt_1", 100, checkout(tenant)))
        .await
        .unwrap();

    assert_eq!(store.state().tenants[&tenant].customer, None);
}
