//! Who calls the management API, as an extractor: an API key's bearer token, or an operator's
//! console session (its cookie, plus the CSRF token on every state-changing request).
//! `Operator<P>` cannot be reached without permission `P`, so a handler cannot forget the
//! check; the application layer decides everything else.

use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::http::{Method, header};
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use subtle::ConstantTimeEq;

use super::bearer_token;
use crate::domain::ManagementPermission;
use crate::error::ApiError;
use crate::service::callers::{self, LiveSession};
use crate::service::{Caller, policy};
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "keygate_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A management permission a route requires.
pub trait PermissionRequirement {
    const PERMISSION: ManagementPermission;
}

macro_rules! permissions {
    ($($name:ident => $permission:ident),+ $(,)?) => {
        $(
            pub struct $name;
            impl PermissionRequirement for $name {
                const PERMISSION: ManagementPermission = ManagementPermission::$permission;
            }
        )+
    };
}

permissions!(
    ApiKeysRead => ApiKeysRead,
    ApiKeysWrite => ApiKeysWrite,
    UsersManage => UsersManage,
    AuditRead => AuditRead,
    OrganizationsManage => OrganizationsManage,
    WebhooksManage => WebhooksManage,
    RevocationsRead => RevocationsRead,
);

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

fn state_of(req: &HttpRequest) -> Result<web::Data<AppState>, ApiError> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("AppState missing")))
}

impl<P: PermissionRequirement + 'static> FromRequest for Operator<P> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = state_of(&req)?;
            let caller = identify(&req, &state).await?;
            policy::require(&caller, P::PERMISSION)?;
            Ok(Operator {
                caller,
                _requirement: PhantomData,
            })
        })
    }
}

/// The caller from the bearer token, else the session cookie.
pub async fn identify(req: &HttpRequest, state: &AppState) -> Result<Caller, ApiError> {
    let origin = state.origin(req);
    if req.headers().contains_key(header::AUTHORIZATION) {
        let token = bearer_token(req)?;
        return Ok(callers::from_token(&state.service, token, &origin).await?);
    }
    let live = live_session(req, state).await?;
    let state_changing = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if state_changing && !csrf_presented(req, &live.session.csrf_token) {
        return Err(ApiError::Forbidden(
            "a state-changing request needs the session's X-CSRF-Token header".into(),
        ));
    }
    Ok(live.caller(&state.service, &origin))
}

/// The live session behind the request's cookie.
pub async fn live_session(req: &HttpRequest, state: &AppState) -> Result<LiveSession, ApiError> {
    let cookie = req.cookie(SESSION_COOKIE).ok_or(ApiError::MissingToken)?;
    Ok(callers::session(&state.service, cookie.value()).await?)
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
