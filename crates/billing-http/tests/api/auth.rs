//! Bearer-token authentication through a real route.

use actix_web::http::header;
use actix_web::test::TestRequest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use billing_domain::service::MockBillingApi;
use billing_domain::TenantId;
use billing_http::Authenticator;
use serde_json::json;

use crate::helpers::*;

const NO_TOKEN_CHALLENGE: &str = "Bearer realm=\"billing\"";
const BAD_TOKEN_CHALLENGE: &str = "Bearer realm=\"billing\", error=\"invalid_token\"";

fn plans_with(auth_header: Option<String>) -> TestRequest {
    let req = TestRequest::get().uri("/api/v1/billing/plans");
    match auth_header {
        Some(v) => req.insert_header((header::AUTHORIZATION, v)),
        None => req,
    }
}

fn alg_none_token() -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = json!({"sub": "mallory", "exp": now() + 300, "roles": ["billing:admin"]});
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

#[actix_rt::test]
async fn a_request_without_a_token_gets_401_with_a_plain_bearer_challenge() {
    let reply = send(untouched(), plans_with(None)).await;

    let detail = reply.assert_problem(401, "unauthorized");
    assert_eq!(
        reply.header(header::WWW_AUTHENTICATE),
        Some(NO_TOKEN_CHALLENGE)
    );
    assert!(detail.contains("Bearer"), "{detail}");
}

#[actix_rt::test]
async fn a_basic_authorization_header_is_refused_as_not_bearer() {
    let reply = send(untouched(), plans_with(Some("Basic dXNlcjpwYXNz".into()))).await;

    reply.assert_problem(401, "unauthorized");
    assert_eq!(
        reply.header(header::WWW_AUTHENTICATE),
        Some(NO_TOKEN_CHALLENGE)
    );
}

#[actix_rt::test]
async fn every_kind_of_bad_token_gets_401_with_an_invalid_token_challenge() {
    let t = now();
    let tenant = TenantId::new().to_string();
    // (case, token, what the detail must say)
    let cases: Vec<(&str, String, &str)> = vec![
        ("garbage", "not-a-jwt".into(), "malformed"),
        ("empty bearer", String::new(), "malformed"),
        (
            "expired",
            hs256_token(
                SECRET,
                &json!({"sub": "u", "exp": t - 120, "tenant_id": tenant}),
            ),
            "expired",
        ),
        (
            "not yet valid",
            hs256_token(
                SECRET,
                &json!({"sub": "u", "exp": t + 600, "nbf": t + 300, "tenant_id": tenant}),
            ),
            "not valid yet",
        ),
        (
            "bad signature",
            hs256_token(b"another-secret", &json!({"sub": "u", "exp": t + 300})),
            "signature",
        ),
        ("alg none", alg_none_token(), "malformed"),
        (
            "RS256 token for an HS256 server",
            rs256_token(&json!({"sub": "u", "exp": t + 300})),
            "algorithm",
        ),
        (
            "missing sub",
            hs256_token(SECRET, &json!({"exp": t + 300, "tenant_id": tenant})),
            "claim sub",
        ),
        (
            "empty sub",
            hs256_token(SECRET, &json!({"sub": "", "exp": t + 300})),
            "claim sub",
        ),
        (
            "missing exp",
            hs256_token(SECRET, &json!({"sub": "u", "tenant_id": tenant})),
            "claim exp",
        ),
        (
            "malformed tenant_id",
            hs256_token(
                SECRET,
                &json!({"sub": "u", "exp": t + 300, "tenant_id": "acme"}),
            ),
            "tenant_id",
        ),
        (
            "roles not an array",
            hs256_token(
                SECRET,
                &json!({"sub": "u", "exp": t + 300, "roles": "billing:admin"}),
            ),
            "malformed",
        ),
    ];

    for (case, token, why) in cases {
        let reply = send(untouched(), plans_with(Some(format!("Bearer {token}")))).await;

        assert_eq!(reply.status.as_u16(), 401, "{case}: {}", reply.body);
        assert_eq!(reply.body["code"], "unauthorized", "{case}");
        let detail = reply.body["detail"].as_str().unwrap();
        assert!(detail.contains(why), "{case}: {detail}");
        assert_eq!(
            reply.header(header::WWW_AUTHENTICATE),
            Some(BAD_TOKEN_CHALLENGE),
            "{case}"
        );
    }
}

#[actix_rt::test]
async fn the_detail_says_why_a_token_was_refused() {
    let t = now();
    let expired = hs256_token(SECRET, &json!({"sub": "u", "exp": t - 120}));
    let no_exp = hs256_token(SECRET, &json!({"sub": "u"}));

    let expired = send(untouched(), plans_with(Some(format!("Bearer {expired}")))).await;
    let no_exp = send(untouched(), plans_with(Some(format!("Bearer {no_exp}")))).await;

    assert!(expired
        .assert_problem(401, "unauthorized")
        .contains("expired"));
    assert!(no_exp.assert_problem(401, "unauthorized").contains("exp"));
}

#[actix_rt::test]
async fn an_hs256_token_signed_with_the_public_key_is_refused_by_an_rs256_server() {
    // The classic algorithm-confusion attack: HMAC keyed with the (public) RSA key.
    let token = hs256_token(PUBLIC_PEM, &json!({"sub": "mallory", "exp": now() + 300}));
    let auth = Authenticator::rs256_pem(PUBLIC_PEM).unwrap();

    let reply = send_with(
        auth,
        untouched(),
        plans_with(Some(format!("Bearer {token}"))),
    )
    .await;

    reply.assert_problem(401, "unauthorized");
    assert_eq!(
        reply.header(header::WWW_AUTHENTICATE),
        Some(BAD_TOKEN_CHALLENGE)
    );
}

#[actix_rt::test]
async fn an_rs256_token_from_the_identity_provider_is_accepted() {
    let tenant = TenantId::new();
    let token = rs256_token(&json!({
        "sub": "user-7", "exp": now() + 300, "tenant_id": tenant.to_string(), "roles": ["viewer"]
    }));
    let mut api = MockBillingApi::new();
    api.expect_list_plans()
        .withf(move |actor, include| {
            actor.subject == "user-7" && actor.tenant == Some(tenant) && !actor.admin && !include
        })
        .times(1)
        .returning(|_, _| Ok(vec![plan()]));
    let auth = Authenticator::rs256_pem(PUBLIC_PEM).unwrap();

    let reply = send_with(auth, api, plans_with(Some(format!("Bearer {token}")))).await;

    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(reply.body[0]["code"], "plan-pro");
}

#[actix_rt::test]
async fn the_admin_role_and_a_lower_case_scheme_are_understood() {
    let mut api = MockBillingApi::new();
    api.expect_list_plans()
        .withf(|actor, _| actor.admin && actor.tenant.is_none())
        .times(1)
        .returning(|_, _| Ok(vec![]));

    let reply = send(api, plans_with(Some(format!("bearer {}", admin_token())))).await;

    assert_eq!(reply.status.as_u16(), 200, "{}", reply.body);
    assert_eq!(reply.body, json!([]));
}

#[actix_rt::test]
async fn a_token_is_checked_before_the_body_is_read() {
    let req = TestRequest::post()
        .uri("/api/v1/billing/plans")
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .set_payload("{not json");

    let reply = send(untouched(), req).await;

    reply.assert_problem(401, "unauthorized");
}

#[test]
fn a_public_key_that_is_not_pem_is_refused_at_start_up() {
    assert!(Authenticator::rs256_pem(b"not a key").is_err());
    assert!(Authenticator::rs256_pem(PUBLIC_PEM).is_ok());
}
