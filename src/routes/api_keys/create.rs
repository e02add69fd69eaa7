//! `POST /v1/api-keys`: a new key, its secret shown once.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::ApiKeyView;
use crate::auth::caller::{ApiKeysWrite, Operator};
use crate::domain::{Environment, Expiry, KeyName, Metadata, ScopeSet, ValidationError};
use crate::error::ApiError;
use crate::routes::body::JsonBody;
use crate::routes::no_store;
use crate::service::api_keys::{self, KeyOwner, NewKey, ScopeChoice};
use crate::service::policy;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    name: String,
    scopes: Option<Vec<String>>,
    #[serde(default)]
    read_only: bool,
    #[serde(default)]
    full_access: bool,
    environment: Option<String>,
    expires_on: Option<String>,
    expires_in_days: Option<u64>,
    metadata: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct CreatedApiKey {
    #[serde(flatten)]
    key: ApiKeyView,
    /// Shown this once; keygate keeps only its bcrypt hash.
    client_secret: String,
}

impl CreateApiKeyRequest {
    /// The key asked for, in the caller's organization.
    fn parse(self, organization_id: i64) -> Result<NewKey, ValidationError> {
        let now = Utc::now();
        let name = KeyName::parse(&self.name)?;
        let environment = match self.environment {
            Some(text) => text.parse()?,
            None => Environment::Live,
        };
        let scopes = match (self.scopes, self.read_only, self.full_access) {
            (Some(list), false, false) => ScopeChoice::Listed(
                ScopeSet::from_items(list.iter().map(String::as_str))
                    .map_err(|e| ValidationError::new("scopes", e.message))?,
            ),
            (None, true, false) => ScopeChoice::ReadOnly,
            (None, false, true) => ScopeChoice::FullAccess,
            _ => {
                return Err(ValidationError::new(
                    "scopes",
                    "give exactly one of scopes, read_only: true, full_access: true",
                ));
            }
        };
        let expiry = match (self.expires_on, self.expires_in_days) {
            (Some(_), Some(_)) => {
                return Err(ValidationError::new(
                    "expires_on",
                    "give expires_on or expires_in_days, not both",
                ));
            }
            (Some(date), None) => Expiry::parse_date(&date, now)?,
            (None, Some(days)) => Expiry::in_days(days, now)?,
            (None, None) => Expiry::never(),
        };
        let metadata = match &self.metadata {
            Some(value) => Metadata::parse(value)?,
            None => Metadata::default(),
        };
        Ok(NewKey {
            organization_id,
            name,
            environment,
            scopes,
            expiry,
            metadata,
            owner: KeyOwner::Caller,
        })
    }
}

pub async fn create_api_key(
    operator: Operator<ApiKeysWrite>,
    body: JsonBody<CreateApiKeyRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let new = body.0.parse(policy::home_organization(&operator)?)?;
    let created = api_keys::create(&state.service, &operator, new).await?;
    let key = ApiKeyView::from(created.record);
    Ok(no_store(HttpResponse::Created())
        .insert_header((header::LOCATION, format!("/v1/api-keys/{}", key.client_id)))
        .json(CreatedApiKey {
            key,
            client_secret: created.secret.expose().to_owned(),
        }))
}
