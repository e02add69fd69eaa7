//! Who is calling: an API key (through its access token), an operator (through a console
//! session), or the CLI on the deployment's own machine. Each becomes a [`Caller`] holding
//! what it may do now.

use chrono::Utc;

use super::{Actor, Error, Origin, Service, login, policy};
use crate::db;
use crate::db::organizations::{Organization, is_deployment_organization};
use crate::db::sessions::Session;
use crate::db::users::User;
use crate::domain::{Environment, KeyStatus, ManagementPermission, ScopeCatalog, ScopeSet};

#[derive(Clone, Debug)]
pub enum Via {
    /// The command line: whoever can read the deployment's configuration and database.
    Cli,
    Session {
        user_id: i64,
    },
    ApiKey {
        client_id: String,
        environment: Environment,
    },
}

/// An authenticated caller of the application layer.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The organization the caller acts in; `None` for the CLI, which acts in every one.
    pub organization_id: Option<i64>,
    /// What the caller may do now: for a key, its token's scopes narrowed by the key's scopes
    /// and its creator's current permissions.
    pub permissions: ScopeSet,
    /// Whose keys are the caller's own: the user, or a key's creator (`None` for a key made
    /// without an owner, which owns nothing).
    pub owner_user_id: Option<i64>,
    /// Whether the caller belongs to the deployment's own organization.
    pub deployment: bool,
    pub actor: Actor,
    pub via: Via,
}

impl Caller {
    /// The CLI: every permission, in every organization.
    pub fn cli(catalog: &ScopeCatalog) -> Caller {
        Caller {
            organization_id: None,
            permissions: catalog.administrator(true),
            owner_user_id: None,
            deployment: true,
            actor: Actor::cli(),
            via: Via::Cli,
        }
    }

    pub fn holds(&self, permission: ManagementPermission) -> bool {
        self.permissions.holds(permission)
    }

    /// The environment a caller is fenced into: a `test` key acts only on `test` keys.
    pub fn fence(&self) -> Option<Environment> {
        match self.via {
            Via::ApiKey {
                environment: Environment::Test,
                ..
            } => Some(Environment::Test),
            _ => None,
        }
    }
}

/// The caller behind an access token. The token is validated from memory; the key is then read,
/// so a key revoked or disabled a moment ago is refused before the change feed says so.
pub async fn from_token(service: &Service, token: &str, origin: &Origin) -> Result<Caller, Error> {
    let claims = if super::direct_keys::is_api_key(token) {
        super::direct_keys::authenticate(service, token, origin).await?
    } else {
        service
            .validator
            .validate(token)
            .map_err(|r| Error::InvalidToken(r.description()))?
    };
    let client_id = claims.client_id.clone();
    let found = service
        .db(move |conn| Ok(db::api_keys::find_with_owner(conn, &client_id)?))
        .await?;
    let (key, organization, owner) = found
        .filter(|(key, organization, _)| {
            key.status == KeyStatus::Enabled
                && key.deleted_at.is_none()
                && organization.is_enabled()
        })
        .ok_or(Error::InvalidToken("the access token has been revoked"))?;
    let granted = policy::key_scopes_now(
        &ScopeSet::from_stored(&key.scopes),
        owner.as_ref(),
        &organization,
        &service.catalog,
    );
    Ok(Caller {
        organization_id: Some(key.organization_id),
        permissions: ScopeSet::from_stored(&claims.scope).intersection(&granted),
        owner_user_id: key.created_by,
        deployment: is_deployment_organization(&organization),
        actor: origin.actor(format!("api_key:{}", key.client_id)),
        via: Via::ApiKey {
            client_id: key.client_id,
            environment: key.environment,
        },
    })
}

/// A live console session, its user and organization.
pub struct LiveSession {
    pub session: Session,
    pub user: User,
    pub organization: Organization,
}

impl LiveSession {
    /// The session's user as a caller.
    pub fn caller(&self, service: &Service, origin: &Origin) -> Caller {
        Caller {
            organization_id: Some(self.user.organization_id),
            permissions: policy::permissions_of(&self.user, &self.organization, &service.catalog),
            owner_user_id: Some(self.user.id),
            deployment: is_deployment_organization(&self.organization),
            actor: origin.actor(format!("user:{}", self.user.email)),
            via: Via::Session {
                user_id: self.user.id,
            },
        }
    }
}

/// The live session whose cookie value is `token`, with its (enabled) user.
pub async fn session(service: &Service, token: &str) -> Result<LiveSession, Error> {
    let token_hash = login::session_hash(token);
    let now = Utc::now().naive_utc();
    let found = service
        .db(move |conn| {
            let Some(session) = db::sessions::find_live(conn, &token_hash, now)? else {
                return Ok(None);
            };
            let Some(user) = db::users::find(conn, session.user_id)?.filter(policy::may_log_in)
            else {
                return Ok(None);
            };
            let organization = db::organizations::find(conn, user.organization_id)?;
            if !organization.is_enabled() {
                return Ok(None);
            }
            Ok(Some(LiveSession {
                session,
                user,
                organization,
            }))
        })
        .await?;
    found.ok_or(Error::InvalidToken("the session has ended; log in again"))
}
