//! Refresh tokens of the keys that opt in. Only the SHA-256 of a token is stored; the tokens
//! descended from one grant share a `family`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{api_keys, refresh_tokens};

/// No `Debug`: it holds a token's hash.
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
pub struct StoredRefreshToken {
    pub id: i64,
    pub api_key_id: i64,
    pub family: String,
    pub token_hash: String,
    /// The scopes of the family's grant: every refresh may ask for these or fewer.
    pub scopes: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    /// When it was traded for a new pair; a second use is a reuse.
    pub used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    /// The access token handed out with it, refused too if the family is ended.
    pub access_jti: String,
    pub access_expires_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct NewRefreshToken<'a> {
    pub api_key_id: i64,
    pub family: &'a str,
    pub token_hash: &'a str,
    pub scopes: &'a str,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub access_jti: &'a str,
    pub access_expires_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConnection, token: &NewRefreshToken<'_>) -> QueryResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values(token)
        .execute(conn)
        .map(drop)
}

/// The token with this hash and the client_id of its key, whatever its state.
pub fn find(
    conn: &mut DbConnection,
    token_hash: &str,
) -> QueryResult<Option<(StoredRefreshToken, String)>> {
    refresh_tokens::table
        .inner_join(api_keys::table)
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .select((StoredRefreshToken::as_select(), api_keys::client_id))
        .first(conn)
        .optional()
}

/// Marks a token spent, if it was still unused and unrevoked; whether this call did.
pub fn spend(conn: &mut DbConnection, id: i64, now: NaiveDateTime) -> QueryResult<bool> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::id.eq(id))
            .filter(refresh_tokens::used_at.is_null())
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::used_at.eq(now))
    .execute(conn)
    .map(|n| n == 1)
}

/// Ends a family: revokes its members and returns the access tokens issued with them that
/// have not expired yet (`jti`, expiry).
pub fn end_family(
    conn: &mut DbConnection,
    family: &str,
    now: NaiveDateTime,
) -> QueryResult<Vec<(String, NaiveDateTime)>> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family.eq(family))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)?;
    refresh_tokens::table
        .filter(refresh_tokens::family.eq(family))
        .filter(refresh_tokens::access_expires_at.gt(now))
        .select((
            refresh_tokens::access_jti,
            refresh_tokens::access_expires_at,
        ))
        .load(conn)
}

/// Revokes every live refresh token of a key; how many there were.
pub fn end_for_key(
    conn: &mut DbConnection,
    api_key_id: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::api_key_id.eq(api_key_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)
}

/// Deletes tokens past their expiry: they can no longer be used, nor reused.
pub fn prune(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(refresh_tokens::table.filter(refresh_tokens::expires_at.lt(now))).execute(conn)
}
