//! Token introspection (RFC 7662) and revocation (RFC 7009). The caller authenticates as an
//! API key, with HTTP Basic, `client_id`/`client_secret` in the form, or a bearer token.
//! Introspection needs `tokens:introspect`; revocation of another client's token needs
//! `tokens:revoke`. Both only ever see tokens of the caller's organization.

use actix_web::http::header::{self};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use chrono::Utc;
use serde_json::json;

use super::body::read_limited;
use crate::auth::client_credentials::{MAX_TOKEN_REQUEST_BYTES, basic_credentials};
use crate::auth::{Origin, bearer_token, caller};
use crate::db::{self, changes::NewStateChange};
use crate::domain::ScopeSet;
use crate::error::ApiError;
use crate::grant::authenticate;
use crate::lifecycle::{Event, audit};
use crate::routes::no_store;
use crate::state::AppState;
use crate::tokens::Change;

struct Requester {
    organization_id: i64,
    organization: String,
    client_id: String,
    permissions: ScopeSet,
    actor: crate::lifecycle::Actor,
}

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

async fn requester(
    req: &HttpRequest,
    form: &TokenForm,
    state: &AppState,
) -> Result<Requester, ApiError> {
    let origin = Origin::of(req, &state.limiter);
    let scheme_is_bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer "));
    if scheme_is_bearer {
        bearer_token(req)?;
        let caller = caller::identify(req, state).await?;
        let caller::Via::ApiKey { client_id } = caller.via.clone() else {
            return Err(ApiError::MissingToken);
        };
        let organization_id = caller.organization_id;
        let organization = db::run(&state.pool, move |conn| {
            Ok(db::organizations::find(conn, organization_id)?.name)
        })
        .await?;
        return Ok(Requester {
            organization_id,
            organization,
            client_id,
            permissions: caller.permissions,
            actor: caller.actor,
        });
    }
    let (id, secret) = match (
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
    let client = authenticate(state, &id, &secret, &origin).await?;
    Ok(Requester {
        organization_id: client.organization_id,
        organization: client.organization.clone(),
        actor: origin.actor(format!("api_key:{}", client.client_id)),
        client_id: client.client_id.clone(),
        permissions: client.scopes.clone(),
    })
}

/// `POST /v1/introspect` (RFC 7662): `{"active": false}` for anything not a live token of the
/// caller's organization, else the token's claims.
pub async fn introspect(
    req: HttpRequest,
    mut payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let body = read_limited(&req, &mut payload, MAX_TOKEN_REQUEST_BYTES).await?;
    let form = parse_form(&req, &body)?;
    let requester = requester(&req, &form, &state).await?;
    if !requester.permissions.contains("tokens:introspect") {
        return Err(ApiError::InsufficientScope {
            required: "tokens:introspect".into(),
        });
    }
    let token = form
        .token
        .ok_or_else(|| ApiError::invalid_request("token is required"))?;
    let claims = state
        .validator
        .validate(&token)
        .ok()
        .filter(|c| c.org == requester.organization);
    let body = match claims {
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
    let body = read_limited(&req, &mut payload, MAX_TOKEN_REQUEST_BYTES).await?;
    let form = parse_form(&req, &body)?;
    let requester = requester(&req, &form, &state).await?;
    let token = form
        .token
        .ok_or_else(|| ApiError::invalid_request("token is required"))?;
    let Ok(claims) = state.validator.validate(&token) else {
        return Ok(no_store(HttpResponse::Ok()).finish());
    };
    let allowed = claims.org == requester.organization
        && (claims.client_id == requester.client_id
            || requester.permissions.contains("tokens:revoke"));
    if !allowed {
        return Ok(no_store(HttpResponse::Ok()).finish());
    }
    let expires_at = claims.exp + state.settings.tokens.leeway_seconds as i64;
    let (jti, client_id, organization_id, actor) = (
        claims.jti.clone(),
        claims.client_id.clone(),
        requester.organization_id,
        requester.actor,
    );
    db::run(&state.pool, move |conn| {
        db::write_transaction(conn, |conn| -> Result<_, ApiError> {
            let now = Utc::now();
            db::changes::publish(
                conn,
                &NewStateChange {
                    kind: "token",
                    subject: &jti,
                    not_before: now.timestamp(),
                    expires_at,
                    created_at: now.naive_utc(),
                },
            )?;
            let event = Event {
                organization_id: Some(organization_id),
                action: "token.revoked",
                target: Some(&client_id),
                outcome: "success",
                details: json!({ "jti": jti }),
            };
            Ok(audit(conn, &actor, event, now)?)
        })
    })
    .await?;
    state.apply_changes(&[Change::Token {
        jti: claims.jti.clone(),
        expires_at,
    }]);
    Ok(no_store(HttpResponse::Ok()).finish())
}
