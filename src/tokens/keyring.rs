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

/// A JWK Set (RFC 7517 section 5): the public half of every key that may verify a live token.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[schema(as = Jwks)]
pub struct JwkSet {
    #[schema(schema_with = public_keys)]
    keys: Vec<serde_json::Value>,
}

/// The members of the public JWKs keygate publishes (never a private one).
fn public_keys() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let text = |description: &str| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(description))
    };
    let one_of = |values: &[&str]| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(values.to_vec()))
    };
    let key = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "A public key (RFC 7517 section 4): EC P-256 for ES256, OKP Ed25519 for EdDSA, RSA for RS256",
        ))
        .property("kid", text("The key id, as in the `kid` header of the tokens it signs"))
        .property("kty", one_of(&["EC", "OKP", "RSA"]))
        .property("alg", one_of(&["ES256", "EdDSA", "RS256"]))
        .property("use", one_of(&["sig"]))
        .property("crv", one_of(&["P-256", "Ed25519"]))
        .property("x", text("EC and OKP keys, base64url"))
        .property("y", text("EC keys, base64url"))
        .property("n", text("RSA keys: the modulus, base64url"))
        .property("e", text("RSA keys: the exponent, base64url"))
        .required("kid")
        .required("kty")
        .required("alg")
        .required("use");
    ArrayBuilder::new().items(key).build()
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
        keyring.jwks = serde_json::to_string(&JwkSet { keys: published })?;
        Ok(keyring)
    }

    /// A verify-only keyring from a JWK Set as keygate publishes it (RFC 7517 section 5), for
    /// validators that know only keygate's URL. Keys it cannot use (another `use`, a missing
    /// or unknown `alg`, a symmetric key, an overlong `kid`) are skipped, as RFC 7517 section
    /// 5 asks of keys a reader does not understand.
    pub fn from_jwks(text: &str) -> anyhow::Result<Keyring> {
        #[derive(serde::Deserialize)]
        struct Set {
            keys: Vec<serde_json::Value>,
        }
        let set: Set = serde_json::from_str(text)?;
        let mut verifiers = HashMap::new();
        for key in &set.keys {
            let member = |name: &str| key.get(name).and_then(|v| v.as_str());
            let kid = member("kid").filter(|kid| !kid.is_empty() && kid.len() <= 64);
            let algorithm = member("alg")
                .and_then(|alg| alg.parse::<SigningAlgorithm>().ok())
                .filter(|alg| !alg.is_symmetric());
            let usable = member("use").is_none_or(|u| u == "sig");
            let (Some(kid), Some(algorithm), true) = (kid, algorithm, usable) else {
                log::warn!("the JWKS holds a key keygate's validator cannot use; skipped");
                continue;
            };
            match Verifier::from_public_jwk(kid, algorithm, &key.to_string(), None) {
                Ok(verifier) => {
                    verifiers.insert(kid.to_owned(), verifier);
                }
                Err(err) => log::warn!("the JWKS key {kid} is unusable, skipped: {err:#}"),
            }
        }
        Ok(Keyring {
            signer: None,
            verifiers,
            jwks: text.to_owned(),
        })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::generate;

    #[test]
    fn a_published_jwks_reads_back_as_verifiers_and_unusable_keys_are_skipped() {
        let es = generate(SigningAlgorithm::ES256).unwrap();
        let ed = generate(SigningAlgorithm::EdDSA).unwrap();
        let published = Keyring::from_stored(
            [&es, &ed].map(|key| StoredSigningKey {
                kid: &key.kid,
                algorithm: key.algorithm,
                status: SigningKeyStatus::Next,
                public_jwk: &key.public_jwk,
                sealed_private_key: "",
                verify_until: None,
            }),
            None,
        )
        .unwrap();
        let mut set: serde_json::Value = serde_json::from_str(published.jwks()).unwrap();
        let keys = set["keys"].as_array_mut().unwrap();
        let mut encryption = keys[0].clone();
        encryption["use"] = "enc".into();
        encryption["kid"] = "enc-key".into();
        let mut no_alg = keys[0].clone();
        no_alg.as_object_mut().unwrap().remove("alg");
        no_alg["kid"] = "no-alg".into();
        let mut symmetric = keys[0].clone();
        symmetric["alg"] = "HS256".into();
        symmetric["kid"] = "hs".into();
        keys.extend([encryption, no_alg, symmetric]);

        let read = Keyring::from_jwks(&set.to_string()).unwrap();
        assert_eq!(read.len(), 2);
        assert_eq!(
            read.verifier(&es.kid).unwrap().algorithm,
            SigningAlgorithm::ES256
        );
        assert_eq!(
            read.verifier(&ed.kid).unwrap().algorithm,
            SigningAlgorithm::EdDSA
        );
        assert!(read.signer().is_none());
        assert!(Keyring::from_jwks("{\"keys\": 1}").is_err());
    }
}
