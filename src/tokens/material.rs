//! Key material: generating signing keys, signing compact JWS with keys parsed once, and the
//! public keys that verify them.

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair, RSA_PKCS1_SHA256,
    RsaKeyPair,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::Jwk;
use serde_json::json;

use super::SigningAlgorithm;
use crate::domain::random;

/// A freshly generated key: the private half (PKCS#8 DER, or the HMAC secret) and the public
/// JWK (empty for HS256, which has no public half).
pub struct GeneratedKey {
    pub kid: String,
    pub algorithm: SigningAlgorithm,
    pub private: Vec<u8>,
    pub public_jwk: String,
}

impl Drop for GeneratedKey {
    fn drop(&mut self) {
        self.private.iter_mut().for_each(|b| *b = 0);
    }
}

pub fn generate(algorithm: SigningAlgorithm) -> anyhow::Result<GeneratedKey> {
    let kid = random::base62(16);
    let rng = SystemRandom::new();
    let crypto = |_| anyhow::anyhow!("key generation failed");
    let (private, public) = match algorithm {
        SigningAlgorithm::ES256 => {
            let doc = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                .map_err(crypto)?;
            let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, doc.as_ref())
                .map_err(|_| anyhow::anyhow!("generated key rejected"))?;
            let point = pair.public_key().as_ref();
            let jwk = json!({
                "kty": "EC", "crv": "P-256",
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
            });
            (doc.as_ref().to_vec(), Some(jwk))
        }
        SigningAlgorithm::EdDSA => {
            let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(crypto)?;
            let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref())
                .map_err(|_| anyhow::anyhow!("generated key rejected"))?;
            let jwk = json!({
                "kty": "OKP", "crv": "Ed25519",
                "x": URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
            });
            (doc.as_ref().to_vec(), Some(jwk))
        }
        SigningAlgorithm::RS256 => {
            let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(crypto)?;
            let der = pair.as_der().map_err(crypto)?;
            let public = pair.public_key();
            let jwk = json!({
                "kty": "RSA",
                "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
                "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
            });
            (der.as_ref().to_vec(), Some(jwk))
        }
        SigningAlgorithm::HS256 => {
            let mut secret = vec![0u8; 32];
            random::fill(&mut secret);
            (secret, None)
        }
    };
    let public_jwk = match public {
        Some(mut jwk) => {
            jwk["kid"] = json!(kid);
            jwk["alg"] = json!(algorithm.as_str());
            jwk["use"] = json!("sig");
            jwk.to_string()
        }
        None => String::new(),
    };
    Ok(GeneratedKey {
        kid,
        algorithm,
        private,
        public_jwk,
    })
}

enum SignerKey {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(RsaKeyPair),
    Hmac(Box<hmac::Key>),
}

/// The active signing key, parsed once, with its JWS header already encoded.
pub struct Signer {
    kid: String,
    algorithm: SigningAlgorithm,
    encoded_header: String,
    key: SignerKey,
}

impl Signer {
    pub fn from_private(
        kid: &str,
        algorithm: SigningAlgorithm,
        private: &[u8],
    ) -> anyhow::Result<Signer> {
        let rejected =
            |_| anyhow::anyhow!("stored signing key {kid} is not a valid {algorithm} key");
        let key = match algorithm {
            SigningAlgorithm::ES256 => SignerKey::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, private)
                    .map_err(rejected)?,
            ),
            SigningAlgorithm::EdDSA => {
                SignerKey::Ed25519(Ed25519KeyPair::from_pkcs8(private).map_err(rejected)?)
            }
            SigningAlgorithm::RS256 => {
                SignerKey::Rsa(RsaKeyPair::from_pkcs8(private).map_err(rejected)?)
            }
            SigningAlgorithm::HS256 => {
                anyhow::ensure!(
                    private.len() >= 32,
                    "stored HS256 key {kid} is shorter than 256 bits"
                );
                SignerKey::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, private)))
            }
        };
        let header = json!({ "alg": algorithm.as_str(), "kid": kid, "typ": "at+jwt" });
        Ok(Signer {
            kid: kid.to_owned(),
            algorithm,
            encoded_header: URL_SAFE_NO_PAD.encode(header.to_string()),
            key,
        })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    pub fn algorithm(&self) -> SigningAlgorithm {
        self.algorithm
    }

    /// A compact JWS (RFC 7515 section 7.1) over the JSON `payload`.
    pub fn sign(&self, payload: &[u8]) -> anyhow::Result<String> {
        let mut token =
            String::with_capacity(self.encoded_header.len() + payload.len() * 4 / 3 + 400);
        token.push_str(&self.encoded_header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let failed = |_| anyhow::anyhow!("signing failed");
        let signature = match &self.key {
            SignerKey::Ecdsa(pair) => pair
                .sign(&SystemRandom::new(), token.as_bytes())
                .map_err(failed)?
                .as_ref()
                .to_vec(),
            SignerKey::Ed25519(pair) => pair.sign(token.as_bytes()).as_ref().to_vec(),
            SignerKey::Rsa(pair) => {
                let mut sig = vec![0u8; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    token.as_bytes(),
                    &mut sig,
                )
                .map_err(failed)?;
                sig
            }
            SignerKey::Hmac(key) => hmac::sign(key, token.as_bytes()).as_ref().to_vec(),
        };
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }
}

/// A key that verifies tokens, bound to exactly one algorithm (RFC 8725 section 3.1).
pub struct Verifier {
    pub kid: String,
    pub algorithm: SigningAlgorithm,
    pub key: DecodingKey,
    /// Unix seconds after which a retired key verifies nothing.
    pub verify_until: Option<i64>,
}

impl Verifier {
    pub fn from_public_jwk(
        kid: &str,
        algorithm: SigningAlgorithm,
        public_jwk: &str,
        verify_until: Option<i64>,
    ) -> anyhow::Result<Verifier> {
        let jwk: Jwk = serde_json::from_str(public_jwk)?;
        let key = DecodingKey::from_jwk(&jwk)?;
        anyhow::ensure!(
            key.family() == algorithm.jwt_algorithm().family(),
            "signing key {kid}: the public key does not fit {algorithm}"
        );
        Ok(Verifier {
            kid: kid.to_owned(),
            algorithm,
            key,
            verify_until,
        })
    }

    pub fn from_hmac_secret(kid: &str, secret: &[u8], verify_until: Option<i64>) -> Verifier {
        Verifier {
            kid: kid.to_owned(),
            algorithm: SigningAlgorithm::HS256,
            key: DecodingKey::from_secret(secret),
            verify_until,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Validation, decode};

    #[test]
    fn every_algorithm_signs_what_jsonwebtoken_verifies() {
        for algorithm in [
            SigningAlgorithm::ES256,
            SigningAlgorithm::EdDSA,
            SigningAlgorithm::RS256,
            SigningAlgorithm::HS256,
        ] {
            let generated = generate(algorithm).unwrap();
            let signer =
                Signer::from_private(&generated.kid, algorithm, &generated.private).unwrap();
            let exp = jsonwebtoken::get_current_timestamp() + 60;
            let token = signer
                .sign(format!(r#"{{"sub":"x","exp":{exp}}}"#).as_bytes())
                .unwrap();
            let verifier = if algorithm.is_symmetric() {
                Verifier::from_hmac_secret(&generated.kid, &generated.private, None)
            } else {
                Verifier::from_public_jwk(&generated.kid, algorithm, &generated.public_jwk, None)
                    .unwrap()
            };
            let mut validation = Validation::new(algorithm.jwt_algorithm());
            validation.validate_aud = false;
            let data = decode::<serde_json::Value>(&token, &verifier.key, &validation)
                .unwrap_or_else(|e| panic!("{algorithm}: {e}"));
            assert_eq!(data.claims["sub"], "x");
            assert_eq!(data.header.kid.as_deref(), Some(generated.kid.as_str()));
            assert_eq!(data.header.typ.as_deref(), Some("at+jwt"));
        }
    }

    #[test]
    fn published_jwks_carry_no_private_members() {
        for algorithm in [
            SigningAlgorithm::ES256,
            SigningAlgorithm::EdDSA,
            SigningAlgorithm::RS256,
        ] {
            let jwk: serde_json::Value =
                serde_json::from_str(&generate(algorithm).unwrap().public_jwk).unwrap();
            for private in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
                assert!(
                    jwk.get(private).is_none(),
                    "{algorithm} publishes {private}"
                );
            }
            assert_eq!(jwk["use"], "sig");
            assert_eq!(jwk["alg"], algorithm.as_str());
        }
    }
}
