//! The lifecycle benchmark: events made by the Stripe emulator rather than pre-signed
//! bodies. Tenants subscribe through the service's checkout endpoint and pay on the
//! emulator (each completion emits Stripe's dozen events of a paid checkout), then one test
//! clock carrying every customer is advanced by a month, so that every subscription renews
//! at once. The emulator signs and delivers each event to the service's webhook as Stripe
//! would, one delivery at a time, oldest first; the figures are events applied per second
//! through that serial path (the webhook benchmark measures concurrent deliveries), and the
//! database is checked afterwards: every tenant active, every subscription renewed, two paid
//! invoices and two payments per tenant, nothing unmatched, no delivery given up.
//!
//! With `--catchup` the same history is built with every webhook held by the emulator and
//! then dropped, so the service has seen nothing; one `POST /stripe/events/sync` pass (the
//! Events API catch-up, SPEC §8) is timed, optionally with the emulator refusing calls over
//! `--rate-limit N` per second, and the database is checked the same way, plus: every
//! listed event recorded in the ledger once, with source `catchup`, and nothing failed.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use billing_stripe_emulator::{EmulatorConfig, PriceSeed};
use serde_json::{json, Value};
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
    /// Drop every webhook and time one catch-up pass instead of the deliveries.
    pub catchup: bool,
    /// With `catchup`: the emulator's API rate limit (requests per second) during the pass.
    pub rate_limit: Option<u32>,
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

/// A control call to the emulator (`POST /__emulator/{path}`); its JSON answer, if any.
async fn control(
    client: &reqwest::Client,
    emulator: &str,
    path: &str,
    body: &Value,
) -> Result<Value, BoxError> {
    let text = client
        .post(format!("{emulator}/__emulator/{path}"))
        .json(body)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// What one run shares between its phases.
struct History {
    client: reqwest::Client,
    emulator: Arc<String>,
    service: Arc<String>,
    bearer: Arc<String>,
    clock: Arc<String>,
    start_time: i64,
}

/// The database checks both modes make after the history: every tenant active and renewed,
/// two paid invoices and two payments each, nothing unmatched.
async fn state_checks(
    db: &str,
    tenants: u32,
    start_time: i64,
) -> Result<Vec<(&'static str, i64, i64)>, BoxError> {
    let n = i64::from(tenants);
    Ok(vec![
        (
            "tenants active",
            psql_int(db, "SELECT count(*) FROM tenants WHERE status = 'active'").await?,
            n,
        ),
        (
            "subscriptions active and renewed",
            psql_int(
                db,
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
            psql_int(db, "SELECT count(*) FROM invoices WHERE status = 'paid'").await?,
            2 * n,
        ),
        (
            "payments succeeded",
            psql_int(
                db,
                "SELECT count(*) FROM payments WHERE status = 'succeeded'",
            )
            .await?,
            2 * n,
        ),
        (
            "events unmatched",
            psql_int(
                db,
                "SELECT count(*) FROM webhook_events WHERE outcome = 'unmatched'",
            )
            .await?,
            0,
        ),
    ])
}

/// Appends the checks table to `out`; whether every check holds.
fn checks_table(out: &mut String, checks: Vec<(&'static str, i64, i64)>) -> bool {
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
    ok
}

impl LifecycleBench {
    /// Runs both phases (or, with `catchup`, the history then one catch-up pass), checks
    /// the database and prints the report.
    ///
    /// # Errors
    /// When the environment cannot be set up or a phase does not finish.
    pub async fn run(&self) -> Result<bool, BoxError> {
        let mut options = self.server.clone();
        if self.catchup {
            // Only the timed pass may catch up, and no sweep may correct the state first.
            for (key, value) in [
                ("STRIPE_CATCHUP_INTERVAL_SECS", "86400"),
                ("STRIPE_RECONCILE_INTERVAL_SECS", "0"),
            ] {
                if !options.extra_env.iter().any(|(k, _)| k == key) {
                    options.extra_env.push((key.to_owned(), value.to_owned()));
                }
            }
        }
        let env = BenchEnv::start_with(options.clone(), emulator_config(&options)).await?;
        let db = env.database_url();
        seed_plans(&db).await?;
        let client = reqwest::Client::new();
        let emulator = Arc::new(env.fake.base_url());
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
        let history = History {
            client,
            emulator,
            service: Arc::new(env.base_url.clone()),
            bearer: Arc::new(format!("Bearer {}", admin_token()?)),
            clock,
            start_time,
        };
        let result = if self.catchup {
            self.catch_up(&history, &db).await
        } else {
            self.deliveries(&history, &db).await
        };
        env.stop().await;
        result
    }

    /// Every tenant subscribes and pays, `connections` checkouts at a time.
    async fn subscribe_all(&self, h: &History) -> Result<(), BoxError> {
        let permits = Arc::new(Semaphore::new(self.connections.max(1)));
        let mut tasks = Vec::new();
        for i in 0..self.tenants {
            let permit = Arc::clone(&permits).acquire_owned().await?;
            let call = subscribe(
                h.client.clone(),
                Arc::clone(&h.service),
                Arc::clone(&h.emulator),
                Arc::clone(&h.bearer),
                Arc::clone(&h.clock),
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
        Ok(())
    }

    /// A month and a day later every subscription renews.
    async fn advance_month(h: &History) -> Result<(), BoxError> {
        let target = h.start_time + 32 * 86_400;
        stripe_post(
            &h.client,
            format!(
                "{}/v1/test_helpers/test_clocks/{}/advance",
                h.emulator, h.clock
            ),
            &[("frozen_time", target.to_string())],
        )
        .await?;
        Ok(())
    }

    /// The webhook mode: both phases delivered by the emulator, timed.
    async fn deliveries(&self, h: &History, db: &str) -> Result<bool, BoxError> {
        let started = Instant::now();
        self.subscribe_all(h).await?;
        let after_checkout = settled(&h.client, &h.emulator).await?;
        let checkout = Phase {
            name: "checkout paid (service checkout + emulator completion)",
            events: after_checkout.delivered,
            elapsed: started.elapsed(),
        };

        let started = Instant::now();
        Self::advance_month(h).await?;
        let after_renewal = settled(&h.client, &h.emulator).await?;
        let renewal = Phase {
            name: "renewal (test clock advanced a month)",
            events: after_renewal.delivered - after_checkout.delivered,
            elapsed: started.elapsed(),
        };

        let mut checks = state_checks(db, self.tenants, h.start_time).await?;
        checks.extend([
            (
                "events processed in the ledger",
                psql_int(
                    db,
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
        ]);

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
        let ok = checks_table(&mut out, checks);
        self.print(&out)?;
        Ok(ok)
    }

    /// The catch-up mode: the history with every webhook held then dropped, and one timed
    /// `POST /stripe/events/sync` pass.
    async fn catch_up(&self, h: &History, db: &str) -> Result<bool, BoxError> {
        // What was delivered before the hold (the test clock's own events) stays as it is.
        settled(&h.client, &h.emulator).await?;
        let baseline = psql_int(db, "SELECT count(*) FROM webhook_events").await?;
        control(&h.client, &h.emulator, "deliveries/hold", &json!({})).await?;
        let started = Instant::now();
        self.subscribe_all(h).await?;
        Self::advance_month(h).await?;
        let history_secs = started.elapsed().as_secs_f64();
        let dropped = control(&h.client, &h.emulator, "deliveries/drop", &json!({})).await?;
        let dropped = dropped["dropped"].as_array().map_or(0, Vec::len);
        control(&h.client, &h.emulator, "deliveries/release", &json!({})).await?;
        let before = psql_int(db, "SELECT count(*) FROM webhook_events").await?;
        if let Some(limit) = self.rate_limit {
            control(
                &h.client,
                &h.emulator,
                "rate_limit",
                &json!({ "perSecond": limit }),
            )
            .await?;
        }

        let started = Instant::now();
        let response = h
            .client
            .post(format!("{}/api/v1/billing/stripe/events/sync", h.service))
            .header("Authorization", h.bearer.as_str())
            .send()
            .await?;
        let status = response.status();
        let report: Value = response.json().await?;
        let pass = Phase {
            name: "catch-up pass (POST /stripe/events/sync)",
            events: report["applied"].as_u64().unwrap_or(0),
            elapsed: started.elapsed(),
        };
        if !status.is_success() {
            return Err(format!("the catch-up answered {status}: {report}").into());
        }
        let refused = if self.rate_limit.is_some() {
            let limit: Value = h
                .client
                .get(format!("{}/__emulator/rate_limit", h.emulator))
                .send()
                .await?
                .json()
                .await?;
            control(
                &h.client,
                &h.emulator,
                "rate_limit",
                &json!({ "perSecond": null }),
            )
            .await?;
            limit["refused"].as_u64().unwrap_or(0)
        } else {
            0
        };
        let count = |key: &str| i64::try_from(report[key].as_u64().unwrap_or(0)).unwrap_or(-1);
        let listed = count("listed");

        let mut checks = state_checks(db, self.tenants, h.start_time).await?;
        checks.extend([
            (
                "ledger entries added while webhooks were held",
                before - baseline,
                0,
            ),
            (
                "events listed, at least those dropped",
                listed.min(i64::try_from(dropped)?),
                i64::try_from(dropped)?,
            ),
            (
                "events listed = applied + already applied + unmatched",
                count("applied") + count("alreadyApplied") + count("unmatched"),
                listed,
            ),
            ("events failed", count("failed"), 0),
            (
                "ledger entries (each event once)",
                psql_int(db, "SELECT count(*) FROM webhook_events").await?,
                listed,
            ),
            (
                "ledger entries not from the catch-up (delivered before the hold)",
                psql_int(
                    db,
                    "SELECT count(*) FROM webhook_events WHERE source <> 'catchup'",
                )
                .await?,
                baseline,
            ),
            (
                "payment intents recorded twice",
                psql_int(
                    db,
                    "SELECT count(*) FROM (SELECT stripe_payment_intent_id FROM payments \
                     WHERE stripe_payment_intent_id IS NOT NULL GROUP BY 1 HAVING count(*) > 1) d",
                )
                .await?,
                0,
            ),
        ]);

        let mut out = String::new();
        let limit = self.rate_limit.map_or_else(
            || "no rate limit".to_owned(),
            |n| format!("emulator rate limit {n}/s"),
        );
        let _ = writeln!(
            out,
            "machine: {} cores; {} tenants; history built in {history_secs:.1} s with every webhook dropped ({dropped} events); {limit}  ",
            env::cores(),
            self.tenants,
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "| phase | listed | applied | already applied | unmatched | 429s | seconds | events applied/s |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
        let _ = writeln!(
            out,
            "| {} | {listed} | {} | {} | {} | {refused} | {:.1} | {:.0} |",
            pass.name,
            pass.events,
            count("alreadyApplied"),
            count("unmatched"),
            pass.elapsed.as_secs_f64(),
            pass.rate()
        );
        let ok = checks_table(&mut out, checks);
        self.print(&out)?;
        Ok(ok)
    }

    /// Prints the report and writes it where asked.
    fn print(&self, out: &str) -> Result<(), BoxError> {
        println!("\n{out}");
        if let Some(path) = &self.markdown_out {
            std::fs::write(path, out)?;
        }
        Ok(())
    }
}
