//! Organizations: the tenants every other row belongs to.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{organizations, sessions, users};
use crate::domain::OrganizationStatus;

/// The organization that migrations create, used until a deployment makes others.
pub const DEFAULT_ORGANIZATION: &str = "default";

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = organizations)]
pub struct Organization {
    pub id: i64,
    pub name: String,
    pub created_at: NaiveDateTime,
    pub display_name: Option<String>,
    pub status: OrganizationStatus,
    pub deleted_at: Option<NaiveDateTime>,
}

impl Organization {
    /// Its keys may get tokens and its users may log in.
    pub fn is_enabled(&self) -> bool {
        self.status == OrganizationStatus::Enabled && self.deleted_at.is_none()
    }
}

#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = organizations)]
pub struct OrganizationChanges {
    pub display_name: Option<Option<String>>,
    pub status: Option<OrganizationStatus>,
    pub deleted_at: Option<NaiveDateTime>,
}

pub fn update(conn: &mut DbConnection, id: i64, changes: &OrganizationChanges) -> QueryResult<()> {
    diesel::update(organizations::table.find(id))
        .set(changes)
        .execute(conn)
        .map(drop)
}

/// Ends every session of the organization's users.
pub fn end_sessions(conn: &mut DbConnection, id: i64) -> QueryResult<usize> {
    let members = users::table
        .filter(users::organization_id.eq(id))
        .select(users::id);
    diesel::delete(sessions::table.filter(sessions::user_id.eq_any(members))).execute(conn)
}

pub fn find_by_name(conn: &mut DbConnection, name: &str) -> QueryResult<Option<Organization>> {
    organizations::table
        .filter(organizations::name.eq(name))
        .select(Organization::as_select())
        .first(conn)
        .optional()
}

pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<Organization> {
    organizations::table
        .find(id)
        .select(Organization::as_select())
        .first(conn)
}

#[derive(Debug, Insertable)]
#[diesel(table_name = organizations)]
pub struct NewOrganization<'a> {
    pub name: &'a str,
    pub created_at: NaiveDateTime,
}

pub fn insert(
    conn: &mut DbConnection,
    organization: &NewOrganization<'_>,
) -> QueryResult<Organization> {
    diesel::insert_into(organizations::table)
        .values(organization)
        .execute(conn)?;
    find_by_name(conn, organization.name)?.ok_or(diesel::result::Error::NotFound)
}

/// Every organization not deleted, oldest first.
pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<Organization>> {
    organizations::table
        .filter(organizations::deleted_at.is_null())
        .order(organizations::id.asc())
        .select(Organization::as_select())
        .load(conn)
}

/// The deployment's own organization: the first one, made by the migrations.
pub fn is_deployment_organization(organization: &Organization) -> bool {
    organization.name == DEFAULT_ORGANIZATION
}
