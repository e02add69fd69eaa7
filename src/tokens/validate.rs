//! Validating an access token: RFC 9068 section 4 and the RFC 8725 checklist. The algorithm
//! comes from the key found by `kid`, never from the token; `typ`, `iss`, `aud`, `exp`, `nbf`
//! and `iat` are checked; a revoked key's tokens are refused from memory.

use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::Utc;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode, decode_header};

use super::{AccessTokenClaims, Keyring, Revocations};
use crate::domain::Environment;

/// Longest token accepted: keygate's own are under 1 KiB with a few scopes, and under 4 KiB
/// with the most scopes a key can hold (2048 characters) signed with RS256.
const MAX_TOKEN_LEN: usize = 8192;
const MAX_KID_LEN: usize = 64;

#[derive(Clone, Debug)]
pub struct ValidationParams {
    pub issuer: String,
    pub audience: String,
    pub leeway_seconds: u64,
    /// Whose tokens are accepted: a production API takes `live` only, so a key made for a
    /// developer's laptop (`test`) cannot call it.
    pub environments: Vec<Environment>,
}

impl ValidationParams {
    /// Live tokens of `issuer` for `audience`, with 30 seconds of leeway.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> ValidationParams {
        ValidationParams {
            issuer: issuer.into(),
            audience: audience.into(),
            leeway_seconds: 30,
            environments: vec![Environment::Live],
        }
    }

    /// Accept tokens of these environments instead.
    pub fn environments(mut self, environments: &[Environment]) -> ValidationParams {
        self.environments = environments.to_vec();
        self
    }
}

/// Why a token was refused. Each maps to an RFC 6750 `invalid_token` description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenRejection {
    Malformed,
    UnknownKey,
    Expired,
    NotYetValid,
    Revoked,
    WrongEnvironment,
    Invalid,
}

impl TokenRejection {
    pub fn description(self) -> &'static str {
        match self {
            TokenRejection::Malformed => "the access token is malformed",
            TokenRejection::UnknownKey => "the access token was not signed by a current key",
            TokenRejection::Expired => "the access token has expired",
            TokenRejection::NotYetValid => "the access token is not valid yet",
            TokenRejection::Revoked => "the access token has been revoked",
            TokenRejection::WrongEnvironment => "the access token belongs to another environment",
            TokenRejection::Invalid => "the access token is invalid",
        }
    }
}

/// Shared, cheaply cloned validator: what the extractor asks, and what the change feed keeps
/// current.
#[derive(Clone)]
pub struct TokenValidator {
    inner: Arc<Inner>,
}

struct Inner {
    params: ValidationParams,
    keyring: ArcSwap<Keyring>,
    revocations: Revocations,
    /// Unix seconds of the last complete read of the change feed.
    synced_at: std::sync::atomic::AtomicI64,
}

impl TokenValidator {
    pub fn new(params: ValidationParams, keyring: Keyring) -> TokenValidator {
        TokenValidator {
            inner: Arc::new(Inner {
                params,
                keyring: ArcSwap::from_pointee(keyring),
                revocations: Revocations::default(),
                synced_at: std::sync::atomic::AtomicI64::new(0),
            }),
        }
    }

    pub fn params(&self) -> &ValidationParams {
        &self.inner.params
    }

    pub fn keyring(&self) -> arc_swap::Guard<Arc<Keyring>> {
        self.inner.keyring.load()
    }

    pub fn replace_keyring(&self, keyring: Keyring) {
        self.inner.keyring.store(Arc::new(keyring));
    }

    pub fn revocations(&self) -> &Revocations {
        &self.inner.revocations
    }

    /// Records that the change feed was read to its end just now.
    pub fn mark_synced(&self) {
        self.inner
            .synced_at
            .store(Utc::now().timestamp(), std::sync::atomic::Ordering::Release);
    }

    /// Seconds since the change feed was last read to its end: what `/readyz` watches, since
    /// a validator that stopped following the feed would miss revocations.
    pub fn seconds_since_sync(&self) -> i64 {
        Utc::now().timestamp()
            - self
                .inner
                .synced_at
                .load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn validate(&self, token: &str) -> Result<AccessTokenClaims, TokenRejection> {
        if token.is_empty()
            || token.len() > MAX_TOKEN_LEN
            || token.bytes().filter(|&b| b == b'.').count() != 2
        {
            return Err(TokenRejection::Malformed);
        }
        let header = decode_header(token).map_err(|_| TokenRejection::Malformed)?;
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        });
        // keygate never sets these; a token that does was not made by keygate (RFC 8725 3.10,
        // RFC 7515 4.1.11 for `crit`).
        let foreign_headers = header.crit.is_some()
            || header.jku.is_some()
            || header.jwk.is_some()
            || header.x5u.is_some()
            || header.x5c.is_some();
        if !typ_ok || foreign_headers {
            return Err(TokenRejection::Invalid);
        }
        let kid = header
            .kid
            .as_deref()
            .filter(|k| k.len() <= MAX_KID_LEN)
            .ok_or(TokenRejection::Invalid)?;

        let keyring = self.inner.keyring.load();
        let verifier = keyring.verifier(kid).ok_or(TokenRejection::UnknownKey)?;
        let algorithm = verifier.algorithm.jwt_algorithm();
        if header.alg != algorithm {
            return Err(TokenRejection::Invalid);
        }
        let claims = decode::<AccessTokenClaims>(token, &verifier.key, &self.validation(algorithm))
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenRejection::Expired,
                ErrorKind::ImmatureSignature => TokenRejection::NotYetValid,
                _ => TokenRejection::Invalid,
            })?
            .claims;

        let now = Utc::now().timestamp();
        let leeway = self.inner.params.leeway_seconds as i64;
        if claims.sub != claims.client_id || claims.exp <= claims.iat || claims.jti.is_empty() {
            return Err(TokenRejection::Invalid);
        }
        if claims.iat > now + leeway {
            return Err(TokenRejection::NotYetValid);
        }
        if !self.inner.params.environments.contains(&claims.env) {
            return Err(TokenRejection::WrongEnvironment);
        }
        if self
            .inner
            .revocations
            .is_revoked(&claims.client_id, &claims.jti, claims.iat)
        {
            return Err(TokenRejection::Revoked);
        }
        Ok(claims)
    }

    fn validation(&self, algorithm: jsonwebtoken::Algorithm) -> Validation {
        let params = &self.inner.params;
        let mut validation = Validation::new(algorithm);
        validation.leeway = params.leeway_seconds;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.set_issuer(&[&params.issuer]);
        validation.set_audience(&[&params.audience]);
        validation
    }
}
