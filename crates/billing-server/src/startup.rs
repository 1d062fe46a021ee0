//! Wiring: concrete adapters behind the domain's ports, the HTTP server, the outbox
//! dispatcher, and a shutdown that lets in-flight requests finish.

use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::{Server, ServerHandle};
use actix_web::http::KeepAlive;
use actix_web::HttpServer;
use billing_domain::jobs::linker::PaymentIntentLinker;
use billing_domain::jobs::outbox::OutboxDispatcher;
use billing_domain::jobs::PassReport;
use billing_domain::ports::{Clock, Notifier, PaymentProvider, RepoError, SystemClock};
use billing_domain::{BillingApi, BillingService, BillingSettings, Ports};
use billing_http::{AppState, Authenticator, Metrics};
use billing_notifier::{HttpNotifier, LogNotifier};
use billing_postgres::{PgConfig, PgStore};
use billing_stripe::StripeWebhookVerifier;
use billing_stripe::{CallRecord, RetryPolicy, StripeClient, StripeConfig, StripeMetrics};
use secrecy::ExposeSecret;
use thiserror::Error;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, JwtKey};

/// Why the service could not start.
#[derive(Debug, Error)]
pub enum StartupError {
    /// The database could not be created or migrated.
    #[error("database setup failed: {0}")]
    Database(String),
    /// The JWT key is unusable.
    #[error("JWT_PUBLIC_KEY is invalid: {0}")]
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

/// Forwards the Stripe client's call records to the metrics registry.
struct StripeCallMetrics(Metrics);

impl StripeMetrics for StripeCallMetrics {
    fn record(&self, call: &CallRecord) {
        self.0.observe_stripe_call(
            call.operation,
            call.outcome.as_str(),
            call.attempts,
            call.duration,
        );
    }
}

/// A running service.
pub struct Application {
    port: u16,
    server: Server,
    dispatcher: JoinHandle<()>,
    linker: JoinHandle<()>,
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
        let metrics = Metrics::new();
        if let Err(e) = crate::build_info::register(metrics.registry()) {
            tracing::warn!(error = %e, "billing_build_info not exported");
        }
        // The outbox stores each notification's document as the notifier renders it.
        let store = PgStore::new(&PgConfig {
            max_connections: config.database_max_connections,
            ..PgConfig::new(config.database_url())
        })
        .with_notification_format(billing_notifier::render_document);

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
        let provider: Arc<dyn PaymentProvider> = Arc::new(
            StripeClient::new(stripe)
                .map_err(|e| StartupError::Stripe(e.to_string()))?
                .with_metrics(Arc::new(StripeCallMetrics(metrics.clone()))),
        );
        let verifier = StripeWebhookVerifier::new(
            config.stripe.webhook_secrets.clone(),
            config.stripe.webhook_tolerance,
        );
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let shared = Arc::new(store.clone());
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
            },
        );
        let api: Arc<dyn BillingApi> = Arc::new(service);

        let auth = match &config.jwt {
            JwtKey::Hs256(secret) => Authenticator::hs256(secret.expose_secret().as_bytes()),
            JwtKey::Rs256Pem(pem) => Authenticator::rs256_pem(pem.as_bytes())
                .map_err(|e| StartupError::JwtKey(e.to_string()))?,
        };

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
            provider,
            clock,
            billing_domain::jobs::linker::default_policy(),
        );
        let (stop_dispatcher, stopped) = watch::channel(false);
        let dispatcher = tokio::spawn(dispatch_outbox(
            dispatcher,
            metrics.clone(),
            stopped.clone(),
        ));
        let linker = tokio::spawn(link_payment_intents(linker, metrics.clone(), stopped));

        metrics.set_pinned_api_version(&config.stripe.api_version);
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
        drop(self.store);
        tracing::info!("stopped");
        served
    }
}

/// How often a background queue (the outbox, the PaymentIntent lookups) is polled when it
/// was empty, or the pass failed.
const QUEUE_POLL: Duration = Duration::from_secs(1);

/// How soon a queue is polled again after a pass that found work but less than a batch.
/// Work arrives with the webhooks, so a queue that had some will soon have more: taking it
/// in small, frequent passes spreads its Stripe calls and writes over the second, where a
/// pass per [`QUEUE_POLL`] would take the whole second's worth at once, in a burst that
/// every request in flight then waits behind (the benchmark's p99).
const QUEUE_TRICKLE: Duration = Duration::from_millis(50);

async fn dispatch_outbox(
    dispatcher: OutboxDispatcher,
    metrics: Metrics,
    stop: watch::Receiver<bool>,
) {
    work_off(
        "outbox",
        dispatcher.policy().batch,
        || dispatcher.run_once(),
        || async {
            let n = dispatcher.backlog().await?;
            metrics.set_outbox_backlog(n);
            Ok(n)
        },
        |report| {
            metrics.add_outbox_failures(u64::from(report.retried + report.dead));
            metrics.add_outbox_dead(u64::from(report.dead));
        },
        stop,
    )
    .await;
}

async fn link_payment_intents(
    linker: PaymentIntentLinker,
    metrics: Metrics,
    stop: watch::Receiver<bool>,
) {
    work_off(
        "PaymentIntent lookup",
        linker.policy().batch,
        || linker.run_once(),
        || async {
            let n = linker.backlog().await?;
            metrics.set_lookups_pending(n);
            Ok(n)
        },
        |report| metrics.add_lookups_abandoned(u64::from(report.dead)),
        stop,
    )
    .await;
}

/// Whether a pass left work in its queue for later (items retried).
fn left_work(pass: &Result<PassReport, RepoError>) -> bool {
    pass.as_ref().is_ok_and(|report| report.retried > 0)
}

/// When a queue's backlog gauge is counted again: a `count(*)` over the queue's index,
/// cheap for a short queue but not for the long one an outage leaves, while passes then
/// come every [`QUEUE_TRICKLE`]. So at most once per [`QUEUE_POLL`], and at once when a
/// pass left work behind while the gauge shows none, so that a scrape that sees a failure
/// counted also sees a backlog.
struct BacklogGauge {
    started: Instant,
    /// Milliseconds after `started` when the next count is due.
    next_ms: AtomicU64,
    /// The backlog last shown.
    shown: AtomicU64,
}

impl Default for BacklogGauge {
    fn default() -> Self {
        Self {
            started: Instant::now(),
            next_ms: AtomicU64::new(0),
            shown: AtomicU64::new(0),
        }
    }
}

impl BacklogGauge {
    /// Whether to count the backlog now, after a pass that did or did not leave work.
    fn due(&self, now: Instant, left_work: bool) -> bool {
        let at = u64::try_from(now.saturating_duration_since(self.started).as_millis())
            .unwrap_or(u64::MAX);
        let due = at >= self.next_ms.load(Ordering::Relaxed)
            || (left_work && self.shown.load(Ordering::Relaxed) == 0);
        if due {
            let period = u64::try_from(QUEUE_POLL.as_millis()).unwrap_or(u64::MAX);
            self.next_ms
                .store(at.saturating_add(period), Ordering::Relaxed);
        }
        due
    }

    /// Records the backlog the gauge now shows.
    fn shown(&self, n: u64) {
        self.shown.store(n, Ordering::Relaxed);
    }
}

/// How long to wait before the next pass after one that handled `handled` items of a
/// `batch`: not at all after a full batch, [`QUEUE_TRICKLE`] after a partial one,
/// [`QUEUE_POLL`] after an empty one.
const fn next_pass(handled: u32, batch: u32) -> Option<Duration> {
    if handled >= batch {
        None
    } else if handled > 0 {
        Some(QUEUE_TRICKLE)
    } else {
        Some(QUEUE_POLL)
    }
}

/// Runs `pass` until `stop`, paced by [`next_pass`]. After each pass, `backlog` counts the
/// queue for its gauge when [`BacklogGauge`] says so, then `count` adds the pass to the
/// counters: the backlog first, so that a scrape that sees a failure counted also sees the
/// backlog that failure left behind.
async fn work_off<P, F, B, G, C>(
    what: &str,
    batch: u32,
    pass: P,
    backlog: B,
    count: C,
    mut stop: watch::Receiver<bool>,
) where
    P: Fn() -> F,
    F: std::future::Future<Output = Result<PassReport, RepoError>>,
    B: Fn() -> G,
    G: std::future::Future<Output = Result<u64, RepoError>>,
    C: Fn(&PassReport),
{
    let gauge = BacklogGauge::default();
    loop {
        let passed = pass().await;
        if gauge.due(Instant::now(), left_work(&passed)) {
            if let Ok(n) = backlog().await {
                gauge.shown(n);
            }
        }
        let pause = match passed {
            Ok(report) => {
                count(&report);
                next_pass(report.handled(), batch)
            }
            Err(e) => {
                tracing::warn!(queue = what, error = %e, "pass failed; retrying");
                Some(QUEUE_POLL)
            }
        };
        if *stop.borrow() {
            return;
        }
        let Some(pause) = pause else { continue };
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(pause) => {}
        }
        if *stop.borrow() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_queue_is_taken_again_at_once_after_a_full_batch_soon_after_some_work_and_later_when_empty()
    {
        assert_eq!(next_pass(10, 10), None);
        assert_eq!(next_pass(9, 10), Some(QUEUE_TRICKLE));
        assert_eq!(next_pass(1, 10), Some(QUEUE_TRICKLE));
        assert_eq!(next_pass(0, 10), Some(QUEUE_POLL));
        assert!(QUEUE_TRICKLE < QUEUE_POLL);
    }

    #[test]
    fn the_backlog_is_counted_at_most_once_a_second_unless_a_failure_left_work_unshown() {
        let gauge = BacklogGauge::default();
        let t0 = gauge.started;
        assert!(gauge.due(t0, false));
        gauge.shown(0);
        assert!(!gauge.due(t0 + Duration::from_millis(50), false));
        // A retry left work behind and the gauge still shows none: counted at once.
        assert!(gauge.due(t0 + Duration::from_millis(100), true));
        gauge.shown(3);
        // An outage's stream of retries: the gauge shows them; once a second is enough.
        assert!(!gauge.due(t0 + Duration::from_millis(150), true));
        assert!(!gauge.due(t0 + Duration::from_millis(1_050), true));
        assert!(gauge.due(t0 + Duration::from_millis(1_100), true));
        assert!(!gauge.due(t0 + Duration::from_millis(1_200), false));
        assert!(gauge.due(t0 + Duration::from_millis(2_100), false));
    }
}
