//! `GET /v1/me` (the API key behind the token) and `GET /v1/me/permissions` (what the token
//! may do: the call to make when troubleshooting a 403).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;

use crate::auth::Authenticated;
use crate::domain::{Environment, KeyStatus, ScopeSet};
use crate::error::ApiError;
use crate::service::api_keys;
use crate::state::AppState;

#[derive(Serialize)]
struct Me {
    client_id: String,
    name: String,
    environment: Environment,
    organization: String,
    status: KeyStatus,
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

/// The key behind the token, read fresh: this route reads the row anyway, so it also refuses
/// a key revoked or disabled a moment ago, before the change feed says so.
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
