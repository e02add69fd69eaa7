//! `GET /v1/audit-events`: the organization's append-only trail (`audit:read`), newest first,
//! filtered by `actor`, `action`, `target`, `since`, `until` (RFC 3339), paged by `limit`
//! (1 to 100) and `offset`.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;

use super::{Page, integer_parameter};
use crate::auth::caller::{AuditRead, Operator};
use crate::db::audit::AuditEvent;
use crate::domain::ValidationError;
use crate::error::ApiError;
use crate::service::audit::{self, AuditFilter};
use crate::state::AppState;

#[derive(Serialize)]
struct AuditEventView {
    id: i64,
    occurred_at: DateTime<Utc>,
    actor: String,
    action: String,
    target: Option<String>,
    outcome: String,
    client_ip: Option<String>,
    user_agent: Option<String>,
    details: serde_json::Value,
}

fn view(event: AuditEvent) -> AuditEventView {
    AuditEventView {
        id: event.id,
        occurred_at: event.occurred_at.and_utc(),
        details: serde_json::from_str(&event.details).unwrap_or_default(),
        actor: event.actor,
        action: event.action,
        target: event.target,
        outcome: event.outcome,
        client_ip: event.client_ip,
        user_agent: event.user_agent,
    }
}

fn time(field: &'static str, value: &str) -> Result<NaiveDateTime, ValidationError> {
    DateTime::parse_from_rfc3339(value)
        .map(|t| t.naive_utc())
        .map_err(|_| {
            ValidationError::new(field, "must be an RFC 3339 time, e.g. 2026-11-25T00:00:00Z")
        })
}

fn parse_query(query: &str) -> Result<AuditFilter, ValidationError> {
    let mut search = AuditFilter {
        limit: 100,
        ..AuditFilter::default()
    };
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        if value.chars().any(char::is_control) {
            return Err(ValidationError::new(
                name.chars().take(40).collect::<String>(),
                "must not contain control characters",
            ));
        }
        let text = || Some(value.chars().take(200).collect::<String>());
        match name.as_ref() {
            "actor" => search.actor = text(),
            "action" => search.action = text(),
            "target" => search.target = text(),
            "since" => search.since = Some(time("since", &value)?),
            "until" => search.until = Some(time("until", &value)?),
            "limit" => search.limit = integer_parameter("limit", &value, 1..=100)?,
            "offset" => search.offset = integer_parameter("offset", &value, 0..=10_000_000)?,
            other => {
                return Err(ValidationError::new(
                    other.chars().take(40).collect::<String>(),
                    "unknown query parameter",
                ));
            }
        }
    }
    Ok(search)
}

pub async fn list_audit_events(
    operator: Operator<AuditRead>,
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let filter = parse_query(req.query_string())?;
    let (limit, offset) = (filter.limit, filter.offset);
    let (events, count) = audit::search(&state.service, &operator, filter).await?;
    Ok(HttpResponse::Ok().json(Page {
        data: events.into_iter().map(view).collect(),
        count,
        limit,
        offset,
        next_cursor: None,
    }))
}
