//! [`CheckoutSessionRepository`] over the `checkout_sessions` table.

use async_trait::async_trait;
use billing_domain::ports::{CheckoutSessionRepository, RepoError, SessionEnd};
use billing_domain::{CheckoutSessionRef, TenantId};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::error::{DbError, InvalidRow};
use crate::schema::checkout_sessions;
use crate::store::PgStore;

const OPEN: &str = "open";

#[async_trait]
impl CheckoutSessionRepository for PgStore {
    #[tracing::instrument(skip_all, fields(tenant.id = %tenant, stripe.checkout_session = %session))]
    async fn record_open(
        &self,
        tenant: TenantId,
        session: &CheckoutSessionRef,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let session = session.as_str().to_owned();
        self.run(move |conn| {
            // Stripe's ids are unique: a second record of one session changes nothing.
            diesel::insert_into(checkout_sessions::table)
                .values((
                    checkout_sessions::stripe_session_id.eq(session),
                    checkout_sessions::tenant_id.eq(tenant.as_uuid()),
                    checkout_sessions::status.eq(OPEN),
                    checkout_sessions::created_at.eq(at),
                    checkout_sessions::updated_at.eq(at),
                ))
                .on_conflict(checkout_sessions::stripe_session_id)
                .do_nothing()
                .execute(conn)?;
            Ok(())
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(tenant.id = %tenant, stripe.checkout_session = %than))]
    async fn older_open(
        &self,
        tenant: TenantId,
        than: &CheckoutSessionRef,
    ) -> Result<Vec<CheckoutSessionRef>, RepoError> {
        let than = than.as_str().to_owned();
        self.run(move |conn| {
            let reference = checkout_sessions::table
                .find(&than)
                .select((
                    checkout_sessions::created_at,
                    checkout_sessions::stripe_session_id,
                ))
                .first::<(DateTime<Utc>, String)>(conn)
                .optional()?;
            // Not recorded: nothing can be said to be older.
            let Some((created, id)) = reference else {
                return Ok(Vec::new());
            };
            let ids: Vec<String> = checkout_sessions::table
                .filter(checkout_sessions::tenant_id.eq(tenant.as_uuid()))
                .filter(checkout_sessions::status.eq(OPEN))
                .filter(
                    checkout_sessions::created_at
                        .lt(created)
                        .or(checkout_sessions::created_at
                            .eq(created)
                            .and(checkout_sessions::stripe_session_id.lt(id))),
                )
                .order((
                    checkout_sessions::created_at.asc(),
                    checkout_sessions::stripe_session_id.asc(),
                ))
                .select(checkout_sessions::stripe_session_id)
                .load(conn)?;
            ids.into_iter()
                .map(|id| {
                    CheckoutSessionRef::parse(id).map_err(|e| {
                        DbError::from(InvalidRow::new(
                            "checkout_sessions",
                            format!("stripe_session_id: {e}"),
                        ))
                    })
                })
                .collect()
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(stripe.checkout_session = %session, end = end.as_str()))]
    async fn close(
        &self,
        session: &CheckoutSessionRef,
        end: SessionEnd,
        at: DateTime<Utc>,
    ) -> Result<(), RepoError> {
        let session = session.as_str().to_owned();
        self.run(move |conn| {
            diesel::update(checkout_sessions::table.find(session))
                .set((
                    checkout_sessions::status.eq(end.as_str()),
                    checkout_sessions::updated_at.eq(at),
                ))
                .execute(conn)?;
            Ok(())
        })
        .await
    }
}
