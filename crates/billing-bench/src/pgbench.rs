//! The PostgreSQL ceiling: `pgbench` running, per transaction, the statements the service
//! issues for one event of each type (`pgbench/*.sql`, captured from the service with
//! `log_statement = all`), weighted like the mix, at the same client count and duration,
//! with prepared statements (`-M prepared`), as diesel prepares them.
//!
//! Each script draws a tenant of the pool and fresh object ids, and binds the sample
//! payload of its type (`-D pl_<type>=…`), so the ledger rows are as large as the service's.

use std::path::PathBuf;
use std::time::Duration;

use tokio::process::Command;

use crate::env::BoxError;
use crate::events::{Kind, Mix, Templates};
use crate::stats::Latencies;

/// The script of one event type.
fn script(kind: Kind) -> &'static str {
    match kind {
        Kind::CheckoutCompleted => include_str!("../pgbench/checkout.session.completed.sql"),
        Kind::SubscriptionUpdated => include_str!("../pgbench/customer.subscription.updated.sql"),
        Kind::SubscriptionDeleted => include_str!("../pgbench/customer.subscription.deleted.sql"),
        Kind::InvoicePaid => include_str!("../pgbench/invoice.payment_succeeded.sql"),
        Kind::InvoiceFailed => include_str!("../pgbench/invoice.payment_failed.sql"),
        Kind::PaymentSucceeded => include_str!("../pgbench/payment_intent.succeeded.sql"),
        Kind::PaymentFailed => include_str!("../pgbench/payment_intent.payment_failed.sql"),
    }
}

/// The variable holding a type's payload.
fn payload_var(kind: Kind) -> String {
    format!("pl_{}", kind.as_str().replace('.', "_"))
}

/// What one pgbench run measured.
pub struct Ceiling {
    /// Transactions per second, without connection time.
    pub tps: f64,
    /// Every transaction's latency (pgbench's per-transaction log).
    pub latencies: Latencies,
}

/// Scripts written to a temporary directory, ready to run.
pub struct Pgbench {
    dir: PathBuf,
    tenants: u32,
    files: Vec<(PathBuf, u32)>,
    defines: Vec<String>,
}

impl Pgbench {
    /// Writes the scripts of the kinds in `mix` with their weights.
    ///
    /// # Errors
    /// When the directory cannot be written.
    /// `redeliveries` (a share of all requests) adds the redelivery script with the
    /// matching weight.
    pub fn prepare(
        mix: &Mix,
        templates: &Templates,
        tenants: u32,
        redeliveries: f64,
    ) -> Result<Self, BoxError> {
        let dir = std::env::temp_dir().join(format!("billing-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut files = Vec::new();
        let mut defines = vec![
            format!("tenants={}", tenants.max(1)),
            // The outbox payload of an invoice.payment_failed notification, as the service
            // writes it.
            "pl_notification={\"id\":\"00000000-0000-4000-8000-000000000000\",\"type\":\"invoice.payment_failed\",\"occurredAt\":\"2026-11-26T21:57:26Z\",\"data\":{\"tenantId\":\"00000000-0000-4000-8000-000000000310\",\"invoiceId\":\"00000000-0000-4000-8000-000000000000\",\"invoiceNumber\":\"BF-24\",\"stripeInvoiceId\":\"in_bfail_24\",\"amountDue\":2000,\"currency\":\"usd\",\"attempt\":1}}".to_owned(),
        ];
        for (kind, weight) in mix.weights() {
            if *weight == 0 {
                continue;
            }
            let path = dir.join(format!("{}.sql", kind.as_str()));
            std::fs::write(&path, script(*kind))?;
            files.push((path, *weight));
            let body = templates.build(*kind, "pgbench", 0, 0, 0).body;
            defines.push(format!(
                "{}={}",
                payload_var(*kind),
                String::from_utf8_lossy(&body)
            ));
        }
        let total: u32 = mix.weights().iter().map(|(_, w)| w).sum();
        let share = redeliveries.clamp(0.0, 0.9);
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a small positive weight"
        )]
        let weight = (f64::from(total) * share / (1.0 - share)).round() as u32;
        if weight > 0 {
            let path = dir.join("redelivery.sql");
            std::fs::write(&path, include_str!("../pgbench/redelivery.sql"))?;
            files.push((path, weight));
        }
        Ok(Self {
            dir,
            tenants: tenants.max(1),
            files,
            defines,
        })
    }

    /// Makes the state the scripts assume: every tenant of the pool exists and has its
    /// subscription `sub_bench_<i>` (the steady state of the service's run). Idempotent.
    ///
    /// # Errors
    /// When `psql` fails.
    pub async fn seed(&self, url: &str) -> Result<(), BoxError> {
        crate::env::psql(
            url,
            &format!(
                "INSERT INTO tenants (id, status, stripe_customer_id) \
                 SELECT ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, 'active', \
                 'cus_bench_' || i FROM generate_series(0, {max}) i ON CONFLICT DO NOTHING; \
                 INSERT INTO subscriptions (id, tenant_id, plan_id, status, stripe_subscription_id, \
                 stripe_customer_id, last_event_at) \
                 SELECT gen_random_uuid(), ('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, \
                 (SELECT id FROM plans WHERE code = 'pro'), 'active', 'sub_bench_' || i, \
                 'cus_bench_' || i, now() FROM generate_series(0, {max}) i ON CONFLICT DO NOTHING",
                max = self.tenants - 1
            ),
        )
        .await?;
        Ok(())
    }

    /// Runs pgbench with `clients` clients for `duration` and returns its transactions per
    /// second (without connection time) and its latencies, read from its per-transaction
    /// log (`-l`).
    ///
    /// # Errors
    /// When pgbench fails or prints no rate.
    pub async fn run(
        &self,
        url: &str,
        clients: usize,
        duration: Duration,
    ) -> Result<Ceiling, BoxError> {
        let logs = self.dir.join(format!("log-{clients}"));
        let _ = std::fs::remove_dir_all(&logs);
        std::fs::create_dir_all(&logs)?;
        let mut cmd = Command::new("pgbench");
        cmd.args(["-n", "-M", "prepared", "-l", "--log-prefix"])
            .arg(logs.join("tx"))
            .arg("-c")
            .arg(clients.to_string())
            .arg("-j")
            .arg(clients.min(crate::env::cores()).to_string())
            .arg("-T")
            .arg(duration.as_secs().max(1).to_string());
        for d in &self.defines {
            cmd.arg("-D").arg(d);
        }
        for (path, weight) in &self.files {
            cmd.arg("-f").arg(format!("{}@{weight}", path.display()));
        }
        cmd.arg(url);
        let out = cmd.output().await?;
        let text = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "pgbench failed: {}\n{text}",
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        let tps = text
            .lines()
            .find_map(|l| l.strip_prefix("tps = "))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("pgbench printed no tps:\n{text}"))?;
        let mut latencies = Latencies::default();
        for entry in std::fs::read_dir(&logs)? {
            let log = std::fs::read_to_string(entry?.path())?;
            for micros in log.lines().filter_map(log_latency) {
                latencies.record(Duration::from_micros(micros));
            }
        }
        let _ = std::fs::remove_dir_all(&logs);
        Ok(Ceiling { tps, latencies })
    }
}

/// The latency of one line of pgbench's per-transaction log:
/// `client_id transaction_no time script_no time_epoch time_us`, `time` in microseconds.
fn log_latency(line: &str) -> Option<u64> {
    line.split_whitespace().nth(2)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_line_gives_its_latency() {
        assert_eq!(log_latency("3 117 2481 4 1764280646 412345"), Some(2481));
        assert_eq!(log_latency("3 117 skipped 4 1764280646 412345"), None);
        assert_eq!(log_latency(""), None);
    }
}
