//! The webhook benchmark: signed events at fixed concurrency levels, each followed by a
//! database consistency check and the PostgreSQL ceiling for the same statements.
//!
//! One file (about 670 lines) because it is one procedure run top to bottom — seed, each
//! level, its checks, its ceiling, the table — and its parts are used nowhere else.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use billing_stripe_emulator::StripeEmulator;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::json;

use crate::env::{self, psql, psql_int, BenchEnv, BoxError, ServerOptions, WEBHOOK_SECRET};
use crate::events::{Kind, Mix, Templates, BASIC_PRICE, KINDS, PRO_PRICE};
use crate::pgbench::{Ceiling, Pgbench};
use crate::stats::Latencies;

/// How the webhook benchmark runs.
#[derive(Debug, Clone)]
pub struct WebhookBench {
    /// The server and database.
    pub server: ServerOptions,
    /// Concurrent connections per level.
    pub levels: Vec<usize>,
    /// How long each level (and each pgbench run) lasts.
    pub duration: Duration,
    /// Tenants in the pool.
    pub tenants: u32,
    /// Tenants whose history is seeded before the first level (see [`seed_history`]).
    pub history_tenants: u32,
    /// Share of requests that redeliver an earlier event.
    pub redeliveries: f64,
    /// The mix of event types.
    pub mix: Mix,
    /// Whether to measure the PostgreSQL ceiling.
    pub pgbench: bool,
    /// Where to write the Markdown report (also printed).
    pub markdown_out: Option<std::path::PathBuf>,
}

/// What one worker counted.
#[derive(Default)]
struct WorkerCount {
    latencies: Latencies,
    /// Per kind (index in [`KINDS`]), the last slot for redeliveries.
    by_kind: [Latencies; KINDS.len() + 1],
    /// New events answered 200, per kind (index in [`KINDS`]).
    new_ok: [u64; KINDS.len()],
    new_sent: u64,
    redelivered: u64,
    duplicates: u64,
    errors: u64,
    first_error: Option<String>,
}

/// One level's results.
struct Level {
    connections: usize,
    elapsed: Duration,
    count: WorkerCount,
    peak_rss_kib: u64,
    ceiling: Option<Ceiling>,
    checks: Vec<(String, bool)>,
}

impl Level {
    #[expect(clippy::cast_precision_loss, reason = "counts far below 2^52")]
    fn events_per_s(&self) -> f64 {
        if self.count.latencies.is_empty() {
            return 0.0;
        }
        self.count.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn ratio(&self) -> Option<f64> {
        self.ceiling
            .as_ref()
            .map(|c| c.tps)
            .filter(|tps| *tps > 0.0)
            .map(|tps| self.events_per_s() / tps)
    }

    fn checks_ok(&self) -> bool {
        self.checks.iter().all(|(_, ok)| *ok)
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Shared by the workers of a level.
struct Shared {
    templates: Templates,
    mix: Mix,
    fake: Arc<StripeEmulator>,
    url: String,
    prefix: String,
    counter: AtomicU64,
    created_base: i64,
    tenants: u32,
    redeliveries: f64,
}

async fn worker(shared: Arc<Shared>, deadline: Instant, seed: u64) -> WorkerCount {
    let mut count = WorkerCount::default();
    let Ok(client) = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(30))
        .build()
    else {
        count.errors += 1;
        return count;
    };
    let mut rng = StdRng::seed_from_u64(seed);
    let mut ring: VecDeque<Vec<u8>> = VecDeque::with_capacity(256);
    while Instant::now() < deadline {
        let (body, kind) = if !ring.is_empty() && rng.random_bool(shared.redeliveries) {
            let i = rng.random_range(0..ring.len());
            (ring[i].clone(), None)
        } else {
            let n = shared.counter.fetch_add(1, Ordering::Relaxed);
            let kind = shared.mix.draw(&mut rng);
            let tenant = rng.random_range(0..shared.tenants);
            let created = shared.created_base + i64::try_from(n).unwrap_or(0);
            let event = shared
                .templates
                .build(kind, &shared.prefix, n, tenant, created);
            if let Some((invoice, intent)) = &event.fake_invoice {
                shared.fake.add_invoice(json!({
                    "id": invoice, "object": "invoice", "amount_due": 2000,
                    "amount_paid": 2000, "currency": "usd", "status": "paid"
                }));
                shared.fake.add_invoice_payment(invoice, intent);
            }
            if ring.len() == 256 {
                ring.pop_front();
            }
            ring.push_back(event.body.clone());
            (event.body, Some(kind))
        };
        let signature = billing_stripe::sign(WEBHOOK_SECRET, now_secs(), &body);
        let started = Instant::now();
        let sent = client
            .post(&shared.url)
            .header("Stripe-Signature", signature)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await;
        let answer = match sent {
            Ok(r) => {
                let status = r.status();
                r.text().await.map(|t| (status, t))
            }
            Err(e) => Err(e),
        };
        let took = started.elapsed();
        count.latencies.record(took);
        let slot = kind
            .and_then(|k| KINDS.iter().position(|x| *x == k))
            .unwrap_or(KINDS.len());
        count.by_kind[slot].record(took);
        match kind {
            Some(_) => count.new_sent += 1,
            None => count.redelivered += 1,
        }
        match answer {
            Ok((status, text)) if status.is_success() => {
                if text.contains("\"duplicate\"") {
                    count.duplicates += 1;
                }
                if let Some(k) = kind {
                    if let Some(i) = KINDS.iter().position(|x| *x == k) {
                        count.new_ok[i] += 1;
                    }
                }
            }
            Ok((status, text)) => {
                count.errors += 1;
                count
                    .first_error
                    .get_or_insert_with(|| format!("{status}: {text:.200}"));
            }
            Err(e) => {
                count.errors += 1;
                count.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    count
}

/// Seeds the two plans the samples' prices name.
pub(crate) async fn seed_plans(url: &str) -> Result<(), BoxError> {
    psql(
        url,
        &format!(
            "INSERT INTO plans (id, code, name, stripe_price_id, amount, currency, \"interval\") \
             VALUES (gen_random_uuid(), 'basic', 'Basic', '{BASIC_PRICE}', 2000, 'usd', 'month'), \
             (gen_random_uuid(), 'pro', 'Pro', '{PRO_PRICE}', 5000, 'usd', 'month')"
        ),
    )
    .await?;
    Ok(())
}

/// Months of history each history tenant has (an invoice, its payment and their two events
/// per month).
const HISTORY_MONTHS: u32 = 24;

/// Gives the database a history before the first level, as a service in production has:
/// `tenants` other tenants (`00000000-0000-4000-9000-<i>`), each with a subscription and
/// [`HISTORY_MONTHS`] paid invoices, their payments and their two events, then `VACUUM
/// ANALYZE`. Without it every level starts on near-empty tables: PostgreSQL then plans the
/// service's prepared statements for tables of a few pages (sequential scans), and keeps
/// those generic plans on each pooled connection while the tables grow during the level,
/// which a service whose database has a history does not see. The ids (`in_hist_`,
/// `pi_hist_`, `evt_hist_`, numbers `H-`) stay out of the checks' patterns. Returns the
/// invoices inserted.
async fn seed_history(url: &str, tenants: u32) -> Result<i64, BoxError> {
    if tenants == 0 {
        return Ok(0);
    }
    let max = tenants - 1;
    let months = HISTORY_MONTHS;
    let sql = format!(
        r"
INSERT INTO tenants (id, name, status, stripe_customer_id)
SELECT ('00000000-0000-4000-9000-' || lpad(t::text, 12, '0'))::uuid, 'History tenant ' || t,
       'active', 'cus_hist_' || t
FROM generate_series(0, {max}) t;
INSERT INTO subscriptions (id, tenant_id, plan_id, status, current_period_start,
       current_period_end, stripe_subscription_id, stripe_customer_id, last_event_at)
SELECT gen_random_uuid(), ('00000000-0000-4000-9000-' || lpad(t::text, 12, '0'))::uuid,
       (SELECT id FROM plans WHERE code = 'basic'), 'active', date_trunc('month', now()),
       date_trunc('month', now()) + interval '1 month', 'sub_hist_' || t, 'cus_hist_' || t,
       now() - interval '1 day'
FROM generate_series(0, {max}) t;
CREATE TEMP TABLE h AS
SELECT t, m, gen_random_uuid() AS invoice, gen_random_uuid() AS payment,
       ('00000000-0000-4000-9000-' || lpad(t::text, 12, '0'))::uuid AS tenant,
       now() - make_interval(months => {months} - m) AS at
FROM generate_series(0, {max}) t, generate_series(0, {months} - 1) m;
INSERT INTO invoices (id, tenant_id, subscription_id, number, status, amount_due, amount_paid,
       currency, due_date, paid_at, stripe_invoice_id, stripe_payment_intent_id, last_event_at,
       created_at, updated_at)
SELECT h.invoice, h.tenant, s.id, 'H-' || h.t || '-' || h.m, 'paid', 2000, 2000, 'usd',
       (h.at + interval '30 days')::date, h.at, 'in_hist_' || h.t || '_' || h.m,
       'pi_hist_' || h.t || '_' || h.m, h.at, h.at, h.at
FROM h JOIN subscriptions s ON s.stripe_subscription_id = 'sub_hist_' || h.t;
INSERT INTO payments (id, tenant_id, invoice_id, amount, currency, status,
       stripe_payment_intent_id, stripe_charge_id, source_event_id, created_at)
SELECT payment, tenant, invoice, 2000, 'usd', 'succeeded', 'pi_hist_' || t || '_' || m,
       'ch_hist_' || t || '_' || m, 'evt_hist_pi_' || t || '_' || m, at
FROM h;
INSERT INTO webhook_events (event_id, type, created, api_version, livemode, received_at,
       processed_at, outcome, payload)
SELECT 'evt_hist_' || k.kind || '_' || h.t || '_' || h.m, k.type, h.at, NULL, false, h.at, h.at,
       'processed',
       json_build_object('id', 'evt_hist_' || k.kind || '_' || h.t || '_' || h.m,
           'object', 'event', 'type', k.type, 'created', extract(epoch FROM h.at)::bigint,
           'data', json_build_object('object', json_build_object(
               'id', k.kind || '_hist_' || h.t || '_' || h.m, 'amount', 2000,
               'currency', 'usd', 'metadata', json_build_object('tenantId', h.tenant))))::text
FROM h, (VALUES ('pi', 'payment_intent.succeeded'), ('in', 'invoice.payment_succeeded')) k(kind, type);
SELECT count(*) FROM h"
    );
    let invoices = psql(url, &sql).await?;
    vacuum(url).await?;
    invoices
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .parse()
        .map_err(|e| format!("history: expected a count, got {invoices:?}: {e}").into())
}

/// `VACUUM ANALYZE` before each measurement, the service's and the ceiling's: each starts
/// from tables without the previous run's dead rows and with fresh statistics (the
/// machines this runs on may have autovacuum off; in production it is on).
async fn vacuum(url: &str) -> Result<(), BoxError> {
    psql(url, "VACUUM ANALYZE").await?;
    Ok(())
}

/// Cumulative counts of new events answered 200, per kind.
type Totals = [u64; KINDS.len()];

fn total_of(totals: &Totals, kind: Kind) -> i64 {
    KINDS
        .iter()
        .position(|k| *k == kind)
        .map_or(0, |i| i64::try_from(totals[i]).unwrap_or(i64::MAX))
}

/// Waits up to a minute for the service's PaymentIntent lookups to be worked off; returns
/// how many are left and how long it waited.
async fn drained_lookups(url: &str) -> (i64, Duration) {
    let started = Instant::now();
    loop {
        let pending = psql_int(
            url,
            "SELECT count(*) FROM invoices WHERE payment_intent_lookup_at IS NOT NULL",
        )
        .await
        .unwrap_or(-1);
        if pending == 0 || started.elapsed() > Duration::from_secs(60) {
            return (pending, started.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn check(
    url: &str,
    prefix: &str,
    count: &WorkerCount,
    totals: &Totals,
) -> Vec<(String, bool)> {
    let mut checks = Vec::new();
    // Paid invoices are linked to their PaymentIntent by the service's linker after the
    // event was answered: the checks wait for its queue to drain (it is part of the run).
    let (pending, waited) = drained_lookups(url).await;
    checks.push((
        format!(
            "PaymentIntent lookups pending after the level: {pending} (drained in {:.1} s)",
            waited.as_secs_f64()
        ),
        pending == 0,
    ));
    let ok_new: u64 = count.new_ok.iter().sum();
    let pattern = format!("evt\\_{prefix}\\_%");
    let rows = psql_int(
        url,
        &format!("SELECT count(*) FROM webhook_events WHERE event_id LIKE '{pattern}'"),
    )
    .await
    .unwrap_or(-1);
    checks.push((
        format!("ledger rows {rows} = unique events accepted {ok_new}"),
        u64::try_from(rows).ok() == Some(ok_new),
    ));
    let doubled = psql_int(
        url,
        "SELECT count(*) FROM (SELECT stripe_payment_intent_id FROM payments \
         WHERE status = 'succeeded' GROUP BY 1 HAVING count(*) > 1) d",
    )
    .await
    .unwrap_or(-1);
    checks.push((
        format!("PaymentIntents with more than one succeeded payment: {doubled}"),
        doubled == 0,
    ));
    let payments = psql_int(
        url,
        &format!("SELECT count(*) FROM payments WHERE source_event_id LIKE '{pattern}'"),
    )
    .await
    .unwrap_or(-1);
    let expected = count.new_ok[5] + count.new_ok[6];
    checks.push((
        format!("payments {payments} = payment_intent events accepted {expected}"),
        u64::try_from(payments).ok() == Some(expected),
    ));
    let paid = psql_int(
        url,
        "SELECT count(*) FROM invoices WHERE stripe_invoice_id LIKE 'in\\_bpaid\\_%' \
         AND status = 'paid' AND stripe_payment_intent_id LIKE 'pi\\_binv\\_%'",
    )
    .await
    .unwrap_or(-1);
    let expected = total_of(totals, Kind::InvoicePaid);
    checks.push((
        format!("paid invoices linked to their PaymentIntent {paid} = invoice.payment_succeeded accepted {expected} (all levels)"),
        paid == expected,
    ));
    let overdue = psql_int(
        url,
        "SELECT count(*) FROM invoices WHERE stripe_invoice_id LIKE 'in\\_bfail\\_%' AND status = 'overdue'",
    )
    .await
    .unwrap_or(-1);
    let notified = psql_int(
        url,
        "SELECT count(*) FROM notifications \
         WHERE dedupe_key LIKE 'invoice.payment\\_failed:in\\_bfail\\_%'",
    )
    .await
    .unwrap_or(-1);
    let expected = total_of(totals, Kind::InvoiceFailed);
    checks.push((
        format!("overdue invoices {overdue} and notifications {notified} = invoice.payment_failed accepted {expected} (all levels)"),
        overdue == expected && notified == expected,
    ));
    let flagged = psql_int(
        url,
        &format!(
            "SELECT count(*) FROM webhook_events WHERE event_id LIKE '{pattern}' \
             AND outcome IN ('unmatched', 'failed')"
        ),
    )
    .await
    .unwrap_or(-1);
    checks.push((
        format!("events unmatched or failed: {flagged}"),
        flagged == 0,
    ));
    checks
}

impl WebhookBench {
    /// Runs every level and prints the report.
    ///
    /// # Errors
    /// When the environment cannot be set up.
    pub async fn run(&self) -> Result<bool, BoxError> {
        let templates = Templates::load()?;
        let env = BenchEnv::start(self.server.clone()).await?;
        let db = env.database_url();
        seed_plans(&db).await?;
        let seeding = Instant::now();
        let history = seed_history(&db, self.history_tenants).await?;
        let pid = env.server_pid().unwrap_or(0);
        let fake = Arc::clone(&env.fake);
        let pgbench = if self.pgbench {
            Some(Pgbench::prepare(
                &self.mix,
                &templates,
                self.tenants,
                self.redeliveries,
            )?)
        } else {
            None
        };

        let mut header = String::new();
        let _ = writeln!(
            header,
            "machine: {} cores; server: {}; {} s per level; {} tenants; {:.0}% redeliveries",
            env::cores(),
            self.server.binary.display(),
            self.duration.as_secs(),
            self.tenants,
            self.redeliveries * 100.0
        );
        let _ = write!(header, "mix (weight, sample body bytes):");
        for (kind, w) in self.mix.weights() {
            let _ = write!(
                header,
                " {} {w} ({} B);",
                kind.as_str(),
                templates.sample_len(*kind)
            );
        }
        if history > 0 {
            let _ = write!(
                header,
                "\nhistory: {history} paid invoices with their payments and events, for {} \
                 other tenants (seeded and analysed in {:.1} s)",
                self.history_tenants,
                seeding.elapsed().as_secs_f64()
            );
        } else {
            let _ = write!(header, "\nhistory: none (the tables start empty)");
        }
        if !self.server.extra_env.is_empty() {
            let _ = write!(header, "\nserver env:");
            for (k, v) in &self.server.extra_env {
                let _ = write!(header, " {k}={v}");
            }
        }
        println!("{header}");

        let shared_templates = templates;
        let mut shared = Arc::new(Shared {
            templates: shared_templates,
            mix: self.mix.clone(),
            fake,
            url: format!("{}/api/v1/billing/stripe/webhook", env.base_url),
            prefix: String::new(),
            counter: AtomicU64::new(0),
            created_base: now_secs() - 86_400,
            tenants: self.tenants.max(1),
            redeliveries: self.redeliveries.clamp(0.0, 1.0),
        });
        let mut totals: Totals = [0; KINDS.len()];
        let mut levels = Vec::new();
        for &connections in &self.levels {
            let prefix = format!("c{connections}");
            {
                let Some(s) = Arc::get_mut(&mut shared) else {
                    return Err("workers still hold the shared state".into());
                };
                s.prefix.clone_from(&prefix);
            }
            vacuum(&db).await?;
            let peak_reset = env::reset_peak(pid);
            let started = Instant::now();
            let deadline = started + self.duration;
            let handles: Vec<_> = (0..connections)
                .map(|i| {
                    tokio::spawn(worker(
                        Arc::clone(&shared),
                        deadline,
                        (connections * 1000 + i) as u64,
                    ))
                })
                .collect();
            let mut count = WorkerCount::default();
            for h in handles {
                let c = h.await?;
                count.latencies.merge(c.latencies);
                for (mine, theirs) in count.by_kind.iter_mut().zip(c.by_kind) {
                    mine.merge(theirs);
                }
                for (t, n) in count.new_ok.iter_mut().zip(c.new_ok) {
                    *t += n;
                }
                count.new_sent += c.new_sent;
                count.redelivered += c.redelivered;
                count.duplicates += c.duplicates;
                count.errors += c.errors;
                if count.first_error.is_none() {
                    count.first_error = c.first_error;
                }
            }
            let elapsed = started.elapsed();
            let memory = env::memory(pid);
            shared.fake.clear_requests();
            for (t, n) in totals.iter_mut().zip(count.new_ok) {
                *t += n;
            }
            // Let the outbox dispatcher settle before reading notifications.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let checks = check(&db, &prefix, &count, &totals).await;
            let ceiling = match &pgbench {
                Some(p) => {
                    p.seed(&db).await?;
                    vacuum(&db).await?;
                    Some(p.run(&db, connections, self.duration).await?)
                }
                None => None,
            };
            let mut level = Level {
                connections,
                elapsed,
                count,
                peak_rss_kib: memory.peak_kib,
                ceiling,
                checks,
            };
            print_level(&mut level, peak_reset);
            levels.push(level);
        }
        let table = markdown(&header, &mut levels);
        println!("\n{table}");
        if let Some(path) = &self.markdown_out {
            std::fs::write(path, &table)?;
        }
        env.stop().await;
        Ok(levels.iter().all(Level::checks_ok))
    }
}

#[expect(clippy::cast_precision_loss, reason = "KiB far below 2^52")]
fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn print_level(level: &mut Level, peak_reset: bool) {
    let c = &mut level.count;
    println!(
        "\n== {} connections: {} requests in {:.1} s ({} new, {} redeliveries, {} answered duplicate), {} errors",
        level.connections,
        c.latencies.len(),
        level.elapsed.as_secs_f64(),
        c.new_sent,
        c.redelivered,
        c.duplicates,
        c.errors
    );
    if let Some(e) = &c.first_error {
        println!("   first error: {e}");
    }
    let (p50, p99, max) = (
        c.latencies.quantile_ms(0.5),
        c.latencies.quantile_ms(0.99),
        c.latencies.quantile_ms(1.0),
    );
    let eps = level.events_per_s();
    println!(
        "   {eps:.0} events/s; latency p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms; server peak RSS {:.1} MiB{}",
        mib(level.peak_rss_kib),
        if peak_reset { "" } else { " (since start)" }
    );
    let mut per_kind = String::from("   p50/p99 ms by type:");
    for (i, l) in level.count.by_kind.iter_mut().enumerate() {
        if l.is_empty() {
            continue;
        }
        let name = KINDS.get(i).map_or("redelivery", |k| k.as_str());
        let _ = write!(
            per_kind,
            " {name} {:.1}/{:.1};",
            l.quantile_ms(0.5),
            l.quantile_ms(0.99)
        );
    }
    println!("{per_kind}");
    let ratio = level.ratio();
    if let (Some(ceiling), Some(ratio)) = (level.ceiling.as_mut(), ratio) {
        println!(
            "   PostgreSQL ceiling (pgbench, same statements): {:.0} tx/s, latency p50 {:.2} ms, p99 {:.2} ms; service/ceiling {ratio:.2}",
            ceiling.tps,
            ceiling.latencies.quantile_ms(0.5),
            ceiling.latencies.quantile_ms(0.99),
        );
    }
    for (what, ok) in &level.checks {
        println!("   [{}] {what}", if *ok { "ok" } else { "FAIL" });
    }
}

fn markdown(header: &str, levels: &mut [Level]) -> String {
    let mut out = String::new();
    for line in header.lines() {
        let _ = writeln!(out, "{line}  ");
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| connections | events/s | p50 ms | p99 ms | max ms | errors | peak RSS MiB | PG ceiling tx/s | ceiling p99 ms | service/ceiling | DB checks |"
    );
    let _ = writeln!(
        out,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    );
    for level in levels.iter_mut() {
        let eps = level.events_per_s();
        let ratio = level.ratio().map_or("-".into(), |r| format!("{r:.2}"));
        let ceiling = level
            .ceiling
            .as_ref()
            .map_or("-".into(), |c| format!("{:.0}", c.tps));
        let ceiling_p99 = level.ceiling.as_mut().map_or("-".into(), |c| {
            format!("{:.2}", c.latencies.quantile_ms(0.99))
        });
        let checks = if level.checks_ok() { "ok" } else { "FAILED" };
        let c = &mut level.count;
        let _ = writeln!(
            out,
            "| {} | {eps:.0} | {:.2} | {:.2} | {:.2} | {} | {:.1} | {ceiling} | {ceiling_p99} | {ratio} | {checks} |",
            level.connections,
            c.latencies.quantile_ms(0.5),
            c.latencies.quantile_ms(0.99),
            c.latencies.quantile_ms(1.0),
            c.errors,
            mib(level.peak_rss_kib),
        );
    }
    out
}
