//! The access check (SPEC §9): the tenant's current subscription and plan, read once, and
//! [`decide_access`] on them; an entitled answer is then kept for a moment.
//!
//! Other services ask on every request, so an entitled answer is kept in memory for
//! [`BillingSettings::access_cache_ttl`] (`ACCESS_CACHE_MS`, default one second), never
//! past its own `until`. Only entitled answers are kept: a tenant that becomes entitled
//! (a checkout paid, a subscription resumed) is seen at once by every replica, while one
//! that loses access may keep it for at most the TTL on a replica that did not apply the
//! change. On the replica that did, every change applied through the webhook store (an
//! event, a replay, any later write of the same unit of work) empties the cache, so a
//! replica reads its own writes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tracing::instrument;

use super::{BillingService, BillingSettings};
use crate::auth::Actor;
use crate::error::BillingError;
use crate::ids::TenantId;
use crate::model::{decide_access, AccessDecision, Features, PlanCode, SubscriptionStatus};
use crate::ports::{RepoError, WebhookStore, WebhookWork, WorkOutcome};

/// What the access check answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantAccess {
    /// Entitled or not, why, and until when.
    pub decision: AccessDecision,
    /// The current subscription's plan, if any.
    pub plan_code: Option<PlanCode>,
    /// The plan's features while entitled; empty otherwise, so that a caller checking
    /// only the features never lets a tenant without access in.
    pub features: Features,
    /// The current subscription's status, if any.
    pub status: Option<SubscriptionStatus>,
}

impl BillingService {
    #[instrument(skip_all, fields(tenant.id = %id))]
    pub(super) async fn tenant_access(
        &self,
        actor: &Actor,
        id: TenantId,
    ) -> Result<TenantAccess, BillingError> {
        Self::require_tenant(actor, id)?;
        let now = self.ports.clock.now();
        if let Some(kept) = self.access_cache.get(id, now) {
            return Ok(kept);
        }
        // An unknown tenant has no subscription: answered from the same single read,
        // without a second query for the tenant itself.
        let current = self.ports.subscriptions.current_with_plan(id).await?;
        let decision = decide_access(
            current.as_ref().map(|(sub, _)| sub),
            now,
            self.settings.access_grace,
        );
        let access = match current {
            Some((sub, plan)) => TenantAccess {
                decision,
                plan_code: Some(plan.code),
                features: if decision.entitled {
                    plan.features
                } else {
                    Features::default()
                },
                status: Some(sub.status),
            },
            None => TenantAccess {
                decision,
                plan_code: None,
                features: Features::default(),
                status: None,
            },
        };
        self.access_cache.keep(id, &access, now);
        Ok(access)
    }
}

/// The entitled answers kept in memory, each until its expiry.
pub(super) struct AccessCache {
    /// How long an answer is kept; zero keeps none.
    ttl: chrono::Duration,
    entries: Mutex<HashMap<TenantId, (TenantAccess, DateTime<Utc>)>>,
}

impl AccessCache {
    /// At most this many answers are kept; past it, the expired ones are dropped, then all.
    const CAPACITY: usize = 100_000;

    pub(super) fn new(settings: &BillingSettings) -> Arc<Self> {
        Arc::new(Self {
            ttl: settings.access_cache_ttl,
            entries: Mutex::new(HashMap::new()),
        })
    }

    fn get(&self, tenant: TenantId, now: DateTime<Utc>) -> Option<TenantAccess> {
        if self.ttl <= chrono::Duration::zero() {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(&tenant)
            .filter(|(_, expires)| now < *expires)
            .map(|(access, _)| access.clone())
    }

    fn keep(&self, tenant: TenantId, access: &TenantAccess, now: DateTime<Utc>) {
        if self.ttl <= chrono::Duration::zero() || !access.decision.entitled {
            return;
        }
        let expires = access
            .decision
            .until
            .map_or(now + self.ttl, |until| until.min(now + self.ttl));
        if expires <= now {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= Self::CAPACITY {
            entries.retain(|_, (_, at)| now < *at);
            if entries.len() >= Self::CAPACITY {
                entries.clear();
            }
        }
        entries.insert(tenant, (access.clone(), expires));
    }

    /// Forgets every answer: this replica just changed something.
    fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}

/// The webhook store, emptying the access cache after every unit of work it commits.
pub(super) struct ClearingStore {
    pub(super) inner: Arc<dyn WebhookStore>,
    pub(super) cache: Arc<AccessCache>,
}

#[async_trait]
impl WebhookStore for ClearingStore {
    async fn apply(&self, work: WebhookWork) -> Result<WorkOutcome, RepoError> {
        let outcome = self.inner.apply(work).await?;
        if matches!(outcome, WorkOutcome::Applied(_)) {
            self.cache.clear();
        }
        Ok(outcome)
    }
}
