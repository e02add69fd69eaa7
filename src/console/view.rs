//! What the console's tables and forms show, prepared for the templates: times in words,
//! statuses with their styles, the permission grid.

use chrono::{DateTime, Utc};

use crate::db::audit::AuditEvent;
use crate::domain::{Metadata, ScopeCatalog, ScopeSet, ValidationError};
use crate::service::api_keys::{KeyRecord, SecretRecord};

/// A time as the console shows it.
pub fn when(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// One row of the key list (and the facts of a key's page).
pub struct KeyRow {
    pub client_id: String,
    pub name: String,
    pub prefix: String,
    pub environment: &'static str,
    pub scopes: Vec<String>,
    pub created: String,
    pub created_by: String,
    pub last_used: String,
    pub expires: String,
    /// "expires in 3 days" inside a week of the expiry, "expired" after it.
    pub expiry_warning: Option<String>,
    pub status: &'static str,
    pub revoked: bool,
    pub enabled: bool,
    pub token_only: bool,
    pub refresh_tokens: bool,
}

impl KeyRow {
    pub fn of(record: &KeyRecord, now: DateTime<Utc>) -> KeyRow {
        let key = &record.key;
        let expires_at = key.expires_at.map(|t| t.and_utc());
        KeyRow {
            client_id: key.client_id.clone(),
            name: key.name.clone(),
            prefix: key.key_prefix.clone(),
            environment: key.environment.as_str(),
            scopes: ScopeSet::from_stored(&key.scopes)
                .iter()
                .map(|s| s.as_str().to_owned())
                .collect(),
            created: when(key.created_at.and_utc()),
            created_by: record.created_by.clone().unwrap_or_else(|| "nobody".into()),
            last_used: key
                .last_used_at
                .map(|t| when(t.and_utc()))
                .unwrap_or_else(|| "never".into()),
            expires: expires_at.map(when).unwrap_or_else(|| "never".into()),
            expiry_warning: expires_at.and_then(|t| expiry_warning(t, now)),
            status: key.status.as_str(),
            revoked: key.status == crate::domain::KeyStatus::Revoked,
            enabled: key.status == crate::domain::KeyStatus::Enabled,
            token_only: key.token_only,
            refresh_tokens: key.refresh_tokens,
        }
    }
}

/// A warning for an expiry within seven days, or past.
pub fn expiry_warning(expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Option<String> {
    let left = expires_at - now;
    if left <= chrono::Duration::zero() {
        return Some("expired".into());
    }
    if left > chrono::Duration::days(7) {
        return None;
    }
    Some(match left.num_days() {
        0 => match left.num_hours() {
            0 => "expires within the hour".into(),
            1 => "expires in 1 hour".into(),
            hours => format!("expires in {hours} hours"),
        },
        1 => "expires in 1 day".into(),
        days => format!("expires in {days} days"),
    })
}

/// A secret of a key's page.
pub struct SecretRow {
    pub prefix: String,
    pub created: String,
    pub state: String,
}

impl SecretRow {
    pub fn of(secret: &SecretRecord, now: DateTime<Utc>) -> SecretRow {
        SecretRow {
            prefix: secret.prefix.clone(),
            created: when(secret.created_at),
            state: match secret.expires_at {
                None => "current".into(),
                Some(t) => format!(
                    "works until {}{}",
                    when(t),
                    expiry_warning(t, now)
                        .map(|w| format!(" ({w})"))
                        .unwrap_or_default()
                ),
            },
        }
    }
}

/// An event of the audit trail.
pub struct EventRow {
    pub occurred: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub client_ip: String,
}

impl EventRow {
    pub fn of(event: AuditEvent) -> EventRow {
        EventRow {
            occurred: when(event.occurred_at.and_utc()),
            actor: event.actor,
            action: event.action,
            target: event.target.unwrap_or_default(),
            outcome: event.outcome,
            client_ip: event.client_ip.unwrap_or_default(),
        }
    }
}

/// The grid's group of keygate's own permissions.
pub const MANAGEMENT_GROUP: &str = "managing keygate";

/// One permission of the grid.
pub struct GridItem {
    pub value: String,
    pub checked: bool,
    /// The operator holds it, so may grant it; others are shown, but disabled.
    pub grantable: bool,
    /// An API scope (the shortcuts tick these), not a management permission.
    pub api: bool,
}

pub struct GridGroup {
    pub title: String,
    pub items: Vec<GridItem>,
}

/// The permission grid of the create and user forms: every permission of the catalog, by
/// resource.
pub struct Grid {
    pub groups: Vec<GridGroup>,
    pub any_unavailable: bool,
}

impl Grid {
    /// For a new key: every scope a key may be granted.
    pub fn for_keys(catalog: &ScopeCatalog, holder: &ScopeSet, ticked: &ScopeSet) -> Grid {
        Grid::new(
            &catalog.administrator(false),
            catalog.scopes(),
            holder,
            ticked,
        )
    }

    /// For a user: every permission a user of this organization may hold.
    pub fn for_users(
        catalog: &ScopeCatalog,
        deployment: bool,
        holder: &ScopeSet,
        ticked: &ScopeSet,
    ) -> Grid {
        Grid::new(
            &catalog.administrator(deployment),
            catalog.scopes(),
            holder,
            ticked,
        )
    }

    fn new(entries: &ScopeSet, api: &ScopeSet, holder: &ScopeSet, ticked: &ScopeSet) -> Grid {
        let mut groups: Vec<GridGroup> = Vec::new();
        for scope in entries.iter() {
            let value = scope.as_str();
            let item = GridItem {
                value: value.to_owned(),
                checked: ticked.contains(value),
                grantable: holder.contains(value),
                api: api.contains(value),
            };
            // API scopes by resource; keygate's own permissions together, even when a
            // resource of the API shares a name with one of keygate's.
            let title = if item.api {
                let resource = value.split_once(':').map_or(value, |(r, _)| r);
                resource.replace(['_', '-'], " ")
            } else {
                MANAGEMENT_GROUP.to_owned()
            };
            match groups.iter_mut().find(|g| g.title == title) {
                Some(group) => group.items.push(item),
                None => groups.push(GridGroup {
                    title,
                    items: vec![item],
                }),
            }
        }
        // API scopes first, then keygate's own permissions.
        groups.sort_by_key(|g| !g.items.iter().any(|i| i.api));
        let any_unavailable = groups.iter().flat_map(|g| &g.items).any(|i| !i.grantable);
        Grid {
            groups,
            any_unavailable,
        }
    }
}

/// Metadata typed as `name=value` lines.
pub fn parse_metadata(text: &str) -> Result<Metadata, ValidationError> {
    let mut object = serde_json::Map::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once('=')
            .ok_or_else(|| ValidationError::new("metadata", "write one name=value per line"))?;
        object.insert(
            name.trim().to_owned(),
            serde_json::Value::String(value.trim().to_owned()),
        );
    }
    Metadata::parse(&serde_json::Value::Object(object))
}

/// What a page says after an action that sent the operator to it, named in its `done` query
/// parameter. A closed set: a code keygate did not send shows nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    KeyDisabled,
    KeyEnabled,
    KeyRevoked,
    KeyDeleted,
    UserUpdated,
    UserDisabled,
    UserEnabled,
    SigningKeyRotated,
    OrganizationCreated,
    OrganizationDisabled,
    OrganizationEnabled,
    OrganizationDeleted,
    EndpointDisabled,
    EndpointEnabled,
    EndpointDeleted,
    TestQueued,
    DeliveryQueued,
}

impl Notice {
    pub const ALL: &'static [Notice] = &[
        Notice::KeyDisabled,
        Notice::KeyEnabled,
        Notice::KeyRevoked,
        Notice::KeyDeleted,
        Notice::UserUpdated,
        Notice::UserDisabled,
        Notice::UserEnabled,
        Notice::SigningKeyRotated,
        Notice::OrganizationCreated,
        Notice::OrganizationDisabled,
        Notice::OrganizationEnabled,
        Notice::OrganizationDeleted,
        Notice::EndpointDisabled,
        Notice::EndpointEnabled,
        Notice::EndpointDeleted,
        Notice::TestQueued,
        Notice::DeliveryQueued,
    ];

    /// Its name in the `done` parameter.
    pub fn code(self) -> &'static str {
        match self {
            Notice::KeyDisabled => "key-disabled",
            Notice::KeyEnabled => "key-enabled",
            Notice::KeyRevoked => "key-revoked",
            Notice::KeyDeleted => "key-deleted",
            Notice::UserUpdated => "user-updated",
            Notice::UserDisabled => "user-disabled",
            Notice::UserEnabled => "user-enabled",
            Notice::SigningKeyRotated => "signing-key-rotated",
            Notice::OrganizationCreated => "organization-created",
            Notice::OrganizationDisabled => "organization-disabled",
            Notice::OrganizationEnabled => "organization-enabled",
            Notice::OrganizationDeleted => "organization-deleted",
            Notice::EndpointDisabled => "endpoint-disabled",
            Notice::EndpointEnabled => "endpoint-enabled",
            Notice::EndpointDeleted => "endpoint-deleted",
            Notice::TestQueued => "test-queued",
            Notice::DeliveryQueued => "delivery-queued",
        }
    }

    /// The notice a `done` parameter names, if keygate sends it.
    pub fn from_code(code: &str) -> Option<Notice> {
        Notice::ALL.iter().copied().find(|n| n.code() == code)
    }

    /// The sentence the page shows.
    pub fn message(self) -> &'static str {
        match self {
            Notice::KeyDisabled => "The key is disabled.",
            Notice::KeyEnabled => "The key is enabled.",
            Notice::KeyRevoked => "The key is revoked. Its tokens no longer work.",
            Notice::KeyDeleted => "The key is deleted.",
            Notice::UserUpdated => "The user is updated.",
            Notice::UserDisabled => "The user is disabled and logged out.",
            Notice::UserEnabled => "The user is enabled.",
            Notice::SigningKeyRotated => "A new signing key signs from now on.",
            Notice::OrganizationCreated => "The organization is created.",
            Notice::OrganizationDisabled => {
                "The organization is disabled: its keys get no token and its users are logged out."
            }
            Notice::OrganizationEnabled => "The organization is enabled.",
            Notice::OrganizationDeleted => "The organization is deleted and its keys are revoked.",
            Notice::EndpointDisabled => "The endpoint is disabled: new events skip it.",
            Notice::EndpointEnabled => "The endpoint is enabled: queued events go out again.",
            Notice::EndpointDeleted => "The endpoint is deleted.",
            Notice::TestQueued => "A test event is queued for the endpoint.",
            Notice::DeliveryQueued => "The delivery is queued again and goes out now.",
        }
    }

    /// `page` (a path without a query) showing this notice.
    pub fn on(self, page: &str) -> String {
        format!("{page}?done={}", self.code())
    }
}

/// The sentence a page shows for its `done` parameter.
pub fn done_message(done: &str) -> Option<&'static str> {
    Notice::from_code(done).map(Notice::message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_notice_is_found_by_its_own_code() {
        for notice in Notice::ALL {
            assert_eq!(Notice::from_code(notice.code()), Some(*notice));
        }
        assert_eq!(Notice::from_code("key-frobbed"), None);
        assert_eq!(
            Notice::KeyRevoked.on("/console/keys/kg_1"),
            "/console/keys/kg_1?done=key-revoked"
        );
    }

    #[test]
    fn expiry_warnings_start_a_week_ahead() {
        let now = Utc::now();
        let days = |d: i64| now + chrono::Duration::days(d) + chrono::Duration::minutes(1);
        assert_eq!(expiry_warning(days(8), now), None);
        assert_eq!(expiry_warning(days(3), now).unwrap(), "expires in 3 days");
        assert_eq!(expiry_warning(days(1), now).unwrap(), "expires in 1 day");
        assert_eq!(
            expiry_warning(now + chrono::Duration::hours(5), now).unwrap(),
            "expires in 5 hours"
        );
        assert_eq!(expiry_warning(days(-1), now).unwrap(), "expired");
    }

    #[test]
    fn the_grid_keeps_keygates_permissions_apart_from_api_scopes_of_the_same_name() {
        let catalog =
            ScopeCatalog::new(&["invoices:read".to_owned(), "webhooks:read".to_owned()]).unwrap();
        let holder = ScopeSet::from_items(["invoices:read", "webhooks:manage"]).unwrap();
        let grid = Grid::for_keys(&catalog, &holder, &holder);
        let titles: Vec<&str> = grid.groups.iter().map(|g| g.title.as_str()).collect();
        assert_eq!(titles, ["invoices", "webhooks", MANAGEMENT_GROUP]);
        assert!(
            grid.groups[..2]
                .iter()
                .all(|g| g.items.iter().all(|i| i.api))
        );
        let management = &grid.groups[2];
        assert!(management.items.iter().all(|i| !i.api));
        assert!(
            management
                .items
                .iter()
                .any(|i| i.value == "webhooks:manage" && i.checked)
        );
        assert!(
            grid.any_unavailable,
            "the permissions not held are shown, disabled"
        );
    }

    #[test]
    fn metadata_lines_become_a_map() {
        let m = parse_metadata("team = billing\n\nticket=OPS-1\n").unwrap();
        assert_eq!(
            m.entries(),
            [
                ("team".to_owned(), "billing".to_owned()),
                ("ticket".to_owned(), "OPS-1".to_owned())
            ]
        );
        assert_eq!(
            parse_metadata("no equals sign").unwrap_err().field,
            "metadata"
        );
    }
}
