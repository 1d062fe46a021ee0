//! [`CheckoutSessionRepository`] over the `checkout_sessions` table.

use async_trait::async_trait;
use billing_domain::ports::{CheckoutSessionRepository, RepoError, SessionEnd};
use billing_domain::{CheckoutSessionRef, ReferenceField, TenantId};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use crate::error::{DbError, InvalidRow};
use crate::schema::{checkout_sessions, tenants};
use crate::store::PgStore;

const OPEN: &str = "open";

/// Records how a session ended (nothing when it is unknown). Also run by the webhook
/// transaction of a completed checkout.
pub(crate) fn close_session(
    conn: &mut PgConnection,
    session: &str,
    end: SessionEnd,
    at: DateTime<Utc>,
) -> QueryResult<()> {
    diesel::update(checkout_sessions::table.find(session))
        .set((
            checkout_sessions::status.eq(end.as_str()),
            checkout_sessions::updated_at.eq(at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Closes a session as expired if it is recorded and still open (`checkout.session.expired`
/// in the webhook transaction); `false` when it was not.
pub(crate) fn expire_open_session(
    conn: &mut PgConnection,
    session: &str,
    at: DateTime<Utc>,
) -> QueryResult<bool> {
    let updated = diesel::update(
        checkout_sessions::table
            .find(session)
            .filter(checkout_sessions::status.eq(OPEN)),
    )
    .set((
        checkout_sessions::status.eq(SessionEnd::Expired.as_str()),
        checkout_sessions::updated_at.eq(at),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

#[async_trait]
impl CheckoutSessionRepository for PgStore {
    #[tracing::instrument(skip_all, fields(tenant.id = %tenant, stripe.checkout_session = %session))]
    async fn record_open(
        &self,
        tenant: TenantId,
        session: &CheckoutSessionRef,
        at: DateTime<Utc>,
    ) -> Result<Vec<CheckoutSessionRef>, RepoError> {
        let session = session.as_str().to_owned();
        self.transaction(move |conn| {
            // The tenant's row lock (the one webhooks take) serialises two checkouts of one
            // tenant: the second to get here sees the first's session, never the reverse.
            let locked = tenants::table
                .find(tenant.as_uuid())
                .select(tenants::id)
                .for_update()
                .first::<uuid::Uuid>(conn)
                .optional()?;
            if locked.is_none() {
                return Err(DbError::Repo(RepoError::MissingReference(
                    ReferenceField::Tenant,
                )));
            }
            // Stripe's ids are unique: a second record of one session changes nothing.
            diesel::insert_into(checkout_sessions::table)
                .values((
                    checkout_sessions::stripe_session_id.eq(&session),
                    checkout_sessions::tenant_id.eq(tenant.as_uuid()),
                    checkout_sessions::status.eq(OPEN),
                    checkout_sessions::created_at.eq(at),
                    checkout_sessions::updated_at.eq(at),
                ))
                .on_conflict(checkout_sessions::stripe_session_id)
                .do_nothing()
                .execute(conn)?;
            let ids: Vec<String> = checkout_sessions::table
                .filter(checkout_sessions::tenant_id.eq(tenant.as_uuid()))
                .filter(checkout_sessions::status.eq(OPEN))
                .filter(checkout_sessions::stripe_session_id.ne(&session))
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
        self.run(move |conn| Ok(close_session(conn, &session, end, at)?))
            .await
    }
}
