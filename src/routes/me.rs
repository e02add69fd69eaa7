//! `GET /v1/me` (the API key behind the token) and `GET /v1/me/permissions` (what the token
//! may do, seed 000's troubleshooting call).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;

use crate::auth::Authenticated;
use crate::db;
use crate::db::api_keys::ApiKey;
use crate::domain::ScopeSet;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Serialize)]
struct Me {
    client_id: String,
    name: String,
    environment: String,
    organization: String,
    status: String,
    scopes: ScopeSet,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    token: TokenInfo,
}

#[derive(Serialize)]
struct TokenInfo {
    scopes: Vec<String>,
    issued_at: i64,
    expires_at: i64,
}

#[derive(Serialize)]
struct Permissions<'a> {
    client_id: &'a str,
    environment: &'a str,
    organization: &'a str,
    /// What this token may do.
    scopes: Vec<&'a str>,
    expires_at: i64,
}

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// The key behind the token, read fresh: these routes read the row anyway, so they also
/// refuse a key revoked or disabled a moment ago, before the change feed says so.
async fn current_key(caller: &Authenticated, state: &AppState) -> Result<ApiKey, ApiError> {
    let client_id = caller.client_id().to_owned();
    db::run(&state.pool, move |conn| {
        Ok(db::api_keys::find_by_client_id(conn, &client_id)?)
    })
    .await?
    .filter(|key| key.status == "enabled" && key.deleted_at.is_none())
    .ok_or(ApiError::InvalidToken("the access token has been revoked"))
}

pub async fn me(
    caller: Authenticated,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let key = current_key(&caller, &state).await?;
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
