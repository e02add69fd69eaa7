//! API-key secrets: `kgs_<env>_<51 random base-62><6-character CRC-32>`, 66 bytes.
//!
//! The tag makes a leaked secret recognisable to secret scanners, the checksum lets keygate
//! refuse a mistyped secret without touching the database, and the first 8 random characters
//! form the public [`SecretPrefix`] that names the secret in lists. The other 43 random
//! characters carry 256 bits. 66 bytes stay under bcrypt's 72-byte input limit.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

use super::{Environment, ValidationError, random};

const TAG: &str = "kgs_";
const ENV_LEN: usize = 5; // "live_" or "test_"
const RANDOM_LEN: usize = 51;
const CHECKSUM_LEN: usize = 6;
const PREFIX_RANDOM_LEN: usize = 8;
/// Length of every well-formed secret.
pub const SECRET_LEN: usize = TAG.len() + ENV_LEN + RANDOM_LEN + CHECKSUM_LEN;
// bcrypt reads at most 72 bytes: a longer secret would be checked only in part.
const _: () = assert!(SECRET_LEN <= 72);

/// A well-formed client secret. It cannot be printed: `Debug` and `Display` redact it.
#[derive(Clone)]
pub struct ClientSecret {
    value: SecretString,
    environment: Environment,
}

impl ClientSecret {
    /// How every secret begins.
    pub const TAG: &'static str = TAG;

    /// A new secret from the OS CSPRNG.
    pub fn generate(environment: Environment) -> ClientSecret {
        let body = format!("{TAG}{}_{}", environment, random::base62(RANDOM_LEN));
        let value = format!("{body}{}", checksum(&body));
        ClientSecret {
            value: value.into(),
            environment,
        }
    }

    /// Checks shape, environment tag and checksum; never echoes the input in its error.
    pub fn parse(s: &str) -> Result<ClientSecret, ValidationError> {
        let refuse =
            || ValidationError::new("client_secret", "is not a well-formed keygate secret");
        if s.len() != SECRET_LEN || !s.is_ascii() || !s.starts_with(TAG) {
            return Err(refuse());
        }
        let environment: Environment = s[TAG.len()..TAG.len() + 4].parse().map_err(|_| refuse())?;
        if s.as_bytes()[TAG.len() + 4] != b'_' {
            return Err(refuse());
        }
        let (body, sum) = s.split_at(SECRET_LEN - CHECKSUM_LEN);
        if !random::is_base62(&s[TAG.len() + ENV_LEN..]) {
            return Err(refuse());
        }
        if !bool::from(checksum(body).as_bytes().ct_eq(sum.as_bytes())) {
            return Err(refuse());
        }
        Ok(ClientSecret {
            value: s.to_owned().into(),
            environment,
        })
    }

    pub fn environment(&self) -> Environment {
        self.environment
    }

    /// The public prefix that identifies this secret in lists and logs.
    pub fn prefix(&self) -> SecretPrefix {
        let end = TAG.len() + ENV_LEN + PREFIX_RANDOM_LEN;
        SecretPrefix(self.value.expose_secret()[..end].to_owned())
    }

    /// The secret itself, for hashing and for showing once to its owner.
    pub fn expose(&self) -> &str {
        self.value.expose_secret()
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret([redacted])")
    }
}

/// The displayed start of a secret (`kgs_live_8fK2mQ9x`): identifies it without exposing it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct SecretPrefix(String);

impl SecretPrefix {
    pub fn from_stored(s: String) -> SecretPrefix {
        SecretPrefix(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Constant-time equality, so matching a presented secret against stored prefixes reveals
    /// nothing through timing.
    pub fn matches(&self, other: &SecretPrefix) -> bool {
        bool::from(self.0.as_bytes().ct_eq(other.0.as_bytes()))
    }
}

impl fmt::Display for SecretPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn checksum(body: &str) -> String {
    random::encode_base62_fixed(u64::from(crc32fast::hash(body.as_bytes())), CHECKSUM_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;
    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(crate::domain::property_cases(4096)))]

            /// Any text is a secret or refused; it never panics, and a refusal never echoes it.
            #[test]
            fn any_text_parses_or_is_refused_without_echo(text in "\\PC{0,80}") {
                if let Err(refused) = ClientSecret::parse(&text) {
                    prop_assert!(text.len() < 4 || !refused.to_string().contains(&text));
                }
            }

            /// Every one-character change of a secret is refused (the checksum catches what the
            /// shape does not): a mistyped secret never reaches the database.
            #[test]
            fn one_changed_character_is_refused(
                test_key in any::<bool>(),
                at in 0..SECRET_LEN,
                by in proptest::char::range('!', '~'),
            ) {
                let environment = if test_key { Environment::Test } else { Environment::Live };
                let secret = ClientSecret::generate(environment);
                let mut changed = secret.expose().as_bytes().to_vec();
                prop_assume!(changed[at] != by as u8);
                changed[at] = by as u8;
                let changed = String::from_utf8(changed).unwrap();
                prop_assert!(ClientSecret::parse(&changed).is_err(), "{} was taken", at);
            }
        }
    }

    #[test]
    fn generated_secrets_parse_and_keep_their_environment() {
        for env in [Environment::Live, Environment::Test] {
            let secret = ClientSecret::generate(env);
            assert_eq!(secret.expose().len(), SECRET_LEN);
            let parsed = ClientSecret::parse(secret.expose()).unwrap();
            assert_eq!(parsed.environment(), env);
            assert!(parsed.expose().starts_with(&format!("kgs_{env}_")));
            assert_eq!(parsed.prefix(), secret.prefix());
            assert_eq!(secret.prefix().as_str().len(), 17);
        }
    }

    #[test]
    fn carries_at_least_256_bits_beyond_the_displayed_prefix() {
        let hidden = (RANDOM_LEN - PREFIX_RANDOM_LEN) as f64 * 62f64.log2();
        assert!(hidden >= 256.0, "{hidden} bits");
    }

    #[test]
    fn any_single_character_typo_is_caught_by_the_checksum_or_shape() {
        let secret = ClientSecret::generate(Environment::Live);
        let original = secret.expose().to_owned();
        for i in 0..original.len() {
            let mut bytes = original.clone().into_bytes();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(bytes).unwrap();
            assert!(ClientSecret::parse(&typo).is_err(), "typo at {i} accepted");
        }
    }

    #[test]
    fn malformed_secrets_are_refused_without_echo() {
        let good = ClientSecret::generate(Environment::Test)
            .expose()
            .to_owned();
        for bad in [
            String::new(),
            good[..good.len() - 1].to_owned(),
            format!("{good}x"),
            good.replacen("kgs_", "kgx_", 1),
            good.replacen("_test_", "_prod_", 1),
            good.replacen("test_", "test-", 1),
        ] {
            let err = ClientSecret::parse(&bad).unwrap_err();
            assert_eq!(err.field, "client_secret");
            assert!(!err.to_string().contains(&good[9..20]));
        }
    }

    #[test]
    fn debug_output_is_redacted() {
        let secret = ClientSecret::generate(Environment::Live);
        let shown = format!("{secret:?}");
        assert!(!shown.contains(secret.expose()));
        assert!(!shown.contains(&secret.expose()[9..]));
    }
}
