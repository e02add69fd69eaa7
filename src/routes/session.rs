//! `/v1/session`: console login. The session token travels only in an HttpOnly, SameSite=Strict
//! cookie (Secure under TLS); state-changing requests must also send the CSRF token that login
//! returns, in `X-CSRF-Token`. Failed logins are slowed per address and lock the account
//! after five in a row for fifteen minutes.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::body::JsonBody;
use super::users::{UserView, user_view};
use crate::auth::Origin;
use crate::auth::caller::{SESSION_COOKIE, csrf_presented, live_session, session_hash};
use crate::db::{self, sessions::NewSession};
use crate::domain::{Email, random};
use crate::error::ApiError;
use crate::lifecycle::{Event, audit};
use crate::routes::no_store;
use crate::state::AppState;

const SESSION_HOURS: i64 = 8;
const MAX_FAILED_LOGINS: i32 = 5;
const LOCK_MINUTES: i64 = 15;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
}

#[derive(Serialize)]
struct SessionView {
    user: UserView,
    /// Send it back in `X-CSRF-Token` on every POST, PATCH and DELETE.
    csrf_token: String,
    expires_at: DateTime<Utc>,
}

pub async fn log_in(
    req: HttpRequest,
    body: JsonBody<LoginRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request = body.0;
    let email = Email::parse(&request.email).map_err(|_| ApiError::InvalidCredentials)?;
    let address = state.login_limiter.client_address(&req);
    state.login_limiter.check(address, email.as_str())?;
    let now = Utc::now();
    let lookup = email.as_str().to_owned();
    let user = db::run(&state.pool, move |conn| {
        Ok(db::users::find_by_email(conn, &lookup)?)
    })
    .await?;
    if let Some((locked, locked_until)) = user
        .as_ref()
        .and_then(|u| Some((u, u.locked_until?.and_utc())))
        .filter(|(_, t)| *t > now)
    {
        let actor = Origin::of(&req, &state.login_limiter).actor(format!("user:{email}"));
        let (organization_id, target) = (locked.organization_id, locked.public_id.clone());
        db::run(&state.pool, move |conn| {
            let event = Event {
                organization_id: Some(organization_id),
                action: "session.login",
                target: target.as_deref(),
                outcome: "locked",
                details: json!({}),
            };
            Ok(audit(conn, &actor, event, now)?)
        })
        .await?;
        return Err(ApiError::RateLimited {
            retry_after_seconds: (locked_until - now).num_seconds().max(1) as u64,
        });
    }
    let matched = state
        .hasher
        .verify_password(
            &request.password,
            user.as_ref().map(|u| u.password_hash.clone()),
        )
        .await?;
    let actor = Origin::of(&req, &state.login_limiter).actor(format!("user:{email}"));
    let Some(user) = user.filter(|u| matched && u.status == "enabled") else {
        state.login_limiter.record_failure(address, email.as_str());
        let found = db::run(&state.pool, move |conn| {
            Ok(db::users::find_by_email(conn, email.as_str())?)
        })
        .await?;
        if let Some(user) = found {
            let lock_until = (now + Duration::minutes(LOCK_MINUTES)).naive_utc();
            db::run(&state.pool, move |conn| {
                db::users::record_failed_login(conn, user.id, MAX_FAILED_LOGINS, lock_until)?;
                let reason = if user.status == "enabled" {
                    "wrong_password"
                } else {
                    "disabled"
                };
                let event = Event {
                    organization_id: Some(user.organization_id),
                    action: "session.login",
                    target: user.public_id.as_deref(),
                    outcome: reason,
                    details: json!({}),
                };
                Ok(audit(conn, &actor, event, now)?)
            })
            .await?;
        }
        return Err(ApiError::InvalidCredentials);
    };

    let token = random::base62(43);
    let csrf_token = random::base62(32);
    let expires_at = now + Duration::hours(SESSION_HOURS);
    let (hash, csrf, catalog) = (
        session_hash(&token),
        csrf_token.clone(),
        state.catalog.clone(),
    );
    let view = db::run(&state.pool, move |conn| {
        db::write_transaction(conn, |conn| -> Result<_, ApiError> {
            db::users::record_login(conn, user.id, now.naive_utc())?;
            let user = db::users::find(conn, user.id)?.ok_or(ApiError::NotFound)?;
            db::sessions::insert(
                conn,
                &NewSession {
                    token_hash: &hash,
                    user_id: user.id,
                    csrf_token: &csrf,
                    created_at: now.naive_utc(),
                    expires_at: expires_at.naive_utc(),
                },
            )?;
            let event = Event {
                organization_id: Some(user.organization_id),
                action: "session.login",
                target: user.public_id.as_deref(),
                outcome: "success",
                details: json!({}),
            };
            audit(conn, &actor, event, now)?;
            let organization = db::organizations::find(conn, user.organization_id)?;
            Ok(user_view(&user, &organization, &catalog))
        })
    })
    .await?;
    let secure = req.connection_info().scheme() == "https";
    let cookie = Cookie::build(SESSION_COOKIE, token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(CookieDuration::hours(SESSION_HOURS))
        .finish();
    Ok(no_store(HttpResponse::Ok())
        .cookie(cookie)
        .json(SessionView {
            user: view,
            csrf_token,
            expires_at,
        }))
}

/// The session behind the cookie, and its user as the API shows it.
async fn current(
    req: &HttpRequest,
    state: &AppState,
) -> Result<(db::sessions::Session, UserView), ApiError> {
    let (session, user, organization) = live_session(req, state).await?;
    Ok((session, user_view(&user, &organization, &state.catalog)))
}

pub async fn current_session(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (session, user) = current(&req, &state).await?;
    Ok(no_store(HttpResponse::Ok()).json(SessionView {
        user,
        csrf_token: session.csrf_token,
        expires_at: session.expires_at.and_utc(),
    }))
}

pub async fn log_out(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (session, _) = current(&req, &state).await?;
    if !csrf_presented(&req, &session.csrf_token) {
        return Err(ApiError::Forbidden(
            "logging out needs the session's X-CSRF-Token header".into(),
        ));
    }
    let hash = session.token_hash.clone();
    db::run(&state.pool, move |conn| {
        Ok(db::sessions::delete(conn, &hash)?)
    })
    .await?;
    let mut expired = Cookie::build(SESSION_COOKIE, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .finish();
    expired.make_removal();
    Ok(HttpResponse::NoContent().cookie(expired).finish())
}
