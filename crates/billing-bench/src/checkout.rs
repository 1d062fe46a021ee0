//! The checkout benchmark: the three endpoints that call Stripe (checkout, portal,
//! payment-intent) against the local fake answering at once, and the same Stripe requests
//! sent to the fake directly with the same client, so that the service's own overhead per
//! call is what is left.

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::env::{self, psql, BenchEnv, BoxError, ServerOptions, JWT_SECRET};
use crate::events::{tenant_uuid, BASIC_PRICE, PRO_PRICE};
use crate::stats::Latencies;

/// How the checkout benchmark runs.
#[derive(Debug, Clone)]
pub struct CheckoutBench {
    /// The server and database.
    pub server: ServerOptions,
    /// Concurrent connections.
    pub connections: usize,
    /// How long each phase lasts.
    pub duration: Duration,
    /// Where to write the Markdown report (also printed).
    pub markdown_out: Option<std::path::PathBuf>,
}

/// Tenants seeded for the benchmark, each with a customer and an open invoice.
const TENANTS: u32 = 200;

pub(crate) type Call = Arc<
    dyn Fn(reqwest::Client, u64) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>>
        + Send
        + Sync,
>;

/// A call POSTing to the service's `path(n)` with the admin token.
fn service_post(
    base: &Arc<String>,
    bearer: &Arc<String>,
    path: impl Fn(u64) -> String + Send + Sync + 'static,
) -> Call {
    let (base, bearer) = (Arc::clone(base), Arc::clone(bearer));
    Arc::new(move |c: reqwest::Client, n| {
        let url = format!("{base}{}", path(n));
        let bearer = bearer.to_string();
        Box::pin(async move { expect_ok(c.post(url).header("Authorization", bearer)).await })
    })
}

/// A call POSTing the form `body(n)` straight to the fake's `path`, as the service's
/// Stripe client would (idempotency key `<key>-<n>`).
fn fake_post(
    fake: &Arc<String>,
    path: &'static str,
    key: &'static str,
    body: impl Fn(u64) -> String + Send + Sync + 'static,
) -> Call {
    let fake = Arc::clone(fake);
    Arc::new(move |c: reqwest::Client, n| {
        let url = format!("{fake}{path}");
        let body = body(n);
        Box::pin(async move {
            expect_ok(
                c.post(url)
                    .header("Authorization", "Bearer sk_test_bench")
                    .header("Content-Type", "application/x-www-form-urlencoded")
                    .header("Idempotency-Key", format!("{key}-{n}"))
                    .body(body),
            )
            .await
        })
    })
}

/// Runs `call` from `connections` workers, each with its own keep-alive client, for
/// `duration`; returns the latencies, the errors and the first error.
pub(crate) async fn closed_loop(
    connections: usize,
    duration: Duration,
    call: &Call,
) -> (Latencies, u64, Option<String>, Duration) {
    let seq = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let handles: Vec<_> = (0..connections)
        .map(|_| {
            let call = Arc::clone(call);
            let seq = Arc::clone(&seq);
            tokio::spawn(async move {
                let mut lat = Latencies::default();
                let mut errors = 0;
                let mut first = None;
                let Ok(client) = reqwest::Client::builder()
                    .pool_max_idle_per_host(1)
                    .tcp_nodelay(true)
                    .timeout(Duration::from_secs(30))
                    .build()
                else {
                    return (lat, 1, Some("client".to_owned()));
                };
                while Instant::now() < deadline {
                    let n = seq.fetch_add(1, Ordering::Relaxed);
                    let t = Instant::now();
                    let result = call(client.clone(), n).await;
                    lat.record(t.elapsed());
                    if let Err(e) = result {
                        errors += 1;
                        first.get_or_insert(e);
                    }
                }
                (lat, errors, first)
            })
        })
        .collect();
    let mut all = Latencies::default();
    let mut errors = 0;
    let mut first = None;
    for h in handles {
        if let Ok((lat, e, f)) = h.await {
            all.merge(lat);
            errors += e;
            if first.is_none() {
                first = f;
            }
        }
    }
    (all, errors, first, started.elapsed())
}

pub(crate) async fn expect_ok(r: reqwest::RequestBuilder) -> Result<(), String> {
    let r = r.send().await.map_err(|e| e.to_string())?;
    let status = r.status();
    let text = r.text().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("{status}: {text:.200}"))
    }
}

async fn seed(url: &str) -> Result<(), BoxError> {
    psql(
        url,
        &format!(
            "INSERT INTO plans (id, code, name, stripe_price_id, amount, currency, \"interval\") \
             VALUES (gen_random_uuid(), 'basic', 'Basic', '{BASIC_PRICE}', 2000, 'usd', 'month'), \
             (gen_random_uuid(), 'pro', 'Pro', '{PRO_PRICE}', 5000, 'usd', 'month')"
        ),
    )
    .await?;
    psql(
        url,
        &format!(
            "INSERT INTO tenants (id, name, status, stripe_customer_id) \
             SELECT ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, 'Bench ' || i, \
             'pending', 'cus_ck_' || i FROM generate_series(0, {}) i; \
             INSERT INTO invoices (id, tenant_id, number, status, amount_due, currency) \
             SELECT gen_random_uuid(), ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, \
             'CK-' || i, 'open', 1000, 'usd' FROM generate_series(0, {}) i",
            TENANTS - 1,
            TENANTS - 1
        ),
    )
    .await?;
    Ok(())
}

/// The claims of an admin token (the service's HS256 bearer tokens).
#[derive(serde::Serialize)]
struct Claims {
    sub: &'static str,
    iat: u64,
    exp: u64,
    roles: [&'static str; 1],
}

/// An HS256 admin token for the server's `JWT_SECRET`, valid for an hour.
pub(crate) fn admin_token() -> Result<String, BoxError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let claims = Claims {
        sub: "bench-admin",
        iat: now,
        exp: now + 3600,
        roles: ["billing:admin"],
    };
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes())?,
    )?)
}

/// One endpoint's figures.
struct Row {
    name: &'static str,
    service: Latencies,
    service_rate: f64,
    errors: u64,
    fake: Latencies,
    stripe_calls: f64,
}

impl CheckoutBench {
    /// Runs the three endpoints and prints the report.
    ///
    /// # Errors
    /// When the environment cannot be set up.
    #[expect(
        clippy::too_many_lines,
        reason = "the three endpoints, the phases and the report in one place"
    )]
    pub async fn run(&self) -> Result<bool, BoxError> {
        let env = BenchEnv::start(self.server.clone()).await?;
        seed(&env.database_url()).await?;
        let token = admin_token()?;
        let bearer = Arc::new(format!("Bearer {token}"));
        let base = Arc::new(env.base_url.clone());
        let fake_base = Arc::new(env.fake.base_url());
        let return_url = "https://app.example.com/billing";

        let tenant = |n: u64| tenant_uuid(u32::try_from(n % u64::from(TENANTS)).unwrap_or(0));
        let endpoints: Vec<(&'static str, Call, Call)> = vec![
            (
                "checkout",
                service_post(&base, &bearer, move |n| {
                    format!(
                        "/api/v1/billing/stripe/checkout?tenantId={}&planId=basic",
                        tenant(n)
                    )
                }),
                fake_post(&fake_base, "/v1/checkout/sessions", "bench", move |n| {
                    let t = tenant(n);
                    [
                        ("mode", "subscription"),
                        ("line_items[0][price]", BASIC_PRICE),
                        ("line_items[0][quantity]", "1"),
                        ("client_reference_id", &t),
                        ("metadata[tenantId]", &t),
                        ("success_url", "https://app.example.com/billing/success"),
                    ]
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&")
                }),
            ),
            (
                "portal",
                service_post(&base, &bearer, |n| {
                    format!(
                        "/api/v1/billing/stripe/portal?customerId=cus_ck_{}&returnUrl=https%3A%2F%2Fapp.example.com%2Fbilling",
                        n % u64::from(TENANTS)
                    )
                }),
                fake_post(
                    &fake_base,
                    "/v1/billing_portal/sessions",
                    "bench-portal",
                    move |n| {
                        format!(
                            "customer=cus_ck_{}&return_url={}",
                            n % u64::from(TENANTS),
                            return_url.replace(':', "%3A").replace('/', "%2F")
                        )
                    },
                ),
            ),
            (
                "payment-intent",
                service_post(&base, &bearer, |n| {
                    format!(
                        "/api/v1/billing/invoices/CK-{}/payment-intent",
                        n % u64::from(TENANTS)
                    )
                }),
                fake_post(&fake_base, "/v1/payment_intents", "bench-pi", |n| {
                    format!(
                        "amount=1000&currency=usd&metadata[invoiceId]=CK-{}&automatic_payment_methods[enabled]=true",
                        n % u64::from(TENANTS)
                    )
                }),
            ),
        ];

        let mut rows = Vec::new();
        let mut ok = true;
        for (name, service_call, fake_call) in endpoints {
            let (fake, fake_errors, fake_first, _) =
                closed_loop(self.connections, self.duration, &fake_call).await;
            if fake_errors > 0 {
                println!("{name}: {fake_errors} errors calling the fake directly: {fake_first:?}");
            }
            env.fake.clear_requests();
            let (service, errors, first, elapsed) =
                closed_loop(self.connections, self.duration, &service_call).await;
            #[expect(clippy::cast_precision_loss, reason = "small counts")]
            let stripe_calls = env.fake.requests().len() as f64 / service.len().max(1) as f64;
            env.fake.clear_requests();
            if let Some(e) = first {
                println!("{name}: {errors} errors, first: {e}");
                ok = false;
            }
            #[expect(clippy::cast_precision_loss, reason = "small counts")]
            let service_rate = service.len() as f64 / elapsed.as_secs_f64();
            rows.push(Row {
                name,
                service,
                service_rate,
                errors,
                fake,
                stripe_calls,
            });
        }

        let mut out = String::new();
        let _ = writeln!(
            out,
            "machine: {} cores; {} connections; {} s per phase; overhead = service latency - Stripe calls per request x the fake's own latency (same client, same concurrency)  ",
            env::cores(),
            self.connections,
            self.duration.as_secs()
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| endpoint | calls/s | errors | service p50 ms | service p99 ms | Stripe calls per request | fake p50 ms | fake p99 ms | overhead p50 ms | overhead p99 ms |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in &mut rows {
            let (s50, s99) = (r.service.quantile_ms(0.5), r.service.quantile_ms(0.99));
            let (f50, f99) = (r.fake.quantile_ms(0.5), r.fake.quantile_ms(0.99));
            let _ = writeln!(
                out,
                "| {} | {:.0} | {} | {s50:.2} | {s99:.2} | {:.2} | {f50:.2} | {f99:.2} | {:.2} | {:.2} |",
                r.name,
                r.service_rate,
                r.errors,
                r.stripe_calls,
                (s50 - r.stripe_calls * f50).max(0.0),
                (s99 - r.stripe_calls * f99).max(0.0),
            );
        }
        println!("\n{out}");
        if let Some(path) = &self.markdown_out {
            std::fs::write(path, &out)?;
        }
        env.stop().await;
        Ok(ok)
    }
}
