//! The `deleted_customers` table: Stripe customers a `customer.deleted` event removed, so
//! that an event still naming one (sent before the deletion and delivered after it) never
//! records it on a tenant again.

use billing_domain::CustomerRef;
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::schema::deleted_customers;

/// Remembers that `customer` was deleted (once; a redelivery changes nothing).
pub(crate) fn record(
    conn: &mut PgConnection,
    customer: &CustomerRef,
    at: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::insert_into(deleted_customers::table)
        .values((
            deleted_customers::stripe_customer_id.eq(customer.as_str()),
            deleted_customers::deleted_at.eq(at),
        ))
        .on_conflict_do_nothing()
        .execute(conn)?;
    Ok(())
}

/// Whether `customer` was deleted.
pub(crate) fn was_deleted(conn: &mut PgConnection, customer: &CustomerRef) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        deleted_customers::table.find(customer.as_str()),
    ))
    .get_result(conn)
}
