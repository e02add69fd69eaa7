//! What scheduled events are about: keys about to expire, keys that expired, rotated-out
//! secrets whose grace ended. Each is claimed by a compare-and-set update of the row, so one
//! event is produced once, whichever instance (and however many) looks.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::api_keys::ApiKey;
use super::schema::{api_key_secrets, api_keys};
use crate::domain::KeyStatus;

/// Live keys expiring in `(now, until]` whose current expiry has not been announced.
pub fn expiring(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    until: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<ApiKey>> {
    api_keys::table
        .filter(api_keys::deleted_at.is_null())
        .filter(api_keys::status.ne(KeyStatus::Revoked))
        .filter(api_keys::expires_at.gt(now))
        .filter(api_keys::expires_at.le(until))
        .filter(
            api_keys::expiring_notified_for
                .is_null()
                .or(api_keys::expiring_notified_for.ne(api_keys::expires_at)),
        )
        .order(api_keys::expires_at.asc())
        .limit(limit)
        .select(ApiKey::as_select())
        .load(conn)
}

/// Claims the `api_key.expiring` notice of this key's expiry; whether this call did.
pub fn claim_expiring(
    conn: &mut DbConnection,
    id: i64,
    expires_at: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        api_keys::table.filter(api_keys::id.eq(id)).filter(
            api_keys::expiring_notified_for
                .is_null()
                .or(api_keys::expiring_notified_for.ne(expires_at)),
        ),
    )
    .set(api_keys::expiring_notified_for.eq(expires_at))
    .execute(conn)
    .map(|n| n == 1)
}

/// Keys (not revoked or deleted) that expired in `(since, now]`, not announced yet.
pub fn expired(
    conn: &mut DbConnection,
    since: NaiveDateTime,
    now: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<ApiKey>> {
    api_keys::table
        .filter(api_keys::deleted_at.is_null())
        .filter(api_keys::status.ne(KeyStatus::Revoked))
        .filter(api_keys::expires_at.gt(since))
        .filter(api_keys::expires_at.le(now))
        .filter(api_keys::expired_notified_at.is_null())
        .order(api_keys::expires_at.asc())
        .limit(limit)
        .select(ApiKey::as_select())
        .load(conn)
}

pub fn claim_expired(conn: &mut DbConnection, id: i64, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::update(
        api_keys::table
            .filter(api_keys::id.eq(id))
            .filter(api_keys::expired_notified_at.is_null()),
    )
    .set(api_keys::expired_notified_at.eq(now))
    .execute(conn)
    .map(|n| n == 1)
}

/// Rotated-out secrets whose grace ended in `(since, now]`, not announced yet: (secret id,
/// its prefix, when it stopped working, its key).
pub fn secrets_expired(
    conn: &mut DbConnection,
    since: NaiveDateTime,
    now: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<(i64, String, NaiveDateTime, ApiKey)>> {
    let rows: Vec<(i64, String, Option<NaiveDateTime>, ApiKey)> = api_key_secrets::table
        .inner_join(api_keys::table)
        .filter(api_keys::deleted_at.is_null())
        .filter(api_keys::status.ne(KeyStatus::Revoked))
        .filter(api_key_secrets::revoked_at.is_null())
        .filter(api_key_secrets::expires_at.gt(since))
        .filter(api_key_secrets::expires_at.le(now))
        .filter(api_key_secrets::expiry_notified_at.is_null())
        .order(api_key_secrets::expires_at.asc())
        .limit(limit)
        .select((
            api_key_secrets::id,
            api_key_secrets::prefix,
            api_key_secrets::expires_at,
            ApiKey::as_select(),
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, prefix, at, key)| at.map(|at| (id, prefix, at, key)))
        .collect())
}

pub fn claim_secret_expired(
    conn: &mut DbConnection,
    secret_id: i64,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        api_key_secrets::table
            .filter(api_key_secrets::id.eq(secret_id))
            .filter(api_key_secrets::expiry_notified_at.is_null()),
    )
    .set(api_key_secrets::expiry_notified_at.eq(now))
    .execute(conn)
    .map(|n| n == 1)
}
