//! [`SubscriptionRepository`] over the `subscriptions` table.

use async_trait::async_trait;
use billing_domain::ports::{RepoError, SubscriptionRepository};
use billing_domain::{
    CustomerRef, Plan, PlanId, Subscription, SubscriptionId, SubscriptionRef, SubscriptionStatus,
    TenantId,
};
use chrono::{DateTime, Utc};
use diesel::dsl::exists;
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, QueryFragment};
use diesel::sql_types;
use uuid::Uuid;

use crate::error::{DbError, InvalidRow};
use crate::plans::PlanRow;
use crate::rows::{parse_enum, parse_opt};
use crate::schema::{plans, subscriptions};
use crate::statement::{prepared_statement, push_binds};
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
    past_due_since: Option<DateTime<Utc>>,
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
            past_due_since: row.past_due_since,
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

/// The query of "the tenant's current subscription" for tenant `$tenant` (a `&Uuid`):
/// its newest live one, else its newest `incomplete` one, else its newest, from
/// `$from` (`subscriptions::table`, or it joined with its plan) selecting `$select`. A
/// macro, so that the repository, its join with the plan and the EXPLAIN of the tests
/// run the very same statement (diesel's types for it cannot be written down).
///
/// It reads the tenant's rows through `subscriptions_tenant_created_idx` and sorts those
/// few; the plan comes by its primary key.
macro_rules! current_query {
    ($from:expr, $tenant:expr, $select:expr) => {
        $from
            .filter(subscriptions::tenant_id.eq($tenant))
            // Live first (true sorts after false, hence desc), then one whose payment is
            // on its way, then newest.
            .order((
                subscriptions::status
                    .eq_any(LIVE.map(SubscriptionStatus::as_str))
                    .desc(),
                subscriptions::status
                    .eq(SubscriptionStatus::Incomplete.as_str())
                    .desc(),
                subscriptions::created_at.desc(),
                subscriptions::id.desc(),
            ))
            .select($select)
            .limit(1)
    };
}

/// The access read: the tenant's current subscription joined with its plan, one
/// statement ([`current_query`]).
fn current_with_plan(
    conn: &mut PgConnection,
    tenant: TenantId,
) -> Result<Option<(Subscription, Plan)>, DbError> {
    let row: Option<(SubscriptionRow, PlanRow)> = current_query!(
        subscriptions::table.inner_join(plans::table),
        tenant.as_uuid(),
        (SubscriptionRow::as_select(), PlanRow::as_select())
    )
    .get_result(conn)
    .optional()?;
    Ok(row
        .map(|(s, p)| Ok::<_, InvalidRow>((Subscription::try_from(s)?, Plan::try_from(p)?)))
        .transpose()?)
}

/// PostgreSQL's plan (`EXPLAIN`, one line a row) of the access read for `tenant`, the
/// same statement with the same parameters, for the tests that check it uses indexes.
#[cfg(any(test, feature = "testing"))]
pub(crate) fn explain_current_with_plan(
    conn: &mut PgConnection,
    tenant: TenantId,
) -> QueryResult<Vec<String>> {
    crate::statement::Explain(current_query!(
        subscriptions::table.inner_join(plans::table),
        tenant.as_uuid(),
        (SubscriptionRow::as_select(), PlanRow::as_select())
    ))
    .load(conn)
}

#[async_trait]
impl SubscriptionRepository for PgStore {
    #[tracing::instrument(skip_all, fields(tenant.id = %tenant))]
    async fn current_for_tenant(
        &self,
        tenant: TenantId,
    ) -> Result<Option<Subscription>, RepoError> {
        self.run(move |conn| {
            let row = current_query!(
                subscriptions::table,
                tenant.as_uuid(),
                SubscriptionRow::as_select()
            )
            .get_result(conn)
            .optional()?;
            Ok(row.map(Subscription::try_from).transpose()?)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(tenant.id = %tenant))]
    async fn current_with_plan(
        &self,
        tenant: TenantId,
    ) -> Result<Option<(Subscription, Plan)>, RepoError> {
        self.run(move |conn| current_with_plan(conn, tenant)).await
    }
}

/// A `subscriptions` row to upsert by id, borrowed from the subscription; one prepared
/// statement (diesel's `ON CONFLICT … DO UPDATE` builder is not cached):
///
/// ```sql
/// INSERT INTO subscriptions (<every column>) VALUES ($1, …, $14)
/// ON CONFLICT (id) DO UPDATE SET <every column but id, tenant_id, created_at> = EXCLUDED.…
/// ```
struct SubscriptionWrite<'a> {
    id: Uuid,
    tenant_id: Uuid,
    plan_id: Uuid,
    status: &'static str,
    current_period_start: Option<DateTime<Utc>>,
    current_period_end: Option<DateTime<Utc>>,
    cancel_at_period_end: bool,
    canceled_at: Option<DateTime<Utc>>,
    stripe_subscription_id: Option<&'a str>,
    stripe_customer_id: Option<&'a str>,
    last_event_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    past_due_since: Option<DateTime<Utc>>,
}

prepared_statement!(SubscriptionWrite, sql_types::Bool);

impl QueryFragment<Pg> for SubscriptionWrite<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        use sql_types::{Bool, Nullable, Text, Timestamptz, Uuid as SqlUuid};

        out.push_sql(
            "INSERT INTO subscriptions (id, tenant_id, plan_id, status, current_period_start, \
             current_period_end, cancel_at_period_end, canceled_at, stripe_subscription_id, \
             stripe_customer_id, last_event_at, created_at, updated_at, past_due_since) VALUES (",
        );
        push_binds!(
            out,
            SqlUuid => &self.id,
            SqlUuid => &self.tenant_id,
            SqlUuid => &self.plan_id,
            Text => &self.status,
            Nullable<Timestamptz> => &self.current_period_start,
            Nullable<Timestamptz> => &self.current_period_end,
            Bool => &self.cancel_at_period_end,
            Nullable<Timestamptz> => &self.canceled_at,
            Nullable<Text> => &self.stripe_subscription_id,
            Nullable<Text> => &self.stripe_customer_id,
            Nullable<Timestamptz> => &self.last_event_at,
            Timestamptz => &self.created_at,
            Timestamptz => &self.updated_at,
            Nullable<Timestamptz> => &self.past_due_since,
        );
        out.push_sql(
            ") ON CONFLICT (id) DO UPDATE SET \
             plan_id = EXCLUDED.plan_id, \
             status = EXCLUDED.status, \
             current_period_start = EXCLUDED.current_period_start, \
             current_period_end = EXCLUDED.current_period_end, \
             cancel_at_period_end = EXCLUDED.cancel_at_period_end, \
             canceled_at = EXCLUDED.canceled_at, \
             stripe_subscription_id = EXCLUDED.stripe_subscription_id, \
             stripe_customer_id = EXCLUDED.stripe_customer_id, \
             last_event_at = EXCLUDED.last_event_at, \
             updated_at = EXCLUDED.updated_at, \
             past_due_since = EXCLUDED.past_due_since",
        );
        Ok(())
    }
}

/// Upserts the subscription by id ([`SubscriptionWrite`]).
pub(crate) fn save_subscription(conn: &mut PgConnection, s: &Subscription) -> QueryResult<()> {
    SubscriptionWrite {
        id: *s.id.as_uuid(),
        tenant_id: *s.tenant_id.as_uuid(),
        plan_id: *s.plan_id.as_uuid(),
        status: s.status.as_str(),
        current_period_start: s.current_period_start,
        current_period_end: s.current_period_end,
        cancel_at_period_end: s.cancel_at_period_end,
        canceled_at: s.canceled_at,
        stripe_subscription_id: s.subscription_ref.as_ref().map(SubscriptionRef::as_str),
        stripe_customer_id: s.customer.as_ref().map(CustomerRef::as_str),
        last_event_at: s.last_event_at,
        created_at: s.created_at,
        updated_at: s.updated_at,
        past_due_since: s.past_due_since,
    }
    .execute(conn)?;
    Ok(())
}

/// The subscription of a Stripe id, its row locked to the end of the transaction.
pub(crate) fn lock_subscription(
    conn: &mut PgConnection,
    subscription: &SubscriptionRef,
) -> Result<Option<Subscription>, DbError> {
    let row = subscriptions::table
        .filter(subscriptions::stripe_subscription_id.eq(subscription.as_str()))
        .select(SubscriptionRow::as_select())
        .for_update()
        .get_result(conn)
        .optional()?;
    Ok(row.map(Subscription::try_from).transpose()?)
}

/// Whether the tenant has a live subscription other than `except`.
pub(crate) fn has_other_live_subscription(
    conn: &mut PgConnection,
    tenant: TenantId,
    except: SubscriptionId,
) -> QueryResult<bool> {
    let [a, b, c] = LIVE.map(SubscriptionStatus::as_str);
    diesel::select(exists(
        subscriptions::table
            .filter(subscriptions::tenant_id.eq(tenant.as_uuid()))
            .filter(subscriptions::id.ne(except.as_uuid()))
            .filter(
                subscriptions::status
                    .eq(a)
                    .or(subscriptions::status.eq(b))
                    .or(subscriptions::status.eq(c)),
            ),
    ))
    .get_result::<bool>(conn)
}
