//! The Stripe API client: [`StripeClient`] implements the domain's [`PaymentProvider`].
//!
//! The client is split into the transport and the operations:
//!
//! * [`config`]: Stripe's defaults, [`StripeConfig`] and the [`RetryPolicy`];
//! * [`transport`]: the one private `call()` that owns headers, idempotency keys, retries,
//!   timeouts and telemetry ([`CallRecord`], [`StripeMetrics`]); `reqwest` never leaves it;
//! * one file per operation group: [`checkout`], [`portal`], [`payment_intent`] and
//!   [`lookups`], which build a request, read the 2xx body and see [`ProviderError`] only.
//!
//! The [`PaymentProvider`] implementation below is their table of contents.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use billing_domain::ids::{
    CheckoutSessionRef, CustomerRef, EventId, InvoiceRef, PaymentIntentRef, SubscriptionRef,
};
use billing_domain::ports::{
    BoxError, CheckoutRequest, CheckoutSession, PaymentIntentInfo, PaymentIntentRequest,
    PaymentProvider, ProviderError, SessionEnd,
};
use billing_domain::webhook::SubscriptionSnapshot;
use secrecy::ExposeSecret;
use thiserror::Error;

mod checkout;
mod config;
mod lookups;
mod payment_intent;
mod portal;
mod reconcile;
mod self_service;
mod transport;

pub use checkout::CHECKOUT_SESSION_ID_TEMPLATE;
pub use config::{AppInfo, RetryPolicy, StripeConfig, DEFAULT_API_BASE, DEFAULT_API_VERSION};
pub use transport::{CallOutcome, CallRecord, StripeMetrics};

/// The client could not be built from its configuration.
#[derive(Debug, Error)]
#[error("cannot build the Stripe client: {0}")]
pub struct ClientBuildError(#[source] BoxError);

/// Stripe's API over HTTP, implementing [`PaymentProvider`].
#[derive(Clone)]
pub struct StripeClient {
    http: reqwest::Client,
    config: StripeConfig,
    success_url: String,
    metrics: Option<Arc<dyn StripeMetrics>>,
    /// The background rate budget, for the background instance only ([`crate::budget`]).
    budget: Option<Arc<crate::budget::RateBudget>>,
}

impl fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StripeClient")
            .field("config", &self.config)
            .field("metrics", &self.metrics.is_some())
            .finish_non_exhaustive()
    }
}

impl StripeClient {
    /// Builds the client. A missing or blank API key is allowed (every call then answers
    /// [`ProviderError::NotConfigured`]).
    ///
    /// # Errors
    /// [`ClientBuildError`] when the API key or version cannot be sent as an HTTP header,
    /// or the HTTP stack cannot be initialised.
    pub fn new(config: StripeConfig) -> Result<Self, ClientBuildError> {
        if let Some(key) = &config.api_key {
            let key = key.expose_secret();
            // A blank key means "not configured", checked per call.
            if !key.trim().is_empty() && !key.chars().all(|c| c.is_ascii_graphic()) {
                // Never echo the key itself.
                return Err(ClientBuildError(
                    "the API key holds characters that cannot be sent in a header".into(),
                ));
            }
        }
        let http = transport::http_client(&config)?;
        let success_url = checkout::with_session_template(&config.checkout_success_url);
        Ok(Self {
            http,
            config,
            success_url,
            metrics: None,
            budget: None,
        })
    }

    /// Adds a metrics sink.
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<dyn StripeMetrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The same client paced by `budget` (every attempt takes a token; a 429 pauses it):
    /// the background callers' instance. The request path's client has none.
    #[must_use]
    pub fn with_budget(mut self, budget: Arc<crate::budget::RateBudget>) -> Self {
        self.budget = Some(budget);
        self
    }

    /// The configuration in use.
    #[must_use]
    pub fn config(&self) -> &StripeConfig {
        &self.config
    }

    /// Whether an API key is configured.
    #[must_use]
    pub fn is_configured(&self) -> bool {
        self.api_key().is_some()
    }

    /// The `success_url` sent to Checkout (the configured one, with the session template).
    #[must_use]
    pub fn checkout_success_url(&self) -> &str {
        &self.success_url
    }

    fn api_key(&self) -> Option<&str> {
        self.config
            .api_key
            .as_ref()
            .map(ExposeSecret::expose_secret)
            .filter(|k| !k.trim().is_empty())
    }
}

#[async_trait]
impl PaymentProvider for StripeClient {
    async fn create_checkout_session(
        &self,
        request: &CheckoutRequest,
    ) -> Result<CheckoutSession, ProviderError> {
        checkout::create_session(self, request).await
    }

    async fn expire_checkout_session(
        &self,
        session: &CheckoutSessionRef,
    ) -> Result<SessionEnd, ProviderError> {
        checkout::expire_session(self, session).await
    }

    async fn create_portal_session(
        &self,
        customer: &CustomerRef,
        return_url: &str,
    ) -> Result<String, ProviderError> {
        portal::create_session(self, customer, return_url).await
    }

    async fn create_payment_intent(
        &self,
        request: &PaymentIntentRequest,
    ) -> Result<PaymentIntentInfo, ProviderError> {
        payment_intent::create(self, request).await
    }

    async fn payment_intent(
        &self,
        id: &PaymentIntentRef,
    ) -> Result<PaymentIntentInfo, ProviderError> {
        payment_intent::retrieve(self, id).await
    }

    async fn invoice_payment_intent(
        &self,
        invoice: &InvoiceRef,
        budget: Option<Duration>,
    ) -> Result<Option<PaymentIntentRef>, ProviderError> {
        lookups::invoice_payment_intent(self, invoice, budget).await
    }

    async fn subscription(
        &self,
        id: &SubscriptionRef,
    ) -> Result<SubscriptionSnapshot, ProviderError> {
        lookups::subscription(self, id).await
    }

    async fn fetch_event(&self, id: &EventId) -> Result<Vec<u8>, ProviderError> {
        lookups::event(self, id).await
    }

    // ---- self-service changes and refunds (issue 16) ----
    async fn subscription_state(
        &self,
        id: &SubscriptionRef,
    ) -> Result<billing_domain::ports::SubscriptionState, ProviderError> {
        self_service::state(self, id).await
    }

    async fn update_subscription(
        &self,
        update: &billing_domain::ports::SubscriptionUpdate,
    ) -> Result<SubscriptionSnapshot, ProviderError> {
        self_service::update(self, update).await
    }

    async fn cancel_subscription_now(
        &self,
        id: &SubscriptionRef,
    ) -> Result<SubscriptionSnapshot, ProviderError> {
        self_service::cancel_now(self, id).await
    }

    async fn resume_subscription(
        &self,
        id: &SubscriptionRef,
        idempotency_key: &str,
    ) -> Result<SubscriptionSnapshot, ProviderError> {
        self_service::resume(self, id, idempotency_key).await
    }

    async fn preview_plan_change(
        &self,
        preview: &billing_domain::ports::PlanChangePreview,
    ) -> Result<billing_domain::ports::InvoicePreview, ProviderError> {
        self_service::preview(self, preview).await
    }

    async fn create_refund(
        &self,
        request: &billing_domain::ports::RefundRequest,
    ) -> Result<billing_domain::ports::CreatedRefund, ProviderError> {
        self_service::create_refund(self, request).await
    }

    async fn list_events(
        &self,
        created_gte: chrono::DateTime<chrono::Utc>,
        starting_after: Option<EventId>,
    ) -> Result<billing_domain::ports::EventPage, ProviderError> {
        lookups::list_events(self, created_gte, starting_after).await
    }

    // ---- reconciliation (issue 15) ----
    async fn list_subscriptions(
        &self,
        customer: &CustomerRef,
    ) -> Result<Vec<SubscriptionSnapshot>, ProviderError> {
        reconcile::list_subscriptions(self, customer).await
    }

    async fn list_open_invoices(
        &self,
        customer: &CustomerRef,
    ) -> Result<Vec<billing_domain::webhook::InvoiceSnapshot>, ProviderError> {
        reconcile::list_open_invoices(self, customer).await
    }

    async fn invoice(
        &self,
        id: &InvoiceRef,
    ) -> Result<billing_domain::webhook::InvoiceSnapshot, ProviderError> {
        reconcile::invoice(self, id).await
    }

    async fn checkout_session(
        &self,
        id: &CheckoutSessionRef,
    ) -> Result<billing_domain::ports::CheckoutSessionState, ProviderError> {
        reconcile::checkout_session(self, id).await
    }
}
