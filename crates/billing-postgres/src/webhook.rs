//! [`WebhookStore`]: applies one webhook event's reads and writes ([`PgWebhookTx`]) in one
//! READ COMMITTED transaction, retrying the whole transaction after a deadlock, a
//! serialization failure or a lost unique-key race.
//!
//! This module holds the transaction, its retries and the bookkeeping of failed
//! statements; the statements themselves live with their tables (`tenants`, `plans`,
//! `subscriptions`, `invoices`, `payments`, `ledger` for `webhook_events`, `outbox` for
//! `notifications`, `checkout_sessions`, `lookups` for the lookup queue on `invoices`,
//! `refunds` for `refunds` and `disputes`).
//! Every [`WebhookTx`] method is one SQL statement on the common path, prepared once per
//! connection (the query builder's statements and the hand-written ones of
//! [`crate::statement`] alike), and binds borrowed values: this is the hot path.
//!
//! # Aborted transactions
//! When a statement fails, PostgreSQL aborts the transaction and a `COMMIT` would silently
//! roll it back. [`PgWebhookTx`] therefore remembers any failed statement, and
//! [`WebhookStore::apply`] never commits after one, even if the work swallowed the error.
//! The one error the domain is meant to go on after, an invoice whose number or Stripe id
//! belongs to another invoice, is detected *before* writing (by the same statement), so it
//! aborts nothing; only a concurrent transaction committing the clashing row in between
//! raises a unique violation, and that case reruns the transaction, which then sees it.

use async_trait::async_trait;
use billing_domain::notification::NewNotification;
use billing_domain::ports::{
    Applied, NewLedgerEntry, RepoError, SessionEnd, WebhookStore, WebhookTx, WebhookWork,
    WorkOutcome,
};
use billing_domain::{
    CheckoutSessionRef, CustomerRef, EventId, EventOutcome, Invoice, InvoiceId, InvoiceRef,
    Payment, PaymentIntentRef, Plan, PlanKey, PriceRef, Subscription, SubscriptionId,
    SubscriptionRef, Tenant, TenantId,
};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::error::{map_diesel, DbError};
use crate::outbox::NotificationFormat;
use crate::store::PgStore;
use crate::{
    checkout_sessions, invoices, ledger, lookups, outbox, payments, plans, subscriptions, tenants,
};
// ---- refunds and disputes (issue 14) ----
use crate::{deleted_customers, refunds};
use billing_domain::{ChargeRef, Dispute, PaymentId, Refund};

/// How many times [`WebhookStore::apply`] runs a transaction that keeps failing with a
/// retryable error (deadlock, serialization failure, lost unique-key race).
pub(crate) const MAX_ATTEMPTS: u32 = 3;

/// Pause before a rerun, times the attempt number.
const RETRY_PAUSE: std::time::Duration = std::time::Duration::from_millis(10);

/// Whether running the transaction again may succeed: a deadlock (SQLSTATE 40P01, which
/// diesel does not classify, hence the message) or a serialization failure (40001).
fn is_transient(e: &DieselError) -> bool {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            info.message().starts_with("deadlock detected")
        }
        _ => false,
    }
}

fn is_unique_violation(e: &DieselError) -> bool {
    matches!(
        e,
        DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
    )
}

/// One webhook event's transaction: the domain's [`WebhookTx`] over a diesel connection
/// that is inside a transaction.
pub(crate) struct PgWebhookTx<'a> {
    conn: &'a mut PgConnection,
    /// How notifications are rendered for the outbox (`None`: none was configured).
    notification_format: Option<NotificationFormat>,
    /// How billing events are appended (issue 16).
    events_out: Option<&'a crate::events_out::EventsOutSetup>,
    /// A statement failed, so PostgreSQL aborted the transaction: it must not be committed.
    aborted: bool,
    /// The failure may go away if the whole transaction runs again.
    retry: bool,
}

impl<'a> PgWebhookTx<'a> {
    /// Wraps a connection on which a transaction is open.
    pub(crate) fn new(
        conn: &'a mut PgConnection,
        notification_format: Option<NotificationFormat>,
        events_out: Option<&'a crate::events_out::EventsOutSetup>,
    ) -> Self {
        Self {
            conn,
            notification_format,
            events_out,
            aborted: false,
            retry: false,
        }
    }

    /// Records a failed statement and translates its error.
    fn failed(&mut self, e: DieselError) -> RepoError {
        self.aborted = true;
        if is_transient(&e) {
            self.retry = true;
        }
        map_diesel(e)
    }

    /// [`Self::failed`] for a statement's result.
    fn check<T>(&mut self, result: QueryResult<T>) -> Result<T, RepoError> {
        result.map_err(|e| self.failed(e))
    }

    /// [`Self::failed`] for helpers shared with the read side.
    fn check_db<T>(&mut self, result: Result<T, DbError>) -> Result<T, RepoError> {
        result.map_err(|e| match e {
            DbError::Diesel(e) => self.failed(e),
            // A row the domain refuses: the statement itself succeeded.
            DbError::Repo(e) => e,
        })
    }

    /// A unique violation a concurrent transaction caused after our snapshot: running the
    /// transaction again sees the committed row and decides differently.
    fn raced(&mut self, e: DieselError) -> RepoError {
        if is_unique_violation(&e) {
            self.retry = true;
        }
        self.failed(e)
    }
}

impl WebhookTx for PgWebhookTx<'_> {
    fn insert_event(&mut self, entry: &NewLedgerEntry) -> Result<bool, RepoError> {
        let inserted = ledger::insert_event(self.conn, entry);
        self.check(inserted)
    }

    fn lock_event(&mut self, id: &EventId) -> Result<Option<EventOutcome>, RepoError> {
        let stored = ledger::lock_event(self.conn, id);
        self.check_db(stored)
    }

    fn set_event_outcome(
        &mut self,
        id: &EventId,
        applied: &Applied,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let updated = ledger::set_event_outcome(self.conn, id, applied, at);
        self.check_db(updated)
    }

    fn ensure_tenant(&mut self, id: TenantId) -> Result<Tenant, RepoError> {
        let tenant = tenants::ensure_tenant_locked(self.conn, id);
        self.check_db(tenant)
    }

    fn lock_tenant(&mut self, id: TenantId) -> Result<Option<Tenant>, RepoError> {
        let tenant = tenants::lock_tenant(self.conn, id);
        self.check_db(tenant)
    }

    fn tenant_by_customer(&mut self, customer: &CustomerRef) -> Result<Option<Tenant>, RepoError> {
        let tenant = tenants::tenant_by_customer(self.conn, customer);
        self.check_db(tenant)
    }

    fn save_tenant(&mut self, tenant: &Tenant) -> Result<(), RepoError> {
        let saved = tenants::save_tenant(self.conn, tenant);
        self.check(saved)
    }

    fn record_customer_deleted(
        &mut self,
        customer: &CustomerRef,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let recorded = deleted_customers::record(self.conn, customer, at);
        self.check(recorded)
    }

    fn customer_was_deleted(&mut self, customer: &CustomerRef) -> Result<bool, RepoError> {
        let deleted = deleted_customers::was_deleted(self.conn, customer);
        self.check(deleted)
    }

    fn plan(&mut self, key: &PlanKey) -> Result<Option<Plan>, RepoError> {
        let found = plans::find_plan(self.conn, key);
        self.check_db(found)
    }

    fn plan_by_price(&mut self, price: &PriceRef) -> Result<Option<Plan>, RepoError> {
        let found = plans::plan_by_price(self.conn, price);
        self.check_db(found)
    }

    fn lock_subscription(
        &mut self,
        subscription: &SubscriptionRef,
    ) -> Result<Option<Subscription>, RepoError> {
        let found = subscriptions::lock_subscription(self.conn, subscription);
        self.check_db(found)
    }

    fn save_subscription(&mut self, s: &Subscription) -> Result<(), RepoError> {
        let saved = subscriptions::save_subscription(self.conn, s);
        // A unique violation here means a concurrent event created the same Stripe
        // subscription after our lookup: run again, and it is found.
        saved.map_err(|e| self.raced(e))
    }

    fn complete_checkout_session(
        &mut self,
        session: &CheckoutSessionRef,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let done = checkout_sessions::close_session(
            self.conn,
            session.as_str(),
            SessionEnd::Completed,
            at,
        );
        self.check(done)
    }

    fn expire_checkout_session(
        &mut self,
        session: &CheckoutSessionRef,
        at: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let closed = checkout_sessions::expire_open_session(self.conn, session.as_str(), at);
        self.check(closed)
    }

    fn has_other_live_subscription(
        &mut self,
        tenant: TenantId,
        except: SubscriptionId,
    ) -> Result<bool, RepoError> {
        let found = subscriptions::has_other_live_subscription(self.conn, tenant, except);
        self.check(found)
    }

    fn lock_invoice_by_ref(&mut self, invoice: &InvoiceRef) -> Result<Option<Invoice>, RepoError> {
        let found = invoices::lock_invoice_by_ref(self.conn, invoice);
        self.check_db(found)
    }

    fn lock_invoice(&mut self, id: InvoiceId) -> Result<Option<Invoice>, RepoError> {
        let found = invoices::lock_invoice(self.conn, id);
        self.check_db(found)
    }

    fn lock_invoice_by_payment_intent(
        &mut self,
        payment_intent: &PaymentIntentRef,
    ) -> Result<Option<Invoice>, RepoError> {
        let found = invoices::lock_invoice_by_payment_intent(self.conn, payment_intent);
        self.check_db(found)
    }

    fn save_invoice(&mut self, invoice: &Invoice) -> Result<(), RepoError> {
        match invoices::save_invoice(self.conn, invoice) {
            Ok(None) => Ok(()),
            // Nothing was written: the transaction goes on.
            Ok(Some(field)) => Err(RepoError::Conflict(field)),
            // The clashing invoice was committed by a concurrent transaction after our
            // snapshot. The transaction is aborted; running it again sees the clash.
            Err(e) => Err(self.raced(e)),
        }
    }

    fn insert_payment(&mut self, payment: &Payment, source: &EventId) -> Result<bool, RepoError> {
        let inserted = payments::insert_payment(self.conn, payment, source);
        self.check(inserted)
    }

    fn enqueue_notification(&mut self, notification: &NewNotification) -> Result<bool, RepoError> {
        let render = self.notification_format.ok_or_else(|| {
            RepoError::Unexpected(
                "no notification format: build the store with_notification_format".into(),
            )
        })?;
        let payload = render(notification).map_err(RepoError::Unexpected)?;
        let inserted = outbox::enqueue(self.conn, notification, &payload);
        self.check(inserted)
    }

    fn request_payment_intent_lookup(
        &mut self,
        invoice: InvoiceId,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let requested = lookups::request_lookup(self.conn, invoice, at);
        self.check(requested)
    }

    // ---- refunds and disputes (issue 14) ----
    fn lock_payment_by_charge(&mut self, charge: &ChargeRef) -> Result<Option<Payment>, RepoError> {
        let found = payments::lock_payment_by_charge(self.conn, charge);
        self.check_db(found)
    }

    fn lock_payment_by_payment_intent(
        &mut self,
        payment_intent: &PaymentIntentRef,
    ) -> Result<Option<Payment>, RepoError> {
        let found = payments::lock_payment_by_payment_intent(self.conn, payment_intent);
        self.check_db(found)
    }

    fn save_payment_state(&mut self, payment: &Payment) -> Result<(), RepoError> {
        let saved = payments::save_payment_state(self.conn, payment);
        self.check(saved)
    }

    fn refunds_of(&mut self, payment: PaymentId) -> Result<Vec<Refund>, RepoError> {
        let found = refunds::refunds_of(self.conn, payment);
        self.check_db(found)
    }

    fn save_refund(&mut self, refund: &Refund) -> Result<(), RepoError> {
        let saved = refunds::save_refund(self.conn, refund);
        // The payment's lock serialises a refund's writers; a unique violation is a race
        // the rerun sees through.
        saved.map_err(|e| self.raced(e))
    }

    fn disputes_of(&mut self, payment: PaymentId) -> Result<Vec<Dispute>, RepoError> {
        let found = refunds::disputes_of(self.conn, payment);
        self.check_db(found)
    }

    fn save_dispute(&mut self, dispute: &Dispute) -> Result<(), RepoError> {
        let saved = refunds::save_dispute(self.conn, dispute);
        saved.map_err(|e| self.raced(e))
    }

    // ---- billing events out (issue 16) ----
    fn append_billing_event(
        &mut self,
        event: &billing_domain::events_out::NewBillingEvent,
    ) -> Result<u64, RepoError> {
        let appended = crate::events_out::append(self.conn, self.events_out, event);
        self.check_db(appended)
    }
}

/// Why one run of the work did not commit.
enum Failed {
    /// The work's own error.
    Work(RepoError),
    /// The work found a same-second tie: rolled back, and no error.
    Tie(SubscriptionRef),
    /// The work returned `Ok` after a statement had failed: the transaction is aborted.
    Poisoned,
    /// `BEGIN`, `COMMIT` or `ROLLBACK` failed.
    Db(DieselError),
}

impl From<DieselError> for Failed {
    fn from(e: DieselError) -> Self {
        Self::Db(e)
    }
}

/// Runs `work` in a READ COMMITTED transaction, up to [`MAX_ATTEMPTS`] times while it
/// fails with a retryable error. The work's error is returned as it is; a same-second
/// tie is rolled back and returned as `Ok`.
fn apply_with_retries(
    conn: &mut PgConnection,
    work: &WebhookWork,
    notification_format: Option<NotificationFormat>,
    events_out: Option<&crate::events_out::EventsOutSetup>,
) -> Result<WorkOutcome, DbError> {
    let mut attempt = 1;
    loop {
        let mut retry = false;
        let result = conn.build_transaction().read_committed().run(|conn| {
            let mut tx = PgWebhookTx::new(conn, notification_format, events_out);
            let result = work(&mut tx);
            retry = tx.retry;
            match result {
                Ok(WorkOutcome::Applied(applied)) if !tx.aborted => Ok(applied),
                Ok(WorkOutcome::Applied(_)) => Err(Failed::Poisoned),
                Ok(WorkOutcome::SameSecondTie(subscription)) => Err(Failed::Tie(subscription)),
                Err(e) => Err(Failed::Work(e)),
            }
        });
        let error = match result {
            Ok(applied) => return Ok(WorkOutcome::Applied(applied)),
            // Rolled back; after a statement that lost a race, the rerun decides afresh.
            Err(Failed::Tie(subscription)) if !retry || attempt >= MAX_ATTEMPTS => {
                return Ok(WorkOutcome::SameSecondTie(subscription))
            }
            Err(Failed::Tie(subscription)) => DbError::Repo(RepoError::Unexpected(
                format!("same-second tie on subscription {subscription}").into(),
            )),
            Err(Failed::Work(e)) => DbError::Repo(e),
            Err(Failed::Poisoned) => DbError::Repo(RepoError::Unexpected(
                "webhook work went on after a failed statement".into(),
            )),
            Err(Failed::Db(e)) => {
                retry = is_transient(&e);
                DbError::Diesel(e)
            }
        };
        if !retry || attempt >= MAX_ATTEMPTS {
            return Err(error);
        }
        tracing::warn!(attempt, error = %error, "webhook transaction failed, running it again");
        // A short pause lets the transaction we collided with finish first, so that the
        // rerun does not take the same locks in the same race again.
        std::thread::sleep(RETRY_PAUSE * attempt);
        attempt += 1;
    }
}

#[async_trait]
impl WebhookStore for PgStore {
    #[tracing::instrument(skip_all)]
    async fn apply(&self, work: WebhookWork) -> Result<WorkOutcome, RepoError> {
        let format = self.notification_format();
        let events_out = self.events_out();
        self.run(move |conn| apply_with_retries(conn, &work, format, events_out.as_ref()))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::sql_types;

    fn db_error(kind: DatabaseErrorKind, message: &str) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(message.to_owned()))
    }

    #[test]
    fn deadlocks_and_serialization_failures_are_worth_a_rerun() {
        let deadlock = db_error(
            DatabaseErrorKind::Unknown,
            "deadlock detected: Process 1 waits for ShareLock",
        );
        let serialization = db_error(
            DatabaseErrorKind::SerializationFailure,
            "could not serialize",
        );
        let unique = db_error(DatabaseErrorKind::UniqueViolation, "duplicate key value");
        let other = db_error(DatabaseErrorKind::Unknown, "syntax error");

        assert!(is_transient(&deadlock));
        assert!(is_transient(&serialization));
        assert!(!is_transient(&unique));
        assert!(!is_transient(&other));
    }

    #[derive(QueryableByName)]
    struct Prepared {
        #[diesel(sql_type = sql_types::BigInt)]
        count: i64,
    }

    #[test]
    fn the_hand_written_statements_are_prepared_once_per_connection() {
        let db = crate::testing::TestDatabase::create().unwrap();
        let mut conn = PgConnection::establish(db.url()).unwrap();
        let tenant = TenantId::new();
        let mut invoice = Invoice {
            id: InvoiceId::new(),
            tenant_id: tenant,
            subscription_id: None,
            number: billing_domain::InvoiceNumber::parse("INV-P").unwrap(),
            status: billing_domain::InvoiceStatus::Open,
            amount_due: billing_domain::Money::new(
                100,
                billing_domain::Currency::parse("usd").unwrap(),
            )
            .unwrap(),
            amount_paid: billing_domain::Money::new(
                0,
                billing_domain::Currency::parse("usd").unwrap(),
            )
            .unwrap(),
            due_date: None,
            description: None,
            paid_at: None,
            invoice_ref: None,
            payment_intent: None,
            last_event_at: None,
            hosted_invoice_url: None,
            invoice_pdf_url: None,
            payment_intent_canceled: false,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };

        conn.test_transaction::<_, RepoError, _>(|conn| {
            let mut tx = PgWebhookTx::new(conn, None, None);
            for amount in [100, 200, 300] {
                tx.ensure_tenant(tenant)?;
                invoice.amount_due =
                    billing_domain::Money::new(amount, invoice.amount_due.currency()).unwrap();
                tx.save_invoice(&invoice)?;
            }
            Ok(())
        });
        let prepared = diesel::sql_query(
            "SELECT count(*) AS count FROM pg_prepared_statements \
             WHERE statement LIKE 'WITH ins AS%' OR statement LIKE 'WITH clash AS%'",
        )
        .get_result::<Prepared>(&mut conn)
        .unwrap();

        assert_eq!(prepared.count, 2);
    }
}
