//! [`PaymentIntentLookups`]: the queue of PaymentIntent lookups, kept on the `invoices`
//! rows themselves (`payment_intent_lookup_at`, `_attempts`, `_error`). The webhook's
//! transaction requests a lookup ([`request_lookup`], behind its
//! `request_payment_intent_lookup`); the domain's linker claims, completes or reschedules
//! it.
//!
//! Claiming leases lookups as the outbox's messages are ([`crate::lease`]): two linkers
//! never take the same invoice, and a crashed linker's lookups come back at the end of
//! their lease.

use async_trait::async_trait;
use billing_domain::ports::{Linked, PaymentIntentLookups, PendingLookup, RepoError};
use billing_domain::{InvoiceId, InvoiceRef, PaymentIntentRef};
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types;
use uuid::Uuid;

use crate::lease::{self, LeasedQueue};
use crate::outbox::truncated;
use crate::rows::parse;
use crate::schema::invoices;
use crate::store::PgStore;

const TABLE: &str = "invoices";

/// The lookups as a leased queue ([`crate::lease`]): invoices of Stripe's, due at
/// `payment_intent_lookup_at`.
pub(crate) struct Lookups;

impl LeasedQueue for Lookups {
    const TABLE: &'static str = "invoices";
    const DUE: &'static str = "payment_intent_lookup_at";
    const ALSO: &'static str = " AND stripe_invoice_id IS NOT NULL";
    const WAITING: &'static str = "payment_intent_lookup_at IS NOT NULL";
    const RETURNING: &'static str = "id, stripe_invoice_id, payment_intent_lookup_attempts";
    type Columns = (sql_types::Uuid, sql_types::Text, sql_types::Integer);
}

/// Namespace of the advisory locks taken per PaymentIntent (the two-key form keeps them
/// apart from the migrations' one-key lock).
const PAYMENT_INTENT_LOCKS: i32 = 0x5049; // "PI"

/// `SELECT pg_advisory_xact_lock(20553, hashtext($1))`: serialises, per PaymentIntent, a
/// webhook transaction that looks for the invoice a PaymentIntent pays (and then records
/// a payment with or without it) and the linker's record of that PaymentIntent. Without
/// it, a payment inserted by a transaction that has not committed yet is invisible to the
/// linker's `UPDATE payments`, and would stay without its invoice. Held until the
/// transaction ends.
pub(crate) struct LockPaymentIntent<'a> {
    pub(crate) payment_intent: &'a str,
}

crate::statement::prepared_statement!(LockPaymentIntent, sql_types::Bool);

impl QueryFragment<Pg> for LockPaymentIntent<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(&format!(
            "SELECT pg_advisory_xact_lock({PAYMENT_INTENT_LOCKS}, hashtext("
        ));
        out.push_bind_param::<sql_types::Text, _>(&self.payment_intent)?;
        out.push_sql("))");
        Ok(())
    }
}

/// Records a lookup's result in one statement, run after [`LockPaymentIntent`] in the
/// same transaction when a PaymentIntent was found:
///
/// ```sql
/// WITH target AS (SELECT id, tenant_id, stripe_payment_intent_id AS before
///                 FROM invoices WHERE id = $1 FOR UPDATE),
/// updated AS (
///   UPDATE invoices i SET stripe_payment_intent_id = CASE
///       WHEN t.before IS NULL AND $2::text IS NOT NULL
///            AND NOT EXISTS (SELECT 1 FROM invoices o WHERE o.stripe_payment_intent_id = $2)
///       THEN $2 ELSE t.before END,
///     payment_intent_lookup_at = NULL, payment_intent_lookup_error = NULL, updated_at = $3
///   FROM target t WHERE i.id = t.id
///   RETURNING i.id, i.tenant_id, i.stripe_payment_intent_id AS after, t.before),
/// linked AS (
///   UPDATE payments p SET invoice_id = u.id FROM updated u
///   WHERE u.after = $2 AND p.stripe_payment_intent_id = $2
///     AND p.invoice_id IS NULL AND p.tenant_id = u.tenant_id
///   RETURNING 1)
/// SELECT coalesce((SELECT bool_or(before IS NULL AND after IS NOT NULL) FROM updated), false),
///        (SELECT count(*) FROM linked)
/// ```
///
/// The invoice gets the PaymentIntent only if it names none and no other invoice holds
/// it; payments are attached only when the invoice (then) names that PaymentIntent. A
/// concurrent transaction giving the same PaymentIntent to another invoice between the
/// check and the write fails the statement on the unique key: nothing is written, and the
/// lookup is claimed again after its lease, when the check sees the other invoice.
struct CompleteLookup<'a> {
    id: &'a Uuid,
    found: Option<&'a str>,
    at: &'a DateTime<Utc>,
}

crate::statement::prepared_statement!(CompleteLookup, (sql_types::Bool, sql_types::BigInt));

impl QueryFragment<Pg> for CompleteLookup<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(
            "WITH target AS (SELECT id, tenant_id, stripe_payment_intent_id AS before \
             FROM invoices WHERE id = ",
        );
        out.push_bind_param::<sql_types::Uuid, _>(self.id)?; // $1
        out.push_sql(
            " FOR UPDATE), updated AS (UPDATE invoices i SET stripe_payment_intent_id = CASE \
             WHEN t.before IS NULL AND ",
        );
        out.push_bind_param::<sql_types::Nullable<sql_types::Text>, _>(&self.found)?; // $2
        out.push_sql(
            "::text IS NOT NULL AND NOT EXISTS (SELECT 1 FROM invoices o \
             WHERE o.stripe_payment_intent_id = $2) THEN $2 ELSE t.before END, \
             payment_intent_lookup_at = NULL, payment_intent_lookup_error = NULL, \
             updated_at = ",
        );
        out.push_bind_param::<sql_types::Timestamptz, _>(self.at)?; // $3
        out.push_sql(
            " FROM target t WHERE i.id = t.id \
             RETURNING i.id, i.tenant_id, i.stripe_payment_intent_id AS after, t.before), \
             linked AS (UPDATE payments p SET invoice_id = u.id FROM updated u \
             WHERE u.after = $2 AND p.stripe_payment_intent_id = $2 \
             AND p.invoice_id IS NULL AND p.tenant_id = u.tenant_id RETURNING 1) \
             SELECT coalesce((SELECT bool_or(before IS NULL AND after IS NOT NULL) \
             FROM updated), false), (SELECT count(*) FROM linked)",
        );
        Ok(())
    }
}

#[async_trait]
impl PaymentIntentLookups for PgStore {
    #[tracing::instrument(skip_all, fields(limit = limit))]
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<PendingLookup>, RepoError> {
        self.run(move |conn| {
            let rows: Vec<(Uuid, String, i32)> =
                lease::claim::<Lookups, _>(conn, now, lease_until, limit)?;
            // A row whose Stripe id cannot be read (only a manual edit makes one) is left
            // out and logged, so that it does not hold up the others; its lease brings it
            // back, and the log again, until someone fixes it.
            Ok(rows
                .into_iter()
                .filter_map(|(id, invoice_ref, attempts)| {
                    match parse(TABLE, "stripe_invoice_id", invoice_ref, |s| {
                        InvoiceRef::parse(s)
                    }) {
                        Ok(invoice_ref) => Some(PendingLookup {
                            invoice: InvoiceId::from_uuid(id),
                            invoice_ref,
                            attempts: u32::try_from(attempts).unwrap_or(0),
                        }),
                        Err(e) => {
                            tracing::error!(invoice.id = %id, error = %e, "PaymentIntent lookup skipped");
                            None
                        }
                    }
                })
                .collect())
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(invoice.id = %invoice, found = found.is_some()))]
    async fn complete(
        &self,
        invoice: InvoiceId,
        found: Option<PaymentIntentRef>,
        at: DateTime<Utc>,
    ) -> Result<Linked, RepoError> {
        let found = found.map(PaymentIntentRef::into_string);
        self.transaction(move |conn| {
            if let Some(payment_intent) = found.as_deref() {
                // Before the statement below takes its snapshot: a webhook transaction
                // that recorded a payment of this PaymentIntent has committed by then.
                LockPaymentIntent { payment_intent }.execute(conn)?;
            }
            let (invoice_updated, attached) = CompleteLookup {
                id: invoice.as_uuid(),
                found: found.as_deref(),
                at: &at,
            }
            .get_result::<(bool, i64)>(conn)?;
            Ok(Linked {
                invoice_updated,
                payments_linked: u64::try_from(attached).unwrap_or(0),
            })
        })
        .await
    }

    #[tracing::instrument(
        skip_all,
        fields(invoice.id = %invoice, attempts = attempts, gave_up = retry_at.is_none())
    )]
    async fn reschedule(
        &self,
        invoice: InvoiceId,
        attempts: u32,
        retry_at: Option<DateTime<Utc>>,
        error: String,
    ) -> Result<(), RepoError> {
        let attempts = i32::try_from(attempts).unwrap_or(i32::MAX);
        self.run(move |conn| {
            // Only a pending lookup changes: a slow linker whose lease ran out must not
            // bring back a lookup another one completed since.
            diesel::update(
                invoices::table
                    .find(invoice.as_uuid())
                    .filter(invoices::payment_intent_lookup_at.is_not_null()),
            )
            .set((
                invoices::payment_intent_lookup_attempts.eq(attempts),
                invoices::payment_intent_lookup_at.eq(retry_at),
                invoices::payment_intent_lookup_error.eq(truncated(&error)),
            ))
            .execute(conn)?;
            Ok(())
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn backlog(&self) -> Result<u64, RepoError> {
        self.run(|conn| Ok(lease::backlog::<Lookups>(conn)?)).await
    }
}

/// Asks for a paid invoice's PaymentIntent to be looked up (see
/// the module docs), unless it has one or a lookup is pending; one prepared statement:
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

crate::statement::prepared_statement!(RequestLookup, sql_types::Bool);

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

/// Asks for the invoice's PaymentIntent to be looked up ([`RequestLookup`]).
pub(crate) fn request_lookup(
    conn: &mut PgConnection,
    invoice: InvoiceId,
    at: DateTime<Utc>,
) -> QueryResult<()> {
    RequestLookup {
        id: invoice.as_uuid(),
        at,
    }
    .execute(conn)?;
    Ok(())
}
