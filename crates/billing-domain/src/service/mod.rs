//! The use cases behind every endpoint: `BillingApi` is the inbound port the HTTP adapter
//! calls, `BillingService` implements it over the outbound ports.
//!
//! Authorisation rules live here (a tenant token reaches only its own tenant; admin-only
//! operations), so that every adapter gets them the same way.

use std::sync::Arc;

use async_trait::async_trait;

use crate::auth::Actor;
use crate::error::BillingError;
use crate::ids::{CustomerRef, EventId, PaymentId, TenantId};
use crate::model::{Dispute, PaymentDetail};
use crate::model::{
    Invoice, InvoiceKey, LedgerEntry, LedgerQuery, NewInvoice, NewPlan, Payment, Plan, PlanKey,
    PlanPatch, Subscription,
};
use crate::page::{Page, PageRequest};
use crate::ports::DisputeQuery;
use crate::ports::{
    CheckoutSession, CheckoutSessionRepository, ClientSecret, Clock, HealthCheck, InvoiceQuery,
    InvoiceRepository, LedgerRepository, PaymentProvider, PaymentQuery, PaymentRepository,
    PlanRepository, SubscriptionRepository, TenantRepository, WebhookStore, WebhookVerifier,
};

mod access;
mod checkout;
mod events_out;
mod invoices;
mod payment_intent;
mod plans;
mod portal;
mod reconcile;
mod self_service;
mod tenants;
mod webhook;
pub(crate) use webhook::reconcile as webhook_reconcile;

pub use access::TenantAccess;
pub use checkout::CheckoutInput;
pub use reconcile::CheckoutReturn;
pub use self_service::{change_key, refund_key, PlanChange, RefundInput};
pub use tenants::TenantOverview;
pub use webhook::{WebhookError, WebhookReceipt};

/// The billing use cases: the inbound port.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait BillingApi: Send + Sync {
    /// Plans, by code. Inactive ones only for admins who ask.
    async fn list_plans(
        &self,
        actor: &Actor,
        include_inactive: bool,
    ) -> Result<Vec<Plan>, BillingError>;
    /// One plan by id or code.
    async fn get_plan(&self, actor: &Actor, key: &PlanKey) -> Result<Plan, BillingError>;
    /// Creates a plan (admin).
    async fn create_plan(&self, actor: &Actor, plan: NewPlan) -> Result<Plan, BillingError>;
    /// Changes a plan (admin).
    async fn update_plan(
        &self,
        actor: &Actor,
        key: &PlanKey,
        patch: PlanPatch,
    ) -> Result<Plan, BillingError>;
    /// A tenant with its current subscription.
    async fn get_tenant(&self, actor: &Actor, id: TenantId)
        -> Result<TenantOverview, BillingError>;
    /// A tenant's current subscription.
    async fn tenant_subscription(
        &self,
        actor: &Actor,
        id: TenantId,
    ) -> Result<Subscription, BillingError>;
    /// Whether a tenant may use the platform now, from one read of its current
    /// subscription and plan (the tenant itself or admin).
    async fn tenant_access(
        &self,
        actor: &Actor,
        id: TenantId,
    ) -> Result<TenantAccess, BillingError>;
    /// A page of invoices; a tenant token sees only its own.
    async fn list_invoices(
        &self,
        actor: &Actor,
        query: InvoiceQuery,
        page: PageRequest,
    ) -> Result<Page<Invoice>, BillingError>;
    /// One invoice by id or number.
    async fn get_invoice(&self, actor: &Actor, key: &InvoiceKey) -> Result<Invoice, BillingError>;
    /// Creates an invoice (admin).
    async fn create_invoice(
        &self,
        actor: &Actor,
        invoice: NewInvoice,
    ) -> Result<Invoice, BillingError>;
    /// A page of payments; a tenant token sees only its own.
    async fn list_payments(
        &self,
        actor: &Actor,
        query: PaymentQuery,
        page: PageRequest,
    ) -> Result<Page<Payment>, BillingError>;
    /// A page of the webhook event ledger (admin).
    async fn list_events(
        &self,
        actor: &Actor,
        query: LedgerQuery,
        page: PageRequest,
    ) -> Result<Page<LedgerEntry>, BillingError>;
    /// Opens a Stripe Checkout Session for a subscription.
    async fn start_checkout(
        &self,
        actor: &Actor,
        input: CheckoutInput,
    ) -> Result<CheckoutSession, BillingError>;
    /// Opens a Customer Portal session; returns its URL.
    async fn open_portal(
        &self,
        actor: &Actor,
        customer: &CustomerRef,
        return_url: Option<String>,
    ) -> Result<String, BillingError>;
    /// The client secret of the one PaymentIntent collecting an invoice.
    async fn invoice_payment_intent(
        &self,
        actor: &Actor,
        key: &InvoiceKey,
    ) -> Result<ClientSecret, BillingError>;
    /// Whether the storage answers.
    async fn ready(&self) -> Result<(), BillingError>;
    // ---- billing events out (issue 16) ----
    /// A page of the billing events' deliveries (admin), newest first.
    async fn list_outbox(
        &self,
        actor: &Actor,
        status: Option<crate::events_out::DeliveryStatus>,
        page: PageRequest,
    ) -> Result<Page<crate::events_out::OutboxEntry>, BillingError>;
    /// Makes a dead delivery pending again (admin).
    async fn retry_outbox_entry(
        &self,
        actor: &Actor,
        id: crate::ids::BillingDeliveryId,
    ) -> Result<(), BillingError>;
    /// Verifies and applies one webhook delivery (raw body and `Stripe-Signature`).
    async fn receive_webhook(
        &self,
        payload: &[u8],
        signature: Option<String>,
    ) -> Result<WebhookReceipt, WebhookError>;
    /// Fetches an event from Stripe again and applies it through the same path (admin);
    /// an `unmatched` or `failed` event is applied anew.
    async fn replay_event(
        &self,
        actor: &Actor,
        id: &EventId,
    ) -> Result<WebhookReceipt, BillingError>;
    // ---- reconciliation (issue 15) ----
    /// Re-reads a tenant's subscriptions and open invoices from Stripe and corrects what
    /// differs (the tenant itself or admin).
    async fn sync_tenant(
        &self,
        actor: &Actor,
        tenant: TenantId,
    ) -> Result<crate::jobs::reconcile::ReconcileReport, BillingError>;
    /// Reads a Checkout Session back from Stripe and, when complete, applies it as its
    /// `checkout.session.completed` would be (the session's tenant or admin).
    async fn checkout_return(
        &self,
        actor: &Actor,
        session: &crate::ids::CheckoutSessionRef,
    ) -> Result<CheckoutReturn, BillingError>;
    // ---- refunds and disputes (issue 14) ----
    /// One payment with its refunds and disputes; a tenant token reaches only its own.
    async fn get_payment(
        &self,
        actor: &Actor,
        id: PaymentId,
    ) -> Result<PaymentDetail, BillingError>;
    /// A page of disputes (admin).
    async fn list_disputes(
        &self,
        actor: &Actor,
        query: DisputeQuery,
        page: PageRequest,
    ) -> Result<Page<Dispute>, BillingError>;
    // ---- catch-up (issue 15) ----
    /// Runs a catch-up pass over Stripe's Events API now (admin), from `since` when
    /// given, else from the watermark.
    async fn sync_events(
        &self,
        actor: &Actor,
        since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<crate::jobs::catchup::CatchupReport, BillingError>;
    // ---- self-service changes and refunds (issue 16) ----
    /// Cancels the tenant's subscription at period end (`at_period_end`) or now.
    async fn cancel_subscription(
        &self,
        actor: &Actor,
        tenant: TenantId,
        at_period_end: bool,
    ) -> Result<Subscription, BillingError>;
    /// Undoes a cancel at period end, or resumes a paused subscription.
    async fn resume_subscription(
        &self,
        actor: &Actor,
        tenant: TenantId,
    ) -> Result<Subscription, BillingError>;
    /// Moves the tenant's subscription to another plan.
    async fn change_plan(
        &self,
        actor: &Actor,
        tenant: TenantId,
        change: PlanChange,
    ) -> Result<Subscription, BillingError>;
    /// Stripe's preview of the invoice after a plan change.
    async fn preview_plan_change(
        &self,
        actor: &Actor,
        tenant: TenantId,
        change: PlanChange,
    ) -> Result<crate::ports::InvoicePreview, BillingError>;
    /// Refunds a payment, all that is left or `amount` of it (admin).
    async fn create_refund(
        &self,
        actor: &Actor,
        payment: PaymentId,
        input: RefundInput,
    ) -> Result<crate::model::Refund, BillingError>;
}

/// Settings the rules need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillingSettings {
    /// Default portal return URL.
    pub portal_return_url: Option<String>,
    /// Hosts a caller-given return URL may point to (lower-case).
    pub allowed_return_hosts: Vec<String>,
    /// Whether the provider account the service works with is in live mode (`None`: not
    /// known, every event is accepted). A correctly signed event of the other mode (a
    /// test-mode endpoint's secret configured on a live service, say) is recorded as
    /// `failed` (replayable once the keys are fixed) and changes nothing: a test-mode
    /// checkout must never activate a tenant.
    pub livemode: Option<bool>,
    /// How long a `past_due` subscription stays entitled after its first failed payment
    /// (`ACCESS_GRACE_DAYS`, default [`BillingSettings::DEFAULT_ACCESS_GRACE_DAYS`]).
    pub access_grace: chrono::Duration,
    /// How long an entitled access answer is kept in memory (`ACCESS_CACHE_MS`, default
    /// [`BillingSettings::DEFAULT_ACCESS_CACHE_MS`]; zero keeps none). See
    /// `service/access.rs`.
    pub access_cache_ttl: chrono::Duration,
}

impl BillingSettings {
    /// The default grace of a `past_due` subscription, in days (SPEC §9).
    pub const DEFAULT_ACCESS_GRACE_DAYS: u32 = 7;
    /// How long an entitled access answer is kept by default, in milliseconds.
    pub const DEFAULT_ACCESS_CACHE_MS: u32 = 1000;
}

impl Default for BillingSettings {
    fn default() -> Self {
        Self {
            portal_return_url: None,
            allowed_return_hosts: Vec::new(),
            livemode: None,
            access_grace: chrono::Duration::days(i64::from(Self::DEFAULT_ACCESS_GRACE_DAYS)),
            access_cache_ttl: chrono::Duration::milliseconds(i64::from(
                Self::DEFAULT_ACCESS_CACHE_MS,
            )),
        }
    }
}

/// The outbound ports `BillingService` works through.
#[derive(Clone)]
pub struct Ports {
    /// Tenants.
    pub tenants: Arc<dyn TenantRepository>,
    /// Plans.
    pub plans: Arc<dyn PlanRepository>,
    /// Subscriptions.
    pub subscriptions: Arc<dyn SubscriptionRepository>,
    /// Invoices.
    pub invoices: Arc<dyn InvoiceRepository>,
    /// Payments.
    pub payments: Arc<dyn PaymentRepository>,
    /// Event ledger.
    pub ledger: Arc<dyn LedgerRepository>,
    /// Storage health.
    pub health: Arc<dyn HealthCheck>,
    /// Stripe.
    pub provider: Arc<dyn PaymentProvider>,
    /// Webhook signature check and event parsing.
    pub verifier: Arc<dyn WebhookVerifier>,
    /// Webhook transactions.
    pub webhooks: Arc<dyn WebhookStore>,
    /// The Checkout Sessions the service opened.
    pub checkout_sessions: Arc<dyn CheckoutSessionRepository>,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// The billing rules.
pub struct BillingService {
    ports: Ports,
    settings: BillingSettings,
    access_cache: Arc<access::AccessCache>,
    catchup: Option<Arc<crate::jobs::catchup::CatchupJob>>,
    /// Reconciliation (issue 15), wired by [`BillingService::with_reconciler`].
    reconciler: Option<Arc<crate::jobs::reconcile::Reconciler>>,
    /// The billing events' outbox, for its admin endpoints (issue 16).
    events_outbox: Option<Arc<dyn crate::events_out::BillingEventOutbox>>,
}

impl BillingService {
    /// Builds the service.
    #[must_use]
    pub fn new(mut ports: Ports, settings: BillingSettings) -> Self {
        let access_cache = access::AccessCache::new(&settings);
        // Every unit of work emits the billing events of what it changed (SPEC §9).
        ports.webhooks = Arc::new(crate::events_out::emit::EmittingStore::new(
            ports.webhooks,
            Arc::clone(&ports.clock),
        ));
        ports.webhooks = Arc::new(access::ClearingStore {
            inner: ports.webhooks,
            cache: Arc::clone(&access_cache),
        });
        Self {
            ports,
            settings,
            access_cache,
            catchup: None,
            events_outbox: None,
            reconciler: None,
        }
    }

    /// Wires reconciliation (issue 15): corrections go through this service's webhook
    /// store (so its access cache is cleared too) and are counted in `metrics`. The
    /// returned service also hands the [`Reconciler`](crate::jobs::reconcile::Reconciler)
    /// to the periodic sweep ([`BillingService::shared_reconciler`]).
    #[must_use]
    pub fn with_reconciler(
        mut self,
        repo: Arc<dyn crate::ports::ReconcileRepository>,
        metrics: Arc<dyn crate::metrics::BillingMetrics>,
    ) -> Self {
        self.reconciler = Some(Arc::new(crate::jobs::reconcile::Reconciler::new(
            Arc::clone(&self.ports.webhooks),
            repo,
            Arc::clone(&self.ports.clock),
            metrics,
        )));
        self
    }

    /// The reconciliation, for the periodic sweep; `None` unless wired.
    #[must_use]
    pub fn shared_reconciler(&self) -> Option<Arc<crate::jobs::reconcile::Reconciler>> {
        self.reconciler.clone()
    }

    /// Adds the catch-up ([`crate::jobs::catchup`]) that [`BillingApi::sync_events`] and
    /// [`BillingService::catch_up`] run.
    #[must_use]
    pub fn with_catchup(mut self, job: crate::jobs::catchup::CatchupJob) -> Self {
        self.catchup = Some(Arc::new(job));
        self
    }

    /// Runs one catch-up pass through this service's webhook path.
    ///
    /// # Errors
    /// [`crate::jobs::catchup::CatchupError`]; `Provider(NotConfigured)` when no
    /// catch-up was added.
    pub async fn catch_up(
        &self,
        since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<crate::jobs::catchup::CatchupReport, crate::jobs::catchup::CatchupError> {
        match &self.catchup {
            Some(job) => job.run_once(self, since).await,
            None => Err(crate::jobs::catchup::CatchupError::Provider(
                crate::ports::ProviderError::NotConfigured,
            )),
        }
    }

    /// The service, answering the billing events' outbox admin endpoints from `outbox`
    /// (without it they answer an internal error).
    #[must_use]
    pub fn with_events_outbox(
        mut self,
        outbox: Arc<dyn crate::events_out::BillingEventOutbox>,
    ) -> Self {
        self.events_outbox = Some(outbox);
        self
    }

    fn require_admin(actor: &Actor) -> Result<(), BillingError> {
        if actor.admin {
            Ok(())
        } else {
            Err(BillingError::AdminOnly)
        }
    }

    fn require_tenant(actor: &Actor, tenant: TenantId) -> Result<(), BillingError> {
        if actor.may_act_for(tenant) {
            Ok(())
        } else {
            Err(BillingError::Forbidden(tenant))
        }
    }

    /// The tenant filter a listing runs with: an admin's as given, a tenant token's own.
    fn scope(actor: &Actor, asked: Option<TenantId>) -> Result<Option<TenantId>, BillingError> {
        match (actor.admin, asked, actor.tenant) {
            (true, asked, _) => Ok(asked),
            (false, Some(t), _) => Self::require_tenant(actor, t).map(|()| Some(t)),
            (false, None, Some(own)) => Ok(Some(own)),
            (false, None, None) => Err(BillingError::NoTenant),
        }
    }
}

#[async_trait]
impl BillingApi for BillingService {
    async fn list_plans(
        &self,
        actor: &Actor,
        include_inactive: bool,
    ) -> Result<Vec<Plan>, BillingError> {
        self.list_plans(actor, include_inactive).await
    }

    async fn get_plan(&self, _actor: &Actor, key: &PlanKey) -> Result<Plan, BillingError> {
        self.get_plan(_actor, key).await
    }

    async fn create_plan(&self, actor: &Actor, plan: NewPlan) -> Result<Plan, BillingError> {
        self.create_plan(actor, plan).await
    }

    async fn update_plan(
        &self,
        actor: &Actor,
        key: &PlanKey,
        patch: PlanPatch,
    ) -> Result<Plan, BillingError> {
        self.update_plan(actor, key, patch).await
    }

    async fn get_tenant(
        &self,
        actor: &Actor,
        id: TenantId,
    ) -> Result<TenantOverview, BillingError> {
        self.get_tenant(actor, id).await
    }

    async fn tenant_subscription(
        &self,
        actor: &Actor,
        id: TenantId,
    ) -> Result<Subscription, BillingError> {
        self.tenant_subscription(actor, id).await
    }

    async fn tenant_access(
        &self,
        actor: &Actor,
        id: TenantId,
    ) -> Result<TenantAccess, BillingError> {
        self.tenant_access(actor, id).await
    }

    async fn list_invoices(
        &self,
        actor: &Actor,
        query: InvoiceQuery,
        page: PageRequest,
    ) -> Result<Page<Invoice>, BillingError> {
        self.list_invoices(actor, query, page).await
    }

    async fn get_invoice(&self, actor: &Actor, key: &InvoiceKey) -> Result<Invoice, BillingError> {
        self.get_invoice(actor, key).await
    }

    async fn create_invoice(
        &self,
        actor: &Actor,
        invoice: NewInvoice,
    ) -> Result<Invoice, BillingError> {
        self.create_invoice(actor, invoice).await
    }

    async fn list_payments(
        &self,
        actor: &Actor,
        query: PaymentQuery,
        page: PageRequest,
    ) -> Result<Page<Payment>, BillingError> {
        self.list_payments(actor, query, page).await
    }

    async fn list_events(
        &self,
        actor: &Actor,
        query: LedgerQuery,
        page: PageRequest,
    ) -> Result<Page<LedgerEntry>, BillingError> {
        self.list_events(actor, query, page).await
    }

    async fn start_checkout(
        &self,
        actor: &Actor,
        input: CheckoutInput,
    ) -> Result<CheckoutSession, BillingError> {
        self.start_checkout(actor, input).await
    }

    async fn open_portal(
        &self,
        actor: &Actor,
        customer: &CustomerRef,
        return_url: Option<String>,
    ) -> Result<String, BillingError> {
        self.open_portal(actor, customer, return_url).await
    }

    async fn invoice_payment_intent(
        &self,
        actor: &Actor,
        key: &InvoiceKey,
    ) -> Result<ClientSecret, BillingError> {
        self.invoice_payment_intent(actor, key).await
    }

    async fn ready(&self) -> Result<(), BillingError> {
        Ok(self.ports.health.ping().await?)
    }

    async fn list_outbox(
        &self,
        actor: &Actor,
        status: Option<crate::events_out::DeliveryStatus>,
        page: PageRequest,
    ) -> Result<Page<crate::events_out::OutboxEntry>, BillingError> {
        self.list_outbox(actor, status, page).await
    }

    async fn retry_outbox_entry(
        &self,
        actor: &Actor,
        id: crate::ids::BillingDeliveryId,
    ) -> Result<(), BillingError> {
        self.retry_outbox_entry(actor, id).await
    }

    async fn receive_webhook(
        &self,
        payload: &[u8],
        signature: Option<String>,
    ) -> Result<WebhookReceipt, WebhookError> {
        self.receive_webhook(payload, signature).await
    }

    async fn replay_event(
        &self,
        actor: &Actor,
        id: &EventId,
    ) -> Result<WebhookReceipt, BillingError> {
        self.replay_event(actor, id).await
    }

    async fn get_payment(
        &self,
        actor: &Actor,
        id: PaymentId,
    ) -> Result<PaymentDetail, BillingError> {
        self.get_payment(actor, id).await
    }

    async fn list_disputes(
        &self,
        actor: &Actor,
        query: DisputeQuery,
        page: PageRequest,
    ) -> Result<Page<Dispute>, BillingError> {
        self.list_disputes(actor, query, page).await
    }
    async fn cancel_subscription(
        &self,
        actor: &Actor,
        tenant: TenantId,
        at_period_end: bool,
    ) -> Result<Subscription, BillingError> {
        self.cancel_subscription(actor, tenant, at_period_end).await
    }

    async fn resume_subscription(
        &self,
        actor: &Actor,
        tenant: TenantId,
    ) -> Result<Subscription, BillingError> {
        self.resume_subscription(actor, tenant).await
    }

    async fn change_plan(
        &self,
        actor: &Actor,
        tenant: TenantId,
        change: PlanChange,
    ) -> Result<Subscription, BillingError> {
        self.change_plan(actor, tenant, change).await
    }

    async fn preview_plan_change(
        &self,
        actor: &Actor,
        tenant: TenantId,
        change: PlanChange,
    ) -> Result<crate::ports::InvoicePreview, BillingError> {
        self.preview_plan_change(actor, tenant, change).await
    }

    async fn create_refund(
        &self,
        actor: &Actor,
        payment: PaymentId,
        input: RefundInput,
    ) -> Result<crate::model::Refund, BillingError> {
        self.create_refund(actor, payment, input).await
    }

    async fn sync_events(
        &self,
        actor: &Actor,
        since: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<crate::jobs::catchup::CatchupReport, BillingError> {
        use crate::jobs::catchup::CatchupError;
        Self::require_admin(actor)?;
        self.catch_up(since).await.map_err(|e| match e {
            CatchupError::InProgress => BillingError::CatchupInProgress,
            CatchupError::Provider(e) => e.into(),
            CatchupError::Repo(e) => e.into(),
        })
    }

    async fn sync_tenant(
        &self,
        actor: &Actor,
        tenant: TenantId,
    ) -> Result<crate::jobs::reconcile::ReconcileReport, BillingError> {
        self.sync_tenant(actor, tenant).await
    }

    async fn checkout_return(
        &self,
        actor: &Actor,
        session: &crate::ids::CheckoutSessionRef,
    ) -> Result<CheckoutReturn, BillingError> {
        self.checkout_return(actor, session).await
    }
}

#[async_trait]
impl crate::jobs::catchup::EventApplier for BillingService {
    async fn apply_caught_up(&self, payload: Vec<u8>) -> Result<WebhookReceipt, WebhookError> {
        BillingService::apply_caught_up(self, &payload).await
    }
}

#[cfg(test)]
mod tests;
