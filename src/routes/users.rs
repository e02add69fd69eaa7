//! `/v1/users`: operators of the caller's organization (`users:manage`).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Page;
use super::body::JsonBody;
use crate::auth::caller::{Caller, Operator, UsersManage};
use crate::db::{self, organizations::Organization, users::User};
use crate::domain::{Email, Password, ScopeCatalog, ScopeSet, ValidationError, random};
use crate::error::ApiError;
use crate::lifecycle::users::{self, NewUserRequest, UserUpdate, permissions_of};
use crate::routes::no_store;
use crate::state::AppState;

#[derive(Serialize)]
pub struct UserView {
    pub id: Option<String>,
    pub email: String,
    pub organization: String,
    pub admin: bool,
    /// What the user may do now (every permission, for an administrator).
    pub permissions: ScopeSet,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

pub fn user_view(user: &User, organization: &Organization, catalog: &ScopeCatalog) -> UserView {
    UserView {
        id: user.public_id.clone(),
        email: user.email.clone(),
        organization: organization.name.clone(),
        admin: user.is_admin,
        permissions: permissions_of(user, organization, catalog),
        status: user.status.clone(),
        created_at: user.created_at.and_utc(),
        last_login_at: user.last_login_at.map(|t| t.and_utc()),
    }
}

/// A caller may only hand out what it holds, make an administrator only if it holds all an
/// administrator would, and change only users who hold nothing it lacks (so a user manager
/// cannot demote, narrow or disable an administrator). Unknown permissions are a 400 first.
fn check_grant(
    caller: &Caller,
    permissions: Option<&ScopeSet>,
    admin: Option<bool>,
    target: Option<&ScopeSet>,
    state: &AppState,
) -> Result<(), ApiError> {
    if let Some(permissions) = permissions {
        state
            .catalog
            .check(permissions)
            .map_err(|e| ValidationError::new("permissions", e.message))?;
        if let Some(missing) = permissions.first_missing_from(&caller.permissions) {
            return Err(ApiError::Forbidden(format!(
                "you do not hold `{missing}`, so you cannot grant it"
            )));
        }
    }
    if admin == Some(true)
        && !state
            .catalog
            .administrator(caller.deployment)
            .is_subset(&caller.permissions)
    {
        return Err(ApiError::Forbidden(
            "only an administrator can make another".into(),
        ));
    }
    if let Some(missing) = target.and_then(|t| t.first_missing_from(&caller.permissions)) {
        return Err(ApiError::Forbidden(format!(
            "this user holds `{missing}`, which you do not, so you cannot change them"
        )));
    }
    Ok(())
}

pub async fn list_users(
    operator: Operator<UsersManage>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let organization_id = operator.organization_id;
    let catalog = state.catalog.clone();
    let page = db::run(&state.pool, move |conn| {
        let organization = db::organizations::find(conn, organization_id)?;
        let rows = db::users::list(conn, organization_id)?;
        let data: Vec<UserView> = rows
            .iter()
            .map(|u| user_view(u, &organization, &catalog))
            .collect();
        Ok(Page::all(data))
    })
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    email: String,
    #[serde(default)]
    permissions: Vec<String>,
    #[serde(default)]
    admin: bool,
    password: Option<String>,
}

#[derive(Serialize)]
struct CreatedUser {
    #[serde(flatten)]
    user: UserView,
    /// The generated password, shown this once (absent when the request gave one).
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<String>,
}

pub async fn create_user(
    operator: Operator<UsersManage>,
    body: JsonBody<CreateUserRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request = body.0;
    let permissions = ScopeSet::from_items(request.permissions.iter().map(String::as_str))
        .map_err(|e| ValidationError::new("permissions", e.message))?;
    check_grant(
        &operator,
        Some(&permissions),
        Some(request.admin),
        None,
        &state,
    )?;
    let new = NewUserRequest {
        organization_id: operator.organization_id,
        email: Email::parse(&request.email)?,
        is_admin: request.admin,
        permissions,
        password: request
            .password
            .as_deref()
            .map(Password::parse)
            .transpose()?,
    };
    let (actor, catalog) = (operator.actor.clone(), state.catalog.clone());
    let password_cost = state.settings.secrets.password_bcrypt_cost;
    let (view, password) = db::run(&state.pool, move |conn| {
        let (user, password) =
            users::create(conn, new, &catalog, password_cost, &actor, Utc::now())?;
        let organization = db::organizations::find(conn, user.organization_id)?;
        Ok((user_view(&user, &organization, &catalog), password))
    })
    .await?;
    Ok(no_store(HttpResponse::Created()).json(CreatedUser {
        user: view,
        password: password.map(|p| p.expose().to_owned()),
    }))
}

async fn find_user(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<(User, Organization), ApiError> {
    // User ids are `usr_` and 16 base-62 characters; anything else names no user.
    let well_formed = id.len() == 20 && id.starts_with("usr_") && random::is_base62(&id[4..]);
    if !well_formed {
        return Err(ApiError::NotFound);
    }
    let (id, organization_id) = (id.to_owned(), caller.organization_id);
    db::run(&state.pool, move |conn| {
        let Some(user) = db::users::find_by_public_id(conn, &id)?
            .filter(|u| u.organization_id == organization_id)
        else {
            return Err(ApiError::NotFound);
        };
        let organization = db::organizations::find(conn, organization_id)?;
        Ok((user, organization))
    })
    .await
}

pub async fn retrieve_user(
    operator: Operator<UsersManage>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let (user, organization) = find_user(&state, &operator, &path).await?;
    Ok(HttpResponse::Ok().json(user_view(&user, &organization, &state.catalog)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    permissions: Option<Vec<String>>,
    admin: Option<bool>,
    status: Option<String>,
}

pub async fn update_user(
    operator: Operator<UsersManage>,
    path: web::Path<String>,
    body: JsonBody<UpdateUserRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request = body.0;
    let permissions = request
        .permissions
        .as_ref()
        .map(|p| ScopeSet::from_items(p.iter().map(String::as_str)))
        .transpose()
        .map_err(|e| ValidationError::new("permissions", e.message))?;
    let enabled = match request.status.as_deref() {
        None => None,
        Some("enabled") => Some(true),
        Some("disabled") => Some(false),
        Some(_) => {
            return Err(ValidationError::new("status", "must be enabled or disabled").into());
        }
    };
    if permissions.is_none() && request.admin.is_none() && enabled.is_none() {
        return Err(ValidationError::new(
            "body",
            "nothing to change: give permissions, admin or status",
        )
        .into());
    }
    let (user, organization) = find_user(&state, &operator, &path).await?;
    let held = permissions_of(&user, &organization, &state.catalog);
    check_grant(
        &operator,
        permissions.as_ref(),
        request.admin,
        Some(&held),
        &state,
    )?;
    let update = UserUpdate {
        permissions,
        is_admin: request.admin,
        enabled,
    };
    let (actor, catalog) = (operator.actor.clone(), state.catalog.clone());
    let (view, changes) = db::run(&state.pool, move |conn| {
        let (user, changes) = users::update(conn, &user, &update, &catalog, &actor, Utc::now())?;
        let organization = db::organizations::find(conn, user.organization_id)?;
        Ok((user_view(&user, &organization, &catalog), changes))
    })
    .await?;
    state.apply_changes(&changes);
    Ok(HttpResponse::Ok().json(view))
}
