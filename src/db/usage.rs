//! Usage counters: one row per key, hour and metric.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};

use super::DbConnection;
use super::schema::{api_keys, key_usage};
use crate::domain::Environment;

/// Adds `count` to a key's counter for the hour, creating it; nothing for a client_id that
/// names no key.
pub fn add(
    conn: &mut DbConnection,
    client_id: &str,
    hour: NaiveDateTime,
    metric: &str,
    count: i64,
) -> QueryResult<()> {
    // The SELECT's WHERE clause also settles SQLite's reading of `ON CONFLICT` after a SELECT.
    let sql = match conn {
        DbConnection::Postgres(_) => {
            "INSERT INTO key_usage (client_id, hour, metric, count) \
             SELECT client_id, $2, $3, $4 FROM api_keys WHERE client_id = $1 \
             ON CONFLICT (client_id, hour, metric) DO UPDATE SET count = key_usage.count + excluded.count"
        }
        DbConnection::Sqlite(_) => {
            "INSERT INTO key_usage (client_id, hour, metric, count) \
             SELECT client_id, ?2, ?3, ?4 FROM api_keys WHERE client_id = ?1 \
             ON CONFLICT (client_id, hour, metric) DO UPDATE SET count = key_usage.count + excluded.count"
        }
    };
    diesel::sql_query(sql)
        .bind::<Text, _>(client_id)
        .bind::<Timestamp, _>(hour)
        .bind::<Text, _>(metric)
        .bind::<BigInt, _>(count)
        .execute(conn)
        .map(drop)
}

/// One stored counter.
#[derive(Debug, Queryable)]
pub struct UsageRow {
    pub client_id: String,
    pub hour: NaiveDateTime,
    pub metric: String,
    pub count: i64,
}

/// A key's counters of the hours in `[from, to)`.
pub fn of_key(
    conn: &mut DbConnection,
    client_id: &str,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<UsageRow>> {
    key_usage::table
        .filter(key_usage::client_id.eq(client_id))
        .filter(key_usage::hour.ge(from))
        .filter(key_usage::hour.lt(to))
        .select((
            key_usage::client_id,
            key_usage::hour,
            key_usage::metric,
            key_usage::count,
        ))
        .load(conn)
}

/// Which keys of an organization a summary covers.
pub struct KeyScope {
    pub organization_id: i64,
    /// Only the keys this user created.
    pub created_by: Option<i64>,
    /// Only the keys of this environment.
    pub environment: Option<Environment>,
}

/// The counters of the hours in `[from, to)` of every key in scope, with the key's name;
/// deleted keys included (their history is the organization's).
pub fn of_keys(
    conn: &mut DbConnection,
    scope: &KeyScope,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<(UsageRow, String)>> {
    let mut query = key_usage::table
        .inner_join(api_keys::table.on(api_keys::client_id.eq(key_usage::client_id)))
        .filter(api_keys::organization_id.eq(scope.organization_id))
        .filter(key_usage::hour.ge(from))
        .filter(key_usage::hour.lt(to))
        .select((
            (
                key_usage::client_id,
                key_usage::hour,
                key_usage::metric,
                key_usage::count,
            ),
            api_keys::name,
        ))
        .into_boxed();
    if let Some(user) = scope.created_by {
        query = query.filter(api_keys::created_by.eq(user));
    }
    if let Some(environment) = scope.environment {
        query = query.filter(api_keys::environment.eq(environment));
    }
    query.load(conn)
}

/// Deletes the counters of hours before `before`.
pub fn prune(conn: &mut DbConnection, before: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(key_usage::table.filter(key_usage::hour.lt(before))).execute(conn)
}
