//! The transaction: the ledger row, commit and rollback, errors passed through, a
//! same-second tie rolled back, a work that goes on after a failed statement, an
//! unreachable database.

use super::*;

#[tokio::test]
async fn an_event_is_inserted_once_and_then_reported_as_a_duplicate() {
    let (_db, store) = setup();

    let first = store
        .apply(insert_only(entry("evt_once")))
        .await
        .unwrap()
        .committed();
    let second = store
        .apply(insert_only(entry("evt_once")))
        .await
        .unwrap()
        .committed();

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
        .map(|r| r.unwrap().unwrap().committed().outcome)
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
async fn a_same_second_tie_is_rolled_back_and_returned_as_ok() {
    let (_db, store) = setup();
    let tenant = TenantId::new();
    let tie: WebhookWork = Box::new(move |tx| {
        tx.insert_event(&entry("evt_tie"))?;
        tx.ensure_tenant(tenant)?;
        Ok(WorkOutcome::SameSecondTie(
            SubscriptionRef::parse("sub_test_tie").unwrap(),
        ))
    });

    let outcome = store.apply(tie).await.unwrap();

    assert_eq!(
        outcome,
        WorkOutcome::SameSecondTie(SubscriptionRef::parse("sub_test_tie").unwrap())
    );
    assert!(LedgerRepository::get(&store, &event_id("evt_tie"))
        .await
        .unwrap()
        .is_none());
    assert!(TenantRepository::get(&store, tenant)
        .await
        .unwrap()
        .is_none());
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
                Err(RepoError::Conflict(ConflictField::StripeCustomer))
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
