//! Tokens from an identity provider's key set (`JWT_JWKS_URL`), against a JWKS server
//! started here on a random port and serving the test-only fixture keys.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::header;
use actix_web::test::TestRequest;
use actix_web::{web, HttpResponse, HttpServer};
use billing_domain::service::MockBillingApi;
use billing_domain::TenantId;
use billing_http::{AuthError, Authenticator, Jwks, TokenPolicy};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

use crate::helpers::*;

const ROTATED_PEM: &[u8] = include_bytes!("../fixtures/test_only_rsa_rotated_private.pem");
const EC_PEM: &[u8] = include_bytes!("../fixtures/test_only_ec_p256_private.pem");

/// A signing key of the test identity provider.
struct Key {
    kid: &'static str,
    alg: Algorithm,
    encoding: EncodingKey,
}

impl Key {
    fn rsa(kid: &'static str, pem: &[u8]) -> Self {
        Self {
            kid,
            alg: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_pem(pem).unwrap(),
        }
    }

    fn first() -> Self {
        Self::rsa("key-2026-01", PRIVATE_PEM)
    }

    fn rotated() -> Self {
        Self::rsa("key-2026-07", ROTATED_PEM)
    }

    fn ec() -> Self {
        Self {
            kid: "ec-1",
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_pem(EC_PEM).unwrap(),
        }
    }

    /// The public JWK the provider publishes for this key.
    fn jwk(&self) -> Jwk {
        let mut jwk = Jwk::from_encoding_key(&self.encoding, self.alg).unwrap();
        jwk.common.key_id = Some(self.kid.to_owned());
        jwk
    }

    /// A token signed with this key, its `kid` in the header.
    fn sign(&self, claims: &Value) -> String {
        self.sign_as(self.kid, claims)
    }

    fn sign_as(&self, kid: &str, claims: &Value) -> String {
        let mut header = Header::new(self.alg);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

/// What the JWKS endpoint serves, and how often it was asked.
struct Served {
    body: String,
    status: u16,
    hits: usize,
}

/// The identity provider's JWKS endpoint.
struct Provider {
    state: Arc<Mutex<Served>>,
    handle: ServerHandle,
    url: String,
}

impl Provider {
    async fn start(keys: &[&Key]) -> Self {
        let state = Arc::new(Mutex::new(Served {
            body: set(keys),
            status: 200,
            hits: 0,
        }));
        let shared = state.clone();
        let server = HttpServer::new(move || {
            let shared = shared.clone();
            actix_web::App::new().route(
                "/realms/billing/certs",
                web::get().to(move || {
                    let shared = shared.clone();
                    async move {
                        let mut s = shared.lock().unwrap();
                        s.hits += 1;
                        HttpResponse::build(
                            actix_web::http::StatusCode::from_u16(s.status).unwrap(),
                        )
                        .content_type("application/json")
                        .body(s.body.clone())
                    }
                }),
            )
        })
        .workers(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Self {
            state,
            handle,
            url: format!("http://127.0.0.1:{port}/realms/billing/certs"),
        }
    }

    fn publish(&self, keys: &[&Key]) {
        self.state.lock().unwrap().body = set(keys);
    }

    fn fail_with(&self, status: u16) {
        self.state.lock().unwrap().status = status;
    }

    fn hits(&self) -> usize {
        self.state.lock().unwrap().hits
    }

    /// The provider goes away: its port refuses connections.
    async fn stop(&self) {
        self.handle.stop(false).await;
    }

    fn jwks(&self) -> Jwks {
        Jwks::new(&self.url).unwrap()
    }
}

fn set(keys: &[&Key]) -> String {
    serde_json::to_string(&JwkSet {
        keys: keys.iter().map(|k| k.jwk()).collect(),
    })
    .unwrap()
}

fn claims() -> Value {
    json!({"sub": "user-1", "exp": now() + 300})
}

async fn fast(provider: &Provider) -> Authenticator {
    Authenticator::jwks(provider.jwks().min_refetch(Duration::from_millis(500))).unwrap()
}

/// Waits out the 500 ms refetch interval of [`fast`].
async fn after_the_interval() {
    tokio::time::sleep(Duration::from_millis(600)).await;
}

#[actix_rt::test]
async fn a_token_signed_with_a_published_key_is_accepted_and_the_set_is_cached() {
    let key = Key::first();
    let provider = Provider::start(&[&key]).await;
    let auth = fast(&provider).await;

    assert!(auth.prefetch().await);
    for _ in 0..3 {
        let actor = auth.verify_token(&key.sign(&claims())).await.unwrap();
        assert_eq!(actor.subject, "user-1");
    }

    assert_eq!(provider.hits(), 1);
}

#[actix_rt::test]
async fn a_rotated_key_is_picked_up_and_a_withdrawn_one_refused() {
    let (old, new) = (Key::first(), Key::rotated());
    let provider = Provider::start(&[&old]).await;
    let auth = fast(&provider).await;
    auth.verify_token(&old.sign(&claims())).await.unwrap();

    provider.publish(&[&new]);
    after_the_interval().await;
    let with_new = auth.verify_token(&new.sign(&claims())).await;
    after_the_interval().await;
    let with_old = auth.verify_token(&old.sign(&claims())).await;

    assert_eq!(with_new.unwrap().subject, "user-1");
    assert_eq!(with_old.unwrap_err(), AuthError::UnknownKey);
    assert_eq!(provider.hits(), 3);
}

#[actix_rt::test]
async fn unknown_kids_fetch_the_set_again_at_most_once_per_interval() {
    let key = Key::first();
    let provider = Provider::start(&[&key]).await;
    let auth = fast(&provider).await;
    assert!(auth.prefetch().await);

    // Right after a fetch: refused without asking the provider again.
    let early = auth.verify_token(&key.sign_as("ghost", &claims())).await;
    assert_eq!(early.unwrap_err(), AuthError::UnknownKey);
    assert_eq!(provider.hits(), 1);

    after_the_interval().await;
    let ghosts: Vec<String> = (0..10)
        .map(|i| key.sign_as(&format!("ghost-{i}"), &claims()))
        .collect();
    let burst = futures::future::join_all(ghosts.iter().map(|t| auth.verify_token(t))).await;
    assert!(burst.iter().all(|r| *r == Err(AuthError::UnknownKey)));
    assert_eq!(provider.hits(), 2, "ten unknown kids, one fetch");

    after_the_interval().await;
    auth.verify_token(&key.sign_as("ghost", &claims()))
        .await
        .unwrap_err();
    assert_eq!(provider.hits(), 3);
}

#[actix_rt::test]
async fn by_default_unknown_kids_right_after_start_cost_the_provider_nothing() {
    let key = Key::first();
    let provider = Provider::start(&[&key]).await;
    let auth = Authenticator::jwks(provider.jwks()).unwrap();
    assert!(auth.prefetch().await);
    let rotated = Key::rotated();
    provider.publish(&[&key, &rotated]);

    for i in 0..5 {
        let refused = auth
            .verify_token(&key.sign_as(&format!("made-up-{i}"), &claims()))
            .await;
        assert_eq!(refused.unwrap_err(), AuthError::UnknownKey);
    }
    // Even a really new key waits for the 30 s interval.
    let new = auth.verify_token(&rotated.sign(&claims())).await;

    assert_eq!(new.unwrap_err(), AuthError::UnknownKey);
    assert_eq!(provider.hits(), 1);
}

#[actix_rt::test]
async fn while_the_provider_is_down_the_last_good_set_keeps_working() {
    let key = Key::first();
    let provider = Provider::start(&[&key]).await;
    // A set older than 1 ms is refreshed in the background on every use.
    let auth = Authenticator::jwks(
        provider
            .jwks()
            .min_refetch(Duration::from_millis(500))
            .max_age(Duration::from_millis(1)),
    )
    .unwrap();
    assert!(auth.prefetch().await);

    provider.fail_with(503);
    after_the_interval().await;
    auth.verify_token(&key.sign(&claims())).await.unwrap();
    after_the_interval().await;
    let unknown = auth.verify_token(&Key::rotated().sign(&claims())).await;
    assert_eq!(unknown.unwrap_err(), AuthError::UnknownKey);
    let hits_while_failing = provider.hits();

    provider.stop().await;
    after_the_interval().await;
    let during_outage = auth.verify_token(&key.sign(&claims())).await;
    after_the_interval().await;
    let refetch_refused = auth.verify_token(&Key::rotated().sign(&claims())).await;
    let still = auth.verify_token(&key.sign(&claims())).await;

    assert!(hits_while_failing >= 2, "{hits_while_failing}");
    assert_eq!(during_outage.unwrap().subject, "user-1");
    assert_eq!(refetch_refused.unwrap_err(), AuthError::UnknownKey);
    assert_eq!(still.unwrap().subject, "user-1");
}

#[actix_rt::test]
async fn a_provider_down_at_start_is_reported_and_tried_again_later() {
    let key = Key::first();
    let provider = Provider::start(&[&key]).await;
    provider.fail_with(500);
    let auth = fast(&provider).await;

    assert!(!auth.prefetch().await);
    provider.fail_with(200);
    after_the_interval().await;

    assert_eq!(
        auth.verify_token(&key.sign(&claims()))
            .await
            .unwrap()
            .subject,
        "user-1"
    );
}

fn idp_policy() -> TokenPolicy {
    TokenPolicy {
        issuer: Some("https://idp.example.test/realms/billing".into()),
        audience: Some("billing-api".into()),
        ..TokenPolicy::default()
    }
}

#[actix_rt::test]
async fn the_issuer_and_audience_are_checked_when_configured() {
    let key = Key::first();
    let provider = Provider::start(&[&key]).await;
    let auth = fast(&provider).await.with_policy(idp_policy());
    let iss = "https://idp.example.test/realms/billing";
    let exp = now() + 300;
    let cases = [
        (
            "right issuer, audience in a list",
            json!({"sub": "u", "exp": exp, "iss": iss, "aud": ["account", "billing-api"]}),
            Ok(()),
        ),
        (
            "right issuer and audience",
            json!({"sub": "u", "exp": exp, "iss": iss, "aud": "billing-api"}),
            Ok(()),
        ),
        (
            "wrong issuer",
            json!({"sub": "u", "exp": exp, "iss": "https://evil.example.test", "aud": "billing-api"}),
            Err(AuthError::WrongIssuer),
        ),
        (
            "no issuer",
            json!({"sub": "u", "exp": exp, "aud": "billing-api"}),
            Err(AuthError::MissingClaim("iss")),
        ),
        (
            "wrong audience",
            json!({"sub": "u", "exp": exp, "iss": iss, "aud": "another-api"}),
            Err(AuthError::WrongAudience),
        ),
        (
            "no audience",
            json!({"sub": "u", "exp": exp, "iss": iss}),
            Err(AuthError::MissingClaim("aud")),
        ),
    ];

    for (case, claims, expected) in cases {
        let got = auth.verify_token(&key.sign(&claims)).await.map(|_| ());

        assert_eq!(got, expected, "{case}");
    }
}

#[actix_rt::test]
async fn without_an_issuer_or_audience_configured_neither_is_checked() {
    let key = Key::first();
    let provider = Provider::start(&[&key]).await;
    let auth = fast(&provider).await;

    let actor = auth
        .verify_token(&key.sign(&json!({
            "sub": "u", "exp": now() + 300, "iss": "https://anyone.example.test", "aud": "x"
        })))
        .await;

    assert!(actor.is_ok(), "{actor:?}");
}

#[actix_rt::test]
async fn keycloak_style_nested_roles_and_a_namespaced_tenant_claim_are_read() {
    let key = Key::first();
    let provider = Provider::start(&[&key]).await;
    let auth = fast(&provider).await.with_policy(TokenPolicy {
        tenant_claim: "https://billing.example.test/tenant_id".into(),
        roles_claim: "realm_access.roles".into(),
        ..TokenPolicy::default()
    });
    let tenant = TenantId::new();
    let token = |roles: Value| {
        key.sign(&json!({
            "sub": "kc-user", "exp": now() + 300,
            "https://billing.example.test/tenant_id": tenant.to_string(),
            "realm_access": {"roles": roles},
            "roles": ["billing:admin"],
        }))
    };

    let admin = auth
        .verify_token(&token(json!(["offline_access", "billing:admin"])))
        .await
        .unwrap();
    let plain = auth
        .verify_token(&token(json!(["offline_access"])))
        .await
        .unwrap();

    assert!(admin.admin);
    assert_eq!(admin.tenant, Some(tenant));
    // The top-level `roles` is not read once JWT_ROLES_CLAIM names another claim.
    assert!(!plain.admin);
}

#[actix_rt::test]
async fn an_hs256_token_is_refused_when_a_key_set_is_configured() {
    let key = Key::first();
    let provider = Provider::start(&[&key]).await;
    let auth = fast(&provider).await;
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.kid.to_owned());
    let shared_secret = jsonwebtoken::encode(
        &header,
        &claims(),
        &EncodingKey::from_secret(SECRET).unwrap(),
    )
    .unwrap();
    // Algorithm confusion: HMAC keyed with the published public key.
    let confused = jsonwebtoken::encode(
        &header,
        &claims(),
        &EncodingKey::from_secret(PUBLIC_PEM).unwrap(),
    )
    .unwrap();

    for token in [shared_secret, confused] {
        assert_eq!(
            auth.verify_token(&token).await.unwrap_err(),
            AuthError::WrongAlgorithm
        );
    }
}

#[actix_rt::test]
async fn a_token_must_use_its_keys_algorithm() {
    let (rsa, ec) = (Key::first(), Key::ec());
    let provider = Provider::start(&[&rsa, &ec]).await;
    let auth = fast(&provider).await;

    // Signed with the RSA key but naming the EC key's kid.
    let mismatched = rsa.sign_as(ec.kid, &claims());
    let no_kid =
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims(), &rsa.encoding).unwrap();

    assert_eq!(
        auth.verify_token(&mismatched).await.unwrap_err(),
        AuthError::WrongAlgorithm
    );
    assert_eq!(
        auth.verify_token(&no_kid).await.unwrap_err(),
        AuthError::UnknownKey
    );
}

#[actix_rt::test]
async fn an_es256_token_is_accepted_through_the_api() {
    let (rsa, ec) = (Key::first(), Key::ec());
    let provider = Provider::start(&[&rsa, &ec]).await;
    let auth = fast(&provider).await;
    let tenant = TenantId::new();
    let token = ec.sign(&json!({
        "sub": "ec-user", "exp": now() + 300, "tenant_id": tenant.to_string()
    }));
    let mut api = MockBillingApi::new();
    api.expect_list_plans()
        .withf(move |actor, _| actor.subject == "ec-user" && actor.tenant == Some(tenant))
        .times(1)
        .returning(|_, _| Ok(vec![plan()]));
    let forged = {
        // The same claims with the signature of another P-256 key would not verify; a
        // flipped signature byte stands for it.
        let mut t = token.clone().into_bytes();
        let last = t.len() - 2;
        t[last] = if t[last] == b'A' { b'B' } else { b'A' };
        String::from_utf8(t).unwrap()
    };

    let reply = send_with(
        auth.clone(),
        api,
        TestRequest::get()
            .uri("/api/v1/billing/plans")
            .insert_header((header::AUTHORIZATION, format!("Bearer {token}"))),
    )
    .await;
    let refused = send_with(
        auth,
        untouched(),
        TestRequest::get()
            .uri("/api/v1/billing/plans")
            .insert_header((header::AUTHORIZATION, format!("Bearer {forged}"))),
    )
    .await;

    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(reply.body[0]["code"], "plan-pro");
    let detail = refused.assert_problem(401, "unauthorized");
    assert!(detail.contains("signature"), "{detail}");
}
