//! One-time views: sealed values kept for a console session until shown once.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::one_time_reveals;

#[derive(Insertable)]
#[diesel(table_name = one_time_reveals)]
pub struct NewReveal<'a> {
    pub handle_hash: &'a str,
    pub session_id: i64,
    pub sealed: &'a str,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConnection, reveal: &NewReveal<'_>) -> QueryResult<()> {
    diesel::insert_into(one_time_reveals::table)
        .values(reveal)
        .execute(conn)
        .map(|_| ())
}

/// The sealed value of a live view of this session, deleted as it is read: a second read
/// finds nothing.
pub fn take(
    conn: &mut DbConnection,
    handle_hash: &str,
    session_id: i64,
    now: NaiveDateTime,
) -> QueryResult<Option<String>> {
    let mine = one_time_reveals::table
        .filter(one_time_reveals::handle_hash.eq(handle_hash))
        .filter(one_time_reveals::session_id.eq(session_id));
    let sealed = mine
        .filter(one_time_reveals::expires_at.gt(now))
        .select(one_time_reveals::sealed)
        .first::<String>(conn)
        .optional()?;
    let deleted = diesel::delete(mine).execute(conn)?;
    // Two readers at once: only the one that deleted it shows it.
    Ok(sealed.filter(|_| deleted == 1))
}

/// Deletes views that were never shown in time.
pub fn prune(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(one_time_reveals::table.filter(one_time_reveals::expires_at.le(now)))
        .execute(conn)
}

/// Every value kept for a one-time view: (handle hash, sealed).
pub fn sealed(conn: &mut DbConnection) -> QueryResult<Vec<(String, String)>> {
    one_time_reveals::table
        .select((one_time_reveals::handle_hash, one_time_reveals::sealed))
        .load(conn)
}

pub fn set_sealed(conn: &mut DbConnection, handle_hash: &str, sealed: &str) -> QueryResult<()> {
    diesel::update(one_time_reveals::table.find(handle_hash))
        .set(one_time_reveals::sealed.eq(sealed))
        .execute(conn)
        .map(|_| ())
}
