//! API-key lifecycle: create (the secret is returned once, only its bcrypt hash is kept),
//! update, rotate with a grace period, revoke (final) and delete (revoke and hide). Every
//! action that ends tokens is announced on the change feed, so every instance refuses them.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;

use super::{Actor, Event, audit};
use crate::db::api_keys::{self, ApiKey, ApiKeyChanges, NewApiKey, NewApiKeySecret};
use crate::db::changes::{self, NewStateChange};
use crate::db::{DbConnection, write_transaction};
use crate::domain::{ClientId, ClientSecret, Environment, Expiry, KeyName, Metadata, ScopeSet};
use crate::error::ApiError;
use crate::tokens::Change;

/// How long a feed entry about a key's tokens must be kept: the longest token lifetime and
/// twice the largest leeway any instance can be configured with. A bound of the code, not of
/// the configuration of whoever makes the change, so a CLI with other settings than the
/// servers cannot shorten a revocation.
pub const MAX_TOKEN_WINDOW_SECONDS: i64 = 86_400 + 2 * 300;

pub struct NewKey {
    pub organization_id: i64,
    pub name: KeyName,
    pub environment: Environment,
    pub scopes: ScopeSet,
    pub expiry: Expiry,
    pub metadata: Metadata,
    pub created_by: Option<i64>,
}

pub struct CreatedKey {
    pub key: ApiKey,
    pub secret: ClientSecret,
}

fn insert_secret(
    conn: &mut DbConnection,
    key: &ApiKey,
    secret: &ClientSecret,
    hash: &str,
    now: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    api_keys::insert_secret(
        conn,
        &NewApiKeySecret {
            api_key_id: key.id,
            prefix: secret.prefix().as_str(),
            secret_hash: hash,
            created_at: now.naive_utc(),
            expires_at: None,
        },
    )
}

/// Creates a key with one secret. Runs bcrypt: call it off the async workers.
pub fn create(
    conn: &mut DbConnection,
    new: &NewKey,
    bcrypt_cost: u32,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<CreatedKey, ApiError> {
    let client_id = ClientId::generate();
    let secret = ClientSecret::generate(new.environment);
    let hash = bcrypt::hash(secret.expose(), bcrypt_cost).map_err(ApiError::internal)?;
    let scopes = new.scopes.to_string();
    let metadata = new.metadata.to_stored();
    let key = write_transaction(conn, |conn| -> Result<ApiKey, ApiError> {
        let key = api_keys::insert(
            conn,
            &NewApiKey {
                organization_id: new.organization_id,
                client_id: client_id.as_str(),
                name: new.name.as_str(),
                environment: new.environment.as_str(),
                scopes: &scopes,
                status: "enabled",
                expires_at: new.expiry.at().map(|t| t.naive_utc()),
                metadata: &metadata,
                created_by: new.created_by,
                created_at: now.naive_utc(),
                updated_at: now.naive_utc(),
                key_prefix: secret.prefix().as_str(),
            },
        )?;
        insert_secret(conn, &key, &secret, &hash, now)?;
        let event = Event {
            organization_id: Some(key.organization_id),
            action: "api_key.created",
            target: Some(client_id.as_str()),
            outcome: "success",
            details: json!({
                "name": key.name,
                "environment": key.environment,
                "scopes": scopes,
                "secret_prefix": secret.prefix(),
            }),
        };
        audit(conn, actor, event, now)?;
        Ok(key)
    })?;
    Ok(CreatedKey { key, secret })
}

pub struct KeyUpdate {
    pub name: Option<KeyName>,
    pub enabled: Option<bool>,
    pub metadata: Option<Metadata>,
}

/// Renames, disables or enables a key, or replaces its metadata. Disabling refuses the key's
/// tokens everywhere (the returned change applies it here at once).
pub fn update(
    conn: &mut DbConnection,
    key: &ApiKey,
    update: &KeyUpdate,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(ApiKey, Option<Change>), ApiError> {
    if key.status == "revoked" {
        return Err(ApiError::Conflict("a revoked key cannot be changed".into()));
    }
    let status = update
        .enabled
        .map(|e| if e { "enabled" } else { "disabled" });
    let metadata = update.metadata.as_ref().map(Metadata::to_stored);
    write_transaction(conn, |conn| {
        let changes = ApiKeyChanges {
            name: update.name.as_ref().map(KeyName::as_str),
            status,
            metadata: metadata.as_deref(),
            updated_at: Some(now.naive_utc()),
            deleted_at: None,
            key_prefix: None,
        };
        api_keys::update(conn, key.id, &changes)?;
        let disabled_now = status == Some("disabled") && key.status != "disabled";
        let change = if disabled_now {
            Some(refuse_tokens_issued_before(conn, &key.client_id, now)?)
        } else {
            None
        };
        let action = match (status, key.status.as_str()) {
            (Some("disabled"), "enabled") => "api_key.disabled",
            (Some("enabled"), "disabled") => "api_key.enabled",
            _ => "api_key.updated",
        };
        let changed: Vec<&str> = [
            update.name.as_ref().map(|_| "name"),
            status.map(|_| "status"),
            update.metadata.as_ref().map(|_| "metadata"),
        ]
        .into_iter()
        .flatten()
        .collect();
        let event = Event {
            organization_id: Some(key.organization_id),
            action,
            target: Some(&key.client_id),
            outcome: "success",
            details: json!({ "changed": changed }),
        };
        audit(conn, actor, event, now)?;
        let updated =
            api_keys::find_by_client_id(conn, &key.client_id)?.ok_or(ApiError::NotFound)?;
        Ok((updated, change))
    })
}

pub struct Rotated {
    pub key: ApiKey,
    pub secret: ClientSecret,
    /// When the previous secret stops working (None: it already has).
    pub previous_valid_until: Option<DateTime<Utc>>,
}

/// Longest grace period a rotation may give the old secret.
pub const MAX_GRACE_SECONDS: i64 = 7 * 86_400;

/// Issues a new secret; the old ones keep working for `grace_seconds` (0 to 7 days), then
/// fail with `invalid_client`. Runs bcrypt.
pub fn rotate(
    conn: &mut DbConnection,
    key: &ApiKey,
    grace_seconds: i64,
    bcrypt_cost: u32,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(Rotated, Change), ApiError> {
    if key.status == "revoked" {
        return Err(ApiError::Conflict("a revoked key cannot be rotated".into()));
    }
    let environment: Environment = key.environment.parse()?;
    let secret = ClientSecret::generate(environment);
    let hash = bcrypt::hash(secret.expose(), bcrypt_cost).map_err(ApiError::internal)?;
    let until = (grace_seconds > 0).then(|| now + Duration::seconds(grace_seconds));
    write_transaction(conn, |conn| {
        api_keys::retire_secrets(conn, key.id, now.naive_utc(), until.map(|t| t.naive_utc()))?;
        insert_secret(conn, key, &secret, &hash, now)?;
        let prefix = secret.prefix();
        let touched = ApiKeyChanges {
            updated_at: Some(now.naive_utc()),
            key_prefix: Some(prefix.as_str()),
            ..Default::default()
        };
        api_keys::update(conn, key.id, &touched)?;
        // Kept as long as anything verified before the rotation could still be remembered.
        let forget_until = now.timestamp() + MAX_TOKEN_WINDOW_SECONDS;
        let change = publish(
            conn,
            "secrets",
            &key.client_id,
            now.timestamp(),
            forget_until,
            now,
        )?;
        let event = Event {
            organization_id: Some(key.organization_id),
            action: "api_key.rotated",
            target: Some(&key.client_id),
            outcome: "success",
            details: json!({ "grace_period_seconds": grace_seconds, "secret_prefix": secret.prefix() }),
        };
        audit(conn, actor, event, now)?;
        let key = api_keys::find_by_client_id(conn, &key.client_id)?.ok_or(ApiError::NotFound)?;
        Ok((
            Rotated {
                key,
                secret,
                previous_valid_until: until,
            },
            change,
        ))
    })
}

/// Revokes a key: its secrets stop working, and every token it was issued is refused
/// everywhere within one feed interval (at once on this instance, via the returned change).
/// `None` when no such key exists (in `organization_id`, when one is given; the CLI acts on
/// any).
pub fn revoke(
    conn: &mut DbConnection,
    organization_id: Option<i64>,
    client_id: &str,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Option<(ApiKey, Change)>, ApiError> {
    write_transaction(conn, |conn| {
        let Some(key) = api_keys::find_by_client_id(conn, client_id)?.filter(|k| {
            organization_id.is_none_or(|org| k.organization_id == org) && k.deleted_at.is_none()
        }) else {
            return Ok(None);
        };
        Ok(Some(revoke_found(conn, &key, actor, now)?))
    })
}

/// Revokes a key already found (and authorised). Call inside a write transaction.
pub fn revoke_found(
    conn: &mut DbConnection,
    key: &ApiKey,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(ApiKey, Change), ApiError> {
    let changed = api_keys::revoke(conn, key.id, now.naive_utc())?;
    let change = refuse_all_tokens(conn, &key.client_id, now)?;
    let event = Event {
        organization_id: Some(key.organization_id),
        action: "api_key.revoked",
        target: Some(&key.client_id),
        outcome: if changed {
            "success"
        } else {
            "already_revoked"
        },
        details: json!({}),
    };
    audit(conn, actor, event, now)?;
    let key = api_keys::find_by_client_id(conn, &key.client_id)?.ok_or(ApiError::NotFound)?;
    Ok((key, change))
}

/// Deletes a key: revokes it and hides it from lists; the row and its audit trail stay.
pub fn delete(
    conn: &mut DbConnection,
    key: &ApiKey,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Change, ApiError> {
    write_transaction(conn, |conn| {
        let (_, change) = revoke_found(conn, key, actor, now)?;
        let hidden = ApiKeyChanges {
            deleted_at: Some(now.naive_utc()),
            updated_at: Some(now.naive_utc()),
            ..Default::default()
        };
        api_keys::update(conn, key.id, &hidden)?;
        let event = Event {
            organization_id: Some(key.organization_id),
            action: "api_key.deleted",
            target: Some(&key.client_id),
            outcome: "success",
            details: json!({}),
        };
        audit(conn, actor, event, now)?;
        Ok(change)
    })
}

fn publish(
    conn: &mut DbConnection,
    kind: &str,
    subject: &str,
    not_before: i64,
    expires_at: i64,
    now: DateTime<Utc>,
) -> diesel::QueryResult<Change> {
    let row = NewStateChange {
        kind,
        subject,
        not_before,
        expires_at,
        created_at: now.naive_utc(),
    };
    changes::publish(conn, &row)?;
    Ok(Change::from_feed(kind, subject, not_before, expires_at).expect("a kind keygate publishes"))
}

/// Publishes "refuse every token of this key", whatever its `iat` and whatever the issuing
/// instance's clock said: for final changes (revoke, delete).
pub fn refuse_all_tokens(
    conn: &mut DbConnection,
    client_id: &str,
    now: DateTime<Utc>,
) -> diesel::QueryResult<Change> {
    publish(
        conn,
        "client",
        client_id,
        i64::MAX,
        now.timestamp() + MAX_TOKEN_WINDOW_SECONDS,
        now,
    )
}

/// Publishes "refuse this key's tokens issued up to now", for changes after which the key
/// may get tokens again (disable, narrowed permissions). Token `iat` has one-second
/// resolution, so the cut is the next whole second: a token issued in the same second as the
/// change is refused too.
pub fn refuse_tokens_issued_before(
    conn: &mut DbConnection,
    client_id: &str,
    now: DateTime<Utc>,
) -> diesel::QueryResult<Change> {
    let not_before = now.timestamp() + 1;
    publish(
        conn,
        "client",
        client_id,
        not_before,
        now.timestamp() + MAX_TOKEN_WINDOW_SECONDS,
        now,
    )
}
