//! The access benchmark: `GET /api/v1/billing/tenants/{tenantId}/access`, the read other
//! services make on every request, from `connections` keep-alive connections in a
//! closed loop over tenants in every subscription state (each with an older, ended
//! subscription too, so that the current one is chosen among several rows). Reports
//! calls/s, p50 and p99; the answers of a sample of tenants are checked first.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use crate::checkout::{admin_token, closed_loop, expect_ok, Call};
use crate::env::{self, psql, BenchEnv, BoxError, ServerOptions};
use crate::events::tenant_uuid;

/// How the access benchmark runs.
#[derive(Debug, Clone)]
pub struct AccessBench {
    /// The server and database.
    pub server: ServerOptions,
    /// Concurrent connections.
    pub connections: usize,
    /// How long the measured phase lasts.
    pub duration: Duration,
    /// Tenants seeded (each with a current and an ended subscription).
    pub tenants: u32,
    /// Where to write the Markdown report (also printed).
    pub markdown_out: Option<std::path::PathBuf>,
}

/// The statuses the seeded tenants cycle through, and whether each is entitled (the
/// `past_due` ones failed an hour ago, within the default grace).
const STATES: [(&str, bool); 6] = [
    ("active", true),
    ("trialing", true),
    ("past_due", true),
    ("canceled", false),
    ("unpaid", false),
    ("paused", false),
];

async fn seed(url: &str, tenants: u32) -> Result<(), BoxError> {
    let last = tenants.saturating_sub(1);
    let states = STATES
        .iter()
        .map(|(s, _)| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let n = STATES.len();
    psql(
        url,
        &format!(
            "INSERT INTO plans (id, code, name, stripe_price_id, amount, currency, \"interval\", features) \
             VALUES (gen_random_uuid(), 'basic', 'Basic', 'price_access_basic', 2000, 'usd', 'month', \
             ARRAY['projects']), \
             (gen_random_uuid(), 'pro', 'Pro', 'price_access_pro', 5000, 'usd', 'month', \
             ARRAY['projects', 'reports:export', 'seats.max-50']); \
             INSERT INTO tenants (id, name, status) \
             SELECT ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, 'Bench ' || i, 'active' \
             FROM generate_series(0, {last}) i; \
             INSERT INTO subscriptions (id, tenant_id, plan_id, status, current_period_end, created_at) \
             SELECT gen_random_uuid(), ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, \
             (SELECT id FROM plans WHERE code = 'basic'), 'canceled', now() - interval '300 days', \
             now() - interval '330 days' FROM generate_series(0, {last}) i; \
             INSERT INTO subscriptions (id, tenant_id, plan_id, status, current_period_end, \
             past_due_since, created_at) \
             SELECT gen_random_uuid(), ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, \
             (SELECT id FROM plans WHERE code = 'pro'), (ARRAY[{states}])[i % {n} + 1], \
             now() + interval '20 days', \
             CASE WHEN (ARRAY[{states}])[i % {n} + 1] = 'past_due' THEN now() - interval '1 hour' END, \
             now() - interval '10 days' FROM generate_series(0, {last}) i; \
             ANALYZE plans; ANALYZE tenants; ANALYZE subscriptions"
        ),
    )
    .await?;
    Ok(())
}

/// Checks the answers of the first tenant of each state.
async fn check_answers(base: &str, bearer: &str) -> Result<(), BoxError> {
    let client = reqwest::Client::new();
    for (i, (status, entitled)) in STATES.iter().enumerate() {
        let tenant = tenant_uuid(u32::try_from(i)?);
        let body: serde_json::Value = client
            .get(format!("{base}/api/v1/billing/tenants/{tenant}/access"))
            .header("Authorization", bearer)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        if body["status"] != *status || body["entitled"] != *entitled {
            return Err(format!("tenant {tenant} ({status}): unexpected answer {body}").into());
        }
    }
    Ok(())
}

impl AccessBench {
    /// Seeds, checks a sample, runs the closed loop and prints the report.
    ///
    /// # Errors
    /// When the environment cannot be set up or a sampled answer is wrong.
    pub async fn run(&self) -> Result<bool, BoxError> {
        let env = BenchEnv::start(self.server.clone()).await?;
        seed(&env.database_url(), self.tenants).await?;
        let bearer = Arc::new(format!("Bearer {}", admin_token()?));
        let base = Arc::new(env.base_url.clone());
        check_answers(&base, &bearer).await?;

        let tenants = u64::from(self.tenants.max(1));
        let call: Call = {
            let (base, bearer) = (Arc::clone(&base), Arc::clone(&bearer));
            Arc::new(move |c: reqwest::Client, n| {
                // A stride that is coprime with the tenant count visits them all, not in
                // the order they were inserted.
                let i = u32::try_from(n.wrapping_mul(7919) % tenants).unwrap_or(0);
                let url = format!("{base}/api/v1/billing/tenants/{}/access", tenant_uuid(i));
                let bearer = bearer.to_string();
                Box::pin(async move { expect_ok(c.get(url).header("Authorization", bearer)).await })
            })
        };
        // A short warm-up fills the pools and the prepared-statement caches.
        let _ = closed_loop(self.connections, Duration::from_secs(1), &call).await;
        let (mut lat, errors, first, elapsed) =
            closed_loop(self.connections, self.duration, &call).await;
        if let Some(e) = &first {
            println!("access: {errors} errors, first: {e}");
        }
        #[expect(clippy::cast_precision_loss, reason = "small counts")]
        let rate = lat.len() as f64 / elapsed.as_secs_f64();
        let (p50, p99) = (lat.quantile_ms(0.5), lat.quantile_ms(0.99));

        let mut out = String::new();
        let _ = writeln!(
            out,
            "machine: {} cores; {} connections; {} s; {} tenants (each with a current and an ended subscription)  ",
            env::cores(),
            self.connections,
            self.duration.as_secs(),
            self.tenants
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "| endpoint | calls/s | errors | p50 ms | p99 ms |");
        let _ = writeln!(out, "|---|---:|---:|---:|---:|");
        let _ = writeln!(
            out,
            "| GET /tenants/{{tenantId}}/access | {rate:.0} | {errors} | {p50:.2} | {p99:.2} |"
        );
        println!("\n{out}");
        if let Some(path) = &self.markdown_out {
            std::fs::write(path, &out)?;
        }
        env.stop().await;
        Ok(errors == 0)
    }
}
