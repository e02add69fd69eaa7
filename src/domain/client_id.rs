//! The public half of an API key: `kgc_` followed by 20 base-62 characters (119 bits).

use std::fmt;

use serde::Serialize;

use super::{ValidationError, random};

const PREFIX: &str = "kgc_";
const RANDOM_LEN: usize = 20;

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    pub fn generate() -> ClientId {
        ClientId(format!("{PREFIX}{}", random::base62(RANDOM_LEN)))
    }

    /// Accepts only the exact shape keygate issues, so a malformed id never reaches the database.
    pub fn parse(s: &str) -> Result<ClientId, ValidationError> {
        let well_formed = s.len() == PREFIX.len() + RANDOM_LEN
            && s.starts_with(PREFIX)
            && random::is_base62(&s[PREFIX.len()..]);
        if well_formed {
            Ok(ClientId(s.to_owned()))
        } else {
            Err(ValidationError::new(
                "client_id",
                "is not a keygate client_id (kgc_...)",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(crate::domain::property_cases(4096)))]

            /// Any text is a client id or refused; one that parses is exactly the tag and twenty
            /// base-62 characters, and reads back as given.
            #[test]
            fn any_text_parses_only_as_the_documented_shape(text in "(kgc_)?([0-9A-Za-z]{18,22}|\\PC{0,30})") {
                if let Ok(id) = ClientId::parse(&text) {
                    prop_assert_eq!(id.as_str(), text.as_str());
                    prop_assert_eq!(text.len(), 24);
                    prop_assert!(text.starts_with("kgc_"));
                    prop_assert!(text[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
                }
            }
        }
    }

    #[test]
    fn generated_ids_parse() {
        let id = ClientId::generate();
        assert_eq!(ClientId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "kgc_",
            "kgc_0123456789abcdefghi",      // one short
            "kgc_0123456789abcdefghijk",    // one long
            "kgx_0123456789abcdefghij",     // wrong prefix
            "kgc_0123456789abcdefgh-j",     // outside the alphabet
            "kgc_0123456789abcdefgh\u{e9}", // non-ASCII
        ] {
            assert!(ClientId::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
