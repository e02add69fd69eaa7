//! Organizations: tenants. Their names are their public identifiers, so they never change.

use crate::domain::ValidationError;

/// 3 to 40 characters of `a-z`, `0-9` and `-`, starting with a letter (seed 002's key-name
/// pattern, which also makes a readable `org` claim).
pub fn parse_name(s: &str) -> Result<String, ValidationError> {
    let ok = (3..=40).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(ValidationError::new(
            "name",
            "3 to 40 characters of a-z, 0-9 and -, starting with a letter",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_pattern() {
        assert!(parse_name("acme-corp").is_ok());
        for bad in [
            "ab",
            "Acme",
            "1acme",
            "acme corp",
            "acme_corp",
            &"a".repeat(41),
        ] {
            assert!(parse_name(bad).is_err(), "{bad}");
        }
    }
}
