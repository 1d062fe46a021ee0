//! Each table's statements inside the webhook transaction.

use super::*;

#[tokio::test]
async fn a_tenant_is_ensured_found_by_customer_and_saved_inside_the_transaction() {
    let (_db, store) = setup();
    let id = TenantId::new();

    let found = store
        .apply(work(move |tx| {
            let created = tx.ensure_tenant(id)?;
            let again = tx.ensure_tenant(id)?;
            assert_eq!(created, again);
            assert_eq!(created.status, TenantStatus::Pending);
            let mut tenant = created;
            tenant.status = TenantStatus::Active;
            tenant.customer = Some(CustomerRef::parse("cus_test_tx").unwrap());
            tenant.updated_at = at(9);
            tx.save_tenant(&tenant)?;
            let by_customer = tx
                .tenant_by_customer(&CustomerRef::parse("cus_test_tx").unwrap())?
                .map(|t| t.id.to_string());
            Ok(with_detail(&by_customer.unwrap_or_default()))
        }))
        .await
        .unwrap()
        .committed();

    assert_eq!(found.detail, Some(id.to_string()));
    let stored = TenantRepository::get(&store, id).await.unwrap().unwrap();
    assert_eq!(stored.status, TenantStatus::Active);
    assert_eq!(stored.updated_at, at(9));
}

#[tokio::test]
async fn a_subscription_is_inserted_then_updated_and_liveness_is_judged_per_tenant() {
    let (_db, store) = setup();
    let plan = PlanRepository::create(&store, new_plan("basic", "price_basic"))
        .await
        .unwrap();
    let tenant = TenantRepository::ensure(&store, TenantId::new())
        .await
        .unwrap()
        .id;
    let first = subscription(tenant, plan.id, "sub_test_a");
    let second = subscription(tenant, plan.id, "sub_test_b");
    let (a, b) = (first.clone(), second.clone());

    let applied = store
        .apply(work(move |tx| {
            tx.save_subscription(&a)?;
            tx.save_subscription(&b)?;
            let mut locked = tx
                .lock_subscription(a.subscription_ref.as_ref().unwrap())?
                .unwrap();
            assert_eq!(locked, a);
            locked.status = SubscriptionStatus::Canceled;
            locked.canceled_at = Some(at(50));
            locked.last_event_at = Some(at(50));
            tx.save_subscription(&locked)?;
            let other_live_for_a = tx.has_other_live_subscription(tenant, a.id)?;
            let mut b = b.clone();
            b.status = SubscriptionStatus::Canceled;
            tx.save_subscription(&b)?;
            let other_live_for_b = tx.has_other_live_subscription(tenant, b.id)?;
            let by_price = tx.plan_by_price(&PriceRef::parse("price_basic").unwrap())?;
            let by_code = tx.plan(&PlanKey::parse("basic").unwrap())?;
            Ok(with_detail(&format!(
                "{other_live_for_a} {other_live_for_b} {} {}",
                by_price.is_some(),
                by_code.is_some()
            )))
        }))
        .await
        .unwrap()
        .committed();

    assert_eq!(applied.detail.as_deref(), Some("true false true true"));
    let stored = store
        .apply(work(move |tx| {
            let s = tx
                .lock_subscription(&SubscriptionRef::parse("sub_test_a").unwrap())?
                .unwrap();
            assert_eq!(s.id, first.id);
            assert_eq!(s.status, SubscriptionStatus::Canceled);
            assert_eq!(s.canceled_at, Some(at(50)));
            assert_eq!(s.last_event_at, Some(at(50)));
            assert_eq!(s.created_at, first.created_at);
            Ok(processed())
        }))
        .await;
    assert!(stored.is_ok(), "{stored:?}");
}

#[tokio::test]
async fn an_invoice_is_upserted_and_found_by_each_of_its_keys() {
    let (_db, store) = setup();
    let tenant = TenantRepository::ensure(&store, TenantId::new())
        .await
        .unwrap()
        .id;
    let inv = invoice(tenant, "INV-100", "in_test_100");
    let id = inv.id;

    store
        .apply(work(move |tx| {
            tx.save_invoice(&inv)?;
            let mut paid = tx.lock_invoice(inv.id)?.unwrap();
            assert_eq!(paid, inv);
            paid.status = InvoiceStatus::Paid;
            paid.amount_paid = usd(2900);
            paid.paid_at = Some(at(60));
            paid.payment_intent = Some(PaymentIntentRef::parse("pi_test_100").unwrap());
            paid.updated_at = at(61);
            tx.save_invoice(&paid)?;
            let by_ref = tx.lock_invoice_by_ref(&InvoiceRef::parse("in_test_100").unwrap())?;
            let by_pi = tx
                .lock_invoice_by_payment_intent(&PaymentIntentRef::parse("pi_test_100").unwrap())?;
            assert_eq!(by_ref.as_ref(), Some(&paid));
            assert_eq!(by_pi, Some(paid));
            Ok(processed())
        }))
        .await
        .unwrap()
        .committed();

    let stored = InvoiceRepository::get(&store, &InvoiceKey::Id(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, InvoiceStatus::Paid);
    assert_eq!(stored.amount_paid, usd(2900));
    assert_eq!(stored.paid_at, Some(at(60)));
    assert_eq!(stored.created_at, at(1));
    assert_eq!(stored.updated_at, at(61));
}

#[tokio::test]
async fn a_clashing_invoice_is_a_conflict_and_the_event_can_still_be_recorded_as_failed() {
    let (_db, store) = setup();
    let tenant = TenantId::new();
    InvoiceRepository::create(&store, new_invoice(tenant, "INV-1", 2900))
        .await
        .unwrap();
    let stripe_owned = invoice(tenant, "INV-2", "in_test_taken");
    store
        .apply(work(move |tx| {
            tx.save_invoice(&stripe_owned)?;
            Ok(processed())
        }))
        .await
        .unwrap();

    let applied = store
        .apply(work(move |tx| {
            tx.insert_event(&entry("evt_clash"))?;
            let by_number = tx.save_invoice(&invoice(tenant, "INV-1", "in_test_new"));
            let by_stripe_id = tx.save_invoice(&invoice(tenant, "INV-3", "in_test_taken"));
            let fields = match (by_number, by_stripe_id) {
                (Err(RepoError::Conflict(a)), Err(RepoError::Conflict(b))) => format!("{a} {b}"),
                other => format!("unexpected {other:?}"),
            };
            let applied = Applied {
                outcome: EventOutcome::Failed,
                detail: Some(fields),
            };
            tx.set_event_outcome(&event_id("evt_clash"), &applied, at(70))?;
            Ok(applied)
        }))
        .await
        .unwrap()
        .committed();

    assert_eq!(applied.detail.as_deref(), Some("number stripeInvoiceId"));
    let stored = LedgerRepository::get(&store, &event_id("evt_clash"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.outcome, EventOutcome::Failed);
    assert_eq!(stored.detail.as_deref(), Some("number stripeInvoiceId"));
    assert_eq!(stored.processed_at, Some(at(70)));
    let missing = InvoiceRepository::get(
        &store,
        &InvoiceKey::Number(InvoiceNumber::parse("INV-3").unwrap()),
    )
    .await
    .unwrap();
    assert!(missing.is_none());
}

#[tokio::test]
async fn payments_are_deduplicated_by_source_event_and_by_succeeded_payment_intent() {
    let (_db, store) = setup();
    let tenant = TenantRepository::ensure(&store, TenantId::new())
        .await
        .unwrap()
        .id;

    let applied = store
        .apply(work(move |tx| {
            let mut charged = payment(tenant, PaymentStatus::Succeeded, "pi_test_1");
            let failed_on_charge = || {
                let mut failed = payment(tenant, PaymentStatus::Failed, "pi_test_2");
                failed.charge = Some(ChargeRef::parse("ch_test_2").unwrap());
                failed
            };
            charged.charge = Some(ChargeRef::parse("ch_test_1").unwrap());
            let results = [
                tx.insert_payment(&charged, &event_id("evt_p1"))?,
                // Redelivery of the same event.
                tx.insert_payment(
                    &payment(tenant, PaymentStatus::Succeeded, "pi_test_1"),
                    &event_id("evt_p1"),
                )?,
                // Another event about the same success.
                tx.insert_payment(
                    &payment(tenant, PaymentStatus::Succeeded, "pi_test_1"),
                    &event_id("evt_p2"),
                )?,
                // Two failed attempts of one PaymentIntent naming the same charge.
                tx.insert_payment(&failed_on_charge(), &event_id("evt_p3"))?,
                tx.insert_payment(&failed_on_charge(), &event_id("evt_p4"))?,
            ];
            Ok(with_detail(&format!("{results:?}")))
        }))
        .await
        .unwrap()
        .committed();

    assert_eq!(
        applied.detail.as_deref(),
        Some("[true, false, false, true, true]")
    );
    let stored = PaymentRepository::list(
        &store,
        PaymentQuery {
            tenant: Some(tenant),
            invoice: None,
        },
        PageRequest {
            after: None,
            limit: PageLimit::new(10).unwrap(),
        },
    )
    .await
    .unwrap();
    assert_eq!(stored.items.len(), 3);
    let charged = stored
        .items
        .iter()
        .find(|p| p.status == PaymentStatus::Succeeded)
        .unwrap();
    assert_eq!(charged.charge.as_ref().unwrap().as_str(), "ch_test_1");
    let failed: Vec<_> = stored
        .items
        .iter()
        .filter(|p| p.status == PaymentStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 2);
    assert!(failed
        .iter()
        .all(|p| p.failure_code.as_deref() == Some("card_declined")));
}

#[tokio::test]
async fn a_notification_is_enqueued_once_per_key_with_the_documented_document() {
    let (_db, store) = setup();
    let tenant = TenantId::new();
    let notification = payment_failed(tenant, "invoice.payment_failed:in_test_7:2");
    let expected = notification.clone();

    let applied = store
        .apply(work(move |tx| {
            let first = tx.enqueue_notification(&notification)?;
            let mut again = payment_failed(tenant, "invoice.payment_failed:in_test_7:2");
            again.occurred_at = at(99);
            let second = tx.enqueue_notification(&again)?;
            Ok(with_detail(&format!("{first} {second}")))
        }))
        .await
        .unwrap()
        .committed();

    assert_eq!(applied.detail.as_deref(), Some("true false"));
    assert_eq!(store.backlog().await.unwrap(), 1);
    let claimed = store.claim_due(Utc::now(), Utc::now(), 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let message = &claimed[0];
    assert_eq!(message.id, expected.id);
    assert_eq!(message.kind, "invoice.payment_failed");
    assert_eq!(message.attempts, 0);
    // The first notification's document, stored as the format rendered it.
    assert_eq!(message.payload, test_document(&expected).unwrap());
}

#[tokio::test]
async fn a_store_without_a_notification_format_refuses_to_enqueue_and_commits_nothing() {
    let (db, _store) = setup();
    let store = db.store();
    let notification = payment_failed(TenantId::new(), "invoice.payment_failed:in_test_8:1");

    let err = store
        .apply(work(move |tx| {
            tx.insert_event(&entry("evt_no_format"))?;
            tx.enqueue_notification(&notification)?;
            Ok(processed())
        }))
        .await
        .unwrap_err();

    assert!(matches!(err, RepoError::Unexpected(_)), "{err:?}");
    assert_eq!(store.backlog().await.unwrap(), 0);
    assert!(LedgerRepository::get(&store, &event_id("evt_no_format"))
        .await
        .unwrap()
        .is_none());
}

// ---- the lifecycle beyond the seven (issue 14) ----

#[tokio::test]
async fn an_invoices_stripe_links_and_canceled_intent_are_stored_and_a_new_intent_clears_the_mark()
{
    let (_db, store) = setup();
    let tenant = TenantRepository::ensure(&store, TenantId::new())
        .await
        .unwrap()
        .id;
    let mut inv = invoice(tenant, "INV-200", "in_test_200");
    inv.hosted_invoice_url = Some("https://invoice.stripe.com/i/acct_1/test_200".into());
    inv.invoice_pdf_url = Some("https://pay.stripe.com/invoice/acct_1/test_200/pdf".into());
    inv.payment_intent = Some(PaymentIntentRef::parse("pi_test_old").unwrap());
    inv.payment_intent_canceled = true;
    let id = inv.id;
    let saved = inv.clone();

    store
        .apply(work(move |tx| {
            tx.save_invoice(&saved)?;
            assert_eq!(tx.lock_invoice(saved.id)?.as_ref(), Some(&saved));
            Ok(processed())
        }))
        .await
        .unwrap()
        .committed();
    let stored = InvoiceRepository::get(&store, &InvoiceKey::Id(id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.hosted_invoice_url, inv.hosted_invoice_url);
    assert_eq!(stored.invoice_pdf_url, inv.invoice_pdf_url);
    assert!(stored.payment_intent_canceled);

    let replaced = InvoiceRepository::attach_payment_intent(
        &store,
        id,
        &PaymentIntentRef::parse("pi_test_new").unwrap(),
        Some(PaymentIntentRef::parse("pi_test_old").unwrap()),
    )
    .await
    .unwrap()
    .unwrap();

    assert_eq!(replaced.payment_intent.unwrap().as_str(), "pi_test_new");
    assert!(!replaced.payment_intent_canceled);
}

#[tokio::test]
async fn only_a_recorded_open_checkout_session_is_expired_by_the_webhook() {
    use billing_domain::ports::{CheckoutSessionRepository, SessionEnd};
    use billing_domain::CheckoutSessionRef;

    let (_db, store) = setup();
    let tenant = TenantRepository::ensure(&store, TenantId::new())
        .await
        .unwrap()
        .id;
    let open = CheckoutSessionRef::parse("cs_test_open").unwrap();
    let done = CheckoutSessionRef::parse("cs_test_done").unwrap();
    store.record_open(tenant, &open, at(0)).await.unwrap();
    store.record_open(tenant, &done, at(0)).await.unwrap();
    store
        .close(&done, SessionEnd::Completed, at(1))
        .await
        .unwrap();

    let results = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&results);
    store
        .apply(work(move |tx| {
            let mut seen = seen.lock().unwrap();
            seen.clear();
            for id in [
                "cs_test_open",
                "cs_test_done",
                "cs_test_unknown",
                "cs_test_open",
            ] {
                seen.push(
                    tx.expire_checkout_session(&CheckoutSessionRef::parse(id).unwrap(), at(2))?,
                );
            }
            Ok(processed())
        }))
        .await
        .unwrap()
        .committed();

    assert_eq!(*results.lock().unwrap(), [true, false, false, false]);
    // The completed one stays complete; the expired one no longer blocks a new checkout.
    let others = store
        .record_open(
            tenant,
            &CheckoutSessionRef::parse("cs_test_next").unwrap(),
            at(3),
        )
        .await
        .unwrap();
    assert!(others.is_empty(), "{others:?}");
}

#[tokio::test]
async fn a_deleted_customer_is_remembered_once_and_others_are_not() {
    let (_db, store) = setup();
    let deleted = CustomerRef::parse("cus_gone").unwrap();

    let recorded_twice = store
        .apply(work({
            let deleted = deleted.clone();
            move |tx| {
                let before = tx.customer_was_deleted(&deleted)?;
                tx.record_customer_deleted(&deleted, at(1))?;
                // A redelivery's second record changes nothing and does not fail.
                tx.record_customer_deleted(&deleted, at(2))?;
                Ok(with_detail(&format!("before={before}")))
            }
        }))
        .await
        .unwrap()
        .committed();
    let (after, other) = store
        .apply(work({
            let deleted = deleted.clone();
            move |tx| {
                let after = tx.customer_was_deleted(&deleted)?;
                let other = tx.customer_was_deleted(&CustomerRef::parse("cus_kept").unwrap())?;
                Ok(with_detail(&format!("{after},{other}")))
            }
        }))
        .await
        .unwrap()
        .committed()
        .detail
        .unwrap()
        .split_once(',')
        .map(|(a, o)| (a.to_owned(), o.to_owned()))
        .unwrap();

    assert_eq!(recorded_twice.detail.as_deref(), Some("before=false"));
    assert_eq!((after.as_str(), other.as_str()), ("true", "false"));
}
