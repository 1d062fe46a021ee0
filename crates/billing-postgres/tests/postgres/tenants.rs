use billing_domain::ports::TenantRepository;
use billing_domain::{CustomerRef, TenantId, TenantStatus};

use crate::setup;

#[tokio::test]
async fn an_unknown_tenant_is_registered_as_pending_once() {
    let (_db, store) = setup();
    let id = TenantId::new();
    assert!(store.get(id).await.unwrap().is_none());

    let first = store.ensure(id).await.unwrap();
    let second = store.ensure(id).await.unwrap();

    assert_eq!(first.status, TenantStatus::Pending);
    assert_eq!(first.name, "");
    assert_eq!(first.customer, None);
    assert_eq!(first, second);
    assert_eq!(store.get(id).await.unwrap(), Some(first));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_ensures_of_one_tenant_all_see_the_same_row() {
    let (_db, store) = setup();
    let id = TenantId::new();

    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.ensure(id).await })
        })
        .collect();
    let tenants: Vec<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();

    assert!(tenants.iter().all(|t| *t == tenants[0]));
}

#[tokio::test]
async fn a_tenant_is_found_by_its_stripe_customer() {
    let (db, store) = setup();
    let id = TenantId::new();
    store.ensure(id).await.unwrap();
    db.execute(&format!(
        "UPDATE tenants SET stripe_customer_id = 'cus_test_1', status = 'active' WHERE id = '{id}'"
    ))
    .unwrap();

    let found = store
        .find_by_customer(&CustomerRef::parse("cus_test_1").unwrap())
        .await
        .unwrap()
        .unwrap();
    let missing = store
        .find_by_customer(&CustomerRef::parse("cus_test_2").unwrap())
        .await
        .unwrap();

    assert_eq!(found.id, id);
    assert_eq!(found.status, TenantStatus::Active);
    assert_eq!(found.customer.unwrap().as_str(), "cus_test_1");
    assert!(missing.is_none());
}

#[test]
fn two_tenants_cannot_share_a_stripe_customer() {
    let (db, _store) = setup();
    let (a, b) = (TenantId::new(), TenantId::new());

    db.execute(&format!(
        "INSERT INTO tenants (id, stripe_customer_id) VALUES ('{a}', 'cus_same')"
    ))
    .unwrap();
    let second = db.execute(&format!(
        "INSERT INTO tenants (id, stripe_customer_id) VALUES ('{b}', 'cus_same')"
    ));

    assert!(second.is_err());
}
