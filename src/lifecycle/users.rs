//! User lifecycle: create (password bcrypt-hashed; a generated one is returned once), change
//! permissions, disable. A change that takes permissions away refuses, on every instance,
//! the tokens that the user's API keys were issued before it: their next token carries the
//! narrowed scopes.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Actor, Event, api_keys::refuse_tokens_issued_before, audit};
use crate::db::organizations::{self, Organization};
use crate::db::users::{self, NewUser, User, UserChanges};
use crate::db::{DbConnection, write_transaction};
use crate::domain::{
    Email, ORGANIZATIONS_MANAGE, Password, ScopeCatalog, ScopeSet, ValidationError, random,
};
use crate::error::ApiError;
use crate::tokens::Change;

pub struct NewUserRequest {
    pub organization_id: i64,
    pub email: Email,
    pub is_admin: bool,
    pub permissions: ScopeSet,
    /// None: generate one and return it.
    pub password: Option<Password>,
}

/// What a user may do: every permission for an administrator (organizations too, in the
/// deployment's own organization), else the stored set.
pub fn permissions_of(
    user: &User,
    organization: &Organization,
    catalog: &ScopeCatalog,
) -> ScopeSet {
    if user.status != "enabled" {
        return ScopeSet::default();
    }
    if user.is_admin {
        return catalog.administrator(organizations::is_deployment_organization(organization));
    }
    let stored = ScopeSet::from_stored(&user.permissions);
    if organizations::is_deployment_organization(organization) {
        stored
    } else {
        stored.filter(|p| p != ORGANIZATIONS_MANAGE)
    }
}

fn check_permissions(
    permissions: &ScopeSet,
    organization: &Organization,
    catalog: &ScopeCatalog,
) -> Result<(), ValidationError> {
    catalog
        .check(permissions)
        .map_err(|e| ValidationError::new("permissions", e.message))?;
    if permissions.contains(ORGANIZATIONS_MANAGE)
        && !organizations::is_deployment_organization(organization)
    {
        return Err(ValidationError::new(
            "permissions",
            "organizations:manage is only for users of the deployment's own organization",
        ));
    }
    Ok(())
}

/// Creates a user; returns the generated password when none was given. Runs bcrypt.
pub fn create(
    conn: &mut DbConnection,
    request: NewUserRequest,
    catalog: &ScopeCatalog,
    password_cost: u32,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(User, Option<Password>), ApiError> {
    let organization = organizations::find(conn, request.organization_id)?;
    check_permissions(&request.permissions, &organization, catalog)?;
    let (password, generated) = match request.password {
        Some(p) => (p, false),
        None => (Password::generate(), true),
    };
    let hash = bcrypt::hash(password.expose(), password_cost).map_err(ApiError::internal)?;
    let public_id = format!("usr_{}", random::base62(16));
    let permissions = request.permissions.to_string();
    let user = write_transaction(conn, |conn| -> Result<User, ApiError> {
        if users::find_by_email(conn, request.email.as_str())?.is_some() {
            return Err(ApiError::Conflict(
                "a user with this email already exists".into(),
            ));
        }
        let user = users::insert(
            conn,
            &NewUser {
                organization_id: organization.id,
                public_id: &public_id,
                email: request.email.as_str(),
                password_hash: &hash,
                is_admin: request.is_admin,
                permissions: &permissions,
                status: "enabled",
                created_at: now.naive_utc(),
                updated_at: now.naive_utc(),
            },
        )?;
        audit(
            conn,
            actor,
            Event {
                organization_id: Some(organization.id),
                action: "user.created",
                target: Some(&public_id),
                outcome: "success",
                details: json!({ "email": user.email, "admin": user.is_admin, "permissions": permissions }),
            },
            now,
        )?;
        Ok(user)
    })?;
    Ok((user, generated.then_some(password)))
}

pub struct UserUpdate {
    pub permissions: Option<ScopeSet>,
    pub is_admin: Option<bool>,
    pub enabled: Option<bool>,
}

/// Applies a change; returns the user as stored and the feed changes this instance should
/// apply at once.
pub fn update(
    conn: &mut DbConnection,
    user: &User,
    update: &UserUpdate,
    catalog: &ScopeCatalog,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(User, Vec<Change>), ApiError> {
    let organization = organizations::find(conn, user.organization_id)?;
    if let Some(permissions) = &update.permissions {
        check_permissions(permissions, &organization, catalog)?;
    }
    let permissions = update.permissions.as_ref().map(ScopeSet::to_string);
    let status = update
        .enabled
        .map(|e| if e { "enabled" } else { "disabled" });
    write_transaction(conn, |conn| {
        let before = permissions_of(user, &organization, catalog);
        users::update(
            conn,
            user.id,
            &UserChanges {
                permissions: permissions.as_deref(),
                is_admin: update.is_admin,
                status,
                updated_at: Some(now.naive_utc()),
            },
        )?;
        let updated = users::find(conn, user.id)?.ok_or(ApiError::NotFound)?;
        let after = permissions_of(&updated, &organization, catalog);
        let narrowed = !before.is_subset(&after);
        let mut changes = Vec::new();
        if narrowed {
            for key in crate::db::api_keys::created_by(conn, user.id)? {
                changes.push(refuse_tokens_issued_before(conn, &key.client_id, now)?);
            }
        }
        if updated.status != "enabled" {
            crate::db::sessions::delete_for_user(conn, user.id)?;
        }
        audit(
            conn,
            actor,
            Event {
                organization_id: Some(organization.id),
                action: if status == Some("disabled") {
                    "user.disabled"
                } else {
                    "user.updated"
                },
                target: updated.public_id.as_deref(),
                outcome: "success",
                details: json!({
                    "permissions": after.to_string(),
                    "admin": updated.is_admin,
                    "status": updated.status,
                    "keys_narrowed": changes.len(),
                }),
            },
            now,
        )?;
        Ok((updated, changes))
    })
}
