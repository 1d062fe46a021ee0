//! The `refunds` and `disputes` tables (issue 14): a payment's refunds and disputes,
//! written inside the webhook transaction (after its payment row was locked) and read
//! with the payment for the API, and the admin's list of disputes.

use billing_domain::page::Cursor;
use billing_domain::{
    Dispute, DisputeId, DisputeRef, DisputeStatus, PaymentId, Refund, RefundId, RefundRef,
    RefundStatus,
};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::upsert::excluded;
use uuid::Uuid;

use crate::error::{DbError, InvalidRow};
use crate::rows::{money, parse, parse_enum};
use crate::schema::{disputes, refunds};

const REFUNDS: &str = "refunds";
const DISPUTES: &str = "disputes";

/// A `refunds` row.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = refunds, check_for_backend(diesel::pg::Pg))]
pub(crate) struct RefundRow {
    id: Uuid,
    payment_id: Uuid,
    amount: i64,
    currency: String,
    status: String,
    reason: Option<String>,
    stripe_refund_id: String,
    last_event_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<RefundRow> for Refund {
    type Error = InvalidRow;

    fn try_from(row: RefundRow) -> Result<Self, Self::Error> {
        Ok(Refund {
            id: RefundId::from_uuid(row.id),
            payment_id: PaymentId::from_uuid(row.payment_id),
            amount: money(REFUNDS, row.amount, &row.currency)?,
            status: parse_enum(REFUNDS, "status", &row.status, RefundStatus::parse)?,
            reason: row.reason,
            refund_ref: parse(
                REFUNDS,
                "stripe_refund_id",
                row.stripe_refund_id,
                RefundRef::parse,
            )?,
            last_event_at: row.last_event_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

impl From<&Refund> for RefundRow {
    fn from(r: &Refund) -> Self {
        Self {
            id: *r.id.as_uuid(),
            payment_id: *r.payment_id.as_uuid(),
            amount: r.amount.minor(),
            currency: r.amount.currency().as_str().to_owned(),
            status: r.status.as_str().to_owned(),
            reason: r.reason.clone(),
            stripe_refund_id: r.refund_ref.as_str().to_owned(),
            last_event_at: r.last_event_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// A `disputes` row.
#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = disputes, check_for_backend(diesel::pg::Pg))]
pub(crate) struct DisputeRow {
    id: Uuid,
    payment_id: Uuid,
    amount: i64,
    currency: String,
    reason: String,
    status: String,
    stripe_dispute_id: String,
    last_event_at: DateTime<Utc>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<DisputeRow> for Dispute {
    type Error = InvalidRow;

    fn try_from(row: DisputeRow) -> Result<Self, Self::Error> {
        Ok(Dispute {
            id: DisputeId::from_uuid(row.id),
            payment_id: PaymentId::from_uuid(row.payment_id),
            amount: money(DISPUTES, row.amount, &row.currency)?,
            reason: row.reason,
            status: parse_enum(DISPUTES, "status", &row.status, DisputeStatus::parse)?,
            dispute_ref: parse(
                DISPUTES,
                "stripe_dispute_id",
                row.stripe_dispute_id,
                DisputeRef::parse,
            )?,
            last_event_at: row.last_event_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

impl From<&Dispute> for DisputeRow {
    fn from(d: &Dispute) -> Self {
        Self {
            id: *d.id.as_uuid(),
            payment_id: *d.payment_id.as_uuid(),
            amount: d.amount.minor(),
            currency: d.amount.currency().as_str().to_owned(),
            reason: d.reason.clone(),
            status: d.status.as_str().to_owned(),
            stripe_dispute_id: d.dispute_ref.as_str().to_owned(),
            last_event_at: d.last_event_at,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }
}

/// A payment's refunds, oldest first.
pub(crate) fn refunds_of(
    conn: &mut PgConnection,
    payment: PaymentId,
) -> Result<Vec<Refund>, DbError> {
    let rows: Vec<RefundRow> = refunds::table
        .filter(refunds::payment_id.eq(*payment.as_uuid()))
        .order((refunds::created_at.asc(), refunds::id.asc()))
        .select(RefundRow::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(Refund::try_from)
        .collect::<Result<_, _>>()?)
}

/// Inserts or updates a refund by id. The payment's row lock serialises the writers of
/// one payment's refunds, so the Stripe id's unique key is only hit by a bug.
pub(crate) fn save_refund(conn: &mut PgConnection, refund: &Refund) -> QueryResult<()> {
    diesel::insert_into(refunds::table)
        .values(RefundRow::from(refund))
        .on_conflict(refunds::id)
        .do_update()
        .set((
            refunds::amount.eq(excluded(refunds::amount)),
            refunds::status.eq(excluded(refunds::status)),
            refunds::reason.eq(excluded(refunds::reason)),
            refunds::last_event_at.eq(excluded(refunds::last_event_at)),
            refunds::updated_at.eq(excluded(refunds::updated_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// A payment's disputes, oldest first.
pub(crate) fn disputes_of(
    conn: &mut PgConnection,
    payment: PaymentId,
) -> Result<Vec<Dispute>, DbError> {
    let rows: Vec<DisputeRow> = disputes::table
        .filter(disputes::payment_id.eq(*payment.as_uuid()))
        .order((disputes::created_at.asc(), disputes::id.asc()))
        .select(DisputeRow::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(Dispute::try_from)
        .collect::<Result<_, _>>()?)
}

/// Inserts or updates a dispute by id (see [`save_refund`] on the unique key).
pub(crate) fn save_dispute(conn: &mut PgConnection, dispute: &Dispute) -> QueryResult<()> {
    diesel::insert_into(disputes::table)
        .values(DisputeRow::from(dispute))
        .on_conflict(disputes::id)
        .do_update()
        .set((
            disputes::amount.eq(excluded(disputes::amount)),
            disputes::reason.eq(excluded(disputes::reason)),
            disputes::status.eq(excluded(disputes::status)),
            disputes::last_event_at.eq(excluded(disputes::last_event_at)),
            disputes::updated_at.eq(excluded(disputes::updated_at)),
        ))
        .execute(conn)?;
    Ok(())
}

/// The cursor of a dispute in the admin's list.
pub(crate) fn dispute_cursor(dispute: &Dispute) -> Cursor {
    Cursor {
        at: dispute.created_at,
        id: dispute.id.to_string(),
    }
}
