//! `POST /v1/api-keys`: a new key, its secret shown once.

use actix_web::http::header::{self};
use actix_web::{HttpResponse, web};
use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::{ApiKeyView, view};
use crate::auth::caller::{ApiKeysWrite, Caller, Operator};
use crate::db;
use crate::domain::{Environment, Expiry, KeyName, Metadata, ScopeSet, ValidationError};
use crate::error::ApiError;
use crate::lifecycle::api_keys::{self, NewKey};
use crate::routes::body::JsonBody;
use crate::routes::no_store;
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

/// Parses the request into a key the caller may create.
fn decide(
    request: CreateApiKeyRequest,
    caller: &Caller,
    state: &AppState,
) -> Result<NewKey, ApiError> {
    let now = Utc::now();
    let name = KeyName::parse(&request.name)?;
    let environment: Environment = request.environment.as_deref().unwrap_or("live").parse()?;
    let chosen = [
        request.scopes.is_some(),
        request.read_only,
        request.full_access,
    ]
    .iter()
    .filter(|b| **b)
    .count();
    if chosen != 1 {
        return Err(ValidationError::new(
            "scopes",
            "give exactly one of scopes, read_only: true, full_access: true",
        )
        .into());
    }
    let scopes = match request.scopes {
        Some(list) => {
            let scopes = ScopeSet::from_items(list.iter().map(String::as_str))
                .map_err(|e| ValidationError::new("scopes", e.message))?;
            state.catalog.check(&scopes)?;
            scopes
        }
        None if request.read_only => state.catalog.read_only(&caller.permissions),
        None => state.catalog.full_access(&caller.permissions),
    };
    if scopes.is_empty() {
        return Err(ValidationError::new("scopes", "the key would have no scopes").into());
    }
    if let Some(missing) = scopes.first_missing_from(&caller.permissions) {
        return Err(ApiError::Forbidden(format!(
            "you do not hold `{missing}`, so a key you create cannot be granted it"
        )));
    }
    let expiry = match (request.expires_on, request.expires_in_days) {
        (Some(_), Some(_)) => {
            return Err(ValidationError::new(
                "expires_on",
                "give expires_on or expires_in_days, not both",
            )
            .into());
        }
        (Some(date), None) => Expiry::parse_date(&date, now)?,
        (None, Some(days)) => Expiry::in_days(days, now)?,
        (None, None) => Expiry::never(),
    };
    let metadata = match &request.metadata {
        Some(value) => Metadata::parse(value)?,
        None => Metadata::default(),
    };
    Ok(NewKey {
        organization_id: caller.organization_id,
        name,
        environment,
        scopes,
        expiry,
        metadata,
        created_by: caller.owner_user_id,
    })
}

pub async fn create_api_key(
    operator: Operator<ApiKeysWrite>,
    body: JsonBody<CreateApiKeyRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let new = decide(body.0, &operator, &state)?;
    let actor = operator.actor.clone();
    let cost = state.settings.secrets.bcrypt_cost;
    let (view, secret) = db::run(&state.pool, move |conn| {
        let created = api_keys::create(conn, &new, cost, &actor, Utc::now())?;
        Ok((view(conn, created.key)?, created.secret))
    })
    .await?;
    Ok(no_store(HttpResponse::Created())
        .insert_header((header::LOCATION, format!("/v1/api-keys/{}", view.client_id)))
        .json(CreatedApiKey {
            key: view,
            client_secret: secret.expose().to_owned(),
        }))
}
