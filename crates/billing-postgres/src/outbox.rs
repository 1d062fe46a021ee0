//! The `notifications` outbox: [`OutboxRepository`] (the dispatch side), and the write
//! side run by the webhook transaction ([`enqueue`], behind `enqueue_notification`).
//!
//! # What is stored
//! A row keeps the columns the queue itself works on (`kind`, `dedupe_key`, `tenant_id`,
//! `status`, `attempts`, `next_attempt_at`, `last_error`, `delivered_at`) and, in
//! `payload`, the document receivers get, **as rendered when the notification was
//! enqueued**. The document's format is not this crate's: it is the receivers' contract,
//! owned by the notifier adapter (`billing_notifier::document`), and the composition root
//! hands its renderer to the store ([`PgStore::with_notification_format`]). This crate
//! never reads or builds the document; it stores the text and gives it back.
//!
//! Why the rendered bytes rather than the notification's facts (columns, or a storage
//! document of our own that the notifier would render at delivery):
//! - every attempt of one notification sends the same bytes, also across a deploy that
//!   changes the format: receivers deduplicate on the id and see one body per id;
//! - a row written by one version is delivered as written by any other, so rows pending
//!   during an upgrade or a rolling deploy need no migration and no second reader;
//! - the dispatch path stays a plain read: no parsing, nothing that can fail between the
//!   claim and the POST.
//!
//! The price is that a format change applies to new notifications only, which is what
//! receivers of an at-least-once stream expect anyway.
//!
//! # Claiming
//! Claiming leases messages ([`crate::lease`]): one statement picks due pending rows with
//! `FOR UPDATE SKIP LOCKED` (two dispatchers never take the same row) and moves their
//! `next_attempt_at` to the end of the lease (a crashed dispatcher's messages come back
//! then). Messages stay `pending` while leased.
use async_trait::async_trait;
use billing_domain::notification::{NewNotification, NotificationBody};
use billing_domain::ports::{OutboxMessage, OutboxRepository, RepoError};
use billing_domain::NotificationId;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types;
use uuid::Uuid;

use crate::lease::{self, LeasedQueue};
use crate::schema::notifications;
use crate::store::PgStore;

/// Longest `last_error` kept, in characters.
pub(crate) const MAX_ERROR_CHARS: usize = 1000;

const PENDING: &str = "pending";

/// Renders a notification into the document its receivers get (the notifier's format):
/// what `payload` stores. See the module docs.
pub type NotificationFormat =
    fn(&NewNotification) -> Result<String, Box<dyn std::error::Error + Send + Sync + 'static>>;

/// A `notifications` row to insert; status, attempts and `next_attempt_at` take their
/// defaults (`pending`, 0, `now()`).
#[derive(Insertable)]
#[diesel(table_name = notifications, treat_none_as_default_value = false)]
struct NotificationWrite<'a> {
    id: Uuid,
    kind: &'static str,
    dedupe_key: &'a str,
    tenant_id: Option<Uuid>,
    payload: &'a str,
}

/// Puts a notification in the outbox unless one with its dedupe key is there: `true` when
/// it was new. `payload` is its rendered document.
pub(crate) fn enqueue(
    conn: &mut PgConnection,
    notification: &NewNotification,
    payload: &str,
) -> QueryResult<bool> {
    let tenant = match &notification.body {
        NotificationBody::InvoicePaymentFailed { tenant, .. } => *tenant.as_uuid(),
        // ---- the lifecycle beyond the seven (issue 14) ----
        NotificationBody::InvoicePaymentActionRequired { tenant, .. }
        | NotificationBody::SubscriptionTrialWillEnd { tenant, .. }
        | NotificationBody::CheckoutAsyncPaymentFailed { tenant, .. } => *tenant.as_uuid(),
        // ---- refunds and disputes (issue 14) ----
        NotificationBody::DisputeCreated { tenant, .. } => *tenant.as_uuid(),
    };
    let row = NotificationWrite {
        id: *notification.id.as_uuid(),
        kind: notification.body.kind(),
        dedupe_key: &notification.dedupe_key,
        tenant_id: Some(tenant),
        payload,
    };
    let inserted = diesel::insert_into(notifications::table)
        .values(&row)
        .on_conflict(notifications::dedupe_key)
        .do_nothing()
        .execute(conn)?;
    Ok(inserted == 1)
}

/// The outbox as a leased queue ([`crate::lease`]): pending notifications, due at
/// `next_attempt_at`.
pub(crate) struct Outbox;

impl LeasedQueue for Outbox {
    const TABLE: &'static str = "notifications";
    const DUE: &'static str = "next_attempt_at";
    const ALSO: &'static str = " AND status = 'pending'";
    const WAITING: &'static str = "status = 'pending'";
    const RETURNING: &'static str = "id, kind, payload, attempts";
    type Columns = (
        sql_types::Uuid,
        sql_types::Text,
        sql_types::Text,
        sql_types::Integer,
    );
}

/// At most [`MAX_ERROR_CHARS`] characters of `error` (the outbox's and the lookups' last
/// errors).
pub(crate) fn truncated(error: &str) -> &str {
    match error.char_indices().nth(MAX_ERROR_CHARS) {
        Some((end, _)) => &error[..end],
        None => error,
    }
}

#[async_trait]
impl OutboxRepository for PgStore {
    #[tracing::instrument(skip_all, fields(limit))]
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxMessage>, RepoError> {
        self.run(move |conn| {
            let rows: Vec<(Uuid, String, String, i32)> =
                lease::claim::<Outbox, _>(conn, now, lease_until, limit)?;
            Ok(rows
                .into_iter()
                .map(|(id, kind, payload, attempts)| OutboxMessage {
                    id: NotificationId::from_uuid(id),
                    kind,
                    payload,
                    attempts: u32::try_from(attempts).unwrap_or(0),
                })
                .collect())
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(notification.id = %id, logged_only))]
    async fn mark_done(
        &self,
        id: NotificationId,
        logged_only: bool,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let status = if logged_only { "logged" } else { "delivered" };
        self.run(move |conn| {
            // Only a pending message changes: a slow dispatcher whose lease ran out must not
            // overwrite what another one recorded since.
            diesel::update(
                notifications::table
                    .find(id.as_uuid())
                    .filter(notifications::status.eq(PENDING)),
            )
            .set((
                notifications::status.eq(status),
                notifications::delivered_at.eq(Some(at)),
            ))
            .execute(conn)?;
            Ok(())
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(notification.id = %id, attempts))]
    async fn mark_failed(
        &self,
        id: NotificationId,
        attempts: u32,
        retry_at: Option<DateTime<Utc>>,
        error: String,
    ) -> Result<(), RepoError> {
        let attempts = i32::try_from(attempts).unwrap_or(i32::MAX);
        self.run(move |conn| {
            let target = notifications::table
                .find(id.as_uuid())
                .filter(notifications::status.eq(PENDING));
            let last_error = truncated(&error);
            match retry_at {
                Some(at) => diesel::update(target)
                    .set((
                        notifications::attempts.eq(attempts),
                        notifications::last_error.eq(last_error),
                        notifications::next_attempt_at.eq(at),
                    ))
                    .execute(conn)?,
                None => diesel::update(target)
                    .set((
                        notifications::attempts.eq(attempts),
                        notifications::last_error.eq(last_error),
                        notifications::status.eq("dead"),
                    ))
                    .execute(conn)?,
            };
            Ok(())
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn backlog(&self) -> Result<u64, RepoError> {
        self.run(|conn| Ok(lease::backlog::<Outbox>(conn)?)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_cut_to_a_thousand_characters_without_splitting_one() {
        let long = "é".repeat(1500);

        let cut = truncated(&long);

        assert_eq!(cut.chars().count(), MAX_ERROR_CHARS);
        assert_eq!(truncated("short"), "short");
    }
}
