//! The lease both queues are claimed with: the outbox's `notifications`
//! ([`crate::outbox`]) and the PaymentIntent lookups kept on `invoices`
//! ([`crate::lookups`]). One statement picks due rows with `FOR UPDATE SKIP LOCKED` (two
//! workers never take the same row) and moves their due time to the end of the lease (a
//! crashed worker's rows come back then):
//!
//! ```sql
//! UPDATE <table> SET <due> = $1
//! WHERE id IN (SELECT id FROM <table> WHERE <due> <= $2 <and also>
//!              ORDER BY <due> LIMIT $3 FOR UPDATE SKIP LOCKED)
//! RETURNING <columns>
//! ```
//!
//! and its backlog is `SELECT count(*) FROM <table> WHERE <waiting>`.

use std::marker::PhantomData;

use chrono::{DateTime, Utc};
use diesel::pg::{Pg, PgConnection};
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::{LoadQuery, RunQueryDsl};
use diesel::sql_types::{BigInt, Timestamptz};
use diesel::QueryResult;

/// A queue kept in a table whose rows are due at a time, and leased by moving it.
pub(crate) trait LeasedQueue: 'static {
    /// The table.
    const TABLE: &'static str;
    /// The column holding when a row is due, and, once claimed, when its lease ends.
    const DUE: &'static str;
    /// What else makes a row a member of the queue, as ` AND …` SQL (or empty).
    const ALSO: &'static str;
    /// Which rows wait in the queue, as SQL: what its backlog counts.
    const WAITING: &'static str;
    /// The columns a claim returns.
    const RETURNING: &'static str;
    /// Their SQL types.
    type Columns: diesel::sql_types::SqlType;
}

/// The claim statement of queue `Q` (see the module docs); prepared once per connection
/// and queue, keyed on the type.
pub(crate) struct ClaimLeased<'a, Q> {
    lease_until: &'a DateTime<Utc>,
    now: &'a DateTime<Utc>,
    limit: i64,
    queue: PhantomData<fn() -> Q>,
}

impl<Q: LeasedQueue> QueryId for ClaimLeased<'_, Q> {
    type QueryId = ClaimLeased<'static, Q>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<Q: LeasedQueue> Query for ClaimLeased<'_, Q> {
    type SqlType = Q::Columns;
}

impl<Q, Conn> RunQueryDsl<Conn> for ClaimLeased<'_, Q> {}

impl<Q: LeasedQueue> QueryFragment<Pg> for ClaimLeased<'_, Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(&format!("UPDATE {} SET {} = ", Q::TABLE, Q::DUE));
        out.push_bind_param::<Timestamptz, _>(self.lease_until)?;
        out.push_sql(&format!(
            " WHERE id IN (SELECT id FROM {} WHERE {} <= ",
            Q::TABLE,
            Q::DUE
        ));
        out.push_bind_param::<Timestamptz, _>(self.now)?;
        out.push_sql(&format!("{} ORDER BY {} LIMIT ", Q::ALSO, Q::DUE));
        out.push_bind_param::<BigInt, _>(&self.limit)?;
        out.push_sql(&format!(
            " FOR UPDATE SKIP LOCKED) RETURNING {}",
            Q::RETURNING
        ));
        Ok(())
    }
}

/// Claims up to `limit` rows of queue `Q` due at `now`, leased until `lease_until`.
pub(crate) fn claim<Q, Row>(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u32,
) -> QueryResult<Vec<Row>>
where
    Q: LeasedQueue,
    for<'a> ClaimLeased<'a, Q>: LoadQuery<'a, PgConnection, Row>,
{
    ClaimLeased::<Q> {
        lease_until: &lease_until,
        now: &now,
        limit: i64::from(limit),
        queue: PhantomData,
    }
    .load::<Row>(conn)
}

/// The backlog statement of queue `Q` (see the module docs).
pub(crate) struct Backlog<Q>(PhantomData<fn() -> Q>);

impl<Q: LeasedQueue> QueryId for Backlog<Q> {
    type QueryId = Backlog<Q>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<Q: LeasedQueue> Query for Backlog<Q> {
    type SqlType = BigInt;
}

impl<Q, Conn> RunQueryDsl<Conn> for Backlog<Q> {}

impl<Q: LeasedQueue> QueryFragment<Pg> for Backlog<Q> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_sql(&format!(
            "SELECT count(*) FROM {} WHERE {}",
            Q::TABLE,
            Q::WAITING
        ));
        Ok(())
    }
}

/// How many rows wait in queue `Q`.
pub(crate) fn backlog<Q: LeasedQueue>(conn: &mut PgConnection) -> QueryResult<u64> {
    let waiting = Backlog::<Q>(PhantomData).get_result::<i64>(conn)?;
    Ok(u64::try_from(waiting).unwrap_or(0))
}
