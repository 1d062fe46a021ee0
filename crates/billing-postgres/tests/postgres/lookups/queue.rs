//! The lookup queue: requests, claims and leases, rescheduling, the backlog.

use super::*;

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

#[test]
fn the_migration_queues_paid_stripe_invoices_left_without_their_payment_intent() {
    let db = TestDatabase::create().unwrap();
    // As before migration 10: the earlier in-request lookup may have left paid invoices
    // unlinked.
    db.execute(include_str!(
        "../../../../../migrations/2026-11-28-000002_invoice_payment_intent_lookups/down.sql"
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
        "../../../../../migrations/2026-11-28-000002_invoice_payment_intent_lookups/up.sql"
    ))
    .unwrap();

    // Only the paid Stripe invoice without a PaymentIntent is queued.
    assert_sql(
        &db,
        "(SELECT array_agg(number ORDER BY number) FROM invoices \
          WHERE payment_intent_lookup_at IS NOT NULL) = ARRAY['MIG-UNLINKED']::text[]",
    );
}
