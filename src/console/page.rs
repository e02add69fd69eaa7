//! What every console page shares: the frame around it (navigation, the signed-in user, the
//! log-out form), the headers it goes out with, and the pages for errors.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use super::session::ConsoleSession;
use crate::domain::ManagementPermission;
use crate::service::{self, policy};
use crate::state::AppState;

/// Scripts and styles come from keygate itself (no inline code, no other origin); the console
/// is never framed, never sends a referrer, and posts forms only to itself.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

/// The frame of a page: who is signed in, and the sections they may open.
pub struct Nav {
    pub email: String,
    pub csrf: String,
    pub section: &'static str,
    pub users: bool,
    pub audit: bool,
    pub signing_keys: bool,
    pub organizations: bool,
    pub webhooks: bool,
}

impl Nav {
    pub fn of(session: &ConsoleSession, state: &AppState, section: &'static str) -> Nav {
        let caller = &session.caller;
        Nav {
            email: session.live.user.email.clone(),
            csrf: session.live.session.csrf_token.clone(),
            section,
            users: caller.holds(ManagementPermission::UsersManage),
            audit: caller.holds(ManagementPermission::AuditRead),
            signing_keys: policy::require_deployment_administrator(caller, &state.service.catalog)
                .is_ok(),
            organizations: caller.holds(ManagementPermission::OrganizationsManage),
            webhooks: caller.holds(ManagementPermission::WebhooksManage),
        }
    }
}

/// An HTML answer with the console's headers.
pub fn html(status: StatusCode, body: String) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    secure(&mut response);
    response.content_type("text/html; charset=utf-8").body(body)
}

fn secure(response: &mut actix_web::HttpResponseBuilder) {
    response
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")));
}

/// Renders a page.
pub fn render<T: Template>(page: &T) -> Result<HttpResponse, ConsoleError> {
    render_with(StatusCode::OK, page)
}

pub fn render_with<T: Template>(
    status: StatusCode,
    page: &T,
) -> Result<HttpResponse, ConsoleError> {
    let body = page
        .render()
        .map_err(|e| ConsoleError::Render(e.to_string()))?;
    Ok(html(status, body))
}

/// `303 See Other` to a page of the console (after a form, so that a reload never posts it
/// again).
pub fn see_other(location: &str) -> HttpResponse {
    let mut response = HttpResponse::SeeOther();
    secure(&mut response);
    response
        .insert_header((header::LOCATION, location.to_owned()))
        .finish()
}

#[derive(Template)]
#[template(path = "console/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    back: &'a str,
}

/// Why a console page could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// No live session: log in first, then come back to `next`.
    #[error("log in first")]
    LogIn { next: String },
    /// A form without the session's CSRF token (or an expired form).
    #[error("the form has expired")]
    StaleForm,
    /// The application layer refused, with the status the API would answer.
    #[error("{message}")]
    Refused {
        status: StatusCode,
        title: &'static str,
        message: String,
    },
    #[error("the page could not be rendered: {0}")]
    Render(String),
}

impl From<service::Error> for ConsoleError {
    fn from(err: service::Error) -> ConsoleError {
        let (title, message) = describe(&err);
        ConsoleError::Refused {
            status: crate::error::ApiError::from(err).status_code(),
            title,
            message,
        }
    }
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::LogIn { .. } => StatusCode::SEE_OTHER,
            ConsoleError::StaleForm => StatusCode::FORBIDDEN,
            ConsoleError::Refused { status, .. } => *status,
            ConsoleError::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let (title, message) = match self {
            ConsoleError::LogIn { next } => {
                let location = format!("/console/login?next={}", urlencode(next));
                return see_other(&location);
            }
            ConsoleError::StaleForm => (
                "This form has expired",
                "It was made for another session. Go back, reload the page and try again.",
            ),
            ConsoleError::Refused { title, message, .. } => (*title, message.as_str()),
            ConsoleError::Render(cause) => {
                log::error!("console page: {cause}");
                ("Something went wrong", "keygate could not show this page.")
            }
        };
        let page = ErrorPage {
            title,
            message,
            back: "/console/keys",
        };
        let body = page
            .render()
            .unwrap_or_else(|_| "keygate could not show this page.".to_owned());
        html(self.status_code(), body)
    }
}

/// A title and a sentence for a refusal, in the operator's words.
pub fn describe(err: &service::Error) -> (&'static str, String) {
    use service::Error as E;
    match err {
        E::Validation(v) => (
            "That did not work",
            sentence(&format!(
                "{}: {}",
                v.field.replace(['_', '.'], " "),
                v.message
            )),
        ),
        E::NotFound => (
            "Not found",
            "There is nothing here, or nothing you may see.".to_owned(),
        ),
        E::MissingPermission(p) => (
            "Not allowed",
            format!("This needs the {p} permission, which you do not hold."),
        ),
        E::Forbidden(message) => ("Not allowed", sentence(message)),
        E::Conflict(message) => ("That did not work", sentence(message)),
        E::RateLimited {
            retry_after_seconds,
        } => (
            "Too many attempts",
            format!(
                "Too many attempts from this address. Try again in {}.",
                minutes(*retry_after_seconds)
            ),
        ),
        E::Unavailable { .. } => (
            "keygate is busy",
            "keygate is busy right now. Try again in a moment.".to_owned(),
        ),
        E::Internal(cause) => {
            log::error!("console: {cause:#}");
            (
                "Something went wrong",
                "keygate could not do this. The problem has been logged.".to_owned(),
            )
        }
        E::InvalidClient
        | E::InvalidGrant
        | E::UnauthorizedClient(_)
        | E::InvalidScope(_)
        | E::InvalidCredentials
        | E::MissingCredentials
        | E::InvalidToken(_) => ("Not allowed", sentence(&err.to_string())),
    }
}

/// The application layer's messages (`the caller lacks `users:manage``) as a sentence for a
/// page: no code quotes, a capital letter, a full stop.
pub fn sentence(message: &str) -> String {
    let text = message.replace('`', "");
    let text = text.trim();
    let mut chars = text.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// `N seconds`, `N minutes`.
pub fn minutes(seconds: u64) -> String {
    match seconds {
        0..=90 => format!("{seconds} seconds"),
        _ => format!("{} minutes", seconds.div_ceil(60)),
    }
}

pub fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Every path of the console that is not a page.
pub async fn not_found() -> HttpResponse {
    let page = ErrorPage {
        title: "Not found",
        message: "There is no such page.",
        back: "/console/keys",
    };
    html(
        StatusCode::NOT_FOUND,
        page.render().unwrap_or_else(|_| "Not found".to_owned()),
    )
}

#[cfg(test)]
mod tests {
    use super::sentence;

    #[test]
    fn messages_become_sentences() {
        assert_eq!(
            sentence("the caller lacks `users:manage`"),
            "The caller lacks users:manage."
        );
        assert_eq!(sentence("Already a sentence."), "Already a sentence.");
        assert_eq!(sentence("  "), "");
    }
}
