//! `payment_intent.*`: payments recorded once, invoices paid (rules in
//! `webhook/payment_intent.rs`).

use super::*;

#[tokio::test]
async fn a_payment_intent_success_is_recorded_once_and_pays_its_invoice() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    let inv = local_invoice(tenant, 4900);
    store.with(|s| {
        s.invoices.insert(inv.id, inv.clone());
    });

    deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::PaymentSucceeded(intent(Some(tenant), Some(inv.id), 4900)),
        ),
    )
    .await
    .unwrap();
    let second = deliver(
        &store,
        event(
            "evt_2",
            101,
            PaymentEvent::PaymentSucceeded(intent(Some(tenant), Some(inv.id), 4900)),
        ),
    )
    .await
    .unwrap();

    let state = store.state();
    assert_eq!(state.payments.len(), 1);
    assert_eq!(
        second.detail.as_deref(),
        Some("payment was already recorded")
    );
    let paid = &state.invoices[&inv.id];
    assert_eq!(paid.status, InvoiceStatus::Paid);
    assert_eq!(paid.amount_paid, usd(4900), "not counted twice");
    assert_eq!(paid.payment_intent.as_ref().unwrap().as_str(), "pi_1");
    assert_eq!(
        state.payments[0].0.charge.as_ref().unwrap().as_str(),
        "ch_1"
    );
}

#[tokio::test]
async fn a_partial_payment_leaves_the_invoice_open() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    let inv = local_invoice(tenant, 4900);
    store.with(|s| {
        s.invoices.insert(inv.id, inv.clone());
    });

    deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::PaymentSucceeded(intent(None, Some(inv.id), 1000)),
        ),
    )
    .await
    .unwrap();

    let state = store.state();
    assert_eq!(state.invoices[&inv.id].status, InvoiceStatus::Open);
    assert_eq!(state.invoices[&inv.id].amount_paid, usd(1000));
    assert_eq!(
        state.payments[0].0.tenant_id, tenant,
        "tenant taken from the invoice"
    );
}

#[tokio::test]
async fn a_failed_payment_attempt_is_recorded_with_stripes_code_and_message() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    let mut failed = intent(Some(tenant), None, 4900);
    failed.failure_code = Some("card_declined".into());
    failed.failure_message = Some("Your card was declined.".into());

    deliver(
        &store,
        event("evt_1", 100, PaymentEvent::PaymentFailed(failed.clone())),
    )
    .await
    .unwrap();
    deliver(
        &store,
        event("evt_1", 100, PaymentEvent::PaymentFailed(failed)),
    )
    .await
    .unwrap();

    let state = store.state();
    assert_eq!(state.payments.len(), 1);
    let (p, _) = &state.payments[0];
    assert_eq!(p.status, PaymentStatus::Failed);
    assert_eq!(p.failure_code.as_deref(), Some("card_declined"));
    assert_eq!(
        p.failure_message.as_deref(),
        Some("Your card was declined.")
    );
}
