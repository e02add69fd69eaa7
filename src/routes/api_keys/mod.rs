//! `/v1/api-keys`: the management API for keys.

pub(crate) mod create;
pub(crate) mod list;
pub(crate) mod manage;

pub use create::create_api_key;
pub use list::list_api_keys;
pub use manage::{
    delete_api_key, retrieve_api_key, revoke_api_key, rotate_api_key, update_api_key,
};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{Environment, KeyStatus, Metadata, ScopeSet};
use crate::service::api_keys::KeyRecord;

/// An API key as the management API shows it: never a secret, only its public prefix.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = ApiKey)]
pub struct ApiKeyView {
    #[schema(example = "kgc_8fK2mQ9xL3aBk2Pq7Rt1")]
    pub client_id: String,
    #[schema(example = "Billing sync")]
    pub name: String,
    /// The public start of the current secret.
    #[schema(example = "kgs_live_8fK2mQ9x")]
    pub key_prefix: Option<String>,
    pub environment: Environment,
    pub scopes: ScopeSet,
    pub status: KeyStatus,
    /// Only traded for tokens at /v1/token: never accepted as a bearer credential itself.
    pub token_only: bool,
    /// Gets a single-use refresh token beside each access token.
    pub refresh_tokens: bool,
    pub metadata: Metadata,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The creator's email; null for keys made by the CLI without an owner.
    pub created_by: Option<String>,
}

impl From<KeyRecord> for ApiKeyView {
    fn from(KeyRecord { key, created_by }: KeyRecord) -> ApiKeyView {
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
            token_only: key.token_only,
            refresh_tokens: key.refresh_tokens,
        }
    }
}
