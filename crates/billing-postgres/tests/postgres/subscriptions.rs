use billing_domain::ports::{PlanRepository, SubscriptionRepository, TenantRepository};
use billing_domain::{SubscriptionId, SubscriptionStatus, TenantId};
use billing_postgres::testing::TestDatabase;

use crate::{new_plan, setup};

fn insert_subscription(
    db: &TestDatabase,
    tenant: TenantId,
    plan: uuid::Uuid,
    status: &str,
    created_at: &str,
) -> SubscriptionId {
    let id = SubscriptionId::new();
    db.execute(&format!(
        "INSERT INTO subscriptions (id, tenant_id, plan_id, status, stripe_subscription_id, created_at) \
         VALUES ('{id}', '{tenant}', '{plan}', '{status}', 'sub_{}', '{created_at}')",
        id.as_uuid().simple()
    ))
    .unwrap();
    id
}

#[tokio::test]
async fn the_current_subscription_is_the_newest_live_one_even_when_a_newer_one_ended() {
    let (db, store) = setup();
    let tenant = TenantId::new();
    store.ensure(tenant).await.unwrap();
    let plan = *store
        .create(new_plan("plan-pro", "price_pro"))
        .await
        .unwrap()
        .id
        .as_uuid();
    insert_subscription(&db, tenant, plan, "active", "2026-01-01T00:00:00Z");
    let live = insert_subscription(&db, tenant, plan, "past_due", "2026-02-01T00:00:00Z");
    insert_subscription(&db, tenant, plan, "canceled", "2026-03-01T00:00:00Z");

    let current = store.current_for_tenant(tenant).await.unwrap().unwrap();

    assert_eq!(current.id, live);
    assert_eq!(current.status, SubscriptionStatus::PastDue);
    assert_eq!(current.tenant_id, tenant);
    assert!(current.subscription_ref.is_some());
}

#[tokio::test]
async fn without_a_live_subscription_the_newest_one_is_current() {
    let (db, store) = setup();
    let tenant = TenantId::new();
    store.ensure(tenant).await.unwrap();
    let plan = *store
        .create(new_plan("plan-pro", "price_pro"))
        .await
        .unwrap()
        .id
        .as_uuid();
    insert_subscription(&db, tenant, plan, "canceled", "2026-01-01T00:00:00Z");
    let newest = insert_subscription(
        &db,
        tenant,
        plan,
        "incomplete_expired",
        "2026-02-01T00:00:00Z",
    );

    let current = store.current_for_tenant(tenant).await.unwrap().unwrap();
    let nobody = store.current_for_tenant(TenantId::new()).await.unwrap();

    assert_eq!(current.id, newest);
    assert_eq!(current.status, SubscriptionStatus::IncompleteExpired);
    assert!(nobody.is_none());
}

#[tokio::test]
async fn without_a_live_subscription_one_awaiting_its_payment_is_current_over_a_newer_ended_one() {
    let (db, store) = setup();
    let tenant = TenantId::new();
    store.ensure(tenant).await.unwrap();
    let plan = *store
        .create(new_plan("plan-pro", "price_pro"))
        .await
        .unwrap()
        .id
        .as_uuid();
    let pending = insert_subscription(&db, tenant, plan, "incomplete", "2026-01-01T00:00:00Z");
    insert_subscription(&db, tenant, plan, "canceled", "2026-02-01T00:00:00Z");

    let current = store.current_for_tenant(tenant).await.unwrap().unwrap();

    // A checkout is refused while it waits: it must not hide behind the canceled one.
    assert_eq!(current.id, pending);
    assert_eq!(current.status, SubscriptionStatus::Incomplete);
}
