//! What operators do to keys, written once for the CLI and the HTTP API: each action changes
//! the rows, appends to the change feed and the audit trail, in one transaction.

pub mod api_keys;
pub mod organizations;
pub mod signing_keys;
pub mod users;

use chrono::{DateTime, Utc};

use crate::db::DbConnection;
use crate::db::audit::{self, NewAuditEvent};

/// Who is acting, for the audit trail.
#[derive(Clone, Debug)]
pub struct Actor {
    /// `cli`, `user:<email>`, `api_key:<client_id>`, `system`.
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
}

/// One thing that happened, for the audit trail. `details` must never hold a secret.
pub struct Event<'a> {
    pub organization_id: Option<i64>,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub outcome: &'a str,
    pub details: serde_json::Value,
}

/// Appends one audit event.
pub fn audit(
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
