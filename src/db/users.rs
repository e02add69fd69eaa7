//! Users: the operators who log in to the console and own API keys.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::users;
use crate::domain::UserStatus;

/// No `Debug`: it holds a hash or sealed key that must never be printed.
#[derive(Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub organization_id: i64,
    pub email: String,
    pub password_hash: String,
    pub is_admin: bool,
    pub permissions: String,
    pub status: UserStatus,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub public_id: Option<String>,
    pub last_login_at: Option<NaiveDateTime>,
}

#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub organization_id: i64,
    pub public_id: &'a str,
    pub email: &'a str,
    pub password_hash: &'a str,
    pub is_admin: bool,
    pub permissions: &'a str,
    pub status: UserStatus,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// No `Debug`: it may hold a password hash.
#[derive(Default, AsChangeset)]
#[diesel(table_name = users)]
pub struct UserChanges<'a> {
    pub permissions: Option<&'a str>,
    pub is_admin: Option<bool>,
    pub status: Option<UserStatus>,
    pub updated_at: Option<NaiveDateTime>,
    pub password_hash: Option<&'a str>,
}

pub fn insert(conn: &mut DbConnection, user: &NewUser<'_>) -> QueryResult<User> {
    diesel::insert_into(users::table)
        .values(user)
        .execute(conn)?;
    find_by_public_id(conn, user.public_id)?.ok_or(diesel::result::Error::NotFound)
}

pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<Option<User>> {
    users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()
}

pub fn find_by_public_id(conn: &mut DbConnection, public_id: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(users::public_id.eq(public_id))
        .select(User::as_select())
        .first(conn)
        .optional()
}

pub fn find_by_email(conn: &mut DbConnection, email: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(users::email.eq(email))
        .select(User::as_select())
        .first(conn)
        .optional()
}

/// The organization's users, oldest first.
pub fn list(conn: &mut DbConnection, organization_id: i64) -> QueryResult<Vec<User>> {
    users::table
        .filter(users::organization_id.eq(organization_id))
        .order(users::id.asc())
        .select(User::as_select())
        .load(conn)
}

/// The organization's first enabled administrator (the default owner of CLI-made keys).
pub fn first_admin(conn: &mut DbConnection, organization_id: i64) -> QueryResult<Option<User>> {
    users::table
        .filter(users::organization_id.eq(organization_id))
        .filter(users::is_admin.eq(true))
        .filter(users::status.eq(UserStatus::Enabled))
        .order(users::id.asc())
        .select(User::as_select())
        .first(conn)
        .optional()
}

pub fn update(conn: &mut DbConnection, id: i64, changes: &UserChanges<'_>) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(changes)
        .execute(conn)
        .map(|_| ())
}

pub fn record_login(conn: &mut DbConnection, id: i64, now: NaiveDateTime) -> QueryResult<()> {
    diesel::update(users::table.find(id))
        .set(users::last_login_at.eq(now))
        .execute(conn)
        .map(|_| ())
}

/// (id, email) of these users.
pub fn emails(conn: &mut DbConnection, ids: &[i64]) -> QueryResult<Vec<(i64, String)>> {
    users::table
        .filter(users::id.eq_any(ids))
        .select((users::id, users::email))
        .load(conn)
}
