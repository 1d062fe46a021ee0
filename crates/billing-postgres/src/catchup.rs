//! [`CatchupStore`]: the catch-up's one row in `catchup_state` (its watermark and its
//! lease) and which listed events the ledger holds.
//!
//! The lease is taken in one statement, an upsert whose update only happens when the row
//! is free, already ours, or its lease ran out:
//!
//! ```sql
//! INSERT INTO catchup_state (id, lease_holder, lease_until) VALUES (1, $holder, $until)
//! ON CONFLICT (id) DO UPDATE SET lease_holder = $holder, lease_until = $until
//! WHERE catchup_state.lease_holder IS NULL OR catchup_state.lease_holder = $holder
//!    OR catchup_state.lease_until <= $now
//! ```
//!
//! PostgreSQL locks the row for the conflict's update and evaluates the condition on its
//! newest version, so of several replicas asking at once exactly one gets a row back. A
//! replica that dies holds it until `lease_until`; then the next one takes it.

use async_trait::async_trait;
use billing_domain::ports::{CatchupStore, RepoError};
use billing_domain::EventId;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text, Timestamptz};

use crate::schema::webhook_events;
use crate::store::PgStore;

#[derive(QueryableByName)]
struct Holder {
    #[diesel(sql_type = Nullable<Text>)]
    #[allow(dead_code, reason = "read to count the rows returned")]
    lease_holder: Option<String>,
}

#[derive(QueryableByName)]
struct Watermark {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    watermark: Option<DateTime<Utc>>,
}

#[async_trait]
impl CatchupStore for PgStore {
    #[tracing::instrument(skip_all)]
    async fn try_lease(
        &self,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let holder = holder.to_owned();
        self.run(move |conn| {
            let rows: Vec<Holder> = diesel::sql_query(
                "INSERT INTO catchup_state (id, lease_holder, lease_until, updated_at) \
                 VALUES (1, $1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET lease_holder = $1, lease_until = $2, updated_at = $3 \
                 WHERE catchup_state.lease_holder IS NULL OR catchup_state.lease_holder = $1 \
                    OR catchup_state.lease_until <= $3 \
                 RETURNING lease_holder",
            )
            .bind::<Text, _>(holder)
            .bind::<Timestamptz, _>(until)
            .bind::<Timestamptz, _>(now)
            .load(conn)?;
            Ok(!rows.is_empty())
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn release_lease(&self, holder: &str) -> Result<(), RepoError> {
        let holder = holder.to_owned();
        self.run(move |conn| {
            diesel::sql_query(
                "UPDATE catchup_state SET lease_holder = NULL, lease_until = NULL, updated_at = now() \
                 WHERE id = 1 AND lease_holder = $1",
            )
            .bind::<Text, _>(holder)
            .execute(conn)?;
            Ok(())
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn watermark(&self) -> Result<Option<DateTime<Utc>>, RepoError> {
        self.run(move |conn| {
            let rows: Vec<Watermark> =
                diesel::sql_query("SELECT watermark FROM catchup_state WHERE id = 1").load(conn)?;
            Ok(rows.into_iter().next().and_then(|r| r.watermark))
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn set_watermark(&self, holder: &str, to: DateTime<Utc>) -> Result<bool, RepoError> {
        let holder = holder.to_owned();
        self.run(move |conn| {
            let updated = diesel::sql_query(
                "UPDATE catchup_state SET watermark = $2, updated_at = now() \
                 WHERE id = 1 AND lease_holder = $1",
            )
            .bind::<Text, _>(holder)
            .bind::<Timestamptz, _>(to)
            .execute(conn)?;
            Ok(updated == 1)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(asked = ids.len()))]
    async fn known_events(&self, ids: Vec<EventId>) -> Result<Vec<EventId>, RepoError> {
        self.run(move |conn| {
            let wanted: Vec<String> = ids.iter().map(|id| id.as_str().to_owned()).collect();
            let found: Vec<String> = webhook_events::table
                .filter(webhook_events::event_id.eq_any(wanted))
                .select(webhook_events::event_id)
                .load(conn)?;
            let found: std::collections::HashSet<String> = found.into_iter().collect();
            Ok(ids
                .into_iter()
                .filter(|id| found.contains(id.as_str()))
                .collect())
        })
        .await
    }
}
