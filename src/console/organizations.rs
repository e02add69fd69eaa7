//! Organizations (for holders of `organizations:manage`): the tenants, a new one, and a
//! confirmed disable, enable or delete naming it.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::forms::Form;
use super::keys::ConfirmPage;
use super::page::{self, ConsoleError, Nav};
use super::session::ConsoleSession;
use super::view::{self, Notice, when};
use crate::db::organizations::Organization;
use crate::domain::OrganizationStatus;
use crate::service::{self, organizations};
use crate::state::AppState;

pub struct OrganizationRow {
    pub name: String,
    pub display_name: String,
    pub status: &'static str,
    pub enabled: bool,
    pub deployment: bool,
    pub created: String,
}

impl OrganizationRow {
    fn of(organization: &Organization) -> OrganizationRow {
        OrganizationRow {
            name: organization.name.clone(),
            display_name: organization.display_name.clone().unwrap_or_default(),
            status: organization.status.as_str(),
            enabled: organization.status == OrganizationStatus::Enabled,
            deployment: crate::db::organizations::is_deployment_organization(organization),
            created: when(organization.created_at.and_utc()),
        }
    }
}

#[derive(Template)]
#[template(path = "console/organizations.html")]
struct OrganizationsPage {
    nav: Nav,
    rows: Vec<OrganizationRow>,
    name: String,
    problem: Option<String>,
    done: Option<&'static str>,
}

#[derive(Default, serde::Deserialize)]
pub struct Params {
    done: Option<String>,
}

async fn page_of(
    session: &ConsoleSession,
    state: &AppState,
    name: String,
    problem: Option<String>,
    done: Option<&'static str>,
) -> Result<OrganizationsPage, ConsoleError> {
    let all = organizations::list(&state.service, &session.caller).await?;
    Ok(OrganizationsPage {
        nav: Nav::of(session, state, "organizations"),
        rows: all.iter().map(OrganizationRow::of).collect(),
        name,
        problem,
        done,
    })
}

pub async fn list(
    session: ConsoleSession,
    params: web::Query<Params>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let done = params.done.as_deref().and_then(view::done_message);
    page::render(&page_of(&session, &state, String::new(), None, done).await?)
}

pub async fn create(
    session: ConsoleSession,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    session.check(&form)?;
    let name = form.get("name").unwrap_or_default().trim().to_owned();
    match organizations::create(&state.service, &session.caller, &name).await {
        Ok(_) => Ok(page::see_other(
            &Notice::OrganizationCreated.on("/console/organizations"),
        )),
        Err(err @ (service::Error::Validation(_) | service::Error::Conflict(_))) => {
            let problem = Some(page::describe(&err).1);
            let page = page_of(&session, &state, name, problem, None).await?;
            page::render_with(StatusCode::BAD_REQUEST, &page)
        }
        Err(other) => Err(other.into()),
    }
}

/// The verb, what follows, and whether it cannot be undone.
fn action(name: &str) -> Option<(&'static str, &'static str, bool)> {
    Some(match name {
        "disable" => (
            "Disable",
            "Its keys' tokens stop working at once and its keys get no new ones; its users are \
             logged out and cannot log in, until it is enabled again.",
            false,
        ),
        "enable" => (
            "Enable",
            "Its keys get tokens again (tokens issued before the disable stay refused) and its \
             users can log in.",
            false,
        ),
        "delete" => (
            "Delete",
            "Every key of it is revoked and its users are logged out, for good. Its records and \
             audit trail stay, and its name cannot be used again.",
            true,
        ),
        _ => return None,
    })
}

pub async fn confirm(
    session: ConsoleSession,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let (name, act) = path.into_inner();
    let Some((verb, consequence, danger)) = action(&act) else {
        return Ok(page::not_found().await);
    };
    let organization = organizations::get(&state.service, &session.caller, &name).await?;
    page::render(&ConfirmPage {
        nav: Nav::of(&session, &state, "organizations"),
        title: format!("{verb} organization {}?", organization.name),
        question: format!("{verb} the organization {}?", organization.name),
        consequence,
        action: format!("/console/organizations/{}/{act}", organization.name),
        button: verb,
        danger,
        back: "/console/organizations".into(),
    })
}

pub async fn act(
    session: ConsoleSession,
    path: web::Path<(String, String)>,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    session.check(&form)?;
    let (name, act) = path.into_inner();
    let (service, caller) = (&state.service, &session.caller);
    let status = |status| organizations::OrganizationUpdate {
        display_name: None,
        status: Some(status),
    };
    let done = match act.as_str() {
        "disable" => {
            organizations::update(service, caller, &name, status(OrganizationStatus::Disabled))
                .await?;
            Notice::OrganizationDisabled
        }
        "enable" => {
            organizations::update(service, caller, &name, status(OrganizationStatus::Enabled))
                .await?;
            Notice::OrganizationEnabled
        }
        "delete" => {
            organizations::delete(service, caller, &name).await?;
            Notice::OrganizationDeleted
        }
        _ => return Ok(page::not_found().await),
    };
    Ok(page::see_other(&done.on("/console/organizations")))
}
