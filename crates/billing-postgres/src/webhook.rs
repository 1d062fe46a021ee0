//! [`WebhookStore`]: applies one webhook event's reads and writes ([`PgWebhookTx`]) in one
//! READ COMMITTED transaction, retrying the whole transaction after a deadlock, a
//! serialization failure or a lost unique-key race.
//!
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
use billing_domain::notification::{NewNotification, NotificationBody};
use billing_domain::ports::{
    Applied, NewLedgerEntry, RepoError, SessionEnd, WebhookStore, WebhookTx, WebhookWork,
};
use billing_domain::{
    CheckoutSessionRef, CustomerRef, EventId, EventOutcome, Invoice, InvoiceId, InvoiceRef,
    Payment, PaymentIntentRef, Plan, PlanKey, PriceRef, Subscription, SubscriptionId,
    SubscriptionRef, SubscriptionStatus, Tenant, TenantId,
};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::dsl::exists;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types;
use serde::Serialize;
use uuid::Uuid;

use crate::checkout_sessions::close_session;
use crate::error::{map_diesel, DbError, InvalidRow};
use crate::invoices::InvoiceRow;
use crate::lookups::LockPaymentIntent;
use crate::plans::{find_plan, PlanRow};
use crate::schema::{
    invoices, notifications, payments, plans, subscriptions, tenants, webhook_events,
};
use crate::statement::prepared_statement;
use crate::store::PgStore;
use crate::subscriptions::{SubscriptionRow, LIVE};
use crate::tenants::{find_tenant, TenantRow};

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
    /// A statement failed, so PostgreSQL aborted the transaction: it must not be committed.
    aborted: bool,
    /// The failure may go away if the whole transaction runs again.
    retry: bool,
}

impl<'a> PgWebhookTx<'a> {
    /// Wraps a connection on which a transaction is open.
    pub(crate) fn new(conn: &'a mut PgConnection) -> Self {
        Self {
            conn,
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

/// Converts a fetched row with the domain's validation.
fn convert<R, T>(row: Option<R>) -> Result<Option<T>, RepoError>
where
    T: TryFrom<R, Error = InvalidRow>,
{
    Ok(row.map(T::try_from).transpose()?)
}

/// A new `webhook_events` row, borrowed from the entry.
#[derive(Insertable)]
#[diesel(table_name = webhook_events, treat_none_as_default_value = false)]
struct NewEventRow<'a> {
    event_id: &'a str,
    type_: &'a str,
    created: DateTime<Utc>,
    api_version: Option<&'a str>,
    livemode: bool,
    received_at: DateTime<Utc>,
    processed_at: Option<DateTime<Utc>>,
    outcome: &'static str,
    payload: &'a str,
}

/// A `subscriptions` row to upsert by id, borrowed from the subscription; one prepared
/// statement (diesel's `ON CONFLICT … DO UPDATE` builder is not cached):
///
/// ```sql
/// INSERT INTO subscriptions (<every column>) VALUES ($1, …, $13)
/// ON CONFLICT (id) DO UPDATE SET <every column but id, tenant_id, created_at> = EXCLUDED.…
/// ```
struct SubscriptionWrite<'a> {
    id: Uuid,
    tenant_id: Uuid,
    plan_id: Uuid,
    status: &'static str,
    current_period_start: Option<DateTime<Utc>>,
    current_period_end: Option<DateTime<Utc>>,
    cancel_at_period_end: bool,
    canceled_at: Option<DateTime<Utc>>,
    stripe_subscription_id: Option<&'a str>,
    stripe_customer_id: Option<&'a str>,
    last_event_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

prepared_statement!(SubscriptionWrite, sql_types::Bool);

impl QueryFragment<Pg> for SubscriptionWrite<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        use sql_types::{Bool, Nullable, Text, Timestamptz, Uuid as SqlUuid};

        out.push_sql(
            "INSERT INTO subscriptions (id, tenant_id, plan_id, status, current_period_start, \
             current_period_end, cancel_at_period_end, canceled_at, stripe_subscription_id, \
             stripe_customer_id, last_event_at, created_at, updated_at) VALUES (",
        );
        out.push_bind_param::<SqlUuid, _>(&self.id)?;
        out.push_sql(", ");
        out.push_bind_param::<SqlUuid, _>(&self.tenant_id)?;
        out.push_sql(", ");
        out.push_bind_param::<SqlUuid, _>(&self.plan_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.status)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Timestamptz>, _>(&self.current_period_start)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Timestamptz>, _>(&self.current_period_end)?;
        out.push_sql(", ");
        out.push_bind_param::<Bool, _>(&self.cancel_at_period_end)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Timestamptz>, _>(&self.canceled_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&self.stripe_subscription_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&self.stripe_customer_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Timestamptz>, _>(&self.last_event_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamptz, _>(&self.created_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamptz, _>(&self.updated_at)?;
        out.push_sql(
            ") ON CONFLICT (id) DO UPDATE SET \
             plan_id = EXCLUDED.plan_id, \
             status = EXCLUDED.status, \
             current_period_start = EXCLUDED.current_period_start, \
             current_period_end = EXCLUDED.current_period_end, \
             cancel_at_period_end = EXCLUDED.cancel_at_period_end, \
             canceled_at = EXCLUDED.canceled_at, \
             stripe_subscription_id = EXCLUDED.stripe_subscription_id, \
             stripe_customer_id = EXCLUDED.stripe_customer_id, \
             last_event_at = EXCLUDED.last_event_at, \
             updated_at = EXCLUDED.updated_at",
        );
        Ok(())
    }
}

/// The tenant's status and customer, in one prepared statement (diesel's `UPDATE … SET`
/// builder is not cached): `UPDATE tenants SET status = $1, stripe_customer_id = $2,
/// updated_at = $3 WHERE id = $4`.
struct UpdateTenant<'a> {
    id: &'a Uuid,
    status: &'static str,
    customer: Option<&'a str>,
    updated_at: DateTime<Utc>,
}

prepared_statement!(UpdateTenant, sql_types::Bool);

impl QueryFragment<Pg> for UpdateTenant<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("UPDATE tenants SET status = ");
        out.push_bind_param::<sql_types::Text, _>(&self.status)?;
        out.push_sql(", stripe_customer_id = ");
        out.push_bind_param::<sql_types::Nullable<sql_types::Text>, _>(&self.customer)?;
        out.push_sql(", updated_at = ");
        out.push_bind_param::<sql_types::Timestamptz, _>(&self.updated_at)?;
        out.push_sql(" WHERE id = ");
        out.push_bind_param::<sql_types::Uuid, _>(self.id)?;
        Ok(())
    }
}

/// Asks for a paid invoice's PaymentIntent to be looked up (see
/// [`crate::lookups`]), unless it has one or a lookup is pending; one prepared statement:
///
/// ```sql
/// UPDATE invoices SET payment_intent_lookup_at = $1, payment_intent_lookup_attempts = 0,
///                     payment_intent_lookup_error = NULL
/// WHERE id = $2 AND stripe_payment_intent_id IS NULL AND payment_intent_lookup_at IS NULL
/// ```
struct RequestLookup<'a> {
    id: &'a Uuid,
    at: DateTime<Utc>,
}

prepared_statement!(RequestLookup, sql_types::Bool);

impl QueryFragment<Pg> for RequestLookup<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("UPDATE invoices SET payment_intent_lookup_at = ");
        out.push_bind_param::<sql_types::Timestamptz, _>(&self.at)?;
        out.push_sql(
            ", payment_intent_lookup_attempts = 0, payment_intent_lookup_error = NULL \
             WHERE id = ",
        );
        out.push_bind_param::<sql_types::Uuid, _>(self.id)?;
        out.push_sql(" AND stripe_payment_intent_id IS NULL AND payment_intent_lookup_at IS NULL");
        Ok(())
    }
}

/// A `payments` row to insert, borrowed from the payment.
#[derive(Insertable)]
#[diesel(table_name = payments, treat_none_as_default_value = false)]
struct PaymentWrite<'a> {
    id: Uuid,
    tenant_id: Uuid,
    invoice_id: Option<Uuid>,
    amount: i64,
    currency: &'a str,
    status: &'static str,
    failure_code: Option<&'a str>,
    failure_message: Option<&'a str>,
    stripe_payment_intent_id: Option<&'a str>,
    stripe_charge_id: Option<&'a str>,
    source_event_id: &'a str,
    created_at: DateTime<Utc>,
}

/// A `notifications` row to insert; status, attempts and `next_attempt_at` take their
/// defaults (`pending`, 0, `now()`).
#[derive(Insertable)]
#[diesel(table_name = notifications, treat_none_as_default_value = false)]
struct NotificationWrite<'a> {
    id: Uuid,
    kind: &'static str,
    dedupe_key: &'a str,
    tenant_id: Option<Uuid>,
    payload: &'a str,
}

/// The JSON document a notification delivers.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NotificationDocument<'a> {
    id: &'a Uuid,
    #[serde(rename = "type")]
    kind: &'static str,
    occurred_at: &'a DateTime<Utc>,
    data: NotificationData<'a>,
}

/// The `data` of an `invoice.payment_failed` notification.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NotificationData<'a> {
    tenant_id: &'a Uuid,
    invoice_id: &'a Uuid,
    invoice_number: &'a str,
    stripe_invoice_id: Option<&'a str>,
    amount_due: i64,
    currency: &'a str,
    attempt: i64,
}

/// The outbox payload of a notification.
fn notification_payload(n: &NewNotification) -> Result<String, serde_json::Error> {
    match &n.body {
        NotificationBody::InvoicePaymentFailed {
            tenant,
            invoice,
            number,
            invoice_ref,
            amount_due,
            attempt,
        } => {
            let currency = amount_due.currency();
            serde_json::to_string(&NotificationDocument {
                id: n.id.as_uuid(),
                kind: n.body.kind(),
                occurred_at: &n.occurred_at,
                data: NotificationData {
                    tenant_id: tenant.as_uuid(),
                    invoice_id: invoice.as_uuid(),
                    invoice_number: number,
                    stripe_invoice_id: invoice_ref.as_ref().map(InvoiceRef::as_str),
                    amount_due: amount_due.minor(),
                    currency: currency.as_str(),
                    attempt: *attempt,
                },
            })
        }
    }
}

/// The tenant, inserted as `pending` unless it exists, in one statement:
///
/// ```sql
/// WITH ins AS (INSERT INTO tenants (id, status) VALUES ($1, 'pending')
///              ON CONFLICT (id) DO NOTHING RETURNING <columns>)
/// SELECT <columns> FROM ins UNION ALL SELECT <columns> FROM tenants WHERE id = $1 LIMIT 1
/// ```
///
/// The outer `SELECT` cannot see the CTE's row (one snapshot per statement), hence the
/// `UNION`. It returns nothing only when a concurrent transaction inserted the tenant
/// after this statement's snapshot was taken.
struct EnsureTenant<'a> {
    id: &'a Uuid,
}

prepared_statement!(
    EnsureTenant,
    (
        sql_types::Uuid,
        sql_types::Text,
        sql_types::Text,
        sql_types::Nullable<sql_types::Text>,
        sql_types::Timestamptz,
        sql_types::Timestamptz,
    )
);

impl QueryFragment<Pg> for EnsureTenant<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql("WITH ins AS (INSERT INTO tenants (id, status) VALUES (");
        out.push_bind_param::<sql_types::Uuid, _>(self.id)?;
        out.push_sql(
            ", 'pending') ON CONFLICT (id) DO NOTHING \
             RETURNING id, name, status, stripe_customer_id, created_at, updated_at) \
             SELECT id, name, status, stripe_customer_id, created_at, updated_at FROM ins \
             UNION ALL \
             SELECT id, name, status, stripe_customer_id, created_at, updated_at \
             FROM tenants WHERE id = $1 LIMIT 1",
        );
        Ok(())
    }
}

/// Upserts an invoice by id unless its number or a Stripe id belongs to another invoice,
/// in one statement that returns the clashing field (`NULL` when saved):
///
/// ```sql
/// WITH clash AS (
///   SELECT CASE WHEN o.number = $1 THEN 'number'
///               WHEN o.stripe_invoice_id = $2 THEN 'stripeInvoiceId'
///               ELSE 'stripePaymentIntentId' END AS field
///   FROM invoices o
///   WHERE (o.number = $1 OR o.stripe_invoice_id = $2 OR o.stripe_payment_intent_id = $3)
///     AND o.id <> $4
///   LIMIT 1),
/// saved AS (
///   INSERT INTO invoices (id, number, stripe_invoice_id, stripe_payment_intent_id, …)
///   SELECT $4, $1, $2, $3, $5, … WHERE NOT EXISTS (SELECT 1 FROM clash)
///   ON CONFLICT (id) DO UPDATE SET <every column but id, tenant_id, created_at>)
/// SELECT (SELECT field FROM clash)
/// ```
struct SaveInvoice<'a> {
    id: Uuid,
    number: &'a str,
    stripe_invoice_id: Option<&'a str>,
    stripe_payment_intent_id: Option<&'a str>,
    tenant_id: Uuid,
    subscription_id: Option<Uuid>,
    status: &'static str,
    amount_due: i64,
    amount_paid: i64,
    currency: &'a str,
    due_date: Option<NaiveDate>,
    description: Option<&'a str>,
    paid_at: Option<DateTime<Utc>>,
    last_event_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

prepared_statement!(SaveInvoice, sql_types::Nullable<sql_types::Text>);

impl QueryFragment<Pg> for SaveInvoice<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        use sql_types::{Date, Int8, Nullable, Text, Timestamptz, Uuid as SqlUuid};

        out.push_sql("WITH clash AS (SELECT CASE WHEN o.number = ");
        out.push_bind_param::<Text, _>(&self.number)?; // $1
        out.push_sql(" THEN 'number' WHEN o.stripe_invoice_id = ");
        out.push_bind_param::<Nullable<Text>, _>(&self.stripe_invoice_id)?; // $2
        out.push_sql(
            " THEN 'stripeInvoiceId' ELSE 'stripePaymentIntentId' END AS field \
             FROM invoices o \
             WHERE (o.number = $1 OR o.stripe_invoice_id = $2 OR o.stripe_payment_intent_id = ",
        );
        out.push_bind_param::<Nullable<Text>, _>(&self.stripe_payment_intent_id)?; // $3
        out.push_sql(") AND o.id <> ");
        out.push_bind_param::<SqlUuid, _>(&self.id)?; // $4
        out.push_sql(
            " LIMIT 1), saved AS (INSERT INTO invoices (id, number, stripe_invoice_id, \
             stripe_payment_intent_id, tenant_id, subscription_id, status, amount_due, \
             amount_paid, currency, due_date, description, paid_at, last_event_at, \
             created_at, updated_at) SELECT $4, $1, $2, $3, ",
        );
        out.push_bind_param::<SqlUuid, _>(&self.tenant_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<SqlUuid>, _>(&self.subscription_id)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.status)?;
        out.push_sql(", ");
        out.push_bind_param::<Int8, _>(&self.amount_due)?;
        out.push_sql(", ");
        out.push_bind_param::<Int8, _>(&self.amount_paid)?;
        out.push_sql(", ");
        out.push_bind_param::<Text, _>(&self.currency)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Date>, _>(&self.due_date)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Text>, _>(&self.description)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Timestamptz>, _>(&self.paid_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Nullable<Timestamptz>, _>(&self.last_event_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamptz, _>(&self.created_at)?;
        out.push_sql(", ");
        out.push_bind_param::<Timestamptz, _>(&self.updated_at)?;
        out.push_sql(
            " WHERE NOT EXISTS (SELECT 1 FROM clash) \
             ON CONFLICT (id) DO UPDATE SET \
             number = EXCLUDED.number, \
             stripe_invoice_id = EXCLUDED.stripe_invoice_id, \
             stripe_payment_intent_id = EXCLUDED.stripe_payment_intent_id, \
             subscription_id = EXCLUDED.subscription_id, \
             status = EXCLUDED.status, \
             amount_due = EXCLUDED.amount_due, \
             amount_paid = EXCLUDED.amount_paid, \
             currency = EXCLUDED.currency, \
             due_date = EXCLUDED.due_date, \
             description = EXCLUDED.description, \
             paid_at = EXCLUDED.paid_at, \
             last_event_at = EXCLUDED.last_event_at, \
             updated_at = EXCLUDED.updated_at) \
             SELECT (SELECT field FROM clash)",
        );
        Ok(())
    }
}

/// The API field named by [`SaveInvoice`]'s clash column.
fn clash_field(field: &str) -> &'static str {
    match field {
        "number" => "number",
        "stripeInvoiceId" => "stripeInvoiceId",
        _ => "stripePaymentIntentId",
    }
}

impl WebhookTx for PgWebhookTx<'_> {
    fn insert_event(&mut self, entry: &NewLedgerEntry) -> Result<bool, RepoError> {
        let row = NewEventRow {
            event_id: entry.event_id.as_str(),
            type_: &entry.kind,
            created: entry.created,
            api_version: entry.api_version.as_deref(),
            livemode: entry.livemode,
            received_at: entry.received_at,
            processed_at: Some(entry.received_at),
            outcome: entry.outcome.as_str(),
            payload: &entry.payload,
        };
        let inserted = diesel::insert_into(webhook_events::table)
            .values(&row)
            .on_conflict(webhook_events::event_id)
            .do_nothing()
            .execute(self.conn);
        Ok(self.check(inserted)? == 1)
    }

    fn lock_event(&mut self, id: &EventId) -> Result<Option<EventOutcome>, RepoError> {
        let stored = webhook_events::table
            .find(id.as_str())
            .select(webhook_events::outcome)
            .for_update()
            .get_result::<String>(self.conn)
            .optional();
        let Some(stored) = self.check(stored)? else {
            return Ok(None);
        };
        EventOutcome::parse(&stored).map(Some).ok_or_else(|| {
            InvalidRow::new(
                "webhook_events",
                format!("outcome: unknown value {stored:?}"),
            )
            .into()
        })
    }

    fn set_event_outcome(
        &mut self,
        id: &EventId,
        applied: &Applied,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let updated = diesel::update(webhook_events::table.find(id.as_str()))
            .set((
                webhook_events::outcome.eq(applied.outcome.as_str()),
                webhook_events::detail.eq(applied.detail.as_deref()),
                webhook_events::processed_at.eq(at),
            ))
            .execute(self.conn);
        if self.check(updated)? == 0 {
            return Err(InvalidRow::new("webhook_events", format!("no row for event {id}")).into());
        }
        Ok(())
    }

    fn ensure_tenant(&mut self, id: TenantId) -> Result<Tenant, RepoError> {
        let row = EnsureTenant { id: id.as_uuid() }
            .get_result::<TenantRow>(self.conn)
            .optional();
        if let Some(tenant) = convert(self.check(row)?)? {
            return Ok(tenant);
        }
        // Inserted concurrently after our snapshot (we waited for it): a new statement
        // sees it.
        let found = find_tenant(self.conn, id);
        self.check_db(found)?.ok_or_else(|| {
            InvalidRow::new("tenants", format!("tenant {id} vanished after insert")).into()
        })
    }

    fn lock_tenant(&mut self, id: TenantId) -> Result<Option<Tenant>, RepoError> {
        let row = tenants::table
            .find(id.as_uuid())
            .select(TenantRow::as_select())
            .for_update()
            .get_result(self.conn)
            .optional();
        convert(self.check(row)?)
    }

    fn tenant_by_customer(&mut self, customer: &CustomerRef) -> Result<Option<Tenant>, RepoError> {
        let row = tenants::table
            .filter(tenants::stripe_customer_id.eq(customer.as_str()))
            .select(TenantRow::as_select())
            .get_result(self.conn)
            .optional();
        convert(self.check(row)?)
    }

    fn save_tenant(&mut self, tenant: &Tenant) -> Result<(), RepoError> {
        let updated = UpdateTenant {
            id: tenant.id.as_uuid(),
            status: tenant.status.as_str(),
            customer: tenant.customer.as_ref().map(CustomerRef::as_str),
            updated_at: tenant.updated_at,
        }
        .execute(self.conn);
        self.check(updated)?;
        Ok(())
    }

    fn plan(&mut self, key: &PlanKey) -> Result<Option<Plan>, RepoError> {
        let found = find_plan(self.conn, key);
        self.check_db(found)
    }

    fn plan_by_price(&mut self, price: &PriceRef) -> Result<Option<Plan>, RepoError> {
        let row = plans::table
            .filter(plans::stripe_price_id.eq(price.as_str()))
            .select(PlanRow::as_select())
            .get_result(self.conn)
            .optional();
        convert(self.check(row)?)
    }

    fn lock_subscription(
        &mut self,
        subscription: &SubscriptionRef,
    ) -> Result<Option<Subscription>, RepoError> {
        let row = subscriptions::table
            .filter(subscriptions::stripe_subscription_id.eq(subscription.as_str()))
            .select(SubscriptionRow::as_select())
            .for_update()
            .get_result(self.conn)
            .optional();
        convert(self.check(row)?)
    }

    fn save_subscription(&mut self, s: &Subscription) -> Result<(), RepoError> {
        let row = SubscriptionWrite {
            id: *s.id.as_uuid(),
            tenant_id: *s.tenant_id.as_uuid(),
            plan_id: *s.plan_id.as_uuid(),
            status: s.status.as_str(),
            current_period_start: s.current_period_start,
            current_period_end: s.current_period_end,
            cancel_at_period_end: s.cancel_at_period_end,
            canceled_at: s.canceled_at,
            stripe_subscription_id: s.subscription_ref.as_ref().map(SubscriptionRef::as_str),
            stripe_customer_id: s.customer.as_ref().map(CustomerRef::as_str),
            last_event_at: s.last_event_at,
            created_at: s.created_at,
            updated_at: s.updated_at,
        };
        let saved = row.execute(self.conn);
        // A unique violation here means a concurrent event created the same Stripe
        // subscription after our lookup: run again, and it is found.
        saved.map_err(|e| self.raced(e))?;
        Ok(())
    }

    fn complete_checkout_session(
        &mut self,
        session: &CheckoutSessionRef,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let done = close_session(self.conn, session.as_str(), SessionEnd::Completed, at);
        self.check(done)
    }

    fn has_other_live_subscription(
        &mut self,
        tenant: TenantId,
        except: SubscriptionId,
    ) -> Result<bool, RepoError> {
        let [a, b, c] = LIVE.map(SubscriptionStatus::as_str);
        let found = diesel::select(exists(
            subscriptions::table
                .filter(subscriptions::tenant_id.eq(tenant.as_uuid()))
                .filter(subscriptions::id.ne(except.as_uuid()))
                .filter(
                    subscriptions::status
                        .eq(a)
                        .or(subscriptions::status.eq(b))
                        .or(subscriptions::status.eq(c)),
                ),
        ))
        .get_result::<bool>(self.conn);
        self.check(found)
    }

    fn lock_invoice_by_ref(&mut self, invoice: &InvoiceRef) -> Result<Option<Invoice>, RepoError> {
        let row = invoices::table
            .filter(invoices::stripe_invoice_id.eq(invoice.as_str()))
            .select(InvoiceRow::as_select())
            .for_update()
            .get_result(self.conn)
            .optional();
        convert(self.check(row)?)
    }

    fn lock_invoice(&mut self, id: InvoiceId) -> Result<Option<Invoice>, RepoError> {
        let row = invoices::table
            .find(id.as_uuid())
            .select(InvoiceRow::as_select())
            .for_update()
            .get_result(self.conn)
            .optional();
        convert(self.check(row)?)
    }

    fn lock_invoice_by_payment_intent(
        &mut self,
        payment_intent: &PaymentIntentRef,
    ) -> Result<Option<Invoice>, RepoError> {
        // Held to the end: the linker cannot record this PaymentIntent's invoice between
        // this lookup and the payment this transaction may then record without it.
        let locked = LockPaymentIntent {
            payment_intent: payment_intent.as_str(),
        }
        .execute(self.conn);
        self.check(locked)?;
        let row = invoices::table
            .filter(invoices::stripe_payment_intent_id.eq(payment_intent.as_str()))
            .select(InvoiceRow::as_select())
            .for_update()
            .get_result(self.conn)
            .optional();
        convert(self.check(row)?)
    }

    fn save_invoice(&mut self, invoice: &Invoice) -> Result<(), RepoError> {
        let currency = invoice.amount_due.currency();
        let statement = SaveInvoice {
            id: *invoice.id.as_uuid(),
            number: invoice.number.as_str(),
            stripe_invoice_id: invoice.invoice_ref.as_ref().map(InvoiceRef::as_str),
            stripe_payment_intent_id: invoice
                .payment_intent
                .as_ref()
                .map(PaymentIntentRef::as_str),
            tenant_id: *invoice.tenant_id.as_uuid(),
            subscription_id: invoice.subscription_id.map(|s| *s.as_uuid()),
            status: invoice.status.as_str(),
            amount_due: invoice.amount_due.minor(),
            amount_paid: invoice.amount_paid.minor(),
            currency: currency.as_str(),
            due_date: invoice.due_date,
            description: invoice.description.as_deref(),
            paid_at: invoice.paid_at,
            last_event_at: invoice.last_event_at,
            created_at: invoice.created_at,
            updated_at: invoice.updated_at,
        };
        match statement.get_result::<Option<String>>(self.conn) {
            Ok(None) => Ok(()),
            // Nothing was written: the transaction goes on.
            Ok(Some(field)) => Err(RepoError::Conflict(clash_field(&field))),
            // The clashing invoice was committed by a concurrent transaction after our
            // snapshot. The transaction is aborted; running it again sees the clash.
            Err(e) => Err(self.raced(e)),
        }
    }

    fn insert_payment(&mut self, payment: &Payment, source: &EventId) -> Result<bool, RepoError> {
        let currency = payment.amount.currency();
        let row = PaymentWrite {
            id: *payment.id.as_uuid(),
            tenant_id: *payment.tenant_id.as_uuid(),
            invoice_id: payment.invoice_id.map(|i| *i.as_uuid()),
            amount: payment.amount.minor(),
            currency: currency.as_str(),
            status: payment.status.as_str(),
            failure_code: payment.failure_code.as_deref(),
            failure_message: payment.failure_message.as_deref(),
            stripe_payment_intent_id: payment
                .payment_intent
                .as_ref()
                .map(PaymentIntentRef::as_str),
            stripe_charge_id: payment.charge.as_ref().map(|c| c.as_str()),
            source_event_id: source.as_str(),
            created_at: payment.created_at,
        };
        // No conflict target: covers the source event's unique key, the partial unique
        // index on succeeded PaymentIntents and the charge id alike.
        let inserted = diesel::insert_into(payments::table)
            .values(&row)
            .on_conflict_do_nothing()
            .execute(self.conn);
        Ok(self.check(inserted)? == 1)
    }

    fn enqueue_notification(&mut self, notification: &NewNotification) -> Result<bool, RepoError> {
        let payload =
            notification_payload(notification).map_err(|e| RepoError::Unexpected(Box::new(e)))?;
        let tenant = match &notification.body {
            NotificationBody::InvoicePaymentFailed { tenant, .. } => *tenant.as_uuid(),
        };
        let row = NotificationWrite {
            id: *notification.id.as_uuid(),
            kind: notification.body.kind(),
            dedupe_key: &notification.dedupe_key,
            tenant_id: Some(tenant),
            payload: &payload,
        };
        let inserted = diesel::insert_into(notifications::table)
            .values(&row)
            .on_conflict(notifications::dedupe_key)
            .do_nothing()
            .execute(self.conn);
        Ok(self.check(inserted)? == 1)
    }

    fn request_payment_intent_lookup(
        &mut self,
        invoice: InvoiceId,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let requested = RequestLookup {
            id: invoice.as_uuid(),
            at,
        }
        .execute(self.conn);
        self.check(requested)?;
        Ok(())
    }
}

/// Why one run of the work did not commit.
enum Failed {
    /// The work's own error.
    Work(RepoError),
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
/// fails with a retryable error. The work's error is returned as it is.
fn apply_with_retries(conn: &mut PgConnection, work: &WebhookWork) -> Result<Applied, DbError> {
    let mut attempt = 1;
    loop {
        let mut retry = false;
        let result = conn.build_transaction().read_committed().run(|conn| {
            let mut tx = PgWebhookTx::new(conn);
            let result = work(&mut tx);
            retry = tx.retry;
            match result {
                Ok(applied) if !tx.aborted => Ok(applied),
                Ok(_) => Err(Failed::Poisoned),
                Err(e) => Err(Failed::Work(e)),
            }
        });
        let error = match result {
            Ok(applied) => return Ok(applied),
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
    async fn apply(&self, work: WebhookWork) -> Result<Applied, RepoError> {
        self.run(move |conn| apply_with_retries(conn, &work)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };

        conn.test_transaction::<_, RepoError, _>(|conn| {
            let mut tx = PgWebhookTx::new(conn);
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

    #[test]
    fn the_clash_column_names_the_api_field() {
        assert_eq!(clash_field("number"), "number");
        assert_eq!(clash_field("stripeInvoiceId"), "stripeInvoiceId");
        assert_eq!(
            clash_field("stripePaymentIntentId"),
            "stripePaymentIntentId"
        );
    }
}
