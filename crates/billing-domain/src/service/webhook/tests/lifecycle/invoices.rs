//! Invoices mirrored before payment, paid (also out of band), voided, uncollectible and
//! needing authentication.

use super::*;

fn draft(tenant: TenantId) -> InvoiceSnapshot {
    InvoiceSnapshot {
        number: None,
        status: Some("draft".into()),
        hosted_invoice_url: None,
        invoice_pdf_url: None,
        paid_at: None,
        payment_intent: None,
        ..stripe_invoice(Some(tenant), 4900, 0, 0)
    }
}

fn finalized(tenant: TenantId) -> InvoiceSnapshot {
    InvoiceSnapshot {
        number: Some("ABC-0001".into()),
        status: Some("open".into()),
        due_date: Some(at(90_000)),
        ..stripe_invoice(Some(tenant), 4900, 0, 0)
    }
}

fn only_invoice(store: &FakeStore) -> Invoice {
    let state = store.state();
    assert_eq!(state.invoices.len(), 1);
    state.invoices.values().next().unwrap().clone()
}

#[tokio::test]
async fn a_stripe_invoice_is_mirrored_as_a_draft_then_open_with_its_links() {
    let store = FakeStore::default();
    let tenant = TenantId::new();

    let created = deliver(
        &store,
        event("evt_1", 100, PaymentEvent::InvoiceCreated(draft(tenant))),
    )
    .await
    .unwrap();
    let inv = only_invoice(&store);
    assert_eq!(created.outcome, EventOutcome::Processed);
    assert_eq!(inv.status, InvoiceStatus::Draft);
    assert_eq!(inv.number.as_str(), "in_1");
    assert!(inv.hosted_invoice_url.is_none());

    deliver(
        &store,
        event(
            "evt_2",
            200,
            PaymentEvent::InvoiceFinalized(finalized(tenant)),
        ),
    )
    .await
    .unwrap();

    let inv = only_invoice(&store);
    assert_eq!(inv.status, InvoiceStatus::Open);
    assert_eq!(inv.number.as_str(), "ABC-0001");
    assert_eq!(inv.amount_due, usd(4900));
    assert_eq!(inv.due_date, Some(at(90_000).date_naive()));
    assert_eq!(
        inv.hosted_invoice_url.as_deref(),
        Some("https://invoice.example/i/in_1")
    );
    assert_eq!(
        inv.invoice_pdf_url.as_deref(),
        Some("https://invoice.example/i/in_1/pdf")
    );
    assert_eq!(inv.last_event_at, Some(at(200)));
}

#[tokio::test]
async fn an_updated_draft_changes_what_is_owed() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    deliver(
        &store,
        event("evt_1", 100, PaymentEvent::InvoiceCreated(draft(tenant))),
    )
    .await
    .unwrap();

    deliver(
        &store,
        event(
            "evt_2",
            150,
            PaymentEvent::InvoiceUpdated(InvoiceSnapshot {
                amount_due: 5900,
                ..draft(tenant)
            }),
        ),
    )
    .await
    .unwrap();

    let inv = only_invoice(&store);
    assert_eq!(inv.amount_due, usd(5900));
    assert_eq!(inv.status, InvoiceStatus::Draft);
}

#[tokio::test]
async fn a_draft_event_of_the_same_second_never_undoes_the_finalisation() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_2",
            100,
            PaymentEvent::InvoiceFinalized(finalized(tenant)),
        ),
    )
    .await
    .unwrap();

    let late = deliver(
        &store,
        event("evt_1", 100, PaymentEvent::InvoiceCreated(draft(tenant))),
    )
    .await
    .unwrap();

    assert_eq!(late.outcome, EventOutcome::Processed);
    let inv = only_invoice(&store);
    assert_eq!(inv.status, InvoiceStatus::Open);
    assert_eq!(inv.number.as_str(), "ABC-0001");
    assert!(inv.hosted_invoice_url.is_some());
}

#[tokio::test]
async fn an_older_invoice_update_arriving_late_is_stale() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_2",
            200,
            PaymentEvent::InvoiceFinalized(finalized(tenant)),
        ),
    )
    .await
    .unwrap();

    let late = deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::InvoiceUpdated(InvoiceSnapshot {
                amount_due: 1,
                ..draft(tenant)
            }),
        ),
    )
    .await
    .unwrap();

    assert_eq!(late.outcome, EventOutcome::Stale);
    assert_eq!(only_invoice(&store).amount_due, usd(4900));
}

#[tokio::test]
async fn an_invoice_paid_out_of_band_is_paid_with_no_payment_and_no_lookup() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::InvoiceFinalized(finalized(tenant)),
        ),
    )
    .await
    .unwrap();

    let paid = deliver(
        &store,
        event(
            "evt_2",
            200,
            PaymentEvent::InvoicePaid(InvoiceSnapshot {
                paid_out_of_band: true,
                payment_intent: None,
                ..stripe_invoice(Some(tenant), 4900, 4900, 0)
            }),
        ),
    )
    .await
    .unwrap();

    assert_eq!(paid.outcome, EventOutcome::Processed);
    let state = store.state();
    let inv = only_invoice(&store);
    assert_eq!(inv.status, InvoiceStatus::Paid);
    assert_eq!(inv.amount_paid, usd(4900));
    assert_eq!(inv.paid_at, Some(at(1_500)));
    assert!(inv.payment_intent.is_none());
    assert!(state.payments.is_empty());
    assert!(state.lookups.is_empty());
}

#[tokio::test]
async fn the_second_of_invoice_paid_and_payment_succeeded_changes_nothing_more() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    let snapshot = stripe_invoice(Some(tenant), 4900, 4900, 1);
    deliver(
        &store,
        event("evt_paid", 100, PaymentEvent::InvoicePaid(snapshot.clone())),
    )
    .await
    .unwrap();
    let first = only_invoice(&store);

    let second = deliver(
        &store,
        event("evt_succeeded", 100, PaymentEvent::InvoicePaid(snapshot)),
    )
    .await
    .unwrap();

    assert_eq!(second.outcome, EventOutcome::Processed);
    assert_eq!(second.detail.as_deref(), Some("invoice is already paid"));
    assert_eq!(only_invoice(&store), first);
}

#[tokio::test]
async fn a_voided_invoice_is_void_and_stays_void() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::InvoiceFinalized(finalized(tenant)),
        ),
    )
    .await
    .unwrap();

    let voided = deliver(
        &store,
        event("evt_2", 200, PaymentEvent::InvoiceVoided(finalized(tenant))),
    )
    .await
    .unwrap();
    // A failure of the same second cannot reopen it.
    deliver(
        &store,
        event(
            "evt_3",
            200,
            PaymentEvent::InvoicePaymentFailed(finalized(tenant)),
        ),
    )
    .await
    .unwrap();

    assert_eq!(voided.outcome, EventOutcome::Processed);
    assert_eq!(only_invoice(&store).status, InvoiceStatus::Void);
    assert!(store.state().notifications.is_empty());
}

#[tokio::test]
async fn a_paid_invoice_reported_void_is_flagged_for_an_operator() {
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

    let voided = deliver(
        &store,
        event("evt_2", 200, PaymentEvent::InvoiceVoided(finalized(tenant))),
    )
    .await
    .unwrap();

    assert_eq!(voided.outcome, EventOutcome::Failed);
    assert!(voided
        .detail
        .unwrap()
        .contains("is paid but Stripe reports it void"));
    assert_eq!(only_invoice(&store).status, InvoiceStatus::Paid);
}

#[tokio::test]
async fn an_uncollectible_invoice_can_still_be_paid_later() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::InvoiceMarkedUncollectible(finalized(tenant)),
        ),
    )
    .await
    .unwrap();
    assert_eq!(only_invoice(&store).status, InvoiceStatus::Uncollectible);

    deliver(
        &store,
        event(
            "evt_2",
            200,
            PaymentEvent::InvoicePaid(stripe_invoice(Some(tenant), 4900, 4900, 2)),
        ),
    )
    .await
    .unwrap();

    assert_eq!(only_invoice(&store).status, InvoiceStatus::Paid);
}

#[tokio::test]
async fn a_payment_needing_authentication_is_notified_once_per_attempt_with_the_page() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    let attempt = |n| InvoiceSnapshot {
        attempt_count: n,
        ..finalized(tenant)
    };

    for (id, created, n) in [("evt_1", 100, 1), ("evt_2", 101, 1), ("evt_3", 300, 2)] {
        let applied = deliver(
            &store,
            event(
                id,
                created,
                PaymentEvent::InvoicePaymentActionRequired(attempt(n)),
            ),
        )
        .await
        .unwrap();
        assert_eq!(applied.outcome, EventOutcome::Processed);
    }

    let state = store.state();
    let keys: Vec<_> = state
        .notifications
        .iter()
        .map(|n| n.dedupe_key.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "invoice.payment_action_required:in_1:1",
            "invoice.payment_action_required:in_1:2"
        ]
    );
    let NotificationBody::InvoicePaymentActionRequired {
        hosted_invoice_url,
        tenant: notified,
        ..
    } = &state.notifications[0].body
    else {
        panic!("wrong notification {:?}", state.notifications[0].body);
    };
    assert_eq!(
        hosted_invoice_url.as_deref(),
        Some("https://invoice.example/i/in_1")
    );
    assert_eq!(*notified, tenant);
}

#[tokio::test]
async fn an_invoice_event_naming_no_tenant_is_unmatched_with_the_reason() {
    let store = FakeStore::default();
    let mut orphan = draft(TenantId::new());
    orphan.tenant = hints(None, Some("cus_nobody"));

    for (id, ev) in [
        ("evt_1", PaymentEvent::InvoiceCreated(orphan.clone())),
        ("evt_2", PaymentEvent::InvoiceVoided(orphan.clone())),
        ("evt_3", PaymentEvent::InvoicePaymentActionRequired(orphan)),
    ] {
        let applied = deliver(&store, event(id, 100, ev)).await.unwrap();
        assert_eq!(applied.outcome, EventOutcome::Unmatched);
        assert!(applied.detail.unwrap().contains("cus_nobody"));
    }
    assert!(store.state().invoices.is_empty());
}
