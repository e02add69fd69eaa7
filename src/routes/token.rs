//! `POST /v1/token`: API key (or refresh token) in, access token out (RFC 6749 sections 4.4,
//! 5.1 and 6).

use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use super::body::read_limited;
use crate::auth::client_credentials::{self, MAX_TOKEN_REQUEST_BYTES};
use crate::error::{ApiError, ErrorBody};
use crate::routes::no_store;
use crate::service::grant;
use crate::state::AppState;

/// A successful token answer (RFC 6749 section 5.1).
#[derive(Serialize, utoipa::ToSchema)]
pub struct TokenResponse<'a> {
    /// An RFC 9068 JWT.
    access_token: &'a str,
    /// The same token, under the second name some clients read.
    token: &'a str,
    #[schema(schema_with = bearer)]
    token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    expires_in: i64,
    /// When the access token expires, in Unix seconds.
    expires_at: i64,
    /// `expires_in`, under the name that sits beside `refresh_token_expires_in`.
    #[schema(example = 900)]
    access_token_expires_in: i64,
    /// `expires_at`, under the name that sits beside `refresh_token_expires_at`.
    access_token_expires_at: i64,
    /// The scopes granted, space-separated (RFC 6749 section 3.3); possibly empty.
    scope: &'a str,
    /// Only for keys created with refresh tokens: trade it once, at this endpoint, for a new
    /// pair (`grant_type=refresh_token`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    refresh_token: Option<&'a str>,
    /// Seconds until the refresh token expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = 86400)]
    refresh_token_expires_in: Option<i64>,
    /// When the refresh token expires, in Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    refresh_token_expires_at: Option<i64>,
}

fn bearer() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(["Bearer"]))
        .build()
}

#[utoipa::path(
    post,
    path = "/v1/token",
    tag = "tokens",
    summary = "Trade API-key credentials (RFC 6749 section 4.4) or a refresh token (section 6) for an access token",
    description = "Client authentication by HTTP Basic (`client_secret_basic`) or in the body \
        (`client_secret_post`, or the JSON names). Credentials in the URL are refused. Keys \
        created with refresh tokens also get a single-use `refresh_token`; trading it needs no \
        client authentication (when sent, it must be the token's key).",
    security(("clientBasic" = []), ()),
    request_body(content(
        (client_credentials::BodyParams = "application/x-www-form-urlencoded"),
        (client_credentials::JsonBody = "application/json"),
    )),
    responses(
        (status = 200, description = "A token; `Cache-Control: no-store`", body = TokenResponse),
        (status = 400, description = "invalid_request, unsupported_grant_type, invalid_grant or invalid_scope",
            body = ErrorBody),
        (status = 401, description = "invalid_client, with WWW-Authenticate: Basic",
            body = ErrorBody),
        (status = 413, description = "The body is over 4 KiB", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address; see Retry-After",
            body = ErrorBody),
        (status = 503, description = "Too many requests waiting for bcrypt; see Retry-After",
            body = ErrorBody),
    )
)]
pub async fn issue_token(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let answer = token_answer(&req, &mut payload, &state).await;
    state.metrics.count_token_answer(&answer);
    answer
}

async fn token_answer(
    req: &HttpRequest,
    payload: &mut web::Payload,
    state: &AppState,
) -> Result<HttpResponse, ApiError> {
    let body = read_limited(req, payload, MAX_TOKEN_REQUEST_BYTES).await?;
    let request = client_credentials::parse(req, &body)?;
    #[cfg(debug_assertions)]
    crate::panics::panic_if_asked(&request);
    let origin = state.origin(req);
    let issued = grant::token(&state.service, request, &origin).await?;
    let (access, refresh) = (&issued.access, issued.refresh.as_ref());
    Ok(no_store(HttpResponse::Ok()).json(TokenResponse {
        access_token: &access.access_token,
        token: &access.access_token,
        token_type: "Bearer",
        expires_in: access.expires_in,
        expires_at: access.expires_at,
        access_token_expires_in: access.expires_in,
        access_token_expires_at: access.expires_at,
        scope: &access.scope,
        refresh_token: refresh.map(|r| r.token.expose()),
        refresh_token_expires_in: refresh.map(|r| r.expires_in),
        refresh_token_expires_at: refresh.map(|r| r.expires_at),
    }))
}
