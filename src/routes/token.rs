//! `POST /v1/token`: API key in, access token out (RFC 6749 sections 4.4 and 5.1).

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
    /// Seconds until the token expires.
    #[schema(example = 900)]
    expires_in: i64,
    /// When the token expires, in Unix seconds.
    expires_at: i64,
    /// The scopes granted, space-separated (RFC 6749 section 3.3); possibly empty.
    scope: &'a str,
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
    summary = "Trade API-key credentials for an access token (RFC 6749 section 4.4)",
    description = "Client authentication by HTTP Basic (`client_secret_basic`) or in the body \
        (`client_secret_post`, or the JSON names). Credentials in the URL are refused.",
    security(("clientBasic" = []), ()),
    request_body(content(
        (client_credentials::BodyParams = "application/x-www-form-urlencoded"),
        (client_credentials::JsonBody = "application/json"),
    )),
    responses(
        (status = 200, description = "A token; `Cache-Control: no-store`", body = TokenResponse),
        (status = 400, description = "invalid_request, unsupported_grant_type or invalid_scope",
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
    let body = read_limited(&req, &mut payload, MAX_TOKEN_REQUEST_BYTES).await?;
    let request = client_credentials::parse(&req, &body)?;
    let origin = state.origin(&req);
    let issued = grant::client_credentials(&state.service, request, &origin).await?;
    Ok(no_store(HttpResponse::Ok()).json(TokenResponse {
        access_token: &issued.access_token,
        token: &issued.access_token,
        token_type: "Bearer",
        expires_in: issued.expires_in,
        expires_at: issued.expires_at,
        scope: &issued.scope,
    }))
}
