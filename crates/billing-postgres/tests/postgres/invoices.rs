use std::collections::HashSet;

use billing_domain::page::{Cursor, PageLimit, PageRequest};
use billing_domain::ports::{InvoiceQuery, InvoiceRepository, RepoError, TenantRepository};
use billing_domain::{
    ConflictField, Invoice, InvoiceId, InvoiceKey, InvoiceNumber, InvoiceStatus, PaymentIntentRef,
    TenantId, TenantStatus,
};
use billing_postgres::PgStore;
use chrono::NaiveDate;

use crate::{new_invoice, setup, usd};

async fn all_pages(store: &PgStore, query: InvoiceQuery, limit: i64) -> (Vec<Invoice>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut after = None;
    loop {
        let page = store
            .list(
                query.clone(),
                PageRequest {
                    after,
                    limit: PageLimit::new(limit).unwrap(),
                },
            )
            .await
            .unwrap();
        pages += 1;
        items.extend(page.items);
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    (items, pages)
}

fn pi(s: &str) -> PaymentIntentRef {
    PaymentIntentRef::parse(s).unwrap()
}

#[tokio::test]
async fn a_new_invoice_is_open_unpaid_and_registers_its_tenant_as_pending() {
    let (_db, store) = setup();
    let tenant = TenantId::new();
    let mut input = new_invoice(tenant, "inv-001", 5000);
    input.due_date = NaiveDate::from_ymd_opt(2026, 8, 1);
    input.description = Some("Consulting".into());

    let invoice = store.create(input).await.unwrap();

    assert_eq!(invoice.status, InvoiceStatus::Open);
    assert_eq!(invoice.amount_due, usd(5000));
    assert_eq!(invoice.amount_paid, usd(0));
    assert_eq!(invoice.due_date, NaiveDate::from_ymd_opt(2026, 8, 1));
    assert_eq!(invoice.description.as_deref(), Some("Consulting"));
    assert_eq!(invoice.payment_intent, None);
    let registered = TenantRepository::get(&store, tenant)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(registered.status, TenantStatus::Pending);
    assert_eq!(
        InvoiceRepository::get(&store, &InvoiceKey::Id(invoice.id))
            .await
            .unwrap(),
        Some(invoice.clone())
    );
    assert_eq!(
        InvoiceRepository::get(
            &store,
            &InvoiceKey::Number(InvoiceNumber::parse("inv-001").unwrap())
        )
        .await
        .unwrap(),
        Some(invoice)
    );
}

#[tokio::test]
async fn a_taken_number_is_a_conflict_and_registers_no_tenant() {
    let (_db, store) = setup();
    store
        .create(new_invoice(TenantId::new(), "inv-001", 100))
        .await
        .unwrap();
    let newcomer = TenantId::new();

    let result = store.create(new_invoice(newcomer, "inv-001", 200)).await;

    assert!(
        matches!(
            result,
            Err(RepoError::Conflict(ConflictField::InvoiceNumber))
        ),
        "{result:?}"
    );
    assert!(
        TenantRepository::get(&store, newcomer)
            .await
            .unwrap()
            .is_none(),
        "rolled back with the invoice"
    );
}

#[tokio::test]
async fn pages_cover_every_invoice_once_newest_first_even_with_equal_timestamps() {
    let (db, store) = setup();
    let tenant = TenantId::new();
    for n in 0..7 {
        store
            .create(new_invoice(tenant, &format!("inv-{n}"), 100))
            .await
            .unwrap();
    }
    // Five invoices share one creation time: only the id orders them.
    db.execute(
        "UPDATE invoices SET created_at = '2026-05-01T12:00:00.123456Z' \
         WHERE number IN ('inv-1', 'inv-2', 'inv-3', 'inv-4', 'inv-5')",
    )
    .unwrap();

    let (items, pages) = all_pages(&store, InvoiceQuery::default(), 2).await;

    assert_eq!(pages, 4);
    assert_eq!(items.len(), 7);
    let ids: HashSet<_> = items.iter().map(|i| i.id).collect();
    assert_eq!(ids.len(), 7);
    let keys: Vec<_> = items
        .iter()
        .map(|i| (i.created_at, *i.id.as_uuid()))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(keys, sorted);
}

#[tokio::test]
async fn the_last_full_page_has_no_next_cursor() {
    let (_db, store) = setup();
    for n in 0..4 {
        store
            .create(new_invoice(TenantId::new(), &format!("inv-{n}"), 100))
            .await
            .unwrap();
    }

    let (items, pages) = all_pages(&store, InvoiceQuery::default(), 2).await;

    assert_eq!(items.len(), 4);
    assert_eq!(pages, 2);
}

#[tokio::test]
async fn invoices_are_filtered_by_tenant_and_status() {
    let (db, store) = setup();
    let (a, b) = (TenantId::new(), TenantId::new());
    let a1 = store.create(new_invoice(a, "a-1", 100)).await.unwrap();
    let a2 = store.create(new_invoice(a, "a-2", 100)).await.unwrap();
    store.create(new_invoice(b, "b-1", 100)).await.unwrap();
    db.execute(&format!(
        "UPDATE invoices SET status = 'paid' WHERE id = '{}'",
        a2.id
    ))
    .unwrap();

    let (of_a, _) = all_pages(
        &store,
        InvoiceQuery {
            tenant: Some(a),
            status: None,
        },
        10,
    )
    .await;
    let (open_of_a, _) = all_pages(
        &store,
        InvoiceQuery {
            tenant: Some(a),
            status: Some(InvoiceStatus::Open),
        },
        10,
    )
    .await;
    let (paid, _) = all_pages(
        &store,
        InvoiceQuery {
            tenant: None,
            status: Some(InvoiceStatus::Paid),
        },
        10,
    )
    .await;

    assert_eq!(of_a.len(), 2);
    assert!(of_a.iter().all(|i| i.tenant_id == a));
    assert_eq!(open_of_a.iter().map(|i| i.id).collect::<Vec<_>>(), [a1.id]);
    assert_eq!(paid.iter().map(|i| i.id).collect::<Vec<_>>(), [a2.id]);
}

#[tokio::test]
async fn a_cursor_that_is_not_an_invoice_cursor_reads_nothing() {
    let (_db, store) = setup();
    store
        .create(new_invoice(TenantId::new(), "inv-1", 100))
        .await
        .unwrap();

    let page = store
        .list(
            InvoiceQuery::default(),
            PageRequest {
                after: Some(Cursor {
                    at: chrono::Utc::now(),
                    id: "evt_123".into(),
                }),
                limit: PageLimit::default(),
            },
        )
        .await
        .unwrap();

    assert!(page.items.is_empty());
    assert!(page.next.is_none());
}

#[tokio::test]
async fn the_first_payment_intent_sticks_unless_the_caller_replaces_it() {
    let (_db, store) = setup();
    let invoice = store
        .create(new_invoice(TenantId::new(), "inv-1", 100))
        .await
        .unwrap();

    let first = store
        .attach_payment_intent(invoice.id, &pi("pi_a"), None)
        .await
        .unwrap()
        .unwrap();
    let ignored = store
        .attach_payment_intent(invoice.id, &pi("pi_b"), None)
        .await
        .unwrap()
        .unwrap();
    let wrong_replace = store
        .attach_payment_intent(invoice.id, &pi("pi_c"), Some(pi("pi_x")))
        .await
        .unwrap()
        .unwrap();
    let replaced = store
        .attach_payment_intent(invoice.id, &pi("pi_d"), Some(pi("pi_a")))
        .await
        .unwrap()
        .unwrap();
    let missing = store
        .attach_payment_intent(InvoiceId::new(), &pi("pi_e"), None)
        .await
        .unwrap();

    assert_eq!(first.payment_intent, Some(pi("pi_a")));
    assert_eq!(ignored.payment_intent, Some(pi("pi_a")));
    assert_eq!(wrong_replace.payment_intent, Some(pi("pi_a")));
    assert_eq!(replaced.payment_intent, Some(pi("pi_d")));
    assert!(replaced.updated_at >= first.updated_at);
    assert_eq!(missing, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_callers_with_different_payment_intents_all_see_one_winner() {
    let (_db, store) = setup();
    let invoice = store
        .create(new_invoice(TenantId::new(), "inv-1", 100))
        .await
        .unwrap();

    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .attach_payment_intent(invoice.id, &pi(&format!("pi_{n}")), None)
                    .await
            })
        })
        .collect();
    let seen: HashSet<_> = futures::future::join_all(tasks)
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap().unwrap().payment_intent.unwrap())
        .collect();

    assert_eq!(seen.len(), 1, "{seen:?}");
    let stored = InvoiceRepository::get(&store, &InvoiceKey::Id(invoice.id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.payment_intent.as_ref(), seen.iter().next());
}

#[tokio::test]
async fn one_payment_intent_cannot_collect_two_invoices() {
    let (_db, store) = setup();
    let a = store
        .create(new_invoice(TenantId::new(), "inv-a", 100))
        .await
        .unwrap();
    let b = store
        .create(new_invoice(TenantId::new(), "inv-b", 100))
        .await
        .unwrap();
    store
        .attach_payment_intent(a.id, &pi("pi_shared"), None)
        .await
        .unwrap();

    let result = store
        .attach_payment_intent(b.id, &pi("pi_shared"), None)
        .await;

    assert!(
        matches!(
            result,
            Err(RepoError::Conflict(ConflictField::StripePaymentIntent))
        ),
        "{result:?}"
    );
}
