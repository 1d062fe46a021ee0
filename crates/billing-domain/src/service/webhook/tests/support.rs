//! The shared arrange helpers: an in-memory fake of the transaction, event and entity
//! builders, and the delivery through the fake store.

use super::*;

// ---- an in-memory transaction -----------------------------------------------------------

#[derive(Clone, Default)]
pub(super) struct State {
    pub(super) events: HashMap<EventId, (EventOutcome, Option<String>)>,
    pub(super) tenants: HashMap<TenantId, Tenant>,
    pub(super) plans: Vec<Plan>,
    pub(super) subscriptions: HashMap<SubscriptionId, Subscription>,
    pub(super) invoices: HashMap<InvoiceId, Invoice>,
    pub(super) payments: Vec<(Payment, EventId)>,
    pub(super) notifications: Vec<NewNotification>,
    pub(super) completed_sessions: Vec<crate::ids::CheckoutSessionRef>,
    /// Recorded Checkout Sessions still open (`expire_checkout_session` closes them).
    pub(super) open_sessions: std::collections::HashSet<crate::ids::CheckoutSessionRef>,
    /// Invoices whose PaymentIntent is to be looked up, with the time asked.
    pub(super) lookups: Vec<(InvoiceId, DateTime<Utc>)>,
    /// Makes `save_invoice` fail as a lost connection would.
    pub(super) fail_invoice_writes: bool,
    // ---- refunds and disputes (issue 14) ----
    pub(super) refunds: Vec<Refund>,
    pub(super) disputes: Vec<Dispute>,
    /// Customers a `customer.deleted` removed.
    pub(super) deleted_customers: std::collections::HashSet<CustomerRef>,
    // ---- billing events out (issue 16) ----
    /// Billing events appended: (tenant, type, sequence).
    pub(super) billing_events: Vec<(TenantId, &'static str, u64)>,
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
    fn record_customer_deleted(
        &mut self,
        customer: &CustomerRef,
        _at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        self.deleted_customers.insert(customer.clone());
        Ok(())
    }
    fn customer_was_deleted(&mut self, customer: &CustomerRef) -> Result<bool, RepoError> {
        Ok(self.deleted_customers.contains(customer))
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

    fn expire_checkout_session(
        &mut self,
        session: &crate::ids::CheckoutSessionRef,
        _at: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        Ok(self.open_sessions.remove(session))
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
            return Err(RepoError::Conflict(ConflictField::InvoiceNumber));
        }
        self.invoices.insert(invoice.id, invoice.clone());
        Ok(())
    }
    fn insert_payment(&mut self, payment: &Payment, source: &EventId) -> Result<bool, RepoError> {
        let duplicate = self.payments.iter().any(|(p, s)| {
            s == source
                || (payment.status != PaymentStatus::Failed
                    && p.status != PaymentStatus::Failed
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

    // ---- refunds and disputes (issue 14) ----
    fn lock_payment_by_charge(&mut self, charge: &ChargeRef) -> Result<Option<Payment>, RepoError> {
        Ok(self
            .payments
            .iter()
            .find(|(p, _)| p.status != PaymentStatus::Failed && p.charge.as_ref() == Some(charge))
            .map(|(p, _)| p.clone()))
    }
    fn lock_payment_by_payment_intent(
        &mut self,
        payment_intent: &PaymentIntentRef,
    ) -> Result<Option<Payment>, RepoError> {
        Ok(self
            .payments
            .iter()
            .find(|(p, _)| {
                p.status != PaymentStatus::Failed
                    && p.payment_intent.as_ref() == Some(payment_intent)
            })
            .map(|(p, _)| p.clone()))
    }
    fn save_payment_state(&mut self, payment: &Payment) -> Result<(), RepoError> {
        for (p, _) in &mut self.payments {
            if p.id == payment.id {
                p.status = payment.status;
                p.amount_refunded = payment.amount_refunded;
            }
        }
        Ok(())
    }
    fn refunds_of(&mut self, payment: PaymentId) -> Result<Vec<Refund>, RepoError> {
        Ok(self
            .refunds
            .iter()
            .filter(|r| r.payment_id == payment)
            .cloned()
            .collect())
    }
    fn save_refund(&mut self, refund: &Refund) -> Result<(), RepoError> {
        self.refunds.retain(|r| r.id != refund.id);
        self.refunds.push(refund.clone());
        Ok(())
    }
    fn disputes_of(&mut self, payment: PaymentId) -> Result<Vec<Dispute>, RepoError> {
        Ok(self
            .disputes
            .iter()
            .filter(|d| d.payment_id == payment)
            .cloned()
            .collect())
    }
    fn save_dispute(&mut self, dispute: &Dispute) -> Result<(), RepoError> {
        self.disputes.retain(|d| d.id != dispute.id);
        self.disputes.push(dispute.clone());
        Ok(())
    }
    fn append_billing_event(
        &mut self,
        event: &crate::events_out::NewBillingEvent,
    ) -> Result<u64, RepoError> {
        let sequence = self
            .billing_events
            .iter()
            .filter(|(t, _, _)| *t == event.tenant)
            .count() as u64
            + 1;
        self.billing_events
            .push((event.tenant, event.kind, sequence));
        Ok(sequence)
    }
}

/// A store whose transactions are all-or-nothing: the state is restored on an error or a
/// same-second tie.
#[derive(Clone, Default)]
pub(super) struct FakeStore(Arc<Mutex<State>>);

#[async_trait]
impl WebhookStore for FakeStore {
    async fn apply(&self, work: WebhookWork) -> Result<WorkOutcome, RepoError> {
        let mut state = self.0.lock().unwrap();
        let mut tx = state.clone();
        let result = work(&mut tx);
        if matches!(result, Ok(WorkOutcome::Applied(_))) {
            *state = tx;
        }
        result
    }
}

impl FakeStore {
    pub(super) fn state(&self) -> State {
        self.0.lock().unwrap().clone()
    }
    pub(super) fn with(&self, f: impl FnOnce(&mut State)) {
        f(&mut self.0.lock().unwrap());
    }
}

// ---- event builders --------------------------------------------------------------------

pub(super) fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).unwrap()
}

pub(super) fn usd(minor: i64) -> Money {
    Money::new(minor, Currency::parse("usd").unwrap()).unwrap()
}

pub(super) fn pro_plan() -> Plan {
    crate::testing::plan()
}

pub(super) fn event(id: &str, created: i64, payload: PaymentEvent) -> ProviderEvent {
    ProviderEvent {
        id: EventId::parse(id).unwrap(),
        kind: "test.event".into(),
        created: at(created),
        api_version: Some("2026-07-29.dahlia".into()),
        livemode: false,
        event: payload,
    }
}

pub(super) fn hints(tenant: Option<TenantId>, customer: Option<&str>) -> TenantHints {
    TenantHints {
        metadata: tenant.map(|t| t.to_string()),
        customer: customer.map(|c| CustomerRef::parse(c).unwrap()),
        ..TenantHints::default()
    }
}

pub(super) fn checkout(tenant: TenantId) -> PaymentEvent {
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

pub(super) fn unpaid_checkout(tenant: TenantId) -> PaymentEvent {
    let PaymentEvent::CheckoutCompleted(c) = checkout(tenant) else {
        unreachable!()
    };
    PaymentEvent::CheckoutCompleted(CheckoutCompleted {
        awaiting_payment: true,
        ..c
    })
}

pub(super) fn sub_snapshot(
    status: SubscriptionStatus,
    tenant: Option<TenantId>,
) -> SubscriptionSnapshot {
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
        trial_end: None,
    }
}

pub(super) fn stripe_invoice(
    tenant: Option<TenantId>,
    due: i64,
    paid: i64,
    attempt: i64,
) -> InvoiceSnapshot {
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
        status: Some("paid".into()),
        hosted_invoice_url: Some("https://invoice.example/i/in_1".into()),
        invoice_pdf_url: Some("https://invoice.example/i/in_1/pdf".into()),
        paid_out_of_band: false,
    }
}

pub(super) fn intent(
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

pub(super) fn local_invoice(tenant: TenantId, due: i64) -> Invoice {
    crate::service::tests::invoice(tenant, InvoiceStatus::Open, due, 0)
}

/// Applies `ev` through the store as a webhook delivery would.
pub(super) async fn deliver(store: &FakeStore, ev: ProviderEvent) -> Result<Applied, RepoError> {
    deliver_as(store, ev, Delivery::Webhook).await
}

/// Applies `ev` as `delivery`; a same-second tie is not expected.
pub(super) async fn deliver_as(
    store: &FakeStore,
    ev: ProviderEvent,
    delivery: Delivery,
) -> Result<Applied, RepoError> {
    match run(store, ev, delivery).await? {
        WorkOutcome::Applied(applied) => Ok(applied),
        tie @ WorkOutcome::SameSecondTie(_) => panic!("unexpected {tie:?}"),
    }
}

/// Runs the unit of work of `ev` as `delivery`, whatever it comes to.
pub(super) async fn run(
    store: &FakeStore,
    ev: ProviderEvent,
    delivery: Delivery,
) -> Result<WorkOutcome, RepoError> {
    let entry = NewLedgerEntry {
        event_id: ev.id.clone(),
        kind: ev.kind.clone(),
        created: ev.created,
        api_version: None,
        livemode: false,
        received_at: at(10_000),
        outcome: expected_outcome(&ev.event, delivery),
        payload: Arc::from("{}"),
        source: crate::model::EventSource::Webhook,
    };
    store
        .apply(work(Arc::new(ev), entry, delivery, at(10_000)))
        .await
}

pub(super) fn store_with_plan() -> FakeStore {
    let store = FakeStore::default();
    store.with(|s| s.plans.push(pro_plan()));
    store
}
