//! Two transactions at once: row locks, deadlocks, and races lost to a concurrent commit
//! that a rerun resolves.

use super::*;

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
    let second = store
        .apply(create(Duration::ZERO))
        .await
        .unwrap()
        .committed();
    let first = first.await.unwrap().unwrap().committed();

    assert_eq!(first.detail.as_deref(), Some("created"));
    assert_eq!(second.detail.as_deref(), Some("found"));
    assert_eq!(runs.load(Ordering::SeqCst), 3);
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
                        detail: Some(field.to_string()),
                    },
                    Err(e) => return Err(e),
                };
                tx.set_event_outcome(&event_id("evt_race_invoice"), &applied, at(80))?;
                Ok(applied)
            }
        }))
        .await
        .unwrap()
        .committed();
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
