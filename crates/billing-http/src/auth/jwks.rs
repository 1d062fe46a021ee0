//! The identity provider's key set (`JWT_JWKS_URL`, docs/contract.md, Operating it): RS256 and ES256 keys by
//! `kid`, fetched over HTTP and cached.
//!
//! * A token whose `kid` is not in the cached set makes one fetch, at most once per
//!   [`Jwks::min_refetch`] (30 s by default): a flood of made-up `kid`s costs the provider
//!   one request per interval, and concurrent requests share one fetch.
//! * A set older than [`Jwks::max_age`] (10 min) is refreshed in the background while
//!   the known keys keep answering, so a key the provider withdraws stops working.
//! * A failed fetch (provider down, 5xx, a body that is not a JWKS) keeps the last good
//!   set and is logged at warn.
//! * Keys without a `kid`, meant for encryption (`"use": "enc"`), of another algorithm
//!   than RS256/ES256 (stated in `alg`, or implied by `kty`/`crv`), or unreadable are
//!   skipped; the others still count.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use thiserror::Error;

use super::VerifyKey;

/// The default least time between two fetches caused by unknown `kid`s.
pub const DEFAULT_MIN_REFETCH: Duration = Duration::from_secs(30);
/// The default age after which the cached set is refreshed in the background.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(600);
/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest key set read (a real one is a few KiB).
const MAX_BODY: usize = 256 * 1024;

/// A JWKS URL that cannot be used.
#[derive(Debug, Error)]
#[error("JWT_JWKS_URL: {0}")]
pub struct InvalidJwksUrl(String);

/// Where the key set is fetched and how often.
#[derive(Debug, Clone)]
pub struct Jwks {
    url: reqwest::Url,
    min_refetch: Duration,
    max_age: Duration,
}

impl Jwks {
    /// The key set at `url` (an absolute http(s) URL), with the default intervals.
    ///
    /// # Errors
    /// [`InvalidJwksUrl`] when `url` is not an absolute http(s) URL.
    pub fn new(url: &str) -> Result<Self, InvalidJwksUrl> {
        let url = reqwest::Url::parse(url).map_err(|e| InvalidJwksUrl(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(InvalidJwksUrl("must be an absolute http(s) URL".into()));
        }
        Ok(Self {
            url,
            min_refetch: DEFAULT_MIN_REFETCH,
            max_age: DEFAULT_MAX_AGE,
        })
    }

    /// The least time between two fetches caused by unknown `kid`s (default 30 s).
    #[must_use]
    pub const fn min_refetch(mut self, interval: Duration) -> Self {
        self.min_refetch = interval;
        self
    }

    /// The age after which the cached set is refreshed in the background (default 10 min).
    #[must_use]
    pub const fn max_age(mut self, age: Duration) -> Self {
        self.max_age = age;
        self
    }
}

/// The last good key set.
#[derive(Default)]
struct KeySet {
    keys: HashMap<String, Arc<VerifyKey>>,
    fetched_at: Option<Instant>,
}

/// The cached key set and its fetcher, shared by every worker.
pub(super) struct JwksCache {
    source: Jwks,
    client: reqwest::Client,
    current: RwLock<Arc<KeySet>>,
    /// Held during a fetch (one at a time); the time of the last attempt.
    last_attempt: tokio::sync::Mutex<Option<Instant>>,
}

/// Why a fetch failed (logged, never shown to a caller).
#[derive(Debug, Error)]
enum FetchError {
    #[error("request failed: {0}")]
    Request(#[from] reqwest::Error),
    #[error("answered HTTP {0}")]
    Status(u16),
    #[error("the body is larger than {MAX_BODY} bytes")]
    TooLarge,
    #[error("the body is not a JWKS: {0}")]
    NotJwks(serde_json::Error),
}

#[derive(Deserialize)]
struct RawSet {
    keys: Vec<serde_json::Value>,
}

impl JwksCache {
    pub(super) fn new(source: Jwks) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .user_agent(concat!("billing-service/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            source,
            client,
            current: RwLock::new(Arc::new(KeySet::default())),
            last_attempt: tokio::sync::Mutex::new(None),
        })
    }

    fn current(&self) -> Arc<KeySet> {
        match self.current.read() {
            Ok(set) => set.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The key `kid`, fetching the set again when it is unknown (rate-limited).
    pub(super) async fn key(self: &Arc<Self>, kid: &str) -> Option<Arc<VerifyKey>> {
        let set = self.current();
        if let Some(key) = set.keys.get(kid) {
            if set
                .fetched_at
                .is_some_and(|at| at.elapsed() >= self.source.max_age)
            {
                let cache = Arc::clone(self);
                tokio::spawn(async move { cache.refresh(false).await });
            }
            return Some(key.clone());
        }
        self.refresh(true).await;
        self.current().keys.get(kid).cloned()
    }

    /// Fetches the set now (at start-up); keeps the last good one on failure.
    pub(super) async fn prefetch(&self) -> bool {
        self.refresh(true).await;
        self.current().fetched_at.is_some()
    }

    /// Fetches the set unless one was tried less than `min_refetch` ago. `wait`: queue
    /// behind a fetch under way (a request that needs its result) rather than skip.
    async fn refresh(&self, wait: bool) {
        let mut last = if wait {
            self.last_attempt.lock().await
        } else {
            match self.last_attempt.try_lock() {
                Ok(guard) => guard,
                Err(_) => return,
            }
        };
        if last.is_some_and(|at| at.elapsed() < self.source.min_refetch) {
            return;
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                tracing::debug!(url = %self.source.url, keys = keys.len(), "JWKS fetched");
                let set = Arc::new(KeySet {
                    keys,
                    fetched_at: Some(Instant::now()),
                });
                match self.current.write() {
                    Ok(mut current) => *current = set,
                    Err(poisoned) => *poisoned.into_inner() = set,
                }
            }
            Err(e) => tracing::warn!(
                url = %self.source.url,
                error = %e,
                "JWKS fetch failed; keeping the last good key set"
            ),
        }
    }

    async fn fetch(&self) -> Result<HashMap<String, Arc<VerifyKey>>, FetchError> {
        let mut res = self.client.get(self.source.url.clone()).send().await?;
        if !res.status().is_success() {
            return Err(FetchError::Status(res.status().as_u16()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await? {
            if body.len() + chunk.len() > MAX_BODY {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let raw: RawSet = serde_json::from_slice(&body).map_err(FetchError::NotJwks)?;
        Ok(raw
            .keys
            .into_iter()
            .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
            .filter_map(|jwk| usable(&jwk))
            .collect())
    }
}

/// The `kid` and verifying key of a JWK this service accepts tokens from.
fn usable(jwk: &Jwk) -> Option<(String, Arc<VerifyKey>)> {
    let kid = jwk.common.key_id.clone()?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let alg = match (&jwk.algorithm, jwk.common.key_algorithm) {
        (AlgorithmParameters::RSA(_), None | Some(KeyAlgorithm::RS256)) => Algorithm::RS256,
        (AlgorithmParameters::EllipticCurve(ec), None | Some(KeyAlgorithm::ES256))
            if ec.curve == EllipticCurve::P256 =>
        {
            Algorithm::ES256
        }
        _ => return None,
    };
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid, Arc::new(VerifyKey { key, alg })))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn jwk(value: serde_json::Value) -> Jwk {
        serde_json::from_value(value).unwrap()
    }

    const N: &str = "sXchDaQe"; // any base64url: the modulus is only decoded here

    #[test]
    fn rsa_and_p256_signing_keys_are_kept_by_kid_and_the_others_skipped() {
        let keys: Vec<_> = [
            json!({"kty": "RSA", "kid": "rsa", "n": N, "e": "AQAB"}),
            json!({"kty": "RSA", "kid": "rsa-alg", "alg": "RS256", "use": "sig", "n": N, "e": "AQAB"}),
            json!({"kty": "RSA", "n": N, "e": "AQAB"}),
            json!({"kty": "RSA", "kid": "enc", "use": "enc", "n": N, "e": "AQAB"}),
            json!({"kty": "RSA", "kid": "ps", "alg": "PS256", "n": N, "e": "AQAB"}),
            json!({"kty": "EC", "kid": "p384", "crv": "P-384",
                   "x": "AAAA", "y": "AAAA"}),
        ]
        .into_iter()
        .map(jwk)
        .filter_map(|k| usable(&k))
        .map(|(kid, key)| (kid, key.alg))
        .collect();

        assert_eq!(
            keys,
            [
                ("rsa".to_owned(), Algorithm::RS256),
                ("rsa-alg".to_owned(), Algorithm::RS256)
            ]
        );
    }

    #[test]
    fn the_defaults_are_the_specs() {
        let jwks = Jwks::new("https://idp.example.com/jwks").unwrap();

        assert_eq!(jwks.min_refetch, Duration::from_secs(30));
        assert!(Jwks::new("file:///etc/jwks.json").is_err());
        assert!(Jwks::new("not a url").is_err());
    }
}
