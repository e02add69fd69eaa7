//! Failed console log-ins, counted per account and source address: an attacker guessing from
//! one place locks only that place out of that account.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Integer, Nullable, Text, Timestamp};

use super::DbConnection;
use super::schema::login_failures;

/// The count after an attempt, and the lock in force.
#[derive(Debug, QueryableByName)]
pub struct Attempts {
    #[diesel(sql_type = Integer)]
    pub failures: i32,
    #[diesel(sql_type = Nullable<Timestamp>)]
    pub locked_until: Option<NaiveDateTime>,
}

/// Counts an attempt before its password is checked, so that guesses sent at once are all
/// counted; a lock that has ended starts a new count. One statement on both backends (the
/// numbered parameters read the same in SQLite and PostgreSQL).
pub fn count_attempt(
    conn: &mut DbConnection,
    user_id: i64,
    source: &str,
    now: NaiveDateTime,
) -> QueryResult<Attempts> {
    diesel::sql_query(
        "INSERT INTO login_failures (user_id, source, failures, locked_until, updated_at) \
         VALUES ($1, $2, 1, NULL, $3) \
         ON CONFLICT (user_id, source) DO UPDATE SET \
           failures = CASE WHEN login_failures.locked_until <= $3 THEN 1 \
                           ELSE login_failures.failures + 1 END, \
           locked_until = CASE WHEN login_failures.locked_until <= $3 THEN NULL \
                               ELSE login_failures.locked_until END, \
           updated_at = $3 \
         RETURNING failures, locked_until",
    )
    .bind::<BigInt, _>(user_id)
    .bind::<Text, _>(source)
    .bind::<Timestamp, _>(now)
    .get_result(conn)
}

/// Locks the account for this source until `until` (unless it already is).
pub fn lock(
    conn: &mut DbConnection,
    user_id: i64,
    source: &str,
    until: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(
        login_failures::table
            .find((user_id, source))
            .filter(login_failures::locked_until.is_null()),
    )
    .set(login_failures::locked_until.eq(until))
    .execute(conn)
    .map(|_| ())
}

/// Forgets the count after a successful log-in.
pub fn clear(conn: &mut DbConnection, user_id: i64, source: &str) -> QueryResult<()> {
    diesel::delete(login_failures::table.find((user_id, source)))
        .execute(conn)
        .map(|_| ())
}

/// Deletes counts untouched since `before` whose lock (if any) has ended.
pub fn prune(conn: &mut DbConnection, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(
        login_failures::table
            .filter(login_failures::updated_at.lt(before))
            .filter(
                login_failures::locked_until
                    .is_null()
                    .or(login_failures::locked_until.lt(before)),
            ),
    )
    .execute(conn)
}
