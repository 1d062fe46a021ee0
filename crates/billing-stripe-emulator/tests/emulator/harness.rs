//! A webhook receiver and request helpers shared by the emulator tests.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use billing_stripe_emulator::{EmulatorConfig, PriceSeed, StripeEmulator};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper::{Request, Response};
use serde_json::Value;

pub const KEY: &str = "sk_test_emulator";
pub const SECRET: &str = "whsec_test_emulator_tests";
pub const PRICE: &str = "price_basic";
pub const PRICE_PRO: &str = "price_pro";

/// One received delivery.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub signature: String,
    pub body: Vec<u8>,
}

impl Delivery {
    pub fn event(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A webhook endpoint that answers `statuses` in turn (then 200) and records every delivery.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Delivery>>>,
}

impl Receiver {
    pub async fn start(statuses: Vec<u16>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let statuses = Arc::new(Mutex::new(statuses));
        let log = Arc::clone(&received);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let log = Arc::clone(&log);
                let statuses = Arc::clone(&statuses);
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let log = Arc::clone(&log);
                        let statuses = Arc::clone(&statuses);
                        async move {
                            let signature = req
                                .headers()
                                .get("stripe-signature")
                                .map(|v| v.to_str().unwrap().to_owned())
                                .unwrap_or_default();
                            let body = req.into_body().collect().await.unwrap().to_bytes();
                            log.lock().unwrap().push(Delivery {
                                signature,
                                body: body.to_vec(),
                            });
                            let status = {
                                let mut s = statuses.lock().unwrap();
                                if s.is_empty() {
                                    200
                                } else {
                                    s.remove(0)
                                }
                            };
                            let mut response = Response::new(Full::new(Bytes::new()));
                            *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, received }
    }

    pub fn url(&self) -> String {
        format!("http://{}/webhook", self.addr)
    }

    pub fn received(&self) -> Vec<Delivery> {
        self.received.lock().unwrap().clone()
    }

    /// The types of the deliveries so far, in arrival order.
    pub fn types(&self) -> Vec<String> {
        self.received()
            .iter()
            .map(|d| d.event()["type"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Waits until at least `n` deliveries arrived.
    pub async fn wait_for(&self, n: usize) -> Vec<Delivery> {
        for _ in 0..500 {
            if self.received.lock().unwrap().len() >= n {
                return self.received();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!(
            "only {} deliveries of {n}: {:?}",
            self.received().len(),
            self.types()
        );
    }
}

pub fn config() -> EmulatorConfig {
    EmulatorConfig {
        api_key: Some(KEY.to_owned()),
        webhook_secret: SECRET.to_owned(),
        webhook_retries: vec![Duration::from_millis(50), Duration::from_millis(100)],
        webhook_timeout: Duration::from_secs(2),
        prices: vec![
            PriceSeed {
                id: PRICE.into(),
                product_name: "Basic".into(),
                unit_amount: 2000,
                currency: "usd".into(),
                interval: Some("month".into()),
            },
            PriceSeed {
                id: PRICE_PRO.into(),
                product_name: "Pro".into(),
                unit_amount: 5000,
                currency: "usd".into(),
                interval: Some("month".into()),
            },
        ],
        ..EmulatorConfig::default()
    }
}

/// An emulator delivering to a fresh receiver.
pub async fn with_receiver(statuses: Vec<u16>) -> (StripeEmulator, Receiver) {
    let receiver = Receiver::start(statuses).await;
    let emulator = StripeEmulator::start(EmulatorConfig {
        forward_to: Some(receiver.url()),
        ..config()
    })
    .await
    .unwrap();
    (emulator, receiver)
}

pub struct Api {
    pub base: String,
    client: reqwest::Client,
}

impl Api {
    pub fn new(emulator: &StripeEmulator) -> Self {
        Self {
            base: emulator.base_url(),
            client: reqwest::Client::new(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, Value) {
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        self.send(
            self.client
                .post(format!("{}{path}", self.base))
                .bearer_auth(KEY)
                .form(form),
        )
        .await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(
            self.client
                .get(format!("{}{path}", self.base))
                .bearer_auth(KEY),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(
            self.client
                .delete(format!("{}{path}", self.base))
                .bearer_auth(KEY),
        )
        .await
    }

    pub async fn control(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(
            self.client
                .post(format!("{}/__emulator{path}", self.base))
                .json(&body),
        )
        .await
    }

    pub async fn control_get(&self, path: &str) -> (u16, Value) {
        self.send(self.client.get(format!("{}/__emulator{path}", self.base)))
            .await
    }

    pub async fn ok(&self, path: &str, form: &[(&str, &str)]) -> Value {
        let (status, body) = self.post(path, form).await;
        assert_eq!(status, 200, "POST {path}: {body}");
        body
    }

    /// A subscription-mode Checkout Session for `price`.
    pub async fn checkout(&self, price: &str, extra: &[(&str, &str)]) -> String {
        let mut form = vec![
            ("mode", "subscription"),
            ("line_items[0][price]", price),
            ("line_items[0][quantity]", "1"),
            ("success_url", "http://localhost/ok"),
            ("client_reference_id", "tenant-1"),
            ("metadata[tenantId]", "tenant-1"),
            ("subscription_data[metadata][tenantId]", "tenant-1"),
        ];
        form.extend_from_slice(extra);
        let session = self.ok("/v1/checkout/sessions", &form).await;
        session["id"].as_str().unwrap().to_owned()
    }

    /// Completes a session with `card` through the control; returns the session.
    pub async fn complete(&self, session: &str, card: &str) -> Value {
        let (status, body) = self
            .control(
                &format!("/checkout/sessions/{session}/complete"),
                serde_json::json!({ "card": card }),
            )
            .await;
        assert_eq!(status, 200, "complete: {body}");
        body
    }

    /// A test clock at `frozen_time` and a customer on it.
    pub async fn clock_customer(&self, frozen_time: i64) -> (String, String) {
        let frozen = frozen_time.to_string();
        let clock = self
            .ok("/v1/test_helpers/test_clocks", &[("frozen_time", &frozen)])
            .await;
        let clock = clock["id"].as_str().unwrap().to_owned();
        let customer = self
            .ok(
                "/v1/customers",
                &[("email", "c@example.com"), ("test_clock", &clock)],
            )
            .await;
        (clock, customer["id"].as_str().unwrap().to_owned())
    }

    pub async fn advance(&self, clock: &str, to: i64) {
        let body = self
            .ok(
                &format!("/v1/test_helpers/test_clocks/{clock}/advance"),
                &[("frozen_time", &to.to_string())],
            )
            .await;
        assert_eq!(body["status"], "advancing");
    }
}

/// Verifies a `Stripe-Signature` header as docs/stripe.md, Signatures describes.
pub fn verify(secret: &str, header: &str, body: &[u8]) -> bool {
    use hmac::{Hmac, KeyInit, Mac};
    let mut t = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = Some(v.to_owned()),
            Some(("v1", v)) => signatures.push(v.to_owned()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = hex::encode(mac.finalize().into_bytes());
    signatures.contains(&expected)
}

/// The event types of `events` (as returned by the emulator) after the first `skip`.
pub fn types_after(emulator: &StripeEmulator, skip: usize) -> Vec<String> {
    emulator.event_types().into_iter().skip(skip).collect()
}
