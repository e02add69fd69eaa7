//! Webhooks (for holders of `webhooks:manage`): the organization's endpoints, a new one (its
//! secret shown once), and an endpoint's page with its recent deliveries, a test event, a new
//! secret, and a confirmed disable, enable or delete.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;

use super::forms::Form;
use super::keys::ConfirmPage;
use super::page::{self, ConsoleError, Nav};
use super::reveal::stash;
use super::session::ConsoleSession;
use super::view::{self, Notice, when};
use crate::db::webhooks::{Attempt, Endpoint};
use crate::domain::{EndpointStatus, EventFilter, EventType, GracePeriod};
use crate::service::reveals::Revealed;
use crate::service::webhooks::{self, EndpointUpdate, NewWebhookEndpoint};
use crate::service::{self, policy};
use crate::state::AppState;

pub struct EndpointRow {
    pub id: String,
    pub url: String,
    pub description: String,
    pub events: String,
    pub status: &'static str,
    pub enabled: bool,
    /// "failing since …", when keygate disabled it.
    pub failing: Option<String>,
    pub failures: i32,
    pub created: String,
}

impl EndpointRow {
    fn of(e: &Endpoint) -> EndpointRow {
        EndpointRow {
            id: e.public_id.clone(),
            url: e.url.clone(),
            description: e.description.clone(),
            events: EventFilter::from_stored(&e.events).names().join(", "),
            status: e.status.as_str(),
            enabled: e.status == EndpointStatus::Enabled,
            failing: e
                .failing_since
                .map(|t| format!("failing since {}", when(t.and_utc()))),
            failures: e.consecutive_failures,
            created: when(e.created_at.and_utc()),
        }
    }
}

/// The event types an endpoint may subscribe to, for the form's boxes.
fn subscribable() -> Vec<&'static str> {
    EventType::ALL
        .iter()
        .filter(|t| **t != EventType::WebhookTest)
        .map(|t| t.as_str())
        .collect()
}

#[derive(Template)]
#[template(path = "console/webhooks.html")]
struct WebhooksPage {
    nav: Nav,
    rows: Vec<EndpointRow>,
    types: Vec<&'static str>,
    url: String,
    description: String,
    problem: Option<String>,
    done: Option<&'static str>,
}

#[derive(Default, serde::Deserialize)]
pub struct Params {
    done: Option<String>,
}

async fn list_page(
    session: &ConsoleSession,
    state: &AppState,
    (url, description): (String, String),
    problem: Option<String>,
    done: Option<&'static str>,
) -> Result<WebhooksPage, ConsoleError> {
    let organization_id = policy::home_organization(&session.caller)?;
    let all = webhooks::list(&state.service, &session.caller, organization_id).await?;
    Ok(WebhooksPage {
        nav: Nav::of(session, state, "webhooks"),
        rows: all.iter().map(EndpointRow::of).collect(),
        types: subscribable(),
        url,
        description,
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
    let page = list_page(&session, &state, Default::default(), None, done).await?;
    page::render(&page)
}

pub async fn create(
    session: ConsoleSession,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    session.check(&form)?;
    let url = form.get("url").unwrap_or_default().trim().to_owned();
    let description = form.get("description").unwrap_or_default().to_owned();
    let events: Vec<String> = if form.get("every") == Some("yes") {
        vec!["*".into()]
    } else {
        form.all("event").into_iter().map(str::to_owned).collect()
    };
    let new = NewWebhookEndpoint {
        url: url.clone(),
        events,
        description: Some(description.clone()),
    };
    let organization_id = policy::home_organization(&session.caller)?;
    match webhooks::create(&state.service, &session.caller, organization_id, new).await {
        Ok(created) => {
            let revealed = Revealed::WebhookSecret {
                endpoint_id: created.endpoint.public_id.clone(),
                url: created.endpoint.url.clone(),
                secret: created.secret.expose().to_owned(),
            };
            let handle = stash(&state, &session, &revealed).await?;
            Ok(page::see_other(&format!("/console/reveal/{handle}")))
        }
        Err(err @ (service::Error::Validation(_) | service::Error::Conflict(_))) => {
            let problem = Some(page::describe(&err).1);
            let page = list_page(&session, &state, (url, description), problem, None).await?;
            page::render_with(StatusCode::BAD_REQUEST, &page)
        }
        Err(other) => Err(other.into()),
    }
}

pub struct DeliveryRow {
    pub id: String,
    pub event_type: String,
    pub status: &'static str,
    pub attempts: i32,
    pub last: String,
    pub created: String,
    /// Every attempt, oldest first.
    pub log: Vec<AttemptRow>,
}

pub struct AttemptRow {
    pub at: String,
    pub duration_ms: i64,
    pub answer: String,
    pub body: String,
}

/// What the receiver said, or why it said nothing.
fn answer(attempt: &Attempt) -> String {
    match (attempt.status_code, &attempt.error) {
        (Some(code), _) => format!("HTTP {code}"),
        (None, Some(error)) => error.clone(),
        (None, None) => String::new(),
    }
}

#[derive(Template)]
#[template(path = "console/webhook.html")]
struct EndpointPage {
    nav: Nav,
    endpoint: EndpointRow,
    deliveries: Vec<DeliveryRow>,
    done: Option<&'static str>,
}

pub async fn detail(
    session: ConsoleSession,
    path: web::Path<String>,
    params: web::Query<Params>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let (service, caller) = (&state.service, &session.caller);
    let organization_id = policy::home_organization(caller)?;
    let endpoint = webhooks::get(service, caller, organization_id, &path).await?;
    let records =
        webhooks::deliveries(service, caller, organization_id, &path, None, (50, 0)).await?;
    let deliveries = records
        .iter()
        .map(|r| DeliveryRow {
            id: r.delivery.public_id.clone(),
            event_type: r.event.event_type.clone(),
            status: r.delivery.status.as_str(),
            attempts: r.delivery.attempts,
            last: r.attempts.last().map(answer).unwrap_or_default(),
            created: when(r.delivery.created_at.and_utc()),
            log: r
                .attempts
                .iter()
                .map(|a| AttemptRow {
                    at: when(a.attempted_at.and_utc()),
                    duration_ms: a.duration_ms,
                    answer: answer(a),
                    body: a.response_body.clone().unwrap_or_default(),
                })
                .collect(),
        })
        .collect();
    page::render(&EndpointPage {
        nav: Nav::of(&session, &state, "webhooks"),
        endpoint: EndpointRow::of(&endpoint),
        deliveries,
        done: params.done.as_deref().and_then(view::done_message),
    })
}

/// The verb, what follows, and whether it cannot be undone.
fn action(name: &str) -> Option<(&'static str, &'static str, bool)> {
    Some(match name {
        "disable" => (
            "Disable",
            "New events skip it; what is queued for it waits until it is enabled again.",
            false,
        ),
        "enable" => (
            "Enable",
            "Queued events go out again, in order, and new ones reach it.",
            false,
        ),
        "delete" => (
            "Delete",
            "It gets nothing more, for good. Its delivery history stays.",
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
    let (id, act) = path.into_inner();
    let Some((verb, consequence, danger)) = action(&act) else {
        return Ok(page::not_found().await);
    };
    let organization_id = policy::home_organization(&session.caller)?;
    let endpoint = webhooks::get(&state.service, &session.caller, organization_id, &id).await?;
    page::render(&ConfirmPage {
        nav: Nav::of(&session, &state, "webhooks"),
        title: format!("{verb} webhook endpoint?"),
        question: format!("{verb} the endpoint {}?", endpoint.url),
        consequence,
        action: format!("/console/webhooks/{}/{act}", endpoint.public_id),
        button: verb,
        danger,
        back: format!("/console/webhooks/{}", endpoint.public_id),
    })
}

pub async fn act(
    session: ConsoleSession,
    path: web::Path<(String, String)>,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    session.check(&form)?;
    let (id, act) = path.into_inner();
    let (service, caller) = (&state.service, &session.caller);
    let organization_id = policy::home_organization(caller)?;
    let status = |on: bool| EndpointUpdate {
        enabled: Some(on),
        ..Default::default()
    };
    let back = |done: Notice| page::see_other(&done.on(&format!("/console/webhooks/{id}")));
    Ok(match act.as_str() {
        "disable" => {
            webhooks::update(service, caller, organization_id, &id, status(false)).await?;
            back(Notice::EndpointDisabled)
        }
        "enable" => {
            webhooks::update(service, caller, organization_id, &id, status(true)).await?;
            back(Notice::EndpointEnabled)
        }
        "test" => {
            webhooks::send_test(service, caller, organization_id, &id).await?;
            back(Notice::TestQueued)
        }
        "retry" => {
            let delivery = form.get("delivery").unwrap_or_default();
            webhooks::retry(service, caller, organization_id, delivery).await?;
            back(Notice::DeliveryQueued)
        }
        "roll" => {
            let seconds = form.get("grace").unwrap_or("0").parse().unwrap_or(-1);
            let grace = GracePeriod::seconds(seconds).map_err(service::Error::from)?;
            let rolled =
                webhooks::roll_secret(service, caller, organization_id, &id, grace).await?;
            let revealed = Revealed::WebhookSecret {
                endpoint_id: rolled.endpoint.public_id.clone(),
                url: rolled.endpoint.url.clone(),
                secret: rolled.secret.expose().to_owned(),
            };
            let handle = stash(&state, &session, &revealed).await?;
            page::see_other(&format!("/console/reveal/{handle}"))
        }
        "delete" => {
            webhooks::delete(service, caller, organization_id, &id).await?;
            page::see_other(&Notice::EndpointDeleted.on("/console/webhooks"))
        }
        _ => page::not_found().await,
    })
}
