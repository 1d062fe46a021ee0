//! Configuration from the environment (docs/contract.md, Configuration), validated at start-up.
//!
//! Every setting is read through [`Env`], so tests pass a map instead of mutating the
//! process environment. A missing or malformed setting is one [`ConfigError`] naming the
//! variable. Secrets are [`SecretString`]s: their `Debug` prints `[REDACTED]` and they are
//! exposed only where they are used.

use std::collections::HashMap;
use std::time::Duration;

use billing_http::auth::{DEFAULT_ROLES_CLAIM, DEFAULT_TENANT_CLAIM};
use secrecy::{ExposeSecret, SecretString};
use thiserror::Error;
use url::Url;

/// The default HTTP port.
pub const DEFAULT_PORT: u16 = 8087;
/// The default database.
pub const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/billing";

mod events_out;
mod settings;

pub use events_out::EventsOutSettings;
pub use settings::{Setting, DEFAULT_EMULATOR_PORT, SETTINGS};

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
    /// The identity provider's key set (`JWT_JWKS_URL`): RS256 and ES256 keys by `kid`.
    Jwks(Url),
}

/// What a token must say and where its tenant and roles are (docs/contract.md, Operating it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtClaims {
    /// `JWT_ISSUER`: `iss` must equal it when set.
    pub issuer: Option<String>,
    /// `JWT_AUDIENCE`: `aud` must be or contain it when set.
    pub audience: Option<String>,
    /// `JWT_TENANT_CLAIM` (default `tenant_id`).
    pub tenant_claim: String,
    /// `JWT_ROLES_CLAIM` (default `roles`; a dotted path reaches nested claims).
    pub roles_claim: String,
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
    /// `STRIPE_CATCHUP_INTERVAL_SECS`: how often the catch-up lists Stripe's events
    /// (default 300; zero turns the periodic pass off, the admin's sync still works).
    pub catchup_interval: Duration,
    /// `STRIPE_BACKGROUND_RATE`: requests per second the background callers share
    /// (default: 40% of the key's mode's limit, 10 in test mode, 40 live).
    pub background_rate: Option<f64>,
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
    /// JWT issuer, audience and claim names.
    pub jwt_claims: JwtClaims,
    /// `PORTAL_RETURN_URL`.
    pub portal_return_url: Option<String>,
    /// `RETURN_URL_ALLOWED_HOSTS`, lower-case.
    pub allowed_return_hosts: Vec<String>,
    /// `ACCESS_GRACE_DAYS`: how long a `past_due` subscription keeps access after its
    /// first failed payment (default 7, at most 365).
    pub access_grace_days: u32,
    /// `ACCESS_CACHE_MS`: how long an entitled access answer is kept in memory (default
    /// 1000, at most 60000; 0 keeps none).
    pub access_cache_ms: u32,
    /// `NOTIFICATIONS_URL`.
    pub notifications_url: Option<Url>,
    /// `BILLING_EVENTS_URL`, `BILLING_EVENTS_SECRET`, `BILLING_EVENTS_MAX_ATTEMPTS`.
    pub billing_events: EventsOutSettings,
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
    /// `STRIPE_RECONCILE_INTERVAL_SECS`: how often one replica re-reads every live
    /// subscription and open invoice from Stripe (default 3600; zero turns the sweep off).
    pub reconcile_interval: Duration,
    /// Development mode (`--dev`).
    pub dev: bool,
}

/// What development mode made up, to be announced once at start.
#[derive(Debug, Default)]
pub struct DevDefaults {
    /// The ephemeral HS256 secret, when `JWT_SECRET`, `JWT_PUBLIC_KEY` and `JWT_JWKS_URL`
    /// were unset.
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

/// A claim name or dotted path: no empty segment, no spaces.
fn claim_name(env: &dyn Env, var: &'static str, default: &str) -> Result<String, ConfigError> {
    let Some(name) = env.var(var) else {
        return Ok(default.to_owned());
    };
    let name = name.trim();
    if name.split('.').any(str::is_empty) || name.contains(char::is_whitespace) {
        return Err(invalid(
            var,
            "expected a claim name or a dotted path such as realm_access.roles",
        ));
    }
    Ok(name.to_owned())
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

        let jwt = match (
            env.var("JWT_SECRET"),
            env.var("JWT_PUBLIC_KEY"),
            env.var("JWT_JWKS_URL"),
        ) {
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) | (_, Some(_), Some(_)) => Err(invalid(
                "JWT_SECRET",
                "set one of JWT_SECRET (HS256), JWT_PUBLIC_KEY (RS256) or JWT_JWKS_URL (the identity provider's keys)",
            )),
            (Some(secret), None, None) => {
                if secret.len() < 32 {
                    Err(invalid("JWT_SECRET", "must be at least 32 bytes long"))
                } else {
                    Ok(JwtKey::Hs256(SecretString::from(secret)))
                }
            }
            (None, Some(pem), None) => {
                if pem.contains("-----BEGIN") {
                    Ok(JwtKey::Rs256Pem(pem))
                } else {
                    Err(invalid("JWT_PUBLIC_KEY", "expected a PEM public key"))
                }
            }
            (None, None, Some(url)) => absolute_url("JWT_JWKS_URL", &url).map(JwtKey::Jwks),
            (None, None, None) if dev => {
                let secret = SecretString::from(random_secret());
                made_up.jwt_secret = Some(secret.clone());
                made_up.filled.push("JWT_SECRET");
                Ok(JwtKey::Hs256(secret))
            }
            (None, None, None) => Err(ConfigError::Missing("JWT_SECRET")),
        };
        let jwt = errs.ok(jwt);
        let jwt_claims = JwtClaims {
            issuer: env.var("JWT_ISSUER").map(|v| v.trim().to_owned()),
            audience: env.var("JWT_AUDIENCE").map(|v| v.trim().to_owned()),
            tenant_claim: errs.or(
                claim_name(env, "JWT_TENANT_CLAIM", DEFAULT_TENANT_CLAIM),
                DEFAULT_TENANT_CLAIM.to_owned(),
            ),
            roles_claim: errs.or(
                claim_name(env, "JWT_ROLES_CLAIM", DEFAULT_ROLES_CLAIM),
                DEFAULT_ROLES_CLAIM.to_owned(),
            ),
        };

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
        let default_grace = billing_domain::BillingSettings::DEFAULT_ACCESS_GRACE_DAYS;
        let access_grace_days = errs.or(
            parsed(env, "ACCESS_GRACE_DAYS", default_grace).and_then(|days| {
                if days > 365 {
                    Err(invalid("ACCESS_GRACE_DAYS", "must be at most 365"))
                } else {
                    Ok(days)
                }
            }),
            default_grace,
        );
        let default_cache = billing_domain::BillingSettings::DEFAULT_ACCESS_CACHE_MS;
        let access_cache_ms = errs.or(
            parsed(env, "ACCESS_CACHE_MS", default_cache).and_then(|ms| {
                if ms > 60_000 {
                    Err(invalid("ACCESS_CACHE_MS", "must be at most 60000"))
                } else {
                    Ok(ms)
                }
            }),
            default_cache,
        );
        let notifications_url = errs.or(
            env.var("NOTIFICATIONS_URL")
                .map(|raw| absolute_url("NOTIFICATIONS_URL", &raw))
                .transpose(),
            None,
        );
        let billing_events = errs.or(events_out::read(env), EventsOutSettings::default());
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
        let catchup_interval = errs.or(
            secs(env, "STRIPE_CATCHUP_INTERVAL_SECS", 300),
            Duration::ZERO,
        );
        let background_rate = errs.or(
            env.var("STRIPE_BACKGROUND_RATE")
                .map(|v| match v.trim().parse::<f64>() {
                    Ok(rate) if rate.is_finite() && (0.1..=10_000.0).contains(&rate) => Ok(rate),
                    _ => Err(invalid(
                        "STRIPE_BACKGROUND_RATE",
                        "must be a number of requests per second between 0.1 and 10000",
                    )),
                })
                .transpose(),
            None,
        );
        let shutdown_timeout = errs.or(secs(env, "SHUTDOWN_TIMEOUT_SECS", 20), Duration::ZERO);
        let keep_alive = errs.or(secs(env, "HTTP_KEEP_ALIVE_SECS", 75), Duration::ZERO);
        let reconcile_interval = errs.or(
            secs(env, "STRIPE_RECONCILE_INTERVAL_SECS", 3600),
            Duration::ZERO,
        );

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
                catchup_interval,
                background_rate,
            },
            jwt,
            jwt_claims,
            portal_return_url: Some(portal_return_url),
            allowed_return_hosts,
            access_grace_days,
            access_cache_ms,
            notifications_url,
            billing_events,
            log_format,
            shutdown_timeout,
            keep_alive,
            workers,
            emulator_port,
            reconcile_interval,
            dev,
        };
        Ok((config, made_up))
    }

    /// Settings that work but are probably not meant (`check-config` prints them, `serve`
    /// logs them at warn).
    #[must_use]
    pub fn warnings(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if matches!(self.jwt, JwtKey::Jwks(_)) {
            if self.jwt_claims.issuer.is_none() {
                out.push(
                    "JWT_JWKS_URL is set without JWT_ISSUER: the token's issuer is not checked",
                );
            }
            if self.jwt_claims.audience.is_none() {
                out.push("JWT_JWKS_URL is set without JWT_AUDIENCE: a token the identity provider issued for any other application is accepted");
            }
        }
        out
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
    use rand::Rng;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
