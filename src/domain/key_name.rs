//! An API key's human name ("Nightly export script").

use std::fmt;

use super::ValidationError;

const MAX_LEN: usize = 100;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(transparent)]
pub struct KeyName(String);

impl KeyName {
    /// Trims surrounding whitespace; refuses empty names, control characters and over 100 characters.
    pub fn parse(s: &str) -> Result<KeyName, ValidationError> {
        let name = s.trim();
        if name.is_empty() {
            return Err(ValidationError::new("name", "must not be empty"));
        }
        if name.chars().count() > MAX_LEN {
            return Err(ValidationError::new(
                "name",
                "must be at most 100 characters",
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "name",
                "must not contain control characters",
            ));
        }
        Ok(KeyName(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_and_accepts_ordinary_names() {
        assert_eq!(
            KeyName::parse("  Nightly export  ").unwrap().as_str(),
            "Nightly export"
        );
        assert!(KeyName::parse("Überweisungen 2026").is_ok());
    }

    #[test]
    fn refuses_empty_long_and_control_names() {
        for bad in ["", "   ", "a\nb", "a\u{0}b", &"x".repeat(101)] {
            assert!(KeyName::parse(bad).is_err(), "{bad:?} must be refused");
        }
    }
}
