//! API keys and their hashed secrets.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{api_key_secrets, api_keys, organizations};

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    pub id: i64,
    pub organization_id: i64,
    pub client_id: String,
    pub name: String,
    pub environment: String,
    pub scopes: String,
    pub status: String,
    pub expires_at: Option<NaiveDateTime>,
    pub metadata: String,
    pub created_by: Option<i64>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
    pub deleted_at: Option<NaiveDateTime>,
}

#[derive(Debug, Insertable)]
#[diesel(table_name = api_keys)]
pub struct NewApiKey<'a> {
    pub organization_id: i64,
    pub client_id: &'a str,
    pub name: &'a str,
    pub environment: &'a str,
    pub scopes: &'a str,
    pub status: &'a str,
    pub expires_at: Option<NaiveDateTime>,
    pub metadata: &'a str,
    pub created_by: Option<i64>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable)]
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

#[derive(Debug, Insertable)]
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

/// The key, its organization's name, and its unrevoked secrets whose public prefix is
/// `prefix` (usually one; two only if a rotation drew the same 8-character prefix).
pub fn find_credentials(
    conn: &mut DbConnection,
    client_id: &str,
    prefix: &str,
) -> QueryResult<Option<(ApiKey, String, Vec<ApiKeySecret>)>> {
    let Some((key, organization)) = api_keys::table
        .inner_join(organizations::table)
        .filter(api_keys::client_id.eq(client_id))
        .select((ApiKey::as_select(), organizations::name))
        .first::<(ApiKey, String)>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let secrets = api_key_secrets::table
        .filter(api_key_secrets::api_key_id.eq(key.id))
        .filter(api_key_secrets::prefix.eq(prefix))
        .filter(api_key_secrets::revoked_at.is_null())
        .select(ApiKeySecret::as_select())
        .load(conn)?;
    Ok(Some((key, organization, secrets)))
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
            .filter(api_keys::status.ne("revoked")),
    )
    .set((
        api_keys::status.eq("revoked"),
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
