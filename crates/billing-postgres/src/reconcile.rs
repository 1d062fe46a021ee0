//! [`ReconcileRepository`] (issue 15): what a tenant's reconciliation re-reads, the
//! tenants the sweep visits, and the sweep's claim in `reconcile_sweeps`.

use async_trait::async_trait;
use billing_domain::ports::{ReconcileRepository, ReconcileTargets, RepoError};
use billing_domain::{CustomerRef, InvoiceRef, TenantId};
use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;

use crate::error::InvalidRow;
use crate::schema::{invoices, reconcile_sweeps, subscriptions, tenants};
use crate::store::PgStore;

/// Subscription statuses the sweep visits (live, per the SPEC).
const LIVE: [&str; 3] = ["trialing", "active", "past_due"];
/// Statuses whose subscriptions are no longer re-read (Stripe never changes them back).
const ENDED: [&str; 2] = ["canceled", "incomplete_expired"];
/// Invoice statuses still owed here.
const OWED: [&str; 3] = ["draft", "open", "overdue"];
/// How long claims are kept (they are only compared with the current interval's).
const KEEP_CLAIMS_DAYS: i64 = 7;

fn customer(raw: String) -> Result<CustomerRef, InvalidRow> {
    CustomerRef::parse(raw).map_err(|_| InvalidRow::new("subscriptions", "bad stripe customer id"))
}

#[async_trait]
impl ReconcileRepository for PgStore {
    #[tracing::instrument(skip_all, fields(tenant.id = %tenant))]
    async fn targets(&self, tenant: TenantId) -> Result<Option<ReconcileTargets>, RepoError> {
        self.run(move |conn| {
            let id = *tenant.as_uuid();
            let Some(own) = tenants::table
                .find(id)
                .select(tenants::stripe_customer_id)
                .first::<Option<String>>(conn)
                .optional()?
            else {
                return Ok(None);
            };
            let of_subscriptions: Vec<Option<String>> = subscriptions::table
                .filter(subscriptions::tenant_id.eq(id))
                .filter(subscriptions::status.ne_all(ENDED))
                .select(subscriptions::stripe_customer_id)
                .distinct()
                .load(conn)?;
            let mut customers = Vec::new();
            for raw in own
                .into_iter()
                .chain(of_subscriptions.into_iter().flatten())
            {
                let c = customer(raw)?;
                if !customers.contains(&c) {
                    customers.push(c);
                }
            }
            let open: Vec<Option<String>> = invoices::table
                .filter(invoices::tenant_id.eq(id))
                .filter(invoices::status.eq_any(OWED))
                .filter(invoices::stripe_invoice_id.is_not_null())
                .order(invoices::created_at.asc())
                .select(invoices::stripe_invoice_id)
                .load(conn)?;
            let open_invoices = open
                .into_iter()
                .flatten()
                .map(|raw| {
                    InvoiceRef::parse(raw)
                        .map_err(|_| InvalidRow::new("invoices", "bad stripe invoice id"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Some(ReconcileTargets {
                customers,
                open_invoices,
            }))
        })
        .await
    }

    #[tracing::instrument(skip_all)]
    async fn sweep_tenants(&self, limit: u32) -> Result<Vec<TenantId>, RepoError> {
        self.run(move |conn| {
            let mut ids: Vec<uuid::Uuid> = subscriptions::table
                .filter(subscriptions::status.eq_any(LIVE))
                .filter(subscriptions::stripe_subscription_id.is_not_null())
                .select(subscriptions::tenant_id)
                .distinct()
                .load(conn)?;
            let owing: Vec<uuid::Uuid> = invoices::table
                .filter(invoices::status.eq_any(OWED))
                .filter(invoices::stripe_invoice_id.is_not_null())
                .select(invoices::tenant_id)
                .distinct()
                .load(conn)?;
            ids.extend(owing);
            ids.sort_unstable();
            ids.dedup();
            ids.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            Ok(ids.into_iter().map(TenantId::from_uuid).collect())
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(slot = %slot))]
    async fn claim_sweep(
        &self,
        slot: DateTime<Utc>,
        by: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, RepoError> {
        let by = by.to_owned();
        self.transaction(move |conn| {
            diesel::delete(
                reconcile_sweeps::table
                    .filter(reconcile_sweeps::slot.lt(now - Duration::days(KEEP_CLAIMS_DAYS))),
            )
            .execute(conn)?;
            let inserted = diesel::insert_into(reconcile_sweeps::table)
                .values((
                    reconcile_sweeps::slot.eq(slot),
                    reconcile_sweeps::claimed_by.eq(&by),
                    reconcile_sweeps::claimed_at.eq(now),
                ))
                .on_conflict_do_nothing()
                .execute(conn)?;
            Ok(inserted == 1)
        })
        .await
    }
}
