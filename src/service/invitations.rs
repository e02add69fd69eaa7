//! Invitations: a user made `invited`, who sets their own password through a one-time link
//! (valid 7 days; only its token's SHA-256 is stored). Invitations are listed, resent (a new
//! link; the old one stops working) and revoked (the user is disabled); accepting one enables
//! the user, once and only once.

use chrono::{DateTime, Duration, Utc};

use super::audit::{self, Event};
use super::users::{self, NewUserRequest, UserRecord, insert_user};
use super::{Caller, Error, Origin, Service, login, policy};
use crate::db::users::{User, UserChanges};
use crate::db::{self, write_transaction};
use crate::domain::{AuditAction, ManagementPermission, Password, UserStatus, random};

/// How long an invitation link works.
pub const VALID_DAYS: i64 = 7;

/// A link's token: shown once, in the link.
pub struct IssuedInvitation {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl IssuedInvitation {
    fn new(now: DateTime<Utc>) -> (IssuedInvitation, String) {
        let token = format!("kgi_{}", random::base62(43));
        let hash = login::session_hash(&token);
        let issued = IssuedInvitation {
            token,
            expires_at: now + Duration::days(VALID_DAYS),
        };
        (issued, hash)
    }

    /// Where the invitee sets their password: keygate's own page.
    pub fn url(&self, service: &Service) -> String {
        format!("{}/console/invitations/{}", service.issuer, self.token)
    }
}

/// An invitation not yet accepted, revoked or expired.
pub struct OpenInvitation {
    pub record: UserRecord,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Makes an `invited` user (with the same rules as creating one) and their invitation.
pub async fn invite(
    service: &Service,
    caller: &Caller,
    request: NewUserRequest,
) -> Result<(UserRecord, IssuedInvitation), Error> {
    let (issued, hash) = IssuedInvitation::new(Utc::now());
    let request = NewUserRequest {
        password: None,
        ..request
    };
    let (record, _) =
        insert_user(service, caller, request, Some((hash, issued.expires_at))).await?;
    Ok((record, issued))
}

/// The open invitations of an organization, newest first.
pub async fn list(
    service: &Service,
    caller: &Caller,
    organization_id: i64,
) -> Result<Vec<OpenInvitation>, Error> {
    policy::require(caller, ManagementPermission::UsersManage)?;
    if !policy::reaches(caller, organization_id) {
        return Err(Error::NotFound);
    }
    let now = Utc::now().naive_utc();
    service
        .db(move |conn| {
            let organization = db::organizations::find(conn, organization_id)?;
            Ok(db::invitations::open_in(conn, organization_id, now)?
                .into_iter()
                .map(|(invitation, user)| OpenInvitation {
                    record: UserRecord {
                        user,
                        organization: organization.clone(),
                    },
                    created_at: invitation.created_at.and_utc(),
                    expires_at: invitation.expires_at.and_utc(),
                })
                .collect())
        })
        .await
}

/// The invited user by public id, if the caller may change them.
async fn invited(service: &Service, caller: &Caller, user_id: &str) -> Result<UserRecord, Error> {
    let record = users::get(service, caller, user_id).await?;
    policy::check_user_grant(
        caller,
        None,
        None,
        Some((&record.user, &record.organization)),
        &service.catalog,
    )?;
    if record.user.status != UserStatus::Invited {
        return Err(Error::Conflict(
            "this user is not invited: they accepted, or were made without an invitation".into(),
        ));
    }
    Ok(record)
}

/// A new link for an invited user; the old one stops working.
pub async fn resend(
    service: &Service,
    caller: &Caller,
    user_id: &str,
) -> Result<IssuedInvitation, Error> {
    let record = invited(service, caller, user_id).await?;
    let now = Utc::now();
    let (issued, hash) = IssuedInvitation::new(now);
    let (actor, expires_at) = (caller.actor.clone(), issued.expires_at);
    service
        .db(move |conn| {
            write_transaction(conn, |conn| -> Result<(), Error> {
                let user = &record.user;
                db::invitations::revoke_for_user(conn, user.id, now.naive_utc())?;
                db::invitations::insert(
                    conn,
                    &db::invitations::NewInvitation {
                        user_id: user.id,
                        token_hash: &hash,
                        created_at: now.naive_utc(),
                        expires_at: expires_at.naive_utc(),
                    },
                )?;
                let id = user.public_id.clone().unwrap_or_default();
                let event = Event::success(user.organization_id, AuditAction::UserInvited, &id)
                    .with(serde_json::json!({ "email": user.email, "resent": true }));
                Ok(audit::record(conn, &actor, event, now)?)
            })
        })
        .await?;
    Ok(issued)
}

/// Revokes an invited user's invitation; the user is disabled.
pub async fn revoke(service: &Service, caller: &Caller, user_id: &str) -> Result<(), Error> {
    let record = invited(service, caller, user_id).await?;
    let actor = caller.actor.clone();
    service
        .db(move |conn| {
            write_transaction(conn, |conn| -> Result<(), Error> {
                let now = Utc::now();
                let user = &record.user;
                db::invitations::revoke_for_user(conn, user.id, now.naive_utc())?;
                db::users::update(
                    conn,
                    user.id,
                    &UserChanges {
                        status: Some(UserStatus::Disabled),
                        updated_at: Some(now.naive_utc()),
                        ..UserChanges::default()
                    },
                )?;
                let id = user.public_id.clone().unwrap_or_default();
                let event =
                    Event::success(user.organization_id, AuditAction::InvitationRevoked, &id);
                Ok(audit::record(conn, &actor, event, now)?)
            })
        })
        .await
}

/// The invitee behind an open link, to greet them on the page.
pub async fn open(service: &Service, token: &str) -> Result<User, Error> {
    let hash = login::session_hash(token);
    let now = Utc::now().naive_utc();
    service
        .db(move |conn| Ok(db::invitations::find_open(conn, &hash, now)?))
        .await?
        .map(|(_, user)| user)
        .ok_or(Error::NotFound)
}

/// Accepts an invitation: the user's password is set and the user enabled, once and only
/// once. An unknown, used, revoked or expired link is `NotFound`.
pub async fn accept(
    service: &Service,
    token: &str,
    password: Password,
    origin: &Origin,
) -> Result<UserRecord, Error> {
    service.login_limiter.admit(origin.address)?;
    let user = open(service, token).await?;
    let hash_of_password = service.hasher.hash_password(&password).await?;
    let token_hash = login::session_hash(token);
    let actor = origin.actor(format!("user:{}", user.email));
    service
        .db(move |conn| {
            write_transaction(conn, |conn| -> Result<UserRecord, Error> {
                let now = Utc::now();
                let (invitation, user) =
                    db::invitations::find_open(conn, &token_hash, now.naive_utc())?
                        .ok_or(Error::NotFound)?;
                if !db::invitations::accept(conn, invitation.id, now.naive_utc())?
                    || user.status != UserStatus::Invited
                {
                    return Err(Error::NotFound);
                }
                db::users::update(
                    conn,
                    user.id,
                    &UserChanges {
                        status: Some(UserStatus::Enabled),
                        password_hash: Some(&hash_of_password),
                        updated_at: Some(now.naive_utc()),
                        ..UserChanges::default()
                    },
                )?;
                let id = user.public_id.clone().unwrap_or_default();
                let event =
                    Event::success(user.organization_id, AuditAction::InvitationAccepted, &id);
                audit::record(conn, &actor, event, now)?;
                Ok(UserRecord {
                    user: db::users::find(conn, user.id)?.ok_or(Error::NotFound)?,
                    organization: db::organizations::find(conn, user.organization_id)?,
                })
            })
        })
        .await
}
