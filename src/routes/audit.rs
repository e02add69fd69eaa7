//! `GET /v1/audit-events`: the organization's append-only trail (`audit:read`), newest first,
//! filtered by `actor`, `action`, `target`, `since`, `until` (RFC 3339), paged by `limit`
//! (1 to 100) and `offset`.

use actix_web::{HttpRequest, HttpResponse, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;

use super::{Page, PageParameters, integer_parameter};
use crate::auth::caller::{AuditRead, Operator};
use crate::db::audit::AuditEvent;
use crate::domain::{AuditAction, Outcome, ValidationError};
use crate::error::ApiError;
use crate::openapi::ManagementErrors;
use crate::service::audit::{self, AuditFilter};
use crate::state::AppState;

/// One entry of the audit trail: who did what to which key, user or organization, and how it
/// ended.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AuditEvent)]
pub struct AuditEventView {
    id: i64,
    occurred_at: DateTime<Utc>,
    /// e.g. `user:ada@example.com` or `api_key:kgc_…`
    #[schema(example = "user:ada@example.com")]
    actor: String,
    #[schema(value_type = AuditAction)]
    action: String,
    /// A client_id, user id or organization.
    target: Option<String>,
    /// `success`, or why the action was refused.
    #[schema(value_type = Outcome)]
    outcome: String,
    client_ip: Option<String>,
    user_agent: Option<String>,
    /// What else the action recorded (e.g. the scopes of a new key).
    #[schema(value_type = Object)]
    details: serde_json::Value,
}

/// The filters `parse_query` reads, besides `PageParameters`; every one is optional, and a test
/// holds the two together.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code, reason = "only its shape is read, by the OpenAPI document")]
pub struct AuditParameters {
    /// e.g. user:ada@example.com or api_key:kgc_…
    pub actor: Option<String>,
    /// e.g. api_key.revoked
    #[param(value_type = Option<AuditAction>)]
    pub action: Option<String>,
    /// a client_id, user id or organization
    pub target: Option<String>,
    /// RFC 3339, inclusive
    pub since: Option<DateTime<Utc>>,
    /// RFC 3339, exclusive
    pub until: Option<DateTime<Utc>>,
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

#[utoipa::path(
    get,
    path = "/v1/audit-events",
    tag = "audit",
    summary = "The organization's audit trail, newest first",
    description = "Needs `audit:read`. Unknown query parameters are refused.",
    security(("bearerAuth" = ["audit:read"]), ("sessionCookie" = [])),
    params(AuditParameters, PageParameters),
    responses(
        ManagementErrors,
        (status = 200, description = "A page of events", body = Page<AuditEventView>),
    )
)]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_parameter_is_read() {
        use utoipa::IntoParams;
        let samples = [
            ("actor", "user:ada@example.com"),
            ("action", "api_key.revoked"),
            ("target", "kgc_00000000000000000000"),
            ("since", "2026-11-01T00:00:00Z"),
            ("until", "2026-12-01T00:00:00Z"),
            ("limit", "5"),
            ("offset", "10"),
        ];
        let mut documented: Vec<String> = AuditParameters::into_params(|| None)
            .into_iter()
            .chain(PageParameters::into_params(|| None))
            .map(|p| p.name)
            .collect();
        documented.sort();
        let mut sampled: Vec<&str> = samples.iter().map(|(name, _)| *name).collect();
        sampled.sort();
        assert_eq!(documented, sampled);
        let query: Vec<String> = samples.iter().map(|(n, v)| format!("{n}={v}")).collect();
        let filter = parse_query(&query.join("&")).unwrap();
        assert_eq!(filter.actor.as_deref(), Some("user:ada@example.com"));
        assert_eq!(filter.action.as_deref(), Some("api_key.revoked"));
        assert_eq!(filter.target.as_deref(), Some("kgc_00000000000000000000"));
        assert!(filter.since.is_some() && filter.until.is_some());
        assert_eq!((filter.limit, filter.offset), (5, 10));
    }
}
