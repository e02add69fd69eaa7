//! The operator behind a console page: the session cookie, read through the application layer.
//! Without a live session a page sends the operator to log in, and back afterwards.

use actix_web::dev::Payload;
use actix_web::http::Method;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use subtle::ConstantTimeEq;

use super::forms::Form;
use super::page::ConsoleError;
use crate::auth::caller::SESSION_COOKIE;
use crate::service::callers::{self, LiveSession};
use crate::service::{self, Caller};
use crate::state::AppState;

/// A live console session, and its user as a caller of the application layer.
pub struct ConsoleSession {
    pub live: LiveSession,
    pub caller: Caller,
}

impl ConsoleSession {
    /// Refuses a form that does not carry this session's CSRF token.
    pub fn check(&self, form: &Form) -> Result<(), ConsoleError> {
        let presented = form.get("csrf").unwrap_or_default();
        let expected = &self.live.session.csrf_token;
        if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
            Ok(())
        } else {
            Err(ConsoleError::StaleForm)
        }
    }
}

/// Where to come back to after logging in: this page, if it was a plain visit.
fn here(req: &HttpRequest) -> String {
    if req.method() != Method::GET {
        return "/console/keys".to_owned();
    }
    match req.query_string() {
        "" => req.path().to_owned(),
        query => format!("{}?{query}", req.path()),
    }
}

impl FromRequest for ConsoleSession {
    type Error = ConsoleError;
    type Future = LocalBoxFuture<'static, Result<Self, ConsoleError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| ConsoleError::Render("AppState missing".into()))?;
            let log_in = || ConsoleError::LogIn { next: here(&req) };
            let cookie = req.cookie(SESSION_COOKIE).ok_or_else(log_in)?;
            let live = match callers::session(&state.service, cookie.value()).await {
                Ok(live) => live,
                Err(service::Error::InvalidToken(_) | service::Error::MissingCredentials) => {
                    return Err(log_in());
                }
                Err(other) => return Err(other.into()),
            };
            let caller = live.caller(&state.service, &state.origin(&req));
            Ok(ConsoleSession { live, caller })
        })
    }
}
