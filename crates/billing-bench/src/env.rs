//! The environment a benchmark runs in: a fresh database, the in-process Stripe emulator, the
//! release `billing-server` as a child process, and `psql` for seeding and checking.

use std::error::Error;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use billing_stripe_emulator::{EmulatorConfig, StripeEmulator};
use tokio::process::{Child, Command};

/// A boxed error: the benchmark stops with a message.
pub type BoxError = Box<dyn Error + Send + Sync>;

/// The webhook signing secret the server is started with (a fake value).
pub const WEBHOOK_SECRET: &str = "whsec_test_bench_secret";
/// The HS256 JWT secret the server is started with (a fake value, ≥ 32 bytes).
pub const JWT_SECRET: &str = "bench-jwt-secret-not-for-production-0123456789";

/// What the server is started with.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// The `billing-server` binary.
    pub binary: PathBuf,
    /// `postgres://user@host:port` without a database.
    pub pg_base: String,
    /// The benchmark database (dropped and created afresh).
    pub database: String,
    /// HTTP port.
    pub port: u16,
    /// Extra environment for the server (`KEY=VALUE`), e.g. `HTTP_WORKERS=2`.
    pub extra_env: Vec<(String, String)>,
    /// `RUST_LOG` of the server.
    pub rust_log: String,
    /// Where the server's output goes.
    pub log_file: PathBuf,
}

impl ServerOptions {
    /// The benchmark database's URL.
    #[must_use]
    pub fn database_url(&self) -> String {
        format!("{}/{}", self.pg_base, self.database)
    }
}

/// A running benchmark environment.
pub struct BenchEnv {
    /// The Stripe emulator (in this process).
    pub fake: Arc<StripeEmulator>,
    /// The server process.
    pub server: Child,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The options it was started with.
    pub options: ServerOptions,
}

/// Runs `psql` with one SQL command against `url` and returns its unaligned output.
///
/// # Errors
/// When `psql` cannot run or the command fails.
pub async fn psql(url: &str, sql: &str) -> Result<String, BoxError> {
    let out = Command::new("psql")
        .args([url, "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .await?;
    if !out.status.success() {
        return Err(format!(
            "psql failed on {:.80}: {}",
            sql,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// [`psql`] for a query answering one integer.
///
/// # Errors
/// As [`psql`], or when the answer is not an integer.
pub async fn psql_int(url: &str, sql: &str) -> Result<i64, BoxError> {
    let text = psql(url, sql).await?;
    text.trim()
        .parse()
        .map_err(|e| format!("{sql}: expected an integer, got {text:?}: {e}").into())
}

impl BenchEnv {
    /// Drops and creates the database, starts the emulator with its lenient settings (as a
    /// fake answering every call at once) and the server, waits until the server is ready
    /// (it migrates the database on start).
    ///
    /// # Errors
    /// When any step fails (the server's log file tells why it did not start).
    pub async fn start(options: ServerOptions) -> Result<Self, BoxError> {
        Self::start_with(options, EmulatorConfig::lenient()).await
    }

    /// [`BenchEnv::start`] with the emulator started from `emulator` (its key must be
    /// `sk_test_bench` or unset, its webhook secret [`WEBHOOK_SECRET`] when it delivers).
    ///
    /// # Errors
    /// As [`BenchEnv::start`].
    pub async fn start_with(
        options: ServerOptions,
        emulator: EmulatorConfig,
    ) -> Result<Self, BoxError> {
        let admin = format!("{}/postgres", options.pg_base);
        psql(
            &admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", options.database),
        )
        .await?;
        psql(&admin, &format!("CREATE DATABASE {}", options.database)).await?;

        let fake = Arc::new(StripeEmulator::start(emulator).await?);
        let log = std::fs::File::create(&options.log_file)?;
        let mut command = Command::new(&options.binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORT", options.port.to_string())
            .env("DATABASE_URL", options.database_url())
            .env("STRIPE_API_KEY", "sk_test_bench")
            .env("STRIPE_API_BASE", fake.base_url())
            .env("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("JWT_SECRET", JWT_SECRET)
            .env(
                "CHECKOUT_SUCCESS_URL",
                "https://app.example.com/billing/success",
            )
            .env(
                "CHECKOUT_CANCEL_URL",
                "https://app.example.com/billing/cancel",
            )
            .env("PORTAL_RETURN_URL", "https://app.example.com/billing")
            .env("RUST_LOG", &options.rust_log)
            .env("LOG_FORMAT", "json")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        // libpq's own variables (PGSSLMODE, say) reach the server as they reach pgbench, so
        // that both talk to PostgreSQL the same way.
        for (k, v) in std::env::vars().filter(|(k, _)| k.starts_with("PG")) {
            command.env(k, v);
        }
        for (k, v) in &options.extra_env {
            command.env(k, v);
        }
        let server = command.arg("serve").spawn()?;
        let base_url = format!("http://127.0.0.1:{}", options.port);
        let mut env = Self {
            fake,
            server,
            base_url,
            options,
        };
        env.wait_ready().await?;
        Ok(env)
    }

    async fn wait_ready(&mut self) -> Result<(), BoxError> {
        let client = reqwest::Client::new();
        let url = format!("{}/health/ready", self.base_url);
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if let Some(status) = self.server.try_wait()? {
                return Err(format!(
                    "billing-server exited with {status}; see {}",
                    self.options.log_file.display()
                )
                .into());
            }
            if let Ok(r) = client.get(&url).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Err("billing-server did not become ready within 60 s".into())
    }

    /// The server's process id.
    #[must_use]
    pub fn server_pid(&self) -> Option<u32> {
        self.server.id()
    }

    /// The database URL.
    #[must_use]
    pub fn database_url(&self) -> String {
        self.options.database_url()
    }

    /// Stops the server (SIGKILL is fine: the benchmark database is thrown away) and the
    /// fake.
    pub async fn stop(mut self) {
        let _ = self.server.kill().await;
        if let Ok(fake) = Arc::try_unwrap(self.fake) {
            fake.stop().await;
        }
    }
}

/// Memory of a process from `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// Peak resident set (`VmHWM`), KiB.
    pub peak_kib: u64,
}

/// Reads `VmHWM` of `pid`.
#[must_use]
pub fn memory(pid: u32) -> Memory {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return Memory::default();
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Memory {
        peak_kib: field("VmHWM:"),
    }
}

/// Resets the peak resident set of `pid` (`echo 5 > /proc/<pid>/clear_refs`), so that each
/// level reports its own peak. Returns whether it worked (it needs the same user or root).
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// The number of CPU cores this process may use.
#[must_use]
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}
