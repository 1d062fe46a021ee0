//! HTTP plumbing on hyper (HTTP/1.1): accept loop, per-request recording, latency, failure
//! injection, and rendering of replies with Stripe's response headers.
//!
//! hyper rather than actix-web because a service error makes hyper close the connection
//! without writing anything, which is exactly [`Failure::Reset`]; actix always answers.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::error::Reply;
use crate::failure::{Failure, Injections};
use crate::request::RecordedRequest;
use crate::store::{random_id, Store};
use crate::{controls, pages, routes};

/// State shared by the server tasks and the [`crate::StripeEmulator`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub store: Mutex<Store>,
    pub requests: Mutex<Vec<RecordedRequest>>,
    pub injections: Mutex<Injections>,
    pub latency: Mutex<Duration>,
    /// The only accepted API key, if one is configured.
    pub api_key: Option<String>,
    /// Wakes the webhook deliverer after a change.
    pub wake: tokio::sync::Notify,
}

impl Shared {
    pub fn new(store: Store, api_key: Option<String>) -> Self {
        Self {
            store: Mutex::new(store),
            requests: Mutex::default(),
            injections: Mutex::default(),
            latency: Mutex::default(),
            api_key,
            wake: tokio::sync::Notify::new(),
        }
    }
}

/// Locks a mutex, ignoring poisoning: every critical section leaves the data consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Returned by the service to make hyper drop the connection without a response.
#[derive(Debug)]
struct DropConnection;

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("connection dropped by failure injection")
    }
}

impl std::error::Error for DropConnection {}

pub(crate) async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(_) => {
                // e.g. out of file descriptors under a benchmark: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        // Best effort: only latency, not correctness, depends on it.
        let _ = stream.set_nodelay(true);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(Arc::clone(&shared), req));
            // A connection error (client gone, injected reset) only ends this connection.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, DropConnection> {
    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|_| DropConnection)?.to_bytes();
    let recorded = RecordedRequest::new(&parts, body.to_vec());
    if let Some(control) = recorded.path.strip_prefix("/__emulator") {
        let reply = controls::handle(&mut lock(&shared.store), &recorded.method, control, &body);
        shared.wake.notify_one();
        return Ok(render(&recorded, reply, &random_id("req_", 14)));
    }
    if !recorded.path.starts_with("/v1/") {
        let page = pages::handle(&mut lock(&shared.store), &recorded);
        if let Some(reply) = page {
            shared.wake.notify_one();
            return Ok(render(&recorded, reply, &random_id("req_", 14)));
        }
    }
    lock(&shared.requests).push(recorded.clone());

    let latency = *lock(&shared.latency);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }

    let request_id = random_id("req_", 14);
    let failure = lock(&shared.injections).take(&recorded.path);
    let reply = match failure {
        Some(Failure::Reset) => return Err(DropConnection),
        Some(Failure::Hang(duration)) => {
            tokio::time::sleep(duration).await;
            return Err(DropConnection);
        }
        Some(failure) => {
            routes::injected(&failure).unwrap_or_else(|| Reply::raw(500, Bytes::new()))
        }
        None if lock(&shared.store).rate_limit.per_second.is_some() => {
            let mut store = lock(&shared.store);
            match store.rate_limit.check() {
                Some(refused) => refused,
                None => {
                    let reply = routes::dispatch(
                        &mut store,
                        &recorded,
                        &request_id,
                        shared.api_key.as_deref(),
                    );
                    drop(store);
                    shared.wake.notify_one();
                    reply
                }
            }
        }
        None => {
            let reply = routes::dispatch(
                &mut lock(&shared.store),
                &recorded,
                &request_id,
                shared.api_key.as_deref(),
            );
            shared.wake.notify_one();
            reply
        }
    };
    Ok(render(&recorded, reply, &request_id))
}

fn render(req: &RecordedRequest, reply: Reply, request_id: &str) -> Response<Full<Bytes>> {
    let mut builder = Response::builder()
        .status(reply.status)
        .header("request-id", request_id);
    if !reply
        .headers
        .iter()
        .any(|(name, _)| *name == "content-type")
    {
        builder = builder.header("content-type", "application/json");
    }
    if let Some(version) = req.header("stripe-version") {
        builder = builder.header("stripe-version", version);
    }
    if req.method == "POST" {
        if let Some(key) = req.header("idempotency-key") {
            builder = builder.header("idempotency-key", key);
        }
    }
    for (name, value) in reply.headers {
        builder = builder.header(name, value);
    }
    builder
        .body(Full::new(reply.body))
        .unwrap_or_else(|_| internal_error())
}

/// Used when an echoed header value cannot be sent back (not valid in a response).
fn internal_error() -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(
        br#"{"error":{"message":"The Stripe emulator could not render its response.","type":"api_error"}}"#,
    )));
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}
