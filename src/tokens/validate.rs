//! Validating an access token: RFC 9068 section 4 and the RFC 8725 checklist. The algorithm
//! comes from the key found by `kid`, never from the token; `typ`, `iss`, `aud`, `exp`, `nbf`
//! and `iat` are checked; a revoked key's tokens are refused from memory.

use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::Utc;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Validation, decode, decode_header};

use super::{AccessTokenClaims, Keyring, Revocations};

/// Longest token accepted; keygate's own are under 1 KiB (RS256 under 1.5 KiB).
const MAX_TOKEN_LEN: usize = 4096;
const MAX_KID_LEN: usize = 64;

#[derive(Clone, Debug)]
pub struct ValidationParams {
    pub issuer: String,
    pub audience: String,
    pub leeway_seconds: u64,
}

/// Why a token was refused. Each maps to an RFC 6750 `invalid_token` description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenRejection {
    Malformed,
    UnknownKey,
    Expired,
    NotYetValid,
    Revoked,
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
}

impl TokenValidator {
    pub fn new(params: ValidationParams, keyring: Keyring) -> TokenValidator {
        TokenValidator {
            inner: Arc::new(Inner {
                params,
                keyring: ArcSwap::from_pointee(keyring),
                revocations: Revocations::default(),
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
