//! The OpenAPI 3.1 document of keygate's public HTTP API, served at `/openapi.json`. It is
//! generated: each operation from the `#[utoipa::path]` on its handler, each schema from the
//! request or response type it describes (`ToSchema`). A test holds its paths and methods to
//! `routes::ROUTES`, so a route cannot be added or removed without the document following.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::Value;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, RefOr};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

use crate::auth::caller::SESSION_COOKIE;
use crate::error::ErrorBody;
use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "keygate",
        description = "OAuth 2.0 client-credentials token service: API keys in, short-lived signed JWTs out."
    ),
    paths(
        routes::token::issue_token,
        routes::introspection::introspect,
        routes::introspection::revoke,
        routes::revocation_stream::follow,
        routes::well_known::jwks,
        routes::well_known::authorization_server_metadata,
        routes::me::me,
        routes::me::permissions,
        routes::session::log_in,
        routes::session::current_session,
        routes::session::log_out,
        routes::api_keys::list::list_api_keys,
        routes::api_keys::create::create_api_key,
        routes::api_keys::manage::retrieve_api_key,
        routes::api_keys::manage::update_api_key,
        routes::api_keys::manage::delete_api_key,
        routes::api_keys::manage::revoke_api_key,
        routes::api_keys::manage::rotate_api_key,
        routes::usage::key_usage,
        routes::usage::organization_usage,
        routes::users::list_users,
        routes::users::create_user,
        routes::users::retrieve_user,
        routes::users::update_user,
        routes::invitations::invite_user,
        routes::invitations::list_invitations,
        routes::invitations::resend_invitation,
        routes::invitations::revoke_invitation,
        routes::invitations::accept_invitation,
        routes::organizations::list_organizations,
        routes::organizations::create_organization,
        routes::organizations::retrieve_organization,
        routes::organizations::update_organization,
        routes::organizations::delete_organization,
        routes::audit::list_audit_events,
        routes::webhooks::create_endpoint,
        routes::webhooks::list_endpoints,
        routes::webhooks::retrieve_endpoint,
        routes::webhooks::update_endpoint,
        routes::webhooks::delete_endpoint,
        routes::webhooks::roll_secret,
        routes::webhooks::send_test,
        routes::webhooks::list_deliveries,
        routes::webhooks::get_delivery,
        routes::webhooks::retry_delivery,
        routes::webhooks::list_events,
        routes::well_known::openapi,
        routes::docs::page,
        routes::health::live,
        routes::health::ready,
        routes::metrics::metrics,
    ),
    modifiers(&SecuritySchemes),
    tags(
        (name = "tokens", description = "Issuing, introspecting and revoking access tokens (RFC 6749, 7662, 7009)"),
        (name = "discovery", description = "What a client or resource server reads to find and verify keygate"),
        (name = "me", description = "The API key behind a bearer token"),
        (name = "session", description = "Console log-in: a session cookie, and a CSRF token for every change"),
        (name = "api-keys", description = "The management API for API keys"),
        (name = "users", description = "The operators of an organization"),
        (name = "organizations", description = "Tenants, for the deployment's administrators"),
        (name = "audit", description = "The organization's append-only audit trail"),
        (name = "webhooks", description = "Signed, retried, ordered deliveries of key events (Standard Webhooks)"),
        (name = "health", description = "Probes for a load balancer or orchestrator"),
    )
)]
struct ApiDoc;

/// How callers authenticate: an API key's credentials at the token endpoint, a bearer token
/// elsewhere, or a console session (cookie, plus the CSRF header on every change).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "clientBasic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some("client_id and client_secret (RFC 6749 section 2.3.1)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "bearerAuth",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from /v1/token (RFC 6750), or an API key's secret itself (kgs_…, unless validation.accept_api_keys is off); a requirement's list names the permission it needs",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "sessionCookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                SESSION_COOKIE,
                "The console session set by POST /v1/session (HttpOnly, SameSite=Strict)",
            ))),
        );
        components.add_security_scheme(
            "csrfHeader",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-CSRF-Token",
                "The session's csrf_token, on every POST, PATCH and DELETE made with the session cookie",
            ))),
        );
    }
}

/// An answer in the one error format, `{"error", "error_description", "field"?}`.
fn error_response(description: &str) -> Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                    ErrorBody::name(),
                ))))
                .build(),
        )
        .build()
}

/// The answers every management operation can give besides its own (an operation that lists
/// one of these statuses itself describes it more closely).
pub struct ManagementErrors;

impl IntoResponses for ManagementErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        [
            ("400", "Invalid input; `field` names the culprit"),
            ("401", "No valid token or session"),
            (
                "403",
                "Missing permission (`insufficient_scope`), or a session request without its CSRF token",
            ),
            ("404", "No such row in the caller's organization"),
        ]
        .into_iter()
        .map(|(status, description)| (status.to_owned(), error_response(description).into()))
        .collect()
    }
}

static DOCUMENT: LazyLock<Value> = LazyLock::new(|| {
    let mut document =
        serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serialises");
    lift_parameter_descriptions(&mut document);
    document
});

/// utoipa drops the doc comment of a parameter whose schema comes from `schema_with`, so such
/// a schema carries the description: this moves it to the parameter, where readers look.
fn lift_parameter_descriptions(document: &mut Value) {
    let operations = document
        .get_mut("paths")
        .and_then(Value::as_object_mut)
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut());
    for operation in operations {
        let parameters = operation
            .get_mut("parameters")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten();
        for parameter in parameters {
            if parameter.get("description").is_none() {
                let lifted = parameter
                    .get_mut("schema")
                    .and_then(Value::as_object_mut)
                    .and_then(|schema| schema.remove("description"));
                if let (Some(description), Some(parameter)) = (lifted, parameter.as_object_mut()) {
                    parameter.insert("description".into(), description);
                }
            }
        }
    }
}

/// The document, for an issuer (its server URL).
pub fn document(issuer: &str) -> Value {
    let mut document = DOCUMENT.clone();
    document["servers"] = serde_json::json!([{ "url": issuer }]);
    document
}

/// Every (METHOD, path) the document describes.
pub fn operations(document: &Value) -> Vec<(String, String)> {
    let mut found = Vec::new();
    if let Some(paths) = document["paths"].as_object() {
        for (path, item) in paths {
            for method in ["get", "post", "put", "patch", "delete"] {
                if item.get(method).is_some() {
                    found.push((method.to_uppercase(), path.clone()));
                }
            }
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_describes_exactly_the_routes_keygate_serves() {
        let mut served: Vec<(String, String)> = crate::routes::ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        served.sort();
        let documented = operations(&document("http://example.test"));
        let undocumented: Vec<_> = served.iter().filter(|r| !documented.contains(r)).collect();
        let unserved: Vec<_> = documented.iter().filter(|r| !served.contains(r)).collect();
        assert!(
            undocumented.is_empty(),
            "served but not in the OpenAPI document: {undocumented:?}"
        );
        assert!(
            unserved.is_empty(),
            "documented but not served: {unserved:?}"
        );
        for (method, path) in crate::routes::UNDOCUMENTED_ROUTES {
            let route = (method.to_string(), path.to_string());
            assert!(
                !documented.contains(&route),
                "{route:?} is left out of the document on purpose"
            );
        }
    }

    #[test]
    fn every_schema_reference_resolves() {
        let doc = document("http://example.test");
        let text = doc.to_string();
        let mut references = 0;
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "unresolved $ref {name}"
            );
            references += 1;
        }
        assert!(references > 0);
        assert_eq!(
            text.matches("\"$ref\":").count(),
            references,
            "every $ref points into components/schemas"
        );
    }

    #[test]
    fn every_operation_is_described_and_answers_in_documented_formats() {
        let doc = document("http://example.test");
        for (method, path) in operations(&doc) {
            let operation = &doc["paths"][&path][method.to_lowercase()];
            let name = format!("{method} {path}");
            assert!(operation["summary"].is_string(), "{name} has a summary");
            assert!(operation["tags"].is_array(), "{name} has a tag");
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{name} documents its success"
            );
            for (status, response) in responses {
                assert!(
                    response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()),
                    "{name} {status} is described"
                );
                if status.starts_with('4') || status.starts_with('5') {
                    assert_eq!(
                        response["content"]["application/json"]["schema"]["$ref"],
                        "#/components/schemas/Error",
                        "{name} {status} answers in the error format"
                    );
                }
            }
        }
    }

    #[test]
    fn the_servers_are_the_issuer() {
        let doc = document("https://auth.example.com");
        assert_eq!(doc["openapi"], "3.1.0");
        assert_eq!(
            doc["servers"],
            serde_json::json!([{ "url": "https://auth.example.com" }])
        );
    }
}
