//! [`TenantRepository`] over the `tenants` table.

use async_trait::async_trait;
use billing_domain::ports::{RepoError, TenantRepository};
use billing_domain::{CustomerRef, Tenant, TenantId, TenantStatus};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::error::{DbError, InvalidRow};
use crate::rows::{parse_enum, parse_opt};
use crate::schema::tenants;
use crate::store::PgStore;

const TABLE: &str = "tenants";

/// A `tenants` row.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = tenants, check_for_backend(diesel::pg::Pg))]
pub(crate) struct TenantRow {
    id: Uuid,
    name: String,
    status: String,
    stripe_customer_id: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<TenantRow> for Tenant {
    type Error = InvalidRow;

    fn try_from(row: TenantRow) -> Result<Self, Self::Error> {
        Ok(Tenant {
            id: TenantId::from_uuid(row.id),
            name: row.name,
            status: parse_enum(TABLE, "status", &row.status, TenantStatus::parse)?,
            customer: parse_opt(
                TABLE,
                "stripe_customer_id",
                row.stripe_customer_id,
                CustomerRef::parse,
            )?,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// Registers the tenant as `pending` unless it exists. Safe under concurrency: a
/// concurrent insert of the same id makes this one wait, then do nothing.
pub(crate) fn insert_pending_tenant(conn: &mut PgConnection, id: TenantId) -> QueryResult<()> {
    diesel::insert_into(tenants::table)
        .values((
            tenants::id.eq(id.as_uuid()),
            tenants::status.eq(TenantStatus::Pending.as_str()),
        ))
        .on_conflict(tenants::id)
        .do_nothing()
        .execute(conn)?;
    Ok(())
}

/// The tenant row, if any.
pub(crate) fn find_tenant(
    conn: &mut PgConnection,
    id: TenantId,
) -> Result<Option<Tenant>, DbError> {
    let row = tenants::table
        .find(id.as_uuid())
        .select(TenantRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(Tenant::try_from).transpose()?)
}

#[async_trait]
impl TenantRepository for PgStore {
    #[tracing::instrument(skip_all, fields(tenant.id = %id))]
    async fn get(&self, id: TenantId) -> Result<Option<Tenant>, RepoError> {
        self.run(move |conn| find_tenant(conn, id)).await
    }

    #[tracing::instrument(skip_all, fields(tenant.id = %id))]
    async fn ensure(&self, id: TenantId) -> Result<Tenant, RepoError> {
        self.run(move |conn| {
            insert_pending_tenant(conn, id)?;
            find_tenant(conn, id)?.ok_or_else(|| {
                // Tenants are never deleted, so the row we just made or met is there.
                DbError::from(InvalidRow::new(TABLE, "tenant vanished after insert"))
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(stripe.customer = %customer))]
    async fn find_by_customer(&self, customer: &CustomerRef) -> Result<Option<Tenant>, RepoError> {
        let customer = customer.as_str().to_owned();
        self.run(move |conn| {
            let row = tenants::table
                .filter(tenants::stripe_customer_id.eq(customer))
                .select(TenantRow::as_select())
                .first(conn)
                .optional()?;
            Ok(row.map(Tenant::try_from).transpose()?)
        })
        .await
    }
}
