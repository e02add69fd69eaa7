//! Refresh tokens: `kgr_<43 random base-62><6-character CRC-32>`, 53 bytes, opaque.
//!
//! The tag makes a leaked token recognisable to secret scanners and tells it apart from an
//! access token (a JWT) and a key's secret (`kgs_`); the checksum lets keygate refuse a mangled
//! token without a database read. The 43 random characters carry 256 bits, so the token is
//! stored as its SHA-256 alone: no salt or slow hash is needed against guessing.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::{ValidationError, random};

const TAG: &str = "kgr_";
const RANDOM_LEN: usize = 43;
const CHECKSUM_LEN: usize = 6;
/// Length of every well-formed refresh token.
pub const REFRESH_TOKEN_LEN: usize = TAG.len() + RANDOM_LEN + CHECKSUM_LEN;

/// A well-formed refresh token. `Debug` redacts it.
#[derive(Clone)]
pub struct RefreshToken(SecretString);

impl RefreshToken {
    /// How every refresh token begins.
    pub const TAG: &'static str = TAG;

    /// A new token from the OS CSPRNG.
    pub fn generate() -> RefreshToken {
        let body = format!("{TAG}{}", random::base62(RANDOM_LEN));
        RefreshToken(format!("{body}{}", checksum(&body)).into())
    }

    /// Checks tag, shape and checksum; never echoes the input in its error.
    pub fn parse(s: &str) -> Result<RefreshToken, ValidationError> {
        let refuse = || ValidationError::new("refresh_token", "is not a keygate refresh token");
        if s.len() != REFRESH_TOKEN_LEN || !s.is_ascii() || !s.starts_with(TAG) {
            return Err(refuse());
        }
        if !random::is_base62(&s[TAG.len()..]) {
            return Err(refuse());
        }
        let (body, sum) = s.split_at(REFRESH_TOKEN_LEN - CHECKSUM_LEN);
        if !bool::from(checksum(body).as_bytes().ct_eq(sum.as_bytes())) {
            return Err(refuse());
        }
        Ok(RefreshToken(s.to_owned().into()))
    }

    /// Whether `s` looks like a refresh token rather than an access token (its tag only).
    pub fn is_tagged(s: &str) -> bool {
        s.starts_with(TAG)
    }

    /// The stored form: hex SHA-256.
    pub fn hash(&self) -> String {
        let digest = aws_lc_rs::digest::digest(
            &aws_lc_rs::digest::SHA256,
            self.0.expose_secret().as_bytes(),
        );
        digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The token itself, for the one answer that hands it out.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken([redacted])")
    }
}

fn checksum(body: &str) -> String {
    random::encode_base62_fixed(u64::from(crc32fast::hash(body.as_bytes())), CHECKSUM_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_parse_and_hash_alike() {
        let token = RefreshToken::generate();
        assert_eq!(token.expose().len(), REFRESH_TOKEN_LEN);
        let parsed = RefreshToken::parse(token.expose()).unwrap();
        assert_eq!(parsed.hash(), token.hash());
        assert_eq!(token.hash().len(), 64);
        assert_ne!(RefreshToken::generate().hash(), token.hash());
    }

    #[test]
    fn carries_at_least_256_bits() {
        assert!(RANDOM_LEN as f64 * 62f64.log2() >= 256.0);
    }

    #[test]
    fn any_single_character_typo_is_refused() {
        let original = RefreshToken::generate().expose().to_owned();
        for i in 0..original.len() {
            let mut bytes = original.clone().into_bytes();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(bytes).unwrap();
            assert!(RefreshToken::parse(&typo).is_err(), "typo at {i} accepted");
        }
    }

    #[test]
    fn other_credentials_are_refused_without_echo() {
        let good = RefreshToken::generate().expose().to_owned();
        for bad in [
            String::new(),
            good[..good.len() - 1].to_owned(),
            format!("{good}x"),
            good.replacen("kgr_", "kgs_", 1),
            "eyJhbGciOiJFUzI1NiJ9.e30.sig".to_owned(),
        ] {
            let err = RefreshToken::parse(&bad).unwrap_err();
            assert_eq!(err.field, "refresh_token");
            assert!(!err.to_string().contains(&good[4..20]));
        }
    }

    #[test]
    fn debug_output_is_redacted() {
        let token = RefreshToken::generate();
        assert!(!format!("{token:?}").contains(&token.expose()[4..]));
    }
}
