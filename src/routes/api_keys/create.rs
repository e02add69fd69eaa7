//! `POST /v1/api-keys`: a new key, its secret shown once.

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::ApiKeyView;
use crate::auth::caller::{ApiKeysWrite, Operator};
use crate::domain::{Environment, Expiry, KeyName, KeyStatus, Metadata, ScopeSet, ValidationError};
use crate::error::{ApiError, ErrorBody};
use crate::openapi::ManagementErrors;
use crate::routes::body::JsonBody;
use crate::routes::no_store;
use crate::service::api_keys::{self, KeyOwner, NewKey, ScopeChoice};
use crate::service::policy;
use crate::state::AppState;

/// Exactly one of scopes, read_only, full_access; at most one of expires_on, expires_in_days.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// Surrounding whitespace is trimmed.
    #[schema(min_length = 1, max_length = 100, example = "Billing sync")]
    name: String,
    /// The scopes to grant, each held by the creator.
    #[schema(example = json!(["invoices:read"]))]
    scopes: Option<Vec<String>>,
    /// Every :read API scope the creator holds.
    #[serde(default)]
    #[schema(default = false)]
    read_only: bool,
    /// Every API scope the creator holds.
    #[serde(default)]
    #[schema(default = false)]
    full_access: bool,
    #[schema(value_type = Option<Environment>, default = json!(Environment::Live))]
    environment: Option<String>,
    /// A synonym of `environment`; give one of the two.
    #[schema(value_type = Option<Environment>)]
    kind: Option<String>,
    /// Only ever trade the key for tokens: never accept it as a bearer credential itself.
    #[serde(default)]
    #[schema(default = false)]
    token_only: bool,
    /// Hand out a single-use refresh token beside each access token.
    #[serde(default)]
    #[schema(default = false)]
    refresh_tokens: bool,
    #[schema(schema_with = initial_status)]
    status: Option<String>,
    /// Expires at 00:00 UTC on this date.
    #[schema(format = Date, example = "2027-01-01")]
    expires_on: Option<String>,
    #[schema(minimum = 1, maximum = 3650)]
    expires_in_days: Option<u64>,
    #[schema(value_type = Option<Metadata>)]
    metadata: Option<serde_json::Value>,
}

/// A new key, with its secret.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    key: ApiKeyView,
    /// Shown this once; keygate keeps only its bcrypt hash.
    client_secret: String,
}

/// `enabled` (the default) or `disabled`: a key is revoked only after it is made.
fn initial_status() -> utoipa::openapi::schema::ObjectBuilder {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some([
            KeyStatus::Enabled.as_str(),
            KeyStatus::Disabled.as_str(),
        ]))
        .default(Some(serde_json::json!(KeyStatus::Enabled)))
        .description(Some(format!(
            "`{}` creates the key disabled: it gets no token until enabled",
            KeyStatus::Disabled
        )))
}

impl CreateApiKeyRequest {
    /// The key asked for, in the caller's organization.
    fn parse(self, organization_id: i64) -> Result<NewKey, ValidationError> {
        let now = Utc::now();
        let name = KeyName::parse(&self.name)?;
        let environment = match (self.environment, self.kind) {
            (Some(_), Some(_)) => {
                return Err(ValidationError::new(
                    "kind",
                    "give environment or its synonym kind, not both",
                ));
            }
            (Some(text), None) => text.parse()?,
            (None, Some(text)) => text
                .parse::<Environment>()
                .map_err(|e| ValidationError::new("kind", e.message))?,
            (None, None) => Environment::Live,
        };
        let enabled = match self.status.as_deref().map(str::parse::<KeyStatus>) {
            None | Some(Ok(KeyStatus::Enabled)) => true,
            Some(Ok(KeyStatus::Disabled)) => false,
            Some(Ok(KeyStatus::Revoked) | Err(_)) => {
                return Err(ValidationError::new(
                    "status",
                    "must be enabled or disabled (a key is revoked after it is made)",
                ));
            }
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
            enabled,
            token_only: self.token_only,
            refresh_tokens: self.refresh_tokens,
        })
    }
}

#[utoipa::path(
    post,
    path = "/v1/api-keys",
    tag = "api-keys",
    summary = "Create an API key; its secret is in this answer only",
    description = "Needs `api_keys:write`. A key is never granted a scope its creator does not \
        hold.",
    security(("bearerAuth" = ["api_keys:write"]), ("sessionCookie" = [], "csrfHeader" = [])),
    request_body = CreateApiKeyRequest,
    responses(
        ManagementErrors,
        (status = 201, description = "The key and its secret; Cache-Control: no-store; \
            Location: the key's URL", body = CreatedApiKey),
        (status = 403, description = "Missing permission (`insufficient_scope`); a scope the \
            caller does not hold; a key of another environment than the calling test key's; or \
            a session request without its CSRF token", body = ErrorBody),
    )
)]
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
