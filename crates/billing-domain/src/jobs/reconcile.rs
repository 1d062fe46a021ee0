//! Reconciliation (issue 15): re-reads a tenant's subscriptions and open invoices from
//! Stripe and corrects what differs, through the webhook path's rules and order guard
//! (`service/webhook/reconcile.rs`). A correction means a missed or misapplied event: each
//! is logged (warn) and counted (`billing_reconcile_corrections_total{kind}`).
//!
//! [`Reconciler::tenant`] serves `POST /api/v1/billing/tenants/{tenantId}/sync`;
//! [`Reconciler::sweep`] is the periodic pass over every tenant with a live subscription
//! or an open invoice (`STRIPE_RECONCILE_INTERVAL_SECS`), claimed per interval in the
//! database so that one replica sweeps it. Both take the [`PaymentProvider`] to read
//! through as a parameter: the request path passes the service's own, the sweep a
//! background (rate-limited) one.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tracing::{info, warn};

use crate::error::BillingError;
use crate::ids::{InvoiceRef, TenantId};
use crate::metrics::BillingMetrics;
use crate::model::EventOutcome;
use crate::ports::{
    Applied, Clock, PaymentProvider, ProviderError, ReconcileRepository, ReconcileTargets,
    RepoError, WebhookStore, WebhookTx, WorkOutcome,
};
use crate::service::webhook_reconcile::{reconcile_invoice, reconcile_subscription, READ_SKEW};
pub use crate::service::webhook_reconcile::{Correction, CorrectionKind};

/// What one tenant's reconciliation read and corrected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Subscriptions read from Stripe.
    pub subscriptions: u32,
    /// Invoices read from Stripe.
    pub invoices: u32,
    /// What was corrected.
    pub corrections: Vec<Correction>,
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Tenants reconciled.
    pub tenants: u32,
    /// Tenants whose reconciliation failed (logged; the next sweep tries again).
    pub failed: u32,
    /// Corrections made.
    pub corrections: u32,
}

/// How many tenants one sweep visits at most.
pub const SWEEP_LIMIT: u32 = 10_000;

/// The reconciliation's rules over its ports.
pub struct Reconciler {
    webhooks: Arc<dyn WebhookStore>,
    repo: Arc<dyn ReconcileRepository>,
    clock: Arc<dyn Clock>,
    metrics: Arc<dyn BillingMetrics>,
}

impl Reconciler {
    /// Builds it. `webhooks` is the store events are applied through.
    #[must_use]
    pub fn new(
        webhooks: Arc<dyn WebhookStore>,
        repo: Arc<dyn ReconcileRepository>,
        clock: Arc<dyn Clock>,
        metrics: Arc<dyn BillingMetrics>,
    ) -> Self {
        Self {
            webhooks,
            repo,
            clock,
            metrics,
        }
    }

    /// The time a read sent now stands for (see `READ_SKEW`), in whole seconds as Stripe's
    /// `created` is.
    fn read_time(&self) -> DateTime<Utc> {
        let t = self.clock.now() - READ_SKEW;
        DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
    }

    /// Reconciles one tenant, reading through `provider`.
    ///
    /// # Errors
    /// [`BillingError::TenantNotFound`] for an unknown tenant; Stripe's and the
    /// database's failures as their [`BillingError`]s (what was corrected before the
    /// failure stays corrected: each object is its own transaction).
    pub async fn tenant(
        &self,
        provider: &dyn PaymentProvider,
        tenant: TenantId,
    ) -> Result<ReconcileReport, BillingError> {
        let targets = self
            .repo
            .targets(tenant)
            .await?
            .ok_or(BillingError::TenantNotFound(tenant))?;
        self.reconcile(provider, tenant, targets).await
    }

    async fn reconcile(
        &self,
        provider: &dyn PaymentProvider,
        tenant: TenantId,
        targets: ReconcileTargets,
    ) -> Result<ReconcileReport, BillingError> {
        let mut report = ReconcileReport::default();
        let mut seen_invoices: HashSet<InvoiceRef> = HashSet::new();
        for customer in &targets.customers {
            let read_at = self.read_time();
            let subscriptions = provider.list_subscriptions(customer).await?;
            for s in subscriptions {
                report.subscriptions += 1;
                let s = Arc::new(s);
                let fixed = self
                    .in_tx(move |tx, now| reconcile_subscription(tx, &s, read_at, now))
                    .await?;
                report.corrections.extend(fixed);
            }
            let read_at = self.read_time();
            let invoices = provider.list_open_invoices(customer).await?;
            for i in invoices {
                report.invoices += 1;
                seen_invoices.insert(i.invoice.clone());
                let i = Arc::new(i);
                let fixed = self
                    .in_tx(move |tx, now| reconcile_invoice(tx, &i, read_at, now))
                    .await?;
                report.corrections.extend(fixed);
            }
        }
        // Invoices open here that Stripe no longer lists as open: paid, voided or written
        // off without our hearing of it. Each is read on its own.
        for invoice in targets.open_invoices {
            if seen_invoices.contains(&invoice) {
                continue;
            }
            let read_at = self.read_time();
            let i = match provider.invoice(&invoice).await {
                Ok(i) => i,
                Err(ProviderError::Refused {
                    not_found: true, ..
                }) => {
                    warn!(stripe.invoice = %invoice, tenant.id = %tenant, "reconciliation: Stripe no longer knows an invoice open here");
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            report.invoices += 1;
            let i = Arc::new(i);
            let fixed = self
                .in_tx(move |tx, now| reconcile_invoice(tx, &i, read_at, now))
                .await?;
            report.corrections.extend(fixed);
        }
        for c in &report.corrections {
            self.metrics.reconcile_correction(c.kind.as_str());
            warn!(
                tenant.id = %tenant,
                reconcile.kind = c.kind.as_str(),
                reconcile.object = %c.object,
                reconcile.field = c.field,
                reconcile.from = c.from.as_deref(),
                reconcile.to = c.to.as_deref(),
                "reconciliation corrected local state from Stripe (a missed or misapplied event)"
            );
        }
        Ok(report)
    }

    /// Runs one object's reconciliation in a webhook transaction; the rules may be re-run
    /// after a deadlock, so the corrections of the last run are the ones returned.
    async fn in_tx<F>(&self, f: F) -> Result<Vec<Correction>, BillingError>
    where
        F: Fn(&mut dyn WebhookTx, DateTime<Utc>) -> Result<Vec<Correction>, RepoError>
            + Send
            + Sync
            + 'static,
    {
        let now = self.clock.now();
        let out: Arc<Mutex<Vec<Correction>>> = Arc::default();
        let sink = Arc::clone(&out);
        let work: crate::ports::WebhookWork = Box::new(move |tx| {
            let fixed = f(tx, now)?;
            if let Ok(mut guard) = sink.lock() {
                *guard = fixed;
            }
            Ok(WorkOutcome::Applied(Applied {
                outcome: EventOutcome::Processed,
                detail: None,
            }))
        });
        self.webhooks.apply(work).await?;
        let fixed = out
            .lock()
            .map(|mut g| std::mem::take(&mut *g))
            .unwrap_or_default();
        Ok(fixed)
    }

    /// One sweep, when this replica claims the interval of length `interval` that `now`
    /// falls in; `None` when another replica has it.
    ///
    /// # Errors
    /// A database failure reading the tenants or claiming the interval; a tenant's own
    /// failure is logged and counted in [`SweepReport::failed`].
    pub async fn sweep(
        &self,
        provider: &dyn PaymentProvider,
        interval: Duration,
        replica: &str,
    ) -> Result<Option<SweepReport>, BillingError> {
        let now = self.clock.now();
        let secs = i64::try_from(interval.as_secs()).unwrap_or(i64::MAX).max(1);
        let slot = DateTime::from_timestamp(now.timestamp() - now.timestamp().rem_euclid(secs), 0)
            .unwrap_or(now);
        if !self.repo.claim_sweep(slot, replica, now).await? {
            return Ok(None);
        }
        let mut report = SweepReport::default();
        for tenant in self.repo.sweep_tenants(SWEEP_LIMIT).await? {
            match self.tenant(provider, tenant).await {
                Ok(r) => {
                    report.tenants += 1;
                    report.corrections += u32::try_from(r.corrections.len()).unwrap_or(u32::MAX);
                }
                Err(e) => {
                    report.failed += 1;
                    warn!(tenant.id = %tenant, error = %e, "reconciliation sweep: tenant not reconciled");
                }
            }
        }
        info!(
            tenants = report.tenants,
            failed = report.failed,
            corrections = report.corrections,
            slot = %slot,
            "reconciliation sweep finished"
        );
        Ok(Some(report))
    }
}

#[cfg(test)]
mod tests;
