//! The tenant an event is about and its customer (rules in `webhook/tenant.rs`).

use super::*;

#[tokio::test]
async fn an_event_whose_tenant_cannot_be_resolved_is_kept_as_unmatched_with_the_reason() {
    let store = store_with_plan();
    let mut ev = checkout(TenantId::new());
    if let PaymentEvent::CheckoutCompleted(c) = &mut ev {
        c.tenant = TenantHints {
            client_reference: Some("not-a-uuid".into()),
            customer: Some(CustomerRef::parse("cus_unknown").unwrap()),
            ..TenantHints::default()
        };
    }

    let outcome = deliver(&store, event("evt_1", 100, ev)).await.unwrap();

    assert_eq!(outcome.outcome, EventOutcome::Unmatched);
    let detail = outcome.detail.unwrap();
    assert!(
        detail.contains("'not-a-uuid' is not a tenant id"),
        "{detail}"
    );
    assert!(detail.contains("cus_unknown"), "{detail}");
    assert_eq!(
        store.state().events[&EventId::parse("evt_1").unwrap()].0,
        EventOutcome::Unmatched
    );
    assert!(store.state().subscriptions.is_empty());
}

#[tokio::test]
async fn the_tenant_is_found_through_its_known_customer_last() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    store.with(|s| {
        s.ensure_tenant(tenant).unwrap();
        s.tenants.get_mut(&tenant).unwrap().customer = Some(CustomerRef::parse("cus_1").unwrap());
    });
    let mut ev = stripe_invoice(None, 4900, 4900, 1);
    ev.tenant.customer = Some(CustomerRef::parse("cus_1").unwrap());

    deliver(&store, event("evt_1", 100, PaymentEvent::InvoicePaid(ev)))
        .await
        .unwrap();

    assert_eq!(
        store.state().invoices.values().next().unwrap().tenant_id,
        tenant
    );
}

#[tokio::test]
async fn an_event_about_an_old_subscription_does_not_flip_the_tenants_customer_back() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(&store, event("evt_1", 100, checkout(tenant)))
        .await
        .unwrap();
    let mut old = sub_snapshot(SubscriptionStatus::Canceled, Some(tenant));
    old.subscription = SubscriptionRef::parse("sub_old").unwrap();
    old.customer = Some(CustomerRef::parse("cus_old").unwrap());

    deliver(
        &store,
        event("evt_2", 200, PaymentEvent::SubscriptionDeleted(old)),
    )
    .await
    .unwrap();

    let state = store.state();
    assert_eq!(
        state.tenants[&tenant].customer.as_ref().unwrap().as_str(),
        "cus_1"
    );
    assert_eq!(
        state.tenants[&tenant].status,
        TenantStatus::Active,
        "sub_1 is still live"
    );
}
