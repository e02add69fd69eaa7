//! `POST /v1/token`: API key in, access token out (RFC 6749 sections 4.4 and 5.1).

use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{self, BytesMut};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Serialize;

use crate::auth::client_credentials::{self, MAX_TOKEN_REQUEST_BYTES};
use crate::error::ApiError;
use crate::grant;
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
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = read_body(&req, payload, MAX_TOKEN_REQUEST_BYTES).await?;
    let request = client_credentials::parse(&req, &body)?;
    let address = req
        .peer_addr()
        .map(|a| a.ip())
        .unwrap_or(std::net::Ipv4Addr::LOCALHOST.into());
    let issued = grant::client_credentials(&state, request, address).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")))
        .json(TokenResponse {
            access_token: &issued.access_token,
            token: &issued.access_token,
            token_type: "Bearer",
            expires_in: issued.expires_in,
            expires_at: issued.expires_at,
            scope: &issued.scope,
        }))
}

/// Reads at most `limit` bytes, refusing a larger declared or actual body with 413.
async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<BytesMut, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|_| ApiError::invalid_request("the request body could not be read"))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
