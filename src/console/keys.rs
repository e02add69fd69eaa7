//! The API-key pages: the list (filters, every order, keyset pages, "my keys" or every key),
//! the create form with its permission grid, a key's detail with its secrets and audit trail,
//! rotation, and the confirmed actions (disable, enable, revoke, delete).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{DateTime, Utc};

use super::forms::Form;
use super::page::{self, ConsoleError, Nav};
use super::reveal::stash;
use super::session::ConsoleSession;
use super::usage_chart::UsageChart;
use super::view::{self, Grid, KeyRow, Notice};
use crate::db::key_lists::KeyOrder;
use crate::domain::{
    Environment, Expiry, GracePeriod, Granularity, KeyName, ManagementPermission, Metadata,
    ScopeSet, UsageWindow, ValidationError,
};
use crate::service::api_keys::{self, KeyOwner, KeyUpdate, NewKey, ScopeChoice};
use crate::service::audit::{self, AuditFilter};
use crate::service::key_lists::{self, KeyListQuery, decode_cursor, encode_cursor};
use crate::service::reveals::Revealed;
use crate::service::usage;
use crate::service::{self, policy};
use crate::state::AppState;

/// The list's columns, in the table's order: each sorts the list.
const COLUMNS: [(&str, &str); 8] = [
    ("name", "Name"),
    ("key_prefix", "Key prefix"),
    ("environment", "Environment"),
    ("scopes", "Scopes"),
    ("created_at", "Created"),
    ("last_used_at", "Last used"),
    ("expires_at", "Expires"),
    ("status", "Status"),
];

/// A column header: its label and where clicking it leads.
pub struct SortLink {
    pub label: &'static str,
    pub href: String,
    /// `ascending` or `descending` when the list is in this order.
    pub sort: Option<&'static str>,
    /// The arrow that shows it.
    pub arrow: &'static str,
}

#[derive(Template)]
#[template(path = "console/keys.html")]
struct KeysPage {
    nav: Nav,
    rows: Vec<KeyRow>,
    count: i64,
    headers: Vec<SortLink>,
    environment: String,
    status: String,
    owner: String,
    /// The order the list is in, kept when the filters change.
    order_by: String,
    order: String,
    may_see_all: bool,
    next_page: Option<String>,
    first_page: Option<String>,
    done: Option<&'static str>,
}

/// What the list's query string asks for.
#[derive(Default, serde::Deserialize)]
pub struct ListParams {
    environment: Option<String>,
    status: Option<String>,
    order_by: Option<String>,
    order: Option<String>,
    cursor: Option<String>,
    owner: Option<String>,
    done: Option<String>,
}

impl ListParams {
    fn query(&self) -> Result<KeyListQuery, ValidationError> {
        let order = match self.order_by.as_deref().filter(|o| !o.is_empty()) {
            Some(text) => {
                serde_json::from_value::<KeyOrder>(serde_json::Value::String(text.into()))
                    .map_err(|_| ValidationError::new("order_by", "is not a column of the list"))?
            }
            None => KeyOrder::CreatedAt,
        };
        let descending = match self.order.as_deref() {
            None | Some("") => order == KeyOrder::CreatedAt,
            Some("asc") => false,
            Some("desc") => true,
            Some(_) => return Err(ValidationError::new("order", "must be asc or desc")),
        };
        let cursor = self
            .cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(decode_cursor)
            .transpose()?
            .filter(|c| c.order == order && c.descending == descending);
        Ok(KeyListQuery {
            environments: nonblank(&self.environment)
                .map(str::parse)
                .transpose()?
                .into_iter()
                .collect(),
            statuses: nonblank(&self.status)
                .map(str::parse)
                .transpose()?
                .into_iter()
                .collect(),
            order,
            descending,
            limit: 100,
            offset: 0,
            cursor,
            only_own: self.owner.as_deref() == Some("mine"),
        })
    }

    /// This list's address with `changes` applied.
    fn href(&self, changes: &[(&str, Option<&str>)]) -> String {
        let mut pairs: Vec<(&str, &str)> = [
            ("environment", self.environment.as_deref()),
            ("status", self.status.as_deref()),
            ("owner", self.owner.as_deref()),
            ("order_by", self.order_by.as_deref()),
            ("order", self.order.as_deref()),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v)))
        .collect();
        for (name, value) in changes {
            pairs.retain(|(k, _)| k != name);
            if let Some(value) = value {
                pairs.push((name, value));
            }
        }
        let query: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        if query.is_empty() {
            "/console/keys".to_owned()
        } else {
            format!("/console/keys?{query}")
        }
    }
}

fn nonblank(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

pub async fn list(
    session: ConsoleSession,
    params: web::Query<ListParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let query = params.query().map_err(service::Error::from)?;
    let (order, descending) = (query.order, query.descending);
    let organization_id = policy::home_organization(&session.caller)?;
    let page = key_lists::list(&state.service, &session.caller, organization_id, query).await?;
    let now = Utc::now();
    let headers = COLUMNS
        .iter()
        .map(|(column, label)| {
            let current = serde_json::to_value(order)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned));
            let active = current.as_deref() == Some(*column);
            let flip = if active && !descending { "desc" } else { "asc" };
            SortLink {
                label,
                href: params.href(&[("order_by", Some(column)), ("order", Some(flip))]),
                sort: active.then_some(if descending {
                    "descending"
                } else {
                    "ascending"
                }),
                arrow: match (active, descending) {
                    (false, _) => "",
                    (true, false) => " ↑",
                    (true, true) => " ↓",
                },
            }
        })
        .collect();
    let next_page = page
        .next_cursor
        .as_ref()
        .map(|c| params.href(&[("cursor", Some(&encode_cursor(c)))]));
    render_list(
        session, &state, &params, page.keys, page.count, headers, next_page, now,
    )
}

#[allow(clippy::too_many_arguments)]
fn render_list(
    session: ConsoleSession,
    state: &AppState,
    params: &ListParams,
    keys: Vec<api_keys::KeyRecord>,
    count: i64,
    headers: Vec<SortLink>,
    next_page: Option<String>,
    now: DateTime<Utc>,
) -> Result<HttpResponse, ConsoleError> {
    let may_see_all = session.caller.holds(ManagementPermission::ApiKeysManage);
    page::render(&KeysPage {
        nav: Nav::of(&session, state, "keys"),
        rows: keys.iter().map(|r| KeyRow::of(r, now)).collect(),
        count,
        headers,
        environment: params.environment.clone().unwrap_or_default(),
        status: params.status.clone().unwrap_or_default(),
        owner: params.owner.clone().unwrap_or_else(|| "all".into()),
        order_by: params.order_by.clone().unwrap_or_default(),
        order: params.order.clone().unwrap_or_default(),
        may_see_all,
        next_page,
        first_page: params
            .cursor
            .as_ref()
            .map(|_| params.href(&[("cursor", None)])),
        done: params.done.as_deref().and_then(view::done_message),
    })
}

#[derive(Template)]
#[template(path = "console/key_new.html")]
struct NewKeyPage {
    nav: Nav,
    grid: Grid,
    name: String,
    environment: String,
    expiry: String,
    expires_on: String,
    metadata: String,
    token_only: bool,
    refresh_tokens: bool,
    problem: Option<String>,
}

impl NewKeyPage {
    fn blank(session: &ConsoleSession, state: &AppState) -> NewKeyPage {
        NewKeyPage {
            nav: Nav::of(session, state, "keys"),
            grid: Grid::for_keys(
                &state.service.catalog,
                &session.caller.permissions,
                &ScopeSet::default(),
            ),
            name: String::new(),
            environment: Environment::Live.as_str().into(),
            expiry: "never".into(),
            expires_on: String::new(),
            metadata: String::new(),
            token_only: false,
            refresh_tokens: false,
            problem: None,
        }
    }

    /// The form as it was sent, to show again.
    fn from_form(
        session: &ConsoleSession,
        state: &AppState,
        form: &Form,
        ticked: &ScopeSet,
    ) -> NewKeyPage {
        NewKeyPage {
            grid: Grid::for_keys(&state.service.catalog, &session.caller.permissions, ticked),
            name: form.get("name").unwrap_or_default().to_owned(),
            environment: form
                .get("environment")
                .unwrap_or(Environment::Live.as_str())
                .to_owned(),
            expiry: form.get("expiry").unwrap_or("never").to_owned(),
            expires_on: form.get("expires_on").unwrap_or_default().to_owned(),
            metadata: form.get("metadata").unwrap_or_default().to_owned(),
            token_only: form.ticked("token_only"),
            refresh_tokens: form.ticked("refresh_tokens"),
            ..NewKeyPage::blank(session, state)
        }
    }
}

pub async fn new(
    session: ConsoleSession,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    page::render(&NewKeyPage::blank(&session, &state))
}

/// The key a create form asks for.
fn parse_new_key(form: &Form, organization_id: i64) -> Result<NewKey, ValidationError> {
    let now = Utc::now();
    let scopes = ScopeSet::from_items(form.all("scope"))
        .map_err(|e| ValidationError::new("scopes", e.message))?;
    if scopes.is_empty() {
        return Err(ValidationError::new(
            "scopes",
            "tick at least one permission",
        ));
    }
    Ok(NewKey {
        enabled: true,
        token_only: form.ticked("token_only"),
        refresh_tokens: form.ticked("refresh_tokens"),
        organization_id,
        name: KeyName::parse(form.get("name").unwrap_or_default())?,
        environment: form
            .get("environment")
            .map_or(Ok(Environment::Live), str::parse)?,
        scopes: ScopeChoice::Listed(scopes),
        expiry: match form.get("expiry").unwrap_or("never") {
            "never" => Expiry::never(),
            "date" => Expiry::parse_date(form.get("expires_on").unwrap_or_default(), now)?,
            days => Expiry::in_days(
                days.parse()
                    .map_err(|_| ValidationError::new("expiry", "choose an expiry"))?,
                now,
            )?,
        },
        metadata: view::parse_metadata(form.get("metadata").unwrap_or_default())?,
        owner: KeyOwner::Caller,
    })
}

pub async fn create(
    session: ConsoleSession,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    session.check(&form)?;
    let service = &state.service;
    // The shortcuts re-draw the form with their permissions ticked (pages work without
    // JavaScript; with it, they tick the boxes in place).
    if let Some(preset) = form.get("preset") {
        let ticked = match preset {
            "read_only" => service.catalog.read_only(&session.caller.permissions),
            _ => service.catalog.full_access(&session.caller.permissions),
        };
        return page::render(&NewKeyPage::from_form(&session, &state, &form, &ticked));
    }
    let ticked = ScopeSet::from_items(form.all("scope"))
        .unwrap_or_default()
        .intersection(&session.caller.permissions);
    let organization_id = policy::home_organization(&session.caller)?;
    let outcome = match parse_new_key(&form, organization_id) {
        Ok(new) => api_keys::create(service, &session.caller, new).await,
        Err(invalid) => Err(invalid.into()),
    };
    let created = match outcome {
        Ok(created) => created,
        Err(err @ (service::Error::Validation(_) | service::Error::Forbidden(_))) => {
            let mut page = NewKeyPage::from_form(&session, &state, &form, &ticked);
            page.problem = Some(page::describe(&err).1);
            return page::render_with(StatusCode::BAD_REQUEST, &page);
        }
        Err(other) => return Err(other.into()),
    };
    let key = &created.record.key;
    let revealed = Revealed::ApiKey {
        client_id: key.client_id.clone(),
        name: key.name.clone(),
        client_secret: created.secret.expose().to_owned(),
        rotated: None,
    };
    let handle = stash(&state, &session, &revealed).await?;
    Ok(page::see_other(&format!("/console/reveal/{handle}")))
}

#[derive(Template)]
#[template(path = "console/key.html")]
struct KeyPage {
    nav: Nav,
    key: KeyRow,
    metadata: Vec<(String, String)>,
    secrets: Vec<view::SecretRow>,
    events: Option<Vec<view::EventRow>>,
    usage: UsageChart,
    done: Option<&'static str>,
}

#[derive(Default, serde::Deserialize)]
pub struct DetailParams {
    done: Option<String>,
    /// `day`: the usage chart shows the last 30 days instead of the last 24 hours.
    usage: Option<String>,
}

pub async fn detail(
    session: ConsoleSession,
    path: web::Path<String>,
    params: web::Query<DetailParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let service = &state.service;
    let record = api_keys::get(service, &session.caller, &path).await?;
    let secrets = api_keys::secrets(service, &session.caller, &path).await?;
    let events = if session.caller.holds(ManagementPermission::AuditRead) {
        let filter = AuditFilter {
            target: Some(record.key.client_id.clone()),
            limit: 20,
            ..AuditFilter::default()
        };
        let (events, _) = audit::search(service, &session.caller, filter).await?;
        Some(events.into_iter().map(view::EventRow::of).collect())
    } else {
        None
    };
    let now = Utc::now();
    let granularity = match params.usage.as_deref() {
        Some("day") => Granularity::Day,
        _ => Granularity::Hour,
    };
    let window = UsageWindow::parse(None, None, Some(&granularity.to_string()), now)
        .map_err(service::Error::from)?;
    let report = usage::of_key(service, &session.caller, &path, window).await?;
    page::render(&KeyPage {
        nav: Nav::of(&session, &state, "keys"),
        usage: UsageChart::of(&report),
        metadata: Metadata::from_stored(&record.key.metadata).entries(),
        key: KeyRow::of(&record, now),
        secrets: secrets
            .iter()
            .map(|s| view::SecretRow::of(s, now))
            .collect(),
        events,
        done: params.done.as_deref().and_then(view::done_message),
    })
}

/// What a confirmed action does, in words.
fn action(name: &str) -> Option<(&'static str, &'static str, bool)> {
    // (verb, consequence, dangerous)
    match name {
        "disable" => Some((
            "Disable",
            "It gets no new tokens, and its tokens stop working, until it is enabled again.",
            false,
        )),
        "enable" => Some((
            "Enable",
            "It gets tokens again; tokens issued before it was disabled stay refused.",
            false,
        )),
        "revoke" => Some((
            "Revoke",
            "Its secrets and every token it was issued stop working at once, for good.",
            true,
        )),
        "delete" => Some((
            "Delete",
            "It is revoked and hidden from lists; its audit trail stays.",
            true,
        )),
        _ => None,
    }
}

/// A confirmation that names what it acts on.
#[derive(Template)]
#[template(path = "console/confirm.html")]
pub(super) struct ConfirmPage {
    pub(super) nav: Nav,
    pub(super) title: String,
    pub(super) question: String,
    pub(super) consequence: &'static str,
    pub(super) action: String,
    pub(super) button: &'static str,
    pub(super) danger: bool,
    pub(super) back: String,
}

pub async fn confirm(
    session: ConsoleSession,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let (client_id, name) = path.into_inner();
    let Some((verb, consequence, danger)) = action(&name) else {
        return Ok(page::not_found().await);
    };
    let record = api_keys::get(&state.service, &session.caller, &client_id).await?;
    let key_name = &record.key.name;
    page::render(&ConfirmPage {
        nav: Nav::of(&session, &state, "keys"),
        title: format!("{verb} key {key_name:?}?"),
        question: format!("{verb} the API key {key_name:?} ({client_id})?"),
        consequence,
        action: format!("/console/keys/{client_id}/{name}"),
        button: verb,
        danger,
        back: format!("/console/keys/{client_id}"),
    })
}

pub async fn act(
    session: ConsoleSession,
    path: web::Path<(String, String)>,
    form: Form,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    session.check(&form)?;
    let (client_id, name) = path.into_inner();
    let (service, caller) = (&state.service, &session.caller);
    let enabled = |on: bool| KeyUpdate {
        name: None,
        enabled: Some(on),
        metadata: None,
        refresh_tokens: None,
    };
    let done = match name.as_str() {
        "rotate" => {
            let seconds = form.get("grace").unwrap_or("0").parse().unwrap_or(-1);
            let grace = GracePeriod::seconds(seconds).map_err(service::Error::from)?;
            let rotated = api_keys::rotate(service, caller, &client_id, grace).await?;
            let key = &rotated.record.key;
            let revealed = Revealed::ApiKey {
                client_id: key.client_id.clone(),
                name: key.name.clone(),
                client_secret: rotated.secret.expose().to_owned(),
                rotated: Some(rotated.previous_valid_until),
            };
            let handle = stash(&state, &session, &revealed).await?;
            return Ok(page::see_other(&format!("/console/reveal/{handle}")));
        }
        "disable" => api_keys::update(service, caller, &client_id, enabled(false))
            .await
            .map(|_| Notice::KeyDisabled),
        "enable" => api_keys::update(service, caller, &client_id, enabled(true))
            .await
            .map(|_| Notice::KeyEnabled),
        "revoke" => api_keys::revoke(service, caller, &client_id)
            .await
            .map(|_| Notice::KeyRevoked),
        "delete" => {
            api_keys::delete(service, caller, &client_id).await?;
            return Ok(page::see_other(&Notice::KeyDeleted.on("/console/keys")));
        }
        _ => return Ok(page::not_found().await),
    }?;
    Ok(page::see_other(
        &done.on(&format!("/console/keys/{client_id}")),
    ))
}
