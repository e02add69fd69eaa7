//! The user pages (for holders of `users:manage`): the list, the create form (a generated
//! password, shown once), and a user's page to change permissions or disable them, under the
//! same rule as everywhere: nobody grants what they do not hold.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::forms::Form;
use super::page::{self, ConsoleError, Nav};
use super::reveal::stash;
use super::session::ConsoleSession;
use super::view::{self, Grid, Notice};
use crate::domain::{Email, ScopeSet, UserStatus, ValidationError};
use crate::service::invitations::{self, IssuedInvitation};
use crate::service::reveals::Revealed;
use crate::service::users::{self, NewUserRequest, UserRecord, UserUpdate};
use crate::service::{self, policy};
use crate::state::AppState;

/// A user as the pages show them.
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub admin: bool,
    pub permissions: Vec<String>,
    pub status: &'static str,
    pub last_login: String,
}

impl UserRow {
    fn of(record: &UserRecord, state: &AppState) -> UserRow {
        let user = &record.user;
        UserRow {
            id: user.public_id.clone().unwrap_or_default(),
            email: user.email.clone(),
            admin: user.is_admin,
            permissions: record
                .permissions(&state.service)
                .iter()
                .map(|p| p.as_str().to_owned())
                .collect(),
            status: user.status.as_str(),
            last_login: user
                .last_login_at
                .map(|t| view::when(t.and_utc()))
                .unwrap_or_else(|| "never".into()),
        }
    }
}

#[derive(Template)]
#[template(path = "console/users.html")]
struct UsersPage {
    nav: Nav,
    rows: Vec<UserRow>,
}

pub async fn list(
    session: ConsoleSession,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let organization_id = policy::home_organization(&session.caller)?;
    let records = users::list(&state.service, &session.caller, organization_id).await?;
    page::render(&UsersPage {
        nav: Nav::of(&session, &state, "users"),
        rows: records.iter().map(|r| UserRow::of(r, &state)).collect(),
    })
}

#[derive(Template)]
#[template(path = "console/user_new.html")]
struct NewUserPage {
    nav: Nav,
    grid: Grid,
    email: String,
    admin: bool,
    problem: Option<String>,
}

fn grid(session: &ConsoleSession, state: &AppState, ticked: &ScopeSet) -> Grid {
    let caller = &session.caller;
    Grid::for_users(
        &state.service.catalog,
        caller.deployment,
        &caller.permissions,
        ticked,
    )
}

pub async fn new(
    session: ConsoleSession,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    // Only for those who may make users at all.
    policy::require(
        &session.caller,
        crate::domain::ManagementPermission::UsersManage,
    )?;
    page::render(&NewUserPage {
        nav: Nav::of(&session, &state, "users"),
        grid: grid(&session, &state, &ScopeSet::default()),
        email: String::new(),
        admin: false,
        problem: None,
    })
}

fn permissions(form: &Form) -> Result<ScopeSet, ValidationError> {
    ScopeSet::from_items(form.all("permission"))
        .map_err(|e| ValidationError::new("permissions", e.message))
}

pub async fn create(
    session: ConsoleSession,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    session.check(&form)?;
    let organization_id = policy::home_organization(&session.caller)?;
    let request = Email::parse(form.get("email").unwrap_or_default()).and_then(|email| {
        Ok(NewUserRequest {
            organization_id,
            email,
            is_admin: form.ticked("admin"),
            permissions: permissions(&form)?,
            password: None,
        })
    });
    if form.get("intent") == Some("invite") {
        let invited = match request {
            Ok(request) => invitations::invite(&state.service, &session.caller, request).await,
            Err(invalid) => Err(invalid.into()),
        };
        return match invited {
            Ok((record, issued)) => reveal_invitation(&state, &session, &record, &issued).await,
            Err(err) => refused_form(&session, &state, &form, err),
        };
    }
    let outcome = match request {
        Ok(request) => users::create(&state.service, &session.caller, request).await,
        Err(invalid) => Err(invalid.into()),
    };
    let (record, password) = match outcome {
        Ok(made) => made,
        Err(err) => return refused_form(&session, &state, &form, err),
    };
    let revealed = Revealed::Password {
        user_id: record.user.public_id.clone().unwrap_or_default(),
        email: record.user.email.clone(),
        password: password
            .map(|p| p.expose().to_owned())
            .ok_or_else(|| ConsoleError::Render("no generated password".into()))?,
    };
    let handle = stash(&state, &session, &revealed).await?;
    Ok(page::see_other(&format!("/console/reveal/{handle}")))
}

/// The new-user form again, saying why it was refused; other errors are the error page.
fn refused_form(
    session: &ConsoleSession,
    state: &AppState,
    form: &Form,
    err: service::Error,
) -> Result<HttpResponse, ConsoleError> {
    match err {
        service::Error::Validation(_)
        | service::Error::Forbidden(_)
        | service::Error::Conflict(_) => {
            // A refused form comes back as sent, less what the operator cannot tick.
            let ticked = permissions(form)
                .unwrap_or_default()
                .intersection(&session.caller.permissions);
            page::render_with(
                StatusCode::BAD_REQUEST,
                &NewUserPage {
                    nav: Nav::of(session, state, "users"),
                    grid: grid(session, state, &ticked),
                    email: form.get("email").unwrap_or_default().to_owned(),
                    admin: form.ticked("admin"),
                    problem: Some(page::describe(&err).1),
                },
            )
        }
        other => Err(other.into()),
    }
}

/// Shows an invitation link on its one-time view.
async fn reveal_invitation(
    state: &AppState,
    session: &ConsoleSession,
    record: &UserRecord,
    issued: &IssuedInvitation,
) -> Result<HttpResponse, ConsoleError> {
    let revealed = Revealed::Invitation {
        user_id: record.user.public_id.clone().unwrap_or_default(),
        email: record.user.email.clone(),
        url: issued.url(&state.service),
    };
    let handle = stash(state, session, &revealed).await?;
    Ok(page::see_other(&format!("/console/reveal/{handle}")))
}

#[derive(Template)]
#[template(path = "console/user.html")]
struct UserPage {
    nav: Nav,
    user: UserRow,
    grid: Grid,
    enabled: bool,
    invited: bool,
    problem: Option<String>,
    done: Option<&'static str>,
}

#[derive(Default, serde::Deserialize)]
pub struct DetailParams {
    done: Option<String>,
}

fn user_page(
    session: &ConsoleSession,
    state: &AppState,
    record: &UserRecord,
    problem: Option<String>,
    done: Option<&'static str>,
) -> UserPage {
    // The grid shows what the user holds as stored (an administrator holds everything).
    let held =
        policy::potential_permissions(&record.user, &record.organization, &state.service.catalog);
    UserPage {
        nav: Nav::of(session, state, "users"),
        user: UserRow::of(record, state),
        grid: grid(session, state, &held),
        enabled: record.user.status == UserStatus::Enabled,
        invited: record.user.status == UserStatus::Invited,
        problem,
        done,
    }
}

pub async fn detail(
    session: ConsoleSession,
    path: web::Path<String>,
    params: web::Query<DetailParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let record = users::get(&state.service, &session.caller, &path).await?;
    let done = params.done.as_deref().and_then(view::done_message);
    page::render(&user_page(&session, &state, &record, None, done))
}

pub async fn update(
    session: ConsoleSession,
    path: web::Path<String>,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    session.check(&form)?;
    match form.get("intent").unwrap_or_default() {
        "resend" => {
            let issued = invitations::resend(&state.service, &session.caller, &path).await?;
            let record = users::get(&state.service, &session.caller, &path).await?;
            return reveal_invitation(&state, &session, &record, &issued).await;
        }
        "revoke-invitation" => {
            invitations::revoke(&state.service, &session.caller, &path).await?;
            return Ok(page::see_other(
                &Notice::UserDisabled.on(&format!("/console/users/{path}")),
            ));
        }
        _ => {}
    }
    let Some((update, done)) = requested_update(&form) else {
        return Ok(page::not_found().await);
    };
    let outcome = match update {
        Ok(update) => users::update(&state.service, &session.caller, &path, update).await,
        Err(invalid) => Err(invalid.into()),
    };
    match outcome {
        Ok(_) => Ok(page::see_other(&done.on(&format!("/console/users/{path}")))),
        Err(err @ (service::Error::Validation(_) | service::Error::Forbidden(_))) => {
            let record = users::get(&state.service, &session.caller, &path).await?;
            let problem = Some(page::describe(&err).1);
            page::render_with(
                StatusCode::FORBIDDEN,
                &user_page(&session, &state, &record, problem, None),
            )
        }
        Err(other) => Err(other.into()),
    }
}

/// The change a user page's form asks for (permissions, disable, enable), and the notice
/// it ends with; `None` for an intent the page has not.
fn requested_update(form: &Form) -> Option<(Result<UserUpdate, ValidationError>, Notice)> {
    let intent = form.get("intent").unwrap_or_default();
    let blank = UserUpdate {
        permissions: None,
        is_admin: None,
        enabled: None,
    };
    match intent {
        "permissions" => Some((
            permissions(form).map(|p| UserUpdate {
                permissions: Some(p),
                ..blank
            }),
            Notice::UserUpdated,
        )),
        "disable" | "enable" => {
            let enable = intent == "enable";
            let notice = if enable {
                Notice::UserEnabled
            } else {
                Notice::UserDisabled
            };
            Some((
                Ok(UserUpdate {
                    enabled: Some(enable),
                    ..blank
                }),
                notice,
            ))
        }
        _ => None,
    }
}
