//! API keys: create (the secret is returned once, only its bcrypt hash is kept), read, update,
//! rotate with a grace period, revoke (final) and delete (revoke and hide). Every action that
//! ends tokens publishes a cut on the change feed, so every instance refuses them.

use chrono::{DateTime, Utc};

use super::audit::{self, Event};
use super::policy::{self, KeyAction};
use super::webhooks::{self, Outbox};
use super::{Caller, Error, Service, refresh};
use crate::db::api_keys::{self, ApiKey, ApiKeyChanges, NewApiKey, NewApiKeySecret};
use crate::db::organizations::{Organization, is_deployment_organization};
use crate::db::users::User;
use crate::db::{self, DbConnection, write_transaction};
use crate::domain::{
    AuditAction, ClientId, ClientSecret, Email, Environment, EventType, Expiry, GracePeriod,
    KeyName, KeyStatus, Metadata, Outcome, ScopeSet, ValidationError,
};
use crate::tokens::{Change, MAX_TOKEN_WINDOW_SECONDS};

/// A key as front ends show it: the row and its creator's email.
#[derive(Clone, Debug)]
pub struct KeyRecord {
    pub key: ApiKey,
    pub created_by: Option<String>,
}

/// The scopes a new key asks for.
#[derive(Clone, Debug)]
pub enum ScopeChoice {
    Listed(ScopeSet),
    /// Every `:read` API scope the caller (and the owner) holds.
    ReadOnly,
    /// Every API scope the caller (and the owner) holds.
    FullAccess,
}

/// Whose key a new key is: it acts with at most its owner's permissions.
#[derive(Clone, Debug)]
pub enum KeyOwner {
    /// The caller's own owner (the user, or the calling key's creator).
    Caller,
    /// A user of the organization, by email.
    User(Email),
    /// The organization's first enabled administrator; none while it has none.
    FirstAdministrator,
}

pub struct NewKey {
    pub organization_id: i64,
    pub name: KeyName,
    pub environment: Environment,
    pub scopes: ScopeChoice,
    pub expiry: Expiry,
    pub metadata: Metadata,
    pub owner: KeyOwner,
    /// `false` makes the key disabled from the start: it exists, but gets no token until
    /// enabled.
    pub enabled: bool,
    /// Only ever traded for tokens: never accepted as a bearer credential itself.
    pub token_only: bool,
    /// Gets a refresh token beside each access token.
    pub refresh_tokens: bool,
}

pub struct CreatedKey {
    pub record: KeyRecord,
    pub secret: ClientSecret,
}

/// Creates a key with one secret, shown only in the answer.
pub async fn create(service: &Service, caller: &Caller, new: NewKey) -> Result<CreatedKey, Error> {
    policy::require(caller, crate::domain::ManagementPermission::ApiKeysWrite)?;
    if !policy::reaches(caller, new.organization_id) {
        return Err(Error::NotFound);
    }
    let (organization, owner) = {
        let (organization_id, owner, caller_owner) =
            (new.organization_id, new.owner.clone(), caller.owner_user_id);
        service
            .db(move |conn| find_owner(conn, organization_id, &owner, caller_owner))
            .await?
    };
    let owner_holds = owner
        .as_ref()
        .map(|o| policy::permissions_of(o, &organization, &service.catalog));
    let scopes = chosen_scopes(
        service,
        caller,
        new.scopes,
        owner_holds.as_ref(),
        &organization,
    )?;
    policy::check_new_key(
        caller,
        &scopes,
        new.environment,
        &organization,
        owner.as_ref().zip(owner_holds.as_ref()),
    )?;

    let secret = ClientSecret::generate(new.environment);
    let hash = service.hasher.hash_secret(&secret).await?;
    let client_id = ClientId::generate();
    let actor = caller.actor.clone();
    let prefix = secret.prefix();
    let outbox = service.outbox.clone();
    let record = service
        .db(move |conn| {
            write_transaction(conn, |conn| -> Result<KeyRecord, Error> {
                let now = Utc::now();
                let stored_scopes = scopes.to_string();
                let key = api_keys::insert(
                    conn,
                    &NewApiKey {
                        organization_id: organization.id,
                        client_id: client_id.as_str(),
                        name: new.name.as_str(),
                        environment: new.environment,
                        scopes: &stored_scopes,
                        status: if new.enabled {
                            KeyStatus::Enabled
                        } else {
                            KeyStatus::Disabled
                        },
                        expires_at: new.expiry.at().map(|t| t.naive_utc()),
                        metadata: &new.metadata.to_stored(),
                        created_by: owner.as_ref().map(|o| o.id),
                        created_at: now.naive_utc(),
                        updated_at: now.naive_utc(),
                        key_prefix: prefix.as_str(),
                        token_only: new.token_only,
                        refresh_tokens: new.refresh_tokens,
                    },
                )?;
                insert_secret(conn, &key, prefix.as_str(), &hash, now)?;
                let event = Event::success(
                    key.organization_id,
                    AuditAction::ApiKeyCreated,
                    client_id.as_str(),
                )
                .with(serde_json::json!({
                    "name": key.name,
                    "environment": key.environment,
                    "status": key.status,
                    "scopes": stored_scopes,
                    "key_prefix": prefix,
                }));
                audit::record(conn, &actor, event, now)?;
                webhooks::emit_key_event(conn, &outbox, &key, EventType::ApiKeyCreated, now)?;
                Ok(KeyRecord {
                    key,
                    created_by: owner.map(|o| o.email),
                })
            })
        })
        .await?;
    Ok(CreatedKey { record, secret })
}

/// The scopes a new key asks for: the listed ones (each in the catalog), or every (read) API
/// scope that both the caller and the owner hold.
fn chosen_scopes(
    service: &Service,
    caller: &Caller,
    choice: ScopeChoice,
    owner_holds: Option<&ScopeSet>,
    organization: &Organization,
) -> Result<ScopeSet, Error> {
    let mut holder = match owner_holds {
        Some(held) => caller.permissions.intersection(held),
        None => caller.permissions.clone(),
    };
    // "Read only" and "full access" of a key outside the deployment's own organization leave
    // out what only that organization may hold.
    if !is_deployment_organization(organization) {
        holder = holder.without_deployment_wide();
    }
    let scopes = match choice {
        ScopeChoice::Listed(scopes) => {
            service.catalog.check(&scopes)?;
            scopes
        }
        ScopeChoice::ReadOnly => service.catalog.read_only(&holder),
        ScopeChoice::FullAccess => service.catalog.full_access(&holder),
    };
    if scopes.is_empty() {
        return Err(ValidationError::new("scopes", "the key would have no scopes").into());
    }
    Ok(scopes)
}

/// The organization and the owner a new key will have.
fn find_owner(
    conn: &mut DbConnection,
    organization_id: i64,
    owner: &KeyOwner,
    caller_owner: Option<i64>,
) -> Result<(Organization, Option<User>), Error> {
    let organization = db::organizations::find(conn, organization_id)?;
    let user = match owner {
        KeyOwner::Caller => match caller_owner {
            Some(id) => Some(db::users::find(conn, id)?.ok_or(Error::NotFound)?),
            None => None,
        },
        KeyOwner::User(email) => Some(
            db::users::find_by_email(conn, email.as_str())?
                .filter(|u| u.organization_id == organization.id)
                .ok_or_else(|| {
                    ValidationError::new(
                        "owner",
                        format!("no user {email} in organization {}", organization.name),
                    )
                })?,
        ),
        KeyOwner::FirstAdministrator => db::users::first_admin(conn, organization.id)?,
    };
    Ok((organization, user))
}

fn insert_secret(
    conn: &mut DbConnection,
    key: &ApiKey,
    prefix: &str,
    hash: &str,
    now: chrono::DateTime<Utc>,
) -> diesel::QueryResult<()> {
    api_keys::insert_secret(
        conn,
        &NewApiKeySecret {
            api_key_id: key.id,
            prefix,
            secret_hash: hash,
            created_at: now.naive_utc(),
            expires_at: None,
        },
    )
}

/// The key `client_id` if the caller may take `action` on it. Anything the caller may not see
/// (and anything that is not a client_id) is "not found".
async fn find(
    service: &Service,
    caller: &Caller,
    client_id: &str,
    action: KeyAction,
) -> Result<ApiKey, Error> {
    policy::require(caller, action.permission())?;
    let client_id = ClientId::parse(client_id).map_err(|_| Error::NotFound)?;
    let key = service
        .db(move |conn| Ok(api_keys::find_by_client_id(conn, client_id.as_str())?))
        .await?
        .ok_or(Error::NotFound)?;
    policy::check_key_action(caller, &key, action)?;
    Ok(key)
}

/// The key as stored now, inside a write transaction; a revoked key is final.
fn reread_changeable(conn: &mut DbConnection, key: &ApiKey, what: &str) -> Result<ApiKey, Error> {
    let current = api_keys::find_by_client_id(conn, &key.client_id)?.ok_or(Error::NotFound)?;
    if current.status == KeyStatus::Revoked {
        return Err(Error::Conflict(format!("a revoked key cannot be {what}")));
    }
    Ok(current)
}

fn record_of(conn: &mut DbConnection, key: ApiKey) -> diesel::QueryResult<KeyRecord> {
    let created_by = match key.created_by {
        Some(id) => db::users::emails(conn, &[id])?
            .into_iter()
            .next()
            .map(|(_, email)| email),
        None => None,
    };
    Ok(KeyRecord { key, created_by })
}

/// One key.
pub async fn get(service: &Service, caller: &Caller, client_id: &str) -> Result<KeyRecord, Error> {
    let key = find(service, caller, client_id, KeyAction::Read).await?;
    service.db(move |conn| Ok(record_of(conn, key)?)).await
}

/// A secret of a key that still works: the current one, and those in their grace period.
#[derive(Clone, Debug)]
pub struct SecretRecord {
    /// The public start of the secret.
    pub prefix: String,
    pub created_at: DateTime<Utc>,
    /// When a rotated-out secret stops working; `None` for the current one.
    pub expires_at: Option<DateTime<Utc>>,
}

/// The key's secrets that still work, newest first (never their hashes).
pub async fn secrets(
    service: &Service,
    caller: &Caller,
    client_id: &str,
) -> Result<Vec<SecretRecord>, Error> {
    let key = find(service, caller, client_id, KeyAction::Read).await?;
    if key.status == KeyStatus::Revoked {
        return Ok(Vec::new());
    }
    let now = Utc::now().naive_utc();
    let rows = service
        .db(move |conn| Ok(api_keys::live_secrets(conn, key.id, now)?))
        .await?;
    Ok(rows
        .into_iter()
        .map(|s| SecretRecord {
            prefix: s.prefix,
            created_at: s.created_at.and_utc(),
            expires_at: s.expires_at.map(|t| t.and_utc()),
        })
        .collect())
}

pub struct KeyUpdate {
    pub name: Option<KeyName>,
    pub enabled: Option<bool>,
    pub metadata: Option<Metadata>,
    pub refresh_tokens: Option<bool>,
}

/// Renames, disables or enables a key, replaces its metadata, or turns its refresh tokens on
/// or off. Disabling refuses the key's tokens everywhere; turning refresh tokens off ends
/// those handed out.
pub async fn update(
    service: &Service,
    caller: &Caller,
    client_id: &str,
    update: KeyUpdate,
) -> Result<KeyRecord, Error> {
    let action = match update.enabled {
        Some(true) => KeyAction::Enable,
        Some(false) => KeyAction::Disable,
        None => KeyAction::Update,
    };
    let key = find(service, caller, client_id, action).await?;
    let actor = caller.actor.clone();
    let outbox = service.outbox.clone();
    let (record, changes) = service
        .db(move |conn| {
            write_transaction(conn, |conn| -> Result<_, Error> {
                let key = reread_changeable(conn, &key, "changed")?;
                let refresh_tokens = update.refresh_tokens.filter(|on| *on != key.refresh_tokens);
                let now = Utc::now();
                let status = update.enabled.map(|enabled| {
                    if enabled {
                        KeyStatus::Enabled
                    } else {
                        KeyStatus::Disabled
                    }
                });
                let metadata = update.metadata.as_ref().map(Metadata::to_stored);
                let changes = ApiKeyChanges {
                    name: update.name.as_ref().map(KeyName::as_str),
                    status,
                    metadata: metadata.as_deref(),
                    updated_at: Some(now.naive_utc()),
                    key_prefix: None,
                    refresh_tokens,
                };
                if !api_keys::update(conn, key.id, &changes)? {
                    return Err(Error::Conflict("a revoked key cannot be changed".into()));
                }
                let action = match (status, key.status) {
                    (Some(KeyStatus::Disabled), KeyStatus::Enabled) => AuditAction::ApiKeyDisabled,
                    (Some(KeyStatus::Enabled), KeyStatus::Disabled) => AuditAction::ApiKeyEnabled,
                    _ => AuditAction::ApiKeyUpdated,
                };
                let mut changes = Vec::new();
                if action == AuditAction::ApiKeyDisabled {
                    changes.push(cut_tokens(conn, &key, Cut::IssuedUntilNow)?);
                }
                if refresh_tokens.is_some() {
                    changes.push(forget_verified_secrets(conn, &key)?);
                }
                let changed: Vec<&str> = [
                    update.name.as_ref().map(|_| "name"),
                    status.map(|_| "status"),
                    update.metadata.as_ref().map(|_| "metadata"),
                    update.refresh_tokens.map(|_| "refresh_tokens"),
                ]
                .into_iter()
                .flatten()
                .collect();
                let event = Event::success(key.organization_id, action, &key.client_id)
                    .with(serde_json::json!({ "changed": changed }));
                audit::record(conn, &actor, event, now)?;
                let updated =
                    api_keys::find_by_client_id(conn, &key.client_id)?.ok_or(Error::NotFound)?;
                let event_type = match action {
                    AuditAction::ApiKeyDisabled => EventType::ApiKeyDisabled,
                    AuditAction::ApiKeyEnabled => EventType::ApiKeyEnabled,
                    _ => EventType::ApiKeyUpdated,
                };
                webhooks::emit_key_event(conn, &outbox, &updated, event_type, now)?;
                Ok((record_of(conn, updated)?, changes))
            })
        })
        .await?;
    service.apply(&changes);
    Ok(record)
}

pub struct Rotated {
    pub record: KeyRecord,
    pub secret: ClientSecret,
    /// When the previous secret stops working (`None`: it already has).
    pub previous_valid_until: Option<chrono::DateTime<Utc>>,
}

/// Issues a new secret; the old ones keep working for the grace period, then fail with
/// `invalid_client`.
pub async fn rotate(
    service: &Service,
    caller: &Caller,
    client_id: &str,
    grace: GracePeriod,
) -> Result<Rotated, Error> {
    let key = find(service, caller, client_id, KeyAction::Rotate).await?;
    if key.status == KeyStatus::Revoked {
        return Err(Error::Conflict("a revoked key cannot be rotated".into()));
    }
    let secret = ClientSecret::generate(key.environment);
    let hash = service.hasher.hash_secret(&secret).await?;
    let actor = caller.actor.clone();
    let prefix = secret.prefix();
    let outbox = service.outbox.clone();
    let (record, until, change) = service
        .db(move |conn| {
            write_transaction(conn, |conn| -> Result<_, Error> {
                let key = reread_changeable(conn, &key, "rotated")?;
                let now = Utc::now();
                let until = grace.ends(now);
                api_keys::retire_secrets(
                    conn,
                    key.id,
                    now.naive_utc(),
                    until.map(|t| t.naive_utc()),
                )?;
                insert_secret(conn, &key, prefix.as_str(), &hash, now)?;
                let touched = ApiKeyChanges {
                    updated_at: Some(now.naive_utc()),
                    key_prefix: Some(prefix.as_str()),
                    ..Default::default()
                };
                if !api_keys::update(conn, key.id, &touched)? {
                    return Err(Error::Conflict("a revoked key cannot be rotated".into()));
                }
                let change = forget_verified_secrets(conn, &key)?;
                let event = Event::success(
                    key.organization_id,
                    AuditAction::ApiKeyRotated,
                    &key.client_id,
                )
                .with(serde_json::json!({
                    "grace_period_seconds": grace.as_seconds(),
                    "key_prefix": prefix,
                }));
                audit::record(conn, &actor, event, now)?;
                let key =
                    api_keys::find_by_client_id(conn, &key.client_id)?.ok_or(Error::NotFound)?;
                webhooks::emit_key_event(conn, &outbox, &key, EventType::ApiKeyRotated, now)?;
                Ok((record_of(conn, key)?, until, change))
            })
        })
        .await?;
    service.apply(&[change]);
    Ok(Rotated {
        record,
        secret,
        previous_valid_until: until,
    })
}

/// Revokes a key: its secrets stop working, and every token it was issued is refused
/// everywhere within one feed interval (at once on this instance).
pub async fn revoke(
    service: &Service,
    caller: &Caller,
    client_id: &str,
) -> Result<KeyRecord, Error> {
    let key = find(service, caller, client_id, KeyAction::Revoke).await?;
    let actor = caller.actor.clone();
    let outbox = service.outbox.clone();
    let (record, change) = service
        .db(move |conn| {
            write_transaction(conn, |conn| -> Result<_, Error> {
                let change = revoke_in(conn, &key, &actor, &outbox)?;
                let key =
                    api_keys::find_by_client_id(conn, &key.client_id)?.ok_or(Error::NotFound)?;
                Ok((record_of(conn, key)?, change))
            })
        })
        .await?;
    service.apply(&[change]);
    Ok(record)
}

/// Deletes a key: revokes it and hides it from lists; the row and its audit trail stay.
pub async fn delete(service: &Service, caller: &Caller, client_id: &str) -> Result<(), Error> {
    let key = find(service, caller, client_id, KeyAction::Delete).await?;
    let actor = caller.actor.clone();
    let outbox = service.outbox.clone();
    let change = service
        .db(move |conn| {
            write_transaction(conn, |conn| -> Result<_, Error> {
                let change = revoke_in(conn, &key, &actor, &outbox)?;
                let now = Utc::now();
                api_keys::hide(conn, key.id, now.naive_utc())?;
                let hidden =
                    api_keys::find_by_client_id(conn, &key.client_id)?.ok_or(Error::NotFound)?;
                webhooks::emit_key_event(conn, &outbox, &hidden, EventType::ApiKeyDeleted, now)?;
                let event = Event::success(
                    key.organization_id,
                    AuditAction::ApiKeyDeleted,
                    &key.client_id,
                );
                audit::record(conn, &actor, event, now)?;
                Ok(change)
            })
        })
        .await?;
    service.apply(&[change]);
    Ok(())
}

/// Revokes a key inside a write transaction.
pub(super) fn revoke_in(
    conn: &mut DbConnection,
    key: &ApiKey,
    actor: &super::Actor,
    outbox: &Outbox,
) -> Result<Change, Error> {
    let now = Utc::now();
    let changed = api_keys::revoke(conn, key.id, now.naive_utc())?;
    if changed {
        let revoked = api_keys::find_by_client_id(conn, &key.client_id)?.ok_or(Error::NotFound)?;
        webhooks::emit_key_event(conn, outbox, &revoked, EventType::ApiKeyRevoked, now)?;
    }
    let change = cut_tokens(conn, key, Cut::Every)?;
    let mut event = Event::success(
        key.organization_id,
        AuditAction::ApiKeyRevoked,
        &key.client_id,
    );
    if !changed {
        event.outcome = Outcome::AlreadyRevoked;
    }
    audit::record(conn, actor, event, now)?;
    Ok(change)
}

/// Which of a key's tokens a change refuses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cut {
    /// Every token, whatever its `iat` and whatever the issuing instance's clock said: for
    /// final changes (revoke, delete).
    Every,
    /// Tokens issued up to this change, for changes after which the key may get tokens again
    /// (disable, narrowed permissions).
    IssuedUntilNow,
}

/// Publishes a cut of a key's tokens, and ends its refresh tokens. Call inside the write transaction that makes the change,
/// after its other writes: the cut's time is read after the transaction holds the key's row
/// and the feed, so every token request that judged the key as it was (holding its row, see
/// the grant) and every feed reader that has not seen the change began before it. Tokens
/// carry whole seconds: the cut is the next one, so a token issued in the same second as the
/// change is refused too.
pub(super) fn cut_tokens(
    conn: &mut DbConnection,
    key: &ApiKey,
    cut: Cut,
) -> diesel::QueryResult<Change> {
    let client_id = key.client_id.as_str();
    refresh::end_for_key(conn, key.id)?;
    db::changes::lock(conn)?;
    let now = Utc::now();
    let change = Change::Client {
        client_id: client_id.to_owned(),
        not_before: match cut {
            Cut::Every => i64::MAX,
            Cut::IssuedUntilNow => now.timestamp() + 1,
        },
        expires_at: now.timestamp() + MAX_TOKEN_WINDOW_SECONDS,
    };
    db::changes::publish(conn, &change, now.naive_utc())?;
    Ok(change)
}

/// Publishes that a key's secrets (or what its secret gets) changed, so that every instance
/// verifies them again, and ends its refresh tokens.
fn forget_verified_secrets(conn: &mut DbConnection, key: &ApiKey) -> diesel::QueryResult<Change> {
    let client_id = key.client_id.as_str();
    refresh::end_for_key(conn, key.id)?;
    db::changes::lock(conn)?;
    let now = Utc::now();
    let change = Change::Secrets {
        client_id: client_id.to_owned(),
        changed_at: now.timestamp(),
        // Kept as long as anything verified before the rotation could still be remembered.
        expires_at: now.timestamp() + MAX_TOKEN_WINDOW_SECONDS,
    };
    db::changes::publish(conn, &change, now.naive_utc())?;
    Ok(change)
}

/// The key behind an access token, read now: `/v1/me` refuses a key revoked or disabled a
/// moment ago, before the change feed says so.
pub async fn of_token(service: &Service, client_id: &str) -> Result<ApiKey, Error> {
    let client_id = client_id.to_owned();
    service
        .db(move |conn| Ok(api_keys::find_by_client_id(conn, &client_id)?))
        .await?
        .filter(|key| key.status == KeyStatus::Enabled && key.deleted_at.is_none())
        .ok_or(Error::InvalidToken("the access token has been revoked"))
}
