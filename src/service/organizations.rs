//! Organizations: tenants. Their names are their public identifiers, so they never change.
//! Only users of the deployment's own organization manage them.

use chrono::Utc;

use super::audit::{self, Event};
use super::{Caller, Error, Service, policy};
use crate::db::organizations::{self, NewOrganization, Organization};
use crate::db::write_transaction;
use crate::domain::{AuditAction, ManagementPermission, ValidationError};

/// Every organization, oldest first.
pub async fn list(service: &Service, caller: &Caller) -> Result<Vec<Organization>, Error> {
    policy::require(caller, ManagementPermission::OrganizationsManage)?;
    service.db(|conn| Ok(organizations::list(conn)?)).await
}

/// One organization by name.
pub async fn get(service: &Service, caller: &Caller, name: &str) -> Result<Organization, Error> {
    policy::require(caller, ManagementPermission::OrganizationsManage)?;
    find(service, name).await
}

/// The organization by name, for a front end resolving what its user typed.
pub async fn find(service: &Service, name: &str) -> Result<Organization, Error> {
    let name = parse_name(name).map_err(|_| Error::NotFound)?;
    service
        .db(move |conn| Ok(organizations::find_by_name(conn, &name)?))
        .await?
        .ok_or(Error::NotFound)
}

/// Creates an organization; its name must be new.
pub async fn create(service: &Service, caller: &Caller, name: &str) -> Result<Organization, Error> {
    policy::require(caller, ManagementPermission::OrganizationsManage)?;
    let name = parse_name(name)?;
    let (actor, home) = (caller.actor.clone(), caller.organization_id);
    service
        .db(move |conn| {
            write_transaction(conn, |conn| -> Result<_, Error> {
                if organizations::find_by_name(conn, &name)?.is_some() {
                    return Err(Error::Conflict(format!(
                        "organization {name} already exists"
                    )));
                }
                let now = Utc::now();
                let organization = organizations::insert(
                    conn,
                    &NewOrganization {
                        name: &name,
                        created_at: now.naive_utc(),
                    },
                )?;
                let mut event =
                    Event::success(organization.id, AuditAction::OrganizationCreated, &name);
                // Recorded in the creator's organization, where its auditors look.
                event.organization_id = home.or(Some(organization.id));
                audit::record(conn, &actor, event, now)?;
                Ok(organization)
            })
        })
        .await
}

/// 3 to 40 characters of `a-z`, `0-9` and `-`, starting with a letter (which also makes a
/// readable `org` claim).
pub fn parse_name(s: &str) -> Result<String, ValidationError> {
    let ok = (3..=40).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(s.to_owned())
    } else {
        Err(ValidationError::new(
            "name",
            "3 to 40 characters of a-z, 0-9 and -, starting with a letter",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_pattern() {
        assert!(parse_name("acme-corp").is_ok());
        for bad in [
            "ab",
            "Acme",
            "1acme",
            "acme corp",
            "acme_corp",
            &"a".repeat(41),
        ] {
            assert!(parse_name(bad).is_err(), "{bad}");
        }
    }
}
