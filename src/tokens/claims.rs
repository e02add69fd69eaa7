//! The claims of a keygate access token (RFC 9068 section 2.2, plus `env` and `org`).

use serde::{Deserialize, Serialize};

use crate::domain::Environment;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    /// The client_id: for client credentials the subject is the client itself (RFC 9068 2.2).
    pub sub: String,
    pub client_id: String,
    pub aud: Audience,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    /// Space-delimited (RFC 8693 section 4.2), possibly empty.
    pub scope: String,
    pub env: Environment,
    pub org: String,
}

/// `aud` is a string in tokens keygate issues; an array is accepted when validating (RFC 7519).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Audience::One(one) => one == audience,
            Audience::Many(many) => many.iter().any(|a| a == audience),
        }
    }
}

impl AccessTokenClaims {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }

    pub fn has_scope(&self, needed: &str) -> bool {
        self.scopes().any(|s| s == needed)
    }
}
