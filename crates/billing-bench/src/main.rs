//! `billing-bench`: benchmarks of the billing service (see `docs/benchmarks.md`).
//!
//! * `billing-bench webhooks`: signed Stripe events at 1, 8 and 32 connections against the
//!   release server, with the PostgreSQL ceiling of the same statements (pgbench) and a
//!   consistency check of the database after each level.
//! * `billing-bench checkout`: the three Stripe-calling endpoints against the local fake,
//!   and the service's own overhead per call.
//! * `billing-bench access`: the access check (`GET /tenants/{tenantId}/access`) at 32
//!   connections, p50 and p99.
//! * `billing-bench lifecycle`: events made by the Stripe emulator (checkouts paid, then a
//!   test clock advanced a month over every tenant) delivered to the release server;
//!   with `--catchup [--rate-limit N]`, the same history with every webhook dropped and
//!   one timed catch-up pass over Stripe's Events API.

mod access;
mod checkout;
mod env;
mod events;
mod lifecycle;
mod pgbench;
mod stats;
mod webhooks;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::env::ServerOptions;
use crate::events::{Kind, Mix, KINDS};

#[derive(Parser)]
#[command(name = "billing-bench", about = "Benchmarks of the billing service")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Webhook throughput and latency at several concurrency levels, against the
    /// PostgreSQL ceiling.
    Webhooks(WebhookArgs),
    /// The Stripe-calling endpoints' own overhead over the local Stripe fake.
    Checkout(CheckoutArgs),
    /// The access check other services call on every request, in a closed loop.
    Access(AccessArgs),
    /// Events from the Stripe emulator: checkouts paid, then every subscription renewed by
    /// a test clock, delivered to the service as Stripe delivers them.
    Lifecycle(LifecycleArgs),
}

#[derive(Args, Clone)]
struct ServerArgs {
    /// The release server binary.
    #[arg(long, default_value = "target/release/billing-server")]
    server_bin: PathBuf,
    /// PostgreSQL, without a database.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    pg: String,
    /// The benchmark database (dropped and created afresh).
    #[arg(long, default_value = "billing_bench")]
    database: String,
    /// The server's port.
    #[arg(long, default_value_t = 18087)]
    port: u16,
    /// Extra server environment, `KEY=VALUE` (repeatable), e.g. `HTTP_WORKERS=2`.
    #[arg(long = "server-env", value_parser = parse_kv)]
    server_env: Vec<(String, String)>,
    /// The server's `RUST_LOG`.
    #[arg(long, default_value = "warn")]
    rust_log: String,
    /// Where the server's log goes.
    #[arg(long, default_value = "target/billing-bench-server.log")]
    server_log: PathBuf,
    /// Write the Markdown table here too.
    #[arg(long)]
    markdown_out: Option<PathBuf>,
}

impl ServerArgs {
    fn options(&self) -> ServerOptions {
        ServerOptions {
            binary: self.server_bin.clone(),
            pg_base: self.pg.trim_end_matches('/').to_owned(),
            database: self.database.clone(),
            port: self.port,
            extra_env: self.server_env.clone(),
            rust_log: self.rust_log.clone(),
            log_file: self.server_log.clone(),
        }
    }
}

#[derive(Args)]
struct WebhookArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Concurrent connections, one level each.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    levels: Vec<usize>,
    /// Seconds per level (and per pgbench run).
    #[arg(long, default_value_t = 20)]
    duration_secs: u64,
    /// Tenants in the pool.
    #[arg(long, default_value_t = 1000)]
    tenants: u32,
    /// Other tenants given two years of paid invoices, payments and events before the
    /// first level, so that the tables are not near-empty (0: start empty).
    #[arg(long, default_value_t = 2000)]
    history_tenants: u32,
    /// Share of requests redelivering an earlier event.
    #[arg(long, default_value_t = 0.10)]
    redeliveries: f64,
    /// Weights, `type=weight,...` (types left out keep their default weight).
    #[arg(long, value_delimiter = ',', value_parser = parse_kv)]
    mix: Vec<(String, String)>,
    /// Skip the pgbench ceiling.
    #[arg(long)]
    no_pgbench: bool,
}

#[derive(Args)]
struct CheckoutArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Concurrent connections.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Seconds per phase (fake alone, then through the service, per endpoint).
    #[arg(long, default_value_t = 8)]
    duration_secs: u64,
}

#[derive(Args)]
struct AccessArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Concurrent connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Seconds measured (after a 1 s warm-up).
    #[arg(long, default_value_t = 20)]
    duration_secs: u64,
    /// Tenants seeded, in every subscription state.
    #[arg(long, default_value_t = 10_000)]
    tenants: u32,
}

#[derive(Args)]
struct LifecycleArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Tenants that subscribe and renew.
    #[arg(long, default_value_t = 300)]
    tenants: u32,
    /// Checkouts in flight at once.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Hold and drop every webhook, then time one catch-up pass
    /// (`POST /stripe/events/sync`) over the Events API instead.
    #[arg(long)]
    catchup: bool,
    /// With `--catchup`: the emulator refuses API calls over this many per second (429)
    /// during the pass.
    #[arg(long, requires = "catchup")]
    rate_limit: Option<u32>,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

fn mix(overrides: &[(String, String)]) -> Result<Mix, String> {
    let mut weights: Vec<(Kind, u32)> = KINDS.iter().map(|k| (*k, k.default_weight())).collect();
    for (name, w) in overrides {
        let w: u32 = w.parse().map_err(|e| format!("weight of {name}: {e}"))?;
        let slot = weights
            .iter_mut()
            .find(|(k, _)| k.as_str() == name)
            .ok_or_else(|| format!("unknown event type {name}"))?;
        slot.1 = w;
    }
    Ok(Mix::new(weights))
}

async fn run(cli: Cli) -> Result<bool, env::BoxError> {
    match cli.command {
        Command::Webhooks(a) => {
            webhooks::WebhookBench {
                server: a.server.options(),
                levels: a.levels,
                duration: Duration::from_secs(a.duration_secs),
                tenants: a.tenants,
                history_tenants: a.history_tenants,
                redeliveries: a.redeliveries,
                mix: mix(&a.mix)?,
                pgbench: !a.no_pgbench,
                markdown_out: a.server.markdown_out,
            }
            .run()
            .await
        }
        Command::Checkout(a) => {
            checkout::CheckoutBench {
                server: a.server.options(),
                connections: a.connections,
                duration: Duration::from_secs(a.duration_secs),
                markdown_out: a.server.markdown_out,
            }
            .run()
            .await
        }
        Command::Access(a) => {
            access::AccessBench {
                server: a.server.options(),
                connections: a.connections,
                duration: Duration::from_secs(a.duration_secs),
                tenants: a.tenants,
                markdown_out: a.server.markdown_out,
            }
            .run()
            .await
        }
        Command::Lifecycle(a) => {
            lifecycle::LifecycleBench {
                server: a.server.options(),
                tenants: a.tenants,
                connections: a.connections,
                markdown_out: a.server.markdown_out,
                catchup: a.catchup,
                rate_limit: a.rate_limit,
            }
            .run()
            .await
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("billing-bench: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("billing-bench: some checks failed (see above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("billing-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
