//! `ApiError`: the one place where statuses, error codes and authentication challenges are
//! chosen. Bodies follow RFC 6749 section 5.2 (`{"error", "error_description"}`) everywhere;
//! bearer failures add the RFC 6750 section 3 `WWW-Authenticate` challenge.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::auth::client_credentials::CredentialError;
use crate::domain::ValidationError;
use crate::service;

/// The realm in every `WWW-Authenticate` challenge.
pub const REALM: &str = "keygate";

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// RFC 6749 `invalid_request`: missing, repeated or malformed parameters.
    #[error("{0}")]
    InvalidRequest(String),
    /// RFC 6749 `invalid_client`: one answer for unknown id, wrong secret, revoked, disabled,
    /// expired, so the response reveals nothing about which.
    #[error("client authentication failed")]
    InvalidClient,
    /// A console login with a wrong email or password (one answer for both).
    #[error("wrong email or password")]
    InvalidCredentials,
    #[error("only the client_credentials and refresh_token grants are supported")]
    UnsupportedGrantType,
    /// RFC 6749 `invalid_grant`: a refresh token that does not stand (one answer for every
    /// reason).
    #[error("the refresh token is invalid, expired, revoked or already used")]
    InvalidGrant,
    /// RFC 6749 `unauthorized_client`: an authenticated client asked for something it may not
    /// do (RFC 7009: revoking a token issued to another client).
    #[error("{0}")]
    UnauthorizedClient(String),
    /// RFC 6749 `invalid_scope`.
    #[error("{0}")]
    InvalidScope(String),
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    /// RFC 6750: no credentials on a protected route (the challenge carries no error code).
    #[error("an access token is required")]
    MissingToken,
    /// RFC 6750 `invalid_token`.
    #[error("{0}")]
    InvalidToken(&'static str),
    /// RFC 6750 `invalid_request` on a protected route (a malformed Authorization header).
    #[error("{0}")]
    MalformedAuthorization(&'static str),
    /// RFC 6750 `insufficient_scope`, naming the scope or management permission the request
    /// needs (the credentials may be a bearer token, HTTP Basic or a console session).
    #[error("the credentials sent lack the required scope {required}")]
    InsufficientScope { required: String },
    /// A field of a management request failed validation.
    #[error("{0}")]
    Validation(#[from] ValidationError),
    /// Authenticated, but refused for another reason than a missing scope (a CSRF check).
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    #[error("{0}")]
    Conflict(String),
    #[error("too many requests")]
    RateLimited { retry_after_seconds: u64 },
    #[error("the service is busy")]
    Unavailable { retry_after_seconds: u64 },
    /// Anything unexpected: logged with its cause chain, answered as a bare `server_error`.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// The application layer's refusals, as HTTP answers.
impl From<service::Error> for ApiError {
    fn from(err: service::Error) -> ApiError {
        use service::Error as E;
        match err {
            E::Validation(v) => ApiError::Validation(v),
            E::NotFound => ApiError::NotFound,
            E::MissingPermission(p) => ApiError::InsufficientScope {
                required: p.as_str().to_owned(),
            },
            E::Forbidden(message) => ApiError::Forbidden(message),
            E::Conflict(message) => ApiError::Conflict(message),
            E::InvalidClient => ApiError::InvalidClient,
            E::InvalidGrant => ApiError::InvalidGrant,
            E::UnauthorizedClient(message) => ApiError::UnauthorizedClient(message),
            E::InvalidScope(message) => ApiError::InvalidScope(message),
            E::InvalidCredentials => ApiError::InvalidCredentials,
            E::MissingCredentials => ApiError::MissingToken,
            E::InvalidToken(description) => ApiError::InvalidToken(description),
            E::RateLimited {
                retry_after_seconds,
            } => ApiError::RateLimited {
                retry_after_seconds,
            },
            E::Unavailable {
                retry_after_seconds,
            } => ApiError::Unavailable {
                retry_after_seconds,
            },
            E::Internal(cause) => ApiError::Internal(cause),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(err: diesel::result::Error) -> ApiError {
        crate::service::Error::from(err).into()
    }
}

impl From<CredentialError> for ApiError {
    fn from(err: CredentialError) -> ApiError {
        match err {
            CredentialError::InvalidRequest(message) => ApiError::InvalidRequest(message),
            CredentialError::InvalidClient => ApiError::InvalidClient,
            CredentialError::UnsupportedGrantType => ApiError::UnsupportedGrantType,
        }
    }
}

impl ApiError {
    pub fn internal(err: impl Into<anyhow::Error>) -> ApiError {
        ApiError::Internal(err.into())
    }

    pub fn invalid_request(message: impl Into<String>) -> ApiError {
        ApiError::InvalidRequest(message.into())
    }

    /// The stable, snake_case error code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest(_)
            | ApiError::PayloadTooLarge { .. }
            | ApiError::MalformedAuthorization(_)
            | ApiError::Validation(_) => "invalid_request",
            ApiError::InvalidClient => "invalid_client",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::UnsupportedGrantType => "unsupported_grant_type",
            ApiError::InvalidGrant => "invalid_grant",
            ApiError::UnauthorizedClient(_) => "unauthorized_client",
            ApiError::InvalidScope(_) => "invalid_scope",
            ApiError::MissingToken | ApiError::InvalidToken(_) => "invalid_token",
            ApiError::InsufficientScope { .. } => "insufficient_scope",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Conflict(_) => "conflict",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable { .. } => "temporarily_unavailable",
            ApiError::Internal(_) => "server_error",
        }
    }

    fn field(&self) -> Option<&str> {
        match self {
            ApiError::Validation(v) => Some(&v.field),
            _ => None,
        }
    }

    fn description(&self) -> String {
        match self {
            ApiError::Validation(v) => sanitize(&format!("{}: {}", v.field, v.message)),
            other => sanitize(&other.to_string()),
        }
    }

    fn challenge(&self) -> Option<String> {
        let bearer = |error: &str, extra: String| {
            format!(
                "Bearer realm=\"{REALM}\", error=\"{error}\", error_description=\"{}\"{extra}",
                self.description()
            )
        };
        match self {
            ApiError::InvalidClient => Some(format!("Basic realm=\"{REALM}\"")),
            ApiError::MissingToken | ApiError::InvalidCredentials => {
                Some(format!("Bearer realm=\"{REALM}\""))
            }
            ApiError::InvalidToken(_) => Some(bearer("invalid_token", String::new())),
            ApiError::MalformedAuthorization(_) => Some(bearer("invalid_request", String::new())),
            ApiError::InsufficientScope { required } => Some(bearer(
                "insufficient_scope",
                format!(", scope=\"{}\"", sanitize(required)),
            )),
            _ => None,
        }
    }
}

/// Every value `ApiError::code` can take.
pub const ERROR_CODES: [&str; 16] = [
    "invalid_request",
    "invalid_client",
    "invalid_credentials",
    "unsupported_grant_type",
    "invalid_grant",
    "unauthorized_client",
    "invalid_scope",
    "invalid_token",
    "insufficient_scope",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "conflict",
    "rate_limited",
    "temporarily_unavailable",
    "server_error",
];

/// The body of every error answer (RFC 6749 section 5.2).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody<'a> {
    #[schema(schema_with = error_code_schema)]
    error: &'a str,
    /// What went wrong, in the characters RFC 6749 section 5.2 allows.
    #[schema(max_length = 300, pattern = r"^[ !#-\[\]-~]*$")]
    error_description: String,
    /// The input at fault, for validation errors (e.g. `name`, `metadata`, `nested.count`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    field: Option<&'a str>,
}

fn error_code_schema() -> utoipa::openapi::schema::Object {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some(
            "An RFC 6749/6750 code, or keygate's own: invalid_credentials, forbidden, not_found, method_not_allowed, conflict, rate_limited",
        ))
        .enum_values(Some(ERROR_CODES))
        .build()
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::InvalidRequest(_)
            | ApiError::UnsupportedGrantType
            | ApiError::InvalidGrant
            | ApiError::UnauthorizedClient(_)
            | ApiError::InvalidScope(_)
            | ApiError::MalformedAuthorization(_)
            | ApiError::Validation(_) => StatusCode::BAD_REQUEST,
            ApiError::InvalidClient
            | ApiError::InvalidCredentials
            | ApiError::MissingToken
            | ApiError::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            ApiError::InsufficientScope { .. } | ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let ApiError::Internal(err) = self {
            log::error!("internal error: {err:#}");
        }
        let mut response = HttpResponse::build(self.status_code());
        response
            .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
            .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")));
        if let Some(challenge) = self.challenge() {
            response.insert_header((header::WWW_AUTHENTICATE, challenge));
        }
        match self {
            ApiError::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, allow.as_str()));
            }
            ApiError::RateLimited {
                retry_after_seconds,
            }
            | ApiError::Unavailable {
                retry_after_seconds,
            } => {
                response.insert_header((header::RETRY_AFTER, retry_after_seconds.to_string()));
            }
            _ => {}
        }
        response.json(ErrorBody {
            error: self.code(),
            error_description: self.description(),
            field: self.field(),
        })
    }
}

/// Keeps only the characters RFC 6749 5.2 allows in `error_description` (`%x20-21 / %x23-5B /
/// %x5D-7E`), which also makes the text safe inside a quoted `WWW-Authenticate` parameter.
pub fn sanitize(text: &str) -> String {
    text.chars()
        .take(300)
        .map(|c| match c {
            '"' => '\'',
            '\\' => '/',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::to_bytes;

    async fn render(
        err: ApiError,
    ) -> (
        StatusCode,
        actix_web::http::header::HeaderMap,
        serde_json::Value,
    ) {
        let response = err.error_response();
        let status = response.status();
        let headers = response.headers().clone();
        let body = to_bytes(response.into_body()).await.unwrap();
        (status, headers, serde_json::from_slice(&body).unwrap())
    }

    fn header<'a>(headers: &'a actix_web::http::header::HeaderMap, name: &str) -> Option<&'a str> {
        headers.get(name).map(|v| v.to_str().unwrap())
    }

    #[actix_rt::test]
    async fn every_variant_has_its_status_code_and_no_store() {
        let table: Vec<(ApiError, u16, &str)> = vec![
            (ApiError::invalid_request("x"), 400, "invalid_request"),
            (ApiError::InvalidClient, 401, "invalid_client"),
            (ApiError::InvalidCredentials, 401, "invalid_credentials"),
            (
                ApiError::UnsupportedGrantType,
                400,
                "unsupported_grant_type",
            ),
            (ApiError::InvalidGrant, 400, "invalid_grant"),
            (ApiError::InvalidScope("x".into()), 400, "invalid_scope"),
            (
                ApiError::UnauthorizedClient("x".into()),
                400,
                "unauthorized_client",
            ),
            (
                ApiError::PayloadTooLarge { limit: 1 },
                413,
                "invalid_request",
            ),
            (ApiError::MissingToken, 401, "invalid_token"),
            (ApiError::InvalidToken("x"), 401, "invalid_token"),
            (
                ApiError::MalformedAuthorization("x"),
                400,
                "invalid_request",
            ),
            (
                ApiError::InsufficientScope {
                    required: "a:read".into(),
                },
                403,
                "insufficient_scope",
            ),
            (
                ValidationError::new("name", "bad").into(),
                400,
                "invalid_request",
            ),
            (ApiError::Forbidden("x".into()), 403, "forbidden"),
            (ApiError::NotFound, 404, "not_found"),
            (
                ApiError::MethodNotAllowed {
                    allow: "POST".into(),
                },
                405,
                "method_not_allowed",
            ),
            (ApiError::Conflict("x".into()), 409, "conflict"),
            (
                ApiError::RateLimited {
                    retry_after_seconds: 3,
                },
                429,
                "rate_limited",
            ),
            (
                ApiError::Unavailable {
                    retry_after_seconds: 1,
                },
                503,
                "temporarily_unavailable",
            ),
            (
                ApiError::internal(anyhow::anyhow!("secret detail")),
                500,
                "server_error",
            ),
        ];
        for (err, status, code) in table {
            assert!(ERROR_CODES.contains(&err.code()), "{code} is documented");
            let (got, headers, body) = render(err).await;
            assert_eq!(got.as_u16(), status, "{code}");
            assert_eq!(body["error"], code);
            assert_eq!(header(&headers, "cache-control"), Some("no-store"));
            assert_eq!(header(&headers, "pragma"), Some("no-cache"));
        }
    }

    #[actix_rt::test]
    async fn internal_errors_hide_their_cause() {
        let (_, _, body) = render(ApiError::internal(anyhow::anyhow!("password=hunter2"))).await;
        assert_eq!(body["error_description"], "internal error");
    }

    #[actix_rt::test]
    async fn challenges_follow_rfc_6750() {
        let (_, headers, body) = render(ApiError::MissingToken).await;
        assert_eq!(
            header(&headers, "www-authenticate"),
            Some("Bearer realm=\"keygate\"")
        );
        assert_eq!(body["error_description"], "an access token is required");

        let (_, headers, _) = render(ApiError::InvalidToken("the access token has expired")).await;
        assert_eq!(
            header(&headers, "www-authenticate"),
            Some(
                "Bearer realm=\"keygate\", error=\"invalid_token\", error_description=\"the access token has expired\""
            )
        );

        let (_, headers, _) = render(ApiError::InsufficientScope {
            required: "a:read b:write".into(),
        })
        .await;
        let challenge = header(&headers, "www-authenticate").unwrap();
        assert!(challenge.starts_with("Bearer realm=\"keygate\", error=\"insufficient_scope\""));
        assert!(challenge.ends_with(", scope=\"a:read b:write\""));

        let (_, headers, _) = render(ApiError::InvalidClient).await;
        assert_eq!(
            header(&headers, "www-authenticate"),
            Some("Basic realm=\"keygate\"")
        );
    }

    #[actix_rt::test]
    async fn rate_limits_and_405_carry_their_headers() {
        let (_, headers, _) = render(ApiError::RateLimited {
            retry_after_seconds: 7,
        })
        .await;
        assert_eq!(header(&headers, "retry-after"), Some("7"));
        let (_, headers, _) = render(ApiError::MethodNotAllowed {
            allow: "POST".into(),
        })
        .await;
        assert_eq!(header(&headers, "allow"), Some("POST"));
    }

    #[actix_rt::test]
    async fn validation_errors_name_the_field() {
        let (_, _, body) = render(ValidationError::new("scopes", "unknown scope `x`").into()).await;
        assert_eq!(body["field"], "scopes");
        assert_eq!(body["error_description"], "scopes: unknown scope `x`");
    }

    #[actix_rt::test]
    async fn every_service_refusal_has_its_answer() {
        use crate::domain::ManagementPermission;
        use service::Error as E;
        let table: Vec<(E, u16, &str)> = vec![
            (
                ValidationError::new("name", "bad").into(),
                400,
                "invalid_request",
            ),
            (E::NotFound, 404, "not_found"),
            (
                E::MissingPermission(ManagementPermission::UsersManage),
                403,
                "insufficient_scope",
            ),
            (E::Forbidden("x".into()), 403, "forbidden"),
            (E::Conflict("x".into()), 409, "conflict"),
            (E::InvalidClient, 401, "invalid_client"),
            (E::InvalidGrant, 400, "invalid_grant"),
            (E::InvalidScope("x".into()), 400, "invalid_scope"),
            (E::InvalidCredentials, 401, "invalid_credentials"),
            (E::MissingCredentials, 401, "invalid_token"),
            (E::InvalidToken("x"), 401, "invalid_token"),
            (
                E::RateLimited {
                    retry_after_seconds: 2,
                },
                429,
                "rate_limited",
            ),
            (
                E::Unavailable {
                    retry_after_seconds: 1,
                },
                503,
                "temporarily_unavailable",
            ),
            (
                E::internal(anyhow::anyhow!("secret detail")),
                500,
                "server_error",
            ),
        ];
        for (err, status, code) in table {
            let (got, _, body) = render(err.into()).await;
            assert_eq!(got.as_u16(), status, "{code}");
            assert_eq!(body["error"], code);
            assert!(!body.to_string().contains("secret detail"));
        }
        let (_, headers, _) =
            render(E::MissingPermission(ManagementPermission::UsersManage).into()).await;
        assert!(
            header(&headers, "www-authenticate")
                .unwrap()
                .ends_with("scope=\"users:manage\"")
        );
    }

    #[actix_rt::test]
    async fn credential_refusals_keep_their_rfc_6749_codes() {
        for (err, status, code) in [
            (
                CredentialError::invalid_request("x"),
                400,
                "invalid_request",
            ),
            (CredentialError::InvalidClient, 401, "invalid_client"),
            (
                CredentialError::UnsupportedGrantType,
                400,
                "unsupported_grant_type",
            ),
        ] {
            let (got, _, body) = render(err.into()).await;
            assert_eq!((got.as_u16(), body["error"].as_str()), (status, Some(code)));
        }
    }

    #[test]
    fn descriptions_keep_only_rfc_6749_characters() {
        assert_eq!(sanitize("a \"b\" \\c\u{e9}\n"), "a 'b' /c??");
        assert_eq!(sanitize(&"x".repeat(400)).len(), 300);
    }
}
