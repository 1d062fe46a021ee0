use billing_domain::ports::{PlanRepository, SubscriptionRepository, TenantRepository};
use billing_domain::{Features, SubscriptionId, SubscriptionStatus, TenantId};
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

#[tokio::test]
async fn the_access_read_joins_the_current_subscription_with_its_plan() {
    let (db, store) = setup();
    let tenant = TenantId::new();
    store.ensure(tenant).await.unwrap();
    let mut pro = new_plan("plan-pro", "price_pro");
    pro.features = Features::parse(vec!["reports".into()]).unwrap();
    let pro = store.create(pro).await.unwrap();
    let basic = store
        .create(new_plan("plan-basic", "price_basic"))
        .await
        .unwrap();
    insert_subscription(
        &db,
        tenant,
        *basic.id.as_uuid(),
        "canceled",
        "2026-03-01T00:00:00Z",
    );
    let live = insert_subscription(
        &db,
        tenant,
        *pro.id.as_uuid(),
        "past_due",
        "2026-01-01T00:00:00Z",
    );
    db.execute(&format!(
        "UPDATE subscriptions SET past_due_since = '2026-02-03T04:05:06Z' WHERE id = '{live}'"
    ))
    .unwrap();

    let (sub, plan) = store.current_with_plan(tenant).await.unwrap().unwrap();
    let nobody = store.current_with_plan(TenantId::new()).await.unwrap();

    assert_eq!(sub.id, live);
    assert_eq!(
        sub.past_due_since,
        Some("2026-02-03T04:05:06Z".parse().unwrap())
    );
    assert_eq!(
        Some(sub),
        store.current_for_tenant(tenant).await.unwrap(),
        "the same subscription as the tenant's current one"
    );
    assert_eq!(plan, pro);
    assert_eq!(plan.features.as_slice(), ["reports"]);
    assert!(nobody.is_none());
}

#[tokio::test]
async fn the_access_read_is_one_statement_using_the_tenant_index_and_the_plan_key() {
    let (db, store) = setup();
    let tenant = TenantId::new();
    // Enough rows that a sequential scan would not be chosen for its own sake: 5 000
    // plans, 20 000 tenants with a subscription each (and one with history). With a
    // handful of plans PostgreSQL rightly reads their one or two pages whole, and only
    // the subscriptions side, which grows with the tenants, needs its index.
    db.execute(
        "INSERT INTO plans (id, code, name, stripe_price_id, amount, currency, \"interval\", features) \
         SELECT gen_random_uuid(), 'plan-' || i, 'Plan ' || i, 'price_' || i, 1000, 'usd', 'month', \
         ARRAY['f' || i] FROM generate_series(1, 5000) i; \
         INSERT INTO tenants (id, name, status) \
         SELECT gen_random_uuid(), 'T' || i, 'active' FROM generate_series(1, 20000) i; \
         INSERT INTO subscriptions (id, tenant_id, plan_id, status, created_at) \
         SELECT gen_random_uuid(), t.id, (SELECT id FROM plans ORDER BY code LIMIT 1), 'active', now() \
         FROM tenants t; \
         ANALYZE plans; ANALYZE tenants; ANALYZE subscriptions",
    )
    .unwrap();
    store.ensure(tenant).await.unwrap();
    let plan = store
        .create(new_plan("plan-pro", "price_pro"))
        .await
        .unwrap();
    insert_subscription(
        &db,
        tenant,
        *plan.id.as_uuid(),
        "active",
        "2026-01-01T00:00:00Z",
    );
    insert_subscription(
        &db,
        tenant,
        *plan.id.as_uuid(),
        "canceled",
        "2025-01-01T00:00:00Z",
    );

    let lines = db.explain_access_read(tenant).unwrap();
    let text = lines.join("\n");

    assert!(!text.contains("Seq Scan"), "{text}");
    assert!(text.contains("subscriptions_tenant_created_idx"), "{text}");
    assert!(text.contains("plans_pkey"), "{text}");
    assert_eq!(
        store.current_with_plan(tenant).await.unwrap().unwrap().1.id,
        plan.id
    );
}
