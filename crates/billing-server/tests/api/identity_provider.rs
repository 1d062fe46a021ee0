//! The server wired to an identity provider (`JWT_JWKS_URL`, `JWT_ISSUER`, `JWT_AUDIENCE`,
//! `JWT_ROLES_CLAIM`): its key set served by a local mock, tokens signed with the
//! test-only RSA key of billing-http's fixtures.

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{admin_token, spawn_app_with};

/// Test-only: see crates/billing-http/tests/fixtures/README.md.
const PRIVATE_PEM: &[u8] =
    include_bytes!("../../../billing-http/tests/fixtures/test_only_rsa_private.pem");
const ISSUER: &str = "https://sso.example.test/realms/platform";

fn sign(claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("kc-1".into());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(PRIVATE_PEM).unwrap(),
    )
    .unwrap()
}

fn claims(aud: &str, roles: &[&str]) -> Value {
    json!({
        "sub": "operator", "iss": ISSUER, "aud": aud,
        "exp": chrono::Utc::now().timestamp() + 300,
        "realm_access": {"roles": roles},
    })
}

#[tokio::test]
async fn tokens_from_the_identity_provider_are_checked_with_its_keys_and_claims() {
    let idp = MockServer::start().await;
    let mut jwk = Jwk::from_encoding_key(
        &EncodingKey::from_rsa_pem(PRIVATE_PEM).unwrap(),
        Algorithm::RS256,
    )
    .unwrap();
    jwk.common.key_id = Some("kc-1".into());
    Mock::given(method("GET"))
        .and(path("/realms/platform/protocol/openid-connect/certs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(JwkSet { keys: vec![jwk] }))
        .mount(&idp)
        .await;
    let jwks_url = format!(
        "{}/realms/platform/protocol/openid-connect/certs",
        idp.uri()
    );
    let app = spawn_app_with(|env| {
        env.remove("JWT_SECRET");
        env.insert("JWT_JWKS_URL", jwks_url);
        env.insert("JWT_ISSUER", ISSUER.to_owned());
        env.insert("JWT_AUDIENCE", "billing-api".to_owned());
        env.insert("JWT_ROLES_CLAIM", "realm_access.roles".to_owned());
    })
    .await;
    // The webhook event ledger is for admins only.
    let events = "/api/v1/billing/stripe/events";

    let admin = app
        .get(events, &sign(&claims("billing-api", &["billing:admin"])))
        .await;
    let no_role = app
        .get(events, &sign(&claims("billing-api", &["offline_access"])))
        .await;
    let other_audience = app
        .get(events, &sign(&claims("another-app", &["billing:admin"])))
        .await;
    let shared_secret = app.get(events, &admin_token()).await;

    assert_eq!(
        admin.status().as_u16(),
        200,
        "{}",
        admin.text().await.unwrap()
    );
    assert_eq!(no_role.status().as_u16(), 403);
    assert_eq!(other_audience.status().as_u16(), 401);
    let body: Value = other_audience.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("aud"), "{body}");
    assert_eq!(shared_secret.status().as_u16(), 401);
    assert!(!idp.received_requests().await.unwrap().is_empty());
}
