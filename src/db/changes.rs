//! The change feed: an append-only sequence of key-state changes that every instance polls,
//! so revocations and rotations reach all of them without a read on the validation path.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::state_changes;
use crate::tokens::{Change, ChangeKind};

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = state_changes)]
pub struct StateChangeRow {
    pub id: i64,
    pub kind: String,
    pub subject: String,
    pub not_before: i64,
    pub expires_at: i64,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = state_changes)]
struct NewStateChange<'a> {
    kind: ChangeKind,
    subject: &'a str,
    not_before: i64,
    expires_at: i64,
    created_at: NaiveDateTime,
}

/// Takes the feed's write lock, until the transaction ends: a change reads its time after
/// it, so that a reader of the feed ([`lock_for_reading`]) that did not see the change began
/// before that time. On SQLite the write transaction already holds the only write lock.
pub fn lock(conn: &mut DbConnection) -> QueryResult<()> {
    if matches!(conn, DbConnection::Postgres(_)) {
        diesel::sql_query("LOCK TABLE state_changes IN EXCLUSIVE MODE").execute(conn)?;
    }
    Ok(())
}

/// Waits for every change being written to commit, and keeps new ones out until the
/// transaction ends: what a reader of the feed then reads is everything published before
/// this moment. On SQLite the (write) transaction already excludes every writer.
pub fn lock_for_reading(conn: &mut DbConnection) -> QueryResult<()> {
    if matches!(conn, DbConnection::Postgres(_)) {
        diesel::sql_query("LOCK TABLE state_changes IN SHARE MODE").execute(conn)?;
    }
    Ok(())
}

/// Appends a change. Call inside the transaction that makes the change, so the feed never
/// announces what did not commit. On PostgreSQL the table lock makes ids commit in order, so
/// a poller that has seen id N has seen every id below it.
pub fn publish(conn: &mut DbConnection, change: &Change, now: NaiveDateTime) -> QueryResult<()> {
    lock(conn)?;
    let (kind, subject, not_before, expires_at) = change.to_feed();
    diesel::insert_into(state_changes::table)
        .values(&NewStateChange {
            kind,
            subject,
            not_before,
            expires_at,
            created_at: now,
        })
        .execute(conn)
        .map(|_| ())
}

/// Changes after `last_id`, oldest first.
pub fn since(
    conn: &mut DbConnection,
    last_id: i64,
    limit: i64,
) -> QueryResult<Vec<StateChangeRow>> {
    state_changes::table
        .filter(state_changes::id.gt(last_id))
        .order(state_changes::id.asc())
        .limit(limit)
        .select(StateChangeRow::as_select())
        .load(conn)
}

/// Changes still in force at `now` (unix seconds), for an instance that is starting.
pub fn in_force(conn: &mut DbConnection, now: i64) -> QueryResult<Vec<StateChangeRow>> {
    state_changes::table
        .filter(state_changes::expires_at.gt(now))
        .order(state_changes::id.asc())
        .select(StateChangeRow::as_select())
        .load(conn)
}

/// The newest id, or 0 for an empty feed.
pub fn last_id(conn: &mut DbConnection) -> QueryResult<i64> {
    state_changes::table
        .select(diesel::dsl::max(state_changes::id))
        .first::<Option<i64>>(conn)
        .map(|id| id.unwrap_or(0))
}

/// Deletes changes that stopped mattering a day ago.
pub fn prune(conn: &mut DbConnection, now: i64) -> QueryResult<usize> {
    diesel::delete(state_changes::table.filter(state_changes::expires_at.lt(now - 86_400)))
        .execute(conn)
}

/// The latest cut of `client_id`'s tokens (unix seconds: tokens issued before it are
/// refused), if any is still in force at `now`.
pub fn latest_cut(conn: &mut DbConnection, client_id: &str, now: i64) -> QueryResult<Option<i64>> {
    state_changes::table
        .filter(state_changes::subject.eq(client_id))
        .filter(state_changes::kind.eq(ChangeKind::Client))
        .filter(state_changes::expires_at.gt(now))
        .select(diesel::dsl::max(state_changes::not_before))
        .first::<Option<i64>>(conn)
}
