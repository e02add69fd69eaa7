//! `GET /v1/me` (the API key behind the token) and `GET /v1/me/permissions` (what the token
//! may do: the call to make when troubleshooting a 403).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;

use crate::auth::Authenticated;
use crate::domain::{Environment, KeyStatus, ScopeSet};
use crate::error::{ApiError, ErrorBody};
use crate::service::api_keys;
use crate::state::AppState;

/// The API key behind the token, and the token.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Me {
    client_id: String,
    name: String,
    environment: Environment,
    organization: String,
    status: KeyStatus,
    /// What the key may ask for.
    scopes: ScopeSet,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    token: TokenInfo,
}

/// The token the request carried.
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    /// What the token may do (a subset of the key's scopes).
    scopes: Vec<String>,
    /// Unix seconds.
    issued_at: i64,
    /// Unix seconds.
    expires_at: i64,
}

/// What a token may do, from the token alone.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Permissions<'a> {
    client_id: &'a str,
    #[schema(value_type = Environment)]
    environment: &'a str,
    organization: &'a str,
    /// What this token may do.
    scopes: Vec<&'a str>,
    /// The token's expiry, Unix seconds.
    expires_at: i64,
}

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// The key behind the token, read fresh: this route reads the row anyway, so it also refuses
/// a key revoked or disabled a moment ago, before the change feed says so.
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "me",
    summary = "The API key behind the token",
    description = "Reads the key afresh, so a key revoked or disabled a moment ago is refused \
        here at once.",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The key and the token", body = Me),
        (status = 400, description = "A malformed Authorization header", body = ErrorBody),
        (status = 401, description = "invalid_token, with WWW-Authenticate: Bearer",
            body = ErrorBody),
    )
)]
pub async fn me(
    caller: Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let key = api_keys::of_token(&state.service, caller.client_id()).await?;
    let claims = caller.claims;
    Ok(HttpResponse::Ok().json(Me {
        client_id: key.client_id,
        name: key.name,
        environment: key.environment,
        organization: claims.org.clone(),
        status: key.status,
        scopes: ScopeSet::from_stored(&key.scopes),
        created_at: utc(key.created_at),
        expires_at: key.expires_at.map(utc),
        token: TokenInfo {
            scopes: claims.scopes().map(str::to_owned).collect(),
            issued_at: claims.iat,
            expires_at: claims.exp,
        },
    }))
}

/// Answers from the token alone (validated from memory, no database read): this is the
/// route that shows what validation costs. What the key may ask for is `GET /v1/me`.
#[utoipa::path(
    get,
    path = "/v1/me/permissions",
    tag = "me",
    summary = "What this token may do (from the token alone; the key's grants are in /v1/me)",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "Scopes", body = Permissions),
        (status = 400, description = "A malformed Authorization header", body = ErrorBody),
        (status = 401, description = "invalid_token, with WWW-Authenticate: Bearer",
            body = ErrorBody),
    )
)]
pub async fn permissions(caller: Authenticated) -> HttpResponse {
    let claims = &caller.claims;
    HttpResponse::Ok().json(Permissions {
        client_id: &claims.client_id,
        environment: claims.env.as_str(),
        organization: &claims.org,
        scopes: claims.scopes().collect(),
        expires_at: claims.exp,
    })
}
