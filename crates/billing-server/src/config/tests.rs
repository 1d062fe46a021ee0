//! Tests of reading and checking the configuration.

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
    assert_eq!(config.access_grace_days, 7);
    assert!(made_up.filled.is_empty());
}

#[test]
fn the_access_grace_is_read_in_days_and_bounded() {
    let mut env = production();
    env.insert("ACCESS_GRACE_DAYS", "14");
    let (fourteen, _) = Config::from_env(&env, false).unwrap();
    env.insert("ACCESS_GRACE_DAYS", "0");
    let (none, _) = Config::from_env(&env, false).unwrap();

    assert_eq!(fourteen.access_grace_days, 14);
    assert_eq!(none.access_grace_days, 0);
}

#[test]
fn the_access_cache_is_read_in_milliseconds_and_bounded() {
    let mut env = production();
    let (default, _) = Config::from_env(&env, false).unwrap();
    env.insert("ACCESS_CACHE_MS", "0");
    let (off, _) = Config::from_env(&env, false).unwrap();
    env.insert("ACCESS_CACHE_MS", "60001");
    let too_long = Config::from_env(&env, false).unwrap_err().to_string();

    assert_eq!(default.access_cache_ms, 1000);
    assert_eq!(off.access_cache_ms, 0);
    assert!(too_long.contains("ACCESS_CACHE_MS"), "{too_long}");
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
        ("ACCESS_GRACE_DAYS", "-1"),
        ("ACCESS_GRACE_DAYS", "366"),
        ("ACCESS_GRACE_DAYS", "a week"),
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

#[test]
fn an_identity_providers_key_set_replaces_the_secret() {
    let mut env = production();
    env.remove("JWT_SECRET");
    env.insert(
        "JWT_JWKS_URL",
        "https://idp.example.com/realms/billing/certs",
    );
    env.insert("JWT_ISSUER", "https://idp.example.com/realms/billing");
    env.insert("JWT_AUDIENCE", "billing-api");
    env.insert("JWT_ROLES_CLAIM", "realm_access.roles");

    let (config, made_up) = Config::from_env(&env, true).unwrap();

    assert!(
        matches!(&config.jwt, JwtKey::Jwks(url) if url.path() == "/realms/billing/certs"),
        "{:?}",
        config.jwt
    );
    assert!(
        made_up.jwt_secret.is_none(),
        "no ephemeral secret with a JWKS"
    );
    assert_eq!(
        config.jwt_claims,
        JwtClaims {
            issuer: Some("https://idp.example.com/realms/billing".into()),
            audience: Some("billing-api".into()),
            tenant_claim: "tenant_id".into(),
            roles_claim: "realm_access.roles".into(),
        }
    );
    assert!(config.warnings().is_empty());
}

#[test]
fn a_key_set_without_issuer_and_audience_works_but_is_warned_about() {
    let mut env = production();
    env.remove("JWT_SECRET");
    env.insert("JWT_JWKS_URL", "https://idp.example.com/jwks");

    let (config, _) = Config::from_env(&env, false).unwrap();
    let (secret, _) = Config::from_env(&production(), false).unwrap();

    let warnings = config.warnings();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("JWT_ISSUER"));
    assert!(warnings[1].contains("JWT_AUDIENCE"));
    assert!(secret.warnings().is_empty());
}

#[test]
fn the_jwt_settings_are_checked() {
    for (var, value, extra) in [
        ("JWT_JWKS_URL", "file:///etc/jwks.json", Some("JWT_SECRET")),
        (
            "JWT_SECRET",
            "0123456789abcdef0123456789abcdef",
            Some("JWT_JWKS_URL"),
        ),
        ("JWT_ROLES_CLAIM", "realm_access..roles", None),
        ("JWT_TENANT_CLAIM", "tenant id", None),
        ("JWT_TENANT_CLAIM", ".tenant", None),
    ] {
        let mut env = production();
        if let Some(other) = extra {
            // Either the JWKS alone (a bad URL) or both a secret and a JWKS.
            if other == "JWT_SECRET" {
                env.remove("JWT_SECRET");
            } else {
                env.insert("JWT_JWKS_URL", "https://idp.example.com/jwks");
            }
        }
        env.insert(var, value);

        let err = Config::from_env(&env, false).unwrap_err();

        let named = match &err {
            ConfigError::Invalid { var, .. } => *var,
            ConfigError::Missing(var) => var,
        };
        let expected = if var == "JWT_SECRET" {
            "JWT_SECRET"
        } else {
            var
        };
        assert_eq!(named, expected, "{var}={value}: {err}");
    }
}
