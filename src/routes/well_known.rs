//! Discovery: the JWK Set (RFC 7517) and authorization-server metadata (RFC 8414).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::state::AppState;

/// Every public key that may verify a live token, including the next key, published ahead of
/// its use so that caches already hold it when it starts signing.
pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    let keyring = state.service.validator.keyring();
    HttpResponse::Ok()
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        ))
        .content_type("application/json")
        .body(keyring.jwks().to_owned())
}

pub async fn authorization_server_metadata(state: web::Data<AppState>) -> HttpResponse {
    let service = &state.service;
    let issuer = &service.issuer;
    let algorithm = service.settings.tokens.algorithm.as_str();
    HttpResponse::Ok()
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        ))
        .json(json!({
            "issuer": issuer,
            "token_endpoint": format!("{issuer}/v1/token"),
            "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
            "introspection_endpoint": format!("{issuer}/v1/introspect"),
            "revocation_endpoint": format!("{issuer}/v1/revoke"),
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "response_types_supported": [],
            "scopes_supported": service.catalog.scopes(),
            "access_token_signing_alg_values_supported": [algorithm],
        }))
}

/// The OpenAPI document of this API.
pub async fn openapi(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        ))
        .json(crate::openapi::document(&state.service.issuer))
}
