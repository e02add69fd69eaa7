//! API-key lifecycle: create (the secret is returned once, only its bcrypt hash is kept) and
//! revoke (final, and announced on the change feed so every instance refuses the key's
//! tokens at once).

use chrono::{DateTime, Utc};
use diesel::Connection;
use serde_json::json;

use super::{Actor, Event, audit};
use crate::db::DbConnection;
use crate::db::api_keys::{self, ApiKey, NewApiKey, NewApiKeySecret};
use crate::db::changes::{self, NewStateChange};
use crate::domain::{ClientId, ClientSecret, Environment, Expiry, KeyName, ScopeSet};
use crate::error::ApiError;

pub struct NewKey {
    pub organization_id: i64,
    pub name: KeyName,
    pub environment: Environment,
    pub scopes: ScopeSet,
    pub expiry: Expiry,
    pub created_by: Option<i64>,
}

pub struct CreatedKey {
    pub key: ApiKey,
    pub secret: ClientSecret,
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
    let key = conn.transaction::<_, ApiError, _>(|conn| {
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
                metadata: "{}",
                created_by: new.created_by,
                created_at: now.naive_utc(),
                updated_at: now.naive_utc(),
            },
        )?;
        api_keys::insert_secret(
            conn,
            &NewApiKeySecret {
                api_key_id: key.id,
                prefix: secret.prefix().as_str(),
                secret_hash: &hash,
                created_at: now.naive_utc(),
                expires_at: None,
            },
        )?;
        audit(
            conn,
            actor,
            Event {
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
            },
            now,
        )?;
        Ok(key)
    })?;
    Ok(CreatedKey { key, secret })
}

/// Revokes a key: its secrets stop working, and tokens it was issued are refused everywhere
/// within one feed interval (at once on this instance, via the returned change). `None` when
/// no such key exists (in `organization_id`, when one is given; the CLI acts on any).
pub fn revoke(
    conn: &mut DbConnection,
    organization_id: Option<i64>,
    client_id: &str,
    token_window_seconds: i64,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Option<(ApiKey, crate::tokens::Change)>, ApiError> {
    conn.transaction::<_, ApiError, _>(|conn| {
        let Some(key) = api_keys::find_by_client_id(conn, client_id)?.filter(|k| {
            organization_id.is_none_or(|org| k.organization_id == org) && k.deleted_at.is_none()
        }) else {
            return Ok(None);
        };
        let changed = api_keys::revoke(conn, key.id, now.naive_utc())?;
        let change = refuse_tokens_issued_before(conn, client_id, token_window_seconds, now)?;
        audit(
            conn,
            actor,
            Event {
                organization_id: Some(key.organization_id),
                action: "api_key.revoked",
                target: Some(client_id),
                outcome: if changed {
                    "success"
                } else {
                    "already_revoked"
                },
                details: json!({}),
            },
            now,
        )?;
        let key = api_keys::find_by_client_id(conn, client_id)?.unwrap_or(key);
        Ok(Some((key, change)))
    })
}

/// Publishes "refuse this key's tokens issued up to now". Token `iat` has one-second
/// resolution, so the cut is the next whole second: a token issued in the same second as
/// the change is refused too.
pub fn refuse_tokens_issued_before(
    conn: &mut DbConnection,
    client_id: &str,
    token_window_seconds: i64,
    now: DateTime<Utc>,
) -> diesel::QueryResult<crate::tokens::Change> {
    let not_before = now.timestamp() + 1;
    let expires_at = not_before + token_window_seconds;
    changes::publish(
        conn,
        &NewStateChange {
            kind: "client",
            subject: client_id,
            not_before,
            expires_at,
            created_at: now.naive_utc(),
        },
    )?;
    Ok(crate::tokens::Change::Client {
        client_id: client_id.to_owned(),
        not_before,
        expires_at,
    })
}
