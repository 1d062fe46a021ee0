//! The use cases behind every endpoint: `BillingApi` is the inbound port the HTTP adapter
//! calls, `BillingService` implements it over the outbound ports.
//!
//! Authorisation rules live here (a tenant token reaches only its own tenant; admin-only
//! operations), so that every adapter gets them the same way.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tracing::instrument;
use url::Url;

use crate::auth::Actor;
use crate::error::BillingError;
use crate::ids::EventId;
use crate::ids::{CheckoutSessionRef, CustomerRef, TenantId};
use crate::model::{
    Invoice, InvoiceKey, InvoiceStatus, LedgerEntry, LedgerQuery, NewInvoice, NewPlan, Payment,
    Plan, PlanKey, PlanPatch, Subscription, Tenant, MAX_DESCRIPTION_LEN,
};
use crate::page::{Page, PageRequest};
use crate::ports::{
    CheckoutRequest, CheckoutSession, CheckoutSessionRepository, ClientSecret, Clock, HealthCheck,
    IntentState, InvoiceQuery, InvoiceRepository, LedgerRepository, NewLedgerEntry,
    PaymentIntentRequest, PaymentProvider, PaymentQuery, PaymentRepository, PlanRepository,
    ProviderError, RepoError, SessionEnd, SubscriptionRepository, TenantRepository, WebhookStore,
    WebhookVerifier,
};
use crate::webhook::{PaymentEvent, ProviderEvent};

mod webhook;

use webhook::Delivery;
pub use webhook::{SameSecondTie, WebhookError, WebhookReceipt};

/// A tenant with its current subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantOverview {
    /// The tenant.
    pub tenant: Tenant,
    /// Its current subscription (newest live one, else newest `incomplete` one, else
    /// newest), if any.
    pub subscription: Option<Subscription>,
}

/// What a caller asks Checkout for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutInput {
    /// The tenant subscribing.
    pub tenant: TenantId,
    /// The plan, by id or code.
    pub plan: PlanKey,
    /// A Stripe customer to reuse.
    pub customer: Option<CustomerRef>,
}

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
}

/// Settings the rules need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
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
}

impl BillingService {
    /// Builds the service.
    #[must_use]
    pub fn new(ports: Ports, settings: BillingSettings) -> Self {
        Self { ports, settings }
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

    fn check_return_url(&self, raw: &str) -> Result<(), BillingError> {
        let url =
            Url::parse(raw).map_err(|_| BillingError::InvalidReturnUrl("not an absolute URL"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(BillingError::InvalidReturnUrl(
                "scheme must be http or https",
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(BillingError::InvalidReturnUrl(
                "credentials are not allowed",
            ));
        }
        let host = url
            .host_str()
            .ok_or(BillingError::InvalidReturnUrl("no host"))?
            .to_ascii_lowercase();
        if self.settings.allowed_return_hosts.contains(&host) {
            Ok(())
        } else {
            Err(BillingError::InvalidReturnUrl("host is not allowed"))
        }
    }

    /// Makes `new` the tenant's only open Checkout Session: each completed session starts
    /// a subscription and Stripe would bill both, so the tenant's older open sessions
    /// (an abandoned tab, say) are expired at Stripe first.
    ///
    /// * An older session turns out completed: the tenant has subscribed (its webhook may
    ///   not be here yet). The new session is expired too; 409 `subscription_exists`.
    /// * Stripe or the database fails: the new session is expired (best effort) and the
    ///   error answered; a retry expires the older ones again.
    /// * Two sessions opened at once: recording is serialised per tenant, so the one
    ///   recorded second expires the first, and one survives. The first caller may then
    ///   hold an expired session (a double click); its page says so at Stripe.
    async fn keep_one_open_session(
        &self,
        tenant: TenantId,
        new: &CheckoutSessionRef,
    ) -> Result<(), BillingError> {
        let now = self.ports.clock.now();
        let refused = match self.expire_older_sessions(tenant, new, now).await {
            Ok(false) => return Ok(()),
            Ok(true) => {
                tracing::warn!(
                    tenant.id = %tenant,
                    "an earlier checkout of the tenant was completed; the new one is withdrawn"
                );
                BillingError::AlreadySubscribed(tenant)
            }
            Err(e) => e,
        };
        // Withdrawn, best effort: one left open is expired by the tenant's next checkout
        // (it stays recorded as open).
        if let Err(error) = self.end_session(new, now).await {
            tracing::warn!(
                stripe.checkout_session = %new,
                error = %error,
                "could not withdraw a checkout session; the tenant's next checkout expires it"
            );
        }
        Err(refused)
    }

    /// Records `new` and ends the tenant's older open sessions; `true` when one of them had
    /// been completed.
    async fn expire_older_sessions(
        &self,
        tenant: TenantId,
        new: &CheckoutSessionRef,
        now: DateTime<Utc>,
    ) -> Result<bool, BillingError> {
        let older = self
            .ports
            .checkout_sessions
            .record_open(tenant, new, now)
            .await?;
        let mut completed = false;
        for session in older {
            completed |= self.end_session(&session, now).await? == SessionEnd::Completed;
        }
        Ok(completed)
    }

    /// Expires a session at Stripe and records how it ended.
    async fn end_session(
        &self,
        session: &CheckoutSessionRef,
        now: DateTime<Utc>,
    ) -> Result<SessionEnd, BillingError> {
        let end = self.ports.provider.expire_checkout_session(session).await?;
        self.ports
            .checkout_sessions
            .close(session, end, now)
            .await?;
        Ok(end)
    }

    /// Whether the event comes from the other mode (live or test) than the service's.
    fn other_mode(&self, event: &ProviderEvent) -> bool {
        self.settings
            .livemode
            .is_some_and(|live| live != event.livemode)
    }

    /// Applies a parsed event: one transaction, and on a same-second tie about a
    /// subscription, a second one with Stripe's current state of it.
    async fn apply(
        &self,
        event: ProviderEvent,
        payload: Arc<str>,
        delivery: Delivery,
    ) -> Result<WebhookReceipt, WebhookError> {
        let delivery = if self.other_mode(&event) {
            Delivery::OtherMode
        } else {
            delivery
        };
        let now = self.ports.clock.now();
        let entry = NewLedgerEntry {
            event_id: event.id.clone(),
            kind: event.kind.clone(),
            created: event.created,
            api_version: event.api_version.clone(),
            livemode: event.livemode,
            received_at: now,
            outcome: webhook::expected_outcome(&event.event, delivery),
            payload,
        };
        let event = Arc::new(event);
        let first = self
            .ports
            .webhooks
            .apply(webhook::work(
                Arc::clone(&event),
                entry.clone(),
                delivery,
                now,
            ))
            .await;
        let applied = match first {
            Err(RepoError::Unexpected(e)) if e.is::<SameSecondTie>() => {
                let (fresh, delivery) = match self.refetched(&event, &e).await? {
                    Some(fresh) => (Arc::new(fresh), Delivery::Refetched),
                    None => (Arc::clone(&event), Delivery::Unsettled),
                };
                self.ports
                    .webhooks
                    .apply(webhook::work(fresh, entry, delivery, now))
                    .await
            }
            other => other,
        }
        .map_err(|e| match e {
            RepoError::Unavailable(src) => WebhookError::Unavailable(src),
            other => WebhookError::Unexpected(Box::new(other)),
        })?;
        Ok(WebhookReceipt {
            event_id: event.id.clone(),
            kind: event.kind.clone(),
            created: event.created,
            api_version: event.api_version.clone(),
            outcome: applied.outcome,
            detail: applied.detail,
        })
    }

    /// The event with its subscription snapshot replaced by Stripe's current state;
    /// `None` when Stripe no longer knows the subscription (a redelivery cannot change
    /// that, so the event is recorded as failed rather than answered 5xx forever).
    async fn refetched(
        &self,
        event: &ProviderEvent,
        tie: &crate::ports::BoxError,
    ) -> Result<Option<ProviderEvent>, WebhookError> {
        let Some(SameSecondTie(subscription)) = tie.downcast_ref::<SameSecondTie>() else {
            return Err(WebhookError::Unexpected(
                "tie without a subscription".into(),
            ));
        };
        let current = match self.ports.provider.subscription(subscription).await {
            Ok(current) => current,
            Err(ProviderError::Refused { .. }) => return Ok(None),
            Err(e) => return Err(WebhookError::Unavailable(Box::new(e))),
        };
        let mut fresh = event.clone();
        fresh.event = match &event.event {
            PaymentEvent::SubscriptionDeleted(_) => PaymentEvent::SubscriptionDeleted(current),
            _ => PaymentEvent::SubscriptionUpdated(current),
        };
        Ok(Some(fresh))
    }

    async fn find_invoice(&self, key: &InvoiceKey) -> Result<Invoice, BillingError> {
        self.ports
            .invoices
            .get(key)
            .await?
            .ok_or_else(|| BillingError::InvoiceNotFound(key.to_string()))
    }

    /// A PaymentIntent may be handed out again while the customer has not paid through it
    /// and it was not canceled.
    async fn usable_intent(
        &self,
        id: &crate::ids::PaymentIntentRef,
    ) -> Result<Option<ClientSecret>, BillingError> {
        let intent = self.ports.provider.payment_intent(id).await?;
        match intent.state {
            IntentState::AwaitingPayment | IntentState::Processing => {
                Ok(Some(intent.client_secret))
            }
            IntentState::Succeeded => Err(BillingError::InvoiceNotPayable(InvoiceStatus::Paid)),
            IntentState::Canceled => Ok(None),
        }
    }
}

fn validate_name(name: &str) -> Result<(), BillingError> {
    if name.trim().is_empty() || name.chars().count() > 200 {
        return Err(BillingError::Invalid(
            "name must be 1-200 characters and not blank".into(),
        ));
    }
    Ok(())
}

#[async_trait]
impl BillingApi for BillingService {
    #[instrument(skip_all)]
    async fn list_plans(
        &self,
        actor: &Actor,
        include_inactive: bool,
    ) -> Result<Vec<Plan>, BillingError> {
        Ok(self
            .ports
            .plans
            .list(include_inactive && actor.admin)
            .await?)
    }

    #[instrument(skip_all, fields(plan.key = %key))]
    async fn get_plan(&self, _actor: &Actor, key: &PlanKey) -> Result<Plan, BillingError> {
        self.ports
            .plans
            .get(key)
            .await?
            .ok_or_else(|| BillingError::PlanNotFound(key.to_string()))
    }

    #[instrument(skip_all, fields(plan.code = %plan.code))]
    async fn create_plan(&self, actor: &Actor, plan: NewPlan) -> Result<Plan, BillingError> {
        Self::require_admin(actor)?;
        validate_name(&plan.name)?;
        match self.ports.plans.create(plan).await {
            Err(RepoError::Conflict(field)) => Err(BillingError::PlanExists(field)),
            other => Ok(other?),
        }
    }

    #[instrument(skip_all, fields(plan.key = %key))]
    async fn update_plan(
        &self,
        actor: &Actor,
        key: &PlanKey,
        patch: PlanPatch,
    ) -> Result<Plan, BillingError> {
        Self::require_admin(actor)?;
        if patch.is_empty() {
            return Err(BillingError::Invalid("the patch changes nothing".into()));
        }
        if let Some(name) = &patch.name {
            validate_name(name)?;
        }
        let plan = self.get_plan(actor, key).await?;
        match self.ports.plans.update(plan.id, patch).await {
            Err(RepoError::Conflict(field)) => Err(BillingError::PlanExists(field)),
            other => other?.ok_or_else(|| BillingError::PlanNotFound(key.to_string())),
        }
    }

    #[instrument(skip_all, fields(tenant.id = %id))]
    async fn get_tenant(
        &self,
        actor: &Actor,
        id: TenantId,
    ) -> Result<TenantOverview, BillingError> {
        Self::require_tenant(actor, id)?;
        let tenant = self
            .ports
            .tenants
            .get(id)
            .await?
            .ok_or(BillingError::TenantNotFound(id))?;
        let subscription = self.ports.subscriptions.current_for_tenant(id).await?;
        Ok(TenantOverview {
            tenant,
            subscription,
        })
    }

    #[instrument(skip_all, fields(tenant.id = %id))]
    async fn tenant_subscription(
        &self,
        actor: &Actor,
        id: TenantId,
    ) -> Result<Subscription, BillingError> {
        Self::require_tenant(actor, id)?;
        self.ports
            .subscriptions
            .current_for_tenant(id)
            .await?
            .ok_or(BillingError::SubscriptionNotFound(id))
    }

    #[instrument(skip_all)]
    async fn list_invoices(
        &self,
        actor: &Actor,
        mut query: InvoiceQuery,
        page: PageRequest,
    ) -> Result<Page<Invoice>, BillingError> {
        query.tenant = Self::scope(actor, query.tenant)?;
        Ok(self.ports.invoices.list(query, page).await?)
    }

    #[instrument(skip_all, fields(invoice.key = %key))]
    async fn get_invoice(&self, actor: &Actor, key: &InvoiceKey) -> Result<Invoice, BillingError> {
        let invoice = self.find_invoice(key).await?;
        Self::require_tenant(actor, invoice.tenant_id)?;
        Ok(invoice)
    }

    #[instrument(skip_all, fields(tenant.id = %invoice.tenant_id))]
    async fn create_invoice(
        &self,
        actor: &Actor,
        invoice: NewInvoice,
    ) -> Result<Invoice, BillingError> {
        Self::require_admin(actor)?;
        if invoice.amount_due.is_zero() {
            return Err(BillingError::Invalid(
                "amountDue must be greater than zero".into(),
            ));
        }
        if invoice
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > MAX_DESCRIPTION_LEN)
        {
            return Err(BillingError::Invalid(format!(
                "description must be at most {MAX_DESCRIPTION_LEN} characters"
            )));
        }
        match self.ports.invoices.create(invoice).await {
            Err(RepoError::Conflict(_)) => Err(BillingError::InvoiceExists),
            other => Ok(other?),
        }
    }

    #[instrument(skip_all)]
    async fn list_payments(
        &self,
        actor: &Actor,
        mut query: PaymentQuery,
        page: PageRequest,
    ) -> Result<Page<Payment>, BillingError> {
        query.tenant = Self::scope(actor, query.tenant)?;
        Ok(self.ports.payments.list(query, page).await?)
    }

    #[instrument(skip_all)]
    async fn list_events(
        &self,
        actor: &Actor,
        query: LedgerQuery,
        page: PageRequest,
    ) -> Result<Page<LedgerEntry>, BillingError> {
        Self::require_admin(actor)?;
        Ok(self.ports.ledger.list(query, page).await?)
    }

    #[instrument(skip_all, fields(tenant.id = %input.tenant, plan.key = %input.plan))]
    async fn start_checkout(
        &self,
        actor: &Actor,
        input: CheckoutInput,
    ) -> Result<CheckoutSession, BillingError> {
        Self::require_tenant(actor, input.tenant)?;
        let plan = self
            .ports
            .plans
            .get(&input.plan)
            .await?
            .ok_or_else(|| BillingError::PlanNotFound(input.plan.to_string()))?;
        if !plan.active {
            return Err(BillingError::PlanInactive(plan.code.to_string()));
        }
        let tenant = self.ports.tenants.ensure(input.tenant).await?;
        if let Some(current) = self
            .ports
            .subscriptions
            .current_for_tenant(tenant.id)
            .await?
        {
            if current.status.blocks_checkout() {
                return Err(BillingError::AlreadySubscribed(tenant.id));
            }
        }
        let customer = match input.customer {
            Some(given) => {
                let owner = self.ports.tenants.find_by_customer(&given).await?;
                if owner.is_some_and(|o| o.id != tenant.id) {
                    return Err(BillingError::CustomerOfAnotherTenant);
                }
                Some(given)
            }
            None => tenant.customer.clone(),
        };
        let request = CheckoutRequest {
            tenant: tenant.id,
            plan: plan.id,
            price: plan.price.clone(),
            customer,
            trial_days: plan.trial_days,
            // A checkout is not naturally idempotent (a user may open a new session after
            // abandoning one), so each call gets its own key, kept across the client's
            // retries of that one call.
            idempotency_key: format!("checkout-{}-{}", tenant.id, uuid::Uuid::new_v4()),
        };
        let session = self
            .ports
            .provider
            .create_checkout_session(&request)
            .await?;
        self.keep_one_open_session(tenant.id, &session.id).await?;
        Ok(session)
    }

    #[instrument(skip_all, fields(stripe.customer = %customer))]
    async fn open_portal(
        &self,
        actor: &Actor,
        customer: &CustomerRef,
        return_url: Option<String>,
    ) -> Result<String, BillingError> {
        let owner = self.ports.tenants.find_by_customer(customer).await?;
        let owner = match owner {
            Some(t) if actor.may_act_for(t.id) => t,
            Some(t) => return Err(BillingError::Forbidden(t.id)),
            None => return Err(BillingError::CustomerNotFound(customer.to_string())),
        };
        let return_url = match return_url {
            Some(url) => {
                self.check_return_url(&url)?;
                url
            }
            None => self
                .settings
                .portal_return_url
                .clone()
                .ok_or(BillingError::ReturnUrlRequired)?,
        };
        tracing::debug!(tenant.id = %owner.id, "opening customer portal");
        Ok(self
            .ports
            .provider
            .create_portal_session(customer, &return_url)
            .await?)
    }

    #[instrument(skip_all, fields(invoice.key = %key))]
    async fn invoice_payment_intent(
        &self,
        actor: &Actor,
        key: &InvoiceKey,
    ) -> Result<ClientSecret, BillingError> {
        let invoice = self.find_invoice(key).await?;
        Self::require_tenant(actor, invoice.tenant_id)?;
        if !invoice.status.is_payable() {
            return Err(BillingError::InvoiceNotPayable(invoice.status));
        }
        let remaining = invoice
            .amount_remaining()
            .map_err(|e| BillingError::Unexpected(Box::new(e)))?;
        if remaining.is_zero() {
            return Err(BillingError::NothingToPay);
        }

        // 1. Ours, or one Stripe made for its invoice: hand the same one out again.
        let mut known = invoice.payment_intent.clone();
        if known.is_none() {
            if let Some(stripe_invoice) = &invoice.invoice_ref {
                known = self
                    .ports
                    .provider
                    .invoice_payment_intent(stripe_invoice, None)
                    .await?;
                if known.is_none() {
                    return Err(BillingError::InvoicePaymentPending);
                }
            }
        }
        if let Some(existing) = &known {
            if let Some(secret) = self.usable_intent(existing).await? {
                if invoice.payment_intent.as_ref() != Some(existing) {
                    self.ports
                        .invoices
                        .attach_payment_intent(invoice.id, existing, None)
                        .await?;
                }
                return Ok(secret);
            }
        }
        // A Stripe invoice is collected by Stripe's own PaymentIntents only: when Stripe's
        // was canceled (the invoice voided, or the attempt replaced), a PaymentIntent of
        // ours would charge outside the invoice while Stripe may still collect it.
        if invoice.invoice_ref.is_some() {
            return Err(BillingError::InvoicePaymentPending);
        }

        // 2. A new one. The key depends only on the invoice, the amount and the intent it
        //    replaces, so concurrent callers send the same request and Stripe creates one.
        let replaces = known.as_ref().map_or("none", |p| p.as_str());
        let tenant = self.ports.tenants.get(invoice.tenant_id).await?;
        let request = PaymentIntentRequest {
            invoice: invoice.id,
            tenant: invoice.tenant_id,
            amount: remaining,
            customer: tenant.and_then(|t| t.customer),
            idempotency_key: format!(
                "invoice-{}-pi-{}{}-after-{replaces}",
                invoice.id,
                remaining.minor(),
                remaining.currency()
            ),
        };
        let created = self.ports.provider.create_payment_intent(&request).await?;
        let stored = self
            .ports
            .invoices
            .attach_payment_intent(invoice.id, &created.id, known)
            .await?
            .ok_or_else(|| BillingError::InvoiceNotFound(key.to_string()))?;
        match stored.payment_intent {
            Some(winner) if winner != created.id => {
                // Someone attached another intent between our read and our write: answer
                // with theirs so that the customer never holds two.
                self.usable_intent(&winner)
                    .await?
                    .ok_or(BillingError::InvoicePaymentPending)
            }
            _ => Ok(created.client_secret),
        }
    }

    async fn ready(&self) -> Result<(), BillingError> {
        Ok(self.ports.health.ping().await?)
    }

    #[instrument(skip_all, fields(stripe.event_id, stripe.event_type))]
    async fn receive_webhook(
        &self,
        payload: &[u8],
        signature: Option<String>,
    ) -> Result<WebhookReceipt, WebhookError> {
        let now = self.ports.clock.now();
        self.ports
            .verifier
            .verify(payload, signature.as_deref(), now)?;
        let event = self
            .ports
            .verifier
            .parse(payload)
            .map_err(|e| WebhookError::InvalidPayload(e.0))?;
        let span = tracing::Span::current();
        span.record("stripe.event_id", event.id.as_str());
        span.record("stripe.event_type", event.kind.as_str());
        // `parse` accepted it as JSON, so it is UTF-8.
        let text = std::str::from_utf8(payload)
            .map_err(|_| WebhookError::InvalidPayload("body is not UTF-8".into()))?;
        self.apply(event, Arc::from(text), Delivery::Webhook).await
    }

    #[instrument(skip_all, fields(stripe.event_id = %id))]
    async fn replay_event(
        &self,
        actor: &Actor,
        id: &EventId,
    ) -> Result<WebhookReceipt, BillingError> {
        Self::require_admin(actor)?;
        let raw = match self.ports.provider.fetch_event(id).await {
            Err(ProviderError::Refused {
                not_found: true, ..
            }) => return Err(BillingError::EventNotFound(id.to_string())),
            other => other?,
        };
        let event = self.ports.verifier.parse(&raw).map_err(|e| {
            BillingError::ProviderUnavailable(
                format!("Stripe sent an unreadable event: {e}").into(),
            )
        })?;
        if event.id != *id {
            return Err(BillingError::ProviderUnavailable(
                "Stripe answered with another event".into(),
            ));
        }
        let text = String::from_utf8(raw).map_err(|e| BillingError::Unexpected(Box::new(e)))?;
        self.apply(event, Arc::from(text), Delivery::Replay)
            .await
            .map_err(|e| match e {
                WebhookError::Unavailable(src) => BillingError::Unavailable(src),
                other => BillingError::Unexpected(Box::new(other)),
            })
    }
}

#[cfg(test)]
mod tests;
