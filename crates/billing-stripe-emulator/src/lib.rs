#![doc = include_str!("../README.md")]

mod api;
mod api_billing;
mod api_invoices;
mod api_subscriptions;
mod checkout;
mod clock;
mod config;
mod controls;
mod engine;
mod error;
mod events;
mod failure;
pub mod fixtures;
mod invoices;
mod objects;
mod pages;
mod rate_limit;
mod request;
mod routes;
mod server;
mod store;
pub mod validation;
mod webhooks;

use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::oneshot;

pub use checkout::{Authentication, CheckoutError};
pub use config::{AfterRetries, EmulatorConfig, PriceSeed};
pub use events::API_VERSION;
pub use failure::Failure;
pub use request::RecordedRequest;
pub use webhooks::signature_header;

use server::{lock, Shared};
use store::{set, Card, Store};

/// A running Stripe emulator.
///
/// The server runs on its own thread with its own two-worker tokio runtime, so it keeps
/// answering even when the caller's runtime is single-threaded or busy. Dropping the handle
/// stops it too; [`StripeEmulator::stop`] additionally waits until it is gone.
#[derive(Debug)]
pub struct StripeEmulator {
    addr: SocketAddr,
    shared: Arc<Shared>,
    secret: String,
    shutdown: Option<oneshot::Sender<()>>,
    stopped: Option<oneshot::Receiver<()>>,
}

/// The emulator with [`EmulatorConfig::lenient`] settings, as the service's older tests use
/// it (`FakeStripe::start()`); every [`StripeEmulator`] method is available through `Deref`.
#[derive(Debug)]
pub struct FakeStripe(StripeEmulator);

impl Deref for FakeStripe {
    type Target = StripeEmulator;

    fn deref(&self) -> &StripeEmulator {
        &self.0
    }
}

impl FakeStripe {
    /// Starts a lenient emulator on `127.0.0.1:0` (an ephemeral port).
    ///
    /// # Panics
    /// If the loopback port or the runtime cannot be created: a broken test environment.
    #[expect(
        clippy::expect_used,
        reason = "test helper; failing loudly is the useful behaviour"
    )]
    pub async fn start() -> Self {
        Self::start_on(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("the Stripe emulator could not bind 127.0.0.1:0")
    }

    /// Starts a lenient emulator on `addr`.
    ///
    /// # Errors
    /// When the address cannot be bound or the server's runtime cannot be built.
    pub async fn start_on(addr: SocketAddr) -> io::Result<Self> {
        StripeEmulator::start(EmulatorConfig {
            addr,
            ..EmulatorConfig::lenient()
        })
        .await
        .map(Self)
    }

    /// Stops the server and waits until its thread has shut down.
    pub async fn stop(self) {
        self.0.stop().await;
    }
}

impl StripeEmulator {
    /// Starts an emulator with `config`; [`StripeEmulator::addr`] / `base_url` tell where.
    ///
    /// # Errors
    /// When the address cannot be bound or the server's runtime cannot be built.
    pub async fn start(config: EmulatorConfig) -> io::Result<Self> {
        let listener = StdTcpListener::bind(config.addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("stripe-emulator")
            .enable_all()
            .build()?;
        let store = Store::new(&config, format!("http://{addr}"));
        let shared = Arc::new(Shared::new(store, config.api_key.clone()));
        let (shutdown, shutdown_rx) = oneshot::channel::<()>();
        let (stopped_tx, stopped) = oneshot::channel::<()>();
        let (ready_tx, ready) = oneshot::channel::<io::Result<()>>();
        let server_shared = Arc::clone(&shared);
        let secret = config.webhook_secret.clone();
        std::thread::Builder::new()
            .name("stripe-emulator".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => {
                            if let Some(url) = config.forward_to.clone() {
                                tokio::spawn(webhooks::run(
                                    Arc::clone(&server_shared),
                                    url,
                                    config.webhook_secret.clone(),
                                    config.webhook_retries.clone(),
                                    config.webhook_timeout,
                                    config.shuffle_deliveries,
                                ));
                            }
                            let _ = ready_tx.send(Ok(()));
                            // Ends on stop() or when the handle (and so the sender) is dropped.
                            tokio::select! {
                                () = server::accept_loop(listener, server_shared) => {}
                                _ = shutdown_rx => {}
                            }
                        }
                        Err(error) => {
                            let _ = ready_tx.send(Err(error));
                        }
                    }
                });
                // Cancels hanging requests and open connections without waiting for them.
                runtime.shutdown_background();
                let _ = stopped_tx.send(());
            })?;
        ready
            .await
            .map_err(|_| io::Error::other("the Stripe emulator thread exited during start-up"))??;
        Ok(Self {
            addr,
            shared,
            secret,
            shutdown: Some(shutdown),
            stopped: Some(stopped),
        })
    }

    /// Stops the server and waits until its thread has shut down.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(stopped) = self.stopped.take() {
            let _ = stopped.await;
        }
    }

    /// The bound address.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, to use as the Stripe API base URL (no trailing slash).
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The secret deliveries are signed with.
    #[must_use]
    pub fn webhook_secret(&self) -> &str {
        &self.secret
    }

    /// Every API request received so far, in arrival order (including rejected and failed
    /// ones; not the controls and pages).
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Forgets the recorded requests (the stored objects stay).
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// How many distinct PaymentIntents exist (idempotent replays do not count).
    #[must_use]
    pub fn payment_intents_created(&self) -> usize {
        lock(&self.shared.store).payment_intents.len()
    }

    /// How many Checkout Sessions were created.
    #[must_use]
    pub fn checkout_sessions_created(&self) -> usize {
        lock(&self.shared.store).checkout_sessions.len()
    }

    /// The ids of the created Checkout Sessions, oldest first.
    #[must_use]
    pub fn checkout_session_ids(&self) -> Vec<String> {
        lock(&self.shared.store).checkout_session_ids.clone()
    }

    /// A stored Checkout Session's `status` (`open`, `complete` or `expired`), `None` when no
    /// such session exists.
    #[must_use]
    pub fn checkout_session_status(&self, id: &str) -> Option<String> {
        lock(&self.shared.store)
            .checkout_sessions
            .get(id)
            .and_then(|session| session.get("status"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }

    /// Marks a session `complete` (`url` null) and nothing else: no customer, subscription
    /// or event (drift). [`StripeEmulator::complete_checkout`] is the real completion.
    /// Returns `false` when no such session exists.
    pub fn complete_checkout_session(&self, id: &str) -> bool {
        let mut store = lock(&self.shared.store);
        let Some(session) = store.checkout_sessions.get_mut(id) else {
            return false;
        };
        set(session, "status", json!("complete"));
        set(session, "url", Value::Null);
        true
    }

    /// Completes a session as the buyer would on the hosted page, paying with `card` (a test
    /// card number or `pm_card_*` id): customer, subscription, invoice, PaymentIntent, charge
    /// and the events of `LIFECYCLE.md` §1. Returns the completed session.
    ///
    /// # Errors
    /// Unknown or closed session, a declined card (the session stays open), a card needing
    /// an authentication answer, an unknown card.
    pub fn complete_checkout(
        &self,
        id: &str,
        card: &str,
        authentication: Authentication,
    ) -> Result<Value, CheckoutError> {
        let card = Card::parse(card)
            .ok_or_else(|| CheckoutError::Declined(format!("Not a test card: {card}")))?;
        let result = checkout::complete(
            &mut lock(&self.shared.store),
            id,
            card,
            authentication,
            None,
        );
        self.shared.wake.notify_one();
        result
    }

    /// How many Customer Portal sessions were created.
    #[must_use]
    pub fn portal_sessions_created(&self) -> usize {
        lock(&self.shared.store).portal_sessions_created
    }

    /// A stored PaymentIntent, as `GET /v1/payment_intents/{id}` would return it.
    #[must_use]
    pub fn payment_intent(&self, id: &str) -> Option<Value> {
        lock(&self.shared.store).payment_intents.get(id).cloned()
    }

    /// Sets a stored PaymentIntent's `status` without an event (`succeeded` also sets
    /// `amount_received`, `canceled` sets `canceled_at`). Returns `false` when no such
    /// PaymentIntent exists.
    pub fn set_payment_intent_status(&self, id: &str, status: &str) -> bool {
        let mut store = lock(&self.shared.store);
        let Some(intent) = store.payment_intents.get_mut(id) else {
            return false;
        };
        set(intent, "status", json!(status));
        match status {
            "succeeded" => {
                let amount = intent.get("amount").cloned().unwrap_or(Value::Null);
                set(intent, "amount_received", amount);
            }
            "canceled" => set(intent, "canceled_at", json!(store::now())),
            _ => {}
        }
        true
    }

    /// Makes `id` a known customer (always accepted by `customer` parameters).
    pub fn add_customer(&self, id: &str) {
        lock(&self.shared.store)
            .known_customers
            .insert(id.to_owned());
    }

    /// When on, any `cus_...` id counts as an existing customer; when off, only customers
    /// added with [`StripeEmulator::add_customer`] or created through the API or Checkout.
    pub fn set_accept_any_customer(&self, accept: bool) {
        lock(&self.shared.store).accept_any_customer = accept;
    }

    /// Seeds an invoice for `GET /v1/invoices/{id}` and returns its id (a fresh `in_...` one
    /// is inserted when the JSON has none). A `payments` field — a list object or an array
    /// of `invoice_payment` objects or of `pi_...` strings — is served only with
    /// `expand[]=payments`.
    pub fn add_invoice(&self, invoice: Value) -> String {
        lock(&self.shared.store).add_invoice(invoice)
    }

    /// Adds a paid `invoice_payment` for PaymentIntent `payment_intent_id` to a seeded
    /// invoice's expandable `payments`.
    pub fn add_invoice_payment(&self, invoice_id: &str, payment_intent_id: &str) {
        lock(&self.shared.store).add_invoice_payment(invoice_id, payment_intent_id, "paid");
    }

    /// Seeds a subscription for `GET /v1/subscriptions/{id}` and returns its id.
    pub fn add_subscription(&self, mut subscription: Value) -> String {
        let id = store::ensure_id(&mut subscription, "sub_");
        lock(&self.shared.store).put_subscription(&id, subscription);
        id
    }

    /// Seeds an event body, served byte for byte by `GET /v1/events/{id}` (not listed, not
    /// delivered).
    pub fn add_event(&self, id: &str, body: impl Into<Vec<u8>>) {
        let mut store = lock(&self.shared.store);
        let seq = store.next_seq();
        let index = store.events.len();
        store.event_index.insert(id.to_owned(), index);
        store.events.push(store::EventRecord {
            id: id.to_owned(),
            seq,
            created: store::now(),
            event_type: String::new(),
            body: Value::Null,
            raw: Some(bytes::Bytes::from(body.into())),
            delivery: store::Delivery::NoEndpoint,
        });
    }

    /// Every event the emulator made, oldest first, as `GET /v1/events/{id}` shows it.
    #[must_use]
    pub fn events(&self) -> Vec<Value> {
        lock(&self.shared.store)
            .events
            .iter()
            .filter(|e| e.raw.is_none())
            .filter_map(|e| serde_json::from_slice(&e.render()).ok())
            .collect()
    }

    /// The types of [`StripeEmulator::events`], oldest first.
    #[must_use]
    pub fn event_types(&self) -> Vec<String> {
        lock(&self.shared.store)
            .events
            .iter()
            .filter(|e| e.raw.is_none())
            .map(|e| e.event_type.clone())
            .collect()
    }

    /// Holds deliveries (an outage at Stripe's side): events queue until released.
    pub fn hold_deliveries(&self) {
        lock(&self.shared.store).held = true;
    }

    /// Resumes deliveries.
    pub fn release_deliveries(&self) {
        lock(&self.shared.store).held = false;
        self.shared.wake.notify_one();
    }

    /// Injects `failure` into the next `n` API requests (any path).
    pub fn fail_next(&self, n: usize, failure: Failure) {
        lock(&self.shared.injections).push(n, None, failure);
    }

    /// Injects `failure` into the next `n` requests whose path starts with `path_prefix`
    /// (e.g. `/v1/payment_intents`); other requests pass through untouched.
    pub fn fail_next_on(&self, path_prefix: &str, n: usize, failure: Failure) {
        lock(&self.shared.injections).push(n, Some(path_prefix.to_owned()), failure);
    }

    /// Drops every pending injected failure.
    pub fn clear_failures(&self) {
        lock(&self.shared.injections).clear();
    }

    /// Delays every following API request by `latency` before it is handled (zero to turn off).
    pub fn set_latency(&self, latency: Duration) {
        *lock(&self.shared.latency) = latency;
    }
}
