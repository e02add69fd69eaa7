//! Logging in and out of the console, on the operators' sessions. The log-in form carries a
//! token that must match a cookie set with it, so no other site can log an operator in to an
//! account of its choosing.

use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use subtle::ConstantTimeEq;

use super::forms::Form;
use super::page::{self, ConsoleError, minutes};
use super::session::ConsoleSession;
use crate::auth::caller::SESSION_COOKIE;
use crate::domain::random;
use crate::service::{self, login};
use crate::state::AppState;

const LOGIN_COOKIE: &str = "keygate_login";

#[derive(Template)]
#[template(path = "console/login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    next: &'a str,
    email: &'a str,
    problem: Option<String>,
}

/// Where a log-in may lead: a page of the console, nothing else.
fn destination(next: Option<&str>) -> &str {
    next.filter(|n| {
        (*n == "/console" || n.starts_with("/console/"))
            && !n.contains("//")
            && !n.contains('\\')
            && !n.chars().any(char::is_control)
    })
    .unwrap_or("/console/keys")
}

/// The form, with a fresh token in a cookie of its own.
fn form_page(
    status: StatusCode,
    next: &str,
    email: &str,
    problem: Option<String>,
) -> Result<HttpResponse, ConsoleError> {
    let csrf = random::base62(32);
    let mut response = page::render_with(
        status,
        &LoginPage {
            csrf: &csrf,
            next,
            email,
            problem,
        },
    )?;
    let cookie = Cookie::build(LOGIN_COOKIE, csrf)
        .path("/console/login")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(CookieDuration::hours(1))
        .finish();
    response
        .add_cookie(&cookie)
        .map_err(|e| ConsoleError::Render(e.to_string()))?;
    Ok(response)
}

#[derive(serde::Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

pub async fn form(query: web::Query<LoginQuery>) -> Result<HttpResponse, ConsoleError> {
    form_page(StatusCode::OK, destination(query.next.as_deref()), "", None)
}

pub async fn submit(
    req: HttpRequest,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let next = destination(form.get("next"));
    let email = form.get("email").unwrap_or_default();
    let expected = req.cookie(LOGIN_COOKIE);
    let presented = form.get("csrf").unwrap_or_default();
    let fresh =
        expected.is_some_and(|c| bool::from(c.value().as_bytes().ct_eq(presented.as_bytes())));
    if !fresh {
        let problem = "The log-in form expired. Try again.".to_owned();
        return form_page(StatusCode::FORBIDDEN, next, email, Some(problem));
    }
    let password = form.get("password").unwrap_or_default();
    let origin = state.origin(&req);
    let logged_in = match login::log_in(&state.service, email, password, &origin).await {
        Ok(logged_in) => logged_in,
        Err(service::Error::InvalidCredentials) => {
            let problem = "Wrong email or password. After five failures in a row, an account is \
                           locked for 15 minutes from the address they came from."
                .to_owned();
            return form_page(StatusCode::UNAUTHORIZED, next, email, Some(problem));
        }
        Err(service::Error::RateLimited {
            retry_after_seconds,
        }) => {
            let problem = format!(
                "Too many attempts from this address. Try again in {}.",
                minutes(retry_after_seconds)
            );
            return form_page(StatusCode::TOO_MANY_REQUESTS, next, email, Some(problem));
        }
        Err(other) => return Err(other.into()),
    };
    let secure = state.secure_cookies(&req);
    signed_in(logged_in.token, secure, next)
}

/// On to `next`, with the session cookie set and the log-in form's token spent.
fn signed_in(token: String, secure: bool, next: &str) -> Result<HttpResponse, ConsoleError> {
    let session = Cookie::build(SESSION_COOKIE, token)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(CookieDuration::hours(login::SESSION_HOURS))
        .finish();
    let mut spent = Cookie::build(LOGIN_COOKIE, "")
        .path("/console/login")
        .finish();
    spent.make_removal();
    let mut response = page::see_other(next);
    for cookie in [&session, &spent] {
        response
            .add_cookie(cookie)
            .map_err(|e| ConsoleError::Render(e.to_string()))?;
    }
    Ok(response)
}

pub async fn log_out(
    req: HttpRequest,
    session: ConsoleSession,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    session.check(&form)?;
    login::log_out(&state.service, session.live, &state.origin(&req)).await?;
    let mut ended = Cookie::build(SESSION_COOKIE, "").path("/").finish();
    ended.make_removal();
    let mut response = page::see_other("/console/login");
    response
        .add_cookie(&ended)
        .map_err(|e| ConsoleError::Render(e.to_string()))?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::destination;

    #[test]
    fn a_log_in_leads_only_to_a_console_page() {
        assert_eq!(
            destination(Some("/console/keys/kgc_1")),
            "/console/keys/kgc_1"
        );
        assert_eq!(destination(Some("/console")), "/console");
        for elsewhere in [
            "https://evil.example/",
            "//evil.example/console/",
            "/console//evil",
            "/v1/api-keys",
            "/console\\\\evil",
            "/console/\\n",
        ] {
            assert_eq!(destination(Some(elsewhere)), "/console/keys", "{elsewhere}");
        }
        assert_eq!(destination(None), "/console/keys");
    }
}
