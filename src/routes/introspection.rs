//! Token introspection (RFC 7662) and revocation (RFC 7009). The caller authenticates as an
//! API key, with HTTP Basic, `client_id`/`client_secret` in the form, or a bearer token.
//! Introspection needs `tokens:introspect`; revocation of another client's token needs
//! `tokens:revoke`. Both only ever see tokens of the caller's organization.

use actix_web::http::header::{self};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use serde_json::json;

use super::body::read_limited;
use crate::auth::bearer_token;
use crate::auth::client_credentials::{MAX_TOKEN_REQUEST_BYTES, basic_credentials};
use crate::error::ApiError;
use crate::routes::no_store;
use crate::service::token_status::{self, Requester, RequesterCredentials};
use crate::state::AppState;

struct TokenForm {
    token: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
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
                // Only access tokens exist here, so any hint is looked past (RFC 7009 2.1).
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
pub async fn introspect(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (requester, token) = read_request(&req, &mut payload, &state).await?;
    let body = match token_status::introspect(&state.service, &requester, token.as_deref())? {
        Some(c) => json!({
            "active": true,
            "scope": c.scope,
            "client_id": c.client_id,
            "token_type": "Bearer",
            "exp": c.exp,
            "iat": c.iat,
            "nbf": c.nbf,
            "sub": c.sub,
            "aud": c.aud,
            "iss": c.iss,
            "jti": c.jti,
            "env": c.env,
            "org": c.org,
        }),
        None => json!({ "active": false }),
    };
    Ok(no_store(HttpResponse::Ok()).json(body))
}

/// `POST /v1/revoke` (RFC 7009): refuses one token, by its `jti`, until it would have expired.
/// Always 200 for a token that is invalid, already expired, or not the caller's to revoke.
pub async fn revoke(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (requester, token) = read_request(&req, &mut payload, &state).await?;
    token_status::revoke(&state.service, requester, token.as_deref()).await?;
    Ok(no_store(HttpResponse::Ok()).finish())
}
