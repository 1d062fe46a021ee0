//! Helpers shared by the row conversions and list queries.
//!
//! Every `TryFrom<…Row>` re-runs the domain's validation, so a row the domain would never
//! have written (a manual edit, a bug) becomes [`RepoError::Unexpected`] instead of a panic
//! or a silently wrong value.
//!
//! [`RepoError::Unexpected`]: billing_domain::ports::RepoError::Unexpected

use billing_domain::page::{Cursor, PageLimit};
use billing_domain::{Currency, Money};
use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::expression::SqlLiteral;
use diesel::pg::Pg;
use diesel::query_builder::QueryFragment;
use diesel::sql_types::{Bool, Text, Timestamptz};

use crate::error::InvalidRow;

/// An amount and currency as stored.
pub(crate) fn money(table: &'static str, minor: i64, currency: &str) -> Result<Money, InvalidRow> {
    let currency =
        Currency::parse(currency).map_err(|e| InvalidRow::new(table, format!("currency: {e}")))?;
    Money::new(minor, currency).map_err(|e| InvalidRow::new(table, format!("amount: {e}")))
}

/// A required value parsed with the domain's constructor.
pub(crate) fn parse<T, E: std::fmt::Display>(
    table: &'static str,
    field: &'static str,
    value: String,
    f: impl FnOnce(String) -> Result<T, E>,
) -> Result<T, InvalidRow> {
    f(value).map_err(|e| InvalidRow::new(table, format!("{field}: {e}")))
}

/// An optional value parsed with the domain's constructor.
pub(crate) fn parse_opt<T, E: std::fmt::Display>(
    table: &'static str,
    field: &'static str,
    value: Option<String>,
    f: impl FnOnce(String) -> Result<T, E>,
) -> Result<Option<T>, InvalidRow> {
    value.map(|v| parse(table, field, v, f)).transpose()
}

/// An enum stored as text.
pub(crate) fn parse_enum<T>(
    table: &'static str,
    field: &'static str,
    value: &str,
    f: impl FnOnce(&str) -> Option<T>,
) -> Result<T, InvalidRow> {
    f(value).ok_or_else(|| InvalidRow::new(table, format!("{field}: unknown value {value:?}")))
}

/// How many rows to read for a page: one more than asked, to learn whether another
/// page follows ([`billing_domain::Page::from_overfetch`]).
pub(crate) fn overfetch(limit: PageLimit) -> i64 {
    i64::from(limit.get()) + 1
}

/// The keyset predicate `(at_column, id_column) < (cursor.at, cursor.id)`: rows older than
/// the cursor in `(at desc, id desc)` order. Written as a row comparison (not an `OR`)
/// so that PostgreSQL seeks straight to the cursor in the matching index.
///
/// `columns` is a literal such as `"invoices.created_at, invoices.id"`; `id_type` the SQL
/// type the cursor id is cast to (`uuid` or `text`). The id travels as a bind parameter.
pub(crate) fn before_cursor(
    columns: &'static str,
    id_type: &'static str,
    at: DateTime<Utc>,
    id: String,
) -> SqlLiteral<Bool, impl QueryFragment<Pg> + Send + 'static> {
    sql::<Bool>("(")
        .sql(columns)
        .sql(") < (")
        .bind::<Timestamptz, _>(at)
        .sql(", CAST(")
        .bind::<Text, _>(id)
        .sql(" AS ")
        .sql(id_type)
        .sql("))")
}

/// The cursor id as a UUID, when the table's ids are UUIDs. A cursor whose id is not one
/// was not issued for this list.
pub(crate) fn uuid_cursor(cursor: &Cursor) -> Option<uuid::Uuid> {
    uuid::Uuid::parse_str(&cursor.id).ok()
}
