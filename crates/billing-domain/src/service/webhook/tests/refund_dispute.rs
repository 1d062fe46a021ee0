//! `charge.refunded`, `refund.*` and `charge.dispute.*` (rules in `webhook/refund.rs` and
//! `webhook/dispute.rs`): one row per Stripe refund or dispute whatever the order and the
//! number of deliveries, and the payment's refunded amount and status derived from them.

use super::*;

fn collected(tenant: TenantId, amount: i64) -> Payment {
    Payment {
        id: PaymentId::new(),
        tenant_id: tenant,
        invoice_id: None,
        amount: usd(amount),
        amount_refunded: usd(0),
        status: PaymentStatus::Succeeded,
        failure_code: None,
        failure_message: None,
        payment_intent: Some(PaymentIntentRef::parse("pi_1").unwrap()),
        charge: Some(ChargeRef::parse("ch_1").unwrap()),
        created_at: at(0),
    }
}

fn store_with_payment(amount: i64) -> (FakeStore, Payment) {
    let store = FakeStore::default();
    let payment = collected(TenantId::new(), amount);
    store.with(|s| {
        s.payments
            .push((payment.clone(), EventId::parse("evt_paid").unwrap()));
    });
    (store, payment)
}

fn refund(id: &str, amount: i64, status: &str) -> RefundSnapshot {
    RefundSnapshot {
        refund: RefundRef::parse(id).unwrap(),
        charge: Some(ChargeRef::parse("ch_1").unwrap()),
        payment_intent: Some(PaymentIntentRef::parse("pi_1").unwrap()),
        amount,
        currency: "usd".into(),
        status: RefundStatus::parse(status),
        status_raw: status.into(),
        reason: Some("requested_by_customer".into()),
    }
}

fn charge_refunded(refunds: Vec<RefundSnapshot>) -> PaymentEvent {
    PaymentEvent::ChargeRefunded(ChargeRefunded {
        charge: ChargeRef::parse("ch_1").unwrap(),
        payment_intent: Some(PaymentIntentRef::parse("pi_1").unwrap()),
        amount_refunded: refunds.iter().map(|r| r.amount).sum(),
        refunds,
    })
}

fn dispute(status: &str) -> PaymentEvent {
    PaymentEvent::DisputeChanged(DisputeSnapshot {
        dispute: DisputeRef::parse("dp_1").unwrap(),
        charge: Some(ChargeRef::parse("ch_1").unwrap()),
        payment_intent: Some(PaymentIntentRef::parse("pi_1").unwrap()),
        amount: 1000,
        currency: "usd".into(),
        reason: "fraudulent".into(),
        status: DisputeStatus::parse(status),
        status_raw: status.into(),
    })
}

fn payment_of(store: &FakeStore, id: PaymentId) -> Payment {
    store
        .state()
        .payments
        .into_iter()
        .find(|(p, _)| p.id == id)
        .unwrap()
        .0
}

/// The refunds' business fields (not our ids or times), sorted by Stripe id.
fn refund_rows(store: &FakeStore) -> Vec<(String, i64, RefundStatus, Option<String>)> {
    let mut rows: Vec<_> = store
        .state()
        .refunds
        .iter()
        .map(|r| {
            (
                r.refund_ref.to_string(),
                r.amount.minor(),
                r.status,
                r.reason.clone(),
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

#[tokio::test]
async fn a_full_refund_makes_the_payment_refunded_with_one_refund_row() {
    let (store, payment) = store_with_payment(1000);

    let outcome = deliver(
        &store,
        event(
            "evt_r1",
            100,
            PaymentEvent::RefundChanged(refund("re_1", 1000, "succeeded")),
        ),
    )
    .await
    .unwrap();

    assert_eq!(outcome.outcome, EventOutcome::Processed);
    let p = payment_of(&store, payment.id);
    assert_eq!(p.status, PaymentStatus::Refunded);
    assert_eq!(p.amount_refunded, usd(1000));
    assert_eq!(
        refund_rows(&store),
        vec![(
            "re_1".into(),
            1000,
            RefundStatus::Succeeded,
            Some("requested_by_customer".into())
        )]
    );
    assert_eq!(store.state().refunds[0].payment_id, payment.id);
}

#[tokio::test]
async fn charge_refunded_before_or_after_refund_created_gives_the_same_rows() {
    let events = |first: bool| {
        let charge = event(
            "evt_c",
            100,
            charge_refunded(vec![refund("re_1", 400, "succeeded")]),
        );
        let created = event(
            "evt_r",
            100,
            PaymentEvent::RefundChanged(refund("re_1", 400, "succeeded")),
        );
        if first {
            [charge, created]
        } else {
            [created, charge]
        }
    };
    let mut finals = Vec::new();
    for charge_first in [true, false] {
        let (store, payment) = store_with_payment(1000);
        for ev in events(charge_first) {
            deliver(&store, ev).await.unwrap();
        }
        let p = payment_of(&store, payment.id);
        finals.push((refund_rows(&store), p.status, p.amount_refunded));
    }

    assert_eq!(finals[0], finals[1]);
    assert_eq!(finals[0].0.len(), 1, "one row per Stripe refund");
    assert_eq!(finals[0].1, PaymentStatus::PartiallyRefunded);
    assert_eq!(finals[0].2, usd(400));
}

#[tokio::test]
async fn a_second_partial_refund_adds_up_and_refunds_the_rest() {
    let (store, payment) = store_with_payment(1000);

    deliver(
        &store,
        event(
            "evt_c1",
            100,
            charge_refunded(vec![refund("re_1", 300, "succeeded")]),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        payment_of(&store, payment.id).status,
        PaymentStatus::PartiallyRefunded
    );
    deliver(
        &store,
        event(
            "evt_c2",
            200,
            charge_refunded(vec![
                refund("re_2", 700, "succeeded"),
                refund("re_1", 300, "succeeded"),
            ]),
        ),
    )
    .await
    .unwrap();

    let p = payment_of(&store, payment.id);
    assert_eq!(p.status, PaymentStatus::Refunded);
    assert_eq!(p.amount_refunded, usd(1000));
    assert_eq!(refund_rows(&store).len(), 2);
}

#[tokio::test]
async fn a_failed_refund_gives_the_amount_back_in_any_order_within_one_second() {
    let pending = || PaymentEvent::RefundChanged(refund("re_1", 1000, "pending"));
    let failed = || PaymentEvent::RefundChanged(refund("re_1", 1000, "failed"));
    let orders: [[(&str, PaymentEvent); 3]; 3] = [
        [
            ("evt_a", pending()),
            ("evt_b", failed()),
            ("evt_c", failed()),
        ],
        [
            ("evt_b", failed()),
            ("evt_a", pending()),
            ("evt_c", failed()),
        ],
        [
            ("evt_c", failed()),
            ("evt_b", failed()),
            ("evt_a", pending()),
        ],
    ];
    for order in orders {
        let (store, payment) = store_with_payment(1000);
        for (id, ev) in order {
            deliver(&store, event(id, 100, ev)).await.unwrap();
        }

        let p = payment_of(&store, payment.id);
        assert_eq!(p.status, PaymentStatus::Succeeded);
        assert_eq!(p.amount_refunded, usd(0));
        assert_eq!(refund_rows(&store)[0].2, RefundStatus::Failed);
    }
}

#[tokio::test]
async fn an_older_refund_event_is_stale_and_changes_nothing() {
    let (store, payment) = store_with_payment(1000);
    deliver(
        &store,
        event(
            "evt_new",
            200,
            PaymentEvent::RefundChanged(refund("re_1", 1000, "failed")),
        ),
    )
    .await
    .unwrap();

    let old = deliver(
        &store,
        event(
            "evt_old",
            100,
            charge_refunded(vec![refund("re_1", 1000, "pending")]),
        ),
    )
    .await
    .unwrap();

    assert_eq!(old.outcome, EventOutcome::Stale);
    assert_eq!(refund_rows(&store)[0].2, RefundStatus::Failed);
    assert_eq!(
        payment_of(&store, payment.id).status,
        PaymentStatus::Succeeded
    );
}

#[tokio::test]
async fn every_refund_and_dispute_event_delivered_five_times_applies_once() {
    let (store, payment) = store_with_payment(1000);
    let events = [
        event(
            "evt_c",
            100,
            charge_refunded(vec![refund("re_1", 200, "succeeded")]),
        ),
        event(
            "evt_r",
            100,
            PaymentEvent::RefundChanged(refund("re_1", 200, "succeeded")),
        ),
        event("evt_d", 110, dispute("needs_response")),
    ];

    let mut outcomes = Vec::new();
    for _ in 0..5 {
        for ev in &events {
            outcomes.push(deliver(&store, ev.clone()).await.unwrap().outcome);
        }
    }

    let state = store.state();
    assert_eq!(state.refunds.len(), 1);
    assert_eq!(state.disputes.len(), 1);
    assert_eq!(state.notifications.len(), 1);
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == EventOutcome::Duplicate)
            .count(),
        12
    );
    let p = payment_of(&store, payment.id);
    assert_eq!(p.status, PaymentStatus::Disputed);
    assert_eq!(p.amount_refunded, usd(200));
}

#[tokio::test]
async fn a_dispute_makes_the_payment_disputed_and_notifies_once() {
    let (store, payment) = store_with_payment(1000);

    deliver(&store, event("evt_d1", 100, dispute("needs_response")))
        .await
        .unwrap();
    deliver(&store, event("evt_d2", 100, dispute("needs_response")))
        .await
        .unwrap();
    deliver(&store, event("evt_d3", 150, dispute("under_review")))
        .await
        .unwrap();

    let state = store.state();
    assert_eq!(
        payment_of(&store, payment.id).status,
        PaymentStatus::Disputed
    );
    assert_eq!(state.disputes.len(), 1);
    assert_eq!(state.disputes[0].status, DisputeStatus::UnderReview);
    assert_eq!(state.notifications.len(), 1);
    let n = &state.notifications[0];
    assert_eq!(n.dedupe_key, "dispute.created:dp_1");
    assert_eq!(n.body.kind(), "dispute.created");
    let crate::notification::NotificationBody::DisputeCreated {
        tenant,
        payment: paid,
        amount,
        ..
    } = &n.body
    else {
        panic!("expected a dispute notification, got {:?}", n.body)
    };
    assert_eq!(*tenant, payment.tenant_id);
    assert_eq!(*paid, payment.id);
    assert_eq!(*amount, usd(1000));
}

#[tokio::test]
async fn a_won_dispute_gives_back_the_refund_status_and_a_lost_one_is_final() {
    let (store, payment) = store_with_payment(1000);
    deliver(
        &store,
        event(
            "evt_r",
            90,
            PaymentEvent::RefundChanged(refund("re_1", 100, "succeeded")),
        ),
    )
    .await
    .unwrap();
    deliver(&store, event("evt_d1", 100, dispute("needs_response")))
        .await
        .unwrap();

    deliver(&store, event("evt_d2", 200, dispute("won")))
        .await
        .unwrap();
    assert_eq!(
        payment_of(&store, payment.id).status,
        PaymentStatus::PartiallyRefunded
    );

    // A same-second event saying it is open again does not reopen a decided dispute.
    let tie = deliver(&store, event("evt_d3", 200, dispute("under_review")))
        .await
        .unwrap();
    assert_eq!(tie.outcome, EventOutcome::Processed);
    assert!(tie.detail.unwrap().contains("already won"));
    assert_eq!(store.state().disputes[0].status, DisputeStatus::Won);
}

#[tokio::test]
async fn a_lost_dispute_applied_before_its_created_event_stays_lost_and_notifies_once() {
    let (store, payment) = store_with_payment(1000);

    deliver(&store, event("evt_closed", 300, dispute("lost")))
        .await
        .unwrap();
    let created = deliver(&store, event("evt_created", 100, dispute("needs_response")))
        .await
        .unwrap();

    assert_eq!(created.outcome, EventOutcome::Stale);
    assert_eq!(
        payment_of(&store, payment.id).status,
        PaymentStatus::DisputeLost
    );
    assert_eq!(store.state().notifications.len(), 1);
}

#[tokio::test]
async fn a_refund_found_by_its_payment_intent_when_the_charge_is_not_recorded() {
    let (store, payment) = store_with_payment(1000);
    let mut r = refund("re_1", 1000, "succeeded");
    r.charge = Some(ChargeRef::parse("ch_other").unwrap());

    deliver(&store, event("evt_r", 100, PaymentEvent::RefundChanged(r)))
        .await
        .unwrap();

    assert_eq!(
        payment_of(&store, payment.id).status,
        PaymentStatus::Refunded
    );
}

#[tokio::test]
async fn a_refund_in_another_currency_is_flagged_without_a_row() {
    let (store, payment) = store_with_payment(1000);
    let mut r = refund("re_1", 1000, "succeeded");
    r.currency = "eur".into();

    let outcome = deliver(&store, event("evt_r", 100, PaymentEvent::RefundChanged(r)))
        .await
        .unwrap();

    assert_eq!(outcome.outcome, EventOutcome::Failed);
    assert!(outcome.detail.unwrap().contains("eur"));
    assert!(store.state().refunds.is_empty());
    assert_eq!(
        payment_of(&store, payment.id).status,
        PaymentStatus::Succeeded
    );
}

#[tokio::test]
async fn a_charge_refunded_without_its_refunds_list_changes_nothing_and_says_why() {
    let (store, payment) = store_with_payment(1000);

    let outcome = deliver(&store, event("evt_c", 100, charge_refunded(vec![])))
        .await
        .unwrap();

    assert_eq!(outcome.outcome, EventOutcome::Processed);
    assert!(outcome.detail.unwrap().contains("lists no refunds"));
    assert_eq!(
        payment_of(&store, payment.id).status,
        PaymentStatus::Succeeded
    );
}

#[test]
fn a_refund_of_an_unknown_payment_is_unmatched_and_writes_nothing() {
    // mockall: no refund, dispute or payment write may happen, only the ledger's.
    let mut tx = crate::ports::MockWebhookTx::new();
    tx.expect_insert_event().times(1).returning(|_| Ok(true));
    tx.expect_lock_payment_by_charge()
        .times(1)
        .returning(|_| Ok(None));
    tx.expect_lock_payment_by_payment_intent()
        .times(1)
        .returning(|_| Ok(None));
    tx.expect_save_refund().never();
    tx.expect_save_payment_state().never();
    tx.expect_set_event_outcome()
        .withf(|_, applied, _| {
            applied.outcome == EventOutcome::Unmatched
                && applied.detail.as_deref()
                    == Some(
                        "refund re_1: no collected payment for charge ch_1 or PaymentIntent pi_1",
                    )
        })
        .times(1)
        .returning(|_, _, _| Ok(()));
    let ev = event(
        "evt_r",
        100,
        PaymentEvent::RefundChanged(refund("re_1", 1000, "succeeded")),
    );
    let entry = NewLedgerEntry {
        event_id: ev.id.clone(),
        kind: "refund.created".into(),
        created: ev.created,
        api_version: None,
        livemode: false,
        received_at: at(1),
        outcome: EventOutcome::Processed,
        payload: Arc::from("{}"),
        source: crate::model::EventSource::Webhook,
    };

    let outcome = apply_event(&mut tx, &ev, &entry, Delivery::Webhook, at(1)).unwrap();

    assert_eq!(
        outcome,
        WorkOutcome::Applied(Applied {
            outcome: EventOutcome::Unmatched,
            detail: Some(
                "refund re_1: no collected payment for charge ch_1 or PaymentIntent pi_1".into()
            ),
        })
    );
}

#[tokio::test]
async fn a_dispute_of_an_unknown_payment_is_unmatched() {
    let store = FakeStore::default();

    let outcome = deliver(&store, event("evt_d", 100, dispute("needs_response")))
        .await
        .unwrap();

    assert_eq!(outcome.outcome, EventOutcome::Unmatched);
    assert!(store.state().notifications.is_empty());
}
