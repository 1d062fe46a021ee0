//! The lifecycle benchmark: events made by the Stripe emulator rather than pre-signed
//! bodies. Tenants subscribe through the service's checkout endpoint and pay on the
//! emulator (each completion emits Stripe's dozen events of a paid checkout), then one test
//! clock carrying every customer is advanced by a month, so that every subscription renews
//! at once. The emulator signs and delivers each event to the service's webhook as Stripe
//! would, one delivery at a time, oldest first; the figures are events applied per second
//! through that serial path (the webhook benchmark measures concurrent deliveries), and the
//! database is checked afterwards: every tenant active, every subscription renewed, two paid
//! invoices and two payments per tenant, nothing unmatched, no delivery given up.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use billing_stripe_emulator::{EmulatorConfig, PriceSeed};
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::checkout::admin_token;
use crate::env::{self, psql_int, BenchEnv, BoxError, ServerOptions, WEBHOOK_SECRET};
use crate::events::{tenant_uuid, BASIC_PRICE};
use crate::webhooks::seed_plans;

/// How the lifecycle benchmark runs.
#[derive(Debug, Clone)]
pub struct LifecycleBench {
    /// The server and database.
    pub server: ServerOptions,
    /// Tenants that subscribe and renew.
    pub tenants: u32,
    /// Checkouts in flight at once.
    pub connections: usize,
    /// Where to write the Markdown report (also printed).
    pub markdown_out: Option<std::path::PathBuf>,
}

/// The key the server and the emulator share (a fake value).
const API_KEY: &str = "sk_test_bench";

/// How long a phase may take before the benchmark gives up on it.
const PHASE_LIMIT: Duration = Duration::from_secs(600);

/// The emulator's delivery states, counted.
#[derive(Debug, Default, Clone, Copy)]
struct Deliveries {
    delivered: u64,
    pending: u64,
    failed: u64,
}

/// One phase's figures.
struct Phase {
    name: &'static str,
    events: u64,
    elapsed: Duration,
}

impl Phase {
    #[expect(clippy::cast_precision_loss, reason = "event counts are small")]
    fn rate(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

fn emulator_config(options: &ServerOptions) -> EmulatorConfig {
    EmulatorConfig {
        forward_to: Some(format!(
            "http://127.0.0.1:{}/api/v1/billing/stripe/webhook",
            options.port
        )),
        webhook_secret: WEBHOOK_SECRET.to_owned(),
        api_key: Some(API_KEY.to_owned()),
        hosted_pages: false,
        prices: vec![PriceSeed {
            id: BASIC_PRICE.to_owned(),
            product_name: "Basic".to_owned(),
            unit_amount: 2000,
            currency: "usd".to_owned(),
            interval: Some("month".to_owned()),
        }],
        ..EmulatorConfig::default()
    }
}

/// Counts the emulator's deliveries by state (`GET /__emulator/deliveries`).
async fn deliveries(client: &reqwest::Client, emulator: &str) -> Result<Deliveries, BoxError> {
    let body: Value = client
        .get(format!("{emulator}/__emulator/deliveries"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let mut counts = Deliveries::default();
    for event in body["events"].as_array().into_iter().flatten() {
        match event["state"].as_str() {
            Some("delivered") => counts.delivered += 1,
            Some("pending") => counts.pending += 1,
            Some("failed") => counts.failed += 1,
            _ => {}
        }
    }
    Ok(counts)
}

/// Waits until nothing is pending and returns the counts then.
async fn settled(client: &reqwest::Client, emulator: &str) -> Result<Deliveries, BoxError> {
    let started = Instant::now();
    loop {
        let counts = deliveries(client, emulator).await?;
        if counts.pending == 0 {
            return Ok(counts);
        }
        if started.elapsed() > PHASE_LIMIT {
            return Err(format!(
                "{} deliveries still pending after {PHASE_LIMIT:?}",
                counts.pending
            )
            .into());
        }
        // Every look renders the whole delivery list under the emulator's lock, which its
        // delivery loop needs too: look seldom enough not to slow what is measured.
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A Stripe API call to the emulator with the shared key; the JSON answer.
async fn stripe_post(
    client: &reqwest::Client,
    url: String,
    form: &[(&str, String)],
) -> Result<Value, BoxError> {
    Ok(client
        .post(url)
        .bearer_auth(API_KEY)
        .form(form)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?)
}

/// Tenant `i` subscribes: the service opens its Checkout Session, the emulator completes it
/// with the card that pays, its customer on `clock`.
async fn subscribe(
    client: reqwest::Client,
    service: Arc<String>,
    emulator: Arc<String>,
    bearer: Arc<String>,
    clock: Arc<String>,
    i: u32,
) -> Result<(), BoxError> {
    let opened: Value = client
        .post(format!(
            "{service}/api/v1/billing/stripe/checkout?tenantId={}&planId=basic",
            tenant_uuid(i)
        ))
        .header("Authorization", bearer.as_str())
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let session = opened["sessionId"]
        .as_str()
        .ok_or("the checkout answer has no sessionId")?;
    client
        .post(format!(
            "{emulator}/__emulator/checkout/sessions/{session}/complete"
        ))
        .json(&serde_json::json!({"card": "4242424242424242", "test_clock": clock.as_str()}))
        .send()
        .await?
        .error_for_status()?;
    Ok(())
}

impl LifecycleBench {
    /// Runs both phases, checks the database and prints the report.
    ///
    /// # Errors
    /// When the environment cannot be set up or a phase does not finish.
    pub async fn run(&self) -> Result<bool, BoxError> {
        let env = BenchEnv::start_with(self.server.clone(), emulator_config(&self.server)).await?;
        let db = env.database_url();
        seed_plans(&db).await?;
        let client = reqwest::Client::new();
        let emulator = Arc::new(env.fake.base_url());
        let service = Arc::new(env.base_url.clone());
        let bearer = Arc::new(format!("Bearer {}", admin_token()?));
        let start_time = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs(),
        )?;
        let clock = stripe_post(
            &client,
            format!("{emulator}/v1/test_helpers/test_clocks"),
            &[
                ("frozen_time", start_time.to_string()),
                ("name", "bench".to_owned()),
            ],
        )
        .await?;
        let clock = Arc::new(
            clock["id"]
                .as_str()
                .ok_or("the test clock answer has no id")?
                .to_owned(),
        );

        // Phase 1: every tenant subscribes and pays.
        let started = Instant::now();
        let permits = Arc::new(Semaphore::new(self.connections.max(1)));
        let mut tasks = Vec::new();
        for i in 0..self.tenants {
            let permit = Arc::clone(&permits).acquire_owned().await?;
            let call = subscribe(
                client.clone(),
                Arc::clone(&service),
                Arc::clone(&emulator),
                Arc::clone(&bearer),
                Arc::clone(&clock),
                i,
            );
            tasks.push(tokio::spawn(async move {
                let result = call.await;
                drop(permit);
                result
            }));
        }
        for task in tasks {
            task.await??;
        }
        let after_checkout = settled(&client, &emulator).await?;
        let checkout = Phase {
            name: "checkout paid (service checkout + emulator completion)",
            events: after_checkout.delivered,
            elapsed: started.elapsed(),
        };

        // Phase 2: a month and a day later every subscription has renewed.
        let started = Instant::now();
        let target = start_time + 32 * 86_400;
        stripe_post(
            &client,
            format!("{emulator}/v1/test_helpers/test_clocks/{clock}/advance"),
            &[("frozen_time", target.to_string())],
        )
        .await?;
        let after_renewal = settled(&client, &emulator).await?;
        let renewal = Phase {
            name: "renewal (test clock advanced a month)",
            events: after_renewal.delivered - after_checkout.delivered,
            elapsed: started.elapsed(),
        };

        let n = i64::from(self.tenants);
        let checks = [
            (
                "tenants active",
                psql_int(&db, "SELECT count(*) FROM tenants WHERE status = 'active'").await?,
                n,
            ),
            (
                "subscriptions active and renewed",
                psql_int(
                    &db,
                    &format!(
                        "SELECT count(*) FROM subscriptions WHERE status = 'active' \
                         AND current_period_end > to_timestamp({})",
                        start_time + 40 * 86_400
                    ),
                )
                .await?,
                n,
            ),
            (
                "paid invoices",
                psql_int(&db, "SELECT count(*) FROM invoices WHERE status = 'paid'").await?,
                2 * n,
            ),
            (
                "payments succeeded",
                psql_int(
                    &db,
                    "SELECT count(*) FROM payments WHERE status = 'succeeded'",
                )
                .await?,
                2 * n,
            ),
            (
                "events unmatched",
                psql_int(
                    &db,
                    "SELECT count(*) FROM webhook_events WHERE outcome = 'unmatched'",
                )
                .await?,
                0,
            ),
            (
                "events processed in the ledger",
                psql_int(
                    &db,
                    "SELECT count(*) FROM webhook_events WHERE outcome <> 'failed'",
                )
                .await?,
                i64::try_from(after_renewal.delivered)?,
            ),
            (
                "deliveries given up",
                i64::try_from(after_renewal.failed)?,
                0,
            ),
        ];

        let mut out = String::new();
        let _ = writeln!(
            out,
            "machine: {} cores; {} tenants; {} checkouts in flight; events delivered one at a time by the emulator  ",
            env::cores(),
            self.tenants,
            self.connections
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "| phase | events | seconds | events/s |");
        let _ = writeln!(out, "|---|---:|---:|---:|");
        for phase in [&checkout, &renewal] {
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {:.0} |",
                phase.name,
                phase.events,
                phase.elapsed.as_secs_f64(),
                phase.rate()
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "| check | found | expected |");
        let _ = writeln!(out, "|---|---:|---:|");
        let mut ok = true;
        for (name, found, expected) in checks {
            let mark = if found == expected {
                ""
            } else {
                " **differs**"
            };
            ok &= found == expected;
            let _ = writeln!(out, "| {name} | {found}{mark} | {expected} |");
        }
        println!("\n{out}");
        if let Some(path) = &self.markdown_out {
            std::fs::write(path, &out)?;
        }
        env.stop().await;
        Ok(ok)
    }
}
