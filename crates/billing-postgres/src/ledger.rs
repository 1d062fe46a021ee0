//! [`LedgerRepository`] (read side of the webhook event ledger) over `webhook_events`.

use async_trait::async_trait;
use billing_domain::page::{Cursor, Page, PageRequest};
use billing_domain::ports::{LedgerRepository, RepoError};
use billing_domain::{EventId, EventOutcome, LedgerEntry, LedgerQuery};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::error::InvalidRow;
use crate::rows::{before_cursor, overfetch, parse, parse_enum};
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
            let rows = q
                .load(conn)?
                .into_iter()
                .map(LedgerEntry::try_from)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page::from_overfetch(rows, page.limit, cursor_of))
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
}
