//! `/v1/session`: console log-in. The session token travels only in an HttpOnly,
//! SameSite=Strict cookie (`Secure` in production, or behind a trusted proxy that says the
//! request came over HTTPS); state-changing requests must also send the CSRF token that log-in
//! returns, in `X-CSRF-Token`.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::body::JsonBody;
use super::users::UserView;
use crate::auth::caller::{SESSION_COOKIE, csrf_presented, live_session};
use crate::error::{ApiError, ErrorBody};
use crate::routes::no_store;
use crate::service::login::{self, SESSION_HOURS};
use crate::service::users::UserRecord;
use crate::state::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    email: String,
    password: String,
}

/// A console session; its token is in the HttpOnly cookie only.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Session)]
pub struct SessionView {
    user: UserView,
    /// Send it back in `X-CSRF-Token` on every POST, PATCH and DELETE.
    csrf_token: String,
    expires_at: DateTime<Utc>,
}

#[utoipa::path(
    post,
    path = "/v1/session",
    tag = "session",
    summary = "Log in to the console: sets the HttpOnly, SameSite=Strict session cookie",
    description = "The cookie is `Secure` in production, or behind a trusted proxy that says the \
        request came over HTTPS.",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "The session, with its CSRF token; `Cache-Control: no-store`",
            body = SessionView),
        (status = 400, description = "Malformed body; `field` names the culprit", body = ErrorBody),
        (status = 401, description = "invalid_credentials", body = ErrorBody),
        (status = 429, description = "Locked after repeated failures; see Retry-After",
            body = ErrorBody),
    )
)]
pub async fn log_in(
    req: HttpRequest,
    body: JsonBody<LoginRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let LoginRequest { email, password } = body.0;
    let origin = state.origin(&req);
    let logged_in = login::log_in(&state.service, &email, &password, &origin).await?;
    let cookie = Cookie::build(SESSION_COOKIE, logged_in.token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(state.secure_cookies(&req))
        .max_age(CookieDuration::hours(SESSION_HOURS))
        .finish();
    Ok(no_store(HttpResponse::Ok())
        .cookie(cookie)
        .json(SessionView {
            user: UserView::of(&logged_in.record, &state.service),
            csrf_token: logged_in.csrf_token,
            expires_at: logged_in.expires_at,
        }))
}

#[utoipa::path(
    get,
    path = "/v1/session",
    tag = "session",
    summary = "The current console session",
    security(("sessionCookie" = [])),
    responses(
        (status = 200, description = "The session; `Cache-Control: no-store`", body = SessionView),
        (status = 401, description = "No live session", body = ErrorBody),
    )
)]
pub async fn current_session(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let live = live_session(&req, &state).await?;
    let record = UserRecord {
        user: live.user,
        organization: live.organization,
    };
    Ok(no_store(HttpResponse::Ok()).json(SessionView {
        user: UserView::of(&record, &state.service),
        csrf_token: live.session.csrf_token,
        expires_at: live.session.expires_at.and_utc(),
    }))
}

#[utoipa::path(
    delete,
    path = "/v1/session",
    tag = "session",
    summary = "Log out",
    security(("sessionCookie" = [], "csrfHeader" = [])),
    responses(
        (status = 204, description = "The session ended; the cookie is cleared"),
        (status = 401, description = "No live session", body = ErrorBody),
        (status = 403, description = "Missing X-CSRF-Token", body = ErrorBody),
    )
)]
pub async fn log_out(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let live = live_session(&req, &state).await?;
    if !csrf_presented(&req, &live.session.csrf_token) {
        return Err(ApiError::Forbidden(
            "logging out needs the session's X-CSRF-Token header".into(),
        ));
    }
    login::log_out(&state.service, live, &state.origin(&req)).await?;
    let mut expired = Cookie::build(SESSION_COOKIE, "")
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .finish();
    expired.make_removal();
    Ok(HttpResponse::NoContent().cookie(expired).finish())
}
