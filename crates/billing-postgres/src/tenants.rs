//! [`TenantRepository`] over the `tenants` table.

use async_trait::async_trait;
use billing_domain::ports::{RepoError, TenantRepository};
use billing_domain::{CustomerRef, Tenant, TenantId, TenantStatus};
use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types;
use uuid::Uuid;

use crate::error::{DbError, InvalidRow};
use crate::rows::{parse_enum, parse_opt};
use crate::schema::tenants;
use crate::statement::prepared_statement;
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

/// The tenant, inserted as `pending` unless it exists ([`EnsureTenant`]), in the webhook
/// transaction.
pub(crate) fn ensure_tenant_locked(
    conn: &mut PgConnection,
    id: TenantId,
) -> Result<Tenant, DbError> {
    let row = EnsureTenant { id: id.as_uuid() }
        .get_result::<TenantRow>(conn)
        .optional()?;
    if let Some(row) = row {
        return Ok(Tenant::try_from(row)?);
    }
    // Inserted concurrently after our snapshot (we waited for it): a new statement
    // sees it.
    find_tenant(conn, id)?
        .ok_or_else(|| InvalidRow::new(TABLE, format!("tenant {id} vanished after insert")).into())
}

/// The tenant, its row locked to the end of the transaction.
pub(crate) fn lock_tenant(
    conn: &mut PgConnection,
    id: TenantId,
) -> Result<Option<Tenant>, DbError> {
    let row = tenants::table
        .find(id.as_uuid())
        .select(TenantRow::as_select())
        .for_update()
        .get_result(conn)
        .optional()?;
    Ok(row.map(Tenant::try_from).transpose()?)
}

/// The tenant of a Stripe customer, in the webhook transaction.
pub(crate) fn tenant_by_customer(
    conn: &mut PgConnection,
    customer: &CustomerRef,
) -> Result<Option<Tenant>, DbError> {
    let row = tenants::table
        .filter(tenants::stripe_customer_id.eq(customer.as_str()))
        .select(TenantRow::as_select())
        .get_result(conn)
        .optional()?;
    Ok(row.map(Tenant::try_from).transpose()?)
}

/// Writes the tenant's status and customer ([`UpdateTenant`]).
pub(crate) fn save_tenant(conn: &mut PgConnection, tenant: &Tenant) -> QueryResult<()> {
    UpdateTenant {
        id: tenant.id.as_uuid(),
        status: tenant.status.as_str(),
        customer: tenant.customer.as_ref().map(CustomerRef::as_str),
        updated_at: tenant.updated_at,
    }
    .execute(conn)?;
    Ok(())
}
