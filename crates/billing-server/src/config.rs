//! Configuration from the environment (SPEC §2), validated at start-up.
//!
//! Every setting is read through [`Env`], so tests pass a map instead of mutating the
//! process environment. A missing or malformed setting is one [`ConfigError`] naming the
//! variable. Secrets are [`SecretString`]s: their `Debug` prints `[REDACTED]` and they are
//! exposed only where they are used.

use std::collections::HashMap;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use thiserror::Error;
use url::Url;

/// The default HTTP port.
pub const DEFAULT_PORT: u16 = 8087;
/// The default database.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/billing";

/// One environment variable the service reads: the list `billing-server --help` prints
/// and `check-config` checks (a test keeps it equal to what [`Config::from_env`] reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The variable.
    pub var: &'static str,
    /// Its default, or what happens when it is unset.
    pub default: &'static str,
    /// What it sets.
    pub meaning: &'static str,
}

const fn setting(var: &'static str, default: &'static str, meaning: &'static str) -> Setting {
    Setting {
        var,
        default,
        meaning,
    }
}

/// The default of `STRIPE_EMULATOR_PORT`.
pub const DEFAULT_EMULATOR_PORT: u16 = 12111;

/// Every environment variable, in the order of the README's configuration table.
/// `default` is literal where the service has one value (a test checks that setting the
/// variable to it changes nothing).
pub const SETTINGS: &[Setting] = &[
    setting("PORT", "8087", "HTTP port"),
    setting(
        "DATABASE_URL",
        DEFAULT_DATABASE_URL,
        "PostgreSQL URL (a secret: it holds the password)",
    ),
    setting(
        "DATABASE_MAX_CONNECTIONS",
        "10",
        "database pool size per process",
    ),
    setting(
        "MIGRATE_ON_START",
        "true",
        "apply pending migrations at start (under an advisory lock)",
    ),
    setting(
        "STRIPE_API_KEY",
        "required (dev: unset, the in-process Stripe emulator)",
        "Stripe secret key sk_... or restricted key rk_...",
    ),
    setting(
        "STRIPE_WEBHOOK_SECRET",
        "required (dev: made for the emulator; refused with a real key)",
        "webhook signing secret whsec_...; several, comma-separated, during a rotation",
    ),
    setting(
        "STRIPE_API_BASE",
        billing_stripe::DEFAULT_API_BASE,
        "Stripe API base URL",
    ),
    setting(
        "STRIPE_API_VERSION",
        billing_stripe::DEFAULT_API_VERSION,
        "pinned Stripe-Version (register the webhook endpoint with the same)",
    ),
    setting(
        "STRIPE_EMULATOR_PORT",
        "12111",
        "dev without STRIPE_API_KEY: port of the in-process Stripe emulator",
    ),
    setting(
        "STRIPE_WEBHOOK_TOLERANCE_SECS",
        "300",
        "accepted age of a signature timestamp, both directions",
    ),
    setting(
        "STRIPE_MAX_RETRIES",
        "2",
        "retries of a Stripe call after the first try",
    ),
    setting(
        "STRIPE_TIMEOUT_SECS",
        "30",
        "timeout of one try of a Stripe call",
    ),
    setting(
        "STRIPE_DEADLINE_SECS",
        "45",
        "deadline of a whole Stripe call, retries included",
    ),
    setting(
        "JWT_SECRET",
        "required unless JWT_PUBLIC_KEY (dev: ephemeral)",
        "HS256 secret of bearer tokens, at least 32 bytes",
    ),
    setting(
        "JWT_PUBLIC_KEY",
        "unset: JWT_SECRET is used",
        "RS256 public key (PEM) of bearer tokens, instead of JWT_SECRET",
    ),
    setting(
        "CHECKOUT_SUCCESS_URL",
        "required (dev: localhost)",
        "redirect after a completed Checkout",
    ),
    setting(
        "CHECKOUT_CANCEL_URL",
        "required (dev: localhost)",
        "redirect after a cancelled Checkout",
    ),
    setting(
        "PORTAL_RETURN_URL",
        "required (dev: localhost)",
        "return address of the Customer Portal",
    ),
    setting(
        "RETURN_URL_ALLOWED_HOSTS",
        "the hosts of the three URLs above",
        "hosts a caller's returnUrl may point to, comma-separated",
    ),
    setting(
        "NOTIFICATIONS_URL",
        "unset: notifications are logged only",
        "where outbox notifications are POSTed",
    ),
    setting("LOG_FORMAT", "pretty", "log format: pretty or json"),
    setting("RUST_LOG", "info", "log filter (tracing EnvFilter syntax)"),
    setting(
        "SHUTDOWN_TIMEOUT_SECS",
        "20",
        "drain time for in-flight requests on SIGTERM",
    ),
    setting("HTTP_WORKERS", "one per core", "actix worker threads"),
    setting(
        "HTTP_KEEP_ALIVE_SECS",
        "75",
        "idle keep-alive time of a connection (0: off); keep it above the load balancer's",
    ),
];

/// The environment section of `--help`: every [`SETTINGS`] entry with its default.
/// Values are never printed (some are secrets).
#[must_use]
pub fn environment_help() -> String {
    let width = SETTINGS.iter().map(|s| s.var.len()).max().unwrap_or(0);
    let mut out =
        String::from("Environment (the only source of configuration; values are never shown):\n");
    for s in SETTINGS {
        out.push_str(&format!(
            "  {:width$}  {} [default: {}]\n",
            s.var, s.meaning, s.default
        ));
    }
    out
}

/// A setting that stops start-up.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// Required and absent.
    #[error("{0} is required but not set")]
    Missing(&'static str),
    /// Present but unusable.
    #[error("{var} is invalid: {reason}")]
    Invalid {
        /// The variable.
        var: &'static str,
        /// What is wrong (never the value of a secret).
        reason: String,
    },
}

fn invalid(var: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        var,
        reason: reason.into(),
    }
}

/// Where settings come from.
pub trait Env {
    /// The value of `name`, if set and not empty.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.trim().is_empty())
    }
}

impl Env for HashMap<&str, &str> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|v| (*v).to_owned())
            .filter(|v| !v.trim().is_empty())
    }
}

/// How bearer tokens are verified.
#[derive(Debug, Clone)]
pub enum JwtKey {
    /// HS256 shared secret (`JWT_SECRET`).
    Hs256(SecretString),
    /// RS256 public key in PEM (`JWT_PUBLIC_KEY`).
    Rs256Pem(String),
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable, for a terminal.
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Stripe settings.
#[derive(Debug, Clone)]
pub struct StripeSettings {
    /// `STRIPE_API_KEY`; `None` only in development mode.
    pub api_key: Option<SecretString>,
    /// `STRIPE_WEBHOOK_SECRET`, split on commas.
    pub webhook_secrets: Vec<SecretString>,
    /// `STRIPE_API_BASE`.
    pub api_base: Url,
    /// `STRIPE_API_VERSION`.
    pub api_version: String,
    /// `STRIPE_WEBHOOK_TOLERANCE_SECS`.
    pub webhook_tolerance: Duration,
    /// `CHECKOUT_SUCCESS_URL`.
    pub checkout_success_url: String,
    /// `CHECKOUT_CANCEL_URL`.
    pub checkout_cancel_url: String,
    /// `STRIPE_MAX_RETRIES` (default 2, as Stripe's SDKs).
    pub max_retries: u32,
    /// `STRIPE_TIMEOUT_SECS`: one try (default 30).
    pub request_timeout: Duration,
    /// `STRIPE_DEADLINE_SECS`: a whole call with its retries (default 45).
    pub deadline: Duration,
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `PORT`.
    pub port: u16,
    /// `DATABASE_URL` (may hold a password).
    pub database_url: SecretString,
    /// `DATABASE_MAX_CONNECTIONS` (default 10).
    pub database_max_connections: u32,
    /// `MIGRATE_ON_START` (default true).
    pub migrate_on_start: bool,
    /// Stripe.
    pub stripe: StripeSettings,
    /// JWT verification key.
    pub jwt: JwtKey,
    /// `PORTAL_RETURN_URL`.
    pub portal_return_url: Option<String>,
    /// `RETURN_URL_ALLOWED_HOSTS`, lower-case.
    pub allowed_return_hosts: Vec<String>,
    /// `NOTIFICATIONS_URL`.
    pub notifications_url: Option<Url>,
    /// `LOG_FORMAT`.
    pub log_format: LogFormat,
    /// `SHUTDOWN_TIMEOUT_SECS`: how long in-flight requests may take to finish (default 20;
    /// keep it below the pod's termination grace period).
    pub shutdown_timeout: Duration,
    /// `HTTP_WORKERS` (default: one per core).
    pub workers: Option<usize>,
    /// `HTTP_KEEP_ALIVE_SECS`: how long an idle keep-alive connection stays open (default
    /// 75; 0 closes every connection after its response). Keep it above the idle timeout
    /// of the load balancer in front (60 s on common ones), or the balancer may reuse a
    /// connection the service is closing and answer 502.
    pub keep_alive: Duration,
    /// `STRIPE_EMULATOR_PORT`: where `--dev` without `STRIPE_API_KEY` runs the emulator
    /// (default 12111).
    pub emulator_port: u16,
    /// Development mode (`--dev`).
    pub dev: bool,
}

/// What development mode made up, to be announced once at start.
#[derive(Debug, Default)]
pub struct DevDefaults {
    /// The ephemeral HS256 secret, when `JWT_SECRET`/`JWT_PUBLIC_KEY` were unset.
    pub jwt_secret: Option<SecretString>,
    /// Settings that were filled in.
    pub filled: Vec<&'static str>,
}

fn parsed<T: std::str::FromStr>(
    env: &dyn Env,
    var: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    env.var(var).map_or(Ok(default), |v| {
        v.trim()
            .parse()
            .map_err(|e: T::Err| invalid(var, e.to_string()))
    })
}

fn absolute_url(var: &'static str, raw: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(raw).map_err(|e| invalid(var, e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(var, "must be an absolute http(s) URL"));
    }
    Ok(url)
}

fn bool_var(env: &dyn Env, var: &'static str, default: bool) -> Result<bool, ConfigError> {
    match env.var(var).as_deref().map(str::trim) {
        None => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(_) => Err(invalid(var, "expected true or false")),
    }
}

fn secs(env: &dyn Env, var: &'static str, default: u64) -> Result<Duration, ConfigError> {
    parsed(env, var, default).map(Duration::from_secs)
}

/// Every problem of a configuration, in the order the settings are read.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl ConfigErrors {
    /// The value of `r`, or `None` with its error kept.
    fn ok<T>(&mut self, r: Result<T, ConfigError>) -> Option<T> {
        r.map_err(|e| self.0.push(e)).ok()
    }

    /// The value of `r`, or `fallback` with its error kept (the configuration is refused
    /// in the end; the fallback only lets the later checks run).
    fn or<T>(&mut self, r: Result<T, ConfigError>, fallback: T) -> T {
        self.ok(r).unwrap_or(fallback)
    }
}

impl Config {
    /// Reads and validates everything. In development mode missing settings get
    /// development defaults, reported in the returned [`DevDefaults`].
    ///
    /// # Errors
    /// The first [`ConfigError`] found; [`Config::check`] gives them all.
    pub fn from_env(env: &dyn Env, dev: bool) -> Result<(Self, DevDefaults), ConfigError> {
        Self::check(env, dev).map_err(|mut all| all.0.remove(0))
    }

    /// Reads and validates everything, like [`Config::from_env`], and names every
    /// problem at once (`billing-server check-config`).
    ///
    /// # Errors
    /// [`ConfigErrors`], never empty.
    pub fn check(env: &dyn Env, dev: bool) -> Result<(Self, DevDefaults), ConfigErrors> {
        let mut errs = ConfigErrors::default();
        let mut made_up = DevDefaults::default();
        let mut required = |var: &'static str, dev_default: &str| -> Result<String, ConfigError> {
            match env.var(var) {
                Some(v) => Ok(v),
                None if dev => {
                    made_up.filled.push(var);
                    Ok(dev_default.to_owned())
                }
                None => Err(ConfigError::Missing(var)),
            }
        };

        let port = errs.or(parsed(env, "PORT", DEFAULT_PORT), DEFAULT_PORT);
        let local = format!("http://localhost:{port}");
        let checkout_success_url = errs.ok(required(
            "CHECKOUT_SUCCESS_URL",
            &format!("{local}/billing/success?session_id={{CHECKOUT_SESSION_ID}}"),
        ));
        let checkout_cancel_url = errs.ok(required(
            "CHECKOUT_CANCEL_URL",
            &format!("{local}/billing/cancel"),
        ));
        let portal_return_url = errs.ok(required("PORTAL_RETURN_URL", &format!("{local}/billing")));
        let mut redirects = Vec::new();
        for (var, raw) in [
            ("CHECKOUT_SUCCESS_URL", &checkout_success_url),
            ("CHECKOUT_CANCEL_URL", &checkout_cancel_url),
            ("PORTAL_RETURN_URL", &portal_return_url),
        ] {
            if let Some(raw) = raw {
                redirects.extend(errs.ok(absolute_url(var, raw)));
            }
        }

        let api_key = match env.var("STRIPE_API_KEY") {
            Some(key) if key.starts_with("sk_") || key.starts_with("rk_") => {
                Some(SecretString::from(key))
            }
            Some(_) => {
                errs.0.push(invalid(
                    "STRIPE_API_KEY",
                    "expected a secret key starting with sk_ or rk_",
                ));
                None
            }
            None if dev => {
                made_up.filled.push("STRIPE_API_KEY");
                None
            }
            None => {
                errs.0.push(ConfigError::Missing("STRIPE_API_KEY"));
                None
            }
        };
        let webhook_secrets = match env.var("STRIPE_WEBHOOK_SECRET") {
            Some(list) => {
                let secrets: Vec<SecretString> = list
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| SecretString::from(s.to_owned()))
                    .collect();
                if secrets.is_empty() {
                    errs.0
                        .push(invalid("STRIPE_WEBHOOK_SECRET", "no secret in the list"));
                }
                secrets
            }
            None if dev => {
                made_up.filled.push("STRIPE_WEBHOOK_SECRET");
                Vec::new()
            }
            None => {
                errs.0.push(ConfigError::Missing("STRIPE_WEBHOOK_SECRET"));
                Vec::new()
            }
        };

        let jwt = match (env.var("JWT_SECRET"), env.var("JWT_PUBLIC_KEY")) {
            (Some(_), Some(_)) => Err(invalid(
                "JWT_SECRET",
                "set either JWT_SECRET (HS256) or JWT_PUBLIC_KEY (RS256), not both",
            )),
            (Some(secret), None) => {
                if secret.len() < 32 {
                    Err(invalid("JWT_SECRET", "must be at least 32 bytes long"))
                } else {
                    Ok(JwtKey::Hs256(SecretString::from(secret)))
                }
            }
            (None, Some(pem)) => {
                if pem.contains("-----BEGIN") {
                    Ok(JwtKey::Rs256Pem(pem))
                } else {
                    Err(invalid("JWT_PUBLIC_KEY", "expected a PEM public key"))
                }
            }
            (None, None) if dev => {
                let secret = SecretString::from(random_secret());
                made_up.jwt_secret = Some(secret.clone());
                made_up.filled.push("JWT_SECRET");
                Ok(JwtKey::Hs256(secret))
            }
            (None, None) => Err(ConfigError::Missing("JWT_SECRET")),
        };
        let jwt = errs.ok(jwt);

        let allowed_return_hosts = match env.var("RETURN_URL_ALLOWED_HOSTS") {
            Some(list) => list
                .split(',')
                .map(|h| h.trim().to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            None => {
                let mut hosts: Vec<String> = redirects
                    .iter()
                    .filter_map(|u| u.host_str().map(str::to_ascii_lowercase))
                    .collect();
                hosts.sort();
                hosts.dedup();
                hosts
            }
        };

        let api_base = errs.ok(match env.var("STRIPE_API_BASE") {
            Some(raw) => absolute_url("STRIPE_API_BASE", &raw),
            None => Url::parse(billing_stripe::DEFAULT_API_BASE)
                .map_err(|e| invalid("STRIPE_API_BASE", e.to_string())),
        });
        let notifications_url = errs.or(
            env.var("NOTIFICATIONS_URL")
                .map(|raw| absolute_url("NOTIFICATIONS_URL", &raw))
                .transpose(),
            None,
        );
        let log_format = errs.or(
            match env.var("LOG_FORMAT").as_deref() {
                None | Some("pretty" | "text") => Ok(LogFormat::Pretty),
                Some("json") => Ok(LogFormat::Json),
                Some(_) => Err(invalid("LOG_FORMAT", "expected json or pretty")),
            },
            LogFormat::Pretty,
        );
        let database_max_connections = errs.or(
            parsed(env, "DATABASE_MAX_CONNECTIONS", 10u32).and_then(|n| {
                if n == 0 {
                    Err(invalid("DATABASE_MAX_CONNECTIONS", "must be at least 1"))
                } else {
                    Ok(n)
                }
            }),
            10,
        );
        let workers = errs.or(
            env.var("HTTP_WORKERS")
                .map(|v| {
                    v.trim()
                        .parse::<usize>()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or_else(|| invalid("HTTP_WORKERS", "expected a positive integer"))
                })
                .transpose(),
            None,
        );
        let migrate_on_start = errs.or(bool_var(env, "MIGRATE_ON_START", true), true);
        let webhook_tolerance = errs.or(
            secs(env, "STRIPE_WEBHOOK_TOLERANCE_SECS", 300),
            Duration::ZERO,
        );
        let emulator_port = errs.or(
            parsed(env, "STRIPE_EMULATOR_PORT", DEFAULT_EMULATOR_PORT),
            DEFAULT_EMULATOR_PORT,
        );
        let max_retries = errs.or(parsed(env, "STRIPE_MAX_RETRIES", 2u32), 0);
        let request_timeout = errs.or(secs(env, "STRIPE_TIMEOUT_SECS", 30), Duration::ZERO);
        let deadline = errs.or(secs(env, "STRIPE_DEADLINE_SECS", 45), Duration::ZERO);
        let shutdown_timeout = errs.or(secs(env, "SHUTDOWN_TIMEOUT_SECS", 20), Duration::ZERO);
        let keep_alive = errs.or(secs(env, "HTTP_KEEP_ALIVE_SECS", 75), Duration::ZERO);

        let (
            Some(checkout_success_url),
            Some(checkout_cancel_url),
            Some(portal_return_url),
            Some(jwt),
            Some(api_base),
            true,
        ) = (
            checkout_success_url,
            checkout_cancel_url,
            portal_return_url,
            jwt,
            api_base,
            errs.0.is_empty(),
        )
        else {
            return Err(errs);
        };
        let config = Self {
            port,
            database_url: SecretString::from(
                env.var("DATABASE_URL")
                    .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
            ),
            database_max_connections,
            migrate_on_start,
            stripe: StripeSettings {
                api_key,
                webhook_secrets,
                api_base,
                api_version: env
                    .var("STRIPE_API_VERSION")
                    .unwrap_or_else(|| billing_stripe::DEFAULT_API_VERSION.to_owned()),
                webhook_tolerance,
                checkout_success_url,
                checkout_cancel_url,
                max_retries,
                request_timeout,
                deadline,
            },
            jwt,
            portal_return_url: Some(portal_return_url),
            allowed_return_hosts,
            notifications_url,
            log_format,
            shutdown_timeout,
            keep_alive,
            workers,
            emulator_port,
            dev,
        };
        Ok((config, made_up))
    }

    /// The database URL, for the one place that connects.
    #[must_use]
    pub fn database_url(&self) -> &str {
        self.database_url.expose_secret()
    }
}

/// 32 random bytes as hex: an ephemeral development secret.
#[must_use]
pub fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn production() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("STRIPE_API_KEY", "sk_test_not_a_real_key"),
            ("STRIPE_WEBHOOK_SECRET", "whsec_one, whsec_two"),
            ("JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            (
                "CHECKOUT_SUCCESS_URL",
                "https://app.example.com/ok?s={CHECKOUT_SESSION_ID}",
            ),
            ("CHECKOUT_CANCEL_URL", "https://app.example.com/cancel"),
            ("PORTAL_RETURN_URL", "https://portal.example.com/billing"),
        ])
    }

    #[test]
    fn a_complete_environment_gives_the_specs_defaults() {
        let (config, made_up) = Config::from_env(&production(), false).unwrap();

        assert_eq!(config.port, 8087);
        assert_eq!(config.database_url(), DEFAULT_DATABASE_URL);
        assert_eq!(config.stripe.api_version, "2026-07-29.dahlia");
        assert_eq!(config.stripe.api_base.as_str(), "https://api.stripe.com/");
        assert_eq!(config.stripe.webhook_tolerance, Duration::from_secs(300));
        assert_eq!(config.stripe.webhook_secrets.len(), 2);
        assert_eq!(
            config.allowed_return_hosts,
            ["app.example.com", "portal.example.com"]
        );
        assert!(made_up.filled.is_empty());
    }

    #[test]
    fn keep_alive_outlasts_load_balancers_unless_set() {
        let (default, _) = Config::from_env(&production(), false).unwrap();
        let mut env = production();
        env.insert("HTTP_KEEP_ALIVE_SECS", "0");
        let (off, _) = Config::from_env(&env, false).unwrap();
        env.insert("HTTP_KEEP_ALIVE_SECS", "soon");
        let err = Config::from_env(&env, false).unwrap_err();

        assert_eq!(default.keep_alive, Duration::from_secs(75));
        assert_eq!(off.keep_alive, Duration::ZERO);
        assert!(err.to_string().contains("HTTP_KEEP_ALIVE_SECS"), "{err}");
    }

    #[test]
    fn each_required_setting_is_named_when_missing() {
        for var in [
            "STRIPE_API_KEY",
            "STRIPE_WEBHOOK_SECRET",
            "JWT_SECRET",
            "CHECKOUT_SUCCESS_URL",
            "CHECKOUT_CANCEL_URL",
            "PORTAL_RETURN_URL",
        ] {
            let mut env = production();
            env.remove(var);

            let err = Config::from_env(&env, false).unwrap_err();

            assert_eq!(err, ConfigError::Missing(var));
            assert_eq!(err.to_string(), format!("{var} is required but not set"));
        }
    }

    #[test]
    fn malformed_values_name_their_variable() {
        for (var, value) in [
            ("PORT", "eighty"),
            ("PORT", "70000"),
            ("STRIPE_WEBHOOK_TOLERANCE_SECS", "-1"),
            ("STRIPE_API_BASE", "not a url"),
            ("CHECKOUT_CANCEL_URL", "/relative"),
            ("LOG_FORMAT", "xml"),
            ("MIGRATE_ON_START", "maybe"),
            ("STRIPE_API_KEY", "pk_test_publishable"),
            ("JWT_SECRET", "short"),
        ] {
            let mut env = production();
            env.insert(var, value);

            let err = Config::from_env(&env, false).unwrap_err();

            assert!(
                matches!(&err, ConfigError::Invalid { var: v, .. } if *v == var),
                "{var}={value}: {err}"
            );
        }
    }

    #[test]
    fn both_jwt_keys_at_once_are_refused() {
        let mut env = production();
        env.insert("JWT_PUBLIC_KEY", "-----BEGIN PUBLIC KEY-----");

        assert!(Config::from_env(&env, false).is_err());
    }

    #[test]
    fn development_mode_starts_with_nothing_configured() {
        let (config, made_up) = Config::from_env(&HashMap::new(), true).unwrap();

        assert!(config.stripe.api_key.is_none());
        assert!(made_up.jwt_secret.is_some());
        assert!(made_up.filled.contains(&"STRIPE_API_KEY"));
        assert_eq!(config.allowed_return_hosts, ["localhost"]);
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let (config, _) = Config::from_env(&production(), false).unwrap();

        let printed = format!("{config:?}");

        assert!(!printed.contains("sk_test_not_a_real_key"));
        assert!(!printed.contains("whsec_one"));
        assert!(!printed.contains("0123456789abcdef"));
    }

    #[test]
    fn the_allowed_hosts_can_be_given_explicitly() {
        let mut env = production();
        env.insert(
            "RETURN_URL_ALLOWED_HOSTS",
            "App.Example.com, other.example.com",
        );

        let (config, _) = Config::from_env(&env, false).unwrap();

        assert_eq!(
            config.allowed_return_hosts,
            ["app.example.com", "other.example.com"]
        );
    }

    /// An environment that records every variable asked for.
    struct Recording(
        HashMap<&'static str, &'static str>,
        std::cell::RefCell<Vec<String>>,
    );

    impl Env for Recording {
        fn var(&self, name: &str) -> Option<String> {
            self.1.borrow_mut().push(name.to_owned());
            self.0.var(name)
        }
    }

    #[test]
    fn the_settings_list_is_what_the_configuration_reads() {
        let env = Recording(production(), std::cell::RefCell::default());

        Config::check(&env, false).unwrap();
        Config::check(&env, true).unwrap();

        let read: std::collections::BTreeSet<String> = env.1.take().into_iter().collect();
        let listed: std::collections::BTreeSet<String> = SETTINGS
            .iter()
            .map(|s| s.var.to_owned())
            .filter(|v| v != "RUST_LOG") // read by the log filter (telemetry.rs)
            .collect();
        assert_eq!(read, listed);
    }

    #[test]
    fn literal_defaults_in_the_settings_list_are_the_real_ones() {
        let (plain, _) = Config::from_env(&production(), false).unwrap();
        let literal: Vec<&Setting> = SETTINGS
            .iter()
            .filter(|s| !s.default.contains(' ') && s.var != "RUST_LOG")
            .collect();
        assert!(literal.len() >= 12, "{literal:?}");

        for s in literal {
            let mut env = production();
            env.insert(s.var, s.default);
            let (config, _) = Config::from_env(&env, false).unwrap();

            assert_eq!(format!("{config:?}"), format!("{plain:?}"), "{}", s.var);
            assert_eq!(config.database_url(), plain.database_url(), "{}", s.var);
        }
    }

    #[test]
    fn every_problem_is_named_at_once() {
        let mut env = production();
        env.remove("STRIPE_API_KEY");
        env.remove("CHECKOUT_CANCEL_URL");
        env.insert("PORT", "eighty");
        env.insert("JWT_SECRET", "short");
        env.insert("NOTIFICATIONS_URL", "ftp://example.com");
        env.insert("HTTP_WORKERS", "0");
        env.insert("STRIPE_DEADLINE_SECS", "soon");

        let problems = Config::check(&env, false).unwrap_err();

        let named: Vec<&str> = problems
            .0
            .iter()
            .map(|e| match e {
                ConfigError::Missing(var) | ConfigError::Invalid { var, .. } => *var,
            })
            .collect();
        assert_eq!(
            named,
            [
                "PORT",
                "CHECKOUT_CANCEL_URL",
                "STRIPE_API_KEY",
                "JWT_SECRET",
                "NOTIFICATIONS_URL",
                "HTTP_WORKERS",
                "STRIPE_DEADLINE_SECS",
            ]
        );
        assert_eq!(problems.to_string().lines().count(), 7, "{problems}");
        // from_env still stops at the first.
        assert_eq!(Config::from_env(&env, false).unwrap_err(), problems.0[0]);
    }
}
