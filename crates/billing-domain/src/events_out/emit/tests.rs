//! Which change emits which event: the wrapper over a strict mockall transaction.

use std::sync::{Arc, Mutex};

use chrono::TimeZone;

use super::*;
use crate::ids::{DisputeRef, PlanId};
use crate::model::DisputeStatus;
use crate::ports::MockWebhookTx;
use crate::testing;

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap()
}

/// A mock transaction that records the billing events appended to it.
fn recording() -> (MockWebhookTx, Arc<Mutex<Vec<NewBillingEvent>>>) {
    let appended = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&appended);
    let mut tx = MockWebhookTx::new();
    tx.expect_append_billing_event().returning(move |e| {
        let mut v = sink.lock().unwrap();
        v.push(e.clone());
        Ok(v.len() as u64)
    });
    (tx, appended)
}

fn kinds_of(events: &Mutex<Vec<NewBillingEvent>>) -> Vec<&'static str> {
    events.lock().unwrap().iter().map(|e| e.kind).collect()
}

#[test]
fn a_subscription_first_saved_unread_is_created_and_its_tenant_activated_after_it() {
    let tenant_id = TenantId::new();
    let pending = testing::tenant(tenant_id);
    let (mut tx, appended) = recording();
    let read = pending.clone();
    tx.expect_lock_tenant()
        .returning(move |_| Ok(Some(read.clone())));
    tx.expect_lock_subscription().returning(|_| Ok(None));
    tx.expect_save_subscription().returning(|_| Ok(()));
    tx.expect_save_tenant().returning(|_| Ok(()));

    let mut etx = EmittingTx::new(&mut tx);
    etx.lock_subscription(&SubscriptionRef::parse("sub_1").unwrap())
        .unwrap();
    etx.save_subscription(&testing::subscription(tenant_id, PlanId::new()))
        .unwrap();
    let mut tenant = etx.lock_tenant(tenant_id).unwrap().unwrap();
    tenant.status = TenantStatus::Active;
    etx.save_tenant(&tenant).unwrap();
    let n = etx.flush(|| at(5)).unwrap();

    assert_eq!(n, 2);
    assert_eq!(
        kinds_of(&appended),
        ["subscription.created", "tenant.activated"]
    );
    let events = appended.lock().unwrap();
    assert!(events
        .iter()
        .all(|e| e.tenant == tenant_id && e.created_at == at(5)));
    assert_eq!(events[1].previous_status, Some("pending"));
}

#[test]
fn a_subscriptions_status_or_plan_change_is_an_update_and_canceled_is_its_own_type() {
    let tenant_id = TenantId::new();
    let before = testing::subscription(tenant_id, PlanId::new());
    for (change, expected) in [
        (
            Box::new(|s: &mut Subscription| s.status = SubscriptionStatus::PastDue)
                as Box<dyn Fn(&mut Subscription)>,
            vec!["subscription.updated"],
        ),
        (
            Box::new(|s: &mut Subscription| s.plan_id = PlanId::new()),
            vec!["subscription.updated"],
        ),
        (
            Box::new(|s: &mut Subscription| s.status = SubscriptionStatus::Canceled),
            vec!["subscription.canceled"],
        ),
        // A field the events do not tell about.
        (
            Box::new(|s: &mut Subscription| s.cancel_at_period_end = true),
            vec![],
        ),
        // Saved as read: a stale event's re-save.
        (Box::new(|_: &mut Subscription| {}), vec![]),
    ] {
        let (mut tx, appended) = recording();
        let read = before.clone();
        tx.expect_lock_subscription()
            .returning(move |_| Ok(Some(read.clone())));
        tx.expect_save_subscription().returning(|_| Ok(()));

        let mut etx = EmittingTx::new(&mut tx);
        let mut s = etx
            .lock_subscription(&SubscriptionRef::parse("sub_1").unwrap())
            .unwrap()
            .unwrap();
        change(&mut s);
        etx.save_subscription(&s).unwrap();
        etx.flush(|| at(5)).unwrap();

        assert_eq!(kinds_of(&appended), expected);
    }
}

#[test]
fn an_invoice_becoming_paid_overdue_or_void_is_told_and_opening_it_is_not() {
    let tenant_id = TenantId::new();
    for (status, expected) in [
        (InvoiceStatus::Paid, vec!["invoice.paid"]),
        (InvoiceStatus::Overdue, vec!["invoice.overdue"]),
        (InvoiceStatus::Void, vec!["invoice.voided"]),
        (InvoiceStatus::Uncollectible, vec![]),
        (InvoiceStatus::Open, vec![]),
    ] {
        let (mut tx, appended) = recording();
        let read = testing::invoice(tenant_id);
        tx.expect_lock_invoice()
            .returning(move |_| Ok(Some(read.clone())));
        tx.expect_save_invoice().returning(|_| Ok(()));

        let mut etx = EmittingTx::new(&mut tx);
        let mut invoice = etx.lock_invoice(InvoiceId::new()).unwrap().unwrap();
        invoice.status = status;
        etx.save_invoice(&invoice).unwrap();
        etx.flush(|| at(5)).unwrap();

        assert_eq!(kinds_of(&appended), expected, "{status:?}");
    }
}

#[test]
fn an_inserted_payment_is_told_by_its_outcome_and_a_duplicate_insert_is_not() {
    let tenant_id = TenantId::new();
    let (mut tx, appended) = recording();
    let mut calls = 0;
    tx.expect_insert_payment().returning(move |_, _| {
        calls += 1;
        Ok(calls < 3)
    });
    let ok = testing::payment(tenant_id);
    let failed = Payment {
        status: PaymentStatus::Failed,
        ..testing::payment(tenant_id)
    };
    let source = EventId::parse("evt_1").unwrap();

    let mut etx = EmittingTx::new(&mut tx);
    etx.insert_payment(&ok, &source).unwrap();
    etx.insert_payment(&failed, &source).unwrap();
    // Already recorded: the adapter says so, nothing is told.
    etx.insert_payment(&testing::payment(tenant_id), &source)
        .unwrap();
    etx.flush(|| at(5)).unwrap();

    assert_eq!(kinds_of(&appended), ["payment.succeeded", "payment.failed"]);
}

#[test]
fn a_refund_that_grows_the_refunded_amount_is_told_once_per_unit_of_work() {
    let tenant_id = TenantId::new();
    let (mut tx, appended) = recording();
    let read = testing::payment(tenant_id);
    tx.expect_lock_payment_by_charge()
        .returning(move |_| Ok(Some(read.clone())));
    tx.expect_save_payment_state().returning(|_| Ok(()));

    let mut etx = EmittingTx::new(&mut tx);
    let mut p = etx
        .lock_payment_by_charge(&ChargeRef::parse("ch_1").unwrap())
        .unwrap()
        .unwrap();
    p.amount_refunded = testing::usd(1000);
    p.status = PaymentStatus::PartiallyRefunded;
    etx.save_payment_state(&p).unwrap();
    p.amount_refunded = testing::usd(4900);
    p.status = PaymentStatus::Refunded;
    etx.save_payment_state(&p).unwrap();
    etx.flush(|| at(5)).unwrap();

    assert_eq!(kinds_of(&appended), ["payment.refunded"]);
    assert_eq!(
        appended.lock().unwrap()[0].previous_status,
        Some("succeeded")
    );
}

fn dispute(payment: PaymentId, status: DisputeStatus) -> Dispute {
    Dispute {
        id: DisputeId::new(),
        payment_id: payment,
        amount: testing::usd(4900),
        reason: "fraudulent".into(),
        status,
        dispute_ref: DisputeRef::parse("dp_1").unwrap(),
        last_event_at: at(1),
        created_at: at(1),
        updated_at: at(1),
    }
}

#[test]
fn a_new_dispute_is_created_once_and_its_closing_is_told_with_the_payments_tenant() {
    let tenant_id = TenantId::new();
    let payment = testing::payment(tenant_id);
    let payment_id = payment.id;
    let open = dispute(payment_id, DisputeStatus::NeedsResponse);
    let (mut tx, appended) = recording();
    tx.expect_lock_payment_by_charge()
        .returning(move |_| Ok(Some(payment.clone())));
    let listed = open.clone();
    tx.expect_disputes_of()
        .returning(move |_| Ok(vec![listed.clone()]));
    tx.expect_save_dispute().returning(|_| Ok(()));
    tx.expect_enqueue_notification().returning(|_| Ok(true));

    let mut etx = EmittingTx::new(&mut tx);
    etx.lock_payment_by_charge(&ChargeRef::parse("ch_1").unwrap())
        .unwrap();
    etx.disputes_of(payment_id).unwrap();
    // The known one is won, a second one is new.
    let won = Dispute {
        status: DisputeStatus::Won,
        ..open
    };
    etx.save_dispute(&won).unwrap();
    etx.save_dispute(&dispute(payment_id, DisputeStatus::WarningNeedsResponse))
        .unwrap();
    // Its notification is not told a second time.
    etx.enqueue_notification(&NewNotification {
        id: crate::ids::NotificationId::new(),
        dedupe_key: "dispute:dp_2".into(),
        occurred_at: at(1),
        body: NotificationBody::DisputeCreated {
            tenant: tenant_id,
            payment: payment_id,
            dispute: DisputeId::new(),
            dispute_ref: DisputeRef::parse("dp_2").unwrap(),
            amount: testing::usd(4900),
            reason: "fraudulent".into(),
            status: DisputeStatus::WarningNeedsResponse,
        },
    })
    .unwrap();
    etx.flush(|| at(5)).unwrap();

    assert_eq!(kinds_of(&appended), ["dispute.closed", "dispute.created"]);
    assert!(appended
        .lock()
        .unwrap()
        .iter()
        .all(|e| e.tenant == tenant_id));
}

#[test]
fn a_queued_notification_is_a_billing_event_of_its_type_and_a_deduplicated_one_is_not() {
    let tenant_id = TenantId::new();
    let (mut tx, appended) = recording();
    let mut calls = 0;
    tx.expect_enqueue_notification().returning(move |_| {
        calls += 1;
        Ok(calls == 1)
    });
    let notification = NewNotification {
        id: crate::ids::NotificationId::new(),
        dedupe_key: "trial:sub_1".into(),
        occurred_at: at(1),
        body: NotificationBody::SubscriptionTrialWillEnd {
            tenant: tenant_id,
            subscription: None,
            subscription_ref: SubscriptionRef::parse("sub_1").unwrap(),
            trial_end: None,
        },
    };

    let mut etx = EmittingTx::new(&mut tx);
    assert!(etx.enqueue_notification(&notification).unwrap());
    assert!(!etx.enqueue_notification(&notification).unwrap());
    etx.flush(|| at(5)).unwrap();

    assert_eq!(kinds_of(&appended), ["subscription.trial_will_end"]);
}

#[tokio::test]
async fn the_store_appends_after_applied_work_and_never_for_a_same_second_tie() {
    use crate::ports::{MockClock, MockWebhookStore};

    for (tie, expected) in [(false, 1), (true, 0)] {
        let appended = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&appended);
        let mut inner = MockWebhookStore::new();
        inner.expect_apply().returning(move |work| {
            let (mut tx, seen) = recording();
            let read = testing::invoice(TenantId::new());
            tx.expect_lock_invoice()
                .returning(move |_| Ok(Some(read.clone())));
            tx.expect_save_invoice().returning(|_| Ok(()));
            let outcome = work(&mut tx);
            sink.lock().unwrap().extend(seen.lock().unwrap().drain(..));
            outcome
        });
        let mut clock = MockClock::new();
        clock.expect_now().returning(|| at(9));
        let store = EmittingStore::new(Arc::new(inner), Arc::new(clock));

        store
            .apply(Box::new(move |tx| {
                let mut i = tx.lock_invoice(InvoiceId::new())?.unwrap();
                i.status = InvoiceStatus::Paid;
                tx.save_invoice(&i)?;
                Ok(if tie {
                    WorkOutcome::SameSecondTie(SubscriptionRef::parse("sub_1").unwrap())
                } else {
                    WorkOutcome::Applied(Applied {
                        outcome: EventOutcome::Processed,
                        detail: None,
                    })
                })
            }))
            .await
            .unwrap();

        assert_eq!(appended.lock().unwrap().len(), expected, "tie: {tie}");
    }
}
