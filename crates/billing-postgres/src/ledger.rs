//! [`LedgerRepository`] (read side of the webhook event ledger) over `webhook_events`.

use async_trait::async_trait;
use billing_domain::page::{Cursor, Page, PageRequest};
use billing_domain::ports::{Applied, LedgerRepository, NewLedgerEntry, RepoError};
use billing_domain::{CustomerRef, EventId, EventOutcome, LedgerEntry, LedgerQuery};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::error::{DbError, InvalidRow};
use crate::rows::{before_cursor, overfetch, page_of, parse, parse_enum};
use crate::schema::webhook_events;
use crate::store::PgStore;

const TABLE: &str = "webhook_events";

/// A `webhook_events` row.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = webhook_events, check_for_backend(diesel::pg::Pg))]
pub(crate) struct LedgerRow {
    event_id: String,
    type_: String,
    created: DateTime<Utc>,
    api_version: Option<String>,
    received_at: DateTime<Utc>,
    processed_at: Option<DateTime<Utc>>,
    outcome: String,
    detail: Option<String>,
    payload: String,
}

impl TryFrom<LedgerRow> for LedgerEntry {
    type Error = InvalidRow;

    fn try_from(row: LedgerRow) -> Result<Self, Self::Error> {
        let outcome = parse_enum(TABLE, "outcome", &row.outcome, EventOutcome::parse)?;
        if outcome == EventOutcome::Duplicate {
            return Err(InvalidRow::new(TABLE, "outcome: duplicate is never stored"));
        }
        Ok(LedgerEntry {
            event_id: parse(TABLE, "event_id", row.event_id, EventId::parse)?,
            kind: row.type_,
            created: row.created,
            api_version: row.api_version,
            received_at: row.received_at,
            processed_at: row.processed_at,
            outcome,
            detail: row.detail,
            payload: row.payload,
        })
    }
}

fn cursor_of(entry: &LedgerEntry) -> Cursor {
    Cursor {
        at: entry.received_at,
        id: entry.event_id.as_str().to_owned(),
    }
}

#[async_trait]
impl LedgerRepository for PgStore {
    #[tracing::instrument(skip_all, fields(limit = page.limit.get()))]
    async fn list(
        &self,
        query: LedgerQuery,
        page: PageRequest,
    ) -> Result<Page<LedgerEntry>, RepoError> {
        self.run(move |conn| {
            let mut q = webhook_events::table
                .select(LedgerRow::as_select())
                .order((
                    webhook_events::received_at.desc(),
                    webhook_events::event_id.desc(),
                ))
                .limit(overfetch(page.limit))
                .into_boxed();
            if let Some(outcome) = query.outcome {
                q = q.filter(webhook_events::outcome.eq(outcome.as_str()));
            }
            if let Some(kind) = query.kind {
                q = q.filter(webhook_events::type_.eq(kind));
            }
            if let Some(cursor) = page.after.clone() {
                q = q.filter(before_cursor(
                    "webhook_events.received_at, webhook_events.event_id",
                    "text",
                    cursor.at,
                    cursor.id,
                ));
            }
            Ok(page_of(q.load(conn)?, page.limit, cursor_of)?)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(stripe.event_id = %id))]
    async fn get(&self, id: &EventId) -> Result<Option<LedgerEntry>, RepoError> {
        let id = id.as_str().to_owned();
        self.run(move |conn| {
            let row = webhook_events::table
                .find(id)
                .select(LedgerRow::as_select())
                .first(conn)
                .optional()?;
            Ok(row.map(LedgerEntry::try_from).transpose()?)
        })
        .await
    }

    async fn unmatched_for_customer(
        &self,
        customer: &CustomerRef,
        limit: u32,
    ) -> Result<Vec<LedgerEntry>, RepoError> {
        let customer = customer.as_str().to_owned();
        self.run(move |conn| {
            // The outcome index narrows the scan to the unmatched rows (few, in a healthy
            // service); only those payloads are parsed.
            let rows = webhook_events::table
                .filter(webhook_events::outcome.eq(EventOutcome::Unmatched.as_str()))
                .filter(
                    diesel::dsl::sql::<diesel::sql_types::Bool>(
                        "(payload::jsonb #>> '{data,object,customer}') = ",
                    )
                    .bind::<diesel::sql_types::Text, _>(customer),
                )
                .order((
                    webhook_events::created.asc(),
                    webhook_events::event_id.asc(),
                ))
                .limit(i64::from(limit))
                .select(LedgerRow::as_select())
                .load(conn)?;
            Ok(rows
                .into_iter()
                .map(LedgerEntry::try_from)
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}

/// A new `webhook_events` row, borrowed from the entry.
#[derive(Insertable)]
#[diesel(table_name = webhook_events, treat_none_as_default_value = false)]
struct NewEventRow<'a> {
    event_id: &'a str,
    type_: &'a str,
    created: DateTime<Utc>,
    api_version: Option<&'a str>,
    livemode: bool,
    received_at: DateTime<Utc>,
    processed_at: Option<DateTime<Utc>>,
    outcome: &'static str,
    payload: &'a str,
    source: &'static str,
}

/// Records the event unless the ledger holds it: `true` when it was new (the webhook
/// transaction's first statement).
pub(crate) fn insert_event(conn: &mut PgConnection, entry: &NewLedgerEntry) -> QueryResult<bool> {
    let row = NewEventRow {
        event_id: entry.event_id.as_str(),
        type_: &entry.kind,
        created: entry.created,
        api_version: entry.api_version.as_deref(),
        livemode: entry.livemode,
        received_at: entry.received_at,
        processed_at: Some(entry.received_at),
        outcome: entry.outcome.as_str(),
        payload: &entry.payload,
        source: entry.source.as_str(),
    };
    let inserted = diesel::insert_into(webhook_events::table)
        .values(&row)
        .on_conflict(webhook_events::event_id)
        .do_nothing()
        .execute(conn)?;
    Ok(inserted == 1)
}

/// The event's stored outcome, its row locked to the end of the transaction.
pub(crate) fn lock_event(
    conn: &mut PgConnection,
    id: &EventId,
) -> Result<Option<EventOutcome>, DbError> {
    let stored = webhook_events::table
        .find(id.as_str())
        .select(webhook_events::outcome)
        .for_update()
        .get_result::<String>(conn)
        .optional()?;
    let Some(stored) = stored else {
        return Ok(None);
    };
    EventOutcome::parse(&stored)
        .map(Some)
        .ok_or_else(|| InvalidRow::new(TABLE, format!("outcome: unknown value {stored:?}")).into())
}

/// Records how the event was applied.
pub(crate) fn set_event_outcome(
    conn: &mut PgConnection,
    id: &EventId,
    applied: &Applied,
    at: DateTime<Utc>,
) -> Result<(), DbError> {
    let updated = diesel::update(webhook_events::table.find(id.as_str()))
        .set((
            webhook_events::outcome.eq(applied.outcome.as_str()),
            webhook_events::detail.eq(applied.detail.as_deref()),
            webhook_events::processed_at.eq(at),
        ))
        .execute(conn)?;
    if updated == 0 {
        return Err(InvalidRow::new(TABLE, format!("no row for event {id}")).into());
    }
    Ok(())
}
