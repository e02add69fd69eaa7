//! The keyring: the one active signer and every key that may still verify a live token.

use std::collections::HashMap;

use chrono::Utc;

use super::{MasterKey, Signer, Verifier};
use crate::domain::{SigningAlgorithm, SigningKeyStatus};

/// A signing key as it is stored, whatever the storage: the private half sealed with the
/// master key (empty once erased).
pub struct StoredSigningKey<'a> {
    pub kid: &'a str,
    pub algorithm: SigningAlgorithm,
    pub status: SigningKeyStatus,
    pub public_jwk: &'a str,
    pub sealed_private_key: &'a str,
    /// Unix seconds; for retired keys.
    pub verify_until: Option<i64>,
}

#[derive(Default)]
pub struct Keyring {
    signer: Option<Signer>,
    verifiers: HashMap<String, Verifier>,
    jwks: String,
}

impl Keyring {
    /// Builds the keyring from the usable keys (oldest first). Without a master key the
    /// keyring only verifies (and cannot verify HS256 tokens, whose key is secret).
    pub fn from_stored<'a>(
        keys: impl IntoIterator<Item = StoredSigningKey<'a>>,
        master_key: Option<&MasterKey>,
    ) -> anyhow::Result<Keyring> {
        let mut keyring = Keyring::default();
        let mut published = Vec::new();
        for row in keys {
            let algorithm = row.algorithm;
            let verify_until = row.verify_until;
            let sealed = row.sealed_private_key;
            let private = match (row.status, master_key) {
                (SigningKeyStatus::Active, Some(master)) => Some(master.open(row.kid, sealed)?),
                (_, Some(master)) if algorithm.is_symmetric() && !sealed.is_empty() => {
                    Some(master.open(row.kid, sealed)?)
                }
                _ => None,
            };
            if row.status == SigningKeyStatus::Active
                && let Some(private) = &private
            {
                keyring.signer = Some(Signer::from_private(row.kid, algorithm, private)?);
            }
            let verifier = if algorithm.is_symmetric() {
                private
                    .as_deref()
                    .map(|secret| Verifier::from_hmac_secret(row.kid, secret, verify_until))
            } else {
                published.push(serde_json::from_str::<serde_json::Value>(row.public_jwk)?);
                Some(Verifier::from_public_jwk(
                    row.kid,
                    algorithm,
                    row.public_jwk,
                    verify_until,
                )?)
            };
            if let Some(verifier) = verifier {
                keyring.verifiers.insert(row.kid.to_owned(), verifier);
            }
        }
        keyring.jwks = serde_json::json!({ "keys": published }).to_string();
        Ok(keyring)
    }

    /// A keyring from keys in hand (benchmarks, tests); it publishes no JWKS.
    pub fn with_keys(signer: Option<Signer>, verifiers: Vec<Verifier>) -> Keyring {
        let verifiers = verifiers.into_iter().map(|v| (v.kid.clone(), v)).collect();
        Keyring {
            signer,
            verifiers,
            jwks: r#"{"keys":[]}"#.to_owned(),
        }
    }

    pub fn signer(&self) -> Option<&Signer> {
        self.signer.as_ref()
    }

    /// The verifier for `kid`, unless it is unknown or its verification window has closed.
    pub fn verifier(&self, kid: &str) -> Option<&Verifier> {
        let now = Utc::now().timestamp();
        self.verifiers
            .get(kid)
            .filter(|v| v.verify_until.is_none_or(|until| now <= until))
    }

    /// The JWK Set (RFC 7517) of every public key that may verify a live token.
    pub fn jwks(&self) -> &str {
        &self.jwks
    }

    pub fn len(&self) -> usize {
        self.verifiers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.verifiers.is_empty()
    }
}
