//! The list of every environment variable the service reads, with its default and
//! meaning: what `billing-server --help` prints and `check-config` checks. A table of its
//! own, apart from the reading and checking in [`super`], so that adding a setting is one
//! row here (a test keeps it equal to what the configuration reads).

use super::DEFAULT_DATABASE_URL;

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
        "STRIPE_RECONCILE_INTERVAL_SECS",
        "3600",
        "how often one replica reconciles every live subscription and open invoice with Stripe (0: off)",
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
        "STRIPE_CATCHUP_INTERVAL_SECS",
        "300",
        "seconds between catch-up passes over Stripe's Events API (0 turns them off)",
    ),
    setting(
        "STRIPE_BACKGROUND_RATE",
        "40% of the mode's limit (10 test, 40 live)",
        "requests per second shared by the background callers of Stripe",
    ),
    setting(
        "JWT_SECRET",
        "required unless JWT_PUBLIC_KEY or JWT_JWKS_URL (dev: ephemeral)",
        "HS256 secret of bearer tokens, at least 32 bytes",
    ),
    setting(
        "JWT_PUBLIC_KEY",
        "unset: JWT_SECRET or JWT_JWKS_URL is used",
        "RS256 public key (PEM) of bearer tokens, instead of JWT_SECRET",
    ),
    setting(
        "JWT_JWKS_URL",
        "unset: JWT_SECRET or JWT_PUBLIC_KEY is used",
        "the identity provider's JWKS (RS256/ES256 keys by kid, cached; an unknown kid refetches at most every 30 s)",
    ),
    setting(
        "JWT_ISSUER",
        "unset: not checked",
        "required iss of bearer tokens",
    ),
    setting(
        "JWT_AUDIENCE",
        "unset: not checked",
        "required aud of bearer tokens (the token's aud must be or contain it)",
    ),
    setting(
        "JWT_TENANT_CLAIM",
        "tenant_id",
        "claim holding the caller's tenant UUID (a dotted path reaches nested claims)",
    ),
    setting(
        "JWT_ROLES_CLAIM",
        "roles",
        "claim holding the caller's roles, e.g. realm_access.roles (Keycloak)",
    ),
    setting(
        "CHECKOUT_SUCCESS_URL",
        "required (dev: localhost; with the emulator, its receipt page)",
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
        "ACCESS_GRACE_DAYS",
        "7",
        "days a past_due subscription keeps access after its first failed payment (0-365)",
    ),
    setting(
        "ACCESS_CACHE_MS",
        "1000",
        "milliseconds an entitled access answer is kept in memory (0-60000; 0 keeps none)",
    ),
    setting(
        "NOTIFICATIONS_URL",
        "unset: notifications are logged only",
        "where outbox notifications are POSTed",
    ),
    setting(
        "BILLING_EVENTS_URL",
        "unset: billing events are kept, not sent",
        "comma-separated URLs each billing event is POSTed to, in order per tenant",
    ),
    setting(
        "BILLING_EVENTS_SECRET",
        "none (required with BILLING_EVENTS_URL)",
        "comma-separated signing secrets, newest first (Billing-Signature)",
    ),
    setting(
        "BILLING_EVENTS_MAX_ATTEMPTS",
        "25",
        "delivery attempts before a billing event is dead and holds its chain (1-1000)",
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
