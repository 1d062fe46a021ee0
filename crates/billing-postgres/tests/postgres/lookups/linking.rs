//! Completing a lookup: the invoice's PaymentIntent and the payments it links.

use super::*;

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
                        amount_refunded: usd(0),
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
