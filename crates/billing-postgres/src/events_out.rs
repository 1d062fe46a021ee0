//! Billing events out (issue 16): the write side run by the webhook transaction
//! ([`append`], behind `append_billing_event`) and the [`BillingEventOutbox`] port.
//!
//! # Tables
//! * `billing_event_counters`: one row per tenant, its last sequence. Appending upserts it
//!   (`… ON CONFLICT DO UPDATE SET last_sequence = last_sequence + 1 RETURNING`), which
//!   locks it until the transaction ends: two transactions of one tenant take their
//!   numbers one after the other and commit in that order, and a rollback gives its
//!   number back. Sequences have no gaps.
//! * `billing_events`: the event, with its body **rendered once** by the format the
//!   composition root hands in (`billing_notifier::render_billing_event`), for the same
//!   reasons as the notification outbox (see [`crate::outbox`]).
//! * `billing_event_deliveries`: one row per (event, subscriber) for the subscribers
//!   configured when the event is made (a subscriber added later gets new events only).
//!
//! # Claiming a chain's head
//! A (subscriber, tenant) chain's head is its lowest sequence not yet delivered; only a
//! pending head that is due is claimed, and claiming moves its `next_attempt_at` to the
//! end of a lease. A dead head is not claimed and holds its chain: later events wait, so
//! the subscriber never sees a gap it cannot notice. Under READ COMMITTED, a claim that
//! races another re-checks the row after the other's commit (`status = 'pending' AND
//! next_attempt_at <= now`) and skips it: one chain is never sent twice at once.

use async_trait::async_trait;
use billing_domain::events_out::{
    BillingEventOutbox, ClaimedDelivery, DeliveryStatus, NewBillingEvent, OutboxEntry,
    RetryOutcome, SubscriberBacklog,
};
use billing_domain::page::{Cursor, Page, PageRequest};
use billing_domain::ports::RepoError;
use billing_domain::{BillingDeliveryId, BillingEventId, TenantId};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

use crate::outbox::truncated;
use crate::store::PgStore;

/// Renders a billing event's body, given its sequence (the receivers' format, owned by
/// the notifier adapter).
pub type BillingEventFormat =
    fn(&NewBillingEvent, u64) -> Result<String, Box<dyn std::error::Error + Send + Sync + 'static>>;

/// How the webhook transaction appends billing events: their format and the subscribers
/// that get a delivery of each.
#[derive(Clone)]
pub struct EventsOutSetup {
    /// The body's format.
    pub format: BillingEventFormat,
    /// Subscriber keys (URLs without credentials or query), one delivery each.
    pub subscribers: std::sync::Arc<[String]>,
}

#[derive(QueryableByName)]
struct Sequence {
    #[diesel(sql_type = BigInt)]
    last_sequence: i64,
}

/// Appends `event` in the caller's transaction: takes the tenant's next sequence, stores
/// the event with its body and queues one delivery per subscriber. Without a setup, the
/// event is numbered and kept without a body or deliveries.
pub(crate) fn append(
    conn: &mut PgConnection,
    setup: Option<&EventsOutSetup>,
    event: &NewBillingEvent,
) -> Result<u64, crate::error::DbError> {
    let seq: Sequence = diesel::sql_query(
        "INSERT INTO billing_event_counters (tenant_id, last_sequence) VALUES ($1, 1) \
         ON CONFLICT (tenant_id) DO UPDATE \
         SET last_sequence = billing_event_counters.last_sequence + 1 \
         RETURNING last_sequence",
    )
    .bind::<SqlUuid, _>(event.tenant.as_uuid())
    .get_result(conn)?;
    let sequence = u64::try_from(seq.last_sequence).unwrap_or(0);
    let payload = match setup {
        Some(s) => (s.format)(event, sequence).map_err(RepoError::Unexpected)?,
        None => String::new(),
    };
    diesel::sql_query(
        "INSERT INTO billing_events (id, tenant_id, sequence, kind, created_at, payload) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind::<SqlUuid, _>(event.id.as_uuid())
    .bind::<SqlUuid, _>(event.tenant.as_uuid())
    .bind::<BigInt, _>(seq.last_sequence)
    .bind::<Text, _>(event.kind)
    .bind::<Timestamptz, _>(event.created_at)
    .bind::<Text, _>(&payload)
    .execute(conn)?;
    for subscriber in setup.map(|s| &s.subscribers[..]).unwrap_or_default() {
        diesel::sql_query(
            "INSERT INTO billing_event_deliveries \
             (id, event_id, subscriber, tenant_id, sequence, kind, created_at, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
        )
        .bind::<SqlUuid, _>(Uuid::new_v4())
        .bind::<SqlUuid, _>(event.id.as_uuid())
        .bind::<Text, _>(subscriber)
        .bind::<SqlUuid, _>(event.tenant.as_uuid())
        .bind::<BigInt, _>(seq.last_sequence)
        .bind::<Text, _>(event.kind)
        .bind::<Timestamptz, _>(event.created_at)
        .execute(conn)?;
    }
    Ok(sequence)
}

#[derive(QueryableByName)]
struct ClaimRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    event_id: Uuid,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = SqlUuid)]
    tenant_id: Uuid,
    #[diesel(sql_type = BigInt)]
    sequence: i64,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Text)]
    payload: String,
}

#[derive(QueryableByName)]
struct EntryRow {
    #[diesel(sql_type = SqlUuid)]
    id: Uuid,
    #[diesel(sql_type = SqlUuid)]
    event_id: Uuid,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = SqlUuid)]
    tenant_id: Uuid,
    #[diesel(sql_type = BigInt)]
    sequence: i64,
    #[diesel(sql_type = Text)]
    subscriber: String,
    #[diesel(sql_type = Text)]
    status: String,
    #[diesel(sql_type = Integer)]
    attempts: i32,
    #[diesel(sql_type = Timestamptz)]
    next_attempt_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Text>)]
    last_error: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    delivered_at: Option<DateTime<Utc>>,
}

impl EntryRow {
    fn into_entry(self) -> Result<OutboxEntry, RepoError> {
        Ok(OutboxEntry {
            id: BillingDeliveryId::from_uuid(self.id),
            event_id: BillingEventId::from_uuid(self.event_id),
            kind: self.kind,
            tenant: TenantId::from_uuid(self.tenant_id),
            sequence: u64::try_from(self.sequence).unwrap_or(0),
            subscriber: self.subscriber,
            status: DeliveryStatus::parse(&self.status).ok_or_else(|| {
                RepoError::Unexpected(format!("unknown delivery status {}", self.status).into())
            })?,
            attempts: u32::try_from(self.attempts).unwrap_or(0),
            next_attempt_at: self.next_attempt_at,
            last_error: self.last_error,
            created_at: self.created_at,
            delivered_at: self.delivered_at,
        })
    }
}

#[derive(QueryableByName)]
struct BacklogRow {
    #[diesel(sql_type = Text)]
    subscriber: String,
    #[diesel(sql_type = BigInt)]
    waiting: i64,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    oldest: Option<DateTime<Utc>>,
}

#[derive(QueryableByName)]
struct StatusRow {
    #[diesel(sql_type = Text)]
    status: String,
}

const ENTRY_COLUMNS: &str = "id, event_id, kind, tenant_id, sequence, subscriber, status, \
                             attempts, next_attempt_at, last_error, created_at, delivered_at";

#[async_trait]
impl BillingEventOutbox for PgStore {
    #[tracing::instrument(skip_all, fields(limit))]
    async fn claim_heads(
        &self,
        subscriber: &str,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ClaimedDelivery>, RepoError> {
        let subscriber = subscriber.to_owned();
        self.run(move |conn| {
            let rows: Vec<ClaimRow> = diesel::sql_query(
                "UPDATE billing_event_deliveries d SET next_attempt_at = $1 \
                 FROM billing_events e \
                 WHERE e.id = d.event_id \
                   AND d.id IN ( \
                     SELECT h.id FROM ( \
                       SELECT DISTINCT ON (tenant_id) id, status, next_attempt_at \
                       FROM billing_event_deliveries \
                       WHERE subscriber = $2 AND status <> 'delivered' \
                       ORDER BY tenant_id, sequence) h \
                     WHERE h.status = 'pending' AND h.next_attempt_at <= $3 \
                     ORDER BY h.next_attempt_at LIMIT $4) \
                   AND d.status = 'pending' AND d.next_attempt_at <= $3 \
                 RETURNING d.id, d.event_id, d.kind, d.tenant_id, d.sequence, d.attempts, \
                           e.payload",
            )
            .bind::<Timestamptz, _>(lease_until)
            .bind::<Text, _>(&subscriber)
            .bind::<Timestamptz, _>(now)
            .bind::<BigInt, _>(i64::from(limit))
            .load(conn)?;
            Ok(rows
                .into_iter()
                .map(|r| ClaimedDelivery {
                    id: BillingDeliveryId::from_uuid(r.id),
                    event_id: BillingEventId::from_uuid(r.event_id),
                    kind: r.kind,
                    tenant: TenantId::from_uuid(r.tenant_id),
                    sequence: u64::try_from(r.sequence).unwrap_or(0),
                    body: r.payload,
                    attempts: u32::try_from(r.attempts).unwrap_or(0),
                })
                .collect())
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(delivery.id = %id))]
    async fn mark_delivered(
        &self,
        id: BillingDeliveryId,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        self.run(move |conn| {
            diesel::sql_query(
                "UPDATE billing_event_deliveries SET status = 'delivered', delivered_at = $2 \
                 WHERE id = $1 AND status = 'pending'",
            )
            .bind::<SqlUuid, _>(id.as_uuid())
            .bind::<Timestamptz, _>(at)
            .execute(conn)?;
            Ok(())
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(delivery.id = %id, attempts))]
    async fn mark_failed(
        &self,
        id: BillingDeliveryId,
        attempts: u32,
        retry_at: Option<DateTime<Utc>>,
        error: String,
    ) -> Result<(), RepoError> {
        let attempts = i32::try_from(attempts).unwrap_or(i32::MAX);
        self.run(move |conn| {
            diesel::sql_query(
                "UPDATE billing_event_deliveries \
                 SET attempts = $2, last_error = $3, \
                     next_attempt_at = COALESCE($4, next_attempt_at), \
                     status = CASE WHEN $4 IS NULL THEN 'dead' ELSE 'pending' END \
                 WHERE id = $1 AND status = 'pending'",
            )
            .bind::<SqlUuid, _>(id.as_uuid())
            .bind::<Integer, _>(attempts)
            .bind::<Text, _>(truncated(&error))
            .bind::<Nullable<Timestamptz>, _>(retry_at)
            .execute(conn)?;
            Ok(())
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn backlogs(&self) -> Result<Vec<SubscriberBacklog>, RepoError> {
        self.run(|conn| {
            let rows: Vec<BacklogRow> = diesel::sql_query(
                "SELECT subscriber, count(*) AS waiting, min(created_at) AS oldest \
                 FROM billing_event_deliveries WHERE status <> 'delivered' \
                 GROUP BY subscriber",
            )
            .load(conn)?;
            Ok(rows
                .into_iter()
                .map(|r| SubscriberBacklog {
                    subscriber: r.subscriber,
                    waiting: u64::try_from(r.waiting).unwrap_or(0),
                    oldest: r.oldest,
                })
                .collect())
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn list_entries(
        &self,
        status: Option<DeliveryStatus>,
        page: PageRequest,
    ) -> Result<Page<OutboxEntry>, RepoError> {
        self.run(move |conn| {
            let limit = page.limit;
            let (after_at, after_id) = match &page.after {
                Some(c) => (
                    Some(c.at),
                    Some(Uuid::parse_str(&c.id).map_err(|_| {
                        RepoError::Unexpected("cursor names no outbox entry".into())
                    })?),
                ),
                None => (None, None),
            };
            let rows: Vec<EntryRow> = diesel::sql_query(format!(
                "SELECT {ENTRY_COLUMNS} FROM billing_event_deliveries \
                 WHERE ($1::text IS NULL OR status = $1) \
                   AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3)) \
                 ORDER BY created_at DESC, id DESC LIMIT $4"
            ))
            .bind::<Nullable<Text>, _>(status.map(DeliveryStatus::as_str))
            .bind::<Nullable<Timestamptz>, _>(after_at)
            .bind::<Nullable<SqlUuid>, _>(after_id)
            .bind::<BigInt, _>(i64::from(limit.get()) + 1)
            .load(conn)?;
            let entries = rows
                .into_iter()
                .map(EntryRow::into_entry)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Page::from_overfetch(entries, limit, |e| Cursor {
                at: e.created_at,
                id: e.id.to_string(),
            }))
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(delivery.id = %id))]
    async fn retry_entry(
        &self,
        id: BillingDeliveryId,
        now: DateTime<Utc>,
    ) -> Result<RetryOutcome, RepoError> {
        self.run(move |conn| {
            let retried = diesel::sql_query(
                "UPDATE billing_event_deliveries \
                 SET status = 'pending', attempts = 0, next_attempt_at = $2 \
                 WHERE id = $1 AND status = 'dead'",
            )
            .bind::<SqlUuid, _>(id.as_uuid())
            .bind::<Timestamptz, _>(now)
            .execute(conn)?;
            if retried == 1 {
                return Ok(RetryOutcome::Retried);
            }
            let found: Option<StatusRow> =
                diesel::sql_query("SELECT status FROM billing_event_deliveries WHERE id = $1")
                    .bind::<SqlUuid, _>(id.as_uuid())
                    .get_result(conn)
                    .optional()?;
            Ok(match found {
                None => RetryOutcome::NotFound,
                Some(row) => {
                    tracing::debug!(status = %row.status, "only a dead delivery is retried");
                    RetryOutcome::NotDead
                }
            })
        })
        .await
    }
}
