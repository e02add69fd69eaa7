//! The audit trail: append-only events (who did what to which key, and how it ended).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::audit_events;
use crate::domain::{AuditAction, Outcome};

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
    pub action: AuditAction,
    pub target: Option<&'a str>,
    pub outcome: Outcome,
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

/// Filters of the audit-event list; every one is optional but the organization.
pub struct AuditSearch {
    pub organization_id: i64,
    /// Any of these actors (empty: any actor).
    pub actors: Vec<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub since: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
    pub limit: i64,
    pub offset: i64,
}

fn filtered(search: &AuditSearch) -> audit_events::BoxedQuery<'_, super::MultiBackend> {
    let mut query = audit_events::table
        .filter(audit_events::organization_id.eq(search.organization_id))
        .into_boxed();
    if !search.actors.is_empty() {
        query = query.filter(audit_events::actor.eq_any(&search.actors));
    }
    if let Some(action) = &search.action {
        query = query.filter(audit_events::action.eq(action));
    }
    if let Some(target) = &search.target {
        query = query.filter(audit_events::target.eq(target));
    }
    if let Some(since) = search.since {
        query = query.filter(audit_events::occurred_at.ge(since));
    }
    if let Some(until) = search.until {
        query = query.filter(audit_events::occurred_at.lt(until));
    }
    query
}

/// A page of events, newest first, and how many match in all.
pub fn search(
    conn: &mut DbConnection,
    search: &AuditSearch,
) -> QueryResult<(Vec<AuditEvent>, i64)> {
    let count = filtered(search).count().get_result(conn)?;
    let events = filtered(search)
        .order(audit_events::id.desc())
        .limit(search.limit)
        .offset(search.offset)
        .select(AuditEvent::as_select())
        .load(conn)?;
    Ok((events, count))
}
