//! Scopes (RFC 6749 section 3.3): case-sensitive tokens, space-delimited on the wire.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Serialize, Serializer};

use super::ValidationError;

const MAX_SCOPE_LEN: usize = 128;
const MAX_SCOPES: usize = 100;

/// One scope token: 1 to 128 characters from `%x21 / %x23-5B / %x5D-7E`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Scope(String);

impl Scope {
    pub fn parse(s: &str) -> Result<Scope, ValidationError> {
        let allowed = |b: u8| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b);
        if s.is_empty() || s.len() > MAX_SCOPE_LEN || !s.bytes().all(allowed) {
            return Err(ValidationError::new(
                "scope",
                "each scope is 1 to 128 printable ASCII characters without space, quote or backslash",
            ));
        }
        Ok(Scope(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A set of scopes, ordered so that its space-delimited form is stable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScopeSet(BTreeSet<Scope>);

impl ScopeSet {
    /// Parses the RFC 6749 `scope` parameter: tokens separated by single spaces.
    pub fn parse_delimited(s: &str) -> Result<ScopeSet, ValidationError> {
        if s.is_empty() {
            return Ok(ScopeSet::default());
        }
        Self::from_items(s.split(' '))
    }

    /// Parses a list (JSON array, CLI `a,b`).
    pub fn from_items<'a>(
        items: impl IntoIterator<Item = &'a str>,
    ) -> Result<ScopeSet, ValidationError> {
        let mut set = BTreeSet::new();
        for item in items {
            set.insert(Scope::parse(item)?);
            if set.len() > MAX_SCOPES {
                return Err(ValidationError::new("scope", "at most 100 scopes"));
            }
        }
        Ok(ScopeSet(set))
    }

    /// Reads the space-delimited form keygate itself stored.
    pub fn from_stored(s: &str) -> ScopeSet {
        ScopeSet(
            s.split(' ')
                .filter(|t| !t.is_empty())
                .map(|t| Scope(t.to_owned()))
                .collect(),
        )
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.iter().any(|s| s.as_str() == scope)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The first member of `self` that `other` lacks.
    pub fn first_missing_from(&self, other: &ScopeSet) -> Option<&Scope> {
        self.0.iter().find(|s| !other.0.contains(*s))
    }
}

impl fmt::Display for ScopeSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, scope) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            f.write_str(scope.as_str())?;
        }
        Ok(())
    }
}

impl Serialize for ScopeSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter())
    }
}

/// The scopes this deployment lets API keys hold (configuration `scopes.catalog`).
#[derive(Clone, Debug)]
pub struct ScopeCatalog(ScopeSet);

impl ScopeCatalog {
    pub fn new(entries: &[String]) -> Result<ScopeCatalog, ValidationError> {
        Ok(ScopeCatalog(ScopeSet::from_items(
            entries.iter().map(String::as_str),
        )?))
    }

    /// Refuses the first scope outside the catalog, naming it.
    pub fn check(&self, scopes: &ScopeSet) -> Result<(), ValidationError> {
        match scopes.first_missing_from(&self.0) {
            Some(unknown) => Err(ValidationError::new(
                "scopes",
                format!("unknown scope `{unknown}`; see scopes.catalog"),
            )),
            None => Ok(()),
        }
    }

    pub fn scopes(&self) -> &ScopeSet {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_space_delimited_scopes_into_a_stable_order() {
        let set = ScopeSet::parse_delimited("invoices:write invoices:read").unwrap();
        assert_eq!(set.to_string(), "invoices:read invoices:write");
        assert_eq!(set.len(), 2);
        assert!(ScopeSet::parse_delimited("").unwrap().is_empty());
    }

    #[test]
    fn refuses_malformed_scope_strings() {
        for bad in [
            "a  b",
            " a",
            "a ",
            "a\"b",
            "a\\b",
            "caf\u{e9}",
            "a\tb",
            &"x".repeat(129),
        ] {
            assert!(
                ScopeSet::parse_delimited(bad).is_err(),
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn comparison_is_exact_and_case_sensitive() {
        let granted = ScopeSet::parse_delimited("invoices:read").unwrap();
        for asked in [
            "Invoices:read",
            "invoices:readx",
            "invoices",
            "invoices:read:all",
        ] {
            let asked = ScopeSet::parse_delimited(asked).unwrap();
            assert!(!asked.is_subset(&granted));
        }
        assert!(!granted.contains("invoices"));
    }

    #[test]
    fn catalog_names_the_unknown_scope() {
        let catalog = ScopeCatalog::new(&["a:read".into(), "a:write".into()]).unwrap();
        assert!(
            catalog
                .check(&ScopeSet::parse_delimited("a:read").unwrap())
                .is_ok()
        );
        let err = catalog
            .check(&ScopeSet::parse_delimited("a:read b:read").unwrap())
            .unwrap_err();
        assert!(err.message.contains("`b:read`"), "{err}");
    }

    #[test]
    fn limits_the_number_of_scopes() {
        let many: Vec<String> = (0..101).map(|i| format!("s{i}")).collect();
        assert!(ScopeSet::from_items(many.iter().map(String::as_str)).is_err());
    }
}
