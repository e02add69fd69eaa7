//! Issuing an access token: the claims of RFC 9068, signed by the active key.

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{AccessTokenClaims, Audience, Signer};
use crate::domain::{Environment, ScopeSet};

/// Who the token is for: the API key, as the token endpoint found it.
pub struct TokenSubject<'a> {
    pub client_id: &'a str,
    pub environment: Environment,
    pub organization: &'a str,
    /// A key that expires sooner than the token would caps the token's lifetime.
    pub key_expires_at: Option<DateTime<Utc>>,
    /// Unix seconds as of which the key's state was known: the token's `iat` (never after
    /// `now`), so that a change made after that moment refuses it.
    pub state_as_of: i64,
    /// The token's id (from [`new_jti`]), chosen first so that it can be stored beside what
    /// the token comes with (a refresh token).
    pub jti: &'a str,
}

/// A fresh token id: 122 random bits.
pub fn new_jti() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[derive(Debug, Serialize)]
pub struct IssuedToken {
    pub access_token: String,
    pub expires_in: i64,
    pub expires_at: i64,
    pub scope: String,
    pub jti: String,
}

pub fn issue(
    signer: &Signer,
    issuer: &str,
    audience: &str,
    lifetime_seconds: i64,
    subject: &TokenSubject<'_>,
    scopes: &ScopeSet,
    now: DateTime<Utc>,
) -> anyhow::Result<IssuedToken> {
    let iat = subject.state_as_of.min(now.timestamp());
    let mut exp = now.timestamp() + lifetime_seconds;
    if let Some(key_expiry) = subject.key_expires_at {
        exp = exp.min(key_expiry.timestamp());
    }
    let jti = subject.jti.to_owned();
    let claims = AccessTokenClaims {
        iss: issuer.to_owned(),
        sub: subject.client_id.to_owned(),
        client_id: subject.client_id.to_owned(),
        aud: Audience::One(audience.to_owned()),
        iat,
        nbf: iat,
        exp,
        jti: jti.clone(),
        scope: scopes.to_string(),
        env: subject.environment,
        org: subject.organization.to_owned(),
    };
    let access_token = signer.sign(&serde_json::to_vec(&claims)?)?;
    Ok(IssuedToken {
        access_token,
        expires_in: exp - now.timestamp(),
        expires_at: exp,
        scope: claims.scope,
        jti,
    })
}
