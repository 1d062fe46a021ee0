use billing_domain::ports::{CheckoutSessionRepository, RepoError, SessionEnd, TenantRepository};
use billing_domain::{CheckoutSessionRef, ReferenceField, TenantId};
use chrono::{TimeZone, Utc};

use crate::setup;

fn session(id: &str) -> CheckoutSessionRef {
    CheckoutSessionRef::parse(id).unwrap()
}

fn at(secs: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
}

#[tokio::test]
async fn recording_a_session_returns_the_tenants_other_open_ones_oldest_first() {
    let (_db, store) = setup();
    let (tenant, other_tenant) = (TenantId::new(), TenantId::new());
    store.ensure(tenant).await.unwrap();
    store.ensure(other_tenant).await.unwrap();

    let first = store
        .record_open(tenant, &session("cs_b"), at(2))
        .await
        .unwrap();
    let second = store
        .record_open(tenant, &session("cs_a"), at(1))
        .await
        .unwrap();
    store
        .record_open(other_tenant, &session("cs_x"), at(0))
        .await
        .unwrap();
    store
        .close(&session("cs_a"), SessionEnd::Expired, at(4))
        .await
        .unwrap();
    let third = store
        .record_open(tenant, &session("cs_c"), at(5))
        .await
        .unwrap();
    // Recording a session twice changes nothing.
    let again = store
        .record_open(tenant, &session("cs_c"), at(9))
        .await
        .unwrap();

    assert!(first.is_empty(), "{first:?}");
    assert_eq!(second, [session("cs_b")]);
    assert_eq!(
        third,
        [session("cs_b")],
        "cs_a was closed, cs_x is another tenant's"
    );
    assert_eq!(again, [session("cs_b")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_sessions_recorded_at_once_for_one_tenant_each_later_one_sees_every_earlier_one() {
    let (_db, store) = setup();
    let tenant = TenantId::new();
    store.ensure(tenant).await.unwrap();

    // Same timestamp for all: only the order of recording may decide.
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .record_open(tenant, &session(&format!("cs_{i}")), at(0))
                    .await
                    .unwrap()
                    .len()
            })
        })
        .collect();
    let mut seen: Vec<usize> = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    seen.sort_unstable();

    // Serialised: the k-th to record sees exactly the k-1 before it, so no two sessions
    // ever miss each other.
    assert_eq!(seen, [0, 1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn a_session_needs_a_known_tenant() {
    let (_db, store) = setup();

    let err = store
        .record_open(TenantId::new(), &session("cs_1"), at(0))
        .await
        .unwrap_err();

    assert!(
        matches!(err, RepoError::MissingReference(ReferenceField::Tenant)),
        "{err:?}"
    );
}
