#![doc = include_str!("../README.md")]

mod error;
mod failure;
pub mod fixtures;
mod request;
mod routes;
mod server;
mod store;

use std::io;
use std::net::{SocketAddr, TcpListener as StdTcpListener};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::oneshot;

pub use failure::Failure;
pub use request::RecordedRequest;

use server::{lock, Shared};
use store::set;

/// A running fake Stripe API server.
///
/// The server runs on its own thread with its own two-worker tokio runtime, so it keeps
/// answering even when the test's runtime is single-threaded or busy. Dropping the handle
/// stops it too; [`FakeStripe::stop`] additionally waits until it is gone.
#[derive(Debug)]
pub struct FakeStripe {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    stopped: Option<oneshot::Receiver<()>>,
}

impl FakeStripe {
    /// Starts the fake on `127.0.0.1:0` (an ephemeral port).
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
            .expect("the Stripe fake could not bind 127.0.0.1:0")
    }

    /// Starts the fake on `addr`.
    ///
    /// # Errors
    /// When the address cannot be bound or the server's runtime cannot be built.
    pub async fn start_on(addr: SocketAddr) -> io::Result<Self> {
        let listener = StdTcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("stripe-emulator")
            .enable_all()
            .build()?;
        let shared = Arc::new(Shared::default());
        let (shutdown, shutdown_rx) = oneshot::channel::<()>();
        let (stopped_tx, stopped) = oneshot::channel::<()>();
        let (ready_tx, ready) = oneshot::channel::<io::Result<()>>();
        let server_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("stripe-emulator".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => {
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
            .map_err(|_| io::Error::other("the Stripe fake thread exited during start-up"))??;
        Ok(Self {
            addr,
            shared,
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

    /// Every request received so far, in arrival order (including rejected and failed ones).
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Forgets the recorded requests (the stored objects stay).
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// How many distinct PaymentIntents were created (idempotent replays do not count).
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

    /// Completes a stored Checkout Session as if the buyer had finished the hosted page:
    /// `status` becomes `complete` and `url` null (nothing else changes; no event is sent).
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

    /// How many Customer Portal sessions were created.
    #[must_use]
    pub fn portal_sessions_created(&self) -> usize {
        lock(&self.shared.store).portal_sessions
    }

    /// A stored PaymentIntent, as `GET /v1/payment_intents/{id}` would return it.
    #[must_use]
    pub fn payment_intent(&self, id: &str) -> Option<Value> {
        lock(&self.shared.store).payment_intents.get(id).cloned()
    }

    /// Sets a stored PaymentIntent's `status` (`succeeded` also sets `amount_received`,
    /// `canceled` sets `canceled_at`). Returns `false` when no such PaymentIntent exists.
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
        lock(&self.shared.store).customers.insert(id.to_owned());
    }

    /// When on (the default), any `cus_...` id counts as an existing customer; when off, only
    /// customers added with [`FakeStripe::add_customer`] or created via `POST /v1/customers`.
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

    /// Adds an `invoice_payment` for PaymentIntent `payment_intent_id` to a seeded invoice's
    /// expandable `payments`.
    pub fn add_invoice_payment(&self, invoice_id: &str, payment_intent_id: &str) {
        lock(&self.shared.store).add_invoice_payment(invoice_id, payment_intent_id);
    }

    /// Seeds a subscription for `GET /v1/subscriptions/{id}` and returns its id.
    pub fn add_subscription(&self, mut subscription: Value) -> String {
        let id = store::ensure_id(&mut subscription, "sub_");
        lock(&self.shared.store)
            .subscriptions
            .insert(id.clone(), subscription);
        id
    }

    /// Seeds an event body, served byte for byte by `GET /v1/events/{id}`.
    pub fn add_event(&self, id: &str, body: impl Into<Vec<u8>>) {
        lock(&self.shared.store)
            .events
            .insert(id.to_owned(), bytes::Bytes::from(body.into()));
    }

    /// Injects `failure` into the next `n` requests (any path).
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

    /// Delays every following request by `latency` before it is handled (zero to turn off).
    pub fn set_latency(&self, latency: Duration) {
        *lock(&self.shared.latency) = latency;
    }
}
