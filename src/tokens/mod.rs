//! Access tokens: signing keys and their keyring, issuing RFC 9068 JWTs, validating them, and
//! the in-memory revocation state that makes revocation immediate.

mod claims;
mod issue;
mod keyring;
mod master_key;
mod material;
#[cfg(test)]
mod properties;
mod revocations;
pub mod stream_events;
mod validate;

pub use crate::domain::SigningAlgorithm;
pub use claims::{AccessTokenClaims, Audience};
pub use issue::{IssuedToken, TokenSubject, issue, new_jti};
pub use keyring::{JwkSet, Keyring, StoredSigningKey};
pub use master_key::MasterKey;
pub use material::{GeneratedKey, Signer, Verifier, generate};
pub use revocations::{Change, ChangeKind, Revocations};
/// The longest token lifetime keygate can be configured with (`tokens.lifetime_seconds`).
pub const MAX_LIFETIME_SECONDS: i64 = 86_400;
/// The largest clock-skew leeway any validator can be configured with.
pub const MAX_LEEWAY_SECONDS: i64 = 300;
/// How long anything about a token can matter: its longest lifetime and twice the largest
/// leeway. A bound of the code, not of the configuration of whoever makes a change, so a CLI
/// with other settings than the servers cannot shorten a revocation.
pub const MAX_TOKEN_WINDOW_SECONDS: i64 = MAX_LIFETIME_SECONDS + 2 * MAX_LEEWAY_SECONDS;

pub use validate::{
    ApiKeyRefusal, ApiKeyVerifier, KeyRefresher, TokenRejection, TokenValidator, ValidationMetrics,
    ValidationParams, WeakTokenValidator, default_test_audience,
};
