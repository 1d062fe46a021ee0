//! Shared by the `api` and `resilience` test binaries: the test configuration, tokens
//! and SQL helpers. Each binary uses part of it.
#![allow(
    dead_code,
    reason = "each test binary uses only part of the shared helpers"
)]

pub mod dev_service;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use billing_domain::TenantId;

pub const JWT_SECRET: &str = "test-only-jwt-secret-0123456789abcdef";
pub const WEBHOOK_SECRET: &str = "whsec_test_secret";

/// The non-dev configuration of a server process: every required variable set.
pub fn server_env(database_url: &str, stripe_base: &str) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("DATABASE_URL", database_url.to_owned()),
        ("DATABASE_MAX_CONNECTIONS", "8".to_owned()),
        ("MIGRATE_ON_START", "false".to_owned()),
        ("STRIPE_API_KEY", "sk_test_fake_key_for_tests".to_owned()),
        ("STRIPE_WEBHOOK_SECRET", WEBHOOK_SECRET.to_owned()),
        ("STRIPE_API_BASE", stripe_base.to_owned()),
        ("STRIPE_MAX_RETRIES", "2".to_owned()),
        ("STRIPE_TIMEOUT_SECS", "2".to_owned()),
        ("STRIPE_DEADLINE_SECS", "5".to_owned()),
        // No catch-up pass at start: tests that count Stripe's requests see only their
        // own; tests/api/catchup.rs runs passes through the sync endpoint.
        ("STRIPE_CATCHUP_INTERVAL_SECS", "0".to_owned()),
        ("JWT_SECRET", JWT_SECRET.to_owned()),
        (
            "CHECKOUT_SUCCESS_URL",
            "https://app.example.com/billing/success?session_id={CHECKOUT_SESSION_ID}".to_owned(),
        ),
        (
            "CHECKOUT_CANCEL_URL",
            "https://app.example.com/billing/cancel".to_owned(),
        ),
        (
            "PORTAL_RETURN_URL",
            "https://app.example.com/billing".to_owned(),
        ),
        ("HTTP_WORKERS", "2".to_owned()),
        ("SHUTDOWN_TIMEOUT_SECS", "1".to_owned()),
        ("RUST_LOG", "error".to_owned()),
        ("LOG_FORMAT", "json".to_owned()),
    ])
}

fn token(sub: &str, tenant: Option<TenantId>, admin: bool) -> String {
    billing_http::mint_hs256(
        JWT_SECRET.as_bytes(),
        sub,
        tenant,
        admin,
        Duration::from_secs(600),
    )
    .unwrap()
}

pub fn admin_token() -> String {
    token("ops", None, true)
}

pub fn tenant_token(tenant: TenantId) -> String {
    token("user", Some(tenant), false)
}

/// Runs one SQL statement with `psql` and returns its unaligned output, trimmed (`|`
/// between columns, one row a line).
pub fn sql(url: &str, query: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-c", query])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{query}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn count(url: &str, query: &str) -> i64 {
    sql(url, query).parse().unwrap()
}
