//! `invoice.*`: mirroring, payment, failures notified once per attempt (rules in
//! `webhook/invoice.rs`).

use super::*;

#[tokio::test]
async fn a_paid_stripe_invoice_is_mirrored_as_paid() {
    let store = FakeStore::default();
    let tenant = TenantId::new();

    deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::InvoicePaid(stripe_invoice(Some(tenant), 4900, 4900, 1)),
        ),
    )
    .await
    .unwrap();

    let inv = store.state().invoices.values().next().unwrap().clone();
    assert_eq!(inv.status, InvoiceStatus::Paid);
    assert_eq!(inv.amount_paid, usd(4900));
    assert_eq!(inv.paid_at, Some(at(1_500)));
    assert_eq!(inv.number.as_str(), "ABC-0001");
    assert_eq!(inv.payment_intent.unwrap().as_str(), "pi_1");
    // The event named the PaymentIntent: nothing to look up.
    assert!(store.state().lookups.is_empty());
}

#[tokio::test]
async fn a_paid_invoice_without_its_payment_intent_is_looked_up_after_the_event_once() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    let mut paid = stripe_invoice(Some(tenant), 4900, 4900, 1);
    // API 2025-03-31.basil and later: the invoice event does not name it.
    paid.payment_intent = None;

    let first = deliver(
        &store,
        event("evt_1", 100, PaymentEvent::InvoicePaid(paid.clone())),
    )
    .await
    .unwrap();
    // `invoice.paid` and `invoice.payment_succeeded` both come for one payment.
    deliver(&store, event("evt_2", 101, PaymentEvent::InvoicePaid(paid)))
        .await
        .unwrap();

    assert_eq!(first.outcome, EventOutcome::Processed);
    let state = store.state();
    let inv = state.invoices.values().next().unwrap();
    assert_eq!(inv.status, InvoiceStatus::Paid);
    assert!(inv.payment_intent.is_none());
    assert_eq!(state.lookups, vec![(inv.id, at(10_000))]);
}

#[tokio::test]
async fn a_flagged_invoice_asks_for_no_lookup() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    let mut underpaid = stripe_invoice(Some(tenant), 4900, 4000, 1);
    underpaid.payment_intent = None;

    let applied = deliver(
        &store,
        event("evt_1", 100, PaymentEvent::InvoicePaid(underpaid)),
    )
    .await
    .unwrap();

    assert_eq!(applied.outcome, EventOutcome::Failed);
    assert!(store.state().lookups.is_empty());
}

#[tokio::test]
async fn an_underpaid_invoice_is_flagged_not_marked_paid() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    let mut inv = local_invoice(tenant, 4900);
    inv.invoice_ref = Some(InvoiceRef::parse("in_1").unwrap());
    store.with(|s| {
        s.invoices.insert(inv.id, inv.clone());
    });

    let outcome = deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::InvoicePaid(stripe_invoice(Some(tenant), 4000, 4000, 1)),
        ),
    )
    .await
    .unwrap();

    assert_eq!(outcome.outcome, EventOutcome::Failed);
    assert!(outcome.detail.unwrap().contains("amount mismatch"));
    assert_eq!(store.state().invoices[&inv.id].status, InvoiceStatus::Open);
}

#[tokio::test]
async fn a_failed_invoice_payment_is_notified_once_per_attempt() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    let failed = |id: &str, created, attempt| {
        event(
            id,
            created,
            PaymentEvent::InvoicePaymentFailed(stripe_invoice(Some(tenant), 4900, 0, attempt)),
        )
    };

    deliver(&store, failed("evt_1", 100, 1)).await.unwrap();
    deliver(&store, failed("evt_1", 100, 1)).await.unwrap();
    deliver(&store, failed("evt_2", 101, 1)).await.unwrap();
    deliver(&store, failed("evt_3", 200, 2)).await.unwrap();

    let state = store.state();
    assert_eq!(
        state.invoices.values().next().unwrap().status,
        InvoiceStatus::Overdue
    );
    let keys: Vec<_> = state
        .notifications
        .iter()
        .map(|n| n.dedupe_key.clone())
        .collect();
    assert_eq!(
        keys,
        [
            "invoice.payment_failed:in_1:1",
            "invoice.payment_failed:in_1:2"
        ]
    );
}

#[tokio::test]
async fn a_failure_tied_with_a_success_never_unpays_the_invoice() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_paid",
            100,
            PaymentEvent::InvoicePaid(stripe_invoice(Some(tenant), 4900, 4900, 1)),
        ),
    )
    .await
    .unwrap();

    deliver(
        &store,
        event(
            "evt_failed",
            100,
            PaymentEvent::InvoicePaymentFailed(stripe_invoice(Some(tenant), 4900, 0, 1)),
        ),
    )
    .await
    .unwrap();

    let state = store.state();
    assert_eq!(
        state.invoices.values().next().unwrap().status,
        InvoiceStatus::Paid
    );
    assert!(state.notifications.is_empty());
}

#[tokio::test]
async fn a_stripe_invoice_whose_number_is_taken_is_flagged_naming_the_field() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    let mut taken = local_invoice(tenant, 4900);
    taken.number = InvoiceNumber::parse("ABC-0001").unwrap();
    store.with(|s| {
        s.invoices.insert(taken.id, taken.clone());
    });

    let outcome = deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::InvoicePaid(stripe_invoice(Some(tenant), 4900, 4900, 1)),
        ),
    )
    .await
    .unwrap();

    assert_eq!(outcome.outcome, EventOutcome::Failed);
    assert_eq!(
        outcome.detail.as_deref(),
        Some("invoice ABC-0001 clashes with another invoice on its number")
    );
    assert_eq!(store.state().invoices.len(), 1);
}
