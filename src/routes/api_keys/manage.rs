//! One key: retrieve, update, revoke, rotate, delete.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{ApiKeyView, find_for, view};
use crate::auth::caller::{ApiKeysRead, ApiKeysWrite, Operator};
use crate::db;
use crate::domain::{KeyName, Metadata, ValidationError};
use crate::error::ApiError;
use crate::lifecycle::api_keys::{self, KeyUpdate, MAX_GRACE_SECONDS};
use crate::routes::body::JsonBody;
use crate::routes::no_store;
use crate::state::AppState;

pub async fn retrieve_api_key(
    operator: Operator<ApiKeysRead>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let key = find_for(&state, &operator, &path).await?;
    let view = db::run(&state.pool, move |conn| Ok(view(conn, key)?)).await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateApiKeyRequest {
    name: Option<String>,
    status: Option<String>,
    metadata: Option<serde_json::Value>,
}

pub async fn update_api_key(
    operator: Operator<ApiKeysWrite>,
    path: web::Path<String>,
    body: JsonBody<UpdateApiKeyRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request = body.0;
    let update = KeyUpdate {
        name: request.name.as_deref().map(KeyName::parse).transpose()?,
        enabled: match request.status.as_deref() {
            None => None,
            Some("enabled") => Some(true),
            Some("disabled") => Some(false),
            Some(_) => {
                return Err(ValidationError::new(
                    "status",
                    "must be enabled or disabled (revoke is final: POST .../revoke)",
                )
                .into());
            }
        },
        metadata: request.metadata.as_ref().map(Metadata::parse).transpose()?,
    };
    if update.name.is_none() && update.enabled.is_none() && update.metadata.is_none() {
        return Err(ValidationError::new(
            "body",
            "nothing to change: give name, status or metadata",
        )
        .into());
    }
    let key = find_for(&state, &operator, &path).await?;
    let actor = operator.actor.clone();
    let (view, change) = db::run(&state.pool, move |conn| {
        let (key, change) = api_keys::update(conn, &key, &update, &actor, Utc::now())?;
        Ok((view(conn, key)?, change))
    })
    .await?;
    state.apply_changes(change.as_slice());
    Ok(HttpResponse::Ok().json(view))
}

pub async fn revoke_api_key(
    operator: Operator<ApiKeysWrite>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let key = find_for(&state, &operator, &path).await?;
    let actor = operator.actor.clone();
    let (view, change) = db::run(&state.pool, move |conn| {
        let (key, change) = db::write_transaction(conn, |conn| {
            api_keys::revoke_found(conn, &key, &actor, Utc::now())
        })?;
        Ok((view(conn, key)?, change))
    })
    .await?;
    state.apply_changes(&[change]);
    Ok(HttpResponse::Ok().json(view))
}

pub async fn delete_api_key(
    operator: Operator<ApiKeysWrite>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let key = find_for(&state, &operator, &path).await?;
    let actor = operator.actor.clone();
    let change = db::run(&state.pool, move |conn| {
        api_keys::delete(conn, &key, &actor, Utc::now())
    })
    .await?;
    state.apply_changes(&[change]);
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
    let grace = body.0.grace_period_seconds;
    if !(0..=MAX_GRACE_SECONDS).contains(&grace) {
        return Err(ValidationError::new(
            "grace_period_seconds",
            "must be from 0 to 604800 (7 days)",
        )
        .into());
    }
    let key = find_for(&state, &operator, &path).await?;
    let actor = operator.actor.clone();
    let cost = state.settings.secrets.bcrypt_cost;
    let (rotated, view, change) = db::run(&state.pool, move |conn| {
        let (rotated, change) = api_keys::rotate(conn, &key, grace, cost, &actor, Utc::now())?;
        let view = view(conn, rotated.key.clone())?;
        Ok((rotated, view, change))
    })
    .await?;
    state.apply_changes(&[change]);
    Ok(no_store(HttpResponse::Ok()).json(RotatedApiKey {
        key: view,
        client_secret: rotated.secret.expose().to_owned(),
        previous_secret_expires_at: rotated.previous_valid_until,
    }))
}
