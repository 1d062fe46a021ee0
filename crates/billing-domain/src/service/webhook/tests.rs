//! The webhook rules against an in-memory fake of the transaction (state matters here
//! more than call sequences), plus the service's delivery path with mocked ports.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{TimeZone, Utc};

use super::*;
use crate::ids::{
    ChargeRef, CheckoutSessionRef, CustomerRef, InvoiceRef, PaymentIntentRef, PlanId, PriceRef,
    TenantId,
};
use crate::model::{BillingInterval, Plan, PlanCode};
use crate::ports::{WebhookStore, WebhookWork};

// ---- an in-memory transaction -----------------------------------------------------------

#[derive(Clone, Default)]
struct State {
    events: HashMap<EventId, (EventOutcome, Option<String>)>,
    tenants: HashMap<TenantId, Tenant>,
    plans: Vec<Plan>,
    subscriptions: HashMap<SubscriptionId, Subscription>,
    invoices: HashMap<InvoiceId, Invoice>,
    payments: Vec<(Payment, EventId)>,
    notifications: Vec<NewNotification>,
    completed_sessions: Vec<crate::ids::CheckoutSessionRef>,
    /// Invoices whose PaymentIntent is to be looked up, with the time asked.
    lookups: Vec<(InvoiceId, DateTime<Utc>)>,
    /// Makes `save_invoice` fail as a lost connection would.
    fail_invoice_writes: bool,
}

impl WebhookTx for State {
    fn insert_event(&mut self, entry: &NewLedgerEntry) -> Result<bool, RepoError> {
        if self.events.contains_key(&entry.event_id) {
            return Ok(false);
        }
        self.events
            .insert(entry.event_id.clone(), (entry.outcome, None));
        Ok(true)
    }
    fn lock_event(&mut self, id: &EventId) -> Result<Option<EventOutcome>, RepoError> {
        Ok(self.events.get(id).map(|e| e.0))
    }
    fn set_event_outcome(
        &mut self,
        id: &EventId,
        applied: &Applied,
        _at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        self.events
            .insert(id.clone(), (applied.outcome, applied.detail.clone()));
        Ok(())
    }
    fn ensure_tenant(&mut self, id: TenantId) -> Result<Tenant, RepoError> {
        Ok(self
            .tenants
            .entry(id)
            .or_insert_with(|| Tenant {
                id,
                name: String::new(),
                status: TenantStatus::Pending,
                customer: None,
                created_at: at(0),
                updated_at: at(0),
            })
            .clone())
    }
    fn lock_tenant(&mut self, id: TenantId) -> Result<Option<Tenant>, RepoError> {
        Ok(self.tenants.get(&id).cloned())
    }
    fn tenant_by_customer(&mut self, customer: &CustomerRef) -> Result<Option<Tenant>, RepoError> {
        Ok(self
            .tenants
            .values()
            .find(|t| t.customer.as_ref() == Some(customer))
            .cloned())
    }
    fn save_tenant(&mut self, tenant: &Tenant) -> Result<(), RepoError> {
        self.tenants.insert(tenant.id, tenant.clone());
        Ok(())
    }
    fn plan(&mut self, key: &PlanKey) -> Result<Option<Plan>, RepoError> {
        Ok(self
            .plans
            .iter()
            .find(|p| match key {
                PlanKey::Id(id) => p.id == *id,
                PlanKey::Code(code) => p.code == *code,
            })
            .cloned())
    }
    fn plan_by_price(&mut self, price: &PriceRef) -> Result<Option<Plan>, RepoError> {
        Ok(self.plans.iter().find(|p| p.price == *price).cloned())
    }
    fn lock_subscription(
        &mut self,
        subscription: &SubscriptionRef,
    ) -> Result<Option<Subscription>, RepoError> {
        Ok(self
            .subscriptions
            .values()
            .find(|s| s.subscription_ref.as_ref() == Some(subscription))
            .cloned())
    }
    fn save_subscription(&mut self, subscription: &Subscription) -> Result<(), RepoError> {
        self.subscriptions
            .insert(subscription.id, subscription.clone());
        Ok(())
    }
    fn complete_checkout_session(
        &mut self,
        session: &crate::ids::CheckoutSessionRef,
        _at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        self.completed_sessions.push(session.clone());
        Ok(())
    }

    fn has_other_live_subscription(
        &mut self,
        tenant: TenantId,
        except: SubscriptionId,
    ) -> Result<bool, RepoError> {
        Ok(self
            .subscriptions
            .values()
            .any(|s| s.tenant_id == tenant && s.id != except && s.status.is_live()))
    }
    fn lock_invoice_by_ref(&mut self, invoice: &InvoiceRef) -> Result<Option<Invoice>, RepoError> {
        Ok(self
            .invoices
            .values()
            .find(|i| i.invoice_ref.as_ref() == Some(invoice))
            .cloned())
    }
    fn lock_invoice(&mut self, id: InvoiceId) -> Result<Option<Invoice>, RepoError> {
        Ok(self.invoices.get(&id).cloned())
    }
    fn lock_invoice_by_payment_intent(
        &mut self,
        payment_intent: &PaymentIntentRef,
    ) -> Result<Option<Invoice>, RepoError> {
        Ok(self
            .invoices
            .values()
            .find(|i| i.payment_intent.as_ref() == Some(payment_intent))
            .cloned())
    }
    fn save_invoice(&mut self, invoice: &Invoice) -> Result<(), RepoError> {
        if self.fail_invoice_writes {
            return Err(RepoError::Unavailable("connection reset".into()));
        }
        if self
            .invoices
            .values()
            .any(|i| i.id != invoice.id && i.number == invoice.number)
        {
            return Err(RepoError::Conflict("number"));
        }
        self.invoices.insert(invoice.id, invoice.clone());
        Ok(())
    }
    fn insert_payment(&mut self, payment: &Payment, source: &EventId) -> Result<bool, RepoError> {
        let duplicate = self.payments.iter().any(|(p, s)| {
            s == source
                || (payment.status == PaymentStatus::Succeeded
                    && p.status == PaymentStatus::Succeeded
                    && p.payment_intent == payment.payment_intent)
        });
        if !duplicate {
            self.payments.push((payment.clone(), source.clone()));
        }
        Ok(!duplicate)
    }
    fn enqueue_notification(&mut self, n: &NewNotification) -> Result<bool, RepoError> {
        if self
            .notifications
            .iter()
            .any(|x| x.dedupe_key == n.dedupe_key)
        {
            return Ok(false);
        }
        self.notifications.push(n.clone());
        Ok(true)
    }
    fn request_payment_intent_lookup(
        &mut self,
        invoice: InvoiceId,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        // As the adapter: not for an invoice with a PaymentIntent, not twice.
        let has_intent = self
            .invoices
            .get(&invoice)
            .is_some_and(|i| i.payment_intent.is_some());
        if !has_intent && !self.lookups.iter().any(|(i, _)| *i == invoice) {
            self.lookups.push((invoice, at));
        }
        Ok(())
    }
}

/// A store whose transactions are all-or-nothing: the state is restored on error.
#[derive(Clone, Default)]
struct FakeStore(Arc<Mutex<State>>);

#[async_trait]
impl WebhookStore for FakeStore {
    async fn apply(&self, work: WebhookWork) -> Result<Applied, RepoError> {
        let mut state = self.0.lock().unwrap();
        let mut tx = state.clone();
        let result = work(&mut tx);
        if result.is_ok() {
            *state = tx;
        }
        result
    }
}

impl FakeStore {
    fn state(&self) -> State {
        self.0.lock().unwrap().clone()
    }
    fn with(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.0.lock().unwrap());
    }
}

// ---- event builders --------------------------------------------------------------------

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap()
}

fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::parse("usd").unwrap()).unwrap()
}

fn pro_plan() -> Plan {
    Plan {
        id: PlanId::new(),
        code: PlanCode::parse("plan-pro").unwrap(),
        name: "Pro".into(),
        price: PriceRef::parse("price_pro").unwrap(),
        amount: usd(4900),
        interval: BillingInterval::Month,
        trial_days: None,
        active: true,
        created_at: at(0),
        updated_at: at(0),
    }
}

fn event(id: &str, created: i64, payload: PaymentEvent) -> ProviderEvent {
    ProviderEvent {
        id: EventId::parse(id).unwrap(),
        kind: "test.event".into(),
        created: at(created),
        api_version: Some("2026-07-29.dahlia".into()),
        livemode: false,
        event: payload,
    }
}

fn hints(tenant: Option<TenantId>, customer: Option<&str>) -> TenantHints {
    TenantHints {
        metadata: tenant.map(|t| t.to_string()),
        customer: customer.map(|c| CustomerRef::parse(c).unwrap()),
        ..TenantHints::default()
    }
}

fn checkout(tenant: TenantId) -> PaymentEvent {
    PaymentEvent::CheckoutCompleted(CheckoutCompleted {
        session: CheckoutSessionRef::parse("cs_test_1").unwrap(),
        tenant: TenantHints {
            client_reference: Some(tenant.to_string()),
            ..TenantHints::default()
        },
        plan: Some("plan-pro".into()),
        customer: Some(CustomerRef::parse("cus_1").unwrap()),
        subscription: Some(SubscriptionRef::parse("sub_1").unwrap()),
        awaiting_payment: false,
    })
}

fn unpaid_checkout(tenant: TenantId) -> PaymentEvent {
    let PaymentEvent::CheckoutCompleted(c) = checkout(tenant) else {
        unreachable!()
    };
    PaymentEvent::CheckoutCompleted(CheckoutCompleted {
        awaiting_payment: true,
        ..c
    })
}

fn sub_snapshot(status: SubscriptionStatus, tenant: Option<TenantId>) -> SubscriptionSnapshot {
    SubscriptionSnapshot {
        subscription: SubscriptionRef::parse("sub_1").unwrap(),
        customer: Some(CustomerRef::parse("cus_1").unwrap()),
        tenant: hints(tenant, None),
        status: Some(status),
        status_raw: status.as_str().into(),
        price: Some(PriceRef::parse("price_pro").unwrap()),
        plan: None,
        current_period_start: Some(at(1_000)),
        current_period_end: Some(at(2_000)),
        cancel_at_period_end: false,
        canceled_at: None,
        ended_at: None,
    }
}

fn stripe_invoice(tenant: Option<TenantId>, due: i64, paid: i64, attempt: i64) -> InvoiceSnapshot {
    InvoiceSnapshot {
        invoice: InvoiceRef::parse("in_1").unwrap(),
        number: Some("ABC-0001".into()),
        tenant: hints(tenant, None),
        local_invoice: None,
        subscription: None,
        amount_due: due,
        amount_paid: paid,
        currency: "usd".into(),
        paid_at: Some(at(1_500)),
        attempt_count: attempt,
        payment_intent: Some(PaymentIntentRef::parse("pi_1").unwrap()),
        due_date: None,
        created: Some(at(1_000)),
    }
}

fn intent(
    tenant: Option<TenantId>,
    invoice: Option<InvoiceId>,
    received: i64,
) -> PaymentIntentSnapshot {
    PaymentIntentSnapshot {
        payment_intent: PaymentIntentRef::parse("pi_1").unwrap(),
        amount: received,
        amount_received: received,
        currency: "usd".into(),
        customer: None,
        tenant: hints(tenant, None),
        local_invoice: invoice.map(|i| i.to_string()),
        charge: Some(ChargeRef::parse("ch_1").unwrap()),
        failure_code: None,
        failure_message: None,
    }
}

fn local_invoice(tenant: TenantId, due: i64) -> Invoice {
    Invoice {
        id: InvoiceId::new(),
        tenant_id: tenant,
        subscription_id: None,
        number: InvoiceNumber::parse("inv-001").unwrap(),
        status: InvoiceStatus::Open,
        amount_due: usd(due),
        amount_paid: usd(0),
        due_date: None,
        description: None,
        paid_at: None,
        invoice_ref: None,
        payment_intent: None,
        last_event_at: None,
        created_at: at(0),
        updated_at: at(0),
    }
}

/// Applies `ev` through the store as a webhook delivery would.
async fn deliver(store: &FakeStore, ev: ProviderEvent) -> Result<Applied, RepoError> {
    deliver_as(store, ev, Delivery::Webhook).await
}

async fn deliver_as(
    store: &FakeStore,
    ev: ProviderEvent,
    delivery: Delivery,
) -> Result<Applied, RepoError> {
    let entry = NewLedgerEntry {
        event_id: ev.id.clone(),
        kind: ev.kind.clone(),
        created: ev.created,
        api_version: None,
        livemode: false,
        received_at: at(10_000),
        outcome: expected_outcome(&ev.event, delivery),
        payload: Arc::from("{}"),
    };
    store
        .apply(work(Arc::new(ev), entry, delivery, at(10_000)))
        .await
}

fn store_with_plan() -> FakeStore {
    let store = FakeStore::default();
    store.with(|s| s.plans.push(pro_plan()));
    store
}

// ---- exactly once ----------------------------------------------------------------------

#[tokio::test]
async fn a_completed_checkout_creates_the_subscription_and_activates_the_tenant() {
    let store = store_with_plan();
    let tenant = TenantId::new();

    let outcome = deliver(&store, event("evt_1", 100, checkout(tenant)))
        .await
        .unwrap();

    let state = store.state();
    assert_eq!(outcome.outcome, EventOutcome::Processed);
    let sub = state.subscriptions.values().next().unwrap();
    assert_eq!(sub.tenant_id, tenant);
    assert_eq!(sub.status, SubscriptionStatus::Active);
    assert_eq!(sub.subscription_ref.as_ref().unwrap().as_str(), "sub_1");
    let t = &state.tenants[&tenant];
    assert_eq!(t.status, TenantStatus::Active);
    assert_eq!(t.customer.as_ref().unwrap().as_str(), "cus_1");
    assert_eq!(state.completed_sessions[0].as_str(), "cs_test_1");
}

#[tokio::test]
async fn a_checkout_still_awaiting_payment_waits_for_the_subscription_to_turn_active() {
    let store = store_with_plan();
    let tenant = TenantId::new();

    let done = deliver(&store, event("evt_1", 100, unpaid_checkout(tenant)))
        .await
        .unwrap();

    {
        let state = store.state();
        assert_eq!(done.outcome, EventOutcome::Processed);
        assert!(
            done.detail
                .as_deref()
                .unwrap()
                .starts_with("payment pending"),
            "{done:?}"
        );
        let sub = state.subscriptions.values().next().unwrap();
        assert_eq!(sub.status, SubscriptionStatus::Incomplete);
        let t = &state.tenants[&tenant];
        assert_eq!(
            t.status,
            TenantStatus::Pending,
            "no service before the money"
        );
        assert_eq!(t.customer.as_ref().unwrap().as_str(), "cus_1");
    }

    // The bank debit clears: Stripe reports the subscription active.
    deliver(
        &store,
        event(
            "evt_2",
            200,
            PaymentEvent::SubscriptionUpdated(sub_snapshot(
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
async fn a_delayed_payment_that_fails_leaves_the_tenant_unactivated() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(&store, event("evt_1", 100, unpaid_checkout(tenant)))
        .await
        .unwrap();

    deliver(
        &store,
        event(
            "evt_2",
            200,
            PaymentEvent::SubscriptionUpdated(sub_snapshot(
                SubscriptionStatus::IncompleteExpired,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    let state = store.state();
    assert_eq!(
        state.subscriptions.values().next().unwrap().status,
        SubscriptionStatus::IncompleteExpired
    );
    assert_eq!(state.tenants[&tenant].status, TenantStatus::Pending);
}

#[tokio::test]
async fn a_subscription_turning_live_beside_another_live_one_is_called_out() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    // A card checkout (sub_1, active), and an older bank-debit one clearing later (sub_2).
    deliver(&store, event("evt_1", 100, checkout(tenant)))
        .await
        .unwrap();
    let mut debit = sub_snapshot(SubscriptionStatus::Incomplete, Some(tenant));
    debit.subscription = SubscriptionRef::parse("sub_2").unwrap();
    deliver(
        &store,
        event(
            "evt_2",
            110,
            PaymentEvent::SubscriptionUpdated(debit.clone()),
        ),
    )
    .await
    .unwrap();
    debit.status = Some(SubscriptionStatus::Active);

    let cleared = deliver(
        &store,
        event("evt_3", 120, PaymentEvent::SubscriptionUpdated(debit)),
    )
    .await
    .unwrap();

    assert_eq!(cleared.outcome, EventOutcome::Processed);
    assert_eq!(
        cleared.detail.as_deref(),
        Some(
            format!("tenant {tenant} already had a live subscription; sub_2 is a second one")
                .as_str()
        )
    );
}

#[tokio::test]
async fn a_redelivered_event_changes_nothing() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(&store, event("evt_1", 100, checkout(tenant)))
        .await
        .unwrap();
    let before = store.state().subscriptions;

    let again = deliver(&store, event("evt_1", 100, checkout(tenant)))
        .await
        .unwrap();

    assert_eq!(again.outcome, EventOutcome::Duplicate);
    assert_eq!(store.state().subscriptions, before);
    assert_eq!(store.state().events.len(), 1);
}

#[tokio::test]
async fn an_event_whose_tenant_cannot_be_resolved_is_kept_as_unmatched_with_the_reason() {
    let store = store_with_plan();
    let mut ev = checkout(TenantId::new());
    if let PaymentEvent::CheckoutCompleted(c) = &mut ev {
        c.tenant = TenantHints {
            client_reference: Some("not-a-uuid".into()),
            customer: Some(CustomerRef::parse("cus_unknown").unwrap()),
            ..TenantHints::default()
        };
    }

    let outcome = deliver(&store, event("evt_1", 100, ev)).await.unwrap();

    assert_eq!(outcome.outcome, EventOutcome::Unmatched);
    let detail = outcome.detail.unwrap();
    assert!(
        detail.contains("'not-a-uuid' is not a tenant id"),
        "{detail}"
    );
    assert!(detail.contains("cus_unknown"), "{detail}");
    assert_eq!(
        store.state().events[&EventId::parse("evt_1").unwrap()].0,
        EventOutcome::Unmatched
    );
    assert!(store.state().subscriptions.is_empty());
}

#[tokio::test]
async fn the_tenant_is_found_through_its_known_customer_last() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    store.with(|s| {
        s.ensure_tenant(tenant).unwrap();
        s.tenants.get_mut(&tenant).unwrap().customer = Some(CustomerRef::parse("cus_1").unwrap());
    });
    let mut ev = stripe_invoice(None, 4900, 4900, 1);
    ev.tenant.customer = Some(CustomerRef::parse("cus_1").unwrap());

    deliver(&store, event("evt_1", 100, PaymentEvent::InvoicePaid(ev)))
        .await
        .unwrap();

    assert_eq!(
        store.state().invoices.values().next().unwrap().tenant_id,
        tenant
    );
}

#[tokio::test]
async fn an_unknown_event_type_is_recorded_as_ignored() {
    let store = FakeStore::default();

    let outcome = deliver(&store, event("evt_1", 100, PaymentEvent::Ignored))
        .await
        .unwrap();

    assert_eq!(outcome.outcome, EventOutcome::Ignored);
    assert_eq!(
        store.state().events[&EventId::parse("evt_1").unwrap()].0,
        EventOutcome::Ignored
    );
}

// ---- order -----------------------------------------------------------------------------

#[tokio::test]
async fn an_older_subscription_update_arriving_late_is_stale() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_new",
            200,
            PaymentEvent::SubscriptionUpdated(sub_snapshot(
                SubscriptionStatus::PastDue,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    let late = deliver(
        &store,
        event(
            "evt_old",
            150,
            PaymentEvent::SubscriptionUpdated(sub_snapshot(
                SubscriptionStatus::Active,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    assert_eq!(late.outcome, EventOutcome::Stale);
    let sub = store.state().subscriptions.values().next().unwrap().clone();
    assert_eq!(sub.status, SubscriptionStatus::PastDue);
    assert_eq!(sub.last_event_at, Some(at(200)));
}

#[tokio::test]
async fn a_subscription_update_before_its_checkout_creates_it_and_checkout_completes_it() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_upd",
            200,
            PaymentEvent::SubscriptionUpdated(sub_snapshot(
                SubscriptionStatus::PastDue,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    let done = deliver(&store, event("evt_chk", 150, checkout(tenant)))
        .await
        .unwrap();

    assert_eq!(done.outcome, EventOutcome::Processed);
    let state = store.state();
    assert_eq!(state.subscriptions.len(), 1);
    let sub = state.subscriptions.values().next().unwrap();
    assert_eq!(
        sub.status,
        SubscriptionStatus::PastDue,
        "the newer status is kept"
    );
    assert_eq!(
        state.tenants[&tenant].customer.as_ref().unwrap().as_str(),
        "cus_1"
    );
}

#[tokio::test]
async fn a_same_second_tie_rolls_back_and_asks_for_stripes_state() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_a",
            200,
            PaymentEvent::SubscriptionUpdated(sub_snapshot(
                SubscriptionStatus::Active,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    let err = deliver(
        &store,
        event(
            "evt_b",
            200,
            PaymentEvent::SubscriptionUpdated(sub_snapshot(
                SubscriptionStatus::PastDue,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap_err();

    assert!(matches!(&err, RepoError::Unexpected(e) if e.is::<SameSecondTie>()));
    assert!(
        !store
            .state()
            .events
            .contains_key(&EventId::parse("evt_b").unwrap()),
        "rolled back"
    );

    let settled = deliver_as(
        &store,
        event(
            "evt_b",
            200,
            PaymentEvent::SubscriptionUpdated(sub_snapshot(
                SubscriptionStatus::PastDue,
                Some(tenant),
            )),
        ),
        Delivery::Refetched,
    )
    .await
    .unwrap();

    assert_eq!(settled.outcome, EventOutcome::Processed);
    assert_eq!(
        store.state().subscriptions.values().next().unwrap().status,
        SubscriptionStatus::PastDue
    );
}

#[tokio::test]
async fn a_deleted_subscription_cancels_the_tenant_when_nothing_live_is_left() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(&store, event("evt_1", 100, checkout(tenant)))
        .await
        .unwrap();
    let mut gone = sub_snapshot(SubscriptionStatus::Canceled, Some(tenant));
    gone.ended_at = Some(at(300));

    deliver(
        &store,
        event("evt_2", 300, PaymentEvent::SubscriptionDeleted(gone)),
    )
    .await
    .unwrap();

    let state = store.state();
    let sub = state.subscriptions.values().next().unwrap();
    assert_eq!(sub.status, SubscriptionStatus::Canceled);
    assert_eq!(sub.canceled_at, Some(at(300)));
    assert_eq!(state.tenants[&tenant].status, TenantStatus::Cancelled);
}

#[tokio::test]
async fn a_canceled_subscription_is_not_revived_by_a_later_update() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::SubscriptionDeleted(sub_snapshot(
                SubscriptionStatus::Canceled,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    let outcome = deliver(
        &store,
        event(
            "evt_2",
            200,
            PaymentEvent::SubscriptionUpdated(sub_snapshot(
                SubscriptionStatus::Active,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    assert_eq!(outcome.outcome, EventOutcome::Stale);
    assert_eq!(
        store.state().subscriptions.values().next().unwrap().status,
        SubscriptionStatus::Canceled
    );
}

#[tokio::test]
async fn an_update_to_an_unknown_price_is_unmatched_and_changes_nothing() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(&store, event("evt_1", 100, checkout(tenant)))
        .await
        .unwrap();
    let mut snap = sub_snapshot(SubscriptionStatus::Active, Some(tenant));
    snap.price = Some(PriceRef::parse("price_unknown").unwrap());

    let outcome = deliver(
        &store,
        event("evt_2", 200, PaymentEvent::SubscriptionUpdated(snap)),
    )
    .await
    .unwrap();

    assert_eq!(outcome.outcome, EventOutcome::Unmatched);
    assert!(outcome.detail.unwrap().contains("price_unknown"));
    assert_eq!(
        store
            .state()
            .subscriptions
            .values()
            .next()
            .unwrap()
            .last_event_at,
        Some(at(100))
    );
}

// ---- invoices and payments -----------------------------------------------------------------

#[tokio::test]
async fn a_paid_stripe_invoice_is_mirrored_as_paid() {
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

    let inv = store.state().invoices.values().next().unwrap().clone();
    assert_eq!(inv.status, InvoiceStatus::Paid);
    assert_eq!(inv.amount_paid, usd(4900));
    assert_eq!(inv.paid_at, Some(at(1_500)));
    assert_eq!(inv.number.as_str(), "ABC-0001");
    assert_eq!(inv.payment_intent.unwrap().as_str(), "pi_1");
    // The event named the PaymentIntent: nothing to look up.
    assert!(store.state().lookups.is_empty());
}

#[tokio::test]
async fn a_paid_invoice_without_its_payment_intent_is_looked_up_after_the_event_once() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    let mut paid = stripe_invoice(Some(tenant), 4900, 4900, 1);
    // API 2025-03-31.basil and later: the invoice event does not name it.
    paid.payment_intent = None;

    let first = deliver(
        &store,
        event("evt_1", 100, PaymentEvent::InvoicePaid(paid.clone())),
    )
    .await
    .unwrap();
    // `invoice.paid` and `invoice.payment_succeeded` both come for one payment.
    deliver(&store, event("evt_2", 101, PaymentEvent::InvoicePaid(paid)))
        .await
        .unwrap();

    assert_eq!(first.outcome, EventOutcome::Processed);
    let state = store.state();
    let inv = state.invoices.values().next().unwrap();
    assert_eq!(inv.status, InvoiceStatus::Paid);
    assert!(inv.payment_intent.is_none());
    assert_eq!(state.lookups, vec![(inv.id, at(10_000))]);
}

#[tokio::test]
async fn a_flagged_invoice_asks_for_no_lookup() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    let mut underpaid = stripe_invoice(Some(tenant), 4900, 4000, 1);
    underpaid.payment_intent = None;

    let applied = deliver(
        &store,
        event("evt_1", 100, PaymentEvent::InvoicePaid(underpaid)),
    )
    .await
    .unwrap();

    assert_eq!(applied.outcome, EventOutcome::Failed);
    assert!(store.state().lookups.is_empty());
}

#[tokio::test]
async fn an_underpaid_invoice_is_flagged_not_marked_paid() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    let mut inv = local_invoice(tenant, 4900);
    inv.invoice_ref = Some(InvoiceRef::parse("in_1").unwrap());
    store.with(|s| {
        s.invoices.insert(inv.id, inv.clone());
    });

    let outcome = deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::InvoicePaid(stripe_invoice(Some(tenant), 4000, 4000, 1)),
        ),
    )
    .await
    .unwrap();

    assert_eq!(outcome.outcome, EventOutcome::Failed);
    assert!(outcome.detail.unwrap().contains("amount mismatch"));
    assert_eq!(store.state().invoices[&inv.id].status, InvoiceStatus::Open);
}

#[tokio::test]
async fn a_failed_invoice_payment_is_notified_once_per_attempt() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    let failed = |id: &str, created, attempt| {
        event(
            id,
            created,
            PaymentEvent::InvoicePaymentFailed(stripe_invoice(Some(tenant), 4900, 0, attempt)),
        )
    };

    deliver(&store, failed("evt_1", 100, 1)).await.unwrap();
    deliver(&store, failed("evt_1", 100, 1)).await.unwrap();
    deliver(&store, failed("evt_2", 101, 1)).await.unwrap();
    deliver(&store, failed("evt_3", 200, 2)).await.unwrap();

    let state = store.state();
    assert_eq!(
        state.invoices.values().next().unwrap().status,
        InvoiceStatus::Overdue
    );
    let keys: Vec<_> = state
        .notifications
        .iter()
        .map(|n| n.dedupe_key.clone())
        .collect();
    assert_eq!(
        keys,
        [
            "invoice.payment_failed:in_1:1",
            "invoice.payment_failed:in_1:2"
        ]
    );
}

#[tokio::test]
async fn a_failure_tied_with_a_success_never_unpays_the_invoice() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_paid",
            100,
            PaymentEvent::InvoicePaid(stripe_invoice(Some(tenant), 4900, 4900, 1)),
        ),
    )
    .await
    .unwrap();

    deliver(
        &store,
        event(
            "evt_failed",
            100,
            PaymentEvent::InvoicePaymentFailed(stripe_invoice(Some(tenant), 4900, 0, 1)),
        ),
    )
    .await
    .unwrap();

    let state = store.state();
    assert_eq!(
        state.invoices.values().next().unwrap().status,
        InvoiceStatus::Paid
    );
    assert!(state.notifications.is_empty());
}

#[tokio::test]
async fn a_payment_intent_success_is_recorded_once_and_pays_its_invoice() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    let inv = local_invoice(tenant, 4900);
    store.with(|s| {
        s.invoices.insert(inv.id, inv.clone());
    });

    deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::PaymentSucceeded(intent(Some(tenant), Some(inv.id), 4900)),
        ),
    )
    .await
    .unwrap();
    let second = deliver(
        &store,
        event(
            "evt_2",
            101,
            PaymentEvent::PaymentSucceeded(intent(Some(tenant), Some(inv.id), 4900)),
        ),
    )
    .await
    .unwrap();

    let state = store.state();
    assert_eq!(state.payments.len(), 1);
    assert_eq!(
        second.detail.as_deref(),
        Some("payment was already recorded")
    );
    let paid = &state.invoices[&inv.id];
    assert_eq!(paid.status, InvoiceStatus::Paid);
    assert_eq!(paid.amount_paid, usd(4900), "not counted twice");
    assert_eq!(paid.payment_intent.as_ref().unwrap().as_str(), "pi_1");
    assert_eq!(
        state.payments[0].0.charge.as_ref().unwrap().as_str(),
        "ch_1"
    );
}

#[tokio::test]
async fn a_partial_payment_leaves_the_invoice_open() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    let inv = local_invoice(tenant, 4900);
    store.with(|s| {
        s.invoices.insert(inv.id, inv.clone());
    });

    deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::PaymentSucceeded(intent(None, Some(inv.id), 1000)),
        ),
    )
    .await
    .unwrap();

    let state = store.state();
    assert_eq!(state.invoices[&inv.id].status, InvoiceStatus::Open);
    assert_eq!(state.invoices[&inv.id].amount_paid, usd(1000));
    assert_eq!(
        state.payments[0].0.tenant_id, tenant,
        "tenant taken from the invoice"
    );
}

#[tokio::test]
async fn a_failed_payment_attempt_is_recorded_with_stripes_code_and_message() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    let mut failed = intent(Some(tenant), None, 4900);
    failed.failure_code = Some("card_declined".into());
    failed.failure_message = Some("Your card was declined.".into());

    deliver(
        &store,
        event("evt_1", 100, PaymentEvent::PaymentFailed(failed.clone())),
    )
    .await
    .unwrap();
    deliver(
        &store,
        event("evt_1", 100, PaymentEvent::PaymentFailed(failed)),
    )
    .await
    .unwrap();

    let state = store.state();
    assert_eq!(state.payments.len(), 1);
    let (p, _) = &state.payments[0];
    assert_eq!(p.status, PaymentStatus::Failed);
    assert_eq!(p.failure_code.as_deref(), Some("card_declined"));
    assert_eq!(
        p.failure_message.as_deref(),
        Some("Your card was declined.")
    );
}

// ---- failure and replay -----------------------------------------------------------------

#[tokio::test]
async fn a_database_failure_mid_event_leaves_no_partial_change() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    let inv = local_invoice(tenant, 4900);
    store.with(|s| {
        s.invoices.insert(inv.id, inv.clone());
        s.fail_invoice_writes = true;
    });

    let err = deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::PaymentSucceeded(intent(Some(tenant), Some(inv.id), 4900)),
        ),
    )
    .await
    .unwrap_err();

    assert!(matches!(err, RepoError::Unavailable(_)));
    let state = store.state();
    assert!(
        state.events.is_empty(),
        "ledger row rolled back with the rest"
    );
    assert!(state.payments.is_empty());

    store.with(|s| s.fail_invoice_writes = false);
    let retried = deliver(
        &store,
        event(
            "evt_1",
            100,
            PaymentEvent::PaymentSucceeded(intent(Some(tenant), Some(inv.id), 4900)),
        ),
    )
    .await
    .unwrap();
    assert_eq!(retried.outcome, EventOutcome::Processed);
    assert_eq!(store.state().invoices[&inv.id].status, InvoiceStatus::Paid);
}

#[tokio::test]
async fn a_replay_applies_an_unmatched_event_once_its_cause_is_fixed() {
    let store = FakeStore::default();
    let tenant = TenantId::new();
    let ev = || event("evt_1", 100, checkout(tenant));
    let first = deliver(&store, ev()).await.unwrap();
    assert_eq!(first.outcome, EventOutcome::Unmatched, "no plan yet");
    store.with(|s| s.plans.push(pro_plan()));

    let redelivered = deliver(&store, ev()).await.unwrap();
    let replayed = deliver_as(&store, ev(), Delivery::Replay).await.unwrap();
    let replayed_again = deliver_as(&store, ev(), Delivery::Replay).await.unwrap();

    assert_eq!(redelivered.outcome, EventOutcome::Duplicate);
    assert_eq!(replayed.outcome, EventOutcome::Processed);
    assert_eq!(replayed_again.outcome, EventOutcome::Duplicate);
    assert_eq!(
        store.state().events[&EventId::parse("evt_1").unwrap()].0,
        EventOutcome::Processed
    );
}

#[tokio::test]
async fn a_tie_stripe_cannot_settle_is_recorded_as_failed_without_effects() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(
        &store,
        event(
            "evt_a",
            200,
            PaymentEvent::SubscriptionUpdated(sub_snapshot(
                SubscriptionStatus::Active,
                Some(tenant),
            )),
        ),
    )
    .await
    .unwrap();

    let outcome = deliver_as(
        &store,
        event(
            "evt_b",
            200,
            PaymentEvent::SubscriptionUpdated(sub_snapshot(
                SubscriptionStatus::Canceled,
                Some(tenant),
            )),
        ),
        Delivery::Unsettled,
    )
    .await
    .unwrap();

    assert_eq!(outcome.outcome, EventOutcome::Failed);
    let state = store.state();
    assert_eq!(
        state.events[&EventId::parse("evt_b").unwrap()].0,
        EventOutcome::Failed
    );
    assert_eq!(
        state.subscriptions.values().next().unwrap().status,
        SubscriptionStatus::Active
    );
}

#[test]
fn ledger_details_never_carry_control_characters() {
    assert_eq!(quote("a\0b\nc"), "abc");
    assert_eq!(quote(&"x".repeat(100)).len(), 64);
}

#[tokio::test]
async fn a_checkout_with_another_tenants_customer_is_flagged_and_changes_nothing() {
    let store = store_with_plan();
    let owner = TenantId::new();
    deliver(&store, event("evt_1", 100, checkout(owner)))
        .await
        .unwrap();
    let intruder = TenantId::new();
    let mut other = checkout(intruder);
    if let PaymentEvent::CheckoutCompleted(c) = &mut other {
        c.subscription = Some(SubscriptionRef::parse("sub_2").unwrap());
    }

    let outcome = deliver(&store, event("evt_2", 200, other)).await.unwrap();

    assert_eq!(outcome.outcome, EventOutcome::Failed);
    assert!(outcome.detail.unwrap().contains("belongs to tenant"));
    let state = store.state();
    assert_eq!(state.subscriptions.len(), 1);
    assert_eq!(
        state.tenants[&owner].customer.as_ref().unwrap().as_str(),
        "cus_1"
    );
}

#[tokio::test]
async fn an_event_about_an_old_subscription_does_not_flip_the_tenants_customer_back() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(&store, event("evt_1", 100, checkout(tenant)))
        .await
        .unwrap();
    let mut old = sub_snapshot(SubscriptionStatus::Canceled, Some(tenant));
    old.subscription = SubscriptionRef::parse("sub_old").unwrap();
    old.customer = Some(CustomerRef::parse("cus_old").unwrap());

    deliver(
        &store,
        event("evt_2", 200, PaymentEvent::SubscriptionDeleted(old)),
    )
    .await
    .unwrap();

    let state = store.state();
    assert_eq!(
        state.tenants[&tenant].customer.as_ref().unwrap().as_str(),
        "cus_1"
    );
    assert_eq!(
        state.tenants[&tenant].status,
        TenantStatus::Active,
        "sub_1 is still live"
    );
}

#[tokio::test]
async fn a_second_live_subscription_is_recorded_and_called_out() {
    let store = store_with_plan();
    let tenant = TenantId::new();
    deliver(&store, event("evt_1", 100, checkout(tenant)))
        .await
        .unwrap();
    let mut second = checkout(tenant);
    if let PaymentEvent::CheckoutCompleted(c) = &mut second {
        c.subscription = Some(SubscriptionRef::parse("sub_2").unwrap());
    }

    let outcome = deliver(&store, event("evt_2", 200, second)).await.unwrap();

    assert_eq!(outcome.outcome, EventOutcome::Processed);
    assert!(outcome.detail.unwrap().contains("second one"));
    assert_eq!(store.state().subscriptions.len(), 2);
}
