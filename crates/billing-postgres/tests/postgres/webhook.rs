use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use billing_domain::notification::{NewNotification, NotificationBody};
use billing_domain::page::{PageLimit, PageRequest};
use billing_domain::ports::{
    Applied, InvoiceRepository, LedgerRepository, NewLedgerEntry, OutboxRepository, PaymentQuery,
    PaymentRepository, PlanRepository, RepoError, TenantRepository, WebhookStore, WebhookWork,
};
use billing_domain::{
    ChargeRef, CustomerRef, EventId, EventOutcome, Invoice, InvoiceId, InvoiceKey, InvoiceNumber,
    InvoiceRef, InvoiceStatus, NotificationId, Payment, PaymentId, PaymentIntentRef, PaymentStatus,
    PlanId, PlanKey, PriceRef, Subscription, SubscriptionId, SubscriptionRef, SubscriptionStatus,
    TenantId, TenantStatus,
};
use billing_postgres::{PgConfig, PgStore};
use chrono::{DateTime, TimeZone, Utc};

use crate::{new_invoice, new_plan, processed, setup, usd, work};

fn with_detail(detail: &str) -> Applied {
    Applied {
        outcome: EventOutcome::Processed,
        detail: Some(detail.to_owned()),
    }
}

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + secs, 0).unwrap()
}

fn event_id(id: &str) -> EventId {
    EventId::parse(id).unwrap()
}

fn entry(id: &str) -> NewLedgerEntry {
    NewLedgerEntry {
        event_id: event_id(id),
        kind: "invoice.paid".into(),
        created: at(0),
        api_version: Some("2026-07-29.dahlia".into()),
        livemode: false,
        received_at: at(5),
        outcome: EventOutcome::Processed,
        payload: format!("{{\"id\":\"{id}\"}}").into(),
    }
}

/// Work that only inserts the ledger row and reports whether it was new.
fn insert_only(entry: NewLedgerEntry) -> WebhookWork {
    work(move |tx| {
        Ok(Applied {
            outcome: if tx.insert_event(&entry)? {
                EventOutcome::Processed
            } else {
                EventOutcome::Duplicate
            },
            detail: None,
        })
    })
}

fn subscription(tenant: TenantId, plan: PlanId, stripe_id: &str) -> Subscription {
    Subscription {
        id: SubscriptionId::new(),
        tenant_id: tenant,
        plan_id: plan,
        status: SubscriptionStatus::Active,
        current_period_start: Some(at(0)),
        current_period_end: Some(at(30 * 86_400)),
        cancel_at_period_end: false,
        canceled_at: None,
        subscription_ref: Some(SubscriptionRef::parse(stripe_id).unwrap()),
        customer: Some(CustomerRef::parse("cus_test_1").unwrap()),
        last_event_at: Some(at(0)),
        created_at: at(1),
        updated_at: at(1),
    }
}

fn invoice(tenant: TenantId, number: &str, stripe_id: &str) -> Invoice {
    Invoice {
        id: InvoiceId::new(),
        tenant_id: tenant,
        subscription_id: None,
        number: InvoiceNumber::parse(number).unwrap(),
        status: InvoiceStatus::Open,
        amount_due: usd(2900),
        amount_paid: usd(0),
        due_date: None,
        description: None,
        paid_at: None,
        invoice_ref: Some(InvoiceRef::parse(stripe_id).unwrap()),
        payment_intent: None,
        last_event_at: Some(at(0)),
        created_at: at(1),
        updated_at: at(1),
    }
}

fn payment(tenant: TenantId, status: PaymentStatus, pi: &str) -> Payment {
    Payment {
        id: PaymentId::new(),
        tenant_id: tenant,
        invoice_id: None,
        amount: usd(2900),
        status,
        failure_code: (status == PaymentStatus::Failed).then(|| "card_declined".to_owned()),
        failure_message: None,
        payment_intent: Some(PaymentIntentRef::parse(pi).unwrap()),
        charge: None,
        created_at: at(2),
    }
}

fn payment_failed(tenant: TenantId, key: &str) -> NewNotification {
    NewNotification {
        id: NotificationId::new(),
        dedupe_key: key.to_owned(),
        occurred_at: at(0),
        body: NotificationBody::InvoicePaymentFailed {
            tenant,
            invoice: InvoiceId::new(),
            number: "INV-7".into(),
            invoice_ref: Some(InvoiceRef::parse("in_test_7").unwrap()),
            amount_due: usd(4200),
            attempt: 2,
        },
    }
}

/// A custom error the domain would downcast.
#[derive(Debug, thiserror::Error)]
#[error("marker {0}")]
struct Marker(u32);

#[tokio::test]
async fn an_event_is_inserted_once_and_then_reported_as_a_duplicate() {
    let (_db, store) = setup();

    let first = store.apply(insert_only(entry("evt_once"))).await.unwrap();
    let second = store.apply(insert_only(entry("evt_once"))).await.unwrap();

    assert_eq!(first.outcome, EventOutcome::Processed);
    assert_eq!(second.outcome, EventOutcome::Duplicate);
    let stored = LedgerRepository::get(&store, &event_id("evt_once"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.outcome, EventOutcome::Processed);
    assert_eq!(stored.processed_at, Some(at(5)));
    assert_eq!(stored.payload, "{\"id\":\"evt_once\"}");
    assert_eq!(stored.api_version.as_deref(), Some("2026-07-29.dahlia"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_deliveries_of_one_event_insert_it_exactly_once() {
    let (db, _store) = setup();
    let store = PgStore::new(&PgConfig {
        max_connections: 8,
        ..PgConfig::new(db.url())
    });

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.apply(insert_only(entry("evt_race"))).await })
        })
        .collect();
    let outcomes: Vec<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap().outcome)
        .collect();

    let inserted = outcomes
        .iter()
        .filter(|o| **o == EventOutcome::Processed)
        .count();
    assert_eq!(inserted, 1, "{outcomes:?}");
    assert!(outcomes
        .iter()
        .all(|o| matches!(o, EventOutcome::Processed | EventOutcome::Duplicate)));
    let page = LedgerRepository::list(
        &store,
        Default::default(),
        PageRequest {
            after: None,
            limit: PageLimit::new(10).unwrap(),
        },
    )
    .await
    .unwrap();
    assert_eq!(page.items.len(), 1);
}

#[tokio::test]
async fn work_that_fails_after_writing_leaves_no_row_behind() {
    let (_db, store) = setup();
    let tenant = TenantId::new();

    let result = store
        .apply(work(move |tx| {
            tx.insert_event(&entry("evt_rolled_back"))?;
            tx.ensure_tenant(tenant)?;
            Err(RepoError::Unexpected(Box::new(Marker(7))))
        }))
        .await;

    assert!(result.is_err());
    assert!(LedgerRepository::get(&store, &event_id("evt_rolled_back"))
        .await
        .unwrap()
        .is_none());
    assert!(TenantRepository::get(&store, tenant)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn an_error_from_the_work_comes_back_unchanged() {
    let (_db, store) = setup();

    let err = store
        .apply(work(|_| Err(RepoError::Unexpected(Box::new(Marker(42))))))
        .await
        .unwrap_err();

    let RepoError::Unexpected(source) = err else {
        panic!("expected Unexpected, got {err:?}");
    };
    assert_eq!(source.downcast_ref::<Marker>().map(|m| m.0), Some(42));
}

#[tokio::test]
async fn a_tenant_is_ensured_found_by_customer_and_saved_inside_the_transaction() {
    let (_db, store) = setup();
    let id = TenantId::new();

    let found = store
        .apply(work(move |tx| {
            let created = tx.ensure_tenant(id)?;
            let again = tx.ensure_tenant(id)?;
            assert_eq!(created, again);
            assert_eq!(created.status, TenantStatus::Pending);
            let mut tenant = created;
            tenant.status = TenantStatus::Active;
            tenant.customer = Some(CustomerRef::parse("cus_test_tx").unwrap());
            tenant.updated_at = at(9);
            tx.save_tenant(&tenant)?;
            let by_customer = tx
                .tenant_by_customer(&CustomerRef::parse("cus_test_tx").unwrap())?
                .map(|t| t.id.to_string());
            Ok(with_detail(&by_customer.unwrap_or_default()))
        }))
        .await
        .unwrap();

    assert_eq!(found.detail, Some(id.to_string()));
    let stored = TenantRepository::get(&store, id).await.unwrap().unwrap();
    assert_eq!(stored.status, TenantStatus::Active);
    assert_eq!(stored.updated_at, at(9));
}

#[tokio::test]
async fn a_subscription_is_inserted_then_updated_and_liveness_is_judged_per_tenant() {
    let (_db, store) = setup();
    let plan = PlanRepository::create(&store, new_plan("basic", "price_basic"))
        .await
        .unwrap();
    let tenant = TenantRepository::ensure(&store, TenantId::new())
        .await
        .unwrap()
        .id;
    let first = subscription(tenant, plan.id, "sub_test_a");
    let second = subscription(tenant, plan.id, "sub_test_b");
    let (a, b) = (first.clone(), second.clone());

    let applied = store
        .apply(work(move |tx| {
            tx.save_subscription(&a)?;
            tx.save_subscription(&b)?;
            let mut locked = tx
                .lock_subscription(a.subscription_ref.as_ref().unwrap())?
                .unwrap();
            assert_eq!(locked, a);
            locked.status = SubscriptionStatus::Canceled;
            locked.canceled_at = Some(at(50));
            locked.last_event_at = Some(at(50));
            tx.save_subscription(&locked)?;
            let other_live_for_a = tx.has_other_live_subscription(tenant, a.id)?;
            let mut b = b.clone();
            b.status = SubscriptionStatus::Canceled;
            tx.save_subscription(&b)?;
            let other_live_for_b = tx.has_other_live_subscription(tenant, b.id)?;
            let by_price = tx.plan_by_price(&PriceRef::parse("price_basic").unwrap())?;
            let by_code = tx.plan(&PlanKey::parse("basic").unwrap())?;
            Ok(with_detail(&format!(
                "{other_live_for_a} {other_live_for_b} {} {}",
                by_price.is_some(),
                by_code.is_some()
            )))
        }))
        .await
        .unwrap();

    assert_eq!(applied.detail.as_deref(), Some("true false true true"));
    let stored = store
        .apply(work(move |tx| {
            let s = tx
                .lock_subscription(&SubscriptionRef::parse("sub_test_a").unwrap())?
                .unwrap();
            assert_eq!(s.id, first.id);
            assert_eq!(s.status, SubscriptionStatus::Canceled);
            assert_eq!(s.canceled_at, Some(at(50)));
            assert_eq!(s.last_event_at, Some(at(50)));
            assert_eq!(s.created_at, first.created_at);
            Ok(processed())
        }))
        .await;
    assert!(stored.is_ok(), "{stored:?}");
}

#[tokio::test]
async fn an_invoice_is_upserted_and_found_by_each_of_its_keys() {
    let (_db, store) = setup();
    let tenant = TenantRepository::ensure(&store, TenantId::new())
        .await
        .unwrap()
        .id;
    let inv = invoice(tenant, "INV-100", "in_test_100");
    let id = inv.id;

    store
        .apply(work(move |tx| {
            tx.save_invoice(&inv)?;
            let mut paid = tx.lock_invoice(inv.id)?.unwrap();
            assert_eq!(paid, inv);
            paid.status = InvoiceStatus::Paid;
            paid.amount_paid = usd(2900);
            paid.paid_at = Some(at(60));
            paid.payment_intent = Some(PaymentIntentRef::parse("pi_test_100").unwrap());
            paid.updated_at = at(61);
            tx.save_invoice(&paid)?;
            let by_ref = tx.lock_invoice_by_ref(&InvoiceRef::parse("in_test_100").unwrap())?;
            let by_pi = tx
                .lock_invoice_by_payment_intent(&PaymentIntentRef::parse("pi_test_100").unwrap())?;
            assert_eq!(by_ref.as_ref(), Some(&paid));
            assert_eq!(by_pi, Some(paid));
            Ok(processed())
        }))
        .await
        .unwrap();

    let stored = InvoiceRepository::get(&store, &InvoiceKey::Id(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, InvoiceStatus::Paid);
    assert_eq!(stored.amount_paid, usd(2900));
    assert_eq!(stored.paid_at, Some(at(60)));
    assert_eq!(stored.created_at, at(1));
    assert_eq!(stored.updated_at, at(61));
}

#[tokio::test]
async fn a_clashing_invoice_is_a_conflict_and_the_event_can_still_be_recorded_as_failed() {
    let (_db, store) = setup();
    let tenant = TenantId::new();
    InvoiceRepository::create(&store, new_invoice(tenant, "INV-1", 2900))
        .await
        .unwrap();
    let stripe_owned = invoice(tenant, "INV-2", "in_test_taken");
    store
        .apply(work(move |tx| {
            tx.save_invoice(&stripe_owned)?;
            Ok(processed())
        }))
        .await
        .unwrap();

    let applied = store
        .apply(work(move |tx| {
            tx.insert_event(&entry("evt_clash"))?;
            let by_number = tx.save_invoice(&invoice(tenant, "INV-1", "in_test_new"));
            let by_stripe_id = tx.save_invoice(&invoice(tenant, "INV-3", "in_test_taken"));
            let fields = match (by_number, by_stripe_id) {
                (Err(RepoError::Conflict(a)), Err(RepoError::Conflict(b))) => format!("{a} {b}"),
                other => format!("unexpected {other:?}"),
            };
            let applied = Applied {
                outcome: EventOutcome::Failed,
                detail: Some(fields),
            };
            tx.set_event_outcome(&event_id("evt_clash"), &applied, at(70))?;
            Ok(applied)
        }))
        .await
        .unwrap();

    assert_eq!(applied.detail.as_deref(), Some("number stripeInvoiceId"));
    let stored = LedgerRepository::get(&store, &event_id("evt_clash"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.outcome, EventOutcome::Failed);
    assert_eq!(stored.detail.as_deref(), Some("number stripeInvoiceId"));
    assert_eq!(stored.processed_at, Some(at(70)));
    let missing = InvoiceRepository::get(
        &store,
        &InvoiceKey::Number(InvoiceNumber::parse("INV-3").unwrap()),
    )
    .await
    .unwrap();
    assert!(missing.is_none());
}

#[tokio::test]
async fn payments_are_deduplicated_by_source_event_and_by_succeeded_payment_intent() {
    let (_db, store) = setup();
    let tenant = TenantRepository::ensure(&store, TenantId::new())
        .await
        .unwrap()
        .id;

    let applied = store
        .apply(work(move |tx| {
            let mut charged = payment(tenant, PaymentStatus::Succeeded, "pi_test_1");
            let failed_on_charge = || {
                let mut failed = payment(tenant, PaymentStatus::Failed, "pi_test_2");
                failed.charge = Some(ChargeRef::parse("ch_test_2").unwrap());
                failed
            };
            charged.charge = Some(ChargeRef::parse("ch_test_1").unwrap());
            let results = [
                tx.insert_payment(&charged, &event_id("evt_p1"))?,
                // Redelivery of the same event.
                tx.insert_payment(
                    &payment(tenant, PaymentStatus::Succeeded, "pi_test_1"),
                    &event_id("evt_p1"),
                )?,
                // Another event about the same success.
                tx.insert_payment(
                    &payment(tenant, PaymentStatus::Succeeded, "pi_test_1"),
                    &event_id("evt_p2"),
                )?,
                // Two failed attempts of one PaymentIntent naming the same charge.
                tx.insert_payment(&failed_on_charge(), &event_id("evt_p3"))?,
                tx.insert_payment(&failed_on_charge(), &event_id("evt_p4"))?,
            ];
            Ok(with_detail(&format!("{results:?}")))
        }))
        .await
        .unwrap();

    assert_eq!(
        applied.detail.as_deref(),
        Some("[true, false, false, true, true]")
    );
    let stored = PaymentRepository::list(
        &store,
        PaymentQuery {
            tenant: Some(tenant),
            invoice: None,
        },
        PageRequest {
            after: None,
            limit: PageLimit::new(10).unwrap(),
        },
    )
    .await
    .unwrap();
    assert_eq!(stored.items.len(), 3);
    let charged = stored
        .items
        .iter()
        .find(|p| p.status == PaymentStatus::Succeeded)
        .unwrap();
    assert_eq!(charged.charge.as_ref().unwrap().as_str(), "ch_test_1");
    let failed: Vec<_> = stored
        .items
        .iter()
        .filter(|p| p.status == PaymentStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 2);
    assert!(failed
        .iter()
        .all(|p| p.failure_code.as_deref() == Some("card_declined")));
}

#[tokio::test]
async fn a_notification_is_enqueued_once_per_key_with_the_documented_document() {
    let (_db, store) = setup();
    let tenant = TenantId::new();
    let notification = payment_failed(tenant, "invoice.payment_failed:in_test_7:2");
    let expected = notification.clone();

    let applied = store
        .apply(work(move |tx| {
            let first = tx.enqueue_notification(&notification)?;
            let mut again = payment_failed(tenant, "invoice.payment_failed:in_test_7:2");
            again.occurred_at = at(99);
            let second = tx.enqueue_notification(&again)?;
            Ok(with_detail(&format!("{first} {second}")))
        }))
        .await
        .unwrap();

    assert_eq!(applied.detail.as_deref(), Some("true false"));
    assert_eq!(store.backlog().await.unwrap(), 1);
    let claimed = store.claim_due(Utc::now(), Utc::now(), 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let message = &claimed[0];
    assert_eq!(message.id, expected.id);
    assert_eq!(message.kind, "invoice.payment_failed");
    assert_eq!(message.attempts, 0);
    let doc: serde_json::Value = serde_json::from_str(&message.payload).unwrap();
    let NotificationBody::InvoicePaymentFailed { invoice, .. } = expected.body;
    assert_eq!(
        doc,
        serde_json::json!({
            "id": expected.id.to_string(),
            "type": "invoice.payment_failed",
            "occurredAt": "2026-01-01T00:00:00Z",
            "data": {
                "tenantId": tenant.to_string(),
                "invoiceId": invoice.to_string(),
                "invoiceNumber": "INV-7",
                "stripeInvoiceId": "in_test_7",
                "amountDue": 4200,
                "currency": "usd",
                "attempt": 2
            }
        })
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_locked_subscription_makes_a_second_transaction_wait_for_the_first_to_commit() {
    let (_db, store) = setup();
    let plan = PlanRepository::create(&store, new_plan("basic", "price_basic"))
        .await
        .unwrap();
    let tenant = TenantRepository::ensure(&store, TenantId::new())
        .await
        .unwrap()
        .id;
    let sub = subscription(tenant, plan.id, "sub_test_lock");
    store
        .apply(work(move |tx| {
            tx.save_subscription(&sub)?;
            Ok(processed())
        }))
        .await
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let locker = |name: &'static str, hold: Duration| {
        let log = Arc::clone(&log);
        work(move |tx| {
            let found = tx.lock_subscription(&SubscriptionRef::parse("sub_test_lock").unwrap())?;
            assert!(found.is_some());
            log.lock().unwrap().push(format!("{name} locked"));
            std::thread::sleep(hold);
            log.lock().unwrap().push(format!("{name} done"));
            Ok(processed())
        })
    };

    let first = tokio::spawn({
        let store = store.clone();
        let work = locker("A", Duration::from_millis(300));
        async move { store.apply(work).await }
    });
    while log.lock().unwrap().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let second = store.apply(locker("B", Duration::ZERO)).await;
    first.await.unwrap().unwrap();
    second.unwrap();

    assert_eq!(
        *log.lock().unwrap(),
        ["A locked", "A done", "B locked", "B done"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deadlocked_transaction_is_run_again_and_both_commit() {
    let (_db, store) = setup();
    let plan = PlanRepository::create(&store, new_plan("basic", "price_basic"))
        .await
        .unwrap();
    let tenant = TenantRepository::ensure(&store, TenantId::new())
        .await
        .unwrap()
        .id;
    let (one, two) = (
        subscription(tenant, plan.id, "sub_test_1"),
        subscription(tenant, plan.id, "sub_test_2"),
    );
    store
        .apply(work(move |tx| {
            tx.save_subscription(&one)?;
            tx.save_subscription(&two)?;
            Ok(processed())
        }))
        .await
        .unwrap();
    let runs = Arc::new(AtomicU32::new(0));
    let crossing = |first: &'static str, second: &'static str| {
        let runs = Arc::clone(&runs);
        work(move |tx| {
            runs.fetch_add(1, Ordering::SeqCst);
            tx.lock_subscription(&SubscriptionRef::parse(first).unwrap())?;
            std::thread::sleep(Duration::from_millis(200));
            tx.lock_subscription(&SubscriptionRef::parse(second).unwrap())?;
            Ok(processed())
        })
    };

    let (a, b) = tokio::join!(
        store.apply(crossing("sub_test_1", "sub_test_2")),
        store.apply(crossing("sub_test_2", "sub_test_1")),
    );

    assert!(a.is_ok(), "{a:?}");
    assert!(b.is_ok(), "{b:?}");
    assert!(runs.load(Ordering::SeqCst) >= 3, "one of the two ran again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_subscription_created_concurrently_is_found_when_the_loser_runs_again() {
    let (_db, store) = setup();
    let plan = PlanRepository::create(&store, new_plan("basic", "price_basic"))
        .await
        .unwrap();
    let tenant = TenantRepository::ensure(&store, TenantId::new())
        .await
        .unwrap()
        .id;
    let saved = Arc::new(AtomicBool::new(false));
    let runs = Arc::new(AtomicU32::new(0));
    let create = |hold: Duration| {
        let (saved, runs) = (Arc::clone(&saved), Arc::clone(&runs));
        work(move |tx| {
            runs.fetch_add(1, Ordering::SeqCst);
            let sub_ref = SubscriptionRef::parse("sub_test_new").unwrap();
            if tx.lock_subscription(&sub_ref)?.is_some() {
                return Ok(with_detail("found"));
            }
            tx.save_subscription(&subscription(tenant, plan.id, "sub_test_new"))?;
            saved.store(true, Ordering::SeqCst);
            std::thread::sleep(hold);
            Ok(with_detail("created"))
        })
    };

    let first = tokio::spawn({
        let store = store.clone();
        let work = create(Duration::from_millis(300));
        async move { store.apply(work).await }
    });
    while !saved.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let second = store.apply(create(Duration::ZERO)).await.unwrap();
    let first = first.await.unwrap().unwrap();

    assert_eq!(first.detail.as_deref(), Some("created"));
    assert_eq!(second.detail.as_deref(), Some("found"));
    assert_eq!(runs.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn work_is_refused_as_unavailable_when_the_database_is_down() {
    let store = PgStore::new(&PgConfig {
        url: "postgres://postgres@127.0.0.1:1/billing".into(),
        max_connections: 1,
        connect_timeout: Duration::from_millis(500),
    });

    let err = store
        .apply(insert_only(entry("evt_down")))
        .await
        .unwrap_err();

    assert!(matches!(err, RepoError::Unavailable(_)), "{err:?}");
}

#[tokio::test]
async fn work_that_swallows_a_failed_statement_is_not_committed() {
    let (db, store) = setup();
    let (owner, other) = (TenantId::new(), TenantId::new());
    db.execute(&format!(
        "INSERT INTO tenants (id, stripe_customer_id) VALUES ('{owner}', 'cus_test_taken')"
    ))
    .unwrap();

    let result = store
        .apply(work(move |tx| {
            tx.insert_event(&entry("evt_swallowed"))?;
            let mut tenant = tx.ensure_tenant(other)?;
            tenant.customer = Some(CustomerRef::parse("cus_test_taken").unwrap());
            let taken = tx.save_tenant(&tenant);
            assert!(matches!(
                taken,
                Err(RepoError::Conflict("stripeCustomerId"))
            ));
            Ok(processed())
        }))
        .await;

    assert!(
        matches!(result, Err(RepoError::Unexpected(_))),
        "{result:?}"
    );
    assert!(LedgerRepository::get(&store, &event_id("evt_swallowed"))
        .await
        .unwrap()
        .is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_invoice_number_taken_by_a_concurrent_transaction_is_a_conflict_on_the_rerun() {
    let (_db, store) = setup();
    let tenant = TenantRepository::ensure(&store, TenantId::new())
        .await
        .unwrap()
        .id;
    let saved = Arc::new(AtomicBool::new(false));
    let runs = Arc::new(AtomicU32::new(0));
    let first = tokio::spawn({
        let (store, saved) = (store.clone(), Arc::clone(&saved));
        async move {
            store
                .apply(work(move |tx| {
                    tx.save_invoice(&invoice(tenant, "INV-RACE", "in_test_first"))?;
                    saved.store(true, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(300));
                    Ok(processed())
                }))
                .await
        }
    });
    while !saved.load(Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let second = store
        .apply(work({
            let runs = Arc::clone(&runs);
            move |tx| {
                runs.fetch_add(1, Ordering::SeqCst);
                tx.insert_event(&entry("evt_race_invoice"))?;
                // What the domain does: a conflict is recorded on the event.
                let applied = match tx.save_invoice(&invoice(tenant, "INV-RACE", "in_test_second"))
                {
                    Ok(()) => processed(),
                    Err(RepoError::Conflict(field)) => Applied {
                        outcome: EventOutcome::Failed,
                        detail: Some(field.to_owned()),
                    },
                    Err(e) => return Err(e),
                };
                tx.set_event_outcome(&event_id("evt_race_invoice"), &applied, at(80))?;
                Ok(applied)
            }
        }))
        .await
        .unwrap();
    first.await.unwrap().unwrap();

    assert_eq!(second.outcome, EventOutcome::Failed);
    assert_eq!(second.detail.as_deref(), Some("number"));
    assert_eq!(runs.load(Ordering::SeqCst), 2);
    let stored = LedgerRepository::get(&store, &event_id("evt_race_invoice"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.outcome, EventOutcome::Failed);
}
