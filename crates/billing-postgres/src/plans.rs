//! [`PlanRepository`] over the `plans` table.

use async_trait::async_trait;
use billing_domain::ports::{PlanRepository, RepoError};
use billing_domain::{
    BillingInterval, Features, NewPlan, Plan, PlanCode, PlanId, PlanKey, PlanPatch, PriceRef,
    TrialDays,
};
use chrono::{DateTime, Utc};
use diesel::dsl::now;
use diesel::prelude::*;
use uuid::Uuid;

use crate::error::{DbError, InvalidRow};
use crate::rows::{money, parse, parse_enum};
use crate::schema::plans;
use crate::store::PgStore;

const TABLE: &str = "plans";

/// A `plans` row.
#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = plans, check_for_backend(diesel::pg::Pg))]
pub(crate) struct PlanRow {
    id: Uuid,
    code: String,
    name: String,
    stripe_price_id: String,
    amount: i64,
    currency: String,
    interval: String,
    trial_days: Option<i32>,
    active: bool,
    features: Vec<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<PlanRow> for Plan {
    type Error = InvalidRow;

    fn try_from(row: PlanRow) -> Result<Self, Self::Error> {
        Ok(Plan {
            id: PlanId::from_uuid(row.id),
            code: parse(TABLE, "code", row.code, |c| PlanCode::parse(&c))?,
            name: row.name,
            price: parse(
                TABLE,
                "stripe_price_id",
                row.stripe_price_id,
                PriceRef::parse,
            )?,
            amount: money(TABLE, row.amount, &row.currency)?,
            interval: parse_enum(TABLE, "interval", &row.interval, BillingInterval::parse)?,
            trial_days: row
                .trial_days
                .map(|d| TrialDays::new(i64::from(d)))
                .transpose()
                .map_err(|e| InvalidRow::new(TABLE, format!("trial_days: {e}")))?,
            features: Features::parse(row.features)
                .map_err(|e| InvalidRow::new(TABLE, format!("features: {e}")))?,
            active: row.active,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// A new `plans` row.
#[derive(Debug, Insertable)]
#[diesel(table_name = plans)]
struct NewPlanRow {
    id: Uuid,
    code: String,
    name: String,
    stripe_price_id: String,
    amount: i64,
    currency: String,
    interval: String,
    trial_days: Option<i32>,
    active: bool,
    features: Vec<String>,
}

impl From<NewPlan> for NewPlanRow {
    fn from(p: NewPlan) -> Self {
        Self {
            id: *PlanId::new().as_uuid(),
            code: p.code.as_str().to_owned(),
            name: p.name,
            stripe_price_id: p.price.into_string(),
            amount: p.amount.minor(),
            currency: p.amount.currency().as_str().to_owned(),
            interval: p.interval.as_str().to_owned(),
            trial_days: p.trial_days.map(|d| i32::from(d.get())),
            active: true,
            features: p.features.as_slice().to_vec(),
        }
    }
}

/// The columns a patch changes; `None` leaves a column as it is.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = plans)]
struct PlanChanges {
    name: Option<String>,
    stripe_price_id: Option<String>,
    amount: Option<i64>,
    currency: Option<String>,
    trial_days: Option<Option<i32>>,
    active: Option<bool>,
    features: Option<Vec<String>>,
}

impl From<PlanPatch> for PlanChanges {
    fn from(p: PlanPatch) -> Self {
        Self {
            name: p.name,
            stripe_price_id: p.price.map(PriceRef::into_string),
            amount: p.amount.map(|m| m.minor()),
            currency: p.amount.map(|m| m.currency().as_str().to_owned()),
            trial_days: p.trial_days.map(|t| t.map(|d| i32::from(d.get()))),
            active: p.active,
            features: p.features.map(|f| f.as_slice().to_vec()),
        }
    }
}

pub(crate) fn find_plan(conn: &mut PgConnection, key: &PlanKey) -> Result<Option<Plan>, DbError> {
    let query = plans::table.select(PlanRow::as_select());
    let row = match key {
        PlanKey::Id(id) => query.filter(plans::id.eq(id.as_uuid())).first(conn),
        PlanKey::Code(code) => query.filter(plans::code.eq(code.as_str())).first(conn),
    }
    .optional()?;
    Ok(row.map(Plan::try_from).transpose()?)
}

#[async_trait]
impl PlanRepository for PgStore {
    #[tracing::instrument(skip_all, fields(include_inactive))]
    async fn list(&self, include_inactive: bool) -> Result<Vec<Plan>, RepoError> {
        self.run(move |conn| {
            let mut query = plans::table
                .select(PlanRow::as_select())
                .order(plans::code.asc())
                .into_boxed();
            if !include_inactive {
                query = query.filter(plans::active.eq(true));
            }
            let rows = query.load(conn)?;
            Ok(rows
                .into_iter()
                .map(Plan::try_from)
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(plan.key = %key))]
    async fn get(&self, key: &PlanKey) -> Result<Option<Plan>, RepoError> {
        let key = key.clone();
        self.run(move |conn| find_plan(conn, &key)).await
    }

    #[tracing::instrument(skip_all, fields(stripe.price = %price))]
    async fn find_by_price(&self, price: &PriceRef) -> Result<Option<Plan>, RepoError> {
        let price = price.as_str().to_owned();
        self.run(move |conn| {
            let row = plans::table
                .filter(plans::stripe_price_id.eq(price))
                .select(PlanRow::as_select())
                .first(conn)
                .optional()?;
            Ok(row.map(Plan::try_from).transpose()?)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(plan.code = %plan.code))]
    async fn create(&self, plan: NewPlan) -> Result<Plan, RepoError> {
        let row = NewPlanRow::from(plan);
        self.run(move |conn| {
            let stored = diesel::insert_into(plans::table)
                .values(&row)
                .returning(PlanRow::as_returning())
                .get_result(conn)?;
            Ok(Plan::try_from(stored)?)
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(plan.id = %id))]
    async fn update(&self, id: PlanId, patch: PlanPatch) -> Result<Option<Plan>, RepoError> {
        if patch.is_empty() {
            return self.get(&PlanKey::Id(id)).await;
        }
        let changes = PlanChanges::from(patch);
        self.run(move |conn| {
            let stored = diesel::update(plans::table.find(id.as_uuid()))
                .set((changes, plans::updated_at.eq(now)))
                .returning(PlanRow::as_returning())
                .get_result(conn)
                .optional()?;
            Ok(stored.map(Plan::try_from).transpose()?)
        })
        .await
    }
}

/// The plan of a Stripe price, in the webhook transaction.
pub(crate) fn plan_by_price(
    conn: &mut PgConnection,
    price: &PriceRef,
) -> Result<Option<Plan>, DbError> {
    let row = plans::table
        .filter(plans::stripe_price_id.eq(price.as_str()))
        .select(PlanRow::as_select())
        .get_result(conn)
        .optional()?;
    Ok(row.map(Plan::try_from).transpose()?)
}
