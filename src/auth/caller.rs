//! Who calls the management API: an API key's bearer token (acting with at most its creator's
//! current permissions), or an operator's console session (cookie plus CSRF token on every
//! state-changing request). `Operator<P>` is the extractor: a handler that takes it cannot be
//! reached without permission `P`.

use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::http::{Method, header};
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use subtle::ConstantTimeEq;

use super::bearer_token;
use crate::db::organizations::Organization;
use crate::db::organizations::is_deployment_organization;
use crate::db::sessions::Session;
use crate::db::users::User;
use crate::db::{self, api_keys::ApiKey};
use crate::domain::ScopeSet;
use crate::error::ApiError;
use crate::lifecycle::Actor;
use crate::lifecycle::users::permissions_of;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "keygate_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A management permission a route requires.
pub trait PermissionRequirement {
    const PERMISSION: &'static str;
}

macro_rules! permissions {
    ($($name:ident => $permission:literal),+ $(,)?) => {
        $(
            pub struct $name;
            impl PermissionRequirement for $name {
                const PERMISSION: &'static str = $permission;
            }
        )+
    };
}

permissions!(
    ApiKeysRead => "api_keys:read",
    ApiKeysWrite => "api_keys:write",
    UsersManage => "users:manage",
    AuditRead => "audit:read",
    OrganizationsManage => "organizations:manage",
);

#[derive(Clone, Debug)]
pub enum Via {
    Session { user_id: i64 },
    ApiKey { client_id: String },
}

/// An authenticated caller of the management API.
#[derive(Clone, Debug)]
pub struct Caller {
    pub organization_id: i64,
    /// What the caller may do now: for a key, its token's scopes narrowed by the key's scopes
    /// and its creator's current permissions.
    pub permissions: ScopeSet,
    /// Whose keys are the caller's own: the user, or a key's creator (None for keys made by
    /// the CLI without an owner).
    pub owner_user_id: Option<i64>,
    /// Whether the caller belongs to the deployment's own organization.
    pub deployment: bool,
    pub actor: Actor,
    pub via: Via,
}

impl Caller {
    pub fn holds(&self, permission: &str) -> bool {
        self.permissions.contains(permission)
    }

    /// Holders of `api_keys:manage` act on every key of their organization; others on their own.
    pub fn may_act_on(&self, key: &ApiKey) -> bool {
        key.organization_id == self.organization_id
            && (self.holds("api_keys:manage") || key.created_by == self.owner_user_id)
    }
}

/// The caller, holding permission `P`.
pub struct Operator<P: PermissionRequirement> {
    pub caller: Caller,
    _requirement: PhantomData<P>,
}

impl<P: PermissionRequirement> std::ops::Deref for Operator<P> {
    type Target = Caller;

    fn deref(&self) -> &Caller {
        &self.caller
    }
}

impl<P: PermissionRequirement + 'static> FromRequest for Operator<P> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| ApiError::internal(anyhow::anyhow!("AppState missing")))?;
            let caller = identify(&req, &state).await?;
            if !caller.holds(P::PERMISSION) {
                return Err(ApiError::InsufficientScope {
                    required: P::PERMISSION.to_owned(),
                });
            }
            Ok(Operator {
                caller,
                _requirement: PhantomData,
            })
        })
    }
}

/// Finds the caller from the bearer token, else the session cookie.
pub async fn identify(req: &HttpRequest, state: &AppState) -> Result<Caller, ApiError> {
    let origin = super::Origin::of(req, &state.limiter);
    let actor = |label: String| origin.actor(label);
    if req.headers().contains_key(header::AUTHORIZATION) {
        let token = bearer_token(req)?;
        let claims = state
            .validator
            .validate(token)
            .map_err(|r| ApiError::InvalidToken(r.description()))?;
        let client_id = claims.client_id.clone();
        let catalog = state.catalog.clone();
        let found = db::run(&state.pool, move |conn| {
            Ok(db::api_keys::find_with_owner(conn, &client_id)?)
        })
        .await?;
        let (key, organization, owner) = found
            .filter(|(key, _, _)| key.status == "enabled" && key.deleted_at.is_none())
            .ok_or(ApiError::InvalidToken("the access token has been revoked"))?;
        let token_scopes = ScopeSet::from_stored(&claims.scope);
        let mut permissions = token_scopes.intersection(&ScopeSet::from_stored(&key.scopes));
        if let Some(owner) = &owner {
            permissions = permissions.intersection(&permissions_of(owner, &organization, &catalog));
        }
        return Ok(Caller {
            organization_id: key.organization_id,
            permissions,
            owner_user_id: key.created_by,
            deployment: is_deployment_organization(&organization),
            actor: actor(format!("api_key:{}", key.client_id)),
            via: Via::ApiKey {
                client_id: key.client_id,
            },
        });
    }
    let (session, user, organization) = live_session(req, state).await?;
    let state_changing = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if state_changing && !csrf_presented(req, &session.csrf_token) {
        return Err(ApiError::Forbidden(
            "a state-changing request needs the session's X-CSRF-Token header".into(),
        ));
    }
    Ok(Caller {
        organization_id: user.organization_id,
        permissions: permissions_of(&user, &organization, &state.catalog),
        owner_user_id: Some(user.id),
        deployment: is_deployment_organization(&organization),
        actor: actor(format!("user:{}", user.email)),
        via: Via::Session { user_id: user.id },
    })
}

/// The live session behind the request's cookie, with its (enabled) user and organization.
pub async fn live_session(
    req: &HttpRequest,
    state: &AppState,
) -> Result<(Session, User, Organization), ApiError> {
    let cookie = req.cookie(SESSION_COOKIE).ok_or(ApiError::MissingToken)?;
    let token_hash = session_hash(cookie.value());
    let now = chrono::Utc::now().naive_utc();
    let found = db::run(&state.pool, move |conn| {
        let Some(session) = db::sessions::find_live(conn, &token_hash, now)? else {
            return Ok(None);
        };
        let Some(user) = db::users::find(conn, session.user_id)?.filter(|u| u.status == "enabled")
        else {
            return Ok(None);
        };
        let organization = db::organizations::find(conn, user.organization_id)?;
        Ok(Some((session, user, organization)))
    })
    .await?;
    found.ok_or(ApiError::InvalidToken(
        "the session has ended; log in again",
    ))
}

/// Whether the request carries the session's CSRF token in `X-CSRF-Token` (compared in
/// constant time).
pub fn csrf_presented(req: &HttpRequest, expected: &str) -> bool {
    let presented = req
        .headers()
        .get(CSRF_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    bool::from(presented.ct_eq(expected.as_bytes()))
}

/// The stored form of a session token: hex SHA-256.
pub fn session_hash(token: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
