//! One key: retrieve, update, revoke, rotate, delete.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::ApiKeyView;
use crate::auth::caller::{ApiKeysRead, ApiKeysWrite, Operator};
use crate::domain::{GracePeriod, KeyName, KeyStatus, Metadata, ValidationError};
use crate::error::{ApiError, ErrorBody};
use crate::openapi::ManagementErrors;
use crate::routes::body::JsonBody;
use crate::routes::no_store;
use crate::service::api_keys::{self, KeyUpdate};
use crate::state::AppState;

#[utoipa::path(
    get,
    path = "/v1/api-keys/{client_id}",
    tag = "api-keys",
    summary = "Retrieve an API key",
    description = "Needs `api_keys:read` (and `api_keys:manage` for a key of someone else).",
    security(("bearerAuth" = ["api_keys:read"]), ("sessionCookie" = [])),
    params(("client_id" = String, Path, description = "The key's client_id")),
    responses(ManagementErrors, (status = 200, description = "The key", body = ApiKeyView))
)]
pub async fn retrieve_api_key(
    operator: Operator<ApiKeysRead>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let record = api_keys::get(&state.service, &operator, &path).await?;
    Ok(HttpResponse::Ok().json(ApiKeyView::from(record)))
}

/// Give at least one of name, status, metadata, refresh_tokens.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1)]
pub struct UpdateApiKeyRequest {
    /// Surrounding whitespace is trimmed.
    #[schema(min_length = 1, max_length = 100)]
    name: Option<String>,
    #[schema(schema_with = enabled_or_disabled)]
    status: Option<String>,
    /// Replaces the key's metadata.
    #[schema(value_type = Option<Metadata>)]
    metadata: Option<serde_json::Value>,
    /// Turn refresh tokens on or off; off ends every refresh token handed out.
    refresh_tokens: Option<bool>,
}

fn enabled_or_disabled() -> utoipa::openapi::schema::ObjectBuilder {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some([
            KeyStatus::Enabled.as_str(),
            KeyStatus::Disabled.as_str(),
        ]))
        .description(Some(
            "Disable or enable the key; revoking is final and has its own operation",
        ))
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
            refresh_tokens: self.refresh_tokens,
        };
        if update.name.is_none()
            && update.enabled.is_none()
            && update.metadata.is_none()
            && update.refresh_tokens.is_none()
        {
            return Err(ValidationError::new(
                "body",
                "nothing to change: give name, status, metadata or refresh_tokens",
            ));
        }
        Ok(update)
    }
}

#[utoipa::path(
    patch,
    path = "/v1/api-keys/{client_id}",
    tag = "api-keys",
    summary = "Rename, disable or enable a key, replace its metadata, or turn its refresh tokens on or off",
    description = "Needs `api_keys:write` (and `api_keys:manage` for a key of someone else).",
    security(("bearerAuth" = ["api_keys:write"]), ("sessionCookie" = [], "csrfHeader" = [])),
    params(("client_id" = String, Path, description = "The key's client_id")),
    request_body = UpdateApiKeyRequest,
    responses(
        ManagementErrors,
        (status = 200, description = "The key", body = ApiKeyView),
        (status = 403, description = "Missing permission (`insufficient_scope`); enabling a key \
            that holds a permission the caller lacks; or a session request without its CSRF \
            token", body = ErrorBody),
        (status = 409, description = "The key is revoked", body = ErrorBody),
    )
)]
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

#[utoipa::path(
    post,
    path = "/v1/api-keys/{client_id}/revoke",
    tag = "api-keys",
    summary = "Revoke a key at once; final",
    description = "Needs `api_keys:write` (and `api_keys:manage` for a key of someone else). Its \
        tokens are refused from now on.",
    security(("bearerAuth" = ["api_keys:write"]), ("sessionCookie" = [], "csrfHeader" = [])),
    params(("client_id" = String, Path, description = "The key's client_id")),
    responses(ManagementErrors, (status = 200, description = "The revoked key", body = ApiKeyView))
)]
pub async fn revoke_api_key(
    operator: Operator<ApiKeysWrite>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let record = api_keys::revoke(&state.service, &operator, &path).await?;
    Ok(HttpResponse::Ok().json(ApiKeyView::from(record)))
}

/// The answer to a deletion.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Deleted {
    #[schema(schema_with = always_true)]
    pub(crate) deleted: bool,
}

fn always_true() -> utoipa::openapi::schema::ObjectBuilder {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::Boolean)
        .enum_values(Some([true]))
}

#[utoipa::path(
    delete,
    path = "/v1/api-keys/{client_id}",
    tag = "api-keys",
    summary = "Delete a key: revoke it and hide it (its row and audit trail stay)",
    description = "Needs `api_keys:write` (and `api_keys:manage` for a key of someone else).",
    security(("bearerAuth" = ["api_keys:write"]), ("sessionCookie" = [], "csrfHeader" = [])),
    params(("client_id" = String, Path, description = "The key's client_id")),
    responses(ManagementErrors, (status = 200, description = "`{\"deleted\": true}`", body = Deleted))
)]
pub async fn delete_api_key(
    operator: Operator<ApiKeysWrite>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    api_keys::delete(&state.service, &operator, &path).await?;
    Ok(HttpResponse::Ok().json(Deleted { deleted: true }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateApiKeyRequest {
    /// How long the old secret keeps working (up to 7 days).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 604800, default = 0)]
    grace_period_seconds: i64,
}

/// The key, with its new secret.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RotatedApiKey {
    #[serde(flatten)]
    key: ApiKeyView,
    /// Shown this once.
    client_secret: String,
    /// When the previous secret stops working; null when it already has.
    previous_secret_expires_at: Option<DateTime<Utc>>,
}

#[utoipa::path(
    post,
    path = "/v1/api-keys/{client_id}/rotate",
    tag = "api-keys",
    summary = "Issue a new secret; the old one works for the grace period",
    description = "Needs `api_keys:write` (and `api_keys:manage` for a key of someone else).",
    security(("bearerAuth" = ["api_keys:write"]), ("sessionCookie" = [], "csrfHeader" = [])),
    params(("client_id" = String, Path, description = "The key's client_id")),
    request_body = RotateApiKeyRequest,
    responses(
        ManagementErrors,
        (status = 200, description = "The key and its new secret; Cache-Control: no-store",
            body = RotatedApiKey),
        (status = 403, description = "Missing permission (`insufficient_scope`); a key that holds \
            a permission the caller lacks; or a session request without its CSRF token",
            body = ErrorBody),
        (status = 409, description = "The key is revoked", body = ErrorBody),
    )
)]
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
