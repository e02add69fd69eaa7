//! Every authorization rule keygate has, in one file. The rest of the application layer asks
//! here before it acts; front ends never decide.
//!
//! - A caller needs the management permission an action names, in its own organization (the
//!   CLI acts in every one).
//! - A key never holds more than its owner: it is granted only scopes its creator (and the
//!   caller) holds, and at every use it acts with at most its owner's current permissions.
//! - Holders of `api_keys:manage` act on every key of their organization; others on their own.
//!   A key without an owner is nobody's own.
//! - Taking a key over (rotating it, which hands out a working secret, or enabling it again)
//!   needs every scope the key holds.
//! - A key of the `test` environment acts only on `test` keys and tokens, and manages nothing
//!   else (no users, organizations or webhooks).
//! - Nobody grants what they do not hold, makes an administrator unless they hold all an
//!   administrator does, or changes a user who holds (or, disabled, would hold) what they lack.
//! - Deployment-wide permissions (managing organizations, reading the revocation stream) are
//!   held only in the deployment's own organization, which itself can be neither disabled nor
//!   deleted.

use super::callers::Via;
use super::{Caller, Error};
use crate::db::api_keys::ApiKey;
use crate::db::organizations::{Organization, is_deployment_organization};
use crate::db::users::User;
use crate::domain::{
    Environment, ManagementPermission, ScopeCatalog, ScopeSet, UserStatus, ValidationError,
};
use crate::tokens::AccessTokenClaims;

/// What an action does to a key, for [`check_key_action`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAction {
    Read,
    /// Rename, or replace metadata.
    Update,
    Disable,
    /// Let a disabled key get tokens again.
    Enable,
    /// Issue a new secret, shown to the caller.
    Rotate,
    Revoke,
    Delete,
}

impl KeyAction {
    /// The management permission the action needs.
    pub fn permission(self) -> ManagementPermission {
        match self {
            KeyAction::Read => ManagementPermission::ApiKeysRead,
            _ => ManagementPermission::ApiKeysWrite,
        }
    }

    /// Whether the action puts the key's power in the caller's hands.
    fn takes_over(self) -> bool {
        matches!(self, KeyAction::Enable | KeyAction::Rotate)
    }
}

/// Refuses a caller that lacks `permission`, or that is fenced out of what it governs.
pub fn require(caller: &Caller, permission: ManagementPermission) -> Result<(), Error> {
    if !caller.holds(permission) {
        return Err(Error::MissingPermission(permission));
    }
    if permission.is_deployment_wide() && !caller.deployment {
        return Err(Error::Forbidden(format!(
            "`{permission}` is only for the deployment's own organization"
        )));
    }
    let beyond_keys = matches!(
        permission,
        ManagementPermission::UsersManage
            | ManagementPermission::OrganizationsManage
            | ManagementPermission::WebhooksManage
    );
    if beyond_keys && caller.fence() == Some(Environment::Test) {
        return Err(Error::Forbidden(format!(
            "a key of the test environment cannot use `{permission}`"
        )));
    }
    Ok(())
}

/// The organization the caller acts in. The CLI names one with each command instead.
pub fn home_organization(caller: &Caller) -> Result<i64, Error> {
    caller.organization_id.ok_or_else(|| {
        ValidationError::new("organization", "name the organization to act in").into()
    })
}

/// Whether `organization_id` is within the caller's reach.
pub fn reaches(caller: &Caller, organization_id: i64) -> bool {
    caller
        .organization_id
        .is_none_or(|own| own == organization_id)
}

// ---------------------------------------------------------------------------------------------
// What users hold.
// ---------------------------------------------------------------------------------------------

/// Whether a user may log in (and their sessions and keys act).
pub fn may_log_in(user: &User) -> bool {
    user.status == UserStatus::Enabled
}

/// What a user would hold if enabled: every permission for an administrator (the
/// deployment-wide ones too, in the deployment's own organization), else the stored set
/// (without the deployment-wide ones outside the deployment's organization).
pub fn potential_permissions(
    user: &User,
    organization: &Organization,
    catalog: &ScopeCatalog,
) -> ScopeSet {
    let deployment = is_deployment_organization(organization);
    if user.is_admin {
        return catalog.administrator(deployment);
    }
    let stored = ScopeSet::from_stored(&user.permissions);
    if deployment {
        stored
    } else {
        stored.without_deployment_wide()
    }
}

/// What a user may do now: nothing while disabled.
pub fn permissions_of(
    user: &User,
    organization: &Organization,
    catalog: &ScopeCatalog,
) -> ScopeSet {
    if may_log_in(user) {
        potential_permissions(user, organization, catalog)
    } else {
        ScopeSet::default()
    }
}

/// What a key may do now: its scopes, narrowed by its owner's current permissions.
pub fn key_scopes_now(
    scopes: &ScopeSet,
    owner: Option<&User>,
    organization: &Organization,
    catalog: &ScopeCatalog,
) -> ScopeSet {
    match owner {
        Some(owner) => scopes.intersection(&permissions_of(owner, organization, catalog)),
        None if is_deployment_organization(organization) => scopes.clone(),
        None => scopes.without_deployment_wide(),
    }
}

/// Refuses permissions outside the catalog, and deployment-wide ones outside the deployment's
/// own organization.
pub fn check_assignable(
    permissions: &ScopeSet,
    organization: &Organization,
    catalog: &ScopeCatalog,
) -> Result<(), ValidationError> {
    catalog
        .check(permissions)
        .map_err(|e| ValidationError::new("permissions", e.message))?;
    if let Some(permission) = permissions.deployment_wide()
        && !is_deployment_organization(organization)
    {
        return Err(ValidationError::new(
            "permissions",
            format!("{permission} is only for users of the deployment's own organization"),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Organizations.
// ---------------------------------------------------------------------------------------------

/// What an action does to an organization's existence, for [`check_organization_action`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrganizationAction {
    /// Refuse its keys' tokens and its users' log-ins until it is enabled again.
    Disable,
    /// Revoke its keys and end its sessions for good.
    Delete,
}

/// Refuses to disable or delete the deployment's own organization: its users are the ones who
/// manage every organization (and the signing keys), so without it nobody could.
pub fn check_organization_action(
    organization: &Organization,
    action: OrganizationAction,
) -> Result<(), Error> {
    if is_deployment_organization(organization) {
        return Err(Error::Forbidden(
            match action {
                OrganizationAction::Disable => {
                    "the deployment's own organization cannot be disabled"
                }
                OrganizationAction::Delete => "the deployment's own organization cannot be deleted",
            }
            .into(),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// API keys.
// ---------------------------------------------------------------------------------------------

/// Whether the key is the caller's own: made by the same owner. A key without an owner is
/// nobody's.
pub fn is_own(caller: &Caller, key: &ApiKey) -> bool {
    key.created_by.is_some() && key.created_by == caller.owner_user_id
}

/// Whether the caller may see the key at all (others answer "not found", so that they are
/// not even confirmed to exist).
pub fn may_see_key(caller: &Caller, key: &ApiKey) -> bool {
    // The deployment's own CLI still finds deleted keys (to show or revoke them).
    (key.deleted_at.is_none() || matches!(caller.via, Via::Cli))
        && reaches(caller, key.organization_id)
        && (caller.holds(ManagementPermission::ApiKeysManage) || is_own(caller, key))
        && caller.fence().is_none_or(|env| env == key.environment)
}

/// Refuses an action on a key the caller may not take.
pub fn check_key_action(caller: &Caller, key: &ApiKey, action: KeyAction) -> Result<(), Error> {
    require(caller, action.permission())?;
    if !may_see_key(caller, key) {
        return Err(Error::NotFound);
    }
    if action.takes_over() {
        let scopes = ScopeSet::from_stored(&key.scopes);
        if let Some(missing) = scopes.first_missing_from(&caller.permissions) {
            return Err(Error::Forbidden(format!(
                "this key holds `{missing}`, which you do not, so you cannot {}",
                match action {
                    KeyAction::Rotate => "rotate it",
                    _ => "enable it",
                }
            )));
        }
    }
    Ok(())
}

/// Refuses a new key the caller may not make: outside its environment fence, or granted a
/// scope the caller or the key's owner does not hold.
pub fn check_new_key(
    caller: &Caller,
    scopes: &ScopeSet,
    environment: Environment,
    organization: &Organization,
    owner: Option<(&User, &ScopeSet)>,
) -> Result<(), Error> {
    require(caller, ManagementPermission::ApiKeysWrite)?;
    if let Some(permission) = scopes.deployment_wide()
        && !is_deployment_organization(organization)
    {
        return Err(Error::Forbidden(format!(
            "`{permission}` is only for keys of the deployment's own organization"
        )));
    }
    if let Some(fence) = caller.fence().filter(|f| *f != environment) {
        return Err(Error::Forbidden(format!(
            "a key of the {fence} environment can only create {fence} keys"
        )));
    }
    if let Some(missing) = scopes.first_missing_from(&caller.permissions) {
        return Err(Error::Forbidden(format!(
            "you do not hold `{missing}`, so a key you create cannot be granted it"
        )));
    }
    if let Some((owner, held)) = owner
        && let Some(missing) = scopes.first_missing_from(held)
    {
        return Err(Error::Forbidden(format!(
            "the owner {} does not hold `{missing}`: a key can only be granted its \
                 owner's permissions",
            owner.email
        )));
    }
    Ok(())
}

/// Which of an organization's keys a list shows the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listed {
    Every,
    OwnedBy(i64),
    /// A caller without an owner owns nothing.
    Nothing,
}

pub fn listed_keys(caller: &Caller) -> Listed {
    if caller.holds(ManagementPermission::ApiKeysManage) {
        return Listed::Every;
    }
    match caller.owner_user_id {
        Some(owner) => Listed::OwnedBy(owner),
        None => Listed::Nothing,
    }
}

// ---------------------------------------------------------------------------------------------
// Users.
// ---------------------------------------------------------------------------------------------

/// Whether the caller may see the user.
pub fn may_see_user(caller: &Caller, user: &User) -> bool {
    reaches(caller, user.organization_id)
}

/// Refuses a grant the caller may not make: permissions it does not hold, an administrator
/// unless it holds all an administrator would, or a change to a user who holds (or would
/// hold, once enabled again) anything the caller lacks.
pub fn check_user_grant(
    caller: &Caller,
    permissions: Option<&ScopeSet>,
    admin: Option<bool>,
    target: Option<(&User, &Organization)>,
    catalog: &ScopeCatalog,
) -> Result<(), Error> {
    require(caller, ManagementPermission::UsersManage)?;
    if let Some(missing) = permissions.and_then(|p| p.first_missing_from(&caller.permissions)) {
        return Err(Error::Forbidden(format!(
            "you do not hold `{missing}`, so you cannot grant it"
        )));
    }
    if admin == Some(true)
        && !catalog
            .administrator(caller.deployment)
            .is_subset(&caller.permissions)
    {
        return Err(Error::Forbidden(
            "only an administrator can make another".into(),
        ));
    }
    if let Some((user, organization)) = target {
        let held = potential_permissions(user, organization, catalog);
        if let Some(missing) = held.first_missing_from(&caller.permissions) {
            return Err(Error::Forbidden(format!(
                "this user holds `{missing}`, which you do not, so you cannot change them"
            )));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Signing keys.
// ---------------------------------------------------------------------------------------------

/// Signing keys serve every organization: only the deployment's administrators (who hold
/// everything, organizations too) see and rotate them.
pub fn require_deployment_administrator(
    caller: &Caller,
    catalog: &ScopeCatalog,
) -> Result<(), Error> {
    require(caller, ManagementPermission::OrganizationsManage)?;
    if let Some(missing) = catalog
        .administrator(true)
        .first_missing_from(&caller.permissions)
    {
        return Err(Error::Forbidden(format!(
            "signing keys are for the deployment's administrators; you do not hold `{missing}`"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Tokens (RFC 7662 introspection, RFC 7009 revocation).
// ---------------------------------------------------------------------------------------------

/// Whether a token is within the caller's reach: its organization, and its environment fence.
pub fn reaches_token(caller: &Caller, organization: &str, claims: &AccessTokenClaims) -> bool {
    claims.org == organization && caller.fence().is_none_or(|env| env == claims.env)
}

/// Whether the caller's reach covers the tokens of this key (its refresh tokens): the same
/// organization, and the same environment for a `test` caller.
pub fn reaches_tokens_of(caller: &Caller, key: &ApiKey) -> bool {
    caller.organization_id == Some(key.organization_id)
        && caller.fence().is_none_or(|env| env == key.environment)
}

/// Whether the caller may revoke this token: its own, or any of its organization's with
/// `tokens:revoke`.
pub fn may_revoke_token(
    caller: &Caller,
    own_client_id: &str,
    token_client_id: &str,
) -> Result<(), Error> {
    if token_client_id == own_client_id || caller.holds(ManagementPermission::TokensRevoke) {
        return Ok(());
    }
    Err(Error::UnauthorizedClient(format!(
        "the token was issued to another client: revoking it needs the {} scope",
        ManagementPermission::TokensRevoke.as_str()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::organizations::DEFAULT_ORGANIZATION;
    use crate::domain::OrganizationStatus;

    fn organization(name: &str) -> Organization {
        Organization {
            id: 1,
            name: name.into(),
            created_at: chrono::Utc::now().naive_utc(),
            display_name: None,
            status: OrganizationStatus::Enabled,
            deleted_at: None,
        }
    }

    #[test]
    fn the_deployments_own_organization_is_neither_disabled_nor_deleted() {
        let own = organization(DEFAULT_ORGANIZATION);
        let tenant = organization("acme");
        for action in [OrganizationAction::Disable, OrganizationAction::Delete] {
            assert!(matches!(
                check_organization_action(&own, action),
                Err(Error::Forbidden(_))
            ));
            assert!(check_organization_action(&tenant, action).is_ok());
        }
    }
}
