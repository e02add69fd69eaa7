//! One key: retrieve, update, revoke, rotate, delete.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::ApiKeyView;
use crate::auth::caller::{ApiKeysRead, ApiKeysWrite, Operator};
use crate::domain::{GracePeriod, KeyName, KeyStatus, Metadata, ValidationError};
use crate::error::ApiError;
use crate::routes::body::JsonBody;
use crate::routes::no_store;
use crate::service::api_keys::{self, KeyUpdate};
use crate::state::AppState;

pub async fn retrieve_api_key(
    operator: Operator<ApiKeysRead>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let record = api_keys::get(&state.service, &operator, &path).await?;
    Ok(HttpResponse::Ok().json(ApiKeyView::from(record)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateApiKeyRequest {
    name: Option<String>,
    status: Option<String>,
    metadata: Option<serde_json::Value>,
}

impl UpdateApiKeyRequest {
    fn parse(self) -> Result<KeyUpdate, ValidationError> {
        let update = KeyUpdate {
            name: self.name.as_deref().map(KeyName::parse).transpose()?,
            enabled: match self.status.as_deref().map(str::parse).transpose()? {
                None => None,
                Some(KeyStatus::Enabled) => Some(true),
                Some(KeyStatus::Disabled) => Some(false),
                Some(KeyStatus::Revoked) => {
                    return Err(ValidationError::new(
                        "status",
                        "must be enabled or disabled (revoke is final: POST .../revoke)",
                    ));
                }
            },
            metadata: self.metadata.as_ref().map(Metadata::parse).transpose()?,
        };
        if update.name.is_none() && update.enabled.is_none() && update.metadata.is_none() {
            return Err(ValidationError::new(
                "body",
                "nothing to change: give name, status or metadata",
            ));
        }
        Ok(update)
    }
}

pub async fn update_api_key(
    operator: Operator<ApiKeysWrite>,
    path: web::Path<String>,
    body: JsonBody<UpdateApiKeyRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let update = body.0.parse()?;
    let record = api_keys::update(&state.service, &operator, &path, update).await?;
    Ok(HttpResponse::Ok().json(ApiKeyView::from(record)))
}

pub async fn revoke_api_key(
    operator: Operator<ApiKeysWrite>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let record = api_keys::revoke(&state.service, &operator, &path).await?;
    Ok(HttpResponse::Ok().json(ApiKeyView::from(record)))
}

pub async fn delete_api_key(
    operator: Operator<ApiKeysWrite>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    api_keys::delete(&state.service, &operator, &path).await?;
    Ok(HttpResponse::Ok().json(json!({ "deleted": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateApiKeyRequest {
    #[serde(default)]
    grace_period_seconds: i64,
}

#[derive(Serialize)]
struct RotatedApiKey {
    #[serde(flatten)]
    key: ApiKeyView,
    /// Shown this once.
    client_secret: String,
    /// When the previous secret stops working; null when it already has.
    previous_secret_expires_at: Option<DateTime<Utc>>,
}

pub async fn rotate_api_key(
    operator: Operator<ApiKeysWrite>,
    path: web::Path<String>,
    body: JsonBody<RotateApiKeyRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let grace = GracePeriod::seconds(body.0.grace_period_seconds)?;
    let rotated = api_keys::rotate(&state.service, &operator, &path, grace).await?;
    Ok(no_store(HttpResponse::Ok()).json(RotatedApiKey {
        key: ApiKeyView::from(rotated.record),
        client_secret: rotated.secret.expose().to_owned(),
        previous_secret_expires_at: rotated.previous_valid_until,
    }))
}
