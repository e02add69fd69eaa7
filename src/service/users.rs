//! Users (the operators who log in and own keys): create (the password bcrypt-hashed; a
//! generated one is returned once), list, change permissions, disable. A change that takes
//! permissions away refuses, on every instance, the tokens that the user's API keys were
//! issued before it: their next token carries the narrowed scopes.

use chrono::Utc;

use super::api_keys::{Cut, cut_tokens};
use super::audit::{self, Event};
use super::{Caller, Error, Service, policy};
use crate::db::organizations::Organization;
use crate::db::users::{self, NewUser, User, UserChanges};
use crate::db::{self, DbConnection, write_transaction};
use crate::domain::{
    AuditAction, Email, ManagementPermission, Password, ScopeSet, UserStatus, random,
};

/// A user and their organization, as front ends show them.
pub struct UserRecord {
    pub user: User,
    pub organization: Organization,
}

impl UserRecord {
    /// What the user may do now.
    pub fn permissions(&self, service: &Service) -> ScopeSet {
        policy::permissions_of(&self.user, &self.organization, &service.catalog)
    }
}

/// The organization's users, oldest first.
pub async fn list(
    service: &Service,
    caller: &Caller,
    organization_id: i64,
) -> Result<Vec<UserRecord>, Error> {
    policy::require(caller, ManagementPermission::UsersManage)?;
    if !policy::reaches(caller, organization_id) {
        return Err(Error::NotFound);
    }
    service
        .db(move |conn| {
            let organization = db::organizations::find(conn, organization_id)?;
            Ok(users::list(conn, organization_id)?
                .into_iter()
                .map(|user| UserRecord {
                    user,
                    organization: organization.clone(),
                })
                .collect())
        })
        .await
}

pub struct NewUserRequest {
    pub organization_id: i64,
    pub email: Email,
    pub is_admin: bool,
    pub permissions: ScopeSet,
    /// None: generate one and return it.
    pub password: Option<Password>,
}

/// Creates a user; returns the generated password when none was given.
pub async fn create(
    service: &Service,
    caller: &Caller,
    request: NewUserRequest,
) -> Result<(UserRecord, Option<Password>), Error> {
    let (record, password) = insert_user(service, caller, request, None).await?;
    Ok(record_with(record, password))
}

fn record_with(record: UserRecord, password: (Password, bool)) -> (UserRecord, Option<Password>) {
    let (password, generated) = password;
    (record, generated.then_some(password))
}

/// Inserts a user, enabled, or `invited` with this invitation (its token's hash and expiry)
/// in the same transaction. The password is the one given, or a generated one (`true`).
pub(super) async fn insert_user(
    service: &Service,
    caller: &Caller,
    request: NewUserRequest,
    invitation: Option<(String, chrono::DateTime<Utc>)>,
) -> Result<(UserRecord, (Password, bool)), Error> {
    policy::require(caller, ManagementPermission::UsersManage)?;
    if !policy::reaches(caller, request.organization_id) {
        return Err(Error::NotFound);
    }
    let organization_id = request.organization_id;
    let organization = service
        .db(move |conn| Ok(db::organizations::find(conn, organization_id)?))
        .await?;
    policy::check_assignable(&request.permissions, &organization, &service.catalog)?;
    policy::check_user_grant(
        caller,
        Some(&request.permissions),
        Some(request.is_admin),
        None,
        &service.catalog,
    )?;
    let (password, generated) = match request.password {
        Some(p) => (p, false),
        None => (Password::generate(), true),
    };
    let hash = service.hasher.hash_password(&password).await?;
    let public_id = format!("usr_{}", random::base62(16));
    let permissions = request.permissions.to_string();
    let actor = caller.actor.clone();
    let (email, is_admin) = (request.email, request.is_admin);
    let user = service
        .db(move |conn| {
            write_transaction(conn, |conn| -> Result<User, Error> {
                if users::find_by_email(conn, email.as_str())?.is_some() {
                    return Err(Error::Conflict(
                        "a user with this email already exists".into(),
                    ));
                }
                let now = Utc::now();
                let user = users::insert(
                    conn,
                    &NewUser {
                        organization_id,
                        public_id: &public_id,
                        email: email.as_str(),
                        password_hash: &hash,
                        is_admin,
                        permissions: &permissions,
                        status: if invitation.is_some() {
                            UserStatus::Invited
                        } else {
                            UserStatus::Enabled
                        },
                        created_at: now.naive_utc(),
                        updated_at: now.naive_utc(),
                    },
                )?;
                let action = match &invitation {
                    Some((token_hash, expires_at)) => {
                        db::invitations::insert(
                            conn,
                            &db::invitations::NewInvitation {
                                user_id: user.id,
                                token_hash,
                                created_at: now.naive_utc(),
                                expires_at: expires_at.naive_utc(),
                            },
                        )?;
                        AuditAction::UserInvited
                    }
                    None => AuditAction::UserCreated,
                };
                let event =
                    Event::success(organization_id, action, &public_id).with(serde_json::json!({
                        "email": user.email,
                        "admin": user.is_admin,
                        "permissions": permissions,
                    }));
                audit::record(conn, &actor, event, now)?;
                Ok(user)
            })
        })
        .await?;
    Ok((UserRecord { user, organization }, (password, generated)))
}

/// The user by public id, if the caller may see them.
async fn find(service: &Service, caller: &Caller, id: &str) -> Result<UserRecord, Error> {
    policy::require(caller, ManagementPermission::UsersManage)?;
    // User ids are `usr_` and 16 base-62 characters; anything else names no user.
    let well_formed = id.len() == 20 && id.starts_with("usr_") && random::is_base62(&id[4..]);
    if !well_formed {
        return Err(Error::NotFound);
    }
    let id = id.to_owned();
    let record = service
        .db(move |conn| {
            let Some(user) = users::find_by_public_id(conn, &id)? else {
                return Ok(None);
            };
            let organization = db::organizations::find(conn, user.organization_id)?;
            Ok(Some(UserRecord { user, organization }))
        })
        .await?
        .filter(|r| policy::may_see_user(caller, &r.user))
        .ok_or(Error::NotFound)?;
    Ok(record)
}

/// One user.
pub async fn get(service: &Service, caller: &Caller, id: &str) -> Result<UserRecord, Error> {
    find(service, caller, id).await
}

pub struct UserUpdate {
    pub permissions: Option<ScopeSet>,
    pub is_admin: Option<bool>,
    pub enabled: Option<bool>,
}

/// Changes a user's permissions, administrator flag or status.
pub async fn update(
    service: &Service,
    caller: &Caller,
    id: &str,
    update: UserUpdate,
) -> Result<UserRecord, Error> {
    let found = find(service, caller, id).await?;
    if let Some(permissions) = &update.permissions {
        policy::check_assignable(permissions, &found.organization, &service.catalog)?;
    }
    let (caller, catalog) = (caller.clone(), service.catalog.clone());
    let (record, changes) = service
        .db(move |conn| {
            write_transaction(conn, |conn| -> Result<_, Error> {
                let UserRecord { organization, .. } = found;
                // Judged against the user as stored now, whatever their status.
                let user = users::find(conn, found.user.id)?.ok_or(Error::NotFound)?;
                policy::check_user_grant(
                    &caller,
                    update.permissions.as_ref(),
                    update.is_admin,
                    Some((&user, &organization)),
                    &catalog,
                )?;
                let now = Utc::now();
                let before = policy::permissions_of(&user, &organization, &catalog);
                let status = update.enabled.map(|enabled| {
                    if enabled {
                        UserStatus::Enabled
                    } else {
                        UserStatus::Disabled
                    }
                });
                let permissions = update.permissions.as_ref().map(ScopeSet::to_string);
                users::update(
                    conn,
                    user.id,
                    &UserChanges {
                        permissions: permissions.as_deref(),
                        is_admin: update.is_admin,
                        status,
                        updated_at: Some(now.naive_utc()),
                        password_hash: None,
                    },
                )?;
                let updated = users::find(conn, user.id)?.ok_or(Error::NotFound)?;
                let after = policy::permissions_of(&updated, &organization, &catalog);
                let changes = if before.is_subset(&after) {
                    Vec::new()
                } else {
                    narrow_keys_of(conn, user.id)?
                };
                if !policy::may_log_in(&updated) {
                    db::sessions::delete_for_user(conn, user.id)?;
                }
                let action = if status == Some(UserStatus::Disabled) {
                    AuditAction::UserDisabled
                } else {
                    AuditAction::UserUpdated
                };
                let target = updated.public_id.clone().unwrap_or_default();
                let event =
                    Event::success(organization.id, action, &target).with(serde_json::json!({
                        "permissions": after.to_string(),
                        "admin": updated.is_admin,
                        "status": updated.status,
                        "keys_narrowed": changes.len(),
                    }));
                audit::record(conn, &caller.actor, event, now)?;
                Ok((
                    UserRecord {
                        user: updated,
                        organization,
                    },
                    changes,
                ))
            })
        })
        .await?;
    service.apply(&changes);
    Ok(record)
}

/// Cuts the tokens of every key the user created: their next tokens carry what the user holds
/// now.
fn narrow_keys_of(
    conn: &mut DbConnection,
    user_id: i64,
) -> Result<Vec<crate::tokens::Change>, Error> {
    let keys = db::api_keys::created_by(conn, user_id)?;
    let mut changes = Vec::with_capacity(keys.len());
    for key in keys {
        changes.push(cut_tokens(conn, &key, Cut::IssuedUntilNow)?);
    }
    Ok(changes)
}
