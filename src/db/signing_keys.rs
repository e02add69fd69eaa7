//! Token-signing keys: `next` (published, not yet signing), `active` (signing), `retired`
//! (verifying until `verify_until`, private half erased).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::signing_keys;
use crate::domain::{SigningAlgorithm, SigningKeyStatus};

/// No `Debug`: it holds a hash or sealed key that must never be printed.
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKeyRow {
    pub id: i64,
    pub kid: String,
    pub algorithm: SigningAlgorithm,
    pub status: SigningKeyStatus,
    pub public_jwk: String,
    pub private_key: String,
    pub created_at: NaiveDateTime,
    pub activated_at: Option<NaiveDateTime>,
    pub retired_at: Option<NaiveDateTime>,
    pub verify_until: Option<NaiveDateTime>,
}

#[derive(Insertable)]
#[diesel(table_name = signing_keys)]
pub struct NewSigningKey<'a> {
    pub kid: &'a str,
    pub algorithm: SigningAlgorithm,
    pub status: SigningKeyStatus,
    pub public_jwk: &'a str,
    pub private_key: &'a str,
    pub created_at: NaiveDateTime,
    pub activated_at: Option<NaiveDateTime>,
}

pub fn insert(conn: &mut DbConnection, key: &NewSigningKey<'_>) -> QueryResult<()> {
    diesel::insert_into(signing_keys::table)
        .values(key)
        .execute(conn)
        .map(|_| ())
}

/// Keys that may still verify a token at `now`: next, active, and retired ones inside their
/// verification window. Oldest first.
pub fn usable(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<Vec<SigningKeyRow>> {
    signing_keys::table
        .filter(
            signing_keys::status
                .ne(SigningKeyStatus::Retired)
                .or(signing_keys::verify_until.gt(now)),
        )
        .order(signing_keys::id.asc())
        .select(SigningKeyRow::as_select())
        .load(conn)
}

/// Every key ever made, newest first (for `signing-keys list`).
pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<SigningKeyRow>> {
    signing_keys::table
        .order(signing_keys::id.desc())
        .select(SigningKeyRow::as_select())
        .load(conn)
}

pub fn with_status(
    conn: &mut DbConnection,
    status: SigningKeyStatus,
) -> QueryResult<Vec<SigningKeyRow>> {
    signing_keys::table
        .filter(signing_keys::status.eq(status))
        .order(signing_keys::id.asc())
        .select(SigningKeyRow::as_select())
        .load(conn)
}

/// Retires a key: it verifies until `verify_until`; its private half is erased when
/// `erase_private` (asymmetric keys, whose public half is what verifies).
pub fn retire(
    conn: &mut DbConnection,
    id: i64,
    now: NaiveDateTime,
    verify_until: NaiveDateTime,
    erase_private: bool,
) -> QueryResult<()> {
    diesel::update(signing_keys::table.find(id))
        .set((
            signing_keys::status.eq(SigningKeyStatus::Retired),
            signing_keys::retired_at.eq(now),
            signing_keys::verify_until.eq(verify_until),
        ))
        .execute(conn)?;
    if erase_private {
        diesel::update(signing_keys::table.find(id))
            .set(signing_keys::private_key.eq(""))
            .execute(conn)?;
    }
    Ok(())
}

/// Erases what is left of retired keys' private halves once they verify nothing.
pub fn erase_retired_private_keys(
    conn: &mut DbConnection,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        signing_keys::table
            .filter(signing_keys::status.eq(SigningKeyStatus::Retired))
            .filter(signing_keys::verify_until.le(now))
            .filter(signing_keys::private_key.ne("")),
    )
    .set(signing_keys::private_key.eq(""))
    .execute(conn)
}

pub fn activate(conn: &mut DbConnection, id: i64, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(signing_keys::table.find(id))
        .set((
            signing_keys::status.eq(SigningKeyStatus::Active),
            signing_keys::activated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

/// How many keys sign now: one, once keygate has started.
pub fn active_count(conn: &mut DbConnection) -> QueryResult<i64> {
    signing_keys::table
        .filter(signing_keys::status.eq(SigningKeyStatus::Active))
        .count()
        .get_result(conn)
}

/// Every key that still holds a sealed private half: (id, kid, sealed).
pub fn sealed(conn: &mut DbConnection) -> QueryResult<Vec<(i64, String, String)>> {
    signing_keys::table
        .filter(signing_keys::private_key.ne(""))
        .select((
            signing_keys::id,
            signing_keys::kid,
            signing_keys::private_key,
        ))
        .order(signing_keys::id.asc())
        .load(conn)
}

pub fn set_sealed(conn: &mut DbConnection, id: i64, sealed: &str) -> QueryResult<()> {
    diesel::update(signing_keys::table.find(id))
        .set(signing_keys::private_key.eq(sealed))
        .execute(conn)
        .map(|_| ())
}
