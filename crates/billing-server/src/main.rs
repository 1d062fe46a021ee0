//! `billing-server`: see the crate README for the subcommands.

use std::net::TcpListener;
use std::process::ExitCode;
use std::time::Duration;

use billing_domain::TenantId;
use billing_server::config::{
    environment_help, Config, LogFormat, ProcessEnv, DEFAULT_DATABASE_URL,
};
use billing_server::startup::{migrate, Application};
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
    let (config, made_up) = Config::from_env(&ProcessEnv, dev).map_err(|e| e.to_string())?;
    telemetry::init(config.log_format);
    if dev {
        tracing::warn!("DEVELOPMENT MODE: never run --dev in production");
        for var in &made_up.filled {
            tracing::warn!(setting = var, "not set; using a development default");
        }
        if config.stripe.api_key.is_none() {
            tracing::warn!(
                "STRIPE_API_KEY is not set: the Stripe endpoints answer 503 stripe_not_configured"
            );
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
    let listener = TcpListener::bind(("0.0.0.0", config.port))
        .map_err(|e| format!("cannot listen on port {}: {e}", config.port))?;
    let app = Application::build(&config, listener).map_err(|e| e.to_string())?;
    tracing::info!(port = app.port(), "billing service listening");
    app.run_until_stopped().await.map_err(|e| e.to_string())
}

/// Prints every problem of the configuration (never a value) or a one-line verdict.
fn check_config(dev: bool) -> Result<(), String> {
    match Config::check(&ProcessEnv, dev) {
        Ok((_, made_up)) => {
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
