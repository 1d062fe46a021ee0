use std::collections::HashSet;

use billing_domain::page::{PageLimit, PageRequest};
use billing_domain::ports::{InvoiceRepository, PaymentQuery, PaymentRepository};
use billing_domain::{InvoiceId, Payment, PaymentStatus, TenantId};
use billing_postgres::testing::TestDatabase;
use billing_postgres::PgStore;

use crate::{new_invoice, setup, usd};

fn insert_payment(
    db: &TestDatabase,
    tenant: TenantId,
    invoice: Option<InvoiceId>,
    status: &str,
    pi: &str,
    created_at: &str,
) -> Result<(), billing_postgres::SetupError> {
    let invoice = invoice.map_or("NULL".to_owned(), |i| format!("'{i}'"));
    db.execute(&format!(
        "INSERT INTO payments (id, tenant_id, invoice_id, amount, currency, status, \
         stripe_payment_intent_id, created_at) \
         VALUES ('{}', '{tenant}', {invoice}, 100, 'usd', '{status}', '{pi}', '{created_at}')",
        uuid::Uuid::new_v4()
    ))
}

async fn all_pages(store: &PgStore, query: PaymentQuery) -> Vec<Payment> {
    let mut items = Vec::new();
    let mut after = None;
    loop {
        let page = PaymentRepository::list(
            store,
            query.clone(),
            PageRequest {
                after,
                limit: PageLimit::new(2).unwrap(),
            },
        )
        .await
        .unwrap();
        items.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => break items,
        }
    }
}

#[tokio::test]
async fn payments_are_paged_newest_first_and_filtered_by_tenant_and_invoice() {
    let (db, store) = setup();
    let (a, b) = (TenantId::new(), TenantId::new());
    let invoice = store.create(new_invoice(a, "inv-1", 500)).await.unwrap();
    store.create(new_invoice(b, "inv-2", 500)).await.unwrap();
    let same_time = "2026-03-01T00:00:00Z";
    insert_payment(&db, a, Some(invoice.id), "failed", "pi_1", same_time).unwrap();
    insert_payment(&db, a, Some(invoice.id), "failed", "pi_1", same_time).unwrap();
    insert_payment(
        &db,
        a,
        Some(invoice.id),
        "succeeded",
        "pi_1",
        "2026-03-02T00:00:00Z",
    )
    .unwrap();
    insert_payment(&db, a, None, "succeeded", "pi_2", same_time).unwrap();
    insert_payment(&db, b, None, "succeeded", "pi_3", "2026-01-01T00:00:00Z").unwrap();

    let everything = all_pages(&store, PaymentQuery::default()).await;
    let of_a = all_pages(
        &store,
        PaymentQuery {
            tenant: Some(a),
            invoice: None,
        },
    )
    .await;
    let of_invoice = all_pages(
        &store,
        PaymentQuery {
            tenant: None,
            invoice: Some(invoice.id),
        },
    )
    .await;

    assert_eq!(everything.len(), 5);
    assert_eq!(
        everything
            .iter()
            .map(|p| p.id)
            .collect::<HashSet<_>>()
            .len(),
        5
    );
    let keys: Vec<_> = everything
        .iter()
        .map(|p| (p.created_at, *p.id.as_uuid()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|x, y| y.cmp(x));
    assert_eq!(keys, sorted);
    assert_eq!(of_a.len(), 4);
    assert_eq!(of_invoice.len(), 3);
    assert_eq!(of_invoice[0].status, PaymentStatus::Succeeded);
    assert_eq!(of_invoice[0].amount, usd(100));
    assert_eq!(
        of_invoice[0].payment_intent.as_ref().map(|p| p.as_str()),
        Some("pi_1")
    );
}

#[tokio::test]
async fn a_payment_intent_succeeds_once_but_may_fail_many_times() {
    let (db, _store) = setup();
    let tenant = TenantId::new();
    db.execute(&format!("INSERT INTO tenants (id) VALUES ('{tenant}')"))
        .unwrap();
    let at = "2026-03-01T00:00:00Z";

    insert_payment(&db, tenant, None, "failed", "pi_1", at).unwrap();
    insert_payment(&db, tenant, None, "failed", "pi_1", at).unwrap();
    insert_payment(&db, tenant, None, "succeeded", "pi_1", at).unwrap();
    let twice = insert_payment(&db, tenant, None, "succeeded", "pi_1", at);

    assert!(twice.is_err());
}

#[tokio::test]
async fn a_negative_payment_amount_is_refused_by_the_database() {
    let (db, _store) = setup();
    let tenant = TenantId::new();
    db.execute(&format!("INSERT INTO tenants (id) VALUES ('{tenant}')"))
        .unwrap();

    let result = db.execute(&format!(
        "INSERT INTO payments (id, tenant_id, amount, currency, status) \
         VALUES ('{}', '{tenant}', -5, 'usd', 'succeeded')",
        uuid::Uuid::new_v4()
    ));

    assert!(result.is_err());
}
