//! `POST /v1/token`: API key in, access token out (RFC 6749 sections 4.4 and 5.1).

use actix_web::web;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use super::body::read_limited;
use crate::auth::client_credentials::{self, MAX_TOKEN_REQUEST_BYTES};
use crate::error::ApiError;
use crate::routes::no_store;
use crate::service::grant;
use crate::state::AppState;

#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    /// The same token under the name Fiskil's clients read.
    token: &'a str,
    token_type: &'static str,
    expires_in: i64,
    expires_at: i64,
    scope: &'a str,
}

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
