//! Hand-written SQL statements that diesel still prepares once per connection.
//!
//! `diesel::sql_query` and `diesel::dsl::sql` mark their statements as not cacheable, so
//! PostgreSQL would parse and plan them on every call. The few statements the query
//! builder cannot express (a data-modifying CTE, `UPDATE … WHERE id IN (… SKIP LOCKED)`)
//! are therefore small structs implementing `QueryFragment` by hand, with a static
//! [`QueryId`](diesel::query_builder::QueryId): diesel then keys its prepared-statement
//! cache on the type, as it does for its own queries.
//!
//! In `walk_ast`, each bind is pushed where its parameter first appears (diesel numbers
//! them `$1`, `$2`, … in push order); a later use of the same value repeats its `$n` as
//! plain SQL text, so the value travels once.

/// Implements `QueryId` (static, keyed on the type), `Query` with the given SQL type and
/// `RunQueryDsl` for a hand-written statement struct with one lifetime parameter.
macro_rules! prepared_statement {
    ($name:ident, $sql_type:ty) => {
        impl diesel::query_builder::QueryId for $name<'_> {
            type QueryId = $name<'static>;
            const HAS_STATIC_QUERY_ID: bool = true;
        }

        impl diesel::query_builder::Query for $name<'_> {
            type SqlType = $sql_type;
        }

        impl<Conn> diesel::query_dsl::RunQueryDsl<Conn> for $name<'_> {}
    };
}

pub(crate) use prepared_statement;

/// Pushes bind parameters separated by commas, in order (`$n` numbering follows):
/// `push_binds!(out, Text => &self.status, Int8 => &self.amount)`.
macro_rules! push_binds {
    ($out:ident, $first_type:ty => $first:expr $(, $sql_type:ty => $value:expr)* $(,)?) => {
        $out.push_bind_param::<$first_type, _>($first)?;
        $(
            $out.push_sql(", ");
            $out.push_bind_param::<$sql_type, _>($value)?;
        )*
    };
}

pub(crate) use push_binds;

/// `EXPLAIN <query>`: PostgreSQL's plan of a statement, one text row per line, run with
/// the statement's own parameters (tests check that hot reads use their indexes).
#[cfg(any(test, feature = "testing"))]
pub(crate) struct Explain<Q>(pub Q);

#[cfg(any(test, feature = "testing"))]
impl<Q: diesel::query_builder::QueryFragment<diesel::pg::Pg>>
    diesel::query_builder::QueryFragment<diesel::pg::Pg> for Explain<Q>
{
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> diesel::QueryResult<()> {
        out.push_sql("EXPLAIN ");
        self.0.walk_ast(out.reborrow())
    }
}

#[cfg(any(test, feature = "testing"))]
impl<Q> diesel::query_builder::QueryId for Explain<Q> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

#[cfg(any(test, feature = "testing"))]
impl<Q> diesel::query_builder::Query for Explain<Q> {
    type SqlType = diesel::sql_types::Text;
}

#[cfg(any(test, feature = "testing"))]
impl<Q, Conn> diesel::query_dsl::RunQueryDsl<Conn> for Explain<Q> {}
