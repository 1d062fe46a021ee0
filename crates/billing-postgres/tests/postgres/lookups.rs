use std::collections::HashSet;

use billing_domain::ports::{
    InvoiceRepository, Linked, PaymentIntentLookups, RepoError, WebhookStore,
};
use billing_domain::{
    Invoice, InvoiceId, InvoiceKey, InvoiceNumber, InvoiceRef, InvoiceStatus, PaymentIntentRef,
    TenantId,
};
use billing_postgres::testing::TestDatabase;
use billing_postgres::PgStore;
use chrono::{DateTime, TimeZone, Utc};

use crate::{new_invoice, processed, setup, usd, work};

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_767_225_600 + secs, 0).unwrap()
}

fn pi(s: &str) -> PaymentIntentRef {
    PaymentIntentRef::parse(s).unwrap()
}

/// A paid Stripe invoice `in_<number>` of `tenant`, naming `payment_intent` if given.
fn paid(tenant: TenantId, number: &str, payment_intent: Option<&str>) -> Invoice {
    Invoice {
        id: InvoiceId::new(),
        tenant_id: tenant,
        subscription_id: None,
        number: InvoiceNumber::parse(number).unwrap(),
        status: InvoiceStatus::Paid,
        amount_due: usd(2900),
        amount_paid: usd(2900),
        due_date: None,
        description: None,
        paid_at: Some(at(0)),
        invoice_ref: Some(InvoiceRef::parse(format!("in_{number}")).unwrap()),
        payment_intent: payment_intent.map(pi),
        last_event_at: Some(at(0)),
        created_at: at(0),
        updated_at: at(0),
    }
}

/// Saves the invoice and, when `lookup_at` is given, requests its lookup due then, in one
/// webhook transaction (what the domain does for `invoice.paid`).
async fn mirror(store: &PgStore, invoice: &Invoice, lookup_at: Option<DateTime<Utc>>) {
    let invoice = invoice.clone();
    store
        .apply(work(move |tx| {
            tx.ensure_tenant(invoice.tenant_id)?;
            tx.save_invoice(&invoice)?;
            if let Some(due) = lookup_at {
                tx.request_payment_intent_lookup(invoice.id, due)?;
            }
            Ok(processed())
        }))
        .await
        .unwrap();
}

/// Requests a lookup in a webhook transaction of its own.
async fn request(store: &PgStore, invoice: InvoiceId, due: DateTime<Utc>) {
    store
        .apply(work(move |tx| {
            tx.request_payment_intent_lookup(invoice, due)?;
            Ok(processed())
        }))
        .await
        .unwrap();
}

/// A payment of `tenant` for PaymentIntent `pi`, recorded for `invoice` (or none); its id.
fn insert_payment(
    db: &TestDatabase,
    tenant: TenantId,
    invoice: Option<InvoiceId>,
    status: &str,
    pi: &str,
) -> uuid::Uuid {
    let id = uuid::Uuid::new_v4();
    let invoice = invoice.map_or("NULL".to_owned(), |i| format!("'{i}'"));
    db.execute(&format!(
        "INSERT INTO tenants (id) VALUES ('{tenant}') ON CONFLICT DO NOTHING; \
         INSERT INTO payments (id, tenant_id, invoice_id, amount, currency, status, \
         stripe_payment_intent_id) \
         VALUES ('{id}', '{tenant}', {invoice}, 2900, 'usd', '{status}', '{pi}')"
    ))
    .unwrap();
    id
}

/// Fails the test unless the SQL condition holds.
fn assert_sql(db: &TestDatabase, condition: &str) {
    let checked = db.execute(&format!(
        "DO $$ BEGIN IF NOT ({condition}) THEN RAISE EXCEPTION 'condition failed'; END IF; END $$"
    ));
    assert!(checked.is_ok(), "{condition}: {checked:?}");
}

/// The invoice's lookup is closed (no due time, no error) and nothing is left to claim.
async fn assert_lookup_closed(db: &TestDatabase, store: &PgStore, invoice: InvoiceId) {
    assert_sql(
        db,
        &invoice_where(
            invoice,
            "payment_intent_lookup_at IS NULL AND payment_intent_lookup_error IS NULL",
        ),
    );
    assert_eq!(store.backlog().await.unwrap(), 0);
    assert!(store
        .claim_due(at(100), at(200), 10)
        .await
        .unwrap()
        .is_empty());
}

/// A condition on one invoice's row.
fn invoice_where(invoice: InvoiceId, condition: &str) -> String {
    format!("EXISTS (SELECT 1 FROM invoices WHERE id = '{invoice}' AND {condition})")
}

fn ts(t: DateTime<Utc>) -> String {
    format!("'{}'::timestamptz", t.to_rfc3339())
}

async fn stored(store: &PgStore, id: InvoiceId) -> Invoice {
    InvoiceRepository::get(store, &InvoiceKey::Id(id))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn a_requested_lookup_is_claimed_once_and_hidden_by_its_lease_until_it_ends() {
    let (_db, store) = setup();
    let invoice = paid(TenantId::new(), "L-1", None);
    mirror(&store, &invoice, Some(at(0))).await;

    let claimed = store.claim_due(at(10), at(70), 10).await.unwrap();
    let during_lease = store.claim_due(at(69), at(130), 10).await.unwrap();
    let after_lease = store.claim_due(at(70), at(130), 10).await.unwrap();

    assert_eq!(
        claimed,
        vec![billing_domain::ports::PendingLookup {
            invoice: invoice.id,
            invoice_ref: InvoiceRef::parse("in_L-1").unwrap(),
            attempts: 0,
        }]
    );
    assert!(during_lease.is_empty(), "{during_lease:?}");
    assert_eq!(after_lease, claimed, "a crashed linker's lookup comes back");
    assert_eq!(
        store.backlog().await.unwrap(),
        1,
        "leased lookups still wait"
    );
}

#[tokio::test]
async fn only_due_lookups_of_stripe_invoices_are_claimed_oldest_first_at_most_limit() {
    let (_db, store) = setup();
    let tenant = TenantId::new();
    let (a, b, c, later) = (
        paid(tenant, "D-A", None),
        paid(tenant, "D-B", None),
        paid(tenant, "D-C", None),
        paid(tenant, "D-LATER", None),
    );
    mirror(&store, &a, Some(at(30))).await;
    mirror(&store, &b, Some(at(10))).await;
    mirror(&store, &c, Some(at(20))).await;
    mirror(&store, &later, Some(at(100))).await;
    // Ours, not Stripe's: there is nothing to look up at Stripe.
    let admin = store
        .create(new_invoice(tenant, "D-OURS", 100))
        .await
        .unwrap();
    request(&store, admin.id, at(0)).await;

    let first = store.claim_due(at(50), at(500), 2).await.unwrap();
    let second = store.claim_due(at(50), at(500), 10).await.unwrap();

    let ids = |claimed: &[billing_domain::ports::PendingLookup]| {
        claimed.iter().map(|l| l.invoice).collect::<Vec<_>>()
    };
    assert_eq!(ids(&first), vec![b.id, c.id]);
    assert_eq!(ids(&second), vec![a.id]);
    assert_eq!(store.backlog().await.unwrap(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_claimers_never_take_the_same_lookup() {
    let (_db, store) = setup();
    let tenant = TenantId::new();
    for i in 0..20 {
        mirror(&store, &paid(tenant, &format!("C-{i}"), None), Some(at(0))).await;
    }

    let (a, b) = tokio::join!(
        store.claim_due(at(10), at(70), 15),
        store.claim_due(at(10), at(70), 15),
    );

    let (a, b) = (a.unwrap(), b.unwrap());
    let ids: HashSet<_> = a.iter().chain(&b).map(|l| l.invoice).collect();
    assert_eq!(a.len() + b.len(), 20, "{} + {}", a.len(), b.len());
    assert_eq!(ids.len(), 20);
}

#[tokio::test]
async fn a_request_changes_nothing_for_an_invoice_with_a_payment_intent_or_a_pending_lookup() {
    let (db, store) = setup();
    let tenant = TenantId::new();
    let linked = paid(tenant, "R-LINKED", Some("pi_linked"));
    let pending = paid(tenant, "R-PENDING", None);
    mirror(&store, &linked, Some(at(0))).await;
    mirror(&store, &pending, Some(at(0))).await;
    store
        .reschedule(pending.id, 3, Some(at(500)), "timeout".into())
        .await
        .unwrap();

    request(&store, pending.id, at(1000)).await;

    assert_sql(
        &db,
        &invoice_where(linked.id, "payment_intent_lookup_at IS NULL"),
    );
    assert_sql(
        &db,
        &invoice_where(
            pending.id,
            &format!(
                "payment_intent_lookup_at = {} AND payment_intent_lookup_attempts = 3 \
                 AND payment_intent_lookup_error = 'timeout'",
                ts(at(500))
            ),
        ),
    );
    assert_eq!(store.backlog().await.unwrap(), 1);
}

#[tokio::test]
async fn a_request_after_giving_up_starts_afresh() {
    let (db, store) = setup();
    let invoice = paid(TenantId::new(), "R-AGAIN", None);
    mirror(&store, &invoice, Some(at(0))).await;
    store
        .reschedule(invoice.id, 30, None, "timeout".into())
        .await
        .unwrap();

    request(&store, invoice.id, at(900)).await;

    assert_sql(
        &db,
        &invoice_where(
            invoice.id,
            &format!(
                "payment_intent_lookup_at = {} AND payment_intent_lookup_attempts = 0 \
                 AND payment_intent_lookup_error IS NULL",
                ts(at(900))
            ),
        ),
    );
}

#[tokio::test]
async fn a_request_in_a_transaction_that_rolls_back_leaves_nothing() {
    let (db, store) = setup();
    let invoice = paid(TenantId::new(), "R-BACK", None);
    mirror(&store, &invoice, None).await;
    let id = invoice.id;

    let result = store
        .apply(work(move |tx| {
            tx.request_payment_intent_lookup(id, at(0))?;
            Err(RepoError::Unavailable("gone".into()))
        }))
        .await;

    assert!(result.is_err());
    assert_eq!(store.backlog().await.unwrap(), 0);
    assert!(store
        .claim_due(at(10), at(70), 10)
        .await
        .unwrap()
        .is_empty());
    assert_sql(&db, &invoice_where(id, "payment_intent_lookup_at IS NULL"));
}

#[tokio::test]
async fn completing_sets_the_payment_intent_and_links_the_tenants_unlinked_payments_only() {
    let (db, store) = setup();
    let (tenant, stranger) = (TenantId::new(), TenantId::new());
    let invoice = paid(tenant, "K-1", None);
    let elsewhere = paid(tenant, "K-ELSEWHERE", None);
    mirror(&store, &invoice, Some(at(0))).await;
    mirror(&store, &elsewhere, None).await;
    let unlinked = insert_payment(&db, tenant, None, "succeeded", "pi_k1");
    let failed = insert_payment(&db, tenant, None, "failed", "pi_k1");
    let strangers = insert_payment(&db, stranger, None, "failed", "pi_k1");
    let linked_elsewhere = insert_payment(&db, tenant, Some(elsewhere.id), "failed", "pi_k1");
    let other_pi = insert_payment(&db, tenant, None, "failed", "pi_other");
    store.claim_due(at(10), at(70), 10).await.unwrap();

    let linked = store
        .complete(invoice.id, Some(pi("pi_k1")), at(20))
        .await
        .unwrap();

    assert_eq!(
        linked,
        Linked {
            invoice_updated: true,
            payments_linked: 2,
        }
    );
    let after = stored(&store, invoice.id).await;
    assert_eq!(after.payment_intent, Some(pi("pi_k1")));
    assert_eq!(after.updated_at, at(20));
    // Amounts and status are the webhook's business.
    assert_eq!(after.status, InvoiceStatus::Paid);
    assert_eq!(after.amount_paid, usd(2900));
    assert_eq!(after.paid_at, Some(at(0)));
    let payment_of = |payment: uuid::Uuid, invoice: &str| {
        format!("EXISTS (SELECT 1 FROM payments WHERE id = '{payment}' AND invoice_id {invoice})")
    };
    let ours = format!("= '{}'", invoice.id);
    assert_sql(&db, &payment_of(unlinked, &ours));
    assert_sql(&db, &payment_of(failed, &ours));
    assert_sql(&db, &payment_of(strangers, "IS NULL"));
    assert_sql(
        &db,
        &payment_of(linked_elsewhere, &format!("= '{}'", elsewhere.id)),
    );
    assert_sql(&db, &payment_of(other_pi, "IS NULL"));
    assert_lookup_closed(&db, &store, invoice.id).await;
}

#[tokio::test]
async fn completing_with_a_payment_intent_another_invoice_holds_changes_no_link() {
    let (db, store) = setup();
    let tenant = TenantId::new();
    let holder = paid(tenant, "H-HOLDER", Some("pi_held"));
    let invoice = paid(tenant, "H-1", None);
    mirror(&store, &holder, None).await;
    mirror(&store, &invoice, Some(at(0))).await;
    let payment = insert_payment(&db, tenant, None, "succeeded", "pi_held");

    let linked = store
        .complete(invoice.id, Some(pi("pi_held")), at(20))
        .await
        .unwrap();

    assert_eq!(linked, Linked::default());
    assert_eq!(stored(&store, invoice.id).await.payment_intent, None);
    assert_eq!(
        stored(&store, holder.id).await.payment_intent,
        Some(pi("pi_held"))
    );
    assert_sql(
        &db,
        &format!("EXISTS (SELECT 1 FROM payments WHERE id = '{payment}' AND invoice_id IS NULL)"),
    );
    assert_sql(
        &db,
        &invoice_where(invoice.id, "payment_intent_lookup_at IS NULL"),
    );
}

#[tokio::test]
async fn completing_an_invoice_that_names_the_payment_intent_links_its_payments_only() {
    let (db, store) = setup();
    let tenant = TenantId::new();
    let invoice = paid(tenant, "N-1", None);
    mirror(&store, &invoice, Some(at(0))).await;
    // Named meanwhile, by the checkout flow say.
    store
        .attach_payment_intent(invoice.id, &pi("pi_named"), None)
        .await
        .unwrap();
    let payment = insert_payment(&db, tenant, None, "succeeded", "pi_named");
    let unrelated = insert_payment(&db, tenant, None, "succeeded", "pi_found");

    let other = store
        .complete(invoice.id, Some(pi("pi_found")), at(20))
        .await
        .unwrap();
    let same = store
        .complete(invoice.id, Some(pi("pi_named")), at(30))
        .await
        .unwrap();

    assert_eq!(other, Linked::default());
    assert_eq!(
        same,
        Linked {
            invoice_updated: false,
            payments_linked: 1,
        }
    );
    assert_eq!(
        stored(&store, invoice.id).await.payment_intent,
        Some(pi("pi_named"))
    );
    assert_sql(
        &db,
        &format!(
            "EXISTS (SELECT 1 FROM payments WHERE id = '{payment}' AND invoice_id = '{}')",
            invoice.id
        ),
    );
    assert_sql(
        &db,
        &format!("EXISTS (SELECT 1 FROM payments WHERE id = '{unrelated}' AND invoice_id IS NULL)"),
    );
}

#[tokio::test]
async fn completing_without_a_payment_intent_ends_the_lookup() {
    let (db, store) = setup();
    let invoice = paid(TenantId::new(), "E-1", None);
    mirror(&store, &invoice, Some(at(0))).await;
    store
        .reschedule(invoice.id, 2, Some(at(5)), "timeout".into())
        .await
        .unwrap();

    let linked = store.complete(invoice.id, None, at(20)).await.unwrap();

    assert_eq!(linked, Linked::default());
    let after = stored(&store, invoice.id).await;
    assert_eq!(after.payment_intent, None);
    assert_eq!(after.updated_at, at(20));
    assert_lookup_closed(&db, &store, invoice.id).await;
}

#[tokio::test]
async fn completing_an_unknown_invoice_changes_nothing() {
    let (_db, store) = setup();

    let linked = store
        .complete(InvoiceId::new(), Some(pi("pi_nobody")), at(20))
        .await
        .unwrap();

    assert_eq!(linked, Linked::default());
}

#[tokio::test]
async fn rescheduling_sets_the_next_due_time_and_attempts_and_none_gives_up_keeping_the_error() {
    let (db, store) = setup();
    let invoice = paid(TenantId::new(), "S-1", None);
    mirror(&store, &invoice, Some(at(0))).await;
    store.claim_due(at(10), at(70), 10).await.unwrap();

    store
        .reschedule(invoice.id, 1, Some(at(100)), "timeout".into())
        .await
        .unwrap();
    let too_early = store.claim_due(at(99), at(200), 10).await.unwrap();
    let due = store.claim_due(at(100), at(200), 10).await.unwrap();
    store
        .reschedule(invoice.id, 2, None, "é".repeat(1500))
        .await
        .unwrap();

    assert!(too_early.is_empty(), "{too_early:?}");
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].attempts, 1);
    assert_eq!(store.backlog().await.unwrap(), 0);
    assert!(store
        .claim_due(at(1_000_000), at(2_000_000), 10)
        .await
        .unwrap()
        .is_empty());
    assert_sql(
        &db,
        &invoice_where(
            invoice.id,
            "payment_intent_lookup_at IS NULL AND payment_intent_lookup_attempts = 2 \
             AND payment_intent_lookup_error = repeat('é', 1000)",
        ),
    );
}

#[tokio::test]
async fn rescheduling_a_completed_lookup_does_not_bring_it_back() {
    let (db, store) = setup();
    let invoice = paid(TenantId::new(), "S-DONE", None);
    mirror(&store, &invoice, Some(at(0))).await;
    store.complete(invoice.id, None, at(20)).await.unwrap();

    // A slow linker whose lease ran out.
    store
        .reschedule(invoice.id, 1, Some(at(100)), "timeout".into())
        .await
        .unwrap();

    assert_eq!(store.backlog().await.unwrap(), 0);
    assert_sql(
        &db,
        &invoice_where(
            invoice.id,
            "payment_intent_lookup_attempts = 0 AND payment_intent_lookup_error IS NULL",
        ),
    );
}

#[tokio::test]
async fn the_backlog_counts_pending_lookups_only() {
    let (_db, store) = setup();
    let tenant = TenantId::new();
    let invoices: Vec<_> = (0..4)
        .map(|i| paid(tenant, &format!("B-{i}"), None))
        .collect();
    for invoice in &invoices {
        mirror(&store, invoice, Some(at(0))).await;
    }
    mirror(&store, &paid(tenant, "B-NONE", None), None).await;
    let before = store.backlog().await.unwrap();

    store.complete(invoices[0].id, None, at(5)).await.unwrap();
    store
        .reschedule(invoices[1].id, 30, None, "gave up".into())
        .await
        .unwrap();
    store
        .reschedule(invoices[2].id, 1, Some(at(50)), "timeout".into())
        .await
        .unwrap();

    assert_eq!(before, 4);
    assert_eq!(store.backlog().await.unwrap(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_recorded_while_the_lookup_is_recorded_is_still_linked() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let (db, store) = setup();
    let tenant = TenantId::new();
    let invoice = paid(tenant, "K-RACE", None);
    mirror(&store, &invoice, Some(at(0))).await;
    let looked = Arc::new(AtomicBool::new(false));

    // A `payment_intent.succeeded` transaction: it finds no invoice for the PaymentIntent,
    // and is still open when the linker records the lookup.
    let webhook = tokio::spawn({
        let store = store.clone();
        let looked = Arc::clone(&looked);
        async move {
            store
                .apply(work(move |tx| {
                    let found = tx.lock_invoice_by_payment_intent(&pi("pi_race"))?;
                    assert!(found.is_none());
                    looked.store(true, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    let payment = billing_domain::Payment {
                        id: billing_domain::PaymentId::new(),
                        tenant_id: tenant,
                        invoice_id: None,
                        amount: usd(2900),
                        status: billing_domain::PaymentStatus::Succeeded,
                        failure_code: None,
                        failure_message: None,
                        payment_intent: Some(pi("pi_race")),
                        charge: None,
                        created_at: at(5),
                    };
                    tx.insert_payment(
                        &payment,
                        &billing_domain::EventId::parse("evt_race").unwrap(),
                    )?;
                    Ok(processed())
                }))
                .await
        }
    });
    while !looked.load(Ordering::SeqCst) {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }

    let linked = store
        .complete(invoice.id, Some(pi("pi_race")), at(20))
        .await
        .unwrap();
    webhook.await.unwrap().unwrap();

    // The record waited for the payment's transaction, then saw its payment.
    assert_eq!(
        linked,
        Linked {
            invoice_updated: true,
            payments_linked: 1,
        }
    );
    assert_sql(
        &db,
        &format!(
            "EXISTS (SELECT 1 FROM payments WHERE stripe_payment_intent_id = 'pi_race' \
             AND invoice_id = '{}')",
            invoice.id
        ),
    );
}

#[test]
fn the_migration_queues_paid_stripe_invoices_left_without_their_payment_intent() {
    let db = TestDatabase::create().unwrap();
    // As before migration 10: the earlier in-request lookup may have left paid invoices
    // unlinked.
    db.execute(include_str!(
        "../../../../migrations/2026-11-28-000002_invoice_payment_intent_lookups/down.sql"
    ))
    .unwrap();
    let tenant = TenantId::new();
    db.execute(&format!(
        "INSERT INTO tenants (id) VALUES ('{tenant}'); \
         INSERT INTO invoices (id, tenant_id, number, status, amount_due, amount_paid, \
         currency, stripe_invoice_id, stripe_payment_intent_id) VALUES \
         (gen_random_uuid(), '{tenant}', 'MIG-UNLINKED', 'paid', 100, 100, 'usd', 'in_mig_1', NULL), \
         (gen_random_uuid(), '{tenant}', 'MIG-LINKED', 'paid', 100, 100, 'usd', 'in_mig_2', 'pi_mig_2'), \
         (gen_random_uuid(), '{tenant}', 'MIG-OPEN', 'open', 100, 0, 'usd', 'in_mig_3', NULL), \
         (gen_random_uuid(), '{tenant}', 'MIG-OURS', 'paid', 100, 100, 'usd', NULL, NULL)"
    ))
    .unwrap();

    db.execute(include_str!(
        "../../../../migrations/2026-11-28-000002_invoice_payment_intent_lookups/up.sql"
    ))
    .unwrap();

    // Only the paid Stripe invoice without a PaymentIntent is queued.
    assert_sql(
        &db,
        "(SELECT array_agg(number ORDER BY number) FROM invoices \
          WHERE payment_intent_lookup_at IS NOT NULL) = ARRAY['MIG-UNLINKED']::text[]",
    );
}
