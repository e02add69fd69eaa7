//! The OpenAPI 3.1 document of keygate's public HTTP API, served at `/openapi.json`. A test
//! holds its paths and methods to `routes::ROUTES`, so a route cannot be added or removed
//! without the document following.

use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn json_response(description: &str, schema: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    })
}

fn json_body(schema: &str) -> Value {
    json!({
        "required": true,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    })
}

/// The answers every management operation can give besides its own.
fn management_errors(mut responses: Value) -> Value {
    let common = [
        ("400", "Invalid input; `field` names the culprit"),
        ("401", "No valid token or session"),
        (
            "403",
            "Missing permission (`insufficient_scope`), or a session request without its CSRF token",
        ),
        ("404", "No such row in the caller's organization"),
    ];
    for (status, description) in common {
        if responses.get(status).is_none() {
            responses[status] = error_response(description);
        }
    }
    responses
}

fn management(summary: &str, permission: &str, responses: Value) -> Value {
    json!({
        "summary": summary,
        "description": format!("Needs `{permission}`."),
        "security": [{ "bearerAuth": [permission] }, { "sessionCookie": [], "csrfHeader": [] }],
        "responses": management_errors(responses),
    })
}

fn with(mut operation: Value, key: &str, value: Value) -> Value {
    operation[key] = value;
    operation
}

fn path_parameter(name: &str, description: &str) -> Value {
    json!([{ "name": name, "in": "path", "required": true, "schema": { "type": "string" }, "description": description }])
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "schema": schema, "description": description })
}

fn page_parameters() -> Vec<Value> {
    vec![
        query(
            "limit",
            "1 to 100",
            json!({ "type": "integer", "minimum": 1, "maximum": 100, "default": 100 }),
        ),
        query(
            "offset",
            "rows to skip",
            json!({ "type": "integer", "minimum": 0, "default": 0 }),
        ),
    ]
}

fn page_of(item: &str) -> Value {
    json!({
        "type": "object",
        "required": ["data", "count", "limit", "offset"],
        "properties": {
            "data": { "type": "array", "items": { "$ref": format!("#/components/schemas/{item}") } },
            "count": { "type": "integer", "description": "How many match in all" },
            "limit": { "type": "integer" },
            "offset": { "type": "integer" },
            "next_cursor": { "type": "string", "description": "Where a full page of keys ends; pass it as `cursor`" }
        }
    })
}

fn timestamp() -> Value {
    json!({ "type": "string", "format": "date-time" })
}

fn nullable_timestamp() -> Value {
    json!({ "type": ["string", "null"], "format": "date-time" })
}

fn strings() -> Value {
    json!({ "type": "array", "items": { "type": "string" } })
}

fn paths() -> Value {
    let no_store_token = json!({
        "description": "A token; `Cache-Control: no-store`",
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/TokenResponse" } } }
    });
    let token_request = json!({
        "required": true,
        "content": {
            "application/x-www-form-urlencoded": { "schema": { "$ref": "#/components/schemas/TokenForm" } },
            "application/json": { "schema": { "$ref": "#/components/schemas/TokenJson" } }
        }
    });
    let token_form = json!({
        "required": true,
        "content": { "application/x-www-form-urlencoded": { "schema": { "$ref": "#/components/schemas/TokenParameter" } } }
    });
    let client_security = json!([{ "clientBasic": [] }, { "bearerAuth": [] }, {}]);
    let mut list_keys_parameters = vec![
        query(
            "environment",
            "repeatable filter",
            json!({ "type": "string", "enum": ["live", "test"] }),
        ),
        query(
            "status",
            "repeatable filter",
            json!({ "type": "string", "enum": ["enabled", "disabled", "revoked"] }),
        ),
        query(
            "order_by",
            "sort column",
            json!({ "type": "string", "enum": ["name", "environment", "status", "created_at", "last_used_at"], "default": "created_at" }),
        ),
        query(
            "order",
            "sort direction",
            json!({ "type": "string", "enum": ["asc", "desc"], "default": "asc" }),
        ),
    ];
    list_keys_parameters.extend(page_parameters());
    list_keys_parameters.push(query(
        "cursor",
        "the previous page's next_cursor: continue after it (keyset pagination; not with offset)",
        json!({ "type": "string" }),
    ));
    let mut audit_parameters = vec![
        query(
            "actor",
            "e.g. user:ada@example.com or api_key:kgc_…",
            json!({ "type": "string" }),
        ),
        query(
            "action",
            "e.g. api_key.revoked",
            json!({ "type": "string" }),
        ),
        query(
            "target",
            "a client_id, user id or organization",
            json!({ "type": "string" }),
        ),
        query(
            "since",
            "RFC 3339, inclusive",
            json!({ "type": "string", "format": "date-time" }),
        ),
        query(
            "until",
            "RFC 3339, exclusive",
            json!({ "type": "string", "format": "date-time" }),
        ),
    ];
    audit_parameters.extend(page_parameters());
    let key_id = path_parameter("client_id", "The key's client_id");

    json!({
        "/v1/token": {
            "post": {
                "summary": "Trade API-key credentials for an access token (RFC 6749 section 4.4)",
                "description": "Client authentication by HTTP Basic (`client_secret_basic`) or in the body (`client_secret_post`, or the JSON names). Credentials in the URL are refused.",
                "security": [{ "clientBasic": [] }, {}],
                "requestBody": token_request,
                "responses": {
                    "200": no_store_token,
                    "400": error_response("invalid_request, unsupported_grant_type or invalid_scope"),
                    "401": error_response("invalid_client, with WWW-Authenticate: Basic"),
                    "413": error_response("The body is over 4 KiB"),
                    "429": error_response("Too many failed authentications from this address; see Retry-After"),
                    "503": error_response("Too many requests waiting for bcrypt; see Retry-After")
                }
            }
        },
        "/v1/introspect": {
            "post": {
                "summary": "Token introspection (RFC 7662); needs tokens:introspect",
                "security": client_security,
                "requestBody": token_form,
                "responses": {
                    "200": json_response("`{\"active\": false}` or the token's claims", "Introspection"),
                    "400": error_response("Malformed request"),
                    "401": error_response("No valid client credentials"),
                    "403": error_response("The caller lacks tokens:introspect")
                }
            }
        },
        "/v1/revoke": {
            "post": {
                "summary": "Token revocation (RFC 7009): the caller's own tokens, or any of its organization's with tokens:revoke",
                "security": client_security,
                "requestBody": token_form,
                "responses": {
                    "200": { "description": "Revoked, or nothing to revoke (also for invalid tokens)" },
                    "400": error_response("Malformed request"),
                    "401": error_response("No valid client credentials")
                }
            }
        },
        "/.well-known/jwks.json": {
            "get": {
                "summary": "The JWK Set of every key that may verify a live token (RFC 7517)",
                "security": [],
                "responses": { "200": json_response("Public keys only", "Jwks") }
            }
        },
        "/.well-known/oauth-authorization-server": {
            "get": {
                "summary": "Authorization-server metadata (RFC 8414)",
                "security": [],
                "responses": { "200": json_response("Metadata", "Metadata") }
            }
        },
        "/v1/me": {
            "get": {
                "summary": "The API key behind the token",
                "security": [{ "bearerAuth": [] }],
                "responses": {
                    "200": json_response("The key and the token", "Me"),
                    "401": error_response("invalid_token, with WWW-Authenticate: Bearer")
                }
            }
        },
        "/v1/me/permissions": {
            "get": {
                "summary": "What this token may do (from the token alone; the key's grants are in /v1/me)",
                "security": [{ "bearerAuth": [] }],
                "responses": {
                    "200": json_response("Scopes", "Permissions"),
                    "401": error_response("invalid_token, with WWW-Authenticate: Bearer")
                }
            }
        },
        "/v1/session": {
            "post": {
                "summary": "Log in to the console: sets the HttpOnly, SameSite=Strict session cookie",
                "security": [],
                "requestBody": json_body("LoginRequest"),
                "responses": {
                    "200": json_response("The session, with its CSRF token", "Session"),
                    "401": error_response("invalid_credentials"),
                    "429": error_response("Locked after repeated failures; see Retry-After")
                }
            },
            "get": {
                "summary": "The current console session",
                "security": [{ "sessionCookie": [] }],
                "responses": {
                    "200": json_response("The session", "Session"),
                    "401": error_response("No live session")
                }
            },
            "delete": {
                "summary": "Log out",
                "security": [{ "sessionCookie": [], "csrfHeader": [] }],
                "responses": {
                    "204": { "description": "The session ended; the cookie is cleared" },
                    "401": error_response("No live session"),
                    "403": error_response("Missing X-CSRF-Token")
                }
            }
        },
        "/v1/api-keys": {
            "get": with(
                management("List API keys (holders of api_keys:manage see the organization's, others their own)", "api_keys:read",
                    json!({ "200": json_response("A page of keys", "ApiKeyPage") })),
                "parameters", Value::Array(list_keys_parameters)),
            "post": with(
                management("Create an API key; its secret is in this answer only", "api_keys:write",
                    json!({ "201": json_response("The key and its secret; Cache-Control: no-store", "CreatedApiKey") })),
                "requestBody", json_body("CreateApiKeyRequest"))
        },
        "/v1/api-keys/{client_id}": {
            "parameters": key_id,
            "get": management("Retrieve an API key", "api_keys:read", json!({ "200": json_response("The key", "ApiKey") })),
            "patch": with(
                management("Rename, disable or enable a key, or replace its metadata", "api_keys:write",
                    json!({
                        "200": json_response("The key", "ApiKey"),
                        "409": error_response("The key is revoked")
                    })),
                "requestBody", json_body("UpdateApiKeyRequest")),
            "delete": management("Delete a key: revoke it and hide it (its row and audit trail stay)", "api_keys:write",
                json!({ "200": json_response("`{\"deleted\": true}`", "Deleted") }))
        },
        "/v1/api-keys/{client_id}/revoke": {
            "parameters": key_id,
            "post": management("Revoke a key at once; final", "api_keys:write", json!({ "200": json_response("The revoked key", "ApiKey") }))
        },
        "/v1/api-keys/{client_id}/rotate": {
            "parameters": key_id,
            "post": with(
                management("Issue a new secret; the old one works for the grace period", "api_keys:write",
                    json!({
                        "200": json_response("The key and its new secret; Cache-Control: no-store", "RotatedApiKey"),
                        "409": error_response("The key is revoked")
                    })),
                "requestBody", json_body("RotateApiKeyRequest"))
        },
        "/v1/users": {
            "get": management("List the organization's users", "users:manage", json!({ "200": json_response("Users", "UserPage") })),
            "post": with(
                management("Create a user; a generated password is in this answer only", "users:manage",
                    json!({
                        "201": json_response("The user; Cache-Control: no-store", "CreatedUser"),
                        "409": error_response("The email is taken")
                    })),
                "requestBody", json_body("CreateUserRequest"))
        },
        "/v1/users/{user_id}": {
            "parameters": path_parameter("user_id", "The user's id (usr_…)"),
            "get": management("Retrieve a user", "users:manage", json!({ "200": json_response("The user", "User") })),
            "patch": with(
                management("Change a user's permissions, administrator flag or status", "users:manage",
                    json!({ "200": json_response("The user", "User") })),
                "requestBody", json_body("UpdateUserRequest"))
        },
        "/v1/organizations": {
            "get": management("List organizations (deployment administrators)", "organizations:manage",
                json!({ "200": json_response("Organizations", "OrganizationPage") })),
            "post": with(
                management("Create an organization", "organizations:manage",
                    json!({
                        "201": json_response("The organization", "Organization"),
                        "409": error_response("The name is taken")
                    })),
                "requestBody", json_body("CreateOrganizationRequest"))
        },
        "/v1/organizations/{name}": {
            "parameters": path_parameter("name", "The organization's name"),
            "get": management("Retrieve an organization", "organizations:manage", json!({ "200": json_response("The organization", "Organization") }))
        },
        "/v1/audit-events": {
            "get": with(
                management("The organization's audit trail, newest first", "audit:read",
                    json!({ "200": json_response("A page of events", "AuditEventPage") })),
                "parameters", Value::Array(audit_parameters))
        },
        "/openapi.json": {
            "get": { "summary": "This document", "security": [], "responses": { "200": { "description": "OpenAPI 3.1" } } }
        },
        "/healthz": {
            "get": { "summary": "Liveness", "security": [], "responses": { "200": json_response("Serving", "Health") } }
        },
        "/readyz": {
            "get": {
                "summary": "Readiness: the database answers and the change feed is followed",
                "security": [],
                "responses": { "200": json_response("Ready", "Health"), "503": error_response("Not ready") }
            }
        }
    })
}

fn schemas() -> Value {
    let api_key = json!({
        "type": "object",
        "required": ["client_id", "name", "environment", "scopes", "status", "metadata", "created_at"],
        "properties": {
            "client_id": { "type": "string", "example": "kgc_8fK2mQ9xL3aBk2Pq7Rt1" },
            "name": { "type": "string" },
            "key_prefix": { "type": ["string", "null"], "description": "The public start of the current secret", "example": "kgs_live_8fK2mQ9x" },
            "environment": { "type": "string", "enum": ["live", "test"] },
            "scopes": strings(),
            "status": { "type": "string", "enum": ["enabled", "disabled", "revoked"] },
            "metadata": { "type": "object", "additionalProperties": { "type": "string" } },
            "created_at": timestamp(),
            "last_used_at": nullable_timestamp(),
            "expires_at": nullable_timestamp(),
            "revoked_at": nullable_timestamp(),
            "created_by": { "type": ["string", "null"], "description": "The creator's email" }
        }
    });
    let user = json!({
        "type": "object",
        "required": ["email", "organization", "admin", "permissions", "status", "created_at"],
        "properties": {
            "id": { "type": ["string", "null"], "example": "usr_3kQ9xL2mP8aB7cD1" },
            "email": { "type": "string" },
            "organization": { "type": "string" },
            "admin": { "type": "boolean" },
            "permissions": strings(),
            "status": { "type": "string", "enum": ["enabled", "disabled"] },
            "created_at": timestamp(),
            "last_login_at": nullable_timestamp()
        }
    });
    let with_secret =
        |extra: Value| json!({ "allOf": [{ "$ref": "#/components/schemas/ApiKey" }, extra] });
    json!({
        "Error": {
            "type": "object",
            "required": ["error", "error_description"],
            "properties": {
                "error": { "type": "string", "description": "RFC 6749/6750 code, or not_found, forbidden, conflict, rate_limited, …" },
                "error_description": { "type": "string" },
                "field": { "type": "string", "description": "The input at fault, for validation errors" }
            }
        },
        "TokenForm": {
            "type": "object",
            "required": ["grant_type"],
            "properties": {
                "grant_type": { "const": "client_credentials" },
                "scope": { "type": "string", "description": "Space-separated; narrows the token" },
                "client_id": { "type": "string" },
                "client_secret": { "type": "string" }
            }
        },
        "TokenJson": {
            "type": "object",
            "properties": {
                "client_id": { "type": "string" },
                "client_secret": { "type": "string" },
                "api_key": { "type": "string", "description": "Alias of client_id" },
                "api_secret": { "type": "string", "description": "Alias of client_secret" },
                "scope": { "type": "string" },
                "grant_type": { "const": "client_credentials" }
            }
        },
        "TokenResponse": {
            "type": "object",
            "required": ["access_token", "token", "token_type", "expires_in", "expires_at", "scope"],
            "properties": {
                "access_token": { "type": "string", "description": "An RFC 9068 JWT" },
                "token": { "type": "string", "description": "The same token" },
                "token_type": { "const": "Bearer" },
                "expires_in": { "type": "integer", "example": 900 },
                "expires_at": { "type": "integer", "description": "Unix seconds" },
                "scope": { "type": "string" }
            }
        },
        "TokenParameter": {
            "type": "object",
            "required": ["token"],
            "properties": {
                "token": { "type": "string" },
                "token_type_hint": { "type": "string" },
                "client_id": { "type": "string" },
                "client_secret": { "type": "string" }
            }
        },
        "Introspection": {
            "type": "object",
            "required": ["active"],
            "properties": {
                "active": { "type": "boolean" },
                "scope": { "type": "string" },
                "client_id": { "type": "string" },
                "token_type": { "type": "string" },
                "exp": { "type": "integer" },
                "iat": { "type": "integer" },
                "nbf": { "type": "integer" },
                "sub": { "type": "string" },
                "aud": { "type": "string" },
                "iss": { "type": "string" },
                "jti": { "type": "string" },
                "env": { "type": "string" },
                "org": { "type": "string" }
            }
        },
        "Jwks": { "type": "object", "required": ["keys"], "properties": { "keys": { "type": "array", "items": { "type": "object" } } } },
        "Metadata": {
            "type": "object",
            "required": ["issuer", "token_endpoint", "jwks_uri", "response_types_supported"],
            "properties": {
                "issuer": { "type": "string" },
                "token_endpoint": { "type": "string" },
                "jwks_uri": { "type": "string" },
                "introspection_endpoint": { "type": "string" },
                "revocation_endpoint": { "type": "string" },
                "grant_types_supported": strings(),
                "token_endpoint_auth_methods_supported": strings(),
                "response_types_supported": strings(),
                "scopes_supported": strings()
            }
        },
        "Me": {
            "type": "object",
            "required": ["client_id", "name", "environment", "organization", "status", "scopes", "token"],
            "properties": {
                "client_id": { "type": "string" },
                "name": { "type": "string" },
                "environment": { "type": "string" },
                "organization": { "type": "string" },
                "status": { "type": "string" },
                "scopes": strings(),
                "created_at": timestamp(),
                "expires_at": nullable_timestamp(),
                "token": {
                    "type": "object",
                    "properties": { "scopes": strings(), "issued_at": { "type": "integer" }, "expires_at": { "type": "integer" } }
                }
            }
        },
        "Permissions": {
            "type": "object",
            "required": ["client_id", "environment", "organization", "scopes", "expires_at"],
            "properties": {
                "client_id": { "type": "string" },
                "environment": { "type": "string" },
                "scopes": strings(),
                "organization": { "type": "string" },
                "expires_at": { "type": "integer", "description": "The token's expiry, unix seconds" }
            }
        },
        "LoginRequest": {
            "type": "object",
            "additionalProperties": false,
            "required": ["email", "password"],
            "properties": { "email": { "type": "string" }, "password": { "type": "string" } }
        },
        "Session": {
            "type": "object",
            "required": ["user", "csrf_token", "expires_at"],
            "properties": {
                "user": { "$ref": "#/components/schemas/User" },
                "csrf_token": { "type": "string", "description": "Send as X-CSRF-Token on POST, PATCH and DELETE" },
                "expires_at": timestamp()
            }
        },
        "ApiKey": api_key,
        "CreatedApiKey": with_secret(json!({
            "type": "object",
            "required": ["client_secret"],
            "properties": { "client_secret": { "type": "string", "description": "Shown this once" } }
        })),
        "RotatedApiKey": with_secret(json!({
            "type": "object",
            "required": ["client_secret"],
            "properties": {
                "client_secret": { "type": "string", "description": "Shown this once" },
                "previous_secret_expires_at": nullable_timestamp()
            }
        })),
        "ApiKeyPage": page_of("ApiKey"),
        "CreateApiKeyRequest": {
            "type": "object",
            "additionalProperties": false,
            "required": ["name"],
            "description": "Exactly one of scopes, read_only, full_access; at most one of expires_on, expires_in_days.",
            "properties": {
                "name": { "type": "string", "maxLength": 100 },
                "scopes": strings(),
                "read_only": { "type": "boolean", "description": "Every :read API scope the creator holds" },
                "full_access": { "type": "boolean", "description": "Every API scope the creator holds" },
                "environment": { "type": "string", "enum": ["live", "test"], "default": "live" },
                "expires_on": { "type": "string", "format": "date", "description": "Expires at 00:00 UTC on this date" },
                "expires_in_days": { "type": "integer", "minimum": 1, "maximum": 3650 },
                "metadata": { "type": "object", "maxProperties": 20, "additionalProperties": { "type": "string", "maxLength": 500 } }
            }
        },
        "UpdateApiKeyRequest": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "name": { "type": "string" },
                "status": { "type": "string", "enum": ["enabled", "disabled"] },
                "metadata": { "type": "object", "additionalProperties": { "type": "string" } }
            }
        },
        "RotateApiKeyRequest": {
            "type": "object",
            "additionalProperties": false,
            "properties": { "grace_period_seconds": { "type": "integer", "minimum": 0, "maximum": 604800, "default": 0 } }
        },
        "Deleted": { "type": "object", "required": ["deleted"], "properties": { "deleted": { "const": true } } },
        "User": user,
        "CreatedUser": {
            "allOf": [
                { "$ref": "#/components/schemas/User" },
                { "type": "object", "properties": { "password": { "type": "string", "description": "The generated password, shown this once" } } }
            ]
        },
        "UserPage": page_of("User"),
        "CreateUserRequest": {
            "type": "object",
            "additionalProperties": false,
            "required": ["email"],
            "properties": {
                "email": { "type": "string" },
                "permissions": strings(),
                "admin": { "type": "boolean", "default": false },
                "password": { "type": "string", "minLength": 12, "description": "Omit to have one generated" }
            }
        },
        "UpdateUserRequest": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "permissions": strings(),
                "admin": { "type": "boolean" },
                "status": { "type": "string", "enum": ["enabled", "disabled"] }
            }
        },
        "Organization": {
            "type": "object",
            "required": ["name", "created_at"],
            "properties": { "name": { "type": "string" }, "created_at": timestamp() }
        },
        "OrganizationPage": page_of("Organization"),
        "CreateOrganizationRequest": {
            "type": "object",
            "additionalProperties": false,
            "required": ["name"],
            "properties": { "name": { "type": "string", "pattern": "^[a-z][a-z0-9-]{2,39}$" } }
        },
        "AuditEvent": {
            "type": "object",
            "required": ["id", "occurred_at", "actor", "action", "outcome", "details"],
            "properties": {
                "id": { "type": "integer" },
                "occurred_at": timestamp(),
                "actor": { "type": "string" },
                "action": { "type": "string" },
                "target": { "type": ["string", "null"] },
                "outcome": { "type": "string" },
                "client_ip": { "type": ["string", "null"] },
                "user_agent": { "type": ["string", "null"] },
                "details": { "type": "object" }
            }
        },
        "AuditEventPage": page_of("AuditEvent"),
        "Health": { "type": "object", "required": ["status"], "properties": { "status": { "type": "string" } } }
    })
}

/// The document, for an issuer (its server URL).
pub fn document(issuer: &str) -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "keygate",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "OAuth 2.0 client-credentials token service: API keys in, short-lived signed JWTs out."
        },
        "servers": [{ "url": issuer }],
        "paths": paths(),
        "components": {
            "schemas": schemas(),
            "securitySchemes": {
                "clientBasic": { "type": "http", "scheme": "basic", "description": "client_id and client_secret (RFC 6749 section 2.3.1)" },
                "bearerAuth": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" },
                "sessionCookie": { "type": "apiKey", "in": "cookie", "name": "keygate_session" },
                "csrfHeader": { "type": "apiKey", "in": "header", "name": "X-CSRF-Token" }
            }
        }
    })
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
    }

    #[test]
    fn every_schema_reference_resolves() {
        let doc = document("http://example.test");
        let text = doc.to_string();
        for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = reference.split('"').next().unwrap();
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "unresolved $ref {name}"
            );
        }
    }
}
