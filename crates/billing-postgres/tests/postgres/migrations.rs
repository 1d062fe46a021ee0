use std::time::{Duration, Instant};

use billing_domain::ports::{HealthCheck, PlanRepository, RepoError};
use billing_domain::{PlanCode, PlanKey};
use billing_postgres::testing::TestDatabase;
use billing_postgres::{
    applied_migrations, ensure_database, revert_all, run_migrations, PgConfig, PgStore,
};

/// The migrations in the repository's `migrations/` folder (one directory each): every
/// one of them is embedded, applied and reverted.
fn migration_count() -> usize {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations");
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().join("up.sql").is_file())
        .count()
}

fn any_plan_key() -> PlanKey {
    PlanKey::Code(PlanCode::parse("plan-pro").unwrap())
}

#[tokio::test]
async fn migrations_go_up_down_and_up_again() {
    let db = TestDatabase::create_empty().unwrap();
    let store = db.store();

    let up = run_migrations(db.url()).unwrap();
    assert_eq!(up.len(), migration_count());
    assert_eq!(applied_migrations(db.url()).unwrap(), up);
    assert!(store.get(&any_plan_key()).await.unwrap().is_none());

    let down = revert_all(db.url()).unwrap();
    assert_eq!(down.len(), migration_count());
    assert!(applied_migrations(db.url()).unwrap().is_empty());
    assert!(matches!(
        store.get(&any_plan_key()).await,
        Err(RepoError::Unexpected(_))
    ));

    let again = run_migrations(db.url()).unwrap();
    assert_eq!(again, up);
    assert!(store.get(&any_plan_key()).await.unwrap().is_none());
}

#[test]
fn running_migrations_twice_applies_nothing_the_second_time() {
    let db = TestDatabase::create().unwrap();

    assert!(run_migrations(db.url()).unwrap().is_empty());
    assert_eq!(
        applied_migrations(db.url()).unwrap().len(),
        migration_count()
    );
}

#[test]
fn two_replicas_migrating_at_once_both_succeed_and_apply_each_migration_once() {
    let db = TestDatabase::create_empty().unwrap();
    let url = db.url().to_owned();

    let handles: Vec<_> = (0..2)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || run_migrations(&url))
        })
        .collect();
    let results: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();

    let mut counts: Vec<_> = results.iter().map(Vec::len).collect();
    counts.sort_unstable();
    assert_eq!(counts, [0, migration_count()]);
    assert_eq!(applied_migrations(&url).unwrap().len(), migration_count());
}

#[test]
fn ensure_database_creates_a_missing_database_and_is_idempotent() {
    let db = TestDatabase::reserve().unwrap();

    assert!(ensure_database(db.url()).unwrap());
    assert!(!ensure_database(db.url()).unwrap());
    assert_eq!(run_migrations(db.url()).unwrap().len(), migration_count());
}

#[test]
fn ensure_database_tolerates_a_concurrent_creator() {
    let db = TestDatabase::reserve().unwrap();
    let url = db.url().to_owned();

    let handles: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || ensure_database(&url))
        })
        .collect();
    let created: Vec<bool> = handles
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();

    assert_eq!(created.iter().filter(|c| **c).count(), 1, "{created:?}");
}

#[test]
fn check_constraints_reject_rows_the_domain_would_never_write() {
    let db = TestDatabase::create().unwrap();
    let tenant = uuid::Uuid::new_v4();
    db.execute(&format!("INSERT INTO tenants (id) VALUES ('{tenant}')"))
        .unwrap();
    let invoice = |amount: i64, currency: &str, status: &str| {
        format!(
            "INSERT INTO invoices (id, tenant_id, number, status, amount_due, currency) \
             VALUES ('{}', '{tenant}', 'inv-{}', '{status}', {amount}, '{currency}')",
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4().simple()
        )
    };

    assert!(db.execute(&invoice(100, "usd", "open")).is_ok());
    assert!(
        db.execute(&invoice(-1, "usd", "open")).is_err(),
        "negative amount"
    );
    assert!(
        db.execute(&invoice(100, "USD", "open")).is_err(),
        "upper-case currency"
    );
    assert!(
        db.execute(&invoice(100, "usd", "pending")).is_err(),
        "unknown status"
    );
    assert!(db
        .execute(&format!(
            "INSERT INTO plans (id, code, name, stripe_price_id, amount, currency, interval, trial_days) \
             VALUES ('{}', 'p', 'P', 'price_1', 100, 'usd', 'month', 0)",
            uuid::Uuid::new_v4()
        ))
        .is_err(), "zero trial days");
    assert!(
        db.execute(
            "INSERT INTO webhook_events (event_id, type, created, outcome, payload) \
                  VALUES ('evt_1', 'x', now(), 'duplicate', '{}')"
        )
        .is_err(),
        "duplicate is never stored"
    );
    assert!(
        db.execute(&format!(
            "INSERT INTO invoices (id, tenant_id, number, status, amount_due, currency) \
             VALUES ('{}', '{}', 'inv-orphan', 'open', 1, 'usd')",
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4()
        ))
        .is_err(),
        "unknown tenant"
    );
}

#[tokio::test]
async fn ping_answers_when_the_database_is_up() {
    let db = TestDatabase::create().unwrap();

    db.store().ping().await.unwrap();
}

#[tokio::test]
async fn ping_is_unavailable_quickly_when_nothing_listens() {
    // Port 1 on loopback: nothing listens there, connections are refused at once.
    let store = PgStore::new(&PgConfig {
        url: "postgres://postgres@127.0.0.1:1/postgres".to_owned(),
        max_connections: 2,
        connect_timeout: Duration::from_millis(500),
    });
    let started = Instant::now();

    let result = store.ping().await;

    assert!(
        matches!(result, Err(RepoError::Unavailable(_))),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn pool_state_counts_idle_and_busy_connections() {
    let db = TestDatabase::create().unwrap();
    let store = db.store();

    store.ping().await.unwrap();
    let (in_use, idle) = store.pool_state();

    assert_eq!(in_use, 0);
    assert!(idle >= 1, "idle = {idle}");
    assert_eq!(store.max_connections(), 4);
}
