//! `/v1/users`: operators of the caller's organization (`users:manage`).

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Page;
use super::body::JsonBody;
use crate::auth::caller::{Operator, UsersManage};
use crate::domain::{Email, Password, ScopeSet, UserStatus, ValidationError};
use crate::error::ApiError;
use crate::routes::no_store;
use crate::service::users::{self, NewUserRequest, UserRecord, UserUpdate};
use crate::service::{Service, policy};
use crate::state::AppState;

#[derive(Serialize)]
pub struct UserView {
    pub id: Option<String>,
    pub email: String,
    pub organization: String,
    pub admin: bool,
    /// What the user may do now (every permission, for an administrator).
    pub permissions: ScopeSet,
    pub status: UserStatus,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

impl UserView {
    pub fn of(record: &UserRecord, service: &Service) -> UserView {
        let user = &record.user;
        UserView {
            id: user.public_id.clone(),
            email: user.email.clone(),
            organization: record.organization.name.clone(),
            admin: user.is_admin,
            permissions: record.permissions(service),
            status: user.status,
            created_at: user.created_at.and_utc(),
            last_login_at: user.last_login_at.map(|t| t.and_utc()),
        }
    }
}

fn permissions(list: &[String]) -> Result<ScopeSet, ValidationError> {
    ScopeSet::from_items(list.iter().map(String::as_str))
        .map_err(|e| ValidationError::new("permissions", e.message))
}

pub async fn list_users(
    operator: Operator<UsersManage>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let organization_id = policy::home_organization(&operator)?;
    let records = users::list(&state.service, &operator, organization_id).await?;
    let data = records
        .iter()
        .map(|r| UserView::of(r, &state.service))
        .collect();
    Ok(HttpResponse::Ok().json(Page::all(data)))
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
    let new = NewUserRequest {
        organization_id: policy::home_organization(&operator)?,
        permissions: permissions(&request.permissions)?,
        email: Email::parse(&request.email)?,
        is_admin: request.admin,
        password: request
            .password
            .as_deref()
            .map(Password::parse)
            .transpose()?,
    };
    let (record, password) = users::create(&state.service, &operator, new).await?;
    Ok(no_store(HttpResponse::Created()).json(CreatedUser {
        user: UserView::of(&record, &state.service),
        password: password.map(|p| p.expose().to_owned()),
    }))
}

pub async fn retrieve_user(
    operator: Operator<UsersManage>,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let record = users::get(&state.service, &operator, &path).await?;
    Ok(HttpResponse::Ok().json(UserView::of(&record, &state.service)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateUserRequest {
    permissions: Option<Vec<String>>,
    admin: Option<bool>,
    status: Option<String>,
}

impl UpdateUserRequest {
    fn parse(self) -> Result<UserUpdate, ValidationError> {
        let update = UserUpdate {
            permissions: self.permissions.as_deref().map(permissions).transpose()?,
            is_admin: self.admin,
            enabled: self
                .status
                .as_deref()
                .map(str::parse)
                .transpose()?
                .map(|s: UserStatus| s == UserStatus::Enabled),
        };
        if update.permissions.is_none() && update.is_admin.is_none() && update.enabled.is_none() {
            return Err(ValidationError::new(
                "body",
                "nothing to change: give permissions, admin or status",
            ));
        }
        Ok(update)
    }
}

pub async fn update_user(
    operator: Operator<UsersManage>,
    path: web::Path<String>,
    body: JsonBody<UpdateUserRequest>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let update = body.0.parse()?;
    let record = users::update(&state.service, &operator, &path, update).await?;
    Ok(HttpResponse::Ok().json(UserView::of(&record, &state.service)))
}
