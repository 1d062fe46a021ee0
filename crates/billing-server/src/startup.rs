//! Wiring: concrete adapters behind the domain's ports, the HTTP server, the outbox
//! dispatcher, and a shutdown that lets in-flight requests finish.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::http::KeepAlive;
use actix_web::HttpServer;
use billing_domain::jobs::linker::PaymentIntentLinker;
use billing_domain::jobs::outbox::OutboxDispatcher;
use billing_domain::metrics::BillingMetrics;
use billing_domain::ports::{Clock, Notifier, PaymentProvider, SystemClock};
use billing_domain::{BillingApi, BillingService, BillingSettings, Ports};
use billing_http::{AppState, Authenticator, Jwks, TokenPolicy};
use billing_notifier::{HttpNotifier, LogNotifier};
use billing_postgres::{PgConfig, PgStore};
use billing_stripe::StripeWebhookVerifier;
use billing_stripe::{RetryPolicy, StripeClient, StripeConfig};
use secrecy::ExposeSecret;
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, JwtKey};
use crate::metrics::Metrics;
use crate::queues::{dispatch_outbox, link_payment_intents};

/// Why the service could not start.
#[derive(Debug, Error)]
pub enum StartupError {
    /// The database could not be created or migrated.
    #[error("database setup failed: {0}")]
    Database(String),
    /// The JWT key (or key set URL) is unusable.
    #[error("JWT key: {0}")]
    JwtKey(String),
    /// The Stripe client could not be built.
    #[error("Stripe client: {0}")]
    Stripe(String),
    /// The notifier could not be built.
    #[error("notifier: {0}")]
    Notifier(String),
    /// The port could not be bound.
    #[error("cannot listen: {0}")]
    Bind(#[from] std::io::Error),
}

/// Creates the database when missing and applies pending migrations under the advisory
/// lock. Blocking work, run off the async workers.
///
/// # Errors
/// [`StartupError::Database`] naming what failed (the URL's password is never printed).
pub async fn migrate(database_url: &str) -> Result<Vec<String>, StartupError> {
    let url = database_url.to_owned();
    tokio::task::spawn_blocking(move || {
        billing_postgres::ensure_database(&url)
            .map_err(|e| StartupError::Database(e.to_string()))?;
        billing_postgres::run_migrations(&url).map_err(|e| StartupError::Database(e.to_string()))
    })
    .await
    .map_err(|e| StartupError::Database(e.to_string()))?
}

/// A running service.
pub struct Application {
    port: u16,
    server: Server,
    dispatcher: JoinHandle<()>,
    linker: JoinHandle<()>,
    catchup: Option<JoinHandle<()>>,
    /// The billing events' dispatchers and gauges (issue 16).
    events_out: Vec<JoinHandle<()>>,
    stop_dispatcher: watch::Sender<bool>,
    store: PgStore,
}

impl Application {
    /// Builds everything and binds `listener` (port 0 in tests). Does not migrate: call
    /// [`migrate`] first when the configuration asks for it.
    ///
    /// # Errors
    /// [`StartupError`] for an unusable key or client.
    pub fn build(config: &Config, listener: TcpListener) -> Result<Self, StartupError> {
        let port = listener.local_addr()?.port();
        let metrics = Arc::new(Metrics::new());
        metrics.set_pinned_api_version(&config.stripe.api_version);
        if let Err(e) = crate::build_info::register(metrics.registry()) {
            tracing::warn!(error = %e, "billing_build_info not exported");
        }
        let reporter: Arc<dyn BillingMetrics> = metrics.clone();
        // The outbox stores each notification's document as the notifier renders it.
        let store = PgStore::new(&PgConfig {
            max_connections: config.database_max_connections,
            ..PgConfig::new(config.database_url())
        })
        .with_notification_format(billing_notifier::render_document)
        .with_billing_events(crate::events_out::setup(&config.billing_events));

        let mut stripe = StripeConfig::new(
            config.stripe.api_key.clone(),
            config.stripe.checkout_success_url.clone(),
            config.stripe.checkout_cancel_url.clone(),
        );
        stripe.api_base = config.stripe.api_base.clone();
        stripe.api_version.clone_from(&config.stripe.api_version);
        stripe.retry = RetryPolicy {
            max_retries: config.stripe.max_retries,
            per_try_timeout: config.stripe.request_timeout,
            deadline: config.stripe.deadline,
            ..RetryPolicy::default()
        };
        let client = StripeClient::new(stripe)
            .map_err(|e| StartupError::Stripe(e.to_string()))?
            .reporting_to(reporter.clone());
        // The background callers (catch-up, linker) share one rate budget, on a client
        // of their own: the request path's calls never wait behind them.
        let budget = Arc::new(billing_stripe::RateBudget::new(
            config.stripe.background_rate.unwrap_or_else(|| {
                billing_stripe::RateBudget::default_rate(
                    config.stripe.api_key.as_ref().map(|k| k.expose_secret()),
                )
            }),
        ));
        let background: Arc<dyn PaymentProvider> = Arc::new(client.clone().with_budget(budget));
        let provider: Arc<dyn PaymentProvider> = Arc::new(client);
        let verifier = StripeWebhookVerifier::new(
            config.stripe.webhook_secrets.clone(),
            config.stripe.webhook_tolerance,
        );
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let shared = Arc::new(store.clone());
        let catchup = billing_domain::jobs::catchup::CatchupJob::new(
            shared.clone(),
            background.clone(),
            clock.clone(),
            reporter.clone(),
            billing_domain::jobs::catchup::CatchupSettings::new(crate::catchup_loop::lease_holder()),
        );
        let service = BillingService::new(
            Ports {
                tenants: shared.clone(),
                plans: shared.clone(),
                subscriptions: shared.clone(),
                invoices: shared.clone(),
                payments: shared.clone(),
                ledger: shared.clone(),
                health: shared.clone(),
                webhooks: shared.clone(),
                checkout_sessions: shared.clone(),
                provider: provider.clone(),
                verifier: Arc::new(verifier),
                clock: clock.clone(),
            },
            BillingSettings {
                portal_return_url: config.portal_return_url.clone(),
                allowed_return_hosts: config.allowed_return_hosts.clone(),
                livemode: config
                    .stripe
                    .api_key
                    .as_ref()
                    .and_then(|key| billing_stripe::key_livemode(key.expose_secret())),
                access_grace: chrono::Duration::days(i64::from(config.access_grace_days)),
                access_cache_ttl: chrono::Duration::milliseconds(i64::from(config.access_cache_ms)),
            },
        )
        .with_catchup(catchup)
        .with_events_outbox(Arc::new(store.clone()))
        .with_reconciler(shared.clone(), reporter.clone());
        let reconciler = service.shared_reconciler();
        let service = Arc::new(service);
        let api: Arc<dyn BillingApi> = service.clone();

        let auth = match &config.jwt {
            JwtKey::Hs256(secret) => {
                Authenticator::hs256(secret.expose_secret().as_bytes()).map_err(|e| e.to_string())
            }
            JwtKey::Rs256Pem(pem) => {
                Authenticator::rs256_pem(pem.as_bytes()).map_err(|e| e.to_string())
            }
            JwtKey::Jwks(url) => Jwks::new(url.as_str())
                .map_err(|e| e.to_string())
                .and_then(|jwks| Authenticator::jwks(jwks).map_err(|e| e.to_string())),
        }
        .map_err(StartupError::JwtKey)?
        .with_policy(TokenPolicy {
            issuer: config.jwt_claims.issuer.clone(),
            audience: config.jwt_claims.audience.clone(),
            tenant_claim: config.jwt_claims.tenant_claim.clone(),
            roles_claim: config.jwt_claims.roles_claim.clone(),
        });
        if matches!(config.jwt, JwtKey::Jwks(_)) {
            // The first requests need not wait for the key set; a failure is logged and
            // the first token tries again.
            let prefetching = auth.clone();
            tokio::spawn(async move {
                if prefetching.prefetch().await {
                    tracing::info!("identity provider's key set fetched");
                }
            });
        }

        let sampled = store.clone();
        metrics.on_scrape(move |m| {
            let (in_use, idle) = sampled.pool_state();
            m.set_db_pool(in_use, idle, sampled.max_connections(), sampled.waiting());
        });

        let notifier: Arc<dyn Notifier> = match &config.notifications_url {
            Some(url) => Arc::new(
                HttpNotifier::new(url.clone(), Duration::from_secs(10))
                    .map_err(|e| StartupError::Notifier(e.to_string()))?,
            ),
            None => Arc::new(LogNotifier),
        };
        let dispatcher = OutboxDispatcher::new(
            Arc::new(store.clone()),
            notifier,
            clock.clone(),
            billing_domain::jobs::outbox::default_policy(),
        );
        let linker = PaymentIntentLinker::new(
            Arc::new(store.clone()),
            background.clone(),
            clock.clone(),
            billing_domain::jobs::linker::default_policy(),
        );
        let (stop_dispatcher, stopped) = watch::channel(false);
        // The reconciliation sweep (issue 15): stops with the dispatcher's signal. Its
        // Stripe calls go through the background provider and its rate budget.
        if let (Some(reconciler), false) = (reconciler, config.reconcile_interval.is_zero()) {
            drop(tokio::spawn(crate::reconcile_sweep::run(
                reconciler,
                background.clone(),
                config.reconcile_interval,
                stopped.clone(),
            )));
        }
        let dispatcher = tokio::spawn(dispatch_outbox(
            dispatcher,
            reporter.clone(),
            stopped.clone(),
        ));
        let catchup = (!config.stripe.catchup_interval.is_zero()).then(|| {
            tokio::spawn(crate::catchup_loop::catch_up(
                service,
                config.stripe.catchup_interval,
                stopped.clone(),
            ))
        });
        let events_out_metrics = crate::events_out::EventsOutMetrics::register(metrics.registry())
            .map_err(|e| StartupError::Notifier(e.to_string()))?;
        let events_out = crate::events_out::start(
            &config.billing_events,
            &store,
            &clock,
            &events_out_metrics,
            &stopped,
        )
        .map_err(StartupError::Notifier)?;
        let linker = tokio::spawn(link_payment_intents(linker, reporter, stopped));

        let state = AppState { api, auth, metrics };
        let mut server = HttpServer::new(move || billing_http::app(state.clone()))
            // Set explicitly (tests/resilience relies on them): a client has 5 s to send a
            // whole request head, or gets 408 and the connection closed (slowloris, idle
            // sockets that never send a request); an idle keep-alive connection is closed
            // after HTTP_KEEP_ALIVE_SECS; a closing connection gets 1 s. Request heads of
            // 128 KiB or more get 431 (actix, fixed).
            .client_request_timeout(Duration::from_secs(5))
            .keep_alive(if config.keep_alive.is_zero() {
                KeepAlive::Disabled
            } else {
                KeepAlive::Timeout(config.keep_alive)
            })
            .client_disconnect_timeout(Duration::from_secs(1))
            .shutdown_timeout(config.shutdown_timeout.as_secs())
            .listen(listener)?;
        if let Some(workers) = config.workers {
            server = server.workers(workers);
        }
        Ok(Self {
            port,
            server: server.run(),
            dispatcher,
            linker,
            catchup,
            events_out,
            stop_dispatcher,
            store,
        })
    }

    /// The bound port.
    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// A handle to stop the server (graceful).
    #[must_use]
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM, SIGINT or [`ServerHandle::stop`]; in-flight requests get up
    /// to the shutdown timeout to finish, then the dispatcher stops and the pool closes.
    ///
    /// # Errors
    /// The server's I/O error.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        let _ = self.stop_dispatcher.send(true);
        if let Err(e) = self.dispatcher.await {
            tracing::warn!(error = %e, "outbox dispatcher ended abnormally");
        }
        if let Err(e) = self.linker.await {
            tracing::warn!(error = %e, "PaymentIntent linker ended abnormally");
        }
        if let Some(catchup) = self.catchup {
            if let Err(e) = catchup.await {
                tracing::warn!(error = %e, "catch-up ended abnormally");
            }
        }
        for task in self.events_out {
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "billing events dispatcher ended abnormally");
            }
        }
        drop(self.store);
        tracing::info!("stopped");
        served
    }
}

/// One plan `--dev` seeds, with the emulator price it is billed by.
#[derive(Debug, Clone, Copy)]
pub struct DevPlan {
    /// Plan code (also what `planId` accepts).
    pub code: &'static str,
    /// Display name.
    pub name: &'static str,
    /// The emulator's price id.
    pub price: &'static str,
    /// Monthly amount in cents (usd).
    pub amount: i64,
    /// Trial days.
    pub trial_days: Option<i64>,
}

/// The plans `--dev` seeds into an empty plans table.
pub const DEV_PLANS: [DevPlan; 3] = [
    DevPlan {
        code: "plan-basic",
        name: "Basic",
        price: "price_dev_basic_monthly",
        amount: 900,
        trial_days: None,
    },
    DevPlan {
        code: "plan-pro",
        name: "Pro",
        price: "price_dev_pro_monthly",
        amount: 2900,
        trial_days: None,
    },
    DevPlan {
        code: "plan-trial",
        name: "Trial",
        price: "price_dev_trial_monthly",
        amount: 1900,
        trial_days: Some(14),
    },
];

/// The test key the service uses against the in-process emulator.
pub const DEV_EMULATOR_API_KEY: &str = "sk_test_emulator_local";

/// `--dev` without `STRIPE_API_KEY`: starts the Stripe emulator on `listen` (knowing the
/// [`DEV_PLANS`] prices, signing with a webhook secret made now, forwarding to
/// `webhook_url`) and points `config`'s Stripe client and webhook verifier at it.
///
/// # Errors
/// [`StartupError::Bind`] when the emulator's port cannot be bound;
/// [`StartupError::Stripe`] for an unusable base URL.
pub async fn start_dev_emulator(
    config: &mut Config,
    listen: std::net::SocketAddr,
    webhook_url: String,
) -> Result<billing_stripe_emulator::StripeEmulator, StartupError> {
    use billing_stripe_emulator::{EmulatorConfig, PriceSeed, StripeEmulator};
    let webhook_secret = format!("whsec_test_{}", crate::config::random_secret());
    let emulator = StripeEmulator::start(EmulatorConfig {
        addr: listen,
        forward_to: Some(webhook_url),
        webhook_secret: webhook_secret.clone(),
        api_key: Some(DEV_EMULATOR_API_KEY.to_owned()),
        prices: DEV_PLANS
            .iter()
            .map(|plan| PriceSeed {
                id: plan.price.to_owned(),
                product_name: plan.name.to_owned(),
                unit_amount: plan.amount,
                currency: "usd".to_owned(),
                interval: Some("month".to_owned()),
            })
            .collect(),
        ..EmulatorConfig::default()
    })
    .await?;
    config.stripe.api_base = url::Url::parse(&emulator.base_url())
        .map_err(|e| StartupError::Stripe(format!("emulator base URL: {e}")))?;
    config.stripe.api_key = Some(secrecy::SecretString::from(DEV_EMULATOR_API_KEY));
    config.stripe.webhook_secrets = vec![secrecy::SecretString::from(webhook_secret)];
    Ok(emulator)
}

/// `--dev` with the emulator and no `CHECKOUT_SUCCESS_URL`: where Checkout sends the
/// browser after paying, the emulator's page of the completed session (its receipt), in
/// place of the platform's own success page, which this service does not serve.
#[must_use]
pub fn dev_checkout_success_url(emulator: &billing_stripe_emulator::StripeEmulator) -> String {
    format!(
        "{}/c/pay/{{CHECKOUT_SESSION_ID}}",
        emulator.base_url().trim_end_matches('/')
    )
}

/// `--dev`: when the plans table is empty, creates [`DEV_PLANS`]; returns whether it did.
///
/// # Errors
/// [`StartupError::Database`] when the plans cannot be read or stored.
pub async fn seed_dev_plans(config: &Config) -> Result<bool, StartupError> {
    use billing_domain::ports::PlanRepository;
    use billing_domain::{
        BillingInterval, Currency, Features, Money, NewPlan, PlanCode, PriceRef, TrialDays,
    };
    let store = PgStore::new(&PgConfig {
        max_connections: 2,
        ..PgConfig::new(config.database_url())
    });
    let db = |e: &dyn std::fmt::Display| StartupError::Database(e.to_string());
    if !store.list(true).await.map_err(|e| db(&e))?.is_empty() {
        return Ok(false);
    }
    let usd = Currency::parse("usd").map_err(|e| db(&e))?;
    for plan in DEV_PLANS {
        let new = NewPlan {
            code: PlanCode::parse(plan.code).map_err(|_| db(&"bad plan code"))?,
            name: plan.name.to_owned(),
            price: PriceRef::parse(plan.price).map_err(|_| db(&"bad price id"))?,
            amount: Money::new(plan.amount, usd).map_err(|e| db(&e))?,
            interval: BillingInterval::Month,
            trial_days: plan
                .trial_days
                .map(TrialDays::new)
                .transpose()
                .map_err(|_| db(&"bad trial days"))?,
            features: Features::default(),
        };
        store.create(new).await.map_err(|e| db(&e))?;
    }
    Ok(true)
}
