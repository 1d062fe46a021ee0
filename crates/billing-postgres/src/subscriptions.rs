//! [`SubscriptionRepository`] over the `subscriptions` table.

use async_trait::async_trait;
use billing_domain::ports::{RepoError, SubscriptionRepository};
use billing_domain::{
    CustomerRef, PlanId, Subscription, SubscriptionId, SubscriptionRef, SubscriptionStatus,
    TenantId,
};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use uuid::Uuid;

use crate::error::InvalidRow;
use crate::rows::{parse_enum, parse_opt};
use crate::schema::subscriptions;
use crate::store::PgStore;

const TABLE: &str = "subscriptions";

/// Statuses that make a subscription live (see `SubscriptionStatus::is_live`).
pub(crate) const LIVE: [SubscriptionStatus; 3] = [
    SubscriptionStatus::Trialing,
    SubscriptionStatus::Active,
    SubscriptionStatus::PastDue,
];

/// A `subscriptions` row.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = subscriptions, check_for_backend(diesel::pg::Pg))]
pub(crate) struct SubscriptionRow {
    id: Uuid,
    tenant_id: Uuid,
    plan_id: Uuid,
    status: String,
    current_period_start: Option<DateTime<Utc>>,
    current_period_end: Option<DateTime<Utc>>,
    cancel_at_period_end: bool,
    canceled_at: Option<DateTime<Utc>>,
    stripe_subscription_id: Option<String>,
    stripe_customer_id: Option<String>,
    last_event_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<SubscriptionRow> for Subscription {
    type Error = InvalidRow;

    fn try_from(row: SubscriptionRow) -> Result<Self, Self::Error> {
        Ok(Subscription {
            id: SubscriptionId::from_uuid(row.id),
            tenant_id: TenantId::from_uuid(row.tenant_id),
            plan_id: PlanId::from_uuid(row.plan_id),
            status: parse_enum(TABLE, "status", &row.status, SubscriptionStatus::parse)?,
            current_period_start: row.current_period_start,
            current_period_end: row.current_period_end,
            cancel_at_period_end: row.cancel_at_period_end,
            canceled_at: row.canceled_at,
            subscription_ref: parse_opt(
                TABLE,
                "stripe_subscription_id",
                row.stripe_subscription_id,
                SubscriptionRef::parse,
            )?,
            customer: parse_opt(
                TABLE,
                "stripe_customer_id",
                row.stripe_customer_id,
                CustomerRef::parse,
            )?,
            last_event_at: row.last_event_at,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

#[async_trait]
impl SubscriptionRepository for PgStore {
    #[tracing::instrument(skip_all, fields(tenant.id = %tenant))]
    async fn current_for_tenant(
        &self,
        tenant: TenantId,
    ) -> Result<Option<Subscription>, RepoError> {
        self.run(move |conn| {
            let live = LIVE.map(SubscriptionStatus::as_str);
            let row = subscriptions::table
                .filter(subscriptions::tenant_id.eq(tenant.as_uuid()))
                // Live first (true sorts after false, hence desc), then one whose payment
                // is on its way, then newest.
                .order((
                    subscriptions::status.eq_any(live).desc(),
                    subscriptions::status
                        .eq(SubscriptionStatus::Incomplete.as_str())
                        .desc(),
                    subscriptions::created_at.desc(),
                    subscriptions::id.desc(),
                ))
                .select(SubscriptionRow::as_select())
                .first(conn)
                .optional()?;
            Ok(row.map(Subscription::try_from).transpose()?)
        })
        .await
    }
}
