//! Organizations: tenants. Their names are their public identifiers, so they never change
//! (a display name can). Who may manage them, and that the deployment's own organization can
//! be neither disabled nor deleted, is [`policy`]'s to say.

use chrono::Utc;

use super::api_keys::{Cut, cut_tokens, revoke_in};
use super::audit::{self, Event};
use super::policy::OrganizationAction;
use super::webhooks::Outbox;
use super::{Caller, Error, Service, policy};
use crate::db::organizations::{self, NewOrganization, Organization, OrganizationChanges};
use crate::db::{DbConnection, api_keys, write_transaction};
use crate::domain::{AuditAction, ManagementPermission, OrganizationStatus, ValidationError};
use crate::tokens::Change;

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

/// The organization by name, for a front end resolving what its user typed; a deleted one is
/// not found.
pub async fn find(service: &Service, name: &str) -> Result<Organization, Error> {
    let name = parse_name(name).map_err(|_| Error::NotFound)?;
    service
        .db(move |conn| Ok(organizations::find_by_name(conn, &name)?))
        .await?
        .filter(|o| o.deleted_at.is_none())
        .ok_or(Error::NotFound)
}

/// What may change about an organization.
#[derive(Default)]
pub struct OrganizationUpdate {
    /// `Some(None)` clears it.
    pub display_name: Option<Option<String>>,
    pub status: Option<OrganizationStatus>,
}

/// A display name: 1 to 100 characters once trimmed, no control characters.
pub fn parse_display_name(text: &str) -> Result<String, ValidationError> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.chars().count() > 100 || trimmed.chars().any(char::is_control)
    {
        return Err(ValidationError::new(
            "display_name",
            "1 to 100 characters, no control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// Changes an organization's display name or status. Disabling it refuses its keys' tokens
/// (those issued before, at once; new ones until enabled again) and ends its users' sessions.
pub async fn update(
    service: &Service,
    caller: &Caller,
    name: &str,
    update: OrganizationUpdate,
) -> Result<Organization, Error> {
    policy::require(caller, ManagementPermission::OrganizationsManage)?;
    let organization = find(service, name).await?;
    if update.status == Some(OrganizationStatus::Disabled) {
        policy::check_organization_action(&organization, OrganizationAction::Disable)?;
    }
    let (actor, home) = (caller.actor.clone(), caller.organization_id);
    let (updated, changes) = service
        .db(move |conn| {
            write_transaction(conn, |conn| -> Result<_, Error> {
                let now = Utc::now();
                let disabling = update.status == Some(OrganizationStatus::Disabled)
                    && organization.status == OrganizationStatus::Enabled;
                let changes = OrganizationChanges {
                    display_name: update.display_name.clone(),
                    status: update.status,
                    deleted_at: None,
                };
                organizations::update(conn, organization.id, &changes)?;
                let cuts = if disabling {
                    shut_out(conn, organization.id, None)?
                } else {
                    Vec::new()
                };
                let mut event = Event::success(
                    organization.id,
                    AuditAction::OrganizationUpdated,
                    &organization.name,
                )
                .with(serde_json::json!({
                    "display_name": update.display_name,
                    "status": update.status,
                }));
                event.organization_id = home.or(Some(organization.id));
                audit::record(conn, &actor, event, now)?;
                Ok((organizations::find(conn, organization.id)?, cuts))
            })
        })
        .await?;
    service.apply(&changes);
    Ok(updated)
}

/// Deletes an organization: every key revoked, every session ended, the organization disabled
/// and hidden; its rows and audit trail stay, and its name stays taken.
pub async fn delete(service: &Service, caller: &Caller, name: &str) -> Result<(), Error> {
    policy::require(caller, ManagementPermission::OrganizationsManage)?;
    let organization = find(service, name).await?;
    policy::check_organization_action(&organization, OrganizationAction::Delete)?;
    let (actor, home) = (caller.actor.clone(), caller.organization_id);
    let outbox = service.outbox.clone();
    let changes = service
        .db(move |conn| {
            write_transaction(conn, |conn| -> Result<_, Error> {
                let now = Utc::now();
                let cuts = shut_out(conn, organization.id, Some((&actor, &outbox)))?;
                organizations::update(
                    conn,
                    organization.id,
                    &OrganizationChanges {
                        display_name: None,
                        status: Some(OrganizationStatus::Disabled),
                        deleted_at: Some(now.naive_utc()),
                    },
                )?;
                let mut event = Event::success(
                    organization.id,
                    AuditAction::OrganizationDeleted,
                    &organization.name,
                );
                event.organization_id = home.or(Some(organization.id));
                audit::record(conn, &actor, event, now)?;
                Ok(cuts)
            })
        })
        .await?;
    service.apply(&changes);
    Ok(())
}

/// Ends the organization's sessions and cuts its keys' tokens: revoking the keys (for a
/// delete, recorded as that actor's), or refusing the tokens issued until now (for a disable,
/// after which the keys get tokens again once the organization is enabled).
fn shut_out(
    conn: &mut DbConnection,
    organization_id: i64,
    revoking_as: Option<(&super::Actor, &Outbox)>,
) -> Result<Vec<Change>, Error> {
    organizations::end_sessions(conn, organization_id)?;
    let mut cuts = Vec::new();
    for key in api_keys::unrevoked_in(conn, organization_id)? {
        let change = match revoking_as {
            Some((actor, outbox)) => revoke_in(conn, &key, actor, outbox)?,
            None => cut_tokens(conn, &key, Cut::IssuedUntilNow)?,
        };
        cuts.push(change);
    }
    Ok(cuts)
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
