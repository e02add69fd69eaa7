//! HTTP routes. Handlers are thin: parse, call a plain function, render.

mod health;
mod me;
mod token;
mod well_known;

use actix_web::{HttpRequest, HttpResponse, web};

use crate::error::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/v1/token", "POST").route(web::post().to(token::issue_token)))
        .service(resource("/.well-known/jwks.json", "GET").route(web::get().to(well_known::jwks)))
        .service(
            resource("/.well-known/oauth-authorization-server", "GET")
                .route(web::get().to(well_known::authorization_server_metadata)),
        )
        .service(resource("/v1/me", "GET").route(web::get().to(me::me)))
        .service(resource("/v1/me/permissions", "GET").route(web::get().to(me::permissions)))
        .service(resource("/healthz", "GET").route(web::get().to(health::live)))
        .service(resource("/readyz", "GET").route(web::get().to(health::ready)));
}

/// A resource whose other methods get 405 with `Allow`, in the documented error format.
fn resource(path: &str, allow: &'static str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(move || async move {
        Err::<HttpResponse, _>(ApiError::MethodNotAllowed { allow })
    }))
}

/// The answer for every path keygate does not serve.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

/// Maps actix's own extractor failures (bad JSON, query or path) to the documented format.
pub fn extractor_configs(
    max_body_bytes: usize,
) -> (web::JsonConfig, web::QueryConfig, web::PathConfig) {
    let json = web::JsonConfig::default()
        .limit(max_body_bytes)
        .error_handler(|err, _req: &HttpRequest| {
            use actix_web::error::JsonPayloadError;
            let api_error = match &err {
                JsonPayloadError::OverflowKnownLength { limit, .. }
                | JsonPayloadError::Overflow { limit } => {
                    ApiError::PayloadTooLarge { limit: *limit }
                }
                JsonPayloadError::ContentType => {
                    ApiError::invalid_request("Content-Type must be application/json")
                }
                JsonPayloadError::Deserialize(e) if e.is_data() => ApiError::invalid_request(
                    format!("invalid field: {}", first_clause(&e.to_string())),
                ),
                _ => ApiError::invalid_request("the body is not valid JSON"),
            };
            api_error.into()
        });
    let query = web::QueryConfig::default().error_handler(|err, _req: &HttpRequest| {
        ApiError::invalid_request(format!(
            "invalid query string: {}",
            first_clause(&err.to_string())
        ))
        .into()
    });
    let path = web::PathConfig::default()
        .error_handler(|_err, _req: &HttpRequest| ApiError::NotFound.into());
    (json, query, path)
}

/// serde's messages end with a location; keep the part that names the field.
fn first_clause(message: &str) -> &str {
    message.split(" at line ").next().unwrap_or(message)
}
