use billing_domain::ports::{CheckoutSessionRepository, SessionEnd, TenantRepository};
use billing_domain::{CheckoutSessionRef, TenantId};
use chrono::{TimeZone, Utc};

use crate::setup;

fn session(id: &str) -> CheckoutSessionRef {
    CheckoutSessionRef::parse(id).unwrap()
}

fn at(secs: i64) -> chrono::DateTime<Utc> {
    Utc.timestamp_opt(1_800_000_000 + secs, 0).unwrap()
}

#[tokio::test]
async fn a_tenants_other_open_sessions_come_oldest_first_until_closed() {
    let (_db, store) = setup();
    let (tenant, other_tenant) = (TenantId::new(), TenantId::new());
    store.ensure(tenant).await.unwrap();
    store.ensure(other_tenant).await.unwrap();
    store
        .record_open(tenant, &session("cs_b"), at(2))
        .await
        .unwrap();
    store
        .record_open(tenant, &session("cs_a"), at(1))
        .await
        .unwrap();
    store
        .record_open(tenant, &session("cs_c"), at(3))
        .await
        .unwrap();
    store
        .record_open(other_tenant, &session("cs_x"), at(0))
        .await
        .unwrap();
    // Recording a session twice changes nothing.
    store
        .record_open(tenant, &session("cs_a"), at(9))
        .await
        .unwrap();

    let before = store.older_open(tenant, &session("cs_c")).await.unwrap();
    let newer_unseen = store.older_open(tenant, &session("cs_a")).await.unwrap();
    store
        .close(&session("cs_a"), SessionEnd::Expired, at(4))
        .await
        .unwrap();
    store
        .close(&session("cs_b"), SessionEnd::Completed, at(4))
        .await
        .unwrap();
    let after = store.older_open(tenant, &session("cs_c")).await.unwrap();

    assert_eq!(before, [session("cs_a"), session("cs_b")]);
    assert!(newer_unseen.is_empty(), "{newer_unseen:?}");
    assert!(after.is_empty(), "{after:?}");
    assert!(store
        .older_open(tenant, &session("cs_unrecorded"))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn of_two_sessions_recorded_in_the_same_instant_the_id_decides_which_is_older() {
    let (_db, store) = setup();
    let tenant = TenantId::new();
    store.ensure(tenant).await.unwrap();
    store
        .record_open(tenant, &session("cs_2"), at(5))
        .await
        .unwrap();
    store
        .record_open(tenant, &session("cs_1"), at(5))
        .await
        .unwrap();

    assert_eq!(
        store.older_open(tenant, &session("cs_2")).await.unwrap(),
        [session("cs_1")]
    );
    assert!(store
        .older_open(tenant, &session("cs_1"))
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn a_session_needs_a_known_tenant() {
    let (_db, store) = setup();

    let err = store
        .record_open(TenantId::new(), &session("cs_1"), at(0))
        .await
        .unwrap_err();

    assert!(
        !matches!(err, billing_domain::ports::RepoError::Unavailable(_)),
        "{err:?}"
    );
}
