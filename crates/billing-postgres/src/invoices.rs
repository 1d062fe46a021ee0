//! [`InvoiceRepository`] over the `invoices` table.

use async_trait::async_trait;
use billing_domain::page::{Cursor, Page, PageRequest};
use billing_domain::ports::{InvoiceQuery, InvoiceRepository, RepoError};
use billing_domain::{
    Invoice, InvoiceId, InvoiceKey, InvoiceNumber, InvoiceRef, InvoiceStatus, NewInvoice,
    PaymentIntentRef, SubscriptionId, TenantId,
};
use chrono::{DateTime, NaiveDate, Utc};
use diesel::dsl::now;
use diesel::prelude::*;
use uuid::Uuid;

use crate::error::{DbError, InvalidRow};
use crate::rows::{before_cursor, money, overfetch, parse, parse_enum, parse_opt, uuid_cursor};
use crate::schema::invoices;
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
        let after = match &page.after {
            Some(cursor) => match uuid_cursor(cursor) {
                Some(id) => Some((cursor.at, id)),
                // Not one of our invoice cursors: nothing comes after it.
                None => {
                    return Ok(Page {
                        items: Vec::new(),
                        next: None,
                    })
                }
            },
            None => None,
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
            let rows = q
                .load(conn)?
                .into_iter()
                .map(Invoice::try_from)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page::from_overfetch(rows, page.limit, cursor_of))
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
