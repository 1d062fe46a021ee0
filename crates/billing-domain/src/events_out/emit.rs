//! Emitting billing events from what a unit of work changed.
//!
//! [`EmittingStore`] wraps the [`WebhookStore`]; every unit of work it runs sees an
//! [`EmittingTx`] instead of the adapter's transaction. The wrapper passes every call
//! through and remembers, per row, the first state it read (`lock_*`, `ensure_tenant`,
//! `tenant_by_customer`, `refunds_of`/`disputes_of`) and the last state saved. When the
//! work has decided ([`WorkOutcome::Applied`]) it compares the two, in the order the rows
//! were first saved, and appends one event per difference ([`changes`]) in the same
//! transaction, after every other lock the work took (the per-tenant counter is the last
//! lock: no deadlock with the rules' own order).
//!
//! | row | change | event |
//! |---|---|---|
//! | tenant | status becomes active / suspended / cancelled | `tenant.activated` / `.suspended` / `.cancelled` |
//! | subscription | new | `subscription.created` |
//! | subscription | status becomes canceled | `subscription.canceled` |
//! | subscription | other status or plan change | `subscription.updated` |
//! | invoice | status becomes paid / overdue / void | `invoice.paid` / `.overdue` / `.voided` |
//! | payment | inserted succeeded / failed | `payment.succeeded` / `payment.failed` |
//! | payment | refunded amount grows | `payment.refunded` |
//! | dispute | new | `dispute.created` |
//! | dispute | status becomes closed (won, lost, …) | `dispute.closed` |
//! | notification | enqueued (not a dedupe) | the notification's type (`dispute.created` excepted: the dispute row tells it) |
//!
//! A row saved unchanged (a stale or duplicate event's re-save, a field the table does
//! not list) emits nothing; a row changed and changed back within one unit of work emits
//! nothing either.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{kinds, BillingEventSubject, NewBillingEvent};
use crate::ids::{
    BillingEventId, ChargeRef, CheckoutSessionRef, CustomerRef, DisputeId, EventId, InvoiceId,
    InvoiceRef, PaymentId, PaymentIntentRef, PriceRef, SubscriptionId, SubscriptionRef, TenantId,
};
use crate::model::{
    Dispute, EventOutcome, Invoice, InvoiceStatus, Payment, PaymentStatus, Plan, PlanKey, Refund,
    Subscription, SubscriptionStatus, Tenant, TenantStatus,
};
use crate::notification::{NewNotification, NotificationBody};
use crate::ports::{
    Applied, Clock, NewLedgerEntry, RepoError, WebhookStore, WebhookTx, WebhookWork, WorkOutcome,
};

/// First-read and last-saved states of one kind of row, in first-save order.
struct Tracked<K, V> {
    before: HashMap<K, Option<V>>,
    after: HashMap<K, V>,
    order: Vec<K>,
}

impl<K, V> Default for Tracked<K, V> {
    fn default() -> Self {
        Self {
            before: HashMap::new(),
            after: HashMap::new(),
            order: Vec::new(),
        }
    }
}

impl<K: Hash + Eq + Copy, V: Clone> Tracked<K, V> {
    fn read(&mut self, key: K, value: &V) {
        self.before
            .entry(key)
            .or_insert_with(|| Some(value.clone()));
    }

    /// Returns whether this is the row's first save.
    fn saved(&mut self, key: K, value: &V) -> bool {
        self.before.entry(key).or_insert(None);
        let first = self.after.insert(key, value.clone()).is_none();
        if first {
            self.order.push(key);
        }
        first
    }

    fn pair(&self, key: &K) -> Option<(Option<&V>, &V)> {
        let after = self.after.get(key)?;
        let before = self.before.get(key).and_then(Option::as_ref);
        Some((before, after))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Row {
    Tenant(TenantId),
    Subscription(SubscriptionId),
    Invoice(InvoiceId),
    Payment(PaymentId),
    InsertedPayment(PaymentId),
    Dispute(DisputeId),
    Notification(usize),
}

/// A [`WebhookTx`] that remembers what it read and saved (see the module docs).
pub struct EmittingTx<'a> {
    inner: &'a mut dyn WebhookTx,
    tenants: Tracked<TenantId, Tenant>,
    subscriptions: Tracked<SubscriptionId, Subscription>,
    invoices: Tracked<InvoiceId, Invoice>,
    payments: Tracked<PaymentId, Payment>,
    inserted: HashMap<PaymentId, Payment>,
    disputes: Tracked<DisputeId, Dispute>,
    notifications: Vec<NotificationBody>,
    order: Vec<Row>,
}

impl<'a> EmittingTx<'a> {
    /// Wraps the adapter's transaction.
    pub fn new(inner: &'a mut dyn WebhookTx) -> Self {
        Self {
            inner,
            tenants: Tracked::default(),
            subscriptions: Tracked::default(),
            invoices: Tracked::default(),
            payments: Tracked::default(),
            inserted: HashMap::new(),
            disputes: Tracked::default(),
            notifications: Vec::new(),
            order: Vec::new(),
        }
    }

    fn seen_tenant(&mut self, t: Option<&Tenant>) {
        if let Some(t) = t {
            self.tenants.read(t.id, t);
        }
    }

    fn seen_invoice(&mut self, i: Option<&Invoice>) {
        if let Some(i) = i {
            self.invoices.read(i.id, i);
        }
    }

    fn seen_payment(&mut self, p: Option<&Payment>) {
        if let Some(p) = p {
            self.payments.read(p.id, p);
        }
    }

    /// The events the unit of work's changes make, in the order their rows were first
    /// saved, stamped `at`.
    #[must_use]
    pub fn changes(&self, at: DateTime<Utc>) -> Vec<NewBillingEvent> {
        let mut out = Vec::new();
        for row in &self.order {
            match *row {
                Row::Tenant(id) => {
                    if let Some((before, after)) = self.tenants.pair(&id) {
                        tenant_event(before, after, at, &mut out);
                    }
                }
                Row::Subscription(id) => {
                    if let Some((before, after)) = self.subscriptions.pair(&id) {
                        subscription_event(before, after, at, &mut out);
                    }
                }
                Row::Invoice(id) => {
                    if let Some((before, after)) = self.invoices.pair(&id) {
                        invoice_event(before, after, at, &mut out);
                    }
                }
                Row::InsertedPayment(id) => {
                    if let Some(p) = self.inserted.get(&id) {
                        let kind = if p.status == PaymentStatus::Failed {
                            kinds::PAYMENT_FAILED
                        } else {
                            kinds::PAYMENT_SUCCEEDED
                        };
                        out.push(event(p.tenant_id, kind, at, None, || {
                            BillingEventSubject::Payment(p.clone())
                        }));
                    }
                }
                Row::Payment(id) => {
                    if let Some((Some(before), after)) = self.payments.pair(&id) {
                        if after.amount_refunded.minor() > before.amount_refunded.minor() {
                            out.push(event(
                                after.tenant_id,
                                kinds::PAYMENT_REFUNDED,
                                at,
                                changed(before.status.as_str(), after.status.as_str()),
                                || BillingEventSubject::Payment(after.clone()),
                            ));
                        }
                    }
                }
                Row::Dispute(id) => {
                    if let Some((before, after)) = self.disputes.pair(&id) {
                        if let Some(tenant) = self.tenant_of_payment(after.payment_id) {
                            dispute_event(tenant, before, after, at, &mut out);
                        } else {
                            tracing::warn!(dispute.id = %after.id, "dispute of an unknown payment: no billing event");
                        }
                    }
                }
                Row::Notification(i) => {
                    if let Some(body) = self.notifications.get(i) {
                        out.push(event(
                            notification_tenant(body),
                            body.kind(),
                            at,
                            None,
                            || BillingEventSubject::Notification(body.clone()),
                        ));
                    }
                }
            }
        }
        out
    }

    fn tenant_of_payment(&self, payment: PaymentId) -> Option<TenantId> {
        self.payments
            .after
            .get(&payment)
            .or_else(|| self.payments.before.get(&payment).and_then(Option::as_ref))
            .or_else(|| self.inserted.get(&payment))
            .map(|p| p.tenant_id)
    }

    /// Appends the events of [`Self::changes`] through the wrapped transaction.
    ///
    /// # Errors
    /// The transaction's [`RepoError`]: the unit of work then rolls back whole.
    pub fn flush(&mut self, at: impl FnOnce() -> DateTime<Utc>) -> Result<usize, RepoError> {
        if self.order.is_empty() {
            return Ok(0);
        }
        let events = self.changes(at());
        for e in &events {
            self.inner.append_billing_event(e)?;
        }
        Ok(events.len())
    }
}

fn event(
    tenant: TenantId,
    kind: &'static str,
    at: DateTime<Utc>,
    previous_status: Option<&'static str>,
    subject: impl FnOnce() -> BillingEventSubject,
) -> NewBillingEvent {
    NewBillingEvent {
        id: BillingEventId::new(),
        tenant,
        kind,
        created_at: at,
        previous_status,
        subject: subject(),
    }
}

fn changed(before: &'static str, after: &'static str) -> Option<&'static str> {
    (before != after).then_some(before)
}

fn tenant_event(
    before: Option<&Tenant>,
    after: &Tenant,
    at: DateTime<Utc>,
    out: &mut Vec<NewBillingEvent>,
) {
    let was = before.map(|t| t.status);
    if was == Some(after.status) {
        return;
    }
    let kind = match after.status {
        TenantStatus::Active => kinds::TENANT_ACTIVATED,
        TenantStatus::Suspended => kinds::TENANT_SUSPENDED,
        TenantStatus::Cancelled => kinds::TENANT_CANCELLED,
        TenantStatus::Pending => return,
    };
    out.push(event(
        after.id,
        kind,
        at,
        was.map(TenantStatus::as_str),
        || BillingEventSubject::Tenant(after.clone()),
    ));
}

fn subscription_event(
    before: Option<&Subscription>,
    after: &Subscription,
    at: DateTime<Utc>,
    out: &mut Vec<NewBillingEvent>,
) {
    let subject = || BillingEventSubject::Subscription(after.clone());
    let Some(before) = before else {
        out.push(event(
            after.tenant_id,
            kinds::SUBSCRIPTION_CREATED,
            at,
            None,
            subject,
        ));
        return;
    };
    let previous = changed(before.status.as_str(), after.status.as_str());
    if after.status == SubscriptionStatus::Canceled && before.status != after.status {
        out.push(event(
            after.tenant_id,
            kinds::SUBSCRIPTION_CANCELED,
            at,
            previous,
            subject,
        ));
    } else if before.status != after.status || before.plan_id != after.plan_id {
        out.push(event(
            after.tenant_id,
            kinds::SUBSCRIPTION_UPDATED,
            at,
            previous,
            subject,
        ));
    }
}

fn invoice_event(
    before: Option<&Invoice>,
    after: &Invoice,
    at: DateTime<Utc>,
    out: &mut Vec<NewBillingEvent>,
) {
    let was = before.map(|i| i.status);
    if was == Some(after.status) {
        return;
    }
    let kind = match after.status {
        InvoiceStatus::Paid => kinds::INVOICE_PAID,
        InvoiceStatus::Overdue => kinds::INVOICE_OVERDUE,
        InvoiceStatus::Void => kinds::INVOICE_VOIDED,
        InvoiceStatus::Draft | InvoiceStatus::Open | InvoiceStatus::Uncollectible => return,
    };
    out.push(event(
        after.tenant_id,
        kind,
        at,
        was.map(InvoiceStatus::as_str),
        || BillingEventSubject::Invoice(after.clone()),
    ));
}

fn dispute_event(
    tenant: TenantId,
    before: Option<&Dispute>,
    after: &Dispute,
    at: DateTime<Utc>,
    out: &mut Vec<NewBillingEvent>,
) {
    let subject = || BillingEventSubject::Dispute(after.clone());
    match before {
        None => out.push(event(tenant, kinds::DISPUTE_CREATED, at, None, subject)),
        Some(before) if !before.status.is_closed() && after.status.is_closed() => {
            out.push(event(
                tenant,
                kinds::DISPUTE_CLOSED,
                at,
                Some(before.status.as_str()),
                subject,
            ));
        }
        Some(_) => {}
    }
}

/// The tenant a notification is about.
#[must_use]
pub const fn notification_tenant(body: &NotificationBody) -> TenantId {
    match body {
        NotificationBody::InvoicePaymentFailed { tenant, .. }
        | NotificationBody::InvoicePaymentActionRequired { tenant, .. }
        | NotificationBody::SubscriptionTrialWillEnd { tenant, .. }
        | NotificationBody::CheckoutAsyncPaymentFailed { tenant, .. }
        | NotificationBody::DisputeCreated { tenant, .. } => *tenant,
    }
}

impl WebhookTx for EmittingTx<'_> {
    fn insert_event(&mut self, entry: &NewLedgerEntry) -> Result<bool, RepoError> {
        self.inner.insert_event(entry)
    }
    fn lock_event(&mut self, id: &EventId) -> Result<Option<EventOutcome>, RepoError> {
        self.inner.lock_event(id)
    }
    fn set_event_outcome(
        &mut self,
        id: &EventId,
        applied: &Applied,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        self.inner.set_event_outcome(id, applied, at)
    }
    fn ensure_tenant(&mut self, id: TenantId) -> Result<Tenant, RepoError> {
        let t = self.inner.ensure_tenant(id)?;
        self.seen_tenant(Some(&t));
        Ok(t)
    }
    fn lock_tenant(&mut self, id: TenantId) -> Result<Option<Tenant>, RepoError> {
        let t = self.inner.lock_tenant(id)?;
        self.seen_tenant(t.as_ref());
        Ok(t)
    }
    fn tenant_by_customer(&mut self, customer: &CustomerRef) -> Result<Option<Tenant>, RepoError> {
        let t = self.inner.tenant_by_customer(customer)?;
        self.seen_tenant(t.as_ref());
        Ok(t)
    }
    fn save_tenant(&mut self, tenant: &Tenant) -> Result<(), RepoError> {
        self.inner.save_tenant(tenant)?;
        if self.tenants.saved(tenant.id, tenant) {
            self.order.push(Row::Tenant(tenant.id));
        }
        Ok(())
    }
    fn record_customer_deleted(
        &mut self,
        customer: &CustomerRef,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        self.inner.record_customer_deleted(customer, at)
    }
    fn customer_was_deleted(&mut self, customer: &CustomerRef) -> Result<bool, RepoError> {
        self.inner.customer_was_deleted(customer)
    }
    fn plan(&mut self, key: &PlanKey) -> Result<Option<Plan>, RepoError> {
        self.inner.plan(key)
    }
    fn plan_by_price(&mut self, price: &PriceRef) -> Result<Option<Plan>, RepoError> {
        self.inner.plan_by_price(price)
    }
    fn lock_subscription(
        &mut self,
        subscription: &SubscriptionRef,
    ) -> Result<Option<Subscription>, RepoError> {
        let s = self.inner.lock_subscription(subscription)?;
        if let Some(s) = &s {
            self.subscriptions.read(s.id, s);
        }
        Ok(s)
    }
    fn save_subscription(&mut self, subscription: &Subscription) -> Result<(), RepoError> {
        self.inner.save_subscription(subscription)?;
        if self.subscriptions.saved(subscription.id, subscription) {
            self.order.push(Row::Subscription(subscription.id));
        }
        Ok(())
    }
    fn complete_checkout_session(
        &mut self,
        session: &CheckoutSessionRef,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        self.inner.complete_checkout_session(session, at)
    }
    fn expire_checkout_session(
        &mut self,
        session: &CheckoutSessionRef,
        at: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        self.inner.expire_checkout_session(session, at)
    }
    fn has_other_live_subscription(
        &mut self,
        tenant: TenantId,
        except: SubscriptionId,
    ) -> Result<bool, RepoError> {
        self.inner.has_other_live_subscription(tenant, except)
    }
    fn lock_invoice_by_ref(&mut self, invoice: &InvoiceRef) -> Result<Option<Invoice>, RepoError> {
        let i = self.inner.lock_invoice_by_ref(invoice)?;
        self.seen_invoice(i.as_ref());
        Ok(i)
    }
    fn lock_invoice(&mut self, id: InvoiceId) -> Result<Option<Invoice>, RepoError> {
        let i = self.inner.lock_invoice(id)?;
        self.seen_invoice(i.as_ref());
        Ok(i)
    }
    fn lock_invoice_by_payment_intent(
        &mut self,
        payment_intent: &PaymentIntentRef,
    ) -> Result<Option<Invoice>, RepoError> {
        let i = self.inner.lock_invoice_by_payment_intent(payment_intent)?;
        self.seen_invoice(i.as_ref());
        Ok(i)
    }
    fn save_invoice(&mut self, invoice: &Invoice) -> Result<(), RepoError> {
        self.inner.save_invoice(invoice)?;
        if self.invoices.saved(invoice.id, invoice) {
            self.order.push(Row::Invoice(invoice.id));
        }
        Ok(())
    }
    fn insert_payment(&mut self, payment: &Payment, source: &EventId) -> Result<bool, RepoError> {
        let inserted = self.inner.insert_payment(payment, source)?;
        if inserted && self.inserted.insert(payment.id, payment.clone()).is_none() {
            self.order.push(Row::InsertedPayment(payment.id));
        }
        Ok(inserted)
    }
    fn enqueue_notification(&mut self, notification: &NewNotification) -> Result<bool, RepoError> {
        let queued = self.inner.enqueue_notification(notification)?;
        // A dispute's creation is told by its row (`dispute.created`), not twice.
        if queued && !matches!(notification.body, NotificationBody::DisputeCreated { .. }) {
            self.order.push(Row::Notification(self.notifications.len()));
            self.notifications.push(notification.body.clone());
        }
        Ok(queued)
    }
    fn request_payment_intent_lookup(
        &mut self,
        invoice: InvoiceId,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        self.inner.request_payment_intent_lookup(invoice, at)
    }
    fn lock_payment_by_charge(&mut self, charge: &ChargeRef) -> Result<Option<Payment>, RepoError> {
        let p = self.inner.lock_payment_by_charge(charge)?;
        self.seen_payment(p.as_ref());
        Ok(p)
    }
    fn lock_payment_by_payment_intent(
        &mut self,
        payment_intent: &PaymentIntentRef,
    ) -> Result<Option<Payment>, RepoError> {
        let p = self.inner.lock_payment_by_payment_intent(payment_intent)?;
        self.seen_payment(p.as_ref());
        Ok(p)
    }
    fn save_payment_state(&mut self, payment: &Payment) -> Result<(), RepoError> {
        self.inner.save_payment_state(payment)?;
        if self.payments.saved(payment.id, payment) {
            self.order.push(Row::Payment(payment.id));
        }
        Ok(())
    }
    fn refunds_of(&mut self, payment: PaymentId) -> Result<Vec<Refund>, RepoError> {
        self.inner.refunds_of(payment)
    }
    fn save_refund(&mut self, refund: &Refund) -> Result<(), RepoError> {
        self.inner.save_refund(refund)
    }
    fn disputes_of(&mut self, payment: PaymentId) -> Result<Vec<Dispute>, RepoError> {
        let ds = self.inner.disputes_of(payment)?;
        for d in &ds {
            self.disputes.read(d.id, d);
        }
        Ok(ds)
    }
    fn save_dispute(&mut self, dispute: &Dispute) -> Result<(), RepoError> {
        self.inner.save_dispute(dispute)?;
        if self.disputes.saved(dispute.id, dispute) {
            self.order.push(Row::Dispute(dispute.id));
        }
        Ok(())
    }
    fn append_billing_event(&mut self, event: &NewBillingEvent) -> Result<u64, RepoError> {
        self.inner.append_billing_event(event)
    }
}

/// The store every unit of work runs through: each sees an [`EmittingTx`], whose events
/// are appended once the work has decided (see the module docs). Installed by
/// [`BillingService::new`](crate::BillingService::new) around the store it is given.
pub struct EmittingStore {
    inner: Arc<dyn WebhookStore>,
    clock: Arc<dyn Clock>,
}

impl EmittingStore {
    /// Wraps `inner`; events are stamped with `clock`.
    #[must_use]
    pub fn new(inner: Arc<dyn WebhookStore>, clock: Arc<dyn Clock>) -> Self {
        Self { inner, clock }
    }
}

#[async_trait]
impl WebhookStore for EmittingStore {
    async fn apply(&self, work: WebhookWork) -> Result<WorkOutcome, RepoError> {
        let clock = Arc::clone(&self.clock);
        self.inner
            .apply(Box::new(move |tx: &mut dyn WebhookTx| {
                let mut emitting = EmittingTx::new(tx);
                let outcome = work(&mut emitting)?;
                if matches!(outcome, WorkOutcome::Applied(_)) {
                    emitting.flush(|| clock.now())?;
                }
                Ok(outcome)
            }))
            .await
    }
}

#[cfg(test)]
mod tests;
