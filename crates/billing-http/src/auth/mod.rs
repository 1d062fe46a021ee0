//! Bearer-token authentication: JWT verification and the [`AuthenticatedActor`] extractor.
//!
//! The server verifies tokens one of three ways: HS256 with a shared secret, RS256 with
//! one public key, or the identity provider's key set ([`Jwks`]: RS256 and ES256 keys by
//! `kid`). A token signed any other way (`alg: none`, another algorithm than its key's,
//! HS256 when a key set is configured, a bad signature, a `kid` the provider does not
//! publish) is refused, as is one that is expired, not yet valid, or lacks `sub` or `exp`.
//!
//! * Clock leeway: [`CLOCK_LEEWAY_SECS`] seconds on `exp` and `nbf`.
//! * `iss` and `aud` are checked when [`TokenPolicy`] sets them (`JWT_ISSUER`,
//!   `JWT_AUDIENCE`); the claim is then required.
//! * Claims: `sub` (non-empty string), `exp`, optional `nbf`, the tenant claim (default
//!   `tenant_id`; a UUID string), the roles claim (default `roles`; an array of strings;
//!   `billing:admin` makes the caller an admin). Either may be a dotted path into nested
//!   claims ([`claim`]). A malformed tenant or roles claim refuses the token.
//!
//! Tenant rules (who may touch what) are the domain's; this module only says who calls.

mod claims;
mod jwks;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use billing_domain::{Actor, TenantId};
use futures::future::LocalBoxFuture;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use thiserror::Error;

use crate::error::ApiError;

pub use claims::{claim, TokenPolicy, DEFAULT_ROLES_CLAIM, DEFAULT_TENANT_CLAIM};
pub use jwks::{InvalidJwksUrl, Jwks, DEFAULT_MAX_AGE, DEFAULT_MIN_REFETCH};

/// Seconds of clock skew tolerated on `exp` and `nbf`.
pub const CLOCK_LEEWAY_SECS: u64 = 5;

/// The role that lets a caller act for every tenant and use the admin endpoints.
pub const ADMIN_ROLE: &str = "billing:admin";

/// A verifying key and the one algorithm it verifies.
struct VerifyKey {
    key: DecodingKey,
    alg: Algorithm,
}

#[derive(Clone)]
enum Keys {
    /// `JWT_SECRET` or `JWT_PUBLIC_KEY`.
    Fixed(Arc<VerifyKey>),
    /// `JWT_JWKS_URL`.
    Jwks(Arc<jwks::JwksCache>),
}

/// Verifies bearer tokens with the configured key(s) and [`TokenPolicy`].
#[derive(Clone)]
pub struct Authenticator {
    keys: Keys,
    policy: TokenPolicy,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key stays out of logs.
        let keys = match &self.keys {
            Keys::Fixed(key) => format!("{:?}", key.alg),
            Keys::Jwks(_) => "JWKS".to_owned(),
        };
        f.debug_struct("Authenticator")
            .field("keys", &keys)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

/// A key that could not be used.
#[derive(Debug, Error)]
#[error("{0}")]
pub struct InvalidKey(String);

/// Why a request was not authenticated. Each variant has a fixed public message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AuthError {
    /// No `Authorization` header.
    #[error("an Authorization: Bearer token is required")]
    Missing,
    /// An `Authorization` header with another scheme (or unreadable).
    #[error("the Authorization header must use the Bearer scheme")]
    NotBearer,
    /// Not a JWT, or a header/claims part that cannot be read.
    #[error("the bearer token is malformed")]
    Malformed,
    /// Signed with another algorithm than the configured one (including `none`, and HS256
    /// when a key set is configured).
    #[error("the bearer token is signed with an algorithm this server does not accept")]
    WrongAlgorithm,
    /// No `kid`, or one the identity provider's key set does not hold.
    #[error("the bearer token is signed with a key the identity provider does not publish")]
    UnknownKey,
    /// The signature does not verify.
    #[error("the bearer token's signature is invalid")]
    BadSignature,
    /// `exp` has passed.
    #[error("the bearer token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the bearer token is not valid yet")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("the bearer token's issuer (iss) is not the one this server trusts")]
    WrongIssuer,
    /// `aud` does not name the configured audience.
    #[error("the bearer token's audience (aud) does not include this service")]
    WrongAudience,
    /// A required claim is absent (or empty).
    #[error("the bearer token lacks the required claim {0}")]
    MissingClaim(&'static str),
    /// The tenant claim (named) is not a UUID.
    #[error("the bearer token's {0} claim is not a UUID")]
    InvalidTenant(String),
}

impl AuthError {
    /// Whether the request carried a bearer token at all.
    pub(crate) const fn token_present(&self) -> bool {
        !matches!(self, Self::Missing | Self::NotBearer)
    }
}

fn refusal(e: &jsonwebtoken::errors::Error) -> AuthError {
    match e.kind() {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => AuthError::WrongAlgorithm,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) => AuthError::MissingClaim(match claim.as_str() {
            "exp" => "exp",
            "iss" => "iss",
            "aud" => "aud",
            _ => "sub",
        }),
        _ => AuthError::Malformed,
    }
}

impl Authenticator {
    /// Verifies HS256 tokens signed with `secret`.
    ///
    /// # Errors
    /// [`InvalidKey`] when `secret` is empty.
    pub fn hs256(secret: &[u8]) -> Result<Self, InvalidKey> {
        let key = DecodingKey::from_secret(secret)
            .map_err(|_| InvalidKey("JWT_SECRET must not be empty".into()))?;
        Ok(Self::fixed(key, Algorithm::HS256))
    }

    /// Verifies RS256 tokens against an RSA public key in PEM form (`PUBLIC KEY` or
    /// `RSA PUBLIC KEY`).
    ///
    /// # Errors
    /// [`InvalidKey`] when `pem` is not such a key.
    pub fn rs256_pem(pem: &[u8]) -> Result<Self, InvalidKey> {
        let key = DecodingKey::from_rsa_pem(pem).map_err(|_| {
            InvalidKey("JWT_PUBLIC_KEY is not an RSA public key in PEM form".into())
        })?;
        Ok(Self::fixed(key, Algorithm::RS256))
    }

    /// Verifies RS256 and ES256 tokens against the identity provider's key set, by `kid`.
    /// Nothing is fetched until [`Authenticator::prefetch`] or the first token.
    ///
    /// # Errors
    /// [`InvalidKey`] when no HTTP client can be built.
    pub fn jwks(source: Jwks) -> Result<Self, InvalidKey> {
        let cache = jwks::JwksCache::new(source)
            .map_err(|e| InvalidKey(format!("JWT_JWKS_URL: cannot build an HTTP client: {e}")))?;
        Ok(Self {
            keys: Keys::Jwks(Arc::new(cache)),
            policy: TokenPolicy::default(),
        })
    }

    fn fixed(key: DecodingKey, alg: Algorithm) -> Self {
        Self {
            keys: Keys::Fixed(Arc::new(VerifyKey { key, alg })),
            policy: TokenPolicy::default(),
        }
    }

    /// The issuer, audience and claim names tokens are read with.
    #[must_use]
    pub fn with_policy(mut self, policy: TokenPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Fetches the identity provider's key set now, so the first requests do not wait
    /// for it. `false` when it could not be fetched (logged; the next unknown `kid`
    /// tries again). Always `true` without a key set.
    pub async fn prefetch(&self) -> bool {
        match &self.keys {
            Keys::Fixed(_) => true,
            Keys::Jwks(cache) => cache.prefetch().await,
        }
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        // `Validation::new` accepts exactly `alg`, the key's algorithm; a token whose
        // header names any other fails before its signature is looked at.
        let mut validation = Validation::new(alg);
        validation.leeway = CLOCK_LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = &self.policy.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        match &self.policy.audience {
            Some(audience) => {
                validation.set_audience(&[audience]);
                required.push("aud");
            }
            None => validation.validate_aud = false,
        }
        validation.set_required_spec_claims(&required);
        validation
    }

    /// The key that should have signed `token`.
    async fn key_for(&self, token: &str) -> Result<Arc<VerifyKey>, AuthError> {
        match &self.keys {
            Keys::Fixed(key) => Ok(key.clone()),
            Keys::Jwks(cache) => {
                let header = jsonwebtoken::decode_header(token).map_err(|e| refusal(&e))?;
                if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
                    return Err(AuthError::WrongAlgorithm);
                }
                let kid = header.kid.ok_or(AuthError::UnknownKey)?;
                cache.key(&kid).await.ok_or(AuthError::UnknownKey)
            }
        }
    }

    /// Verifies a raw token (without the `Bearer ` prefix) and returns the caller.
    ///
    /// # Errors
    /// The [`AuthError`] saying why the token is refused.
    pub async fn verify_token(&self, token: &str) -> Result<Actor, AuthError> {
        let key = self.key_for(token).await?;
        let data =
            jsonwebtoken::decode::<serde_json::Value>(token, &key.key, &self.validation(key.alg))
                .map_err(|e| refusal(&e))?;
        self.policy.actor(&data.claims)
    }

    /// The bearer token of `req`'s `Authorization` header.
    fn bearer(req: &HttpRequest) -> Result<String, AuthError> {
        let value = req
            .headers()
            .get(header::AUTHORIZATION)
            .ok_or(AuthError::Missing)?;
        let value = value.to_str().map_err(|_| AuthError::NotBearer)?;
        let (scheme, token) = value.split_once(' ').ok_or(AuthError::NotBearer)?;
        // Auth schemes are case-insensitive (RFC 9110 §11.1).
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::NotBearer);
        }
        let token = token.trim();
        if token.is_empty() {
            return Err(AuthError::Malformed);
        }
        Ok(token.to_owned())
    }

    /// Reads the `Authorization` header of `req` and verifies its bearer token.
    ///
    /// # Errors
    /// The [`AuthError`] saying why the request is not authenticated.
    pub async fn authenticate(&self, req: &HttpRequest) -> Result<Actor, AuthError> {
        let token = Self::bearer(req)?;
        self.verify_token(&token).await
    }
}

/// The authenticated caller of a protected handler. Taking it as an argument makes the
/// handler require a valid bearer token; extraction fails with 401 otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthenticatedActor(pub Actor);

impl AuthenticatedActor {
    /// The caller.
    #[must_use]
    pub fn into_inner(self) -> Actor {
        self.0
    }
}

impl std::ops::Deref for AuthenticatedActor {
    type Target = Actor;

    fn deref(&self) -> &Actor {
        &self.0
    }
}

impl FromRequest for AuthenticatedActor {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let Some(auth) = req.app_data::<web::Data<Authenticator>>().cloned() else {
                tracing::error!("no Authenticator registered as app data");
                return Err(ApiError::internal(&MissingAuthenticator));
            };
            match auth.authenticate(&req).await {
                Ok(actor) => {
                    if let Some(tenant) = actor.tenant {
                        crate::middleware::root_span(&req)
                            .record("tenant.id", tracing::field::display(tenant));
                    }
                    Ok(Self(actor))
                }
                Err(e) => {
                    tracing::debug!(reason = %e, "request refused: not authenticated");
                    Err(ApiError::from(e))
                }
            }
        })
    }
}

#[derive(Debug, Error)]
#[error("web::Data<Authenticator> is not registered")]
struct MissingAuthenticator;

/// A token could not be minted.
#[derive(Debug, Error)]
#[error("could not sign the token")]
pub struct MintError;

#[derive(Serialize)]
struct MintClaims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    tenant_id: Option<String>,
    roles: Vec<&'static str>,
}

/// Mints an HS256 token this crate accepts, for development (`billing-server dev-token`)
/// and tests. There is deliberately no RS256 counterpart: RS256 tokens come from the
/// identity provider that holds the private key.
///
/// # Errors
/// [`MintError`] if the clock is before 1970 or signing fails.
pub fn mint_hs256(
    secret: &[u8],
    sub: &str,
    tenant: Option<TenantId>,
    admin: bool,
    ttl: Duration,
) -> Result<String, MintError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| MintError)?
        .as_secs();
    let claims = MintClaims {
        sub,
        iat: now,
        exp: now.saturating_add(ttl.as_secs()),
        tenant_id: tenant.map(|t| t.to_string()),
        roles: if admin { vec![ADMIN_ROLE] } else { vec![] },
    };
    let key = EncodingKey::from_secret(secret).map_err(|_| MintError)?;
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).map_err(|_| MintError)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test-only-secret-not-for-production";

    #[actix_rt::test]
    async fn a_minted_admin_token_verifies_as_an_admin() {
        let token = mint_hs256(SECRET, "ops", None, true, Duration::from_secs(60)).unwrap();

        let actor = Authenticator::hs256(SECRET)
            .unwrap()
            .verify_token(&token)
            .await
            .unwrap();

        assert_eq!(actor.subject, "ops");
        assert!(actor.admin);
        assert_eq!(actor.tenant, None);
    }

    #[actix_rt::test]
    async fn a_token_minted_with_another_secret_is_refused() {
        let token = mint_hs256(b"other", "u", None, false, Duration::from_secs(60)).unwrap();

        let err = Authenticator::hs256(SECRET)
            .unwrap()
            .verify_token(&token)
            .await
            .unwrap_err();

        assert_eq!(err, AuthError::BadSignature);
    }

    #[test]
    fn the_debug_form_does_not_show_the_key() {
        let text = format!("{:?}", Authenticator::hs256(SECRET).unwrap());

        assert!(!text.contains("test-only-secret"));
    }

    #[test]
    fn an_empty_secret_is_refused() {
        assert!(Authenticator::hs256(b"").is_err());
        assert!(mint_hs256(b"", "u", None, false, Duration::from_secs(60)).is_err());
    }
}
