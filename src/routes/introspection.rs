//! Token introspection (RFC 7662) and revocation (RFC 7009). The caller authenticates as an
//! API key, with HTTP Basic, `client_id`/`client_secret` in the form, or a bearer token.
//! Introspection needs `tokens:introspect`; revocation of another client's token needs
//! `tokens:revoke`. Both only ever see tokens of the caller's organization.

use actix_web::http::header::{self};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde::Serialize;
use utoipa::openapi::schema::{ObjectBuilder, Type};

use super::body::read_limited;
use crate::auth::bearer_token;
use crate::auth::client_credentials::{MAX_TOKEN_REQUEST_BYTES, basic_credentials};
use crate::domain::Environment;
use crate::error::{ApiError, ErrorBody};
use crate::routes::no_store;
use crate::service::token_status::{self, Requester, RequesterCredentials};
use crate::state::AppState;
use crate::tokens::Audience;

pub struct TokenForm {
    token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

/// The form both endpoints read (RFC 7662 section 2.1, RFC 7009 section 2.1).
impl utoipa::PartialSchema for TokenForm {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let text = |description: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(description))
        };
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "The token, and the caller's credentials unless they come by HTTP Basic or as a bearer token",
            ))
            .property(
                "token",
                text("The token in question: an access token, or (for revocation) a refresh token"),
            )
            .required("token")
            .property(
                "token_type_hint",
                text("Accepted and looked past: keygate tells refresh tokens (`kgr_…`) from access tokens by their form"),
            )
            .property("client_id", text("The calling API key's client_id"))
            .property("client_secret", text("The calling API key's secret"))
            .into()
    }
}

impl utoipa::ToSchema for TokenForm {
    fn name() -> std::borrow::Cow<'static, str> {
        "TokenParameter".into()
    }
}

/// An introspection answer (RFC 7662 section 2.2).
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[schema(as = Introspection)]
pub enum IntrospectionResponse<'a> {
    Active(ActiveToken<'a>),
    /// Anything but a live token of the caller's organization: nothing more is said.
    Inactive {
        #[schema(schema_with = always_false)]
        active: bool,
    },
}

/// A live token's claims. Members in alphabetical order, as keygate has always sent them.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(description = "A live token: `active` and the token's claims (RFC 7662 section 2.2)")]
pub struct ActiveToken<'a> {
    #[schema(schema_with = always_true)]
    active: bool,
    aud: &'a Audience,
    client_id: &'a str,
    env: Environment,
    /// Expiry, Unix seconds.
    exp: i64,
    /// Issued at, Unix seconds.
    iat: i64,
    iss: &'a str,
    jti: &'a str,
    /// Not before, Unix seconds.
    nbf: i64,
    /// The organization of the token's key.
    org: &'a str,
    /// Space-separated, possibly empty.
    scope: &'a str,
    /// The token's client_id: a client-credentials token's subject is the client itself.
    sub: &'a str,
    #[schema(schema_with = bearer)]
    token_type: &'static str,
}

fn constant(value: impl Into<serde_json::Value>, schema_type: Type) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(schema_type)
        .enum_values(Some([value.into()]))
}

fn always_true() -> ObjectBuilder {
    constant(true, Type::Boolean)
}

fn always_false() -> ObjectBuilder {
    constant(false, Type::Boolean)
}

fn bearer() -> ObjectBuilder {
    constant("Bearer", Type::String)
}

fn parse_form(req: &HttpRequest, body: &[u8]) -> Result<TokenForm, ApiError> {
    let form = req
        .mime_type()
        .ok()
        .flatten()
        .is_some_and(|m| m.type_() == "application" && m.subtype() == "x-www-form-urlencoded");
    if !form {
        return Err(ApiError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded",
        ));
    }
    std::str::from_utf8(body)
        .map_err(|_| ApiError::invalid_request("the form body is not UTF-8"))?;
    let mut parsed = TokenForm {
        token: None,
        client_id: None,
        client_secret: None,
    };
    let mut hint_seen = false;
    for (name, value) in form_urlencoded::parse(body) {
        let slot = match name.as_ref() {
            "token" => &mut parsed.token,
            "client_id" => &mut parsed.client_id,
            "client_secret" => &mut parsed.client_secret,
            "token_type_hint" => {
                // A refresh token is told by its `kgr_` tag, so any hint is looked past
                // (RFC 7009 2.1 lets the server search across types).
                if std::mem::replace(&mut hint_seen, true) {
                    return Err(ApiError::invalid_request(
                        "parameter token_type_hint is repeated",
                    ));
                }
                continue;
            }
            _ => continue,
        };
        if slot.is_some() {
            return Err(ApiError::invalid_request(format!(
                "parameter {name} is repeated"
            )));
        }
        *slot = Some(value.into_owned()).filter(|v| !v.is_empty());
    }
    Ok(parsed)
}

/// How the requester authenticated: a bearer token, or its secret in HTTP Basic or the form
/// (exactly one of those two).
fn credentials(req: &HttpRequest, form: &TokenForm) -> Result<RequesterCredentials, ApiError> {
    let scheme_is_bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer "));
    if scheme_is_bearer {
        return Ok(RequesterCredentials::Bearer(bearer_token(req)?.to_owned()));
    }
    let (client_id, client_secret) = match (
        basic_credentials(req)?,
        &form.client_id,
        &form.client_secret,
    ) {
        (Some(_), _, Some(_)) => {
            return Err(ApiError::invalid_request(
                "use one client authentication method, not two",
            ));
        }
        (Some(pair), _, None) => pair,
        (None, Some(id), Some(secret)) => (id.clone(), secret.clone()),
        (None, _, _) => return Err(ApiError::InvalidClient),
    };
    Ok(RequesterCredentials::Secret {
        client_id,
        client_secret,
    })
}

/// Reads the form and authenticates the requester; the token it names, if any.
async fn read_request(
    req: &HttpRequest,
    payload: &mut web::Payload,
    state: &AppState,
) -> Result<(Requester, Option<String>), ApiError> {
    let body = read_limited(req, payload, MAX_TOKEN_REQUEST_BYTES).await?;
    let form = parse_form(req, &body)?;
    let credentials = credentials(req, &form)?;
    let requester =
        token_status::requester(&state.service, credentials, &state.origin(req)).await?;
    Ok((requester, form.token))
}

/// `POST /v1/introspect` (RFC 7662): `{"active": false}` for anything not a live token of the
/// caller's organization, else the token's claims.
#[utoipa::path(
    post,
    path = "/v1/introspect",
    tag = "tokens",
    summary = "Token introspection (RFC 7662); needs tokens:introspect",
    description = "The caller authenticates as an API key holding `tokens:introspect`: by HTTP \
        Basic, `client_id`/`client_secret` in the form, or a bearer token. Only tokens of the \
        caller's organization are ever active.",
    security(("clientBasic" = []), ("bearerAuth" = ["tokens:introspect"]), ()),
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "`{\"active\": false}` or the token's claims; \
            `Cache-Control: no-store`", body = IntrospectionResponse),
        (status = 400, description = "Malformed request", body = ErrorBody),
        (status = 401, description = "No valid client credentials", body = ErrorBody),
        (status = 403, description = "The caller lacks tokens:introspect", body = ErrorBody),
        (status = 413, description = "The body is over 4 KiB", body = ErrorBody),
    )
)]
pub async fn introspect(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (requester, token) = read_request(&req, &mut payload, &state).await?;
    let claims = token_status::introspect(&state.service, &requester, token.as_deref())?;
    let body = match &claims {
        Some(c) => IntrospectionResponse::Active(ActiveToken {
            active: true,
            aud: &c.aud,
            client_id: &c.client_id,
            env: c.env,
            exp: c.exp,
            iat: c.iat,
            iss: &c.iss,
            jti: &c.jti,
            nbf: c.nbf,
            org: &c.org,
            scope: &c.scope,
            sub: &c.sub,
            token_type: "Bearer",
        }),
        None => IntrospectionResponse::Inactive { active: false },
    };
    Ok(no_store(HttpResponse::Ok()).json(body))
}

/// `POST /v1/revoke` (RFC 7009): refuses one token, by its `jti`, until it would have expired.
/// Always 200 for a token that is invalid, already expired, or not the caller's to revoke.
#[utoipa::path(
    post,
    path = "/v1/revoke",
    tag = "tokens",
    summary = "Token revocation (RFC 7009): the caller's own tokens, or any of its organization's \
        with tokens:revoke",
    description = "The caller authenticates as an API key: by HTTP Basic, \
        `client_id`/`client_secret` in the form, or a bearer token. A revoked token is refused \
        until it would have expired.",
    security(("clientBasic" = []), ("bearerAuth" = []), ()),
    request_body(content = TokenForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "Revoked, or nothing to revoke (also for invalid tokens)"),
        (status = 400, description = "Malformed request, or `unauthorized_client`: a token \
            issued to another client, without tokens:revoke", body = ErrorBody),
        (status = 401, description = "No valid client credentials", body = ErrorBody),
        (status = 413, description = "The body is over 4 KiB", body = ErrorBody),
        (status = 429, description = "Too many revocations by this key; see Retry-After",
            body = ErrorBody),
    )
)]
pub async fn revoke(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (requester, token) = read_request(&req, &mut payload, &state).await?;
    token_status::revoke(&state.service, requester, token.as_deref()).await?;
    Ok(no_store(HttpResponse::Ok()).finish())
}
