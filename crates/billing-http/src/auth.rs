//! Bearer-token authentication: JWT verification and the [`AuthenticatedActor`] extractor.
//!
//! The server is configured with exactly one algorithm: HS256 with a shared secret, or
//! RS256 with the issuer's public key. A token signed any other way (`alg: none`, the
//! other algorithm, a bad signature) is refused, as is one that is expired, not yet
//! valid, or lacks `sub` or `exp`.
//!
//! * Clock leeway: [`CLOCK_LEEWAY_SECS`] seconds on `exp` and `nbf`.
//! * `aud` and `iss` are not checked: no audience or issuer is configured (SPEC §2).
//! * Claims: `sub` (non-empty string), `exp`, optional `nbf`, optional `tenant_id` (a UUID
//!   string), optional `roles` (array of strings; `billing:admin` makes the caller an
//!   admin). A malformed `tenant_id` or `roles` refuses the token.
//!
//! Tenant rules (who may touch what) are the domain's; this module only says who calls.

use std::fmt;
use std::future::{ready, Ready};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use billing_domain::{Actor, TenantId};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::error::ApiError;

/// Seconds of clock skew tolerated on `exp` and `nbf`.
pub const CLOCK_LEEWAY_SECS: u64 = 5;

/// The role that lets a caller act for every tenant and use the admin endpoints.
pub const ADMIN_ROLE: &str = "billing:admin";

/// Verifies bearer tokens with the one configured key and algorithm.
#[derive(Clone)]
pub struct Authenticator {
    key: DecodingKey,
    validation: Validation,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The key stays out of logs.
        f.debug_struct("Authenticator")
            .field("algorithm", &self.validation.algorithms)
            .finish_non_exhaustive()
    }
}

/// A public key that could not be read.
#[derive(Debug, Error)]
#[error("JWT_PUBLIC_KEY is not an RSA public key in PEM form")]
pub struct InvalidKey;

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
    /// Signed with another algorithm than the configured one (including `none`).
    #[error("the bearer token is signed with an algorithm this server does not accept")]
    WrongAlgorithm,
    /// The signature does not verify.
    #[error("the bearer token's signature is invalid")]
    BadSignature,
    /// `exp` has passed.
    #[error("the bearer token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the bearer token is not valid yet")]
    NotYetValid,
    /// A required claim is absent (or empty).
    #[error("the bearer token lacks the required claim {0}")]
    MissingClaim(&'static str),
    /// `tenant_id` is not a UUID.
    #[error("the bearer token's tenant_id is not a UUID")]
    InvalidTenant,
}

impl AuthError {
    /// Whether the request carried a bearer token at all.
    pub(crate) const fn token_present(&self) -> bool {
        !matches!(self, Self::Missing | Self::NotBearer)
    }
}

/// The claims we read from a token.
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    tenant_id: Option<String>,
    #[serde(default)]
    roles: Option<Vec<String>>,
}

impl Authenticator {
    /// Verifies HS256 tokens signed with `secret`.
    #[must_use]
    pub fn hs256(secret: &[u8]) -> Self {
        Self::with(DecodingKey::from_secret(secret), Algorithm::HS256)
    }

    /// Verifies RS256 tokens against an RSA public key in PEM form (`PUBLIC KEY` or
    /// `RSA PUBLIC KEY`).
    ///
    /// # Errors
    /// [`InvalidKey`] when `pem` is not such a key.
    pub fn rs256_pem(pem: &[u8]) -> Result<Self, InvalidKey> {
        let key = DecodingKey::from_rsa_pem(pem).map_err(|_| InvalidKey)?;
        Ok(Self::with(key, Algorithm::RS256))
    }

    fn with(key: DecodingKey, alg: Algorithm) -> Self {
        // `Validation::new` accepts exactly `alg`; a token whose header names any other
        // algorithm fails before its signature is looked at.
        let mut validation = Validation::new(alg);
        validation.leeway = CLOCK_LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "sub"]);
        Self { key, validation }
    }

    /// Verifies a raw token (without the `Bearer ` prefix) and returns the caller.
    ///
    /// # Errors
    /// The [`AuthError`] saying why the token is refused.
    pub fn verify_token(&self, token: &str) -> Result<Actor, AuthError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation).map_err(
            |e| match e.kind() {
                ErrorKind::InvalidSignature => AuthError::BadSignature,
                ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
                    AuthError::WrongAlgorithm
                }
                ErrorKind::ExpiredSignature => AuthError::Expired,
                ErrorKind::ImmatureSignature => AuthError::NotYetValid,
                ErrorKind::MissingRequiredClaim(claim) if claim == "exp" => {
                    AuthError::MissingClaim("exp")
                }
                ErrorKind::MissingRequiredClaim(_) => AuthError::MissingClaim("sub"),
                _ => AuthError::Malformed,
            },
        )?;
        let claims = data.claims;
        let subject = claims
            .sub
            .filter(|s| !s.is_empty())
            .ok_or(AuthError::MissingClaim("sub"))?;
        let tenant = claims
            .tenant_id
            .map(|t| TenantId::parse(&t).map_err(|_| AuthError::InvalidTenant))
            .transpose()?;
        let admin = claims
            .roles
            .unwrap_or_default()
            .iter()
            .any(|r| r == ADMIN_ROLE);
        Ok(Actor {
            subject,
            tenant,
            admin,
        })
    }

    /// Reads the `Authorization` header of `req` and verifies its bearer token.
    ///
    /// # Errors
    /// The [`AuthError`] saying why the request is not authenticated.
    pub fn authenticate(&self, req: &HttpRequest) -> Result<Actor, AuthError> {
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
        self.verify_token(token)
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
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(auth) = req.app_data::<web::Data<Authenticator>>() else {
            tracing::error!("no Authenticator registered as app data");
            return ready(Err(ApiError::internal(&MissingAuthenticator)));
        };
        let result = auth.authenticate(req).map(Self).inspect(|actor| {
            if let Some(tenant) = actor.tenant {
                crate::middleware::root_span(req)
                    .record("tenant.id", tracing::field::display(tenant));
            }
        });
        let result = result.map_err(|e| {
            tracing::debug!(reason = %e, "request refused: not authenticated");
            ApiError::from(e)
        });
        ready(result)
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
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|_| MintError)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"test-only-secret-not-for-production";

    #[test]
    fn a_minted_admin_token_verifies_as_an_admin() {
        let token = mint_hs256(SECRET, "ops", None, true, Duration::from_secs(60)).unwrap();

        let actor = Authenticator::hs256(SECRET).verify_token(&token).unwrap();

        assert_eq!(actor.subject, "ops");
        assert!(actor.admin);
        assert_eq!(actor.tenant, None);
    }

    #[test]
    fn a_token_minted_with_another_secret_is_refused() {
        let token = mint_hs256(b"other", "u", None, false, Duration::from_secs(60)).unwrap();

        let err = Authenticator::hs256(SECRET)
            .verify_token(&token)
            .unwrap_err();

        assert_eq!(err, AuthError::BadSignature);
    }

    #[test]
    fn the_debug_form_does_not_show_the_key() {
        let text = format!("{:?}", Authenticator::hs256(SECRET));

        assert!(!text.contains("test-only-secret"));
    }
}
