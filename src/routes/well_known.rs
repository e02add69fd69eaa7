//! Discovery: the JWK Set (RFC 7517) and authorization-server metadata (RFC 8414).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, web};
use serde::Serialize;

use crate::domain::{ScopeSet, SigningAlgorithm};
use crate::state::AppState;
use crate::tokens::JwkSet;

/// Every public key that may verify a live token, including the next key, published ahead of
/// its use so that caches already hold it when it starts signing.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "discovery",
    summary = "The JWK Set of every key that may verify a live token (RFC 7517)",
    description = "Includes the next signing key, published ahead of its use. HS256 keys are \
        secret and never listed. `Cache-Control: public, max-age=300`.",
    responses((status = 200, description = "Public keys only", body = JwkSet))
)]
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

/// Authorization-server metadata (RFC 8414 section 2). Members in alphabetical order, as
/// keygate has always sent them.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Metadata, description = "Authorization-server metadata (RFC 8414 section 2)")]
pub struct AuthorizationServerMetadata<'a> {
    /// The one algorithm new tokens are signed with.
    #[schema(value_type = Vec<SigningAlgorithm>)]
    access_token_signing_alg_values_supported: [SigningAlgorithm; 1],
    #[schema(value_type = Vec<String>, example = json!(["client_credentials"]))]
    grant_types_supported: &'static [&'static str],
    introspection_endpoint: String,
    #[schema(value_type = Vec<String>, example = json!(CLIENT_AUTH_METHODS))]
    introspection_endpoint_auth_methods_supported: &'static [&'static str],
    /// The `iss` of every token, and the base of the other URLs.
    issuer: &'a str,
    jwks_uri: String,
    /// Empty: keygate has no authorization endpoint.
    #[schema(value_type = Vec<String>)]
    response_types_supported: &'static [&'static str],
    revocation_endpoint: String,
    /// Revoked keys and tokens as Server-Sent Events, for resource servers that validate
    /// tokens knowing only keygate's URL (keygate's own member; needs `revocations:read`).
    revocation_stream_endpoint: String,
    #[schema(value_type = Vec<String>, example = json!(CLIENT_AUTH_METHODS))]
    revocation_endpoint_auth_methods_supported: &'static [&'static str],
    /// The configured API scopes and keygate's management permissions.
    scopes_supported: &'a ScopeSet,
    token_endpoint: String,
    #[schema(value_type = Vec<String>, example = json!(CLIENT_AUTH_METHODS))]
    token_endpoint_auth_methods_supported: &'static [&'static str],
}

const CLIENT_AUTH_METHODS: &[&str] = &["client_secret_basic", "client_secret_post"];

#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "discovery",
    summary = "Authorization-server metadata (RFC 8414)",
    description = "`Cache-Control: public, max-age=300`.",
    responses((status = 200, description = "Metadata", body = AuthorizationServerMetadata))
)]
pub async fn authorization_server_metadata(state: web::Data<AppState>) -> HttpResponse {
    let service = &state.service;
    let issuer = &service.issuer;
    HttpResponse::Ok()
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        ))
        .json(AuthorizationServerMetadata {
            access_token_signing_alg_values_supported: [service.settings.tokens.algorithm],
            grant_types_supported: &["client_credentials"],
            introspection_endpoint: format!("{issuer}/v1/introspect"),
            introspection_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
            issuer,
            jwks_uri: format!("{issuer}/.well-known/jwks.json"),
            response_types_supported: &[],
            revocation_endpoint: format!("{issuer}/v1/revoke"),
            revocation_stream_endpoint: format!("{issuer}/v1/revocation-stream"),
            revocation_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
            scopes_supported: service.catalog.scopes(),
            token_endpoint: format!("{issuer}/v1/token"),
            token_endpoint_auth_methods_supported: CLIENT_AUTH_METHODS,
        })
}

/// The OpenAPI document of this API.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "discovery",
    summary = "This document",
    description = "Generated from keygate's request and response types; `servers` is this \
        deployment's issuer. `Cache-Control: public, max-age=300`.",
    responses((status = 200, description = "OpenAPI 3.1", body = Object))
)]
pub async fn openapi(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=300"),
        ))
        .json(crate::openapi::document(&state.service.issuer))
}
