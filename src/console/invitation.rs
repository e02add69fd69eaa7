//! The page an invitation link opens: the invitee chooses a password, and their account is
//! ready. No session and no CSRF cookie: the link's token, which only the invitee holds, is
//! what the form proves.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use super::forms::Form;
use super::page::{self, ConsoleError};
use crate::domain::Password;
use crate::service::{self, invitations};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "console/invitation.html")]
struct InvitationPage {
    /// None: the link does not work (used, revoked, expired or unknown).
    email: Option<String>,
    accepted: bool,
    problem: Option<String>,
}

fn dead_link() -> Result<HttpResponse, ConsoleError> {
    page::render_with(
        StatusCode::NOT_FOUND,
        &InvitationPage {
            email: None,
            accepted: false,
            problem: None,
        },
    )
}

pub async fn form(
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    match invitations::open(&state.service, &path).await {
        Ok(user) => page::render(&InvitationPage {
            email: Some(user.email),
            accepted: false,
            problem: None,
        }),
        Err(service::Error::NotFound) => dead_link(),
        Err(other) => Err(other.into()),
    }
}

pub async fn accept(
    req: HttpRequest,
    path: web::Path<String>,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let service = &state.service;
    let user = match invitations::open(service, &path).await {
        Ok(user) => user,
        Err(service::Error::NotFound) => return dead_link(),
        Err(other) => return Err(other.into()),
    };
    let again = |problem: String| {
        page::render_with(
            StatusCode::BAD_REQUEST,
            &InvitationPage {
                email: Some(user.email.clone()),
                accepted: false,
                problem: Some(problem),
            },
        )
    };
    let (chosen, repeated) = (
        form.get("password").unwrap_or_default(),
        form.get("repeat").unwrap_or_default(),
    );
    if chosen != repeated {
        return again("The two passwords differ.".into());
    }
    let password = match Password::parse(chosen) {
        Ok(password) => password,
        Err(invalid) => return again(page::describe(&invalid.into()).1),
    };
    match invitations::accept(service, &path, password, &state.origin(&req)).await {
        Ok(accepted) => page::render(&InvitationPage {
            email: Some(accepted.user.email),
            accepted: true,
            problem: None,
        }),
        Err(service::Error::NotFound) => dead_link(),
        Err(other) => Err(other.into()),
    }
}
