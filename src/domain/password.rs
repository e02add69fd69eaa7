//! Operator passwords: 12 to 72 bytes (bcrypt reads no more), never printed.

use secrecy::{ExposeSecret, SecretString};

use super::{ValidationError, random};

pub struct Password(SecretString);

impl Password {
    pub fn parse(s: &str) -> Result<Password, ValidationError> {
        let s = s.trim_end_matches(['\r', '\n']);
        if s.chars().count() < 12 {
            return Err(ValidationError::new(
                "password",
                "must be at least 12 characters",
            ));
        }
        if s.len() > 72 {
            return Err(ValidationError::new(
                "password",
                "must be at most 72 bytes (bcrypt reads no more)",
            ));
        }
        Ok(Password(s.to_owned().into()))
    }

    /// 24 base-62 characters (142 bits), for `users create` without a password.
    pub fn generate() -> Password {
        Password(random::base62(24).into())
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_the_length() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse(&"x".repeat(73)).is_err());
        assert!(Password::parse("correct horse battery staple").is_ok());
        assert_eq!(
            Password::parse("twelve chars\n").unwrap().expose(),
            "twelve chars"
        );
        assert_eq!(Password::generate().expose().len(), 24);
    }
}
