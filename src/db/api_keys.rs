//! API keys and their hashed secrets.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{api_key_secrets, api_keys};
use crate::domain::{Environment, KeyStatus};

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    pub id: i64,
    pub organization_id: i64,
    pub client_id: String,
    pub name: String,
    pub environment: Environment,
    pub scopes: String,
    pub status: KeyStatus,
    pub expires_at: Option<NaiveDateTime>,
    pub metadata: String,
    pub created_by: Option<i64>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub deleted_at: Option<NaiveDateTime>,
    /// The newest secret's public prefix.
    pub key_prefix: String,
    /// Only ever traded for tokens: never accepted as a bearer credential itself.
    pub token_only: bool,
    /// Gets a refresh token beside each access token.
    pub refresh_tokens: bool,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = api_keys)]
pub struct NewApiKey<'a> {
    pub organization_id: i64,
    pub client_id: &'a str,
    pub name: &'a str,
    pub environment: Environment,
    pub scopes: &'a str,
    pub status: KeyStatus,
    pub expires_at: Option<NaiveDateTime>,
    pub metadata: &'a str,
    pub created_by: Option<i64>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub key_prefix: &'a str,
    pub token_only: bool,
    pub refresh_tokens: bool,
}

#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = api_keys)]
pub struct ApiKeyChanges<'a> {
    pub name: Option<&'a str>,
    pub status: Option<KeyStatus>,
    pub metadata: Option<&'a str>,
    pub updated_at: Option<NaiveDateTime>,
    pub key_prefix: Option<&'a str>,
    pub refresh_tokens: Option<bool>,
}

/// No `Debug`: it holds a hash or sealed key that must never be printed.
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = api_key_secrets)]
pub struct ApiKeySecret {
    pub id: i64,
    pub api_key_id: i64,
    pub prefix: String,
    pub secret_hash: String,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

#[derive(Insertable)]
#[diesel(table_name = api_key_secrets)]
pub struct NewApiKeySecret<'a> {
    pub api_key_id: i64,
    pub prefix: &'a str,
    pub secret_hash: &'a str,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
}

/// Inserts a key and returns it as stored.
pub fn insert(conn: &mut DbConnection, key: &NewApiKey<'_>) -> QueryResult<ApiKey> {
    diesel::insert_into(api_keys::table)
        .values(key)
        .execute(conn)?;
    find_by_client_id(conn, key.client_id)?.ok_or(diesel::result::Error::NotFound)
}

pub fn insert_secret(conn: &mut DbConnection, secret: &NewApiKeySecret<'_>) -> QueryResult<()> {
    diesel::insert_into(api_key_secrets::table)
        .values(secret)
        .execute(conn)
        .map(|_| ())
}

pub fn find_by_client_id(conn: &mut DbConnection, client_id: &str) -> QueryResult<Option<ApiKey>> {
    api_keys::table
        .filter(api_keys::client_id.eq(client_id))
        .select(ApiKey::as_select())
        .first(conn)
        .optional()
}

/// What the token endpoint needs to judge a secret: the key, its organization, its creator,
/// and its unrevoked secrets whose public prefix is `prefix` (usually one; two only if a
/// rotation drew the same 8-character prefix).
pub struct Credentials {
    pub key: ApiKey,
    pub organization: super::organizations::Organization,
    pub owner: Option<super::users::User>,
    pub secrets: Vec<ApiKeySecret>,
}

pub fn find_credentials(
    conn: &mut DbConnection,
    client_id: &str,
    prefix: &str,
) -> QueryResult<Option<Credentials>> {
    let found = find_with_owner(conn, client_id)?;
    // The secrets query runs for an unknown client_id too (matching nothing), so a known
    // one costs no extra round trip that timing could reveal.
    let key_id = found.as_ref().map_or(-1, |(key, _, _)| key.id);
    let secrets = api_key_secrets::table
        .filter(api_key_secrets::api_key_id.eq(key_id))
        .filter(api_key_secrets::prefix.eq(prefix))
        .filter(api_key_secrets::revoked_at.is_null())
        .select(ApiKeySecret::as_select())
        .load(conn)?;
    Ok(found.map(|(key, organization, owner)| Credentials {
        key,
        organization,
        owner,
        secrets,
    }))
}

/// The client_ids of the keys holding an unrevoked secret with this prefix (an API key
/// presented alone names no client_id); at most a few, as prefixes are 48 random bits.
pub fn client_ids_with_secret_prefix(
    conn: &mut DbConnection,
    prefix: &str,
) -> QueryResult<Vec<String>> {
    api_key_secrets::table
        .inner_join(api_keys::table)
        .filter(api_key_secrets::prefix.eq(prefix))
        .filter(api_key_secrets::revoked_at.is_null())
        .select(api_keys::client_id)
        .distinct()
        .limit(4)
        .load(conn)
}

/// An organization's keys that are not revoked.
pub fn unrevoked_in(conn: &mut DbConnection, organization_id: i64) -> QueryResult<Vec<ApiKey>> {
    api_keys::table
        .filter(api_keys::organization_id.eq(organization_id))
        .filter(api_keys::status.ne(KeyStatus::Revoked))
        .select(ApiKey::as_select())
        .load(conn)
}

/// Every key of an organization that has not been deleted, newest first.
pub fn list(conn: &mut DbConnection, organization_id: i64) -> QueryResult<Vec<ApiKey>> {
    api_keys::table
        .filter(api_keys::organization_id.eq(organization_id))
        .filter(api_keys::deleted_at.is_null())
        .order((api_keys::created_at.desc(), api_keys::id.desc()))
        .select(ApiKey::as_select())
        .load(conn)
}

/// Marks a key revoked (final) and revokes its secrets; returns false when it already was.
pub fn revoke(conn: &mut DbConnection, key_id: i64, now: NaiveDateTime) -> QueryResult<bool> {
    let changed = diesel::update(
        api_keys::table
            .find(key_id)
            .filter(api_keys::status.ne(KeyStatus::Revoked)),
    )
    .set((
        api_keys::status.eq(KeyStatus::Revoked),
        api_keys::revoked_at.eq(now),
        api_keys::updated_at.eq(now),
    ))
    .execute(conn)?;
    diesel::update(
        api_key_secrets::table
            .filter(api_key_secrets::api_key_id.eq(key_id))
            .filter(api_key_secrets::revoked_at.is_null()),
    )
    .set(api_key_secrets::revoked_at.eq(now))
    .execute(conn)?;
    Ok(changed == 1)
}

/// Every undeleted key a user created, locked until the transaction ends (on PostgreSQL; a
/// SQLite write transaction holds the only write lock already): a token request judging one
/// of them ([`lock_shared`]) finishes first or waits for the change.
pub fn created_by(conn: &mut DbConnection, user_id: i64) -> QueryResult<Vec<ApiKey>> {
    if matches!(conn, DbConnection::Postgres(_)) {
        diesel::sql_query("SELECT id FROM api_keys WHERE created_by = $1 FOR UPDATE")
            .bind::<diesel::sql_types::BigInt, _>(user_id)
            .execute(conn)?;
    }
    api_keys::table
        .filter(api_keys::created_by.eq(user_id))
        .filter(api_keys::deleted_at.is_null())
        .select(ApiKey::as_select())
        .load(conn)
}

/// Locks a key against changes until the transaction ends, so that what is read of it stays
/// true until then: a change waits, and reads its time after. On SQLite a write transaction
/// does the same for the whole database.
pub fn lock_shared(conn: &mut DbConnection, client_id: &str) -> QueryResult<()> {
    if matches!(conn, DbConnection::Postgres(_)) {
        diesel::sql_query("SELECT id FROM api_keys WHERE client_id = $1 FOR SHARE")
            .bind::<diesel::sql_types::Text, _>(client_id)
            .execute(conn)?;
    }
    Ok(())
}

/// A key with its organization and its creator (when it has one), in one query.
pub fn find_with_owner(
    conn: &mut DbConnection,
    client_id: &str,
) -> QueryResult<Option<KeyWithOwner>> {
    use super::schema::{organizations, users};
    api_keys::table
        .inner_join(organizations::table)
        .left_join(users::table)
        .filter(api_keys::client_id.eq(client_id))
        .select((
            ApiKey::as_select(),
            super::organizations::Organization::as_select(),
            Option::<super::users::User>::as_select(),
        ))
        .first(conn)
        .optional()
}

pub type KeyWithOwner = (
    ApiKey,
    super::organizations::Organization,
    Option<super::users::User>,
);

/// Changes a key unless it is revoked (revocation is final, also against a change that raced
/// it); returns whether the key was changed.
pub fn update(
    conn: &mut DbConnection,
    key_id: i64,
    changes: &ApiKeyChanges<'_>,
) -> QueryResult<bool> {
    diesel::update(
        api_keys::table
            .find(key_id)
            .filter(api_keys::status.ne(KeyStatus::Revoked)),
    )
    .set(changes)
    .execute(conn)
    .map(|changed| changed == 1)
}

/// Hides a key from lists (it is revoked already); the row and its audit trail stay.
pub fn hide(conn: &mut DbConnection, key_id: i64, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(api_keys::table.find(key_id))
        .set((api_keys::deleted_at.eq(now), api_keys::updated_at.eq(now)))
        .execute(conn)
        .map(|_| ())
}

/// The key's secrets that still work or are in their grace period, newest first (never
/// their hashes' text outside keygate).
pub fn live_secrets(
    conn: &mut DbConnection,
    key_id: i64,
    now: NaiveDateTime,
) -> QueryResult<Vec<ApiKeySecret>> {
    api_key_secrets::table
        .filter(api_key_secrets::api_key_id.eq(key_id))
        .filter(api_key_secrets::revoked_at.is_null())
        .filter(
            api_key_secrets::expires_at
                .is_null()
                .or(api_key_secrets::expires_at.gt(now)),
        )
        .order(api_key_secrets::id.desc())
        .select(ApiKeySecret::as_select())
        .load(conn)
}

/// Ends the key's current secrets: at once (`until` = None) or when a grace period ends.
pub fn retire_secrets(
    conn: &mut DbConnection,
    key_id: i64,
    now: NaiveDateTime,
    until: Option<NaiveDateTime>,
) -> QueryResult<()> {
    let current = api_key_secrets::table
        .filter(api_key_secrets::api_key_id.eq(key_id))
        .filter(api_key_secrets::revoked_at.is_null());
    match until {
        None => diesel::update(current)
            .set(api_key_secrets::revoked_at.eq(now))
            .execute(conn)?,
        Some(until) => diesel::update(
            current.filter(
                api_key_secrets::expires_at
                    .is_null()
                    .or(api_key_secrets::expires_at.gt(until)),
            ),
        )
        .set(api_key_secrets::expires_at.eq(until))
        .execute(conn)?,
    };
    Ok(())
}
