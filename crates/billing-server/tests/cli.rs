//! The binary's command line: `--help` names every setting, `check-config` names every
//! problem of a configuration and exits 0 only for one the server would start with.

#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly on broken fixtures"
)]

use std::collections::HashMap;
use std::process::{Command, Output};

fn billing_server(args: &[&str], env: &HashMap<&str, &str>) -> Output {
    Command::new(env!("CARGO_BIN_EXE_billing-server"))
        .args(args)
        .env_clear()
        .envs(env)
        .output()
        .expect("run billing-server")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn valid() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("STRIPE_API_KEY", "sk_test_local"),
        ("STRIPE_WEBHOOK_SECRET", "whsec_test_local"),
        ("JWT_SECRET", "test-secret-test-secret-test-secret-0123"),
        (
            "CHECKOUT_SUCCESS_URL",
            "https://app.example.com/ok?session_id={CHECKOUT_SESSION_ID}",
        ),
        ("CHECKOUT_CANCEL_URL", "https://app.example.com/cancel"),
        ("PORTAL_RETURN_URL", "https://app.example.com/billing"),
        // Never connected to: check-config does not start anything.
        ("DATABASE_URL", "postgres://nobody@127.0.0.1:1/none"),
    ])
}

/// The variables of the README's configuration table (first column, in backticks).
fn readme_variables() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README.md");
    let table = readme
        .split("\n## Configuration\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("a Configuration section");
    let mut vars = Vec::new();
    for row in table.lines().filter(|l| l.starts_with("| `")) {
        let first = row.split('|').nth(1).unwrap_or_default();
        vars.extend(
            first
                .split('`')
                .skip(1)
                .step_by(2)
                .filter(|v| v.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
                .map(str::to_owned),
        );
    }
    vars
}

#[test]
fn help_lists_every_variable_of_the_readme_table_with_a_default() {
    let vars = readme_variables();
    assert!(vars.len() >= 20, "README table parsed: {vars:?}");
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["check-config", "--help"],
    ] {
        let out = billing_server(args, &HashMap::new());
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let help = text(&out.stdout);

        for var in &vars {
            let line = help
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{var} ")))
                .unwrap_or_else(|| panic!("{args:?} does not list {var}:\n{help}"));
            assert!(line.contains("[default: "), "{var} has no default: {line}");
        }
    }
}

#[test]
fn help_never_shows_a_value_of_the_environment() {
    let out = billing_server(&["--help"], &valid());

    let help = text(&out.stdout);
    assert!(out.status.success());
    assert!(!help.contains("sk_test_local"), "{help}");
    assert!(!help.contains("whsec_test_local"), "{help}");
    assert!(!help.contains("test-secret-test-secret"), "{help}");
}

#[test]
fn check_config_passes_a_valid_configuration_without_starting() {
    let out = billing_server(&["check-config"], &valid());

    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("configuration ok"));
}

#[test]
fn check_config_names_every_problem_at_once_and_fails() {
    let mut env = valid();
    env.remove("STRIPE_WEBHOOK_SECRET");
    env.remove("PORTAL_RETURN_URL");
    env.insert("STRIPE_API_KEY", "pk_test_publishable");
    env.insert("PORT", "70000");
    env.insert("LOG_FORMAT", "xml");

    let out = billing_server(&["check-config"], &env);

    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    for var in [
        "STRIPE_WEBHOOK_SECRET",
        "PORTAL_RETURN_URL",
        "STRIPE_API_KEY",
        "PORT",
        "LOG_FORMAT",
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&format!("error: {var} "))),
            "{var} not named:\n{stderr}"
        );
    }
    assert!(stderr.contains("5 problem(s)"), "{stderr}");
    assert!(
        !stderr.contains("pk_test_publishable"),
        "a value was printed: {stderr}"
    );
}

#[test]
fn check_config_accepts_an_identity_provider_and_warns_without_an_audience() {
    let mut env = valid();
    env.remove("JWT_SECRET");
    // Never fetched: check-config does not call the provider.
    env.insert("JWT_JWKS_URL", "http://127.0.0.1:1/realms/platform/certs");
    env.insert("JWT_ISSUER", "http://127.0.0.1:1/realms/platform");
    env.insert("JWT_ROLES_CLAIM", "realm_access.roles");

    let out = billing_server(&["check-config"], &env);
    env.insert("JWT_ROLES_CLAIM", "realm_access..roles");
    let bad = billing_server(&["check-config"], &env);

    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("warning: ") && l.contains("JWT_AUDIENCE")),
        "{stdout}"
    );
    assert!(!stdout.contains("JWT_ISSUER:"), "{stdout}");
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        text(&bad.stderr).contains("error: JWT_ROLES_CLAIM "),
        "{}",
        text(&bad.stderr)
    );
}

#[test]
fn check_config_in_development_mode_accepts_an_empty_environment() {
    let out = billing_server(&["--dev", "check-config"], &HashMap::new());

    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("STRIPE_API_KEY is not set"));
}

/// `billing-server stripe-emulator` serves Stripe's API alone: a request without a key is
/// Stripe's 401, one with the configured key is answered.
#[test]
fn the_stripe_emulator_subcommand_serves_the_emulator_alone() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_billing-server"))
        .args([
            "stripe-emulator",
            "--port",
            &port.to_string(),
            "--forward-to",
            "http://127.0.0.1:1/api/v1/billing/stripe/webhook",
            "--webhook-secret",
            "whsec_test_cli",
            "--api-key",
            "sk_test_cli",
        ])
        .env_clear()
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("run billing-server stripe-emulator");
    let get = |key: Option<&str>| -> Option<String> {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        let auth = key.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
        write!(
            stream,
            "POST /v1/customers HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .ok()?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).ok()?;
        Some(answer)
    };
    let mut without_key = None;
    for _ in 0..100 {
        without_key = get(None);
        if without_key.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let with_key = get(Some("sk_test_cli"));
    let _ = child.kill();
    let _ = child.wait();
    let without_key = without_key.expect("the emulator listens");
    assert!(without_key.starts_with("HTTP/1.1 401"), "{without_key}");
    let with_key = with_key.expect("answered");
    assert!(with_key.starts_with("HTTP/1.1 200"), "{with_key}");
    assert!(with_key.contains("\"cus_"), "{with_key}");
}
