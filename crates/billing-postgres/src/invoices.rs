//! [`InvoiceRepository`] over the `invoices` table.

use async_trait::async_trait;
use billing_domain::page::{Cursor, Page, PageRequest};
use billing_domain::ports::{InvoiceQuery, InvoiceRepository, RepoError};
use billing_domain::{
    ConflictField, Invoice, InvoiceId, InvoiceKey, InvoiceNumber, InvoiceRef, InvoiceStatus,
    NewInvoice, PaymentIntentRef, SubscriptionId, TenantId,
};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::dsl::now;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types;
use uuid::Uuid;

use crate::error::{DbError, InvalidRow};
use crate::lookups::LockPaymentIntent;
use crate::rows::{
    before_cursor, empty_page, money, overfetch, page_of, parse, parse_enum, parse_opt, uuid_after,
};
use crate::schema::invoices;
use crate::statement::{prepared_statement, push_binds};
use crate::store::PgStore;
use crate::tenants::insert_pending_tenant;

const TABLE: &str = "invoices";

/// An `invoices` row.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = invoices, check_for_backend(diesel::pg::Pg))]
pub(crate) struct InvoiceRow {
    id: Uuid,
    tenant_id: Uuid,
    subscription_id: Option<Uuid>,
    number: String,
    status: String,
    amount_due: i64,
    amount_paid: i64,
    currency: String,
    due_date: Option<NaiveDate>,
    description: Option<String>,
    paid_at: Option<DateTime<Utc>>,
    stripe_invoice_id: Option<String>,
    stripe_payment_intent_id: Option<String>,
    last_event_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    hosted_invoice_url: Option<String>,
    invoice_pdf_url: Option<String>,
    stripe_payment_intent_canceled: bool,
}

impl TryFrom<InvoiceRow> for Invoice {
    type Error = InvalidRow;

    fn try_from(row: InvoiceRow) -> Result<Self, Self::Error> {
        Ok(Invoice {
            id: InvoiceId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            subscription_id: row.subscription_id.map(SubscriptionId::from_uuid),
            number: parse(TABLE, "number", row.number, |n| InvoiceNumber::parse(&n))?,
            status: parse_enum(TABLE, "status", &row.status, InvoiceStatus::parse)?,
            amount_due: money(TABLE, row.amount_due, &row.currency)?,
            amount_paid: money(TABLE, row.amount_paid, &row.currency)?,
            due_date: row.due_date,
            description: row.description,
            paid_at: row.paid_at,
            invoice_ref: parse_opt(
                TABLE,
                "stripe_invoice_id",
                row.stripe_invoice_id,
                InvoiceRef::parse,
            )?,
            payment_intent: parse_opt(
                TABLE,
                "stripe_payment_intent_id",
                row.stripe_payment_intent_id,
                PaymentIntentRef::parse,
            )?,
            last_event_at: row.last_event_at,
            hosted_invoice_url: row.hosted_invoice_url,
            invoice_pdf_url: row.invoice_pdf_url,
            payment_intent_canceled: row.stripe_payment_intent_canceled,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// A new `invoices` row, as an admin creates it.
#[derive(Debug, Insertable)]
#[diesel(table_name = invoices)]
struct NewInvoiceRow {
    id: Uuid,
    tenant_id: Uuid,
    number: String,
    status: &'static str,
    amount_due: i64,
    amount_paid: i64,
    currency: String,
    due_date: Option<NaiveDate>,
    description: Option<String>,
}

impl From<NewInvoice> for NewInvoiceRow {
    fn from(i: NewInvoice) -> Self {
        Self {
            id: *InvoiceId::new().as_uuid(),
            tenant_id: *i.tenant_id.as_uuid(),
            number: i.number.as_str().to_owned(),
            status: InvoiceStatus::Open.as_str(),
            amount_due: i.amount_due.minor(),
            amount_paid: 0,
            currency: i.amount_due.currency().as_str().to_owned(),
            due_date: i.due_date,
            description: i.description,
        }
    }
}

/// The invoice, if any.
pub(crate) fn find_invoice(
    conn: &mut PgConnection,
    key: &InvoiceKey,
) -> Result<Option<Invoice>, DbError> {
    let query = invoices::table.select(InvoiceRow::as_select());
    let row = match key {
        InvoiceKey::Id(id) => query.filter(invoices::id.eq(id.as_uuid())).first(conn),
        InvoiceKey::Number(n) => query.filter(invoices::number.eq(n.as_str())).first(conn),
    }
    .optional()?;
    Ok(row.map(Invoice::try_from).transpose()?)
}

fn cursor_of(invoice: &Invoice) -> Cursor {
    Cursor {
        at: invoice.created_at,
        id: invoice.id.to_string(),
    }
}

#[async_trait]
impl InvoiceRepository for PgStore {
    #[tracing::instrument(skip_all, fields(tenant.id = %invoice.tenant_id, invoice.number = %invoice.number))]
    async fn create(&self, invoice: NewInvoice) -> Result<Invoice, RepoError> {
        let tenant = invoice.tenant_id;
        let row = NewInvoiceRow::from(invoice);
        self.transaction(move |conn| {
            insert_pending_tenant(conn, tenant)?;
            let stored = diesel::insert_into(invoices::table)
                .values(&row)
                .returning(InvoiceRow::as_returning())
                .get_result(conn)?;
            Ok(Invoice::try_from(stored)?)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(invoice.key = %key))]
    async fn get(&self, key: &InvoiceKey) -> Result<Option<Invoice>, RepoError> {
        let key = key.clone();
        self.run(move |conn| find_invoice(conn, &key)).await
    }

    #[tracing::instrument(skip_all, fields(limit = page.limit.get()))]
    async fn list(
        &self,
        query: InvoiceQuery,
        page: PageRequest,
    ) -> Result<Page<Invoice>, RepoError> {
        let Some(after) = uuid_after(&page) else {
            // Not one of our invoice cursors: nothing comes after it.
            return Ok(empty_page());
        };
        self.run(move |conn| {
            let mut q = invoices::table
                .select(InvoiceRow::as_select())
                .order((invoices::created_at.desc(), invoices::id.desc()))
                .limit(overfetch(page.limit))
                .into_boxed();
            if let Some(tenant) = query.tenant {
                q = q.filter(invoices::tenant_id.eq(*tenant.as_uuid()));
            }
            if let Some(status) = query.status {
                q = q.filter(invoices::status.eq(status.as_str()));
            }
            if let Some((at, id)) = after {
                q = q.filter(before_cursor(
                    "invoices.created_at, invoices.id",
                    "uuid",
                    at,
                    id.to_string(),
                ));
            }
            Ok(page_of(q.load(conn)?, page.limit, cursor_of)?)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(invoice.id = %id, stripe.payment_intent = %payment_intent))]
    async fn attach_payment_intent(
        &self,
        id: InvoiceId,
        payment_intent: &PaymentIntentRef,
        replace: Option<PaymentIntentRef>,
    ) -> Result<Option<Invoice>, RepoError> {
        let payment_intent = payment_intent.as_str().to_owned();
        self.run(move |conn| {
            // One conditional UPDATE decides the race: a concurrent caller's UPDATE waits
            // on the row lock, then re-checks the condition and finds it no longer holds.
            let target = invoices::table.filter(invoices::id.eq(id.as_uuid()));
            let set = (
                invoices::stripe_payment_intent_id.eq(&payment_intent),
                invoices::stripe_payment_intent_canceled.eq(false),
                invoices::updated_at.eq(now),
            );
            match replace {
                Some(old) => {
                    diesel::update(
                        target.filter(
                            invoices::stripe_payment_intent_id
                                .is_null()
                                .or(invoices::stripe_payment_intent_id.eq(old.into_string())),
                        ),
                    )
                    .set(set)
                    .execute(conn)?;
                }
                None => {
                    diesel::update(target.filter(invoices::stripe_payment_intent_id.is_null()))
                        .set(set)
                        .execute(conn)?;
                }
            }
            find_invoice(conn, &InvoiceKey::Id(id))
        })
        .await
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
///   INSERT INTO invoices (id, number, stripe_invoice_id, stripe_payment_intent_id, …,
///                         hosted_invoice_url, invoice_pdf_url, stripe_payment_intent_canceled)
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
    hosted_invoice_url: Option<&'a str>,
    invoice_pdf_url: Option<&'a str>,
    stripe_payment_intent_canceled: bool,
}

prepared_statement!(SaveInvoice, sql_types::Nullable<sql_types::Text>);

impl QueryFragment<Pg> for SaveInvoice<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        use sql_types::{Bool, Date, Int8, Nullable, Text, Timestamptz, Uuid as SqlUuid};

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
             created_at, updated_at, hosted_invoice_url, invoice_pdf_url, \
             stripe_payment_intent_canceled) SELECT $4, $1, $2, $3, ",
        );
        push_binds!(
            out,
            SqlUuid => &self.tenant_id,
            Nullable<SqlUuid> => &self.subscription_id,
            Text => &self.status,
            Int8 => &self.amount_due,
            Int8 => &self.amount_paid,
            Text => &self.currency,
            Nullable<Date> => &self.due_date,
            Nullable<Text> => &self.description,
            Nullable<Timestamptz> => &self.paid_at,
            Nullable<Timestamptz> => &self.last_event_at,
            Timestamptz => &self.created_at,
            Timestamptz => &self.updated_at,
            Nullable<Text> => &self.hosted_invoice_url,
            Nullable<Text> => &self.invoice_pdf_url,
            Bool => &self.stripe_payment_intent_canceled,
        );
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
             updated_at = EXCLUDED.updated_at, \
             hosted_invoice_url = EXCLUDED.hosted_invoice_url, \
             invoice_pdf_url = EXCLUDED.invoice_pdf_url, \
             stripe_payment_intent_canceled = EXCLUDED.stripe_payment_intent_canceled) \
             SELECT (SELECT field FROM clash)",
        );
        Ok(())
    }
}

/// The field named by [`SaveInvoice`]'s clash column.
fn clash_field(field: &str) -> ConflictField {
    match field {
        "number" => ConflictField::InvoiceNumber,
        "stripeInvoiceId" => ConflictField::StripeInvoice,
        _ => ConflictField::StripePaymentIntent,
    }
}

/// Saves the invoice ([`SaveInvoice`]) unless another invoice holds its number or a
/// Stripe id: then nothing is written and the clashing field is returned.
pub(crate) fn save_invoice(
    conn: &mut PgConnection,
    invoice: &Invoice,
) -> QueryResult<Option<ConflictField>> {
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
        hosted_invoice_url: invoice.hosted_invoice_url.as_deref(),
        invoice_pdf_url: invoice.invoice_pdf_url.as_deref(),
        stripe_payment_intent_canceled: invoice.payment_intent_canceled,
    };
    let clash = statement.get_result::<Option<String>>(conn)?;
    Ok(clash.as_deref().map(clash_field))
}

/// The invoice of a Stripe id, its row locked to the end of the transaction.
pub(crate) fn lock_invoice_by_ref(
    conn: &mut PgConnection,
    invoice: &InvoiceRef,
) -> Result<Option<Invoice>, DbError> {
    let row = invoices::table
        .filter(invoices::stripe_invoice_id.eq(invoice.as_str()))
        .select(InvoiceRow::as_select())
        .for_update()
        .get_result(conn)
        .optional()?;
    Ok(row.map(Invoice::try_from).transpose()?)
}

/// The invoice, its row locked to the end of the transaction.
pub(crate) fn lock_invoice(
    conn: &mut PgConnection,
    id: InvoiceId,
) -> Result<Option<Invoice>, DbError> {
    let row = invoices::table
        .find(id.as_uuid())
        .select(InvoiceRow::as_select())
        .for_update()
        .get_result(conn)
        .optional()?;
    Ok(row.map(Invoice::try_from).transpose()?)
}

/// The invoice a PaymentIntent pays, its row locked, after the PaymentIntent's advisory
/// lock ([`LockPaymentIntent`]), both held to the end of the transaction: the linker
/// cannot record this PaymentIntent's invoice between this lookup and the payment the
/// transaction may then record without it.
pub(crate) fn lock_invoice_by_payment_intent(
    conn: &mut PgConnection,
    payment_intent: &PaymentIntentRef,
) -> Result<Option<Invoice>, DbError> {
    LockPaymentIntent {
        payment_intent: payment_intent.as_str(),
    }
    .execute(conn)?;
    let row = invoices::table
        .filter(invoices::stripe_payment_intent_id.eq(payment_intent.as_str()))
        .select(InvoiceRow::as_select())
        .for_update()
        .get_result(conn)
        .optional()?;
    Ok(row.map(Invoice::try_from).transpose()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clash_column_names_the_field() {
        assert_eq!(clash_field("number"), ConflictField::InvoiceNumber);
        assert_eq!(clash_field("stripeInvoiceId"), ConflictField::StripeInvoice);
        assert_eq!(
            clash_field("stripePaymentIntentId"),
            ConflictField::StripePaymentIntent
        );
    }
}
