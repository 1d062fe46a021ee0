//! [`PaymentRepository`] over the `payments` table.

use async_trait::async_trait;
use billing_domain::page::{Cursor, Page, PageRequest};
use billing_domain::ports::{DisputeQuery, PaymentQuery, PaymentRepository, RepoError};
use billing_domain::{
    ChargeRef, EventId, InvoiceId, Payment, PaymentId, PaymentIntentRef, PaymentStatus, TenantId,
};
use billing_domain::{Dispute, PaymentDetail};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::error::{DbError, InvalidRow};
use crate::refunds;
use crate::rows::{
    before_cursor, empty_page, money, overfetch, page_of, parse_enum, parse_opt, uuid_after,
};
use crate::schema::{disputes, payments};
use crate::store::PgStore;

const TABLE: &str = "payments";

/// A `payments` row (`source_event_id` is write-side bookkeeping, not read here).
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = payments, check_for_backend(diesel::pg::Pg))]
pub(crate) struct PaymentRow {
    id: Uuid,
    tenant_id: Uuid,
    invoice_id: Option<Uuid>,
    amount: i64,
    currency: String,
    status: String,
    failure_code: Option<String>,
    failure_message: Option<String>,
    stripe_payment_intent_id: Option<String>,
    stripe_charge_id: Option<String>,
    created_at: DateTime<Utc>,
    amount_refunded: i64,
}

impl TryFrom<PaymentRow> for Payment {
    type Error = InvalidRow;

    fn try_from(row: PaymentRow) -> Result<Self, Self::Error> {
        Ok(Payment {
            id: PaymentId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            invoice_id: row.invoice_id.map(InvoiceId::from_uuid),
            amount: money(TABLE, row.amount, &row.currency)?,
            amount_refunded: money(TABLE, row.amount_refunded, &row.currency)?,
            status: parse_enum(TABLE, "status", &row.status, PaymentStatus::parse)?,
            failure_code: row.failure_code,
            failure_message: row.failure_message,
            payment_intent: parse_opt(
                TABLE,
                "stripe_payment_intent_id",
                row.stripe_payment_intent_id,
                PaymentIntentRef::parse,
            )?,
            charge: parse_opt(
                TABLE,
                "stripe_charge_id",
                row.stripe_charge_id,
                ChargeRef::parse,
            )?,
            created_at: row.created_at,
        })
    }
}

fn cursor_of(payment: &Payment) -> Cursor {
    Cursor {
        at: payment.created_at,
        id: payment.id.to_string(),
    }
}

#[async_trait]
impl PaymentRepository for PgStore {
    #[tracing::instrument(skip_all, fields(limit = page.limit.get()))]
    async fn list(
        &self,
        query: PaymentQuery,
        page: PageRequest,
    ) -> Result<Page<Payment>, RepoError> {
        let Some(after) = uuid_after(&page) else {
            // Not one of our payment cursors: nothing comes after it.
            return Ok(empty_page());
        };
        self.run(move |conn| {
            let mut q = payments::table
                .select(PaymentRow::as_select())
                .order((payments::created_at.desc(), payments::id.desc()))
                .limit(overfetch(page.limit))
                .into_boxed();
            if let Some(tenant) = query.tenant {
                q = q.filter(payments::tenant_id.eq(*tenant.as_uuid()));
            }
            if let Some(invoice) = query.invoice {
                q = q.filter(payments::invoice_id.eq(*invoice.as_uuid()));
            }
            if let Some((at, id)) = after {
                q = q.filter(before_cursor(
                    "payments.created_at, payments.id",
                    "uuid",
                    at,
                    id.to_string(),
                ));
            }
            Ok(page_of(q.load(conn)?, page.limit, cursor_of)?)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(payment.id = %id))]
    async fn get(&self, id: PaymentId) -> Result<Option<PaymentDetail>, RepoError> {
        self.run(move |conn| {
            let row = payments::table
                .find(*id.as_uuid())
                .select(PaymentRow::as_select())
                .get_result(conn)
                .optional()?;
            let Some(row) = row else {
                return Ok(None);
            };
            let payment = Payment::try_from(row)?;
            Ok(Some(PaymentDetail {
                refunds: refunds::refunds_of(conn, payment.id)?,
                disputes: refunds::disputes_of(conn, payment.id)?,
                payment,
            }))
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(limit = page.limit.get()))]
    async fn list_disputes(
        &self,
        query: DisputeQuery,
        page: PageRequest,
    ) -> Result<Page<Dispute>, RepoError> {
        let Some(after) = uuid_after(&page) else {
            return Ok(empty_page());
        };
        self.run(move |conn| {
            let mut q = disputes::table
                .select(refunds::DisputeRow::as_select())
                .order((disputes::created_at.desc(), disputes::id.desc()))
                .limit(overfetch(page.limit))
                .into_boxed();
            if let Some(status) = query.status {
                q = q.filter(disputes::status.eq(status.as_str()));
            }
            if let Some((at, id)) = after {
                q = q.filter(before_cursor(
                    "disputes.created_at, disputes.id",
                    "uuid",
                    at,
                    id.to_string(),
                ));
            }
            Ok(page_of(q.load(conn)?, page.limit, refunds::dispute_cursor)?)
        })
        .await
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
    amount_refunded: i64,
}

/// Records a payment unless it is known: `true` when it was new. No conflict target: it
/// covers the source event's unique key, the partial unique index on succeeded
/// PaymentIntents and the charge id alike.
pub(crate) fn insert_payment(
    conn: &mut PgConnection,
    payment: &Payment,
    source: &EventId,
) -> QueryResult<bool> {
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
        amount_refunded: payment.amount_refunded.minor(),
    };
    let inserted = diesel::insert_into(payments::table)
        .values(&row)
        .on_conflict_do_nothing()
        .execute(conn)?;
    Ok(inserted == 1)
}

// ---- refunds and disputes (issue 14) ----

/// The collected (not failed) payment made with a charge, its row locked.
pub(crate) fn lock_payment_by_charge(
    conn: &mut PgConnection,
    charge: &ChargeRef,
) -> Result<Option<Payment>, DbError> {
    let row = payments::table
        .filter(payments::stripe_charge_id.eq(charge.as_str()))
        .filter(payments::status.ne(PaymentStatus::Failed.as_str()))
        .select(PaymentRow::as_select())
        .for_update()
        .get_result(conn)
        .optional()?;
    Ok(row.map(Payment::try_from).transpose()?)
}

/// The collected (not failed) payment of a PaymentIntent, its row locked.
pub(crate) fn lock_payment_by_payment_intent(
    conn: &mut PgConnection,
    payment_intent: &PaymentIntentRef,
) -> Result<Option<Payment>, DbError> {
    let row = payments::table
        .filter(payments::stripe_payment_intent_id.eq(payment_intent.as_str()))
        .filter(payments::status.ne(PaymentStatus::Failed.as_str()))
        .select(PaymentRow::as_select())
        .for_update()
        .get_result(conn)
        .optional()?;
    Ok(row.map(Payment::try_from).transpose()?)
}

/// Stores a payment's refunded amount and status.
pub(crate) fn save_payment_state(conn: &mut PgConnection, payment: &Payment) -> QueryResult<()> {
    diesel::update(payments::table.find(*payment.id.as_uuid()))
        .set((
            payments::status.eq(payment.status.as_str()),
            payments::amount_refunded.eq(payment.amount_refunded.minor()),
        ))
        .execute(conn)?;
    Ok(())
}
