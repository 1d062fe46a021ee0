//! `billing-server`: see the crate README for the subcommands.

use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;
use std::time::Duration;

use billing_domain::TenantId;
use billing_server::config::JwtKey;
use billing_server::config::{
    environment_help, Config, LogFormat, ProcessEnv, DEFAULT_DATABASE_URL, DEFAULT_EMULATOR_PORT,
};
use billing_server::startup::{
    dev_checkout_success_url, migrate, seed_dev_plans, start_dev_emulator, Application,
};
use billing_server::telemetry;
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret;

#[derive(Parser)]
#[command(
    name = "billing-server",
    version,
    about = "The Billing Service",
    after_help = environment_help()
)]
struct Cli {
    /// Development mode: missing settings get development defaults (never in production).
    #[arg(long, global = true)]
    dev: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Migrate (unless MIGRATE_ON_START=false) and serve. The default.
    #[command(after_help = environment_help())]
    Serve,
    /// Validate the configuration in the environment without starting; names every
    /// problem at once. Exit status 0 when it would start, 1 otherwise.
    #[command(after_help = environment_help())]
    CheckConfig,
    /// Create the database if missing, apply pending migrations, exit.
    Migrate,
    /// Run the Stripe emulator alone (for tests, benchmarks and other services) until Ctrl-C.
    StripeEmulator {
        /// Port on 127.0.0.1.
        #[arg(long, default_value_t = DEFAULT_EMULATOR_PORT)]
        port: u16,
        /// Where its events are POSTed, e.g. http://127.0.0.1:8087/api/v1/billing/stripe/webhook.
        #[arg(long)]
        forward_to: Option<String>,
        /// The secret deliveries are signed with (whsec_...).
        #[arg(long, default_value = "whsec_test_emulator")]
        webhook_secret: String,
        /// The only API key accepted; without it any sk_test_... key is.
        #[arg(long)]
        api_key: Option<String>,
        /// Accept any cus_... id and create unknown prices on the fly (plans made by hand).
        #[arg(long)]
        lenient: bool,
    },
    /// Print a development bearer token signed with JWT_SECRET (HS256).
    DevToken {
        /// The tenant the token acts for.
        #[arg(long)]
        tenant: Option<TenantId>,
        /// Grant the billing:admin role.
        #[arg(long)]
        admin: bool,
        /// The token's subject.
        #[arg(long, default_value = "dev-user")]
        sub: String,
        /// Lifetime in hours.
        #[arg(long, default_value_t = 12)]
        hours: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("billing-server: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => runtime.block_on(serve(cli.dev)),
        Command::CheckConfig => check_config(cli.dev),
        Command::Migrate => runtime.block_on(migrate_only()),
        Command::StripeEmulator {
            port,
            forward_to,
            webhook_secret,
            api_key,
            lenient,
        } => runtime.block_on(stripe_emulator(
            port,
            forward_to,
            webhook_secret,
            api_key,
            lenient,
        )),
        Command::DevToken {
            tenant,
            admin,
            sub,
            hours,
        } => dev_token(tenant, admin, &sub, hours),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("billing-server: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(dev: bool) -> Result<(), String> {
    let (mut config, made_up) = Config::from_env(&ProcessEnv, dev).map_err(|e| e.to_string())?;
    telemetry::init(config.log_format);
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let mut emulator = None;
    if dev {
        tracing::warn!("DEVELOPMENT MODE: never run --dev in production");
        for var in &made_up.filled {
            tracing::warn!(setting = var, "not set; using a development default");
        }
        if config.stripe.api_key.is_none() {
            let listen = SocketAddr::from(([127, 0, 0, 1], config.emulator_port));
            let webhook = format!(
                "http://127.0.0.1:{}/api/v1/billing/stripe/webhook",
                config.port
            );
            let started = start_dev_emulator(&mut config, listen, webhook)
                .await
                .map_err(|e| format!("the Stripe emulator could not start on {listen}: {e}"))?;
            tracing::warn!(
                emulator = %started.base_url(),
                "STRIPE_API_KEY is not set: Stripe is the in-process EMULATOR (test key, webhook secret made at start, events forwarded to this service); no real Stripe is called"
            );
            if made_up.filled.contains(&"CHECKOUT_SUCCESS_URL") {
                config.stripe.checkout_success_url = dev_checkout_success_url(&started);
            }
            emulator = Some(started);
        }
        if config.stripe.webhook_secrets.is_empty() {
            tracing::warn!(
                "STRIPE_WEBHOOK_SECRET is not set: every webhook is refused as invalid_signature"
            );
        }
        if let Some(secret) = &made_up.jwt_secret {
            let token = billing_http::mint_hs256(
                secret.expose_secret().as_bytes(),
                "dev-admin",
                None,
                true,
                Duration::from_secs(12 * 3600),
            )
            .map_err(|e| e.to_string())?;
            // Printed once, on stdout rather than the log: the JWT key is ephemeral and
            // dies with this process.
            println!("\nDevelopment admin token (valid 12 h, this process only):\n\n  {token}\n");
        }
    }
    if config.migrate_on_start {
        let applied = migrate(config.database_url())
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(
            migrations.applied = applied.len(),
            "database schema is up to date"
        );
    }
    if dev {
        if seed_dev_plans(&config).await.map_err(|e| e.to_string())? {
            tracing::warn!("the plans table was empty: seeded plan-basic, plan-pro and plan-trial");
        }
        if let (JwtKey::Hs256(secret), Some(_)) = (&config.jwt, &emulator) {
            print_demo(
                secret.expose_secret().as_bytes(),
                config.port,
                made_up.jwt_secret.is_none(),
            )?;
        }
    }
    let listener = TcpListener::bind(("0.0.0.0", config.port))
        .map_err(|e| format!("cannot listen on port {}: {e}", config.port))?;
    let app = Application::build(&config, listener).map_err(|e| e.to_string())?;
    tracing::info!(port = app.port(), "billing service listening");
    let served = app.run_until_stopped().await.map_err(|e| e.to_string());
    if let Some(emulator) = emulator {
        emulator.stop().await;
    }
    served
}

/// The demo tenant `--dev` prints a token and a checkout `curl` for.
const DEMO_TENANT: &str = "d3e30000-0000-4000-8000-000000000001";

/// Prints the demo tenant's token and the `curl` lines of the checkout loop (and an admin
/// token when the one printed at start was not, because `JWT_SECRET` is set).
fn print_demo(secret: &[u8], port: u16, with_admin: bool) -> Result<(), String> {
    let tenant: TenantId = DEMO_TENANT
        .parse()
        .map_err(|_| "bad demo tenant id".to_owned())?;
    let hours = Duration::from_secs(12 * 3600);
    if with_admin {
        let admin = billing_http::mint_hs256(secret, "dev-admin", None, true, hours)
            .map_err(|e| e.to_string())?;
        println!("\nDevelopment admin token (valid 12 h):\n\n  {admin}");
    }
    let token = billing_http::mint_hs256(secret, "demo-user", Some(tenant), false, hours)
        .map_err(|e| e.to_string())?;
    let base = format!("http://localhost:{port}/api/v1/billing");
    println!(
        "\nOffline Stripe emulator: the whole loop on this machine.\n\n\
         Demo tenant {tenant} token:\n\n  {token}\n\n\
         1. Start the demo tenant's checkout (open the sessionUrl it answers in a browser,\n\
         \x20  pay with 4242 4242 4242 4242, any future date, any CVC):\n\n  \
         curl -s -X POST -H 'Authorization: Bearer {token}' '{base}/stripe/checkout?tenantId={tenant}&planId=plan-pro'\n\n\
         2. Then see the tenant active:\n\n  \
         curl -s -H 'Authorization: Bearer {token}' {base}/tenants/{tenant}\n"
    );
    Ok(())
}

/// Prints every problem of the configuration (never a value) or a one-line verdict.
fn check_config(dev: bool) -> Result<(), String> {
    match Config::check(&ProcessEnv, dev) {
        Ok((config, made_up)) => {
            for warning in config.warnings() {
                println!("warning: {warning}");
            }
            for var in &made_up.filled {
                println!("note: {var} is not set; --dev fills in a development default");
            }
            println!("configuration ok");
            Ok(())
        }
        Err(problems) => {
            for problem in &problems.0 {
                eprintln!("error: {problem}");
            }
            Err(format!(
                "the configuration has {} problem(s); the server would not start",
                problems.0.len()
            ))
        }
    }
}

async fn stripe_emulator(
    port: u16,
    forward_to: Option<String>,
    webhook_secret: String,
    api_key: Option<String>,
    lenient: bool,
) -> Result<(), String> {
    use billing_stripe_emulator::{EmulatorConfig, StripeEmulator};
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let emulator = StripeEmulator::start(EmulatorConfig {
        addr,
        forward_to,
        webhook_secret,
        api_key,
        accept_any_customer: lenient,
        accept_unknown_prices: lenient,
        ..EmulatorConfig::default()
    })
    .await
    .map_err(|e| format!("the Stripe emulator cannot listen on {addr}: {e}"))?;
    println!("stripe emulator listening on {}", emulator.base_url());
    tokio::signal::ctrl_c().await.map_err(|e| e.to_string())?;
    emulator.stop().await;
    Ok(())
}

async fn migrate_only() -> Result<(), String> {
    telemetry::init(match std::env::var("LOG_FORMAT").as_deref() {
        Ok("json") => LogFormat::Json,
        _ => LogFormat::Pretty,
    });
    // Only the database is needed to migrate, so a Job needs no Stripe or JWT secret.
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    let applied = migrate(&url).await.map_err(|e| e.to_string())?;
    tracing::info!(migrations.applied = ?applied, "database schema is up to date");
    Ok(())
}

fn dev_token(tenant: Option<TenantId>, admin: bool, sub: &str, hours: u64) -> Result<(), String> {
    if tenant.is_none() && !admin {
        return Err("dev-token needs --tenant <uuid> or --admin".into());
    }
    let secret = std::env::var("JWT_SECRET").map_err(|_| {
        "JWT_SECRET is required to mint a token (the server must use the same one)".to_owned()
    })?;
    let token = billing_http::mint_hs256(
        secret.as_bytes(),
        sub,
        tenant,
        admin,
        Duration::from_secs(hours.saturating_mul(3600)),
    )
    .map_err(|e| e.to_string())?;
    println!("{token}");
    Ok(())
}
