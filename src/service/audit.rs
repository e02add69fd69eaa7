//! The audit trail: who did what to which row, and how it ended. Appended in the transaction
//! of the change it records; read by holders of `audit:read`, fenced by organization.

use chrono::{DateTime, NaiveDateTime, Utc};

use super::{Caller, Error, Service, policy};
use crate::db::DbConnection;
use crate::db::audit::{self, AuditEvent, AuditSearch, NewAuditEvent};
use crate::domain::{AuditAction, ManagementPermission, Outcome};

/// Who is acting, for the audit trail.
#[derive(Clone, Debug)]
pub struct Actor {
    /// `cli:<user>`, `user:<email>`, `api_key:<client_id>`, `client:<client_id>`, `system`,
    /// `schedule` (what keygate does by itself on a configured schedule).
    pub label: String,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Actor {
    pub fn cli() -> Actor {
        let user = std::env::var("USER").unwrap_or_default();
        let label = if user.is_empty() {
            "cli".to_owned()
        } else {
            format!("cli:{user}")
        };
        Actor {
            label,
            client_ip: None,
            user_agent: None,
        }
    }

    pub fn system() -> Actor {
        Actor {
            label: "system".to_owned(),
            client_ip: None,
            user_agent: None,
        }
    }

    /// keygate itself, because a configured schedule said so (`signing.rotate_every_days`).
    pub fn schedule() -> Actor {
        Actor {
            label: "schedule".to_owned(),
            client_ip: None,
            user_agent: None,
        }
    }
}

/// One thing that happened. `details` must never hold a secret.
pub struct Event<'a> {
    pub organization_id: Option<i64>,
    pub action: AuditAction,
    pub target: Option<&'a str>,
    pub outcome: Outcome,
    pub details: serde_json::Value,
}

impl<'a> Event<'a> {
    /// A successful action on `target`, with no details.
    pub fn success(organization_id: i64, action: AuditAction, target: &'a str) -> Event<'a> {
        Event {
            organization_id: Some(organization_id),
            action,
            target: Some(target),
            outcome: Outcome::Success,
            details: serde_json::json!({}),
        }
    }

    pub fn with(mut self, details: serde_json::Value) -> Event<'a> {
        self.details = details;
        self
    }
}

/// Appends one audit event.
pub fn record(
    conn: &mut DbConnection,
    actor: &Actor,
    event: Event<'_>,
    now: DateTime<Utc>,
) -> diesel::QueryResult<()> {
    audit::record(
        conn,
        &NewAuditEvent {
            organization_id: event.organization_id,
            occurred_at: now.naive_utc(),
            actor: &actor.label,
            action: event.action,
            target: event.target,
            outcome: event.outcome,
            client_ip: actor.client_ip.as_deref(),
            user_agent: actor.user_agent.as_deref(),
            details: &event.details.to_string(),
        },
    )
}

/// Filters of an audit search; every one is optional.
#[derive(Clone, Debug, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub since: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
    pub limit: i64,
    pub offset: i64,
}

/// The actors an `actor` filter means: the label as given, or, for a bare email or
/// client_id, that user or key however it acted (`user:`, `api_key:`, `client:`).
fn actors(actor: &str) -> Vec<String> {
    if actor.contains(':') {
        return vec![actor.to_owned()];
    }
    let mut labels = vec![actor.to_owned()];
    labels.extend(["user", "api_key", "client"].map(|kind| format!("{kind}:{actor}")));
    labels
}

/// A page of the caller's organization's events, newest first, and how many match in all.
pub async fn search(
    service: &Service,
    caller: &Caller,
    filter: AuditFilter,
) -> Result<(Vec<AuditEvent>, i64), Error> {
    policy::require(caller, ManagementPermission::AuditRead)?;
    let organization_id = policy::home_organization(caller)?;
    service
        .db(move |conn| {
            let search = AuditSearch {
                organization_id,
                actors: filter.actor.as_deref().map(actors).unwrap_or_default(),
                action: filter.action,
                target: filter.target,
                since: filter.since,
                until: filter.until,
                limit: filter.limit,
                offset: filter.offset,
            };
            Ok(audit::search(conn, &search)?)
        })
        .await
}
