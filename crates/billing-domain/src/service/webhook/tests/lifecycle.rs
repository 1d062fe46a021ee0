//! The lifecycle beyond the seven events (issue 14, docs/contract.md, The whole lifecycle): invoices mirrored before
//! payment, paid out of band, voided, uncollectible, needing authentication;
//! subscriptions created, paused, resumed, their trial ending; checkouts expiring or
//! paid late; PaymentIntents canceled; customers deleted.

use super::*;
use crate::notification::NotificationBody;

fn draft(tenant: TenantId) -> InvoiceSnapshot {
    InvoiceSnapshot {
        number: None,
        status: Some("draft".into()),
        hosted_invoice_url: None,
        invoice_pdf_url: None,
        paid_at: None,
        payment_intent: None,
        ..stripe_invoice(Some(tenant), 4900, 0, 0)
    }
}

fn finalized(tenant: TenantId) -> InvoiceSnapshot {
    InvoiceSnapshot {
        number: Some("ABC-0001".into()),
        status: Some("open".into()),
        due_date: Some(at(90_000)),
        ..stripe_invoice(Some(tenant), 4900, 0, 0)
    }
}

fn only_invoice(store: &FakeStore) -> Invoice {
    let state = store.state();
    assert_eq!(state.invoices.len(), 1);
    state.invoices.values().next().unwrap().clone()
}

// ---- invoices -------------------------------------------------------------------------

#[tokio::test]
async fn a_stripe_invoice_is_mirrored_as_a_draft_then_open_with_its_links() {
    let store = FakeStore::default();
    let tenant = TenantId::new();

    let created = deliver(
        &store,
        event("evt_1", 100, PaymentEvent::InvoiceCreated(draft(tenant))),
    )
    .await
    .unwrap();
    let inv = only_invoice(&store);
    assert_eq!(created.outcome, EventOutcome::Processed);
    assert_eq!(inv.status, InvoiceStatus::Draft);
    assert_eq!(inv.number.as_str(), "in_1");
    assert!(inv.hosted_invoice_url.is_none());

    deliver(
        &store,
        event(
            "evt_2",
            200,
            PaymentEvent::InvoiceFinalized(finalized(tenant)),
        ),
    )
    .await
    .unwrap();

    let inv = only_invoice(&store);
    assert_eq!(inv.status, InvoiceStatus::Open);
    assert_eq!(inv.number.as_str(), "ABC-0001");
    assert_eq!(inv.amount_due, usd(4900));
    assert_eq!(inv.due_date, Some(at(90_000).date_naive()));
    assert_eq!(
        inv.hosted_invoice_url.as_deref(),
        Some("https://invoice.example/i/in_1")
    );
    assert_eq!(
        inv.invoice_pdf_url.as_deref(),
        Some("https://invoice.example/i/in_1/pdf")
    );
    assert_eq!(inv.last_event_at, Some(at(200)));
}

#[tokio::test]
async fn an_updated_draft_changes_what_is_owed() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    deliver(
        &store,
        event("evt_1", 100, PaymentEvent::InvoiceCreated(draft(tenant))),
    )
    .await
    .unwrap();

    deliver(
        &store,
        event(
            "evt_2",
            150,
            PaymentEvent::InvoiceUpdated(InvoiceSnapshot {
                amount_due: 5900,
                ..draft(tenant)
            }),
        ),
    )
    .await
    .unwrap();

    let inv = only_invoice(&store);
    assert_eq!(inv.amount_due, usd(5900));
    assert_eq!(inv.status, InvoiceStatus::Draft);
}

#[tokio::test]
async fn a_draft_event_of_the_same_second_never_undoes_the_finalisation() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_2",
            100,
            PaymentEvent::InvoiceFinalized(finalized(tenant)),
        ),
    )
    .await
    .unwrap();

    let late = deliver(
        &store,
        event("evt_1", 100, PaymentEvent::InvoiceCreated(draft(tenant))),
    )
    .await
    .unwrap();

    assert_eq!(late.outcome, EventOutcome::Processed);
    let inv = only_invoice(&store);
    assert_eq!(inv.status, InvoiceStatus::Open);
    assert_eq!(inv.number.as_str(), "ABC-0001");
    assert!(inv.hosted_invoice_url.is_some());
}

#[tokio::test]
async fn an_older_invoice_update_arriving_late_is_stale() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_2",
            200,
            PaymentEvent::InvoiceFinalized(finalized(tenant)),
        ),
    )
    .await
    .unwrap();

    let late = deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::InvoiceUpdated(InvoiceSnapshot {
                amount_due: 1,
                ..draft(tenant)
            }),
        ),
    )
    .await
    .unwrap();

    assert_eq!(late.outcome, EventOutcome::Stale);
    assert_eq!(only_invoice(&store).amount_due, usd(4900));
}

#[tokio::test]
async fn an_invoice_paid_out_of_band_is_paid_with_no_payment_and_no_lookup() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::InvoiceFinalized(finalized(tenant)),
        ),
    )
    .await
    .unwrap();

    let paid = deliver(
        &store,
        event(
            "evt_2",
            200,
            PaymentEvent::InvoicePaid(InvoiceSnapshot {
                paid_out_of_band: true,
                payment_intent: None,
                ..stripe_invoice(Some(tenant), 4900, 4900, 0)
            }),
        ),
    )
    .await
    .unwrap();

    assert_eq!(paid.outcome, EventOutcome::Processed);
    let state = store.state();
    let inv = only_invoice(&store);
    assert_eq!(inv.status, InvoiceStatus::Paid);
    assert_eq!(inv.amount_paid, usd(4900));
    assert_eq!(inv.paid_at, Some(at(1_500)));
    assert!(inv.payment_intent.is_none());
    assert!(state.payments.is_empty());
    assert!(state.lookups.is_empty());
}

#[tokio::test]
async fn the_second_of_invoice_paid_and_payment_succeeded_changes_nothing_more() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    let snapshot = stripe_invoice(Some(tenant), 4900, 4900, 1);
    deliver(
        &store,
        event("evt_paid", 100, PaymentEvent::InvoicePaid(snapshot.clone())),
    )
    .await
    .unwrap();
    let first = only_invoice(&store);

    let second = deliver(
        &store,
        event("evt_succeeded", 100, PaymentEvent::InvoicePaid(snapshot)),
    )
    .await
    .unwrap();

    assert_eq!(second.outcome, EventOutcome::Processed);
    assert_eq!(second.detail.as_deref(), Some("invoice is already paid"));
    assert_eq!(only_invoice(&store), first);
}

#[tokio::test]
async fn a_voided_invoice_is_void_and_stays_void() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::InvoiceFinalized(finalized(tenant)),
        ),
    )
    .await
    .unwrap();

    let voided = deliver(
        &store,
        event("evt_2", 200, PaymentEvent::InvoiceVoided(finalized(tenant))),
    )
    .await
    .unwrap();
    // A failure of the same second cannot reopen it.
    deliver(
        &store,
        event(
            "evt_3",
            200,
            PaymentEvent::InvoicePaymentFailed(finalized(tenant)),
        ),
    )
    .await
    .unwrap();

    assert_eq!(voided.outcome, EventOutcome::Processed);
    assert_eq!(only_invoice(&store).status, InvoiceStatus::Void);
    assert!(store.state().notifications.is_empty());
}

#[tokio::test]
async fn a_paid_invoice_reported_void_is_flagged_for_an_operator() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::InvoicePaid(stripe_invoice(Some(tenant), 4900, 4900, 1)),
        ),
    )
    .await
    .unwrap();

    let voided = deliver(
        &store,
        event("evt_2", 200, PaymentEvent::InvoiceVoided(finalized(tenant))),
    )
    .await
    .unwrap();

    assert_eq!(voided.outcome, EventOutcome::Failed);
    assert!(voided
        .detail
        .unwrap()
        .contains("is paid but Stripe reports it void"));
    assert_eq!(only_invoice(&store).status, InvoiceStatus::Paid);
}

#[tokio::test]
async fn an_uncollectible_invoice_can_still_be_paid_later() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::InvoiceMarkedUncollectible(finalized(tenant)),
        ),
    )
    .await
    .unwrap();
    assert_eq!(only_invoice(&store).status, InvoiceStatus::Uncollectible);

    deliver(
        &store,
        event(
            "evt_2",
            200,
            PaymentEvent::InvoicePaid(stripe_invoice(Some(tenant), 4900, 4900, 2)),
        ),
    )
    .await
    .unwrap();

    assert_eq!(only_invoice(&store).status, InvoiceStatus::Paid);
}

#[tokio::test]
async fn a_payment_needing_authentication_is_notified_once_per_attempt_with_the_page() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    let attempt = |n| InvoiceSnapshot {
        attempt_count: n,
        ..finalized(tenant)
    };

    for (id, created, n) in [("evt_1", 100, 1), ("evt_2", 101, 1), ("evt_3", 300, 2)] {
        let applied = deliver(
            &store,
            event(
                id,
                created,
                PaymentEvent::InvoicePaymentActionRequired(attempt(n)),
            ),
        )
        .await
        .unwrap();
        assert_eq!(applied.outcome, EventOutcome::Processed);
    }

    let state = store.state();
    let keys: Vec<_> = state
        .notifications
        .iter()
        .map(|n| n.dedupe_key.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "invoice.payment_action_required:in_1:1",
            "invoice.payment_action_required:in_1:2"
        ]
    );
    let NotificationBody::InvoicePaymentActionRequired {
        hosted_invoice_url,
        tenant: notified,
        ..
    } = &state.notifications[0].body
    else {
        panic!("wrong notification {:?}", state.notifications[0].body);
    };
    assert_eq!(
        hosted_invoice_url.as_deref(),
        Some("https://invoice.example/i/in_1")
    );
    assert_eq!(*notified, tenant);
}

#[tokio::test]
async fn an_invoice_event_naming_no_tenant_is_unmatched_with_the_reason() {
    let store = FakeStore::default();
    let mut orphan = draft(TenantId::new());
    orphan.tenant = hints(None, Some("cus_nobody"));

    for (id, ev) in [
        ("evt_1", PaymentEvent::InvoiceCreated(orphan.clone())),
        ("evt_2", PaymentEvent::InvoiceVoided(orphan.clone())),
        ("evt_3", PaymentEvent::InvoicePaymentActionRequired(orphan)),
    ] {
        let applied = deliver(&store, event(id, 100, ev)).await.unwrap();
        assert_eq!(applied.outcome, EventOutcome::Unmatched);
        assert!(applied.detail.unwrap().contains("cus_nobody"));
    }
    assert!(store.state().invoices.is_empty());
}

// ---- subscriptions --------------------------------------------------------------------

#[tokio::test]
async fn a_subscription_started_outside_checkout_is_created_and_activates_its_tenant() {
    let store = store_with_plan();
    let tenant = TenantId::new();

    let applied = deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::SubscriptionCreated(sub_snapshot(
                SubscriptionStatus::Active,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    assert_eq!(applied.outcome, EventOutcome::Processed);
    let state = store.state();
    let sub = state.subscriptions.values().next().unwrap();
    assert_eq!(sub.tenant_id, tenant);
    assert_eq!(sub.status, SubscriptionStatus::Active);
    assert_eq!(state.tenants[&tenant].status, TenantStatus::Active);
}

#[tokio::test]
async fn a_paused_subscription_suspends_its_tenant_until_it_resumes() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::SubscriptionCreated(sub_snapshot(
                SubscriptionStatus::Trialing,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    deliver(
        &store,
        event(
            "evt_2",
            200,
            PaymentEvent::SubscriptionPaused(sub_snapshot(
                SubscriptionStatus::Paused,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();
    let state = store.state();
    assert_eq!(
        state.subscriptions.values().next().unwrap().status,
        SubscriptionStatus::Paused
    );
    assert_eq!(state.tenants[&tenant].status, TenantStatus::Suspended);

    deliver(
        &store,
        event(
            "evt_3",
            300,
            PaymentEvent::SubscriptionResumed(sub_snapshot(
                SubscriptionStatus::Active,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    let state = store.state();
    assert_eq!(
        state.subscriptions.values().next().unwrap().status,
        SubscriptionStatus::Active
    );
    assert_eq!(state.tenants[&tenant].status, TenantStatus::Active);
}

#[tokio::test]
async fn a_pause_leaves_the_tenant_active_while_another_subscription_is_live() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    let mut other = sub_snapshot(SubscriptionStatus::Active, Some(tenant));
    other.subscription = SubscriptionRef::parse("sub_2").unwrap();
    deliver(
        &store,
        event("evt_0", 50, PaymentEvent::SubscriptionCreated(other)),
    )
    .await
    .unwrap();

    deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::SubscriptionPaused(sub_snapshot(
                SubscriptionStatus::Paused,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    assert_eq!(store.state().tenants[&tenant].status, TenantStatus::Active);
}

#[tokio::test]
async fn an_operators_suspension_is_not_lifted_by_an_ordinary_update() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    store.with(|s| {
        s.ensure_tenant(tenant).unwrap();
        s.tenants.get_mut(&tenant).unwrap().status = TenantStatus::Suspended;
    });

    deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::SubscriptionCreated(sub_snapshot(
                SubscriptionStatus::Active,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    assert_eq!(
        store.state().tenants[&tenant].status,
        TenantStatus::Suspended
    );
}

#[tokio::test]
async fn a_paused_subscription_that_ends_leaves_the_tenant_cancelled() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::SubscriptionPaused(sub_snapshot(
                SubscriptionStatus::Paused,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    deliver(
        &store,
        event(
            "evt_2",
            200,
            PaymentEvent::SubscriptionDeleted(sub_snapshot(
                SubscriptionStatus::Canceled,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    assert_eq!(
        store.state().tenants[&tenant].status,
        TenantStatus::Cancelled
    );
}

#[tokio::test]
async fn a_trial_ending_soon_is_notified_once_per_subscription_and_trial_end() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    let trialing = SubscriptionSnapshot {
        trial_end: Some(at(5_000)),
        ..sub_snapshot(SubscriptionStatus::Trialing, Some(tenant))
    };
    deliver(
        &store,
        event(
            "evt_0",
            50,
            PaymentEvent::SubscriptionCreated(trialing.clone()),
        ),
    )
    .await
    .unwrap();

    let first = deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::SubscriptionTrialWillEnd(trialing.clone()),
        ),
    )
    .await
    .unwrap();
    let again = deliver(
        &store,
        event(
            "evt_2",
            101,
            PaymentEvent::SubscriptionTrialWillEnd(trialing.clone()),
        ),
    )
    .await
    .unwrap();
    // A later trial end (the trial was extended) is a new reminder.
    deliver(
        &store,
        event(
            "evt_3",
            102,
            PaymentEvent::SubscriptionTrialWillEnd(SubscriptionSnapshot {
                trial_end: Some(at(9_000)),
                ..trialing
            }),
        ),
    )
    .await
    .unwrap();

    assert_eq!(first.outcome, EventOutcome::Processed);
    assert_eq!(first.detail, None);
    assert_eq!(
        again.detail.as_deref(),
        Some("this trial end was already notified")
    );
    let state = store.state();
    let keys: Vec<_> = state
        .notifications
        .iter()
        .map(|n| n.dedupe_key.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "subscription.trial_will_end:sub_1:5000",
            "subscription.trial_will_end:sub_1:9000"
        ]
    );
    assert!(matches!(
        &state.notifications[0].body,
        NotificationBody::SubscriptionTrialWillEnd { tenant: t, trial_end: Some(end), .. }
            if *t == tenant && *end == at(5_000)
    ));
    // A reminder changes no state.
    assert_eq!(
        state.subscriptions.values().next().unwrap().last_event_at,
        Some(at(50))
    );
}

#[tokio::test]
async fn a_trial_reminder_naming_no_tenant_is_unmatched() {
    let store = store_with_plan();

    let applied = deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::SubscriptionTrialWillEnd(sub_snapshot(
                SubscriptionStatus::Trialing,
                None,
            )),
        ),
    )
    .await
    .unwrap();

    assert_eq!(applied.outcome, EventOutcome::Unmatched);
    assert!(store.state().notifications.is_empty());
}

// ---- checkout sessions ----------------------------------------------------------------

fn session(tenant: TenantId) -> CheckoutCompleted {
    let PaymentEvent::CheckoutCompleted(c) = checkout(tenant) else {
        unreachable!()
    };
    c
}

#[tokio::test]
async fn an_expired_checkout_closes_the_recorded_session_once() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    store.with(|s| {
        s.open_sessions
            .insert(CheckoutSessionRef::parse("cs_test_1").unwrap());
    });

    let expired = deliver(
        &store,
        event("evt_1", 100, PaymentEvent::CheckoutExpired(session(tenant))),
    )
    .await
    .unwrap();
    let again = deliver(
        &store,
        event("evt_2", 101, PaymentEvent::CheckoutExpired(session(tenant))),
    )
    .await
    .unwrap();

    assert_eq!(expired.outcome, EventOutcome::Processed);
    assert_eq!(expired.detail, None);
    assert!(store.state().open_sessions.is_empty());
    assert_eq!(
        again.detail.as_deref(),
        Some("no open checkout session cs_test_1 was recorded")
    );
    assert!(store.state().subscriptions.is_empty());
}

#[tokio::test]
async fn a_delayed_payment_that_succeeds_activates_like_an_immediate_one() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(&store, event("evt_1", 100, unpaid_checkout(tenant)))
        .await
        .unwrap();
    assert_eq!(store.state().tenants[&tenant].status, TenantStatus::Pending);

    let paid = deliver(
        &store,
        event(
            "evt_2",
            200,
            PaymentEvent::CheckoutAsyncPaymentSucceeded(session(tenant)),
        ),
    )
    .await
    .unwrap();

    assert_eq!(paid.outcome, EventOutcome::Processed);
    let state = store.state();
    assert_eq!(
        state.subscriptions.values().next().unwrap().status,
        SubscriptionStatus::Active
    );
    assert_eq!(state.tenants[&tenant].status, TenantStatus::Active);
}

#[tokio::test]
async fn a_delayed_payment_that_succeeds_first_creates_the_active_subscription() {
    let store = store_with_plan();
    let tenant = TenantId::new();

    deliver(
        &store,
        event(
            "evt_2",
            200,
            PaymentEvent::CheckoutAsyncPaymentSucceeded(session(tenant)),
        ),
    )
    .await
    .unwrap();

    assert_eq!(store.state().tenants[&tenant].status, TenantStatus::Active);
}

#[tokio::test]
async fn a_delayed_payment_that_fails_is_notified_once() {
    let store = store_with_plan();
    let tenant = TenantId::new();

    for id in ["evt_1", "evt_2"] {
        let applied = deliver(
            &store,
            event(
                id,
                100,
                PaymentEvent::CheckoutAsyncPaymentFailed(session(tenant)),
            ),
        )
        .await
        .unwrap();
        assert_eq!(applied.outcome, EventOutcome::Processed);
    }

    let state = store.state();
    assert_eq!(state.notifications.len(), 1);
    assert_eq!(
        state.notifications[0].dedupe_key,
        "checkout.async_payment_failed:cs_test_1"
    );
    assert_eq!(state.tenants[&tenant].status, TenantStatus::Pending);
}

// ---- PaymentIntents and customers -----------------------------------------------------

#[tokio::test]
async fn a_canceled_intent_is_marked_on_the_invoice_it_collects() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    let mut inv = local_invoice(tenant, 4900);
    inv.payment_intent = Some(PaymentIntentRef::parse("pi_1").unwrap());
    let id = inv.id;
    store.with(|s| {
        s.ensure_tenant(tenant).unwrap();
        s.invoices.insert(id, inv);
    });

    let canceled = deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::PaymentIntentCanceled(intent(None, None, 0)),
        ),
    )
    .await
    .unwrap();

    assert_eq!(canceled.outcome, EventOutcome::Processed);
    let inv = &store.state().invoices[&id];
    assert!(inv.payment_intent_canceled);
    assert_eq!(inv.status, InvoiceStatus::Open);
    assert!(store.state().payments.is_empty());
}

#[tokio::test]
async fn a_canceled_intent_of_no_invoice_changes_nothing_and_says_so() {
    let store = FakeStore::default();
    let tenant = TenantId::new();

    let canceled = deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::PaymentIntentCanceled(intent(Some(tenant), None, 0)),
        ),
    )
    .await
    .unwrap();

    assert_eq!(canceled.outcome, EventOutcome::Processed);
    assert_eq!(
        canceled.detail.as_deref(),
        Some("no invoice is collected by pi_1")
    );
}

fn deleted(customer: &str) -> PaymentEvent {
    PaymentEvent::CustomerDeleted(crate::webhook::CustomerDeleted {
        customer: CustomerRef::parse(customer).unwrap(),
        tenant: hints(None, Some(customer)),
    })
}

#[tokio::test]
async fn a_deleted_customer_is_cleared_from_its_tenant_and_history_kept() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(&store, event("evt_1", 100, checkout(tenant)))
        .await
        .unwrap();
    assert!(store.state().tenants[&tenant].customer.is_some());

    let applied = deliver(&store, event("evt_2", 200, deleted("cus_1")))
        .await
        .unwrap();

    assert_eq!(applied.outcome, EventOutcome::Processed);
    let state = store.state();
    assert_eq!(state.tenants[&tenant].customer, None);
    let sub = state.subscriptions.values().next().unwrap();
    assert_eq!(
        sub.customer.as_ref().map(CustomerRef::as_str),
        Some("cus_1")
    );
}

#[tokio::test]
async fn a_deleted_customer_of_no_tenant_is_unmatched() {
    let store = FakeStore::default();

    let applied = deliver(&store, event("evt_1", 100, deleted("cus_9")))
        .await
        .unwrap();

    assert_eq!(applied.outcome, EventOutcome::Unmatched);
    assert!(applied.detail.unwrap().contains("cus_9"));
}

#[tokio::test]
async fn a_tenant_suspended_by_a_pause_is_active_again_after_paying_a_new_checkout() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    for (id, created, event_kind) in [
        (
            "evt_1",
            100,
            PaymentEvent::SubscriptionCreated(sub_snapshot(
                SubscriptionStatus::Active,
                Some(tenant),
            )),
        ),
        (
            "evt_2",
            200,
            PaymentEvent::SubscriptionPaused(sub_snapshot(
                SubscriptionStatus::Paused,
                Some(tenant),
            )),
        ),
    ] {
        deliver(&store, event(id, created, event_kind))
            .await
            .unwrap();
    }
    assert_eq!(
        store.state().tenants[&tenant].status,
        TenantStatus::Suspended
    );

    // The tenant buys a new subscription while the paused one stays paused.
    let PaymentEvent::CheckoutCompleted(mut new_checkout) = checkout(tenant) else {
        unreachable!("checkout() builds a completed checkout")
    };
    new_checkout.session = CheckoutSessionRef::parse("cs_test_2").unwrap();
    new_checkout.subscription = Some(SubscriptionRef::parse("sub_2").unwrap());
    let done = deliver(
        &store,
        event("evt_3", 300, PaymentEvent::CheckoutCompleted(new_checkout)),
    )
    .await
    .unwrap();

    assert_eq!(done.outcome, EventOutcome::Processed);
    assert_eq!(store.state().tenants[&tenant].status, TenantStatus::Active);
}
