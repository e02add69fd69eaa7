//! Organizations: the tenants every other row belongs to.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::DbConnection;
use super::schema::organizations;

/// The organization that migrations create, used until a deployment makes others.
pub const DEFAULT_ORGANIZATION: &str = "default";

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = organizations)]
pub struct Organization {
    pub id: i64,
    pub name: String,
    pub created_at: NaiveDateTime,
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

pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<Organization>> {
    organizations::table
        .order(organizations::id.asc())
        .select(Organization::as_select())
        .load(conn)
}

/// The deployment's own organization: the first one, made by the migrations.
pub fn is_deployment_organization(organization: &Organization) -> bool {
    organization.name == DEFAULT_ORGANIZATION
}
