//! Catching up with Stripe: the events whose webhook never arrived, read back from
//! Stripe's Events API (SPEC §8, "Catch-up").
//!
//! Stripe gives up redelivering after a while (hours in test mode, three days live), and
//! a delivery can be lost for good (an endpoint misconfigured, a deploy that answered
//! 5xx for too long). Stripe keeps every event for 30 days in `GET /v1/events`, so one
//! pass ([`CatchupJob::run_once`]):
//!
//! 1. takes the catch-up lease ([`CatchupStore::try_lease`]): one replica at a time; a
//!    replica that dies loses it when it expires, and a busy one answers
//!    [`CatchupError::InProgress`];
//! 2. lists the events created since the watermark minus [`CatchupSettings::margin`]
//!    (never more than Stripe's 30 days back), 100 a page, newest first as Stripe
//!    answers, keeping only those the ledger does not hold;
//! 3. applies them **oldest first** through the webhook path ([`EventApplier`]: the
//!    service's own, the ledger's row recording source `catchup`). A webhook delivery of
//!    the same event racing the pass is harmless: both insert the ledger row first, in
//!    the transaction of the effects, so one applies it and the other sees a duplicate;
//! 4. moves the watermark to the pass's start — or, when an event could not be applied
//!    (the database went away), to that event's `created`, so the next pass tries it
//!    again — and gives the lease back.
//!
//! Like the other jobs, the domain owns one pass and the binary loops it
//! (`STRIPE_CATCHUP_INTERVAL_SECS`); the admin's `POST /api/v1/billing/stripe/events/sync`
//! runs one at once.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, TimeDelta, Utc};
use thiserror::Error;
use tracing::{info, warn};

use crate::ids::EventId;
use crate::metrics::{BillingMetrics, CatchupPass};
use crate::model::EventOutcome;
use crate::ports::{CatchupStore, Clock, ListedEvent, PaymentProvider, ProviderError, RepoError};
use crate::service::{WebhookError, WebhookReceipt};

/// How long Stripe keeps events listed.
pub const RETENTION: Duration = Duration::from_secs(30 * 86_400);

/// How often the lease is renewed while a pass applies events.
const RENEW_EVERY: usize = 100;

/// Applies one event read from the Events API exactly as a webhook delivery of it would
/// be (the service implements it).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventApplier: Send + Sync {
    /// Applies the event `payload` (its JSON), recording it as caught up.
    ///
    /// # Errors
    /// [`WebhookError`] when it could not be read or applied (nothing was recorded).
    async fn apply_caught_up(&self, payload: Vec<u8>) -> Result<WebhookReceipt, WebhookError>;
}

/// The catch-up's rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatchupSettings {
    /// How far before the watermark a pass starts listing: events Stripe lists a little
    /// after their `created` (and clocks that disagree) are not missed.
    pub margin: Duration,
    /// How long the lease lasts without a renewal; renewed every page and every
    /// [`RENEW_EVERY`] events applied.
    pub lease: Duration,
    /// This replica's name on the lease (unique per process).
    pub holder: String,
}

impl CatchupSettings {
    /// 10 minutes of margin, a 2-minute lease, and `holder`.
    #[must_use]
    pub fn new(holder: String) -> Self {
        Self {
            margin: Duration::from_secs(600),
            lease: Duration::from_secs(120),
            holder,
        }
    }
}

/// What one pass did (the `sync` endpoint's answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchupReport {
    /// Events Stripe listed.
    pub listed: u64,
    /// Events the ledger lacked and the pass applied (processed, stale or ignored).
    pub applied: u64,
    /// Events the ledger already held (a webhook was first).
    pub already_applied: u64,
    /// Events the pass recorded as `unmatched`.
    pub unmatched: u64,
    /// Events recorded as `failed`, or that could not be applied at all (tried again
    /// next pass).
    pub failed: u64,
    /// Where the listing started.
    pub since: DateTime<Utc>,
    /// The watermark after the pass (`None` when a given `since` left it alone).
    pub watermark: Option<DateTime<Utc>>,
}

/// Why a pass did not run to its end.
#[derive(Debug, Error)]
pub enum CatchupError {
    /// Another replica (or another pass here) holds the lease.
    #[error("another catch-up pass is running")]
    InProgress,
    /// Stripe could not be listed.
    #[error("Stripe's events could not be listed")]
    Provider(#[source] ProviderError),
    /// The lease, watermark or ledger could not be read or written.
    #[error("the catch-up's state is unavailable")]
    Repo(#[source] RepoError),
}

impl From<RepoError> for CatchupError {
    fn from(e: RepoError) -> Self {
        Self::Repo(e)
    }
}

/// Reads Stripe's events back and applies those the ledger lacks.
pub struct CatchupJob {
    store: Arc<dyn CatchupStore>,
    provider: Arc<dyn PaymentProvider>,
    clock: Arc<dyn Clock>,
    metrics: Arc<dyn BillingMetrics>,
    settings: CatchupSettings,
}

fn delta(d: Duration) -> TimeDelta {
    TimeDelta::from_std(d).unwrap_or(TimeDelta::MAX)
}

impl CatchupJob {
    /// Builds the job. `provider` should be the background instance (its calls share the
    /// background rate budget).
    #[must_use]
    pub fn new(
        store: Arc<dyn CatchupStore>,
        provider: Arc<dyn PaymentProvider>,
        clock: Arc<dyn Clock>,
        metrics: Arc<dyn BillingMetrics>,
        settings: CatchupSettings,
    ) -> Self {
        Self {
            store,
            provider,
            clock,
            metrics,
            settings,
        }
    }

    /// The rules.
    #[must_use]
    pub const fn settings(&self) -> &CatchupSettings {
        &self.settings
    }

    /// One pass (see the module docs). `since` (an admin's) replaces the watermark as the
    /// start of the listing; it moves the watermark only when it starts no later than
    /// the watermark's own start would.
    ///
    /// # Errors
    /// [`CatchupError::InProgress`] when another pass holds the lease (or this one lost
    /// it); [`CatchupError::Provider`] when Stripe cannot be listed (nothing is applied:
    /// the listing is complete before the first event is); [`CatchupError::Repo`] when
    /// the state cannot be read or written.
    pub async fn run_once(
        &self,
        applier: &dyn EventApplier,
        since: Option<DateTime<Utc>>,
    ) -> Result<CatchupReport, CatchupError> {
        let started = Instant::now();
        let now = self.clock.now();
        if !self.renew(now).await? {
            return Err(CatchupError::InProgress);
        }
        let result = self.pass(applier, since, now).await;
        if let Err(e) = self.store.release_lease(&self.settings.holder).await {
            warn!(error = %e, "catch-up lease not released (it expires on its own)");
        }
        match &result {
            Ok(report) => {
                let lag = match report.watermark {
                    Some(w) => Some(lag_of(self.clock.now(), w)),
                    None => self.current_lag().await,
                };
                self.metrics.catchup_pass(&CatchupPass {
                    recovered: report.applied + report.unmatched + report.failed,
                    watermark_lag: lag,
                    duration: started.elapsed(),
                });
                info!(
                    listed = report.listed,
                    applied = report.applied,
                    already_applied = report.already_applied,
                    unmatched = report.unmatched,
                    failed = report.failed,
                    since = %report.since,
                    "catch-up pass finished"
                );
            }
            Err(CatchupError::InProgress) => {}
            Err(e) => warn!(error = %e, "catch-up pass failed"),
        }
        result
    }

    async fn current_lag(&self) -> Option<Duration> {
        match self.store.watermark().await {
            Ok(w) => w.map(|w| lag_of(self.clock.now(), w)),
            Err(_) => None,
        }
    }

    async fn renew(&self, now: DateTime<Utc>) -> Result<bool, RepoError> {
        self.store
            .try_lease(&self.settings.holder, now, now + delta(self.settings.lease))
            .await
    }

    async fn pass(
        &self,
        applier: &dyn EventApplier,
        since: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<CatchupReport, CatchupError> {
        let floor = now - delta(RETENTION);
        let from_watermark = self
            .store
            .watermark()
            .await?
            .map_or(floor, |w| w - delta(self.settings.margin))
            .max(floor);
        let start = since.map_or(from_watermark, |s| s.max(floor));
        let mut report = CatchupReport {
            listed: 0,
            applied: 0,
            already_applied: 0,
            unmatched: 0,
            failed: 0,
            since: start,
            watermark: None,
        };

        let mut missing: Vec<ListedEvent> = Vec::new();
        let mut cursor: Option<EventId> = None;
        loop {
            let page = self
                .provider
                .list_events(start, cursor.clone())
                .await
                .map_err(CatchupError::Provider)?;
            report.listed += page.events.len() as u64;
            let ids: Vec<EventId> = page.events.iter().map(|e| e.id.clone()).collect();
            let known: HashSet<EventId> = if ids.is_empty() {
                HashSet::new()
            } else {
                self.store.known_events(ids).await?.into_iter().collect()
            };
            let last = page.events.last().map(|e| e.id.clone());
            for event in page.events {
                if known.contains(&event.id) {
                    report.already_applied += 1;
                } else {
                    missing.push(event);
                }
            }
            if !page.has_more || last.is_none() || last == cursor {
                break;
            }
            cursor = last;
            if !self.renew(self.clock.now()).await? {
                return Err(CatchupError::InProgress);
            }
        }

        // Stripe lists newest first: reversed, oldest first; the stable sort keeps
        // Stripe's order among events of one second.
        missing.reverse();
        missing.sort_by_key(|e| e.created);
        let mut retry_from: Option<DateTime<Utc>> = None;
        for (n, event) in missing.into_iter().enumerate() {
            if n > 0 && n % RENEW_EVERY == 0 && !self.renew(self.clock.now()).await? {
                return Err(CatchupError::InProgress);
            }
            let created = event.created;
            match applier.apply_caught_up(event.raw).await {
                Ok(receipt) => match receipt.outcome {
                    EventOutcome::Duplicate => report.already_applied += 1,
                    EventOutcome::Unmatched => report.unmatched += 1,
                    EventOutcome::Failed => report.failed += 1,
                    EventOutcome::Processed | EventOutcome::Stale | EventOutcome::Ignored => {
                        report.applied += 1;
                    }
                },
                Err(e) => {
                    warn!(error = %e, stripe.event_id = %event.id, "caught-up event not applied; tried again next pass");
                    report.failed += 1;
                    retry_from.get_or_insert(created);
                }
            }
        }

        if since.is_none_or(|s| s <= from_watermark) {
            let watermark = retry_from.unwrap_or(now);
            if self
                .store
                .set_watermark(&self.settings.holder, watermark)
                .await?
            {
                report.watermark = Some(watermark);
            } else {
                return Err(CatchupError::InProgress);
            }
        }
        Ok(report)
    }
}

fn lag_of(now: DateTime<Utc>, watermark: DateTime<Utc>) -> Duration {
    (now - watermark).to_std().unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests;
