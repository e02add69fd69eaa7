//! The audit trail: append-only events (who did what to which key, and how it ended).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::audit_events;

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub id: i64,
    pub organization_id: Option<i64>,
    pub occurred_at: NaiveDateTime,
    pub actor: String,
    pub action: String,
    pub target: Option<String>,
    pub outcome: String,
    pub client_ip: Option<String>,
    pub user_agent: Option<String>,
    pub details: String,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = audit_events)]
pub struct NewAuditEvent<'a> {
    pub organization_id: Option<i64>,
    pub occurred_at: NaiveDateTime,
    pub actor: &'a str,
    pub action: &'a str,
    pub target: Option<&'a str>,
    pub outcome: &'a str,
    pub client_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub details: &'a str,
}

pub fn record(conn: &mut DbConnection, event: &NewAuditEvent<'_>) -> QueryResult<()> {
    diesel::insert_into(audit_events::table)
        .values(event)
        .execute(conn)
        .map(|_| ())
}

/// Events about one target, oldest first.
pub fn for_target(conn: &mut DbConnection, target: &str) -> QueryResult<Vec<AuditEvent>> {
    audit_events::table
        .filter(audit_events::target.eq(target))
        .order(audit_events::id.asc())
        .select(AuditEvent::as_select())
        .load(conn)
}
