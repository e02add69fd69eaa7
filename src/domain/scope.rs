//! Scopes (RFC 6749 section 3.3): case-sensitive tokens, space-delimited on the wire.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Serialize, Serializer};

use super::ValidationError;

const MAX_SCOPE_LEN: usize = 128;
const MAX_SCOPES: usize = 100;
/// Bounds a token: every granted scope goes into its `scope` claim.
const MAX_SCOPES_LEN: usize = 2048;

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
        if set.iter().map(|s: &Scope| s.0.len() + 1).sum::<usize>() > MAX_SCOPES_LEN {
            return Err(ValidationError::new(
                "scope",
                "the scopes add up to more than 2048 characters",
            ));
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

    /// Whether the set holds a management permission.
    pub fn holds(&self, permission: ManagementPermission) -> bool {
        self.contains(permission.as_str())
    }

    /// The set without one management permission.
    pub fn without(&self, permission: ManagementPermission) -> ScopeSet {
        self.filter(|s| s != permission.as_str())
    }

    /// The set without the deployment-wide permissions (see
    /// [`ManagementPermission::is_deployment_wide`]).
    pub fn without_deployment_wide(&self) -> ScopeSet {
        self.filter(|s| {
            s.parse::<ManagementPermission>()
                .map_or(true, |p| !p.is_deployment_wide())
        })
    }

    /// The first deployment-wide permission in the set.
    pub fn deployment_wide(&self) -> Option<ManagementPermission> {
        ManagementPermission::ALL
            .iter()
            .copied()
            .find(|p| p.is_deployment_wide() && self.holds(*p))
    }

    pub fn iter(&self) -> impl Iterator<Item = &Scope> {
        self.0.iter()
    }

    pub fn is_subset(&self, other: &ScopeSet) -> bool {
        self.0.is_subset(&other.0)
    }

    pub fn intersection(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0.intersection(&other.0).cloned().collect())
    }

    pub fn union(&self, other: &ScopeSet) -> ScopeSet {
        ScopeSet(self.0.union(&other.0).cloned().collect())
    }

    /// The members whose name satisfies `keep`.
    pub fn filter(&self, keep: impl Fn(&str) -> bool) -> ScopeSet {
        ScopeSet(
            self.0
                .iter()
                .filter(|s| keep(s.as_str()))
                .cloned()
                .collect(),
        )
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

/// A JSON array of distinct scope tokens, sorted, within the limits `from_items` enforces.
impl utoipa::PartialSchema for ScopeSet {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
        ArrayBuilder::new()
            .description(Some(
                "Scopes (RFC 6749 section 3.3), sorted: API scopes and keygate's management permissions",
            ))
            .items(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(MAX_SCOPE_LEN))
                    .pattern(Some(r"^[!#-\[\]-~]+$")),
            )
            .max_items(Some(MAX_SCOPES))
            .unique_items(true)
            .examples([serde_json::json!(["invoices:read", "invoices:write"])])
            .into()
    }
}

impl utoipa::ToSchema for ScopeSet {
    fn name() -> std::borrow::Cow<'static, str> {
        "Scopes".into()
    }
}

super::status::closed_set! {
    /// Permissions keygate's own management API checks. Users hold them like any other scope,
    /// and API keys may be granted them (never beyond what their creator holds).
    ManagementPermission, field "permissions" {
        ApiKeysRead => "api_keys:read",
        ApiKeysWrite => "api_keys:write",
        /// Every key of the organization, not only the caller's own.
        ApiKeysManage => "api_keys:manage",
        UsersManage => "users:manage",
        AuditRead => "audit:read",
        WebhooksManage => "webhooks:manage",
        TokensIntrospect => "tokens:introspect",
        TokensRevoke => "tokens:revoke",
        /// Deployment-wide: create and list organizations. Only users of the deployment's own
        /// organization can hold it.
        OrganizationsManage => "organizations:manage",
        /// Deployment-wide: follow the revocation stream (every organization's revoked keys
        /// and tokens), as resource servers that know only keygate's URL do.
        RevocationsRead => "revocations:read",
    }
}

impl ManagementPermission {
    /// Whether the permission reaches past the holder's organization, so that only users
    /// (and keys) of the deployment's own organization can hold it.
    pub fn is_deployment_wide(self) -> bool {
        matches!(
            self,
            ManagementPermission::OrganizationsManage | ManagementPermission::RevocationsRead
        )
    }
}

/// What this deployment lets users hold and API keys be granted: the configured API scopes
/// (`scopes.catalog`) plus keygate's management permissions.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct ScopeCatalog {
    api: ScopeSet,
    all: ScopeSet,
}

impl TryFrom<Vec<String>> for ScopeCatalog {
    type Error = ValidationError;

    fn try_from(entries: Vec<String>) -> Result<ScopeCatalog, ValidationError> {
        ScopeCatalog::new(&entries)
    }
}

impl ScopeCatalog {
    pub fn new(entries: &[String]) -> Result<ScopeCatalog, ValidationError> {
        let api = ScopeSet::from_items(entries.iter().map(String::as_str))?;
        let builtin = ScopeSet::from_items(ManagementPermission::ALL.iter().map(|p| p.as_str()))?;
        Ok(ScopeCatalog {
            all: api.union(&builtin),
            api,
        })
    }

    /// Refuses the first scope outside the catalog, naming it.
    pub fn check(&self, scopes: &ScopeSet) -> Result<(), ValidationError> {
        match scopes.first_missing_from(&self.all) {
            Some(unknown) => Err(ValidationError::new(
                "scopes",
                format!("unknown scope `{unknown}`; see scopes.catalog"),
            )),
            None => Ok(()),
        }
    }

    /// The configured API scopes (what `scopes_supported` advertises).
    pub fn scopes(&self) -> &ScopeSet {
        &self.api
    }

    /// Every permission an administrator holds; deployment administrators also hold the
    /// deployment-wide ones (organizations, the revocation stream).
    pub fn administrator(&self, deployment_admin: bool) -> ScopeSet {
        if deployment_admin {
            self.all.clone()
        } else {
            self.all.without_deployment_wide()
        }
    }

    /// "Full access" for a new key: every API scope `holder` holds (management permissions
    /// are only ever granted by name).
    pub fn full_access(&self, holder: &ScopeSet) -> ScopeSet {
        holder.intersection(&self.api)
    }

    /// "Read only": every API scope ending in `:read` that `holder` holds.
    pub fn read_only(&self, holder: &ScopeSet) -> ScopeSet {
        self.full_access(holder).filter(|s| s.ends_with(":read"))
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
    fn the_catalog_knows_management_permissions_and_derives_presets() {
        let catalog =
            ScopeCatalog::new(&["a:read".into(), "a:write".into(), "b:read".into()]).unwrap();
        assert!(
            catalog
                .check(&ScopeSet::parse_delimited("api_keys:manage a:read").unwrap())
                .is_ok()
        );
        let holder = ScopeSet::parse_delimited("a:read a:write api_keys:read").unwrap();
        assert_eq!(catalog.read_only(&holder).to_string(), "a:read");
        assert_eq!(catalog.full_access(&holder).to_string(), "a:read a:write");
        assert!(
            !catalog
                .administrator(false)
                .holds(ManagementPermission::OrganizationsManage)
        );
        assert!(
            catalog
                .administrator(true)
                .holds(ManagementPermission::OrganizationsManage)
        );
        assert!(catalog.administrator(false).contains("b:read"));
        assert_eq!(catalog.scopes().len(), 3);
    }

    #[test]
    fn limits_the_number_of_scopes() {
        let many: Vec<String> = (0..101).map(|i| format!("s{i}")).collect();
        assert!(ScopeSet::from_items(many.iter().map(String::as_str)).is_err());
    }
}
