use std::collections::HashSet;

use billing_domain::ports::OutboxRepository;
use billing_postgres::testing::TestDatabase;
use chrono::{DateTime, TimeDelta, TimeZone, Utc};

use crate::setup;

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + secs, 0).unwrap()
}

/// `count` pending notifications due at `at(0)`, keyed `n0`, `n1`, ….
fn enqueue(db: &TestDatabase, count: usize) {
    for i in 0..count {
        db.execute(&format!(
            "INSERT INTO notifications (id, kind, dedupe_key, payload, next_attempt_at) \
             VALUES (gen_random_uuid(), 'invoice.payment_failed', 'n{i}', '{{}}', '{}')",
            at(0).to_rfc3339()
        ))
        .unwrap();
    }
}

/// Fails the test unless the SQL condition holds.
fn assert_sql(db: &TestDatabase, condition: &str) {
    let checked = db.execute(&format!(
        "DO $$ BEGIN IF NOT ({condition}) THEN RAISE EXCEPTION 'condition failed'; END IF; END $$"
    ));
    assert!(checked.is_ok(), "{condition}: {checked:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_claimers_never_take_the_same_message() {
    let (db, store) = setup();
    enqueue(&db, 20);

    let (a, b) = tokio::join!(
        store.claim_due(at(10), at(70), 15),
        store.claim_due(at(10), at(70), 15),
    );

    let (a, b) = (a.unwrap(), b.unwrap());
    let ids: HashSet<_> = a.iter().chain(&b).map(|m| m.id).collect();
    assert_eq!(a.len() + b.len(), 20, "{} + {}", a.len(), b.len());
    assert_eq!(ids.len(), 20);
}

#[tokio::test]
async fn a_claimed_message_is_hidden_until_its_lease_ends() {
    let (db, store) = setup();
    enqueue(&db, 3);

    let claimed = store.claim_due(at(10), at(70), 2).await.unwrap();
    let during_lease = store.claim_due(at(69), at(130), 10).await.unwrap();
    let after_lease = store.claim_due(at(70), at(130), 10).await.unwrap();

    assert_eq!(claimed.len(), 2);
    assert_eq!(during_lease.len(), 1);
    assert!(!claimed.iter().any(|m| m.id == during_lease[0].id));
    let back: HashSet<_> = after_lease.iter().map(|m| m.id).collect();
    assert_eq!(back, claimed.iter().map(|m| m.id).collect());
    assert_eq!(
        store.backlog().await.unwrap(),
        3,
        "leased messages stay pending"
    );
}

#[tokio::test]
async fn a_message_not_yet_due_is_not_claimed() {
    let (db, store) = setup();
    enqueue(&db, 1);

    let early = store.claim_due(at(-1), at(59), 10).await.unwrap();

    assert!(early.is_empty());
}

#[tokio::test]
async fn a_failed_message_is_retried_later_with_its_attempts_and_error() {
    let (db, store) = setup();
    enqueue(&db, 1);
    let message = store.claim_due(at(10), at(70), 1).await.unwrap().remove(0);
    let long_error = "x".repeat(1500);

    store
        .mark_failed(message.id, 1, Some(at(20)), long_error)
        .await
        .unwrap();

    assert!(store.claim_due(at(19), at(80), 1).await.unwrap().is_empty());
    let again = store.claim_due(at(20), at(80), 1).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, message.id);
    assert_eq!(again[0].attempts, 1);
    assert_sql(
        &db,
        &format!(
            "(SELECT length(last_error) = 1000 AND status = 'pending' \
             FROM notifications WHERE id = '{}')",
            message.id
        ),
    );
}

#[tokio::test]
async fn a_message_given_up_is_dead_and_leaves_the_backlog() {
    let (db, store) = setup();
    enqueue(&db, 2);
    let message = store.claim_due(at(10), at(70), 1).await.unwrap().remove(0);

    store
        .mark_failed(message.id, 25, None, "HTTP 400".into())
        .await
        .unwrap();

    assert_eq!(store.backlog().await.unwrap(), 1);
    let later = store
        .claim_due(at(10) + TimeDelta::days(1), at(10) + TimeDelta::days(2), 10)
        .await
        .unwrap();
    assert!(later.iter().all(|m| m.id != message.id));
    assert_sql(
        &db,
        &format!(
            "(SELECT status = 'dead' AND attempts = 25 AND last_error = 'HTTP 400' \
             FROM notifications WHERE id = '{}')",
            message.id
        ),
    );
}

#[tokio::test]
async fn a_delivered_message_is_marked_delivered_or_logged_with_its_time() {
    let (db, store) = setup();
    enqueue(&db, 2);
    let claimed = store.claim_due(at(10), at(70), 2).await.unwrap();

    store.mark_done(claimed[0].id, false, at(11)).await.unwrap();
    store.mark_done(claimed[1].id, true, at(12)).await.unwrap();

    assert_eq!(store.backlog().await.unwrap(), 0);
    assert!(store
        .claim_due(at(100), at(160), 10)
        .await
        .unwrap()
        .is_empty());
    assert_sql(
        &db,
        &format!(
            "(SELECT status = 'delivered' AND delivered_at = '{}' FROM notifications WHERE id = '{}') \
             AND (SELECT status = 'logged' FROM notifications WHERE id = '{}')",
            at(11).to_rfc3339(),
            claimed[0].id,
            claimed[1].id
        ),
    );
}

#[test]
fn the_sql_check_helper_fails_on_a_false_condition() {
    let (db, _store) = setup();

    let checked = db.execute(
        "DO $$ BEGIN IF NOT (1 = 2) THEN RAISE EXCEPTION 'condition failed'; END IF; END $$",
    );

    assert!(checked.is_err());
}

#[tokio::test]
async fn a_late_dispatcher_cannot_overwrite_a_delivered_message() {
    let (db, store) = setup();
    enqueue(&db, 1);
    let message = store.claim_due(at(10), at(70), 1).await.unwrap().remove(0);
    store.mark_done(message.id, false, at(20)).await.unwrap();

    store
        .mark_failed(message.id, 1, None, "timeout".into())
        .await
        .unwrap();

    assert_sql(
        &db,
        &format!(
            "(SELECT status = 'delivered' AND last_error IS NULL \
             FROM notifications WHERE id = '{}')",
            message.id
        ),
    );
}
