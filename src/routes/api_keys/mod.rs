//! `/v1/api-keys`: the management API for keys (seeds 000, 002, 003).

pub mod counts;
mod create;
mod list;
mod manage;

pub use create::create_api_key;
pub use list::list_api_keys;
pub use manage::{
    delete_api_key, retrieve_api_key, revoke_api_key, rotate_api_key, update_api_key,
};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::auth::caller::Caller;
use crate::db::{self, DbConnection, api_keys::ApiKey};
use crate::domain::{ClientId, Metadata, ScopeSet};
use crate::error::ApiError;
use crate::state::AppState;

/// An API key as the management API shows it: never a secret, only its public prefix.
#[derive(Serialize)]
pub struct ApiKeyView {
    pub client_id: String,
    pub name: String,
    pub key_prefix: Option<String>,
    pub environment: String,
    pub scopes: ScopeSet,
    pub status: String,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The creator's email; null for keys made by the CLI without an owner.
    pub created_by: Option<String>,
}

/// The view of a key whose creator's email is known.
pub fn view_with_creator(key: ApiKey, created_by: Option<String>) -> ApiKeyView {
    ApiKeyView {
        key_prefix: Some(key.key_prefix).filter(|p| !p.is_empty()),
        created_by,
        scopes: ScopeSet::from_stored(&key.scopes),
        metadata: Metadata::from_stored(&key.metadata),
        created_at: key.created_at.and_utc(),
        last_used_at: key.last_used_at.map(|t| t.and_utc()),
        expires_at: key.expires_at.map(|t| t.and_utc()),
        revoked_at: key.revoked_at.map(|t| t.and_utc()),
        client_id: key.client_id,
        name: key.name,
        environment: key.environment,
        status: key.status,
    }
}

/// The view of one key, reading its creator's email.
pub fn view(conn: &mut DbConnection, key: ApiKey) -> diesel::QueryResult<ApiKeyView> {
    let email = match key.created_by {
        Some(id) => db::users::emails(conn, &[id])?
            .into_iter()
            .next()
            .map(|(_, email)| email),
        None => None,
    };
    Ok(view_with_creator(key, email))
}

/// The key `client_id` if the caller may act on it; 404 otherwise, so that keys of other
/// organizations (or colleagues', without `api_keys:manage`) are not even confirmed to exist.
pub async fn find_for(
    state: &AppState,
    caller: &Caller,
    client_id: &str,
) -> Result<ApiKey, ApiError> {
    // Anything that is not a client_id names no key (and never reaches the database).
    let client_id = ClientId::parse(client_id).map_err(|_| ApiError::NotFound)?;
    let key = db::run(&state.pool, move |conn| {
        Ok(db::api_keys::find_by_client_id(conn, client_id.as_str())?)
    })
    .await?;
    key.filter(|k| k.deleted_at.is_none() && caller.may_act_on(k))
        .ok_or(ApiError::NotFound)
}
