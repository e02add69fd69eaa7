//! The audit log (for holders of `audit:read`): filtered by actor, action, target and time
//! range, newest first, a page at a time.

use actix_web::{HttpResponse, web};
use askama::Template;
use chrono::{NaiveDateTime, TimeZone, Utc};

use super::page::{self, ConsoleError, Nav};
use super::session::ConsoleSession;
use super::view::EventRow;
use crate::domain::ValidationError;
use crate::service;
use crate::service::audit::{self, AuditFilter};
use crate::state::AppState;

const PAGE: i64 = 50;

#[derive(Default, serde::Deserialize)]
pub struct AuditParams {
    actor: Option<String>,
    action: Option<String>,
    target: Option<String>,
    since: Option<String>,
    until: Option<String>,
    offset: Option<i64>,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    nav: Nav,
    events: Vec<EventRow>,
    count: i64,
    actor: String,
    action: String,
    target: String,
    since: String,
    until: String,
    newer: Option<String>,
    older: Option<String>,
}

/// A `datetime-local` field's value (`2026-12-01T10:30`), read as UTC.
fn moment(
    field: &'static str,
    value: &Option<String>,
) -> Result<Option<NaiveDateTime>, ValidationError> {
    let Some(value) = value.as_deref().filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]
        .iter()
        .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())
        .map(|t| Some(Utc.from_utc_datetime(&t).naive_utc()))
        .ok_or_else(|| {
            ValidationError::new(field, "must be a date and time, e.g. 2026-12-01T10:30")
        })
}

fn text(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| v.chars().take(200).collect())
}

impl AuditParams {
    fn filter(&self) -> Result<AuditFilter, ValidationError> {
        Ok(AuditFilter {
            actor: text(&self.actor),
            action: text(&self.action),
            target: text(&self.target),
            since: moment("since", &self.since)?,
            until: moment("until", &self.until)?,
            limit: PAGE,
            offset: self.offset.unwrap_or(0).clamp(0, 10_000_000),
        })
    }

    fn href(&self, offset: i64) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("actor", &self.actor),
            ("action", &self.action),
            ("target", &self.target),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                query.append_pair(name, value);
            }
        }
        if offset > 0 {
            query.append_pair("offset", &offset.to_string());
        }
        format!("/console/audit?{}", query.finish())
    }
}

pub async fn list(
    session: ConsoleSession,
    params: web::Query<AuditParams>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let filter = params.filter().map_err(service::Error::from)?;
    let offset = filter.offset;
    let (events, count) = audit::search(&state.service, &session.caller, filter).await?;
    let shown = events.len() as i64;
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    page::render(&AuditPage {
        nav: Nav::of(&session, &state, "audit"),
        events: events.into_iter().map(EventRow::of).collect(),
        count,
        actor: value(&params.actor),
        action: value(&params.action),
        target: value(&params.target),
        since: value(&params.since),
        until: value(&params.until),
        newer: (offset > 0).then(|| params.href((offset - PAGE).max(0))),
        older: (offset + shown < count).then(|| params.href(offset + PAGE)),
    })
}
