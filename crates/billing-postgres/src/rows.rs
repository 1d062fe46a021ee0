//! Helpers shared by the row conversions and list queries.
//!
//! Every `TryFrom<…Row>` re-runs the domain's validation, so a row the domain would never
//! have written (a manual edit, a bug) becomes [`RepoError::Unexpected`] instead of a panic
//! or a silently wrong value.
//!
//! [`RepoError::Unexpected`]: billing_domain::ports::RepoError::Unexpected

use billing_domain::page::{Cursor, Page, PageLimit, PageRequest};
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

/// Where a page of a list keyed by UUIDs starts: `Some(None)` at the top, `Some(Some(..))`
/// after the cursor's time and id; `None` when the cursor's id is not a UUID, so that the
/// cursor was not issued for this list and nothing comes after it.
pub(crate) fn uuid_after(page: &PageRequest) -> Option<Option<(DateTime<Utc>, uuid::Uuid)>> {
    match &page.after {
        Some(cursor) => uuid::Uuid::parse_str(&cursor.id)
            .ok()
            .map(|id| Some((cursor.at, id))),
        None => Some(None),
    }
}

/// A page with nothing on it.
pub(crate) fn empty_page<T>() -> Page<T> {
    Page {
        items: Vec::new(),
        next: None,
    }
}

/// The page of `rows` read with [`overfetch`], each checked by its `TryFrom`.
pub(crate) fn page_of<R, T>(
    rows: Vec<R>,
    limit: PageLimit,
    key: impl Fn(&T) -> Cursor,
) -> Result<Page<T>, InvalidRow>
where
    T: TryFrom<R, Error = InvalidRow>,
{
    let items = rows
        .into_iter()
        .map(T::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page::from_overfetch(items, limit, key))
}
